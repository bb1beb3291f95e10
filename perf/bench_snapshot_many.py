"""perf/bench_snapshot_many.py - the snapshot benchmarks with more than one VM (issue 12): many clones loaded from
one snapshot at once (restores per second, all answering, PSS per clone), and QEMU microvm restoring the same
counter guest from a migration file beside Ember's restore, as ratios. Helpers and the snapshot itself come from
bench_snapshot.py."""
import json
import os
import select
import signal
import socket
import threading
import time

from bench_common import EMBER, QEMU_BASE, QUICK, TINY_PVH, WORK, fail, kill_proc, log, pss_kib, record, stats
from bench_snapshot import Console, mapping_of, restore_once, snapshot, start, unlink

CLONE_GUESS_MIB = 12  # host memory one clone may take, all counted (VMM, its guest's pages, KVM): sizes N to fit


def mem_available_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) // 1024
    return None


def signal_all(procs, sig):
    for p in procs:
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
            except ProcessLookupError:
                pass


class LineWatch(threading.Thread):
    """Watches the consoles of VMs (more may be added while it runs) until each holds its wanted number of counter
    lines, and stops (SIGSTOP) each VM as soon as it does: the counter guests never idle, and those already done
    would take the CPU from those still on their way (and from the one starting them). t[i]: when VM i got there."""

    def __init__(self, total, timeout):
        super().__init__(daemon=True)
        self.total, self.end = total, time.monotonic() + timeout
        self.lock = threading.Lock()
        self.procs, self.cons, self.want, self.t = [], [], [], []

    def add(self, proc, con, want):
        with self.lock:
            self.procs.append(proc)
            self.cons.append(con)
            self.want.append(want)
            self.t.append(None)

    def check(self, i):
        if self.t[i] is None and len(self.cons[i].times) >= self.want[i]:
            self.t[i] = self.cons[i].times[self.want[i] - 1]
            signal_all([self.procs[i]], signal.SIGSTOP)

    def run(self):
        while time.monotonic() < self.end:
            with self.lock:
                for i in range(len(self.cons)):
                    self.check(i)
                left = {c.fd: i for i, c in enumerate(self.cons) if self.t[i] is None and not c.eof}
                if not left and len(self.cons) == self.total:
                    return
            for fd in select.select(list(left), [], [], 0.05)[0]:
                self.cons[left[fd]].pump()


