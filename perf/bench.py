#!/usr/bin/env python3
"""perf/bench.py - Ember vs QEMU microvm benchmark suite (issue 7).

Run through perf/bench.sh (`make bench`, `make bench QUICK=1`), which builds
the C helper perf/lib/benchtool.c and copies the binaries under test to a
private directory. Figures are reported against their targets, never asserted:
the exit status is non-zero only if a benchmark failed to produce numbers.

Environment (set by bench.sh): BENCH_BIN (private dir with ember, virtio-bench,
test-guest.elf, test-guest-pvh.elf, vmlinux, vmlinux-int3patched, rootfs.ext4,
benchtool), BENCH_QUICK (1 = quick), BENCH_OUT (perf/results), BENCH_DOCS
(docs), BENCH_WORK (scratch dir), QEMU (binary), and:
  BENCH_KVM   host: this machine's /dev/kvm works, every benchmark runs here.
              emulated: it does not; the benchmarks that need no KVM run here,
              the ones that need a VM run inside the emulated KVM host
              (tests/kvmhost/run: QEMU TCG -cpu max, nested SVM), side by side
              with QEMU microvm on that host's KVM, and are reported as Ember/QEMU
              ratios (their times are emulator times).
  BENCH_ONLY  all (default) | host | vm: run only the benchmarks that need no
              KVM (host) or only those that need a VM (vm). With vm, each
              benchmark's result is printed on stdout as one marker line
              (@@ember-bench-part@@ CRC32 BASE64-ZLIB-JSON), which is how the
              results leave the emulated host, and no file is written.
  BENCH_KVMHOST_RUN, BENCH_KVMHOST_SMP (1), BENCH_KVMHOST_MEM (3072),
  BENCH_KVMHOST_TIMEOUT (deadline of one emulated-host run, s), BENCH_KVMHOST_STALL
  (s of silence, no heartbeat, after which the emulated host counts as frozen; 120).
"""
import base64
import glob
import json
import os
import platform
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import ember_http  # noqa: E402 (tests/lib: the HTTP-over-Unix-socket client the tests and benchmarks share)

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
PVM = os.path.exists("/sys/module/kvm_pvm")
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


def kvmhost_info():
    """The emulated KVM host, as seen from inside."""
    mod = next((m for m in ("kvm_amd", "kvm_intel") if os.path.exists(f"/sys/module/{m}")), "?")
    try:
        nested = open(f"/sys/module/{mod}/parameters/nested").read().strip()
    except OSError:
        nested = "?"
    return {"kernel": platform.release(), "cpu": cpu_model(), "cpus": os.cpu_count(),
            "mem_total_mib": int(open("/proc/meminfo").readline().split()[1]) // 1024,
            "kvm_module": mod, "kvm_nested": nested, "qemu_version": cmd_version([QEMU, "--version"]),
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}


def host_info():
    cpu = cpu_model()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": "quick" if QUICK else "full",
        "host_kernel": platform.release(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "mem_total_mib": int(open("/proc/meminfo").readline().split()[1]) // 1024,
        "kvm_flavour": ("kvm-pvm" if PVM else "hardware") if KVM == "host"
        else os.environ.get("BENCH_KVM_WHY", "none: no usable /dev/kvm"),
        "ember_version": cmd_version([EMBER, "--version"]),
        "ember_git": git + ("-dirty" if dirty else ""),
        "qemu_version": cmd_version([QEMU, "--version"]),
        "gnuplot_version": cmd_version(["gnuplot", "--version"]),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    }


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


