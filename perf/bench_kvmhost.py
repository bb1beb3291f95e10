"""perf/bench_kvmhost.py - the benchmarks that need a VM run inside the emulated KVM host (tests/kvmhost/run):
there bench.py runs with BENCH_ONLY=vm and sends each benchmark's results out on stdout as one checked marker
line (vm_main); here those lines are read and merged into the one result (run_vm_part)."""
import base64
import json
import os
import platform
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import zlib

from bench_common import (ALIVE_MARK, ALIVE_S, IN_KVMHOST, PART_MARK, QEMU, QUICK, SAMPLES, STDOUT_LOCK, WHERE_EMU,
                          WORK, cmd_version, cpu_model, fail, log, results, run_one, save_samples)


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


def run_vm_part(benches, script):
    """The benchmarks that need a VM, inside the emulated KVM host (tests/kvmhost/run), bench.py (script) again with
    BENCH_ONLY=vm; its result lines are merged here. The emulated host can freeze (docs/testing.md): a run that
    stays silent for STALL s (no heartbeat) is stopped, as is one that reaches run's deadline, and the
    benchmarks it did not finish run once more in a fresh emulated host. script: bench.py's absolute path."""
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
        cmd = [runner, "--timeout", str(deadline), "--smp", smp, "--mem", mem, "--", "python3", script]
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