def b_snapshot_clones():
    n_want = 10 if QUICK else 100
    try:
        snap = snapshot(128)
    except Exception as e:  # noqa
        fail("snapshot_clones", f"no 128 MiB snapshot: {e!r}")
        return
    avail0 = mem_available_mib()
    n = n_want if avail0 is None else max(2, min(n_want, (avail0 - 512) // CLONE_GUESS_MIB))
    if n < n_want:
        log(f"clones: {avail0} MiB available holds {n}, not {n_want} ({CLONE_GUESS_MIB} MiB each, 512 MiB kept)")
    d = os.path.join(WORK, "clones")
    os.makedirs(d, exist_ok=True)
    cmd = [EMBER, "--snapshot-load", snap["state"], "--mem", snap["mem"], "--resume", "--no-api"]
    procs, cons = [], []
    watch = LineWatch(n, 60 + 3 * n)
    watch.start()
    t0 = time.monotonic()
    try:
        for i in range(n):
            procs.append(start(cmd, os.path.join(d, f"{i}.err")))
            cons.append(Console(procs[-1]))
            watch.add(procs[-1], cons[-1], 1)
        t_forked = time.monotonic() - t0
        watch.join()
        first = watch.t
        up = [x - t0 for x in first if x is not None]
        avail_up = mem_available_mib()
        # All of them on at once: each must print one more line (stopped again as it does), then the memory.
        again = LineWatch(n, 60 + 3 * n)
        for p, c in zip(procs, cons):
            again.add(p, c, len(c.times) + 1)
        signal_all(procs, signal.SIGCONT)
        again.start()
        again.join()
        answering = sum(1 for i in range(n) if first[i] is not None and again.t[i] is not None)
        bad = [i for i, c in enumerate(cons) if c.counts and c.counts[0] <= snap["last_count"]]
        pss, written, beyond, mapped = [], [], [], []
        for i, p in enumerate(procs):
            if first[i] is None or p.poll() is not None:
                continue
            try:
                total = pss_kib(p.pid)
                rss, anon = mapping_of(p.pid, snap["mem"])
            except OSError:
                continue
            pss.append(total)
            written.append(anon)
            mapped.append(rss)
            beyond.append(total - anon)
        avail_end = mem_available_mib()
    finally:
        signal_all(procs, signal.SIGTERM)
        signal_all(procs, signal.SIGCONT)
        for p in procs:
            kill_proc(p)
    if not up:
        fail("snapshot_clones", f"none of {n} clones printed a new counter line (see {d})")
        return
    if answering < n:
        fail("snapshot_clones", f"{n - answering} of {n} clones did not answer (see {d})")
    span = max(up)
    per_clone_beyond = stats([x / 1024 for x in beyond])
    record("snapshot_clones", clones=n, clones_wanted=n_want,
           scaled_down=(f"{avail0} MiB available: room for {n} of {n_want} at {CLONE_GUESS_MIB} MiB each "
                        "with 512 MiB kept" if n < n_want else None),
           restored=len(up), answering=answering, not_continuing=len(bad), fork_all_ms=t_forked * 1000,
           all_restored_s=span, restores_per_s=len(up) / span if span else None,
           exec_to_first_line_ms=stats([x * 1000 for x in up]),
           pss_per_clone_mib=stats([x / 1024 for x in pss]),
           written_per_clone_mib=stats([x / 1024 for x in written]),
           mem_file_mapped_per_clone_mib=stats([x / 1024 for x in mapped]),
           pss_beyond_written_per_clone_mib=per_clone_beyond,
           host_mem_available_drop_per_clone_mib=((avail0 - avail_end) / len(up)) if avail0 and avail_end else None,
           host_mem_available_drop_all_up_mib=(avail0 - avail_up) if avail0 and avail_up else None,
           goal_met=(per_clone_beyond["max"] <= 3 and answering == n) if per_clone_beyond else None,
           note=f"N `ember --snapshot-load STATE --mem FILE --resume --no-api` (File backend, one 128 MiB "
                "snapshot of the counter guest) started at once; restores/s = clones restored / time from the "
                "first fork to the last clone's first new counter line. The counter guest never idles, so each "
                "clone is stopped (SIGSTOP) once it has printed its line, leaving the CPU to those still on their "
                "way; then all are continued at once and each must print one more line (answering; it is stopped "
                "again as it does). Memory then, all stopped: PSS (smaps_rollup) per clone; written = the "
                "private (Anonymous) pages of its mapping of the memory file, the guest pages it wrote; beyond "
                "written = PSS minus those (the VMM, its share of the file pages read and of the binary); "
                "MemAvailable drop / N adds what the kernel holds per VM (KVM, page tables). Goal: every clone "
                "answering with <= 3 MiB PSS beyond the pages it wrote")


# ---------------------------------------------------------------- QEMU microvm side by side
class QMP:
    def __init__(self, path, timeout=60):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        end = time.monotonic() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.002)
        self.f = self.s.makefile("rb")
        self.events = []
        self.read()  # greeting
        self.cmd("qmp_capabilities")

    def read(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, **args):
        self.s.sendall(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        while True:
            r = self.read()
            if "error" in r:
                raise RuntimeError(f"QMP {name}: {r['error']}")
            if "return" in r:
                return r["return"]
            self.events.append(r)

    def event(self, name):
        for i, e in enumerate(self.events):
            if e.get("event") == name:
                return self.events.pop(i)
        while True:
            r = self.read()
            if r.get("event") == name:
                return r

    def close(self):
        self.s.close()


def qemu_cmd(mem=128):
    return QEMU_BASE + ["-m", str(mem), "-smp", "1", "-serial", "stdio", "-kernel", TINY_PVH,
                        "-append", "ember-test=counter"]


def qemu_migration_file(d):
    """Boots the counter guest (PVH build) in QEMU microvm and migrates it into a file from QMP, as
    `migrate "exec:cat > FILE"`. Returns the file, the last count printed before, the migration's figures."""
    qs, mig = os.path.join(d, "qmp.sock"), os.path.join(d, "qemu.mig")
    unlink(qs, mig)
    p = start(qemu_cmd() + ["-qmp", f"unix:{qs},server=on,wait=off"], os.path.join(d, "qemu-boot.err"))
    con = Console(p)
    try:
        if not con.wait_lines(3, 120):
            raise RuntimeError(f"QEMU: the counter guest printed {len(con.times)} lines in 120 s")
        q = QMP(qs)
        t = time.monotonic()
        q.cmd("migrate", uri=f"exec:cat > {mig}")
        end = t + 120
        while time.monotonic() < end:
            st = q.cmd("query-migrate")
            if st.get("status") in ("completed", "failed", "cancelled"):
                break
            time.sleep(0.02)
        took = time.monotonic() - t
        if st.get("status") != "completed":
            raise RuntimeError(f"QEMU migrate to a file: {st.get('status')} {st.get('error-desc', '')}")
        time.sleep(0.05)
        con.pump()
        q.close()
    finally:
        kill_proc(p)
    return mig, con.counts[-1], {"migrate_s": took, "file_bytes": os.path.getsize(mig),
                                 "downtime_ms": st.get("downtime"), "total_time_ms": st.get("total-time")}


def exec_to_first_line(cmd, errlog, last_count, timeout=120):
    """fork+exec cmd, time to the first whole new counter line on its console (ms); checks the count goes on."""
    t0 = time.monotonic()
    p = start(cmd, errlog)
    try:
        con = Console(p)
        if not con.wait_lines(1, timeout):
            raise RuntimeError(f"no new counter line within {timeout} s: {' '.join(cmd[:3])}... (see {errlog})")
        if con.counts[0] <= last_count:
            raise RuntimeError(f"count {con.counts[0]} after {last_count} at the snapshot: not a restore")
        return (con.times[0] - t0) * 1000
    finally:
        kill_proc(p)


def qemu_incoming_deferred(d, mig, last_count):
    """QEMU microvm started with -incoming defer and QMP; times migrate-incoming "exec:cat FILE" sent -> the
    RESUME event and -> the first whole new counter line (ms)."""
    qs = os.path.join(d, "qmp-in.sock")
    unlink(qs)
    p = start(qemu_cmd() + ["-qmp", f"unix:{qs},server=on,wait=off", "-incoming", "defer"],
              os.path.join(d, "qemu-defer.err"))
    try:
        con = Console(p)
        q = QMP(qs)
        t0 = time.monotonic()
        q.cmd("migrate-incoming", uri=f"exec:cat {mig}")
        q.event("RESUME")
        t_resume = time.monotonic()
        q.close()
        if not con.wait_lines(1, 120) or con.counts[0] <= last_count:
            raise RuntimeError(f"QEMU -incoming defer: no new counter line ({con.buf[-120:]!r})")
        return (t_resume - t0) * 1000, (con.times[0] - t0) * 1000
    finally:
        kill_proc(p)


def b_snapshot_vs_qemu():
    d = os.path.join(WORK, "vs-qemu")
    os.makedirs(d, exist_ok=True)
    try:
        snap = snapshot(128)
        mig, q_last, mig_info = qemu_migration_file(d)
    except Exception as e:  # noqa
        fail("snapshot_vs_qemu", repr(e))
        return
    reps = 1 if QUICK else 8
    ember_cli = [EMBER, "--snapshot-load", snap["state"], "--mem", snap["mem"], "--resume", "--no-api"]
    qemu_in = qemu_cmd() + ["-incoming", f"exec:cat {mig}"]
    xs = {k: [] for k in ("ember_exec", "qemu_exec", "ember_load", "ember_load_run", "ember_load_line", "qemu_defer",
                          "qemu_defer_line")}
    # One unmeasured round first (the emulator translates code it runs the first time), then both interleaved.
    for rep in range(reps + 1):
        try:
            e1 = exec_to_first_line(ember_cli, os.path.join(d, "ember-cli.err"), snap["last_count"])
            q1 = exec_to_first_line(qemu_in, os.path.join(d, "qemu-in.err"), q_last)
            r = restore_once(snap, "File", "vs-qemu")
            q2, q2l = qemu_incoming_deferred(d, mig, q_last)
        except Exception as e:  # noqa
            fail("snapshot_vs_qemu", f"round {rep}: {e!r}")
            break
        if rep:
            for k, v in (("ember_exec", e1), ("qemu_exec", q1), ("ember_load", r["response_ms"]),
                         ("ember_load_run", r.get("first_kvm_run_ms")),
                         ("ember_load_line", r["first_line_ms"]), ("qemu_defer", q2), ("qemu_defer_line", q2l)):
                xs[k].append(v)
    s = {k: stats(v) for k, v in xs.items()}
    if not s["ember_exec"] or not s["qemu_exec"]:
        return
    sp = lambda q, e: (s[q]["median"] / s[e]["median"]) if s[q] and s[e] and s[e]["median"] else None
    record("snapshot_vs_qemu", mem_mib=128, reps=len(xs["ember_exec"]), qemu_migration=mig_info,
           ember_snapshot_bytes={"state": os.path.getsize(snap["state"]),
                                 "mem_allocated": os.stat(snap["mem"]).st_blocks * 512},
           ember_exec_to_first_line_ms=s["ember_exec"], qemu_exec_to_first_line_ms=s["qemu_exec"],
           ember_load_to_response_ms=s["ember_load"], ember_load_to_first_kvm_run_ms=s["ember_load_run"],
           ember_load_to_first_line_ms=s["ember_load_line"],
           qemu_migrate_incoming_to_resume_ms=s["qemu_defer"],
           qemu_migrate_incoming_to_first_line_ms=s["qemu_defer_line"],
           speedup_exec_to_first_line=sp("qemu_exec", "ember_exec"),
           speedup_request_to_running=sp("qemu_defer", "ember_load"),
           speedup_request_to_first_kvm_run=sp("qemu_defer", "ember_load_run"),
           speedup_request_to_first_line=sp("qemu_defer_line", "ember_load_line"),
           note="the same counter guest, 128 MiB, 1 vCPU (QEMU boots its PVH build, test-guest-pvh.elf), in the "
                "same emulated host, rounds interleaved after one unmeasured round. QEMU microvm (-accel kvm) "
                "boots it and is migrated from QMP with migrate \"exec:cat > FILE\" (live, as QEMU does; its "
                "source stops at the end). exec -> first line: fork+exec of `ember --snapshot-load STATE --mem "
                "FILE --resume --no-api` / of QEMU with -incoming \"exec:cat FILE\", to the guest's first whole new "
                "counter line. request -> running: PUT /snapshot/load (resume_vm) sent to its answer (and to vCPU 0's "
                "first KVM_RUN, the issue's restore latency, from ember --stats) on a listening ember / QMP migrate-incoming \"exec:cat FILE\" sent to the RESUME event on a QEMU started "
                "with -incoming defer; and both to the first new line. Speed-up = QEMU median / Ember median")