def children_of(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def kill_proc(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


# ---------------------------------------------------------------- benchmarks
def b_exec_to_socket():
    """Ember's side needs no KVM. QEMU's (-enable-kvm) does: without a usable /dev/kvm here only Ember's is
    taken here, and the comparison with QEMU inside the emulated KVM host (b_exec_vs_qemu)."""
    exec_to_socket("exec_to_api_socket_ms", "exec", with_qemu=not SPLIT)


def b_exec_vs_qemu():
    """Without a usable /dev/kvm here: Ember and QEMU side by side inside the emulated KVM host."""
    exec_to_socket("exec_to_api_socket_vs_qemu_ms", "exec_kvmhost", with_qemu=True)


def exec_to_socket(key, tag, with_qemu):
    n = 15 if QUICK else 200
    nq = (5 if QUICK else 30) if with_qemu else 0
    es = os.path.join(WORK, "e.sock")
    qs = os.path.join(WORK, "q.sock")
    e = floats(tool("sockup", n, es, 0, EMBER, "--api-sock", es).stdout)
    q = floats(tool("sockup", nq, qs, 1, *QEMU_BASE, "-m", "128", "-S", "-qmp", f"unix:{qs},server,nowait").stdout) \
        if with_qemu else []
    if len(e) < n or len(q) < nq:
        fail("exec_to_api_socket", f"ember {len(e)}/{n}, qemu {len(q)}/{nq} runs produced a number")
    save_samples(f"{tag}_ember_ms", [x / 1000 for x in e])
    if with_qemu:
        save_samples(f"{tag}_qemu_ms", [x / 1000 for x in q])
    se, sq = stats([x / 1000 for x in e]), stats([x / 1000 for x in q])
    record(key, ember=se, qemu_qmp_greeting=sq,
           speedup_median=(sq["median"] / se["median"]) if se and sq else None,
           ember_over_qemu_median=(se["median"] / sq["median"]) if se and sq else None,
           note="fork+exec to a connect() that succeeds (Ember) / to a QMP greeting read (QEMU -S -qmp)"
                + ("" if with_qemu else "; QEMU's side needs /dev/kvm: taken in the emulated KVM host"))


def b_instance_start():
    n = 10 if QUICK else 100
    s = os.path.join(WORK, "a.sock")
    lg = os.path.join(WORK, "apistart.log")
    p = tool("apistart", n, s, lg, TINY, "ember-test=hello", EMBER)
    lines = [l.split() for l in p.stdout.splitlines()]
    st, rt, derived = [], [], []
    for i, l in enumerate(lines):
        if len(l) != 3:
            continue
        rt.append(float(l[0]) / 1000)
        try:
            txt = open(f"{lg}.{i}").read()
        except OSError:
            txt = ""
        m = re.search(r"start to first KVM_RUN: ([0-9.]+) ms", txt)
        a = re.search(r"API listening on .* after ([0-9.]+) ms", txt)
        if m:
            st.append(float(m.group(1)))
        if m and a:
            # ember's clock starts in main(); the socket listened `a` ms later, and we saw it accept at l[2]
            # (us after fork), so main() <= fork + l[2] - a and
            # InstanceStart sent -> first KVM_RUN = stat - (sent - main()) <= stat - a - (l[1] - l[2])
            derived.append(float(m.group(1)) - float(a.group(1)) - (float(l[1]) - float(l[2])) / 1000)
    for f in glob.glob(lg + ".*"):
        os.unlink(f)
    if len(rt) < n or len(st) < n:
        fail("instance_start", f"{len(rt)}/{n} round trips, {len(st)}/{n} stat lines")
    save_samples("instancestart_ms", rt)
    record("instance_start_ms", api_put_actions_round_trip=stats(rt), ember_stat_process_start_to_first_kvm_run=stats(st),
           instancestart_sent_to_first_kvm_run=stats(derived),
           note="PUT /actions InstanceStart round trip with the tiny guest (boot_args ember-test=hello). "
                "'sent -> first KVM_RUN' = ember's stat (main() to first KVM_RUN) minus its logged 'API listening "
                "after' time minus the time between the socket first accepting and the request being sent; an "
                "upper bound, tight to the ~50 us connect() poll")


def b_launch_rate():
    n = 20 if QUICK else 200
    cmd = [EMBER, "--kernel", TINY, "--cmdline", "ember-test=hello"]
    out = {}
    for par in (1, 2):
        p = tool("launch", n, par, *cmd)
        m = re.search(r"wall_ms=([0-9.]+) launches=(\d+) failed=(\d+) per_s=([0-9.]+)", p.stdout)
        lat = [x / 1000 for x in floats(p.stdout)]
        if not m or int(m.group(3)) == n:
            fail("launch_rate", f"par {par}: {p.stdout[:200]}")
            continue
        bad = int(m.group(3))
        if bad:  # the figure stands; the failed runs are a defect to look at, not a missing number
            finding("launch_rate", f"{par} at a time: {bad} of {n} tiny-guest life cycles (ember-test=hello) ended "
                    f"with a non-zero status or a signal ({WHERE}; benchtool keeps no status or stderr)")
        save_samples(f"launch_par{par}_ms", lat)
        out[f"parallel_{par}"] = {"launches": n, "failed": bad, "wall_ms": float(m.group(1)),
                                  "per_s": float(m.group(4)), "per_s_per_core": float(m.group(4)) / par,
                                  "launch_to_exit_ms": stats(lat)}
    # The target's figure: N VMs started at once, each counted when its guest's first console line arrives
    # (the tiny guest's `idle` test prints one line and parks its vCPU in HLT).
    nf = 10 if QUICK else 50
    p = tool("firstout", nf, EMBER, "--kernel", TINY, "--cmdline", "ember-test=idle")
    m = re.search(r"wall_ms=([0-9.]+) launched=(\d+) up=(\d+) per_s=([0-9.]+) stop_ms=([0-9.]+) bad_exit=(\d+)", p.stdout)
    lat = [x / 1000 for x in floats(p.stdout.split("\n", 1)[1] if "\n" in p.stdout else "")]
    if not m or int(m.group(3)) != nf:
        fail("launch_rate", f"first output: {p.stdout[:200]}")
    else:
        cores = os.cpu_count() or 1
        save_samples("launch_first_ms", lat)
        out["to_first_output"] = {"launches": nf, "wall_ms": float(m.group(1)), "per_s": float(m.group(4)),
                                  "per_s_per_core": float(m.group(4)) / cores, "cores": cores,
                                  "exec_to_first_output_ms": stats(lat), "stop_all_ms": float(m.group(5)),
                                  "bad_exits": int(m.group(6))}
    if IN_KVMHOST:
        # Emulator times mean little alone: QEMU microvm starts the same tiny guest (its PVH build) the same
        # way, N at once on the same KVM, and the ratio is the figure.
        nq = 10  # QEMU microvm takes ~3 s of emulator time each: benchtool's 60 s limit holds ~20 at once
        p = tool("firstout", nq, *QEMU_BASE, "-m", "128", "-serial", "stdio", "-kernel", TINY_PVH,
                 "-append", "ember-test=idle")
        m = re.search(r"wall_ms=([0-9.]+) launched=(\d+) up=(\d+) per_s=([0-9.]+) stop_ms=([0-9.]+) bad_exit=(\d+)",
                      p.stdout)
        lat = [x / 1000 for x in floats(p.stdout.split("\n", 1)[1] if "\n" in p.stdout else "")]
        if not m or int(m.group(3)) != nq:
            fail("launch_rate", f"QEMU microvm first output: {p.stdout[:200]} {p.stderr[-200:]}")
        else:
            save_samples("launch_first_qemu_ms", lat)
            cores = os.cpu_count() or 1
            q = {"launches": nq, "wall_ms": float(m.group(1)), "per_s": float(m.group(4)),
                 "per_s_per_core": float(m.group(4)) / cores, "cores": cores, "exec_to_first_output_ms": stats(lat),
                 "stop_all_ms": float(m.group(5))}
            out["qemu_to_first_output"] = q
            e = out.get("to_first_output")
            if e and nq != nf:  # the ratio compares the same number of VMs started at once
                p = tool("firstout", nq, EMBER, "--kernel", TINY, "--cmdline", "ember-test=idle")
                m = re.search(r"wall_ms=([0-9.]+) launched=(\d+) up=(\d+) per_s=([0-9.]+)", p.stdout)
                lat = [x / 1000 for x in floats(p.stdout.split("\n", 1)[1] if "\n" in p.stdout else "")]
                e = {"launches": nq, "per_s": float(m.group(4)), "exec_to_first_output_ms": stats(lat)} \
                    if m and int(m.group(3)) == nq else None
                if e:
                    out["to_first_output_same_n_as_qemu"] = e
            if e and e["exec_to_first_output_ms"] and q["exec_to_first_output_ms"]:
                out["ember_over_qemu"] = {
                    "launches_at_once": nq,
                    "exec_to_first_output_median": e["exec_to_first_output_ms"]["median"]
                    / q["exec_to_first_output_ms"]["median"],
                    "launches_per_s": e["per_s"] / q["per_s"]}
    record("launch_rate_tiny_guest", **out,
           note="to_first_output (the target): N embers started at once, tiny guest `idle` test; launches/s = N / "
                "time from the first fork to the last VM's first console byte; per core = that / host cores. "
                "parallel_1/2: whole life cycles (exec, VM set-up, tiny guest prints ~10 lines and resets, "
                "teardown, exit), 1 or 2 at a time; launches/s = N / wall"
                + ("; qemu_to_first_output: QEMU microvm (-accel kvm) started the same way with the same guest "
                   "built with a PVH entry (test-guest-pvh.elf), in the same emulated KVM host" if IN_KVMHOST else ""))


API_RATE = 2000  # requests/s, all 100 clients together


def b_api_latency():
    s = os.path.join(WORK, "l.sock")
    per1, per100 = (300, 5) if QUICK else (3000, 30)
    out = {}
    for seccomp in (True, False):
        args = [EMBER, "--api-sock", s] + ([] if seccomp else ["--no-seccomp"])
        errf = open(os.path.join(WORK, "api_ember.err"), "w")
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
        for _ in range(2000):
            if os.path.exists(s):
                break
            time.sleep(0.001)
        time.sleep(0.05)
        tag = "" if seccomp else "_no_seccomp"
        r = {}
        # 100 clients twice: open loop at API_RATE requests/s in total (the latency each sees under that
        # load: the target), and closed loop (each client re-sends as soon as answered: saturation, where
        # latency is just 100 / throughput by Little's law).
        for key, clients, per, rate in (("clients_1", 1, per1, None), ("clients_100", 100, per100, API_RATE),
                                        ("clients_100_saturation", 100, per100, None)):
            name = {"clients_1": "c1", "clients_100": "c100", "clients_100_saturation": "c100sat"}[key]
            f = os.path.join(WORK, f"api_{name}{tag}.us")
            q = tool("load", s, clients, per, f, *([rate] if rate else []))
            lat = floats(open(f).read()) if os.path.exists(f) else []
            m = re.search(r"ok=(\d+) bad=(\d+).*rps=(\d+)", q.stdout)
            r[key] = {"requests": clients * per, "open_loop_req_per_s": rate, "ok": int(m.group(1)) if m else 0,
                                       "bad": int(m.group(2)) if m else None, "req_per_s": int(m.group(3)) if m else None,
                                       "latency_us": stats(lat)}
            if lat and m and int(m.group(2)) == 0:  # chart only runs where every request succeeded
                save_samples(f"api_{name}{tag}_us", lat)
        alive = p.poll() is None
        kill_proc(p)
        errf.close()
        err = open(os.path.join(WORK, "api_ember.err")).read().strip()
        r["ember_survived"] = alive
        if err:
            r["ember_stderr"] = err[-400:]
        out["seccomp_on" if seccomp else "seccomp_off"] = r
        if seccomp and alive and r["clients_100"]["bad"] == 0:
            break  # the plain run worked: no need for the --no-seccomp rerun
    if not out["seccomp_on"]["ember_survived"]:
        finding("api_latency", "ember died under 100 concurrent clients with seccomp on: "
             + out["seccomp_on"].get("ember_stderr", "?") + " (figures taken again with --no-seccomp)")
    record("api_latency", **out, note="one connection per request (Connection: close), alternating GET / and "
           "PUT /machine-config; latency = connect to the last byte of the answer. clients_100: 100 client "
           f"threads sending on a fixed schedule of {API_RATE} requests/s in total (open loop); "
           "clients_100_saturation: each of 100 clients sends again as soon as it is answered (closed loop)")


def b_virtio():
    secs = "0.5" if QUICK else "3"
    p = subprocess.run([os.path.join(BIN, "virtio-bench"), "--json", "--secs", secs, "--size-mib",
                        "64" if QUICK else "256"], capture_output=True, text=True, timeout=300)
    rows = []
    for line in p.stdout.splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            pass
    if p.returncode or not rows:
        fail("virtio", f"rc={p.returncode} {p.stderr[-300:]}")
        return
    get = lambda fig, path: next((r["ops_per_sec"] for r in rows if r["figure"] == fig and r["path"] == path), None)
    ratios = {}
    raw_io = get("blk randread 4KiB", "raw io_uring")
    for eng in ("virtio sync", "virtio async"):
        v = get("blk randread 4KiB", eng)
        if v and raw_io:
            ratios[f"blk {eng} / raw io_uring"] = v / raw_io
    for fig in sorted({r["figure"] for r in rows if r["figure"].startswith("net")}):
        raw = get(fig, "raw write") or get(fig, "raw read")
        v = get(fig, "virtio")
        if v and raw:
            ratios[fig] = v / raw
    record("virtio_device_models", rows=rows, ratios=ratios, secs_per_figure=float(secs),
           errors=sum(r.get("errors", 0) for r in rows))


def poll_log(path, pattern, proc, deadline):
    rx = re.compile(pattern)
    while time.time() < deadline:
        try:
            with open(path, "rb") as f:
                if rx.search(f.read().decode("latin-1")):
                    return True
        except OSError:
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def start_ember_linux(tag, mem=128):
    disk = os.path.join(WORK, f"root-{tag}.ext4")
    shutil.copyfile(ROOTFS, disk)
    logp = os.path.join(WORK, f"console-{tag}.log")
    t = time.time()
    p = subprocess.Popen([EMBER, "--kernel", VMLINUX, "--mem-mib", str(mem), "--drive", f"id=root,path={disk},root"],
                         stdin=subprocess.DEVNULL, stdout=open(logp, "wb"), stderr=subprocess.STDOUT)
    return p, logp, t


def start_qemu_linux(tag, mem=128):
    logp = os.path.join(WORK, f"console-{tag}.log")
    t = time.time()
    p = subprocess.Popen(QEMU_BASE + ["-m", str(mem), "-smp", "1", "-no-reboot", "-nic", "none", "-serial", "stdio",
                                      "-kernel", VMLINUX_Q, "-drive",
                                      f"id=root,file={ROOTFS},format=raw,if=none,snapshot=on",
                                      "-device", "virtio-blk-device,drive=root", "-append",
                                      QEMU_CMDLINE + " root=/dev/vda rw"],
                         stdin=subprocess.DEVNULL, stdout=open(logp, "wb"), stderr=subprocess.STDOUT)
    return p, logp, t


def pss_breakdown(pid, mem_mib):
    """Pss (KiB) of everything but guest RAM, grouped: binary, each shared library, heap, other anon, stacks."""
    groups = {}
    for size, path, pss in smaps_mappings(pid):
        if is_guest_ram(size, path, mem_mib):
            continue
        if path == "" or path.startswith("[anon"):
            name = "anonymous (not guest RAM)"
        else:
            name = os.path.basename(path) if path.startswith("/") else path
        groups[name] = groups.get(name, 0) + pss
    return dict(sorted(groups.items(), key=lambda kv: -kv[1])[:8])


def mem_sample(p, mem=128):
    total = pss_kib(p.pid)
    guest = guest_ram_pss_kib(p.pid, mem)
    return {"pss_kib": total, "guest_ram_pss_kib": guest,
            "vmm_overhead_kib": (total - guest) if total is not None and guest is not None else None,
            "overhead_top_kib": pss_breakdown(p.pid, mem)}


def b_memory_quick():
    """QUICK: both VMMs boot the same Linux kernel concurrently; sample at a fixed time."""
    if IN_KVMHOST:
        return memory_at_late_boot()
    wait = 8
    pe, le, _ = start_ember_linux("mem-ember")
    pq, lq, _ = start_qemu_linux("mem-qemu")
    time.sleep(wait)
    out = {}
    for name, p in (("ember", pe), ("qemu", pq)):
        try:
            out[name] = mem_sample(p)
        except OSError as e:
            fail("memory", f"{name} gone before sampling: {e}")
        kill_proc(p)
    record_memory(out, f"sampled {wait} s after exec (both booting concurrently; Linux kernel still in early boot)")


def memory_at_late_boot():
    """QUICK inside the emulated KVM host, where a fixed time means a different point of the boot for each VMM:
    both boot the same Linux kernel concurrently and each is sampled when its console first shows
    'Freeing unused kernel' (late boot), at most 120 s after exec."""
    procs = {"ember": start_ember_linux("mem-ember"), "qemu": start_qemu_linux("mem-qemu")}
    out, left = {}, dict(procs)
    while left:
        for name, (p, logp, t) in list(left.items()):
            try:
                txt = open(logp, "rb").read().decode("latin-1")
            except OSError:
                txt = ""
            late = "Freeing unused kernel" in txt
            if late or time.time() - t > 120 or p.poll() is not None:
                if p.poll() is not None:
                    fail("memory", f"{name} exited (rc {p.returncode}) before sampling (log {logp})")
                else:
                    try:
                        out[name] = mem_sample(p)
                        out[name]["sampled_after_s"] = time.time() - t
                        out[name]["late_boot"] = late
                    except OSError as e:
                        fail("memory", f"{name} gone before sampling: {e}")
                kill_proc(p)
                del left[name]
        time.sleep(0.05)
    record_memory(out, "both booting concurrently, each sampled when its console first showed 'Freeing unused "
                       "kernel' (late boot)")


def record_memory(out, when):
    e, q = out.get("ember", {}), out.get("qemu", {})
    ratio = None
    if e.get("vmm_overhead_kib") and q.get("vmm_overhead_kib"):
        ratio = e["vmm_overhead_kib"] / q["vmm_overhead_kib"]
    record("vmm_memory_overhead_1vcpu_128mib", ember=e, qemu=q, ember_over_qemu=ratio, when=when,
           note="PSS of the VMM process minus the Pss of its 128 MiB guest-RAM mapping")


def b_linux_boot():
    """FULL: boot to 'Run /sbin/init', Ember then QEMU (sequential), REPS each; memory sampled on the way."""
    reps = int(os.environ.get("BOOT_REPS", "2"))
    timeout = 200
    boot = {"ember": [], "qemu": []}
    mem = {}
    for i in range(reps):
        for name, starter in (("ember", start_ember_linux), ("qemu", start_qemu_linux)):
            p, logp, t = starter(f"boot-{name}-{i}")
            got_mem = False
            ok = False
            deadline = t + timeout
            while time.time() < deadline and p.poll() is None:
                txt = open(logp, "rb").read().decode("latin-1")
                if not got_mem and ("Freeing unused kernel" in txt or time.time() - t > 120):
                    if i == 0:
                        try:
                            mem[name] = mem_sample(p)
                        except OSError:
                            pass
                    got_mem = True
                if re.search(r"Run /\S+ as init process", txt):
                    boot[name].append(time.time() - t)
                    ok = True
                    break
                time.sleep(0.02)
            kill_proc(p)
            log(f"boot {name} rep {i}: {'%.1f s' % boot[name][-1] if ok else 'FAILED'}")
            if not ok:
                fail("linux_boot", f"{name} rep {i}: no 'Run /sbin/init' in {timeout} s (log {logp})")
    se, sq = stats(boot["ember"]), stats(boot["qemu"])
    record("linux_boot_to_init_s", ember=se, qemu=sq, reps=reps,
           ember_over_qemu_median=(se["median"] / sq["median"]) if se and sq else None,
           note="wall from exec to the console line 'Run /sbin/init as init process'; same kernel build "
                "(QEMU: int3-patched copy), same ext4 root on virtio-blk, 1 vCPU, 128 MiB")
    record_memory(mem, "sampled when the console first showed 'Freeing unused kernel' (late boot), first rep")


def b_density():
    ns = [5] if QUICK else [10, 50, 100, 200, 500]
    d = os.path.join(WORK, "density")
    os.makedirs(d, exist_ok=True)
    fds_before = len(os.listdir("/proc/self/fd"))
    rows = []
    for n in ns:
        avail = int([l for l in open("/proc/meminfo") if l.startswith("MemAvailable")][0].split()[1]) // 1024
        if avail < 1024 + n * 8:
            log(f"density: stop before N={n}: {avail} MiB available")
            break
        procs = []
        t = time.time()
        for i in range(n):
            s = os.path.join(d, f"{i}.sock")
            procs.append((subprocess.Popen([EMBER, "--api-sock", s, "--id", f"d{i}"], stdin=subprocess.DEVNULL,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), s))
        up = sum(ember_http.wait_accepting(s, t + 60) for _, s in procs)
        wall = time.time() - t
        time.sleep(0.3)
        pss = [pss_kib(p.pid) for p, _ in procs if p.poll() is None]
        rss = []
        for p, _ in procs:
            try:
                rss.append(int([l for l in open(f"/proc/{p.pid}/status") if l.startswith("VmRSS")][0].split()[1]))
            except (OSError, IndexError):
                pass
        ts = time.time()
        for p, _ in procs:
            p.terminate()
        for p, _ in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        stop_s = time.time() - ts
        left_procs = [p.pid for p, _ in procs if os.path.exists(f"/proc/{p.pid}")]
        left_socks = glob.glob(os.path.join(d, "*"))
        row = {"n": n, "up": up, "wall_s": wall, "launch_per_s": up / wall, "pss_total_kib": sum(pss),
               "pss_per_vm_kib": stats(pss), "rss_per_vm_kib": stats(rss), "stop_s": stop_s,
               "leftover_processes": len(left_procs), "leftover_sockets": len(left_socks),
               "exit_codes": sorted({p.returncode for p, _ in procs})}
        rows.append(row)
        log(f"density N={n}: {up} up in {wall:.2f} s, PSS/VM median {row['pss_per_vm_kib']['median']:.0f} KiB, "
            f"leftovers {len(left_procs)} procs {len(left_socks)} sockets")
        if up < n or left_procs or left_socks:
            fail("density", f"N={n}: {up}/{n} up, {len(left_procs)} processes and {len(left_socks)} sockets left")
        for s in left_socks:
            os.unlink(s)
    fds_after = len(os.listdir("/proc/self/fd"))
    with open(os.path.join(WORK, "density.dat"), "w") as f:
        for r in rows:
            f.write(f"{r['n']} {r['launch_per_s']:.2f} {r['pss_per_vm_kib']['median']:.1f}\n")
    record("density_idle", rows=rows, bench_fds_before=fds_before, bench_fds_after=fds_after,
           note="'idle' = an ember process serving its API socket with no InstanceStart: no guest RAM touched, "
                "no vCPU running. This is the VMM's own floor, not an idle booted guest")
    if fds_after != fds_before:
        fail("density", f"bench process fds {fds_before} -> {fds_after}")


def b_profile():
    """perf counters are unavailable on kvm-pvm VMs: callgrind (user space) + strace -c (syscall time)."""
    out = {}
    pc = subprocess.run(["perf", "stat", "-e", "instructions", "true"], capture_output=True, text=True)
    out["perf_counters"] = "not supported" not in pc.stderr and pc.returncode == 0
    cg = os.path.join(WORK, "callgrind.out")
    if shutil.which("valgrind"):
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={cg}", EMBER, "--no-seccomp",
                        "--kernel", TINY, "--cmdline", "ember-test=hello"], capture_output=True, timeout=300)
        ann = subprocess.run(["callgrind_annotate", "--inclusive=no", cg], capture_output=True, text=True).stdout
        total = re.search(r"^([0-9,]+) \(100.0%\)\s+PROGRAM TOTALS", ann, re.M)
        top = []
        for line in ann.splitlines():
            m = re.match(r"^\s*([0-9,]+) \(\s*([0-9.]+)%\)\s+(\S.*)$", line)
            if m and "PROGRAM TOTALS" not in line:
                top.append({"ir": int(m.group(1).replace(",", "")), "pct": float(m.group(2)), "fn": m.group(3)[:120]})
        out["callgrind_total_ir"] = int(total.group(1).replace(",", "")) if total else None
        out["callgrind_top_self"] = top[:12]
    st = os.path.join(WORK, "strace.txt")
    if shutil.which("strace"):
        subprocess.run(["strace", "-f", "-c", "-w", "-o", st, EMBER, "--no-seccomp", "--kernel", TINY, "--cmdline",
                        "ember-test=hello"], capture_output=True, timeout=120)
        rows = []
        for line in open(st):
            m = re.match(r"^\s*([0-9.]+)\s+([0-9.]+)\s+(\d+)\s+(\d+)\s+(?:(\d+)\s+)?(\w+)\s*$", line)
            if m:
                rows.append({"pct": float(m.group(1)), "seconds": float(m.group(2)), "calls": int(m.group(4)),
                             "syscall": m.group(6)})
        out["strace_wall_top"] = rows[:8]
    runs = 3 if QUICK else 10
    p = None
    if shutil.which("strace"):
        with open(st + ".T", "w") as allf:
            for i in range(runs):
                p = subprocess.run(["strace", "-f", "-T", "-o", st + f".T{i}", EMBER, "--no-seccomp", "--kernel",
                                    TINY, "--cmdline", "ember-test=hello"], capture_output=True, timeout=120)
                allf.write(open(st + f".T{i}").read())
    if p is not None:
        slow = []
        for line in open(st + ".T"):
            m = re.search(r"<([0-9.]+)>\s*$", line)
            if m:
                slow.append((float(m.group(1)), line.split(" ", 1)[1].strip()[:110]))
        slow.sort(reverse=True)
        out["slowest_calls"] = [{"seconds": s, "call": c} for s, c in slow[:6]]
        out["host_costs"] = aggregate_costs(st + ".T", out.get("callgrind_top_self"), out.get("callgrind_total_ir"))
        for r in out["host_costs"]["by_call"]:  # per launch, averaged over the runs
            r["seconds"] /= runs
            r["calls"] = round(r["calls"] / runs)
        out["host_costs"]["launches_averaged"] = runs
    record("host_profile_tiny_guest", **out)


