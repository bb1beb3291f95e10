"""perf/bench_common.py - what every part of the benchmark suite (perf/bench.py) shares: the configuration
bench.sh passes in the environment, the one result being built (results, SAMPLES), logging and recording of
figures, the benchtool runner, and the /proc helpers for processes and their memory."""
import os
import re
import subprocess
import threading
import time

BIN = os.environ["BENCH_BIN"]
QUICK = os.environ.get("BENCH_QUICK", "0") == "1"
OUT = os.environ["BENCH_OUT"]
DOCS = os.environ["BENCH_DOCS"]
WORK = os.environ["BENCH_WORK"]
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")
EMBER = os.path.join(BIN, "ember")
TOOL = os.path.join(BIN, "benchtool")
TINY = os.path.join(BIN, "test-guest.elf")
TINY_PVH = os.path.join(BIN, "test-guest-pvh.elf")  # the same guest with a PVH entry: QEMU microvm boots it
VMLINUX = os.path.join(BIN, "vmlinux")
VMLINUX_Q = os.path.join(BIN, "vmlinux-int3patched")
ROOTFS = os.path.join(BIN, "rootfs.ext4")
QEMU_BASE = [QEMU, "-M", "microvm,acpi=off", "-enable-kvm", "-cpu", "host,-arch-capabilities",
             "-nodefaults", "-no-user-config", "-nographic"]
# the same guest-side steering perf/qemu_boot.sh uses on kvm-pvm hosts
QEMU_CMDLINE = ("console=ttyS0 reboot=k panic=1 noxsave clearcpuid=popcnt,xsave,avx,avx2,avx512f,rdrand,"
                "rdseed,smap,smep,fsgsbase,bmi1,bmi2,pcid,invpcid,cx16")


def _kvm_is_pvm():
    """The /dev/kvm this process opens is kvm-pvm's (the rule of tools/kvm_host.sh's is_pvm_host)."""
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError:
        return False
    mods = ("kvm_pvm", "kvm_amd", "kvm_intel")
    return [os.path.exists("/sys/module/" + m) for m in mods] == [True, False, False]


PVM = _kvm_is_pvm()
ONLY = os.environ.get("BENCH_ONLY", "all")
KVM = os.environ.get("BENCH_KVM", "host")
IN_KVMHOST = os.environ.get("EMBER_KVMHOST") == "1"  # set by tests/kvmhost/run inside the emulated host
WHERE_HOST = "host"
WHERE_EMU = "emulated KVM host (QEMU TCG, nested SVM)"
WHERE = WHERE_EMU if IN_KVMHOST else WHERE_HOST
# With no usable /dev/kvm here the QEMU side of exec -> API socket runs in the emulated host too.
SPLIT = KVM == "emulated" and not IN_KVMHOST
PART_MARK = "@@ember-bench-part@@"
ALIVE_MARK = "@@ember-bench-alive@@"  # printed every ALIVE_S inside the emulated host; silence means it froze
ALIVE_S = 10
STDOUT_LOCK = threading.Lock()

results = {"benchmarks": {}, "errors": [], "findings": []}
SAMPLES = {}  # name -> samples saved for the charts (sent out of the emulated host with the results)
T0 = time.time()


def log(msg):
    with STDOUT_LOCK:
        print(f"[bench {time.time() - T0:6.1f}s] {msg}", flush=True)


def stats(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    pct = lambda p: xs[min(n - 1, max(0, int(round(p / 100.0 * n + 0.5)) - 1))]  # nearest rank
    return {"n": n, "min": xs[0], "median": (xs[(n - 1) // 2] + xs[n // 2]) / 2, "p99": pct(99), "max": xs[-1],
            "mean": sum(xs) / n}


def save_samples(name, xs):
    p = os.path.join(WORK, name + ".dat")
    with open(p, "w") as f:
        for x in sorted(xs):
            f.write(f"{x}\n")
    SAMPLES[name] = sorted(xs)
    return p


def record(name, **kv):
    """Every figure says where it was measured; inside the emulated KVM host its times are emulator times."""
    kv["where"] = WHERE
    kv["emulator_time"] = IN_KVMHOST
    results["benchmarks"][name] = kv


def fail(name, why):
    log(f"FAILED {name}: {why}")
    results["errors"].append(f"{name}: {why}")


def finding(name, what):
    """A defect the benchmark exposed while still producing its numbers (not a benchmark failure)."""
    log(f"FINDING {name}: {what}")
    results["findings"].append(f"{name}: {what}")


def tool(*args, timeout=600, check=False):
    p = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and p.returncode:
        raise RuntimeError(f"benchtool {args[0]} rc={p.returncode}: {p.stdout[-300:]} {p.stderr[-300:]}")
    return p


def floats(text):
    out = []
    for line in text.splitlines():
        try:
            out.append(float(line))
        except ValueError:
            pass
    return out


def cmd_version(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip().splitlines()[0]
    except Exception as e:  # noqa
        return f"unknown ({e})"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


# ---------------------------------------------------------------- memory helpers
def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return None


def smaps_mappings(pid):
    """(size KiB, path, Pss KiB) for each mapping in /proc/PID/smaps."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                cur = [(int(m.group(2), 16) - int(m.group(1), 16)) >> 10, m.group(3).strip(), 0]
                out.append(cur)
            elif cur and line.startswith("Pss:"):
                cur[2] += int(line.split()[1])
    return [tuple(x) for x in out]


def is_guest_ram(size_kib, path, mem_mib):
    """An anonymous (or QEMU memfd) mapping of guest-RAM size: mem_mib .. mem_mib+8 MiB."""
    return (mem_mib << 10) <= size_kib <= ((mem_mib + 8) << 10) and (
        path == "" or path.startswith("[anon") or "memfd" in path or "pc.ram" in path)


def guest_ram_pss_kib(pid, mem_mib):
    """Pss of the guest-RAM mapping(s)."""
    ram = [pss for size, path, pss in smaps_mappings(pid) if is_guest_ram(size, path, mem_mib)]
    return sum(ram) if ram else None


def kill_proc(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def run_one(name, fn):
    t = time.time()
    log(f"{name} ...")
    try:
        fn()
    except Exception as e:  # keep going: a broken benchmark must not hide the others
        fail(name, repr(e))
    log(f"{name} done in {time.time() - t:.1f} s")
