"""perf/bench_host.py - the benchmarks that need no KVM: exec -> API socket (and its Ember vs QEMU form, which
runs in the emulated KVM host when this machine has no usable /dev/kvm), API latency, the virtio device models,
and the density of idle VMMs."""
import glob
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import ember_http  # noqa: E402 (tests/lib: the HTTP-over-Unix-socket client the tests and benchmarks share)
from bench_common import (BIN, EMBER, QEMU_BASE, QUICK, SPLIT, WORK, fail, finding, floats,  # noqa: E402
                          kill_proc, log, pss_kib, record, save_samples, stats, tool)


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
    cpu = lambda fig, path: next((r["cpu_seconds"] / r["ops"] for r in rows if r["figure"] == fig and r["path"] == path
                                  and r["ops"]), None)
    for fig in sorted({r["figure"] for r in rows if r["figure"].startswith("vsock")}):  # beside a Unix socketpair
        v, raw, cv, craw = get(fig, "virtio"), get(fig, "raw unix"), cpu(fig, "virtio"), cpu(fig, "raw unix")
        if v and raw:
            ratios[fig] = v / raw
        if cv and craw:
            ratios[fig + " (cpu time)"] = craw / cv
    record("virtio_device_models", rows=rows, ratios=ratios, secs_per_figure=float(secs),
           errors=sum(r.get("errors", 0) for r in rows))



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