def aggregate_costs(trace, cg_top, cg_total):
    """Host time by kind of work for one tiny-guest launch: strace -T durations summed per call kind
    (ioctl by request; blocking waits left out) plus dynamic linking's share of user instructions."""
    agg, pending = {}, {}
    for line in open(trace):
        u = re.match(r"^(\d+)\s+ioctl\(\d+,\s*(\w+).*<unfinished \.\.\.>", line)
        if u:
            pending[u.group(1)] = u.group(2)
            continue
        m = re.search(r"^\d+\s+(?:<\.\.\. )?(\w+)(?: resumed>|\()(.*)<([0-9.]+)>\s*$", line)
        if not m:
            continue
        name, rest, secs = m.group(1), m.group(2), float(m.group(3))
        if name in ("epoll_wait", "futex", "wait4", "poll", "ppoll", "nanosleep", "clock_nanosleep", "read"):
            continue
        if name == "ioctl":
            r = re.match(r"\s*\d+,\s*(\w+)", rest)
            pid = line.split()[0]
            name = "ioctl " + (r.group(1) if r and "resumed>" not in line else pending.pop(pid, "?"))
        a = agg.setdefault(name, [0.0, 0])
        a[0] += secs
        a[1] += 1
    rows = [{"what": k, "seconds": v[0], "calls": v[1]} for k, v in agg.items()]
    rows.sort(key=lambda r: -r["seconds"])
    dl = None
    if cg_top is not None and cg_total:
        dl = sum(r["pct"] for r in cg_top if "ld-linux" in r["fn"] or "/elf/" in r["fn"])
    return {"by_call": rows[:10], "dynamic_linking_pct_of_user_ir_top8": dl}


