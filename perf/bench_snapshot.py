"""perf/bench_snapshot.py - the snapshot benchmarks (issue 12) that need one VM at a time: create latency (Full and
Diff) with the files' sizes, restore latency (128 MiB and 1 GiB guests, File and Uffd backends), and the cost of
one restore (system calls, bytes taken from the memory file). Clones and the QEMU comparison are in
bench_snapshot_many.py. Every guest is the tiny test guest's `counter` test (build/test-guest.elf, ember-test=counter,
1 vCPU), which prints "EMBER-TEST: counter cpu0: N" every 2^21 counts. Without a usable /dev/kvm these run inside
the emulated KVM host, where their times are emulator times."""
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import time

from bench_common import EMBER, QUICK, TINY, WORK, fail, kill_proc, record, stats

HANDLER = os.path.join(os.path.dirname(EMBER), "ember-uffd-handler")
# A counter line printed whole after the snapshot: it starts right after a newline (or at the start of the
# output); the tail of a line the snapshot cut in two does not count as new.
LINE_RE = re.compile(rb"(?<![^\n])EMBER-TEST: counter cpu0: (\d+)\n")
FIRST_RUN_RE = re.compile(r"start to first KVM_RUN: [-0-9.]+ ms \(CLOCK_MONOTONIC ([0-9.]+) s\)")
SIZES = (128, 1024)
BACKENDS = ("File", "Uffd")
SNAPS = {}  # mem MiB -> the snapshot made for it (shared by every snapshot benchmark of this run)


def unlink(*paths):
    for p in paths:
        try:
            os.unlink(p)
        except OSError:
            pass