# ---------------------------------------------------------------- main
def bench_list():
    """(label, function, where it can run): 'host' needs no KVM; 'vm' needs a VM; 'vm-split' runs only when the
    VM benchmarks run apart from the others (the QEMU side of exec -> API socket)."""
    b = [("exec to API socket", b_exec_to_socket, "host"),
         ("exec to API socket, Ember vs QEMU", b_exec_vs_qemu, "vm-split"),
         ("InstanceStart", b_instance_start, "vm"),
         ("launch rate", b_launch_rate, "vm"),
         ("API latency", b_api_latency, "host"),
         ("virtio", b_virtio, "host")]
    b += [("memory (quick)", b_memory_quick, "vm")] if QUICK else [("Linux boot + memory", b_linux_boot, "vm")]
    b += [("density", b_density, "host"), ("profile", b_profile, "vm")]
    return b


def run_one(name, fn):
    t = time.time()
    log(f"{name} ...")
    try:
        fn()
    except Exception as e:  # keep going: a broken benchmark must not hide the others
        fail(name, repr(e))
    log(f"{name} done in {time.time() - t:.1f} s")


def emit(part):
    """One result part on stdout, as one line that survives the emulated host's serial console (checked by CRC)."""
    data = base64.b64encode(zlib.compress(json.dumps(part).encode(), 9)).decode()
    with STDOUT_LOCK:
        sys.stdout.write(f"\n{PART_MARK} {zlib.crc32(data.encode())} {data}\n")
        sys.stdout.flush()


def heartbeat():
    while True:
        time.sleep(ALIVE_S)
        with STDOUT_LOCK:
            sys.stdout.write(ALIVE_MARK + "\n")
            sys.stdout.flush()


def decode_part(rest):
    m = re.match(r"\s*(\d+) ([A-Za-z0-9+/=]+)\s*$", rest)
    if not m or zlib.crc32(m.group(2).encode()) != int(m.group(1)):
        return None
    try:
        return json.loads(zlib.decompress(base64.b64decode(m.group(2))))
    except (ValueError, zlib.error):
        return None


def vm_main(benches):
    """BENCH_ONLY=vm (inside the emulated KVM host): each benchmark's figures, errors, findings and chart samples
    go out on stdout as soon as it ends, so a host that freezes later loses only the benchmarks after it."""
    os.makedirs(WORK, exist_ok=True)  # a folder of its own (writes inside the emulated host stay there)
    threading.Thread(target=heartbeat, daemon=True).start()
    emit({"info": kvmhost_info() if IN_KVMHOST else {"kernel": platform.release(), "cpus": os.cpu_count()}})
    for name, fn, _ in benches:
        keys, ne, nf = set(results["benchmarks"]), len(results["errors"]), len(results["findings"])
        SAMPLES.clear()
        t = time.time()
        run_one(name, fn)
        emit({"bench": fn.__name__, "seconds": time.time() - t,
              "benchmarks": {k: v for k, v in results["benchmarks"].items() if k not in keys},
              "errors": results["errors"][ne:], "findings": results["findings"][nf:], "samples": dict(SAMPLES)})
    return 0