# ---------------------------------------------------------------- HTTP over the API socket, consoles
def http_request(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else b""
    return (f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


def http_parse(buf, eof=False):
    """(status, body) once buf holds a whole response, else None."""
    head, sep, rest = buf.partition(b"\r\n\r\n")
    if not sep:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    code = int(m.group(1)) if m else 0
    cl = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
    if cl and len(rest) < int(cl.group(1)):
        return None
    if not cl and code not in (204, 304) and not eof:
        return None
    return code, rest.decode(errors="replace")


def api(sock_path, method, path, body=None, timeout=60):
    """One request on its own connection: (status, body, seconds from sending to the whole answer)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        buf, t = b"", time.monotonic()
        s.sendall(http_request(method, path, body))
        while True:
            c = s.recv(65536)
            r = http_parse(buf + c, eof=not c)
            buf += c
            if r or not c:
                return (r or (0, buf.decode(errors="replace")))[0], (r or (0, ""))[1], time.monotonic() - t
    finally:
        s.close()


def wait_socket(path, proc, timeout=30):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            return False
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            return True
        except OSError:
            time.sleep(0.002)
        finally:
            s.close()
    return False


def api_ok(sock_path, method, path, body=None, want=204):
    code, text, dt = api(sock_path, method, path, body)
    if code != want:
        raise RuntimeError(f"{method} {path}: {code} {text[:200]}")
    return dt


class Console:
    """A VMM's serial console on a pipe, read without blocking: when each whole counter line arrived, and its count."""

    def __init__(self, proc):
        self.fd = proc.stdout.fileno()
        os.set_blocking(self.fd, False)
        self.buf, self.times, self.counts, self.eof = b"", [], [], False

    def pump(self):
        try:
            c = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not c:
            self.eof = True
            return
        now = time.monotonic()
        self.buf += c
        counts = [int(x) for x in LINE_RE.findall(self.buf)]
        self.times += [now] * (len(counts) - len(self.times))
        self.counts = counts

    def wait_lines(self, n, timeout):
        end = time.monotonic() + timeout
        while len(self.times) < n and not self.eof and time.monotonic() < end:
            if select.select([self.fd], [], [], max(0.0, min(1.0, end - time.monotonic())))[0]:
                self.pump()
        return len(self.times) >= n


def start(cmd, stderr_path, stdout=subprocess.PIPE):
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=open(stderr_path, "wb"))


def latencies(metrics_path):
    """latencies_us of the last metrics line ember flushed, or None."""
    try:
        lines = open(metrics_path).read().splitlines()
        return json.loads(lines[-1]).get("latencies_us") if lines else None
    except (OSError, ValueError):
        return None


def flush_latencies(sock, metrics_path):
    api_ok(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    return latencies(metrics_path)


def file_sizes(path):
    st = os.stat(path)
    return {"bytes": st.st_size, "allocated_bytes": st.st_blocks * 512}


# ---------------------------------------------------------------- a snapshot, and its create latencies
def make_snapshot(mem):
    """Boots the counter guest with mem MiB (dirty page tracking on, for Diff), takes reps Full and Diff snapshots
    (the guest runs on between them) and keeps the last Full one. Returns the snapshot and the create figures."""
    d = os.path.join(WORK, f"snap-{mem}")
    os.makedirs(d, exist_ok=True)
    sock, metrics = os.path.join(d, "api.sock"), os.path.join(d, "metrics")
    unlink(sock, metrics)
    p = start([EMBER, "--api-sock", sock], os.path.join(d, "ember.err"))
    con = Console(p)
    reps = 1 if QUICK else 5
    times = {"Full": [], "Diff": []}
    lat = {"Full": [], "Diff": []}
    try:
        if not wait_socket(sock, p):
            raise RuntimeError(f"ember --api-sock did not listen (see {d}/ember.err)")
        api_ok(sock, "PUT", "/metrics", {"metrics_path": metrics})
        api_ok(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem, "track_dirty_pages": True})
        api_ok(sock, "PUT", "/boot-source", {"kernel_image_path": TINY, "boot_args": "ember-test=counter"})
        api_ok(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        if not con.wait_lines(3, 120):
            raise RuntimeError(f"the counter guest printed {len(con.times)} lines in 120 s")
        for rep in range(reps):
            for kind in ("Full", "Diff"):
                api_ok(sock, "PATCH", "/vm", {"state": "Paused"})
                con.pump()
                dt = api_ok(sock, "PUT", "/snapshot/create",
                            {"snapshot_type": kind, "snapshot_path": os.path.join(d, f"{kind}.state"),
                             "mem_file_path": os.path.join(d, f"{kind}.mem")})
                times[kind].append(dt * 1000)
                lat[kind].append(flush_latencies(sock, metrics))
                last = rep == reps - 1 and kind == "Full"
                if last:  # the one kept: the count the guest had printed when it was taken
                    time.sleep(0.05)
                    con.pump()
                    last_count = con.counts[-1]
                api_ok(sock, "PATCH", "/vm", {"state": "Resumed"})
                if not con.wait_lines(len(con.times) + 1, 60):
                    raise RuntimeError(f"after a {kind} snapshot the guest printed nothing for 60 s")
    finally:
        kill_proc(p)
    out = {"mem_mib": mem, "reps": reps}
    for kind in ("Full", "Diff"):
        key = "full" if kind == "Full" else "diff"
        out[key] = {"api_round_trip_ms": stats(times[kind]),
                    f"{key}_create_snapshot_us": stats([x.get(f"{key}_create_snapshot") for x in lat[kind] if x]),
                    f"vmm_{key}_create_snapshot_us": stats([x.get(f"vmm_{key}_create_snapshot")
                                                            for x in lat[kind] if x]),
                    "state_file": file_sizes(os.path.join(d, f"{kind}.state")),
                    "mem_file": file_sizes(os.path.join(d, f"{kind}.mem"))}
    snap = {"mem_mib": mem, "dir": d, "state": os.path.join(d, "Full.state"), "mem": os.path.join(d, "Full.mem"),
            "last_count": last_count}
    return snap, out


def snapshot(mem):
    """The snapshot of a mem MiB counter guest, made once per run; a failure is kept too (and raised again)."""
    if mem not in SNAPS:
        try:
            SNAPS[mem] = make_snapshot(mem)
        except Exception as e:  # noqa: kept, so that later benchmarks do not boot and fail again
            SNAPS[mem] = e
    if isinstance(SNAPS[mem], Exception):
        raise SNAPS[mem]
    return SNAPS[mem][0]


# ---------------------------------------------------------------- one restore
def mapping_of(pid, path):
    """Rss and Anonymous (KiB) of pid's mappings of path (smaps)."""
    rss = anon = 0
    cur = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$", line)
            if m:
                cur = m.group(1).strip() == path
            elif cur and line.startswith("Rss:"):
                rss += int(line.split()[1])
            elif cur and line.startswith("Anonymous:"):
                anon += int(line.split()[1])
    return rss, anon


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            out[k] = int(v)
    return out


def handler_stats(text):
    m = re.search(r"(\d+) fault\(s\) served, (\d+) page\(s\) copied, (\d+) page\(s\) zeroed", text)
    return {"faults": int(m.group(1)), "pages_copied": int(m.group(2)), "pages_zeroed": int(m.group(3))} if m else None


def restore_once(snap, backend, tag, trace=None):
    """ember --api-sock, then PUT /snapshot/load (resume_vm) timed to its answer and to the guest's first whole new
    counter line. trace: a file prefix: ember (and the handler) run under strace -f -ttt, writing TRACE.ember
    (TRACE.handler); their times are then strace's, not figures."""
    d = os.path.join(WORK, f"restore-{tag}")
    os.makedirs(d, exist_ok=True)
    sock, usock, metrics = (os.path.join(d, n) for n in ("api.sock", "uffd.sock", "metrics"))
    unlink(sock, usock, metrics)
    st = ["strace", "-f", "-qq", "-ttt", "-o"] if trace else []
    h = None
    if backend == "Uffd":
        h = start((st + [trace + ".handler"] if trace else []) + [HANDLER, usock, snap["mem"]],
                  os.path.join(d, "handler.err"), stdout=subprocess.DEVNULL)
        end = time.monotonic() + 30
        while not os.path.exists(usock) and h.poll() is None and time.monotonic() < end:
            time.sleep(0.002)
    p = start((st + [trace + ".ember"] if trace else []) + [EMBER, "--api-sock", sock, "--stats"],
              os.path.join(d, "ember.err"))
    con = Console(p)
    out = {}
    try:
        if not wait_socket(sock, p):
            raise RuntimeError(f"ember --api-sock did not listen (see {d}/ember.err)")
        api_ok(sock, "PUT", "/metrics", {"metrics_path": metrics})
        body = {"snapshot_path": snap["state"], "resume_vm": True,
                "mem_backend": {"backend_type": backend, "backend_path": usock if h else snap["mem"]}}
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        buf, resp, t0 = b"", None, time.monotonic()
        s.sendall(http_request("PUT", "/snapshot/load", body))
        end = t0 + 60
        while (resp is None or not con.times) and time.monotonic() < end and not con.eof:
            fds = ([s] if resp is None else []) + [con.fd]
            for r in select.select(fds, [], [], 1.0)[0]:
                if r is s:
                    c = s.recv(65536)
                    buf += c
                    got = http_parse(buf, eof=not c)
                    if got or not c:
                        resp, t_resp = got or (0, buf.decode(errors="replace")), time.monotonic()
                else:
                    con.pump()
        s.close()
        if resp is None or resp[0] != 204:
            raise RuntimeError(f"PUT /snapshot/load ({backend}): {resp}")
        if not con.times:
            raise RuntimeError(f"no new counter line within 60 s of the load ({backend}, see {d})")
        if con.counts[0] <= snap["last_count"] or b"counting" in con.buf or b"FAIL" in con.buf:
            raise RuntimeError(f"the restored guest did not continue: first count {con.counts[0]} after "
                               f"{snap['last_count']} at the snapshot; console {con.buf[:120]!r}")
        out = {"response_ms": (t_resp - t0) * 1000, "first_line_ms": (con.times[0] - t0) * 1000}
        if not trace:
            rss, anon = mapping_of(p.pid, snap["mem"])
            io = proc_io(p.pid)
            out.update(mem_file_mapped_kib=rss if backend == "File" else None, guest_written_kib=anon,
                       rchar=io.get("rchar"), read_bytes=io.get("read_bytes"))
            con.wait_lines(2, 30)
            if len(con.times) >= 2:
                out["counter_step_ms"] = (con.times[1] - con.times[0]) * 1000
        out["latencies_us"] = flush_latencies(sock, metrics)
    finally:
        stop(p, traced=bool(trace))
        # --stats: when vCPU 0 entered KVM_RUN, on the clock time.monotonic() reads (CLOCK_MONOTONIC)
        m = FIRST_RUN_RE.search(open(os.path.join(d, "ember.err"), errors="replace").read())
        if m and out.get("response_ms") is not None and float(m.group(1)) > 0:
            out["first_kvm_run_ms"] = (float(m.group(1)) - t0) * 1000
        if h is not None:
            try:
                h.wait(10)
            except subprocess.TimeoutExpired:
                stop(h, traced=bool(trace))
            out["handler"] = handler_stats(open(os.path.join(d, "handler.err")).read())
    return out


def stop(p, traced=False):
    """Ends a VMM (or handler). Under strace, the traced program itself: strace, told to end, would only let go of
    it and leave it running."""
    if traced and p.poll() is None:
        try:
            kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
            for k in kids:
                os.kill(int(k), signal.SIGTERM)
            p.wait(10)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    kill_proc(p)


# ---------------------------------------------------------------- the benchmarks
def b_snapshot_create():
    for mem in SIZES:
        try:
            snapshot(mem)
        except Exception as e:  # noqa: the other size may still work
            fail("snapshot_create", f"{mem} MiB: {e!r}")
    made = {str(m): v[1] for m, v in SNAPS.items() if not isinstance(v, Exception)}
    if made:
        record("snapshot_create", sizes=made,
               note="PUT /snapshot/create round trip on a paused VM (the tiny guest's `counter` test, 1 vCPU, "
                    "dirty page tracking on), Full then Diff with the guest running in between, each repeated; "
                    "also ember's latencies_us metrics (full_/diff_create_snapshot: the whole request; vmm_: the "
                    "VM's own work). Sizes of the last pair: apparent and allocated bytes (the memory file is "
                    "sparse: only non-zero pages, for a Diff only the pages written since the Full one)")


def b_snapshot_restore():
    reps = 2 if QUICK else 15
    samples = {(m, b): [] for m in SIZES for b in BACKENDS}
    errors = {}
    snaps = {}
    for m in SIZES:
        try:
            snaps[m] = snapshot(m)
        except Exception as e:  # noqa
            fail("snapshot_restore", f"{m} MiB: no snapshot: {e!r}")
    # One unmeasured restore of each kind first (the emulator translates code it runs the first time), then the
    # kinds interleaved, so that load on the host spreads over all of them alike.
    for rep in range(reps + 1):
        for (m, b), xs in samples.items():
            if m not in snaps or (m, b) in errors:
                continue
            try:
                r = restore_once(snaps[m], b, f"{m}-{b}")
                if rep:
                    xs.append(r)
            except Exception as e:  # noqa
                errors[(m, b)] = repr(e)
                fail("snapshot_restore", f"{m} MiB, {b}: {e!r}")
    out = {}
    for (m, b), xs in samples.items():
        if not xs:
            continue
        col = lambda k: [x.get(k) for x in xs]
        lat = lambda k: [(x.get("latencies_us") or {}).get(k) for x in xs]
        h = [x["handler"] for x in xs if x.get("handler")]
        out[f"{m}_{b}"] = {
            "mem_mib": m, "backend": b, "reps": len(xs),
            "load_sent_to_response_ms": stats(col("response_ms")),
            "load_sent_to_first_kvm_run_ms": stats(col("first_kvm_run_ms")),
            "load_sent_to_first_counter_line_ms": stats(col("first_line_ms")),
            "counter_step_ms": stats(col("counter_step_ms")),
            "load_snapshot_us": stats(lat("load_snapshot")), "vmm_load_snapshot_us": stats(lat("vmm_load_snapshot")),
            "mem_file_mapped_kib": stats(col("mem_file_mapped_kib")) if b == "File" else None,
            "uffd_pages_copied": stats([x["pages_copied"] for x in h]) if b == "Uffd" else None,
            "guest_written_kib": stats(col("guest_written_kib")),
            "ember_rchar_bytes": stats(col("rchar")), "ember_read_bytes": stats(col("read_bytes"))}
    ratios = {}
    for b in BACKENDS:
        small, big = out.get(f"128_{b}"), out.get(f"1024_{b}")
        if small and big:
            ratios[b] = {k: (big[k]["median"] / small[k]["median"]) if big[k] and small[k] and small[k]["median"]
                         else None for k in ("load_sent_to_response_ms", "load_sent_to_first_kvm_run_ms",
                                             "load_snapshot_us",
                                             "load_sent_to_first_counter_line_ms")}
    if out:
        record("snapshot_restore", configs=out, gib_over_128mib=ratios,
               note="a fresh `ember --api-sock --stats` (metrics configured) gets PUT /snapshot/load with "
                    "resume_vm true; timed from sending the request to the whole answer, to vCPU 0's first KVM_RUN "
                    "(the issue's restore latency: ember --stats prints its CLOCK_MONOTONIC time, the clock the "
                    "client's time.monotonic() reads), and to the first whole counter line the "
                    "guest prints after it (that includes the rest of the counting step the snapshot cut, up to "
                    "one counter_step_ms); load_snapshot_us / vmm_load_snapshot_us: ember's latencies_us metrics "
                    "(the whole request; the VM's own restore). One unmeasured restore of each kind first, then "
                    "the kinds interleaved. Uffd: ember-uffd-handler serves the memory file. mem_file_mapped_kib: "
                    "Rss of ember's mapping of the memory file at the first new line (File: pages the guest "
                    "touched, each faulted in from the page cache, none read(2)); uffd_pages_copied: pages the "
                    "handler copied in by then; guest_written_kib: those of them the guest wrote (private); "
                    "ember_rchar_bytes: what ember read(2) (the state file, the requests); ember_read_bytes: "
                    "bytes fetched from storage (0 when the files sit in the page cache)")


def strace_calls(trace):
    """(time, name, arguments, resumed) for each line of strace -f -ttt output about a system call: a call another
    thread interrupted shows twice, its start and (resumed true) its end, where strace shows what it read."""
    for line in open(trace, errors="replace"):
        m = re.match(r"^\d+\s+([0-9.]+)\s+(?:(\w+)\(|<\.\.\. (\w+) resumed>)(.*)$", line)
        if m:
            yield float(m.group(1)), m.group(2) or m.group(3), m.group(4), m.group(3) is not None


def restore_window(trace):
    """From ember's trace: when it read the PUT /snapshot/load request and when it wrote the answer, the calls in
    between (all threads) by name, and how many calls it made from exec to the answer."""
    t0 = t1 = None
    names, before = {}, 0
    for t, name, rest, resumed in strace_calls(trace):
        before += 0 if resumed else 1
        if t0 is None:
            if name in ("read", "recvfrom", "recvmsg") and "PUT /snapshot/load" in rest:
                t0 = t
            continue
        if not resumed:
            names[name] = names.get(name, 0) + 1
        if name in ("write", "writev", "sendto", "sendmsg") and re.search(r'"HTTP/1\.[01] \d', rest):
            t1 = t
            break
    if t1 is None:
        raise RuntimeError(f"no PUT /snapshot/load request and answer in {trace}")
    return t0, t1, dict(sorted(names.items(), key=lambda kv: -kv[1])), before


def b_snapshot_syscalls():
    """System calls per restore (strace -f, 128 MiB, both backends)."""
    try:
        snap = snapshot(128)
    except Exception as e:  # noqa
        fail("snapshot_restore_syscalls", f"no 128 MiB snapshot: {e!r}")
        return
    if not shutil.which("strace"):
        fail("snapshot_restore_syscalls", "strace is not installed where this ran (apt-get install strace)")
        return
    out = {}
    for b in BACKENDS:
        trace = os.path.join(WORK, f"strace-restore-{b}")
        try:
            unlink(trace + ".ember", trace + ".handler")
            r = restore_once(snap, b, f"strace-{b}", trace=trace)
            t0, t1, names, upto = restore_window(trace + ".ember")
            out[b] = {"syscalls": sum(names.values()), "by_name": dict(list(names.items())[:10]),
                      "exec_to_answer": upto, "request_to_answer_ms_under_strace": (t1 - t0) * 1000}
            if b == "Uffd":
                calls = [t for t, _, _, resumed in strace_calls(trace + ".handler") if not resumed]
                hs = r.get("handler") or {}
                out[b]["handler_in_window"] = sum(1 for t in calls if t0 <= t <= t1)
                out[b]["handler_whole_life"] = len(calls)
                out[b]["handler_faults_whole_life"] = hs.get("faults")
        except Exception as e:  # noqa
            fail("snapshot_restore_syscalls", f"{b}: {e!r}")
    if out:
        record("snapshot_restore_syscalls", mem_mib=128, backends=out,
               note="`strace -f -ttt` on ember --api-sock: the system calls of all its threads from reading the "
                    "PUT /snapshot/load request to writing its answer (resume_vm true, so the vCPU thread's first "
                    "KVM_RUN and exits are among them); exec_to_answer: all of them from exec (start-up, API "
                    "set-up, the request) to the answer. Uffd: also ember-uffd-handler's calls in the same window "
                    "(same clock), and over its whole life with the faults it served (it ran until ember was "
                    "stopped after the guest's first new counter line)")