def stop_group(p):
    """End the emulated host this script started: its runner's process group (the runner, its QEMU)."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def read_parts(p, lines, got, tail, kh, first_s, stall_s):
    """Merge the result lines of one emulated-host run as they come; stop the run when it falls silent.
    Returns whether it had to be stopped."""
    stalled = False
    last, seen = time.time(), False
    while True:
        try:
            line = lines.get(timeout=5)
        except queue.Empty:
            limit = stall_s if seen else first_s
            if not stalled and time.time() - last > limit:
                stalled = True
                log(f"emulated KVM host: silent for {limit} s (frozen?): stopping it")
                tail.append(f"silent for {limit} s, stopped")
                stop_group(p)
            continue
        if line is None:
            return stalled
        last, seen = time.time(), True
        line = line.rstrip("\r\n").replace(ALIVE_MARK, "")
        i = line.find(PART_MARK)
        if i < 0:
            if line.strip():
                print(f"  kvmhost| {line}", flush=True)
                tail[:] = (tail + [line])[-20:]
            continue
        part = decode_part(line[i + len(PART_MARK):])
        if part is None:
            log("emulated KVM host: a damaged result line, dropped")
            continue
        if "info" in part:
            kh["info"] = part["info"]
        results["benchmarks"].update(part.get("benchmarks", {}))
        results["errors"] += [f"[emulated KVM host] {e}" for e in part.get("errors", [])]
        results["findings"] += [f"[emulated KVM host] {e}" for e in part.get("findings", [])]
        for name, xs in part.get("samples", {}).items():
            save_samples(name, xs)
        if "bench" in part:
            got.append(part["bench"])


def run_vm_part(benches):
    """The benchmarks that need a VM, inside the emulated KVM host (tests/kvmhost/run), this script again with
    BENCH_ONLY=vm; its result lines are merged here. The emulated host can freeze (docs/testing.md): a run that
    stays silent for STALL s (no heartbeat) is stopped, as is one that reaches run's deadline, and the
    benchmarks it did not finish run once more in a fresh emulated host."""
    runner = os.environ.get("BENCH_KVMHOST_RUN", "tests/kvmhost/run")
    smp = os.environ.get("BENCH_KVMHOST_SMP", "1")
    mem = os.environ.get("BENCH_KVMHOST_MEM", "3072")
    deadline = int(os.environ.get("BENCH_KVMHOST_TIMEOUT", "900" if QUICK else "2400"))
    first_s = 300  # until the first line: the emulated host boots
    stall_s = int(os.environ.get("BENCH_KVMHOST_STALL", 12 * ALIVE_S))  # then between lines
    labels = {fn.__name__: name for name, fn, _ in benches}
    todo = list(labels)
    kh = results["kvmhost"] = {"where": WHERE_EMU, "runner": runner, "smp": int(smp), "mem_mib": int(mem),
                               "deadline_s": deadline, "stall_s": stall_s, "attempts": []}
    rc, tail = None, []
    for attempt in (1, 2):
        if not todo:
            break
        env = dict(os.environ, BENCH_ONLY="vm", BENCH_VM_BENCHES=",".join(todo),
                   BENCH_WORK=os.path.join(WORK, f"kvmhost-{attempt}"))
        cmd = [runner, "--timeout", str(deadline), "--smp", smp, "--mem", mem, "--", "python3", os.path.abspath(__file__)]
        log(f"emulated KVM host (attempt {attempt}, {smp} vCPU(s), deadline {deadline} s): "
            + ", ".join(labels[b] for b in todo))
        t = time.time()
        got, tail, stalled = [], [], False
        try:
            p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True, errors="replace", env=env, start_new_session=True)
        except OSError as e:
            rc, tail = None, [repr(e)]
            break
        lines = queue.Queue()

        def reader(out=p.stdout):
            for line in out:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        try:
            stalled = read_parts(p, lines, got, tail, kh, first_s, stall_s)
        except BaseException:  # interrupted (Ctrl-C): the emulated host is in a session of its own: end it too
            stop_group(p)
            raise
        rc = p.wait()
        kh["attempts"].append({"benches": todo, "got": got, "exit": rc, "stalled": stalled,
                               "wall_s": time.time() - t})
        todo = [b for b in todo if b not in got]
        log(f"emulated KVM host: exit {rc} after {time.time() - t:.1f} s"
            + (f"; no result from {', '.join(labels[b] for b in todo)}" if todo else ""))
    for b in todo:
        fail(labels[b], f"no result from the emulated KVM host (tests/kvmhost/run exit {rc}): "
             + " | ".join(tail[-4:]))


def main():
    benches = bench_list()
    if not SPLIT and ONLY == "all":
        benches = [b for b in benches if b[2] != "vm-split"]
    elif ONLY == "host" or (SPLIT and ONLY == "all"):
        benches = [b for b in benches if b[2] == "host"]
    else:  # vm
        benches = [b for b in benches if b[2] != "host"]
        only = os.environ.get("BENCH_VM_BENCHES")
        if only:
            benches = [b for b in benches if b[1].__name__ in only.split(",")]
    if ONLY == "vm":
        return vm_main(benches)
    os.makedirs(OUT, exist_ok=True)
    results["host"] = host_info()
    results["kvm"] = KVM
    log(f"mode {results['host']['mode']}, kvm {results['host']['kvm_flavour']}, {results['host']['cpu']}"
        + (f"; the benchmarks that need a VM run in the {WHERE_EMU}" if SPLIT and ONLY == "all" else ""))
    for name, fn, _ in benches:
        run_one(name, fn)
    if SPLIT and ONLY == "all":
        run_vm_part([b for b in bench_list() if b[2] != "host"])
    results["runtime_s"] = time.time() - T0
    results["host"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    path = os.path.join(OUT, f"{day}{'-quick' if QUICK else ''}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_report
    # quick (smoke) runs must not overwrite the full figures in docs/: their report goes next to the JSON
    docs = DOCS if not QUICK else os.path.join(OUT, f"{day}-quick")
    os.makedirs(docs, exist_ok=True)
    bench_report.write(results, path, WORK, docs)
    log(f"wrote {os.path.join(docs, 'benchmarks.md')}")
    log(f"total {time.time() - T0:.1f} s, {len(results['errors'])} errors")
    for e in results["errors"]:
        log("error: " + e)
    for e in results["findings"]:
        log("finding: " + e)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
