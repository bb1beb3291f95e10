"""perf/bench_report.py - docs/benchmarks.md and the PNG charts from a bench.py result."""
import os
import subprocess


def f(x, d=2):
    return "n/a" if x is None else f"{x:.{d}f}"


def s3(st, d=2):
    return "n/a" if not st else f"{f(st['min'], d)} / {f(st['median'], d)} / {f(st['p99'], d)} (n={st['n']})"


def verdict(ok):
    return "n/a" if ok is None else ("met" if ok else "**not met**")


EMU = "emulated KVM host"


def emulated(rec):
    return bool(rec) and str(rec.get("where", "host")).startswith("emulated")


def where(rec, time=True):
    """The table's 'where' cell: this machine, or the emulated KVM host (where times are emulator times)."""
    if not rec:
        return ""
    if emulated(rec):
        return EMU + (" (emulator time)" if time else "")
    return "host"


def tverdict(ok, rec):
    """A target in absolute time is judged only where the time is real, not on the emulator."""
    return "n/a (emulator time)" if emulated(rec) else verdict(ok)


def ratio(a, b):
    return a / b if a is not None and b else None


def charts(work, docs, res):
    gp = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench.gp")
    made = []
    if subprocess.run(["which", "gnuplot"], capture_output=True).returncode:
        return made
    p = subprocess.run(["gnuplot", "-e", f"work='{work}'; docs='{docs}'", gp], capture_output=True, text=True)
    if p.returncode:
        print("gnuplot:", p.stderr[-500:])
    for n in ("benchmarks-latency.png", "benchmarks-density.png"):
        if os.path.exists(os.path.join(docs, n)):
            made.append(n)
    return made


def write(res, json_path, work, docs):
    b, h = res["benchmarks"], res["host"]
    rows = []
    g = lambda *k: _get(b, *k)

    ex = b.get("exec_to_api_socket_ms")
    e = g("exec_to_api_socket_ms", "ember")
    q = g("exec_to_api_socket_ms", "qemu_qmp_greeting")
    sp = g("exec_to_api_socket_ms", "speedup_median")
    rows.append(("exec → API socket accepting (ms): Ember", s3(e), where(ex), "≤ 2 ms",
                 tverdict(e and e["median"] <= 2, ex)))
    if q:
        rows.append(("exec → QMP greeting (ms): QEMU -S", s3(q), where(ex), "", ""))
        rows.append(("… Ember speed-up over QEMU (median)", f(sp, 1) + "×", where(ex, False), "≥ 5×",
                     verdict(sp and sp >= 5)))
    exv = b.get("exec_to_api_socket_vs_qemu_ms")
    if exv:  # no usable /dev/kvm on the host: the comparison with QEMU in the emulated KVM host
        rows.append(("exec → API socket accepting (ms): Ember, beside QEMU", s3(exv.get("ember")), where(exv), "", ""))
        rows.append(("exec → QMP greeting (ms): QEMU -S", s3(exv.get("qemu_qmp_greeting")), where(exv), "", ""))
        rows.append(("… Ember / QEMU (median)", f(exv.get("ember_over_qemu_median"), 3)
                     + f" (speed-up {f(exv.get('speedup_median'), 1)}×)", where(exv, False), "≥ 5× speed-up",
                     verdict(exv.get("speedup_median") and exv["speedup_median"] >= 5)))

    ist = b.get("instance_start_ms")
    rt = g("instance_start_ms", "api_put_actions_round_trip")
    stl = g("instance_start_ms", "ember_stat_process_start_to_first_kvm_run")
    rows.append(("PUT /actions InstanceStart round trip, tiny guest (ms)", s3(rt, 3), where(ist), "≤ 1 ms",
                 tverdict(rt and rt["median"] <= 1, ist)))
    lb_ = g("instance_start_ms", "instancestart_sent_to_first_kvm_run")
    rows.append(("InstanceStart sent → first KVM_RUN (ms)", s3(lb_, 3), where(ist), "≤ 1 ms",
                 tverdict(lb_ and lb_["median"] <= 1, ist)))
    rows.append(("ember --stats 'start to first KVM_RUN' (from main(), API mode, ms)", s3(stl, 3), where(ist),
                 "(info)", ""))

    m = b.get("vmm_memory_overhead_1vcpu_128mib", {})
    me, mq = m.get("ember", {}).get("vmm_overhead_kib"), m.get("qemu", {}).get("vmm_overhead_kib")
    r = m.get("ember_over_qemu")
    wm = where(m, False)
    rows.append(("VMM memory overhead, 1 vCPU 128 MiB, Linux guest (MiB): Ember",
                 f(me / 1024 if me else None), wm, "≤ 1.5 MiB", verdict(me and me / 1024 <= 1.5)))
    rows.append(("… QEMU (MiB)", f(mq / 1024 if mq else None), wm, "", ""))
    rows.append(("… Ember / QEMU", f(r, 3), wm, "≤ 0.1×", verdict(r and r <= 0.1)))
    for who in ("ember", "qemu"):
        top = m.get(who, {}).get("overhead_top_kib")
        if top:
            rows.append((f"… {who} overhead, largest parts (KiB Pss)",
                         ", ".join(f"{k} {v}" for k, v in list(top.items())[:5]), wm, "", ""))

    lrt = b.get("launch_rate_tiny_guest")
    lf = g("launch_rate_tiny_guest", "to_first_output")
    if lf:
        rows.append((f"launch rate to the guest's first output, {lf['launches']} tiny guests at once "
                     f"(VMs/s; per core of {lf['cores']})",
                     f"{f(lf['per_s'], 1)}; {f(lf['per_s_per_core'], 1)}/core; exec→first output ms "
                     f"{s3(lf['exec_to_first_output_ms'], 1)}; all stopped in {f(lf['stop_all_ms'], 0)} ms",
                     where(lrt), "≥ 50 /s per core", tverdict(lf["per_s_per_core"] >= 50, lrt)))
    lq = g("launch_rate_tiny_guest", "qemu_to_first_output")
    if lq:
        rows.append((f"… QEMU microvm, the same guest (PVH build), {lq['launches']} at once (VMs/s; per core)",
                     f"{f(lq['per_s'], 1)}; {f(lq['per_s_per_core'], 1)}/core; exec→first output ms "
                     f"{s3(lq['exec_to_first_output_ms'], 1)}", where(lrt), "", ""))
    lr_ = g("launch_rate_tiny_guest", "ember_over_qemu")
    if lr_:
        rows.append((f"… Ember / QEMU, {lr_['launches_at_once']} at once: exec→first output (median); launches/s",
                     f"{f(lr_['exec_to_first_output_median'], 3)}; {f(lr_['launches_per_s'], 2)}",
                     where(lrt, False), "(compare)", ""))
    for par in (1, 2):
        lr = g("launch_rate_tiny_guest", f"parallel_{par}")
        if lr:
            rows.append((f"whole life cycles, tiny guest, {par} at a time (VMs/s; per core)",
                         f"{f(lr['per_s'], 1)}; {f(lr['per_s_per_core'], 1)}/core; launch→exit ms {s3(lr['launch_to_exit_ms'], 1)}"
                         + (f"; **{lr['failed']} failed** (see Findings)" if lr.get("failed") else ""),
                         where(lrt), "(info)", ""))

    api = b.get("api_latency", {})
    for mode in ("seccomp_on", "seccomp_off"):
        if mode not in api:
            continue
        if not api[mode].get("ember_survived", True):
            x = api[mode].get("clients_1", {})
            rows.append((f"API latency, 1 client, {mode.replace('_', ' ')} (µs)",
                         s3(x.get("latency_us"), 0) + f"; ok {x.get('ok')}/{x.get('requests')}", where(api),
                         "(info)", ""))
            rows.append((f"API, 100 clients, {mode.replace('_', ' ')}",
                         "**ember was killed**: " + api[mode].get("ember_stderr", "").replace("\n", " ")[:160]
                         + " (see Findings)", where(api), "p99 ≤ 200 µs", "**not met**"))
            continue
        for key, label in (("clients_1", "1 client"), ("clients_100", "100 clients, open loop"),
                           ("clients_100_saturation", "100 clients, closed loop (saturation)")):
            x = api[mode].get(key, {})
            if not x:
                continue
            lat = x.get("latency_us")
            rate = x.get("open_loop_req_per_s")
            if rate:
                label += f" at {rate} req/s"
            tgt = "p99 ≤ 200 µs" if key == "clients_100" else "(info)"
            ok = tverdict(lat and x.get("bad") == 0 and lat["p99"] <= 200, api) if key == "clients_100" else ""
            rows.append((f"API latency, {label}, {mode.replace('_', ' ')} (µs)",
                         s3(lat, 0) + f"; ok {x.get('ok')}/{x.get('requests')}; {x.get('req_per_s')} req/s",
                         where(api), tgt, ok))

    v = b.get("virtio_device_models", {})
    for k, val in (v.get("ratios") or {}).items():
        rows.append((f"virtio {k} (ratio to raw)", f(val), where(v, False), "≥ 0.90", verdict(val >= 0.9)))
    rl = b.get("rate_limiter", {})  # perf/bench_limits.py: ratios reported, not asserted
    for dev, val in (rl.get("overhead_ratio") or {}).items():
        cpu = (rl.get("overhead_cpu_ratio") or {}).get(dev)
        rows.append((f"rate limiter never dry / off, {dev} (ops/s; CPU per op)", f"{f(val, 3)}; {f(cpu, 3)}",
                     where(rl, False), "≥ 0.97 (report)", ""))
    for k, t in (rl.get("tracking") or {}).items():
        rows.append((f"rate limiter {k}: achieved / configured", f(t["ratio"], 3), where(rl, False), "(report)", ""))
    bl = b.get("balloon_inflate", {})
    if bl:
        rows.append(("balloon inflate (MiB/s); RSS touched -> after (MiB)",
                     f"{f(bl.get('mib_per_sec'), 0)}; {bl.get('rss_touched_mib')} -> {bl.get('rss_after_mib')}",
                     where(bl, False), "(report)", ""))

    lb = b.get("linux_boot_to_init_s")
    if lb:
        rows.append(("Linux boot to 'Run /sbin/init' (s): Ember", s3(lb.get("ember"), 1), where(lb), "(compare)", ""))
        rows.append(("… QEMU microvm (s)", s3(lb.get("qemu"), 1), where(lb), "", ""))
        rr = lb.get("ember_over_qemu_median")
        if rr is None and lb.get("ember") and lb.get("qemu"):
            rr = ratio(lb["ember"]["median"], lb["qemu"]["median"])
        rows.append(("… Ember / QEMU (median)", f(rr, 3), where(lb, False), "(compare)", ""))
    else:
        rows.append(("Linux boot to 'Run /sbin/init'", "skipped (QUICK mode)", "", "", ""))

    dn = b.get("density_idle")
    dens = g("density_idle", "rows") or []
    for d in dens:
        rows.append((f"density, N={d['n']} idle embers: launch rate (VMs/s); PSS per VM (KiB, min/med/p99)",
                     f"{f(d['launch_per_s'], 1)}; {s3(d['pss_per_vm_kib'], 0)}; leftovers {d['leftover_processes']} "
                     f"procs, {d['leftover_sockets']} sockets", where(dn), "(report)", ""))

    pics = charts(work, docs, res) if work and any(n.endswith(".dat") for n in os.listdir(work)) else \
        [n for n in ("benchmarks-latency.png", "benchmarks-density.png") if os.path.exists(os.path.join(docs, n))]
    prof = b.get("host_profile_tiny_guest", {})
    L = []
    L.append("# Benchmarks\n")
    L.append("Generated by `make bench` (`perf/bench.sh`; `make bench QUICK=1` for the short smoke version). "
             "Targets are reported, never asserted. Raw results: `" + os.path.relpath(json_path, os.path.dirname(docs))
             + "`.\n")
    L.append(f"- date {h['date']}, mode **{h['mode']}**, total runtime {res.get('runtime_s', 0):.0f} s")
    L.append(f"- host kernel {h['host_kernel']}, CPU {h['cpu']} × {h['cpus']}, {h['mem_total_mib']} MiB, "
             f"KVM flavour **{h['kvm_flavour']}**, load average at start {' '.join(h['loadavg_at_start'])}"
             f", at end {' '.join(h.get('loadavg_at_end', ['?']))}")
    L.append(f"- ember {h['ember_version']} (git {h['ember_git']}); {h['qemu_version']}; {h['gnuplot_version']}")
    kh = res.get("kvmhost")
    any_emu = any(emulated(x) for x in b.values() if isinstance(x, dict))
    if kh:
        i = kh.get("info", {})
        att = kh.get("attempts", [])
        L.append(f"- emulated KVM host (`tests/kvmhost`): QEMU TCG `-cpu max` ({i.get('cpu', '?')}) × {kh.get('smp')}, "
                 f"{kh.get('mem_mib')} MiB, kernel {i.get('kernel', '?')}, KVM `{i.get('kvm_module', '?')}` "
                 f"(nested {i.get('kvm_nested', '?')}); {i.get('qemu_version', '?')} as the QEMU microvm compared "
                 f"there; {len(att)} run(s), " + ", ".join(f"{a['wall_s']:.0f} s (exit {a['exit']})" for a in att))
    for mr in res.get("merged", []):
        L.append(f"- figures {', '.join(f'`{k}`' for k in mr['benchmarks'])} come from `{mr['path']}`: a run of those "
                 f"benchmarks alone ({mr['date']}, mode {mr['mode']}, ember git {mr['ember_git']}, load average at "
                 f"start {' '.join(mr.get('loadavg') or ['?'])}, at end {' '.join(mr.get('loadavg_end') or ['?'])})")
    L.append("")
    if any_emu and not kh:  # `make bench` run inside the emulated host itself
        L.append("**Where the figures come from.** This run was made inside the emulated KVM host "
                 "(`tests/kvmhost`, see `docs/testing.md`): every time below is an **emulator time** (10 to 50 "
                 "times slower than on hardware), targets in absolute time are not judged (n/a), and the "
                 "Ember / QEMU ratios are the figures to read.\n")
    elif any_emu:
        L.append(f"**Where the figures come from.** KVM on this machine: {h.get('kvm_flavour')} (usable means a "
                 "character device `/dev/kvm` that opens read-write). The figures that need no KVM were measured on it (*host*: exec → API socket, "
                 "API latency, the virtio device models, density of idle VMMs). Those that need a VM were measured "
                 "inside the emulated KVM host (`tests/kvmhost`, see `docs/testing.md`: QEMU's TCG emulator with "
                 "`-cpu max`, nested SVM, the emulated kernel's `kvm_amd`), side by side with QEMU microvm "
                 "(`-accel kvm`) on that same KVM. Everything there runs 10 to 50 times slower than on hardware: "
                 "its times are **emulator times**, their targets in absolute time are not judged (n/a), and the "
                 "Ember / QEMU ratios are the figures to read. Memory (PSS) is not a time and is judged.\n")
    L.append("Cells with three numbers are min / median / p99 (n = samples).\n")
    L.append("| figure | measured | where | target | |")
    L.append("|---|---|---|---|---|")
    for r in rows:
        L.append("| " + " | ".join(str(c) for c in r) + " |")
    L.append("")
    if res.get("errors"):
        L.append("**Errors in this run:**\n")
        for e in res["errors"]:
            L.append(f"- {e}")
        L.append("")
    if res.get("findings"):
        L.append("**Findings (defects the benchmarks exposed):**\n")
        for e in res["findings"]:
            L.append(f"- {e}")
        L.append("")
    for n in pics:
        L.append(f"![{n}]({n})\n")
    if pics and any_emu:
        panel = lambda rec: "this host" if not emulated(rec) else "the emulated KVM host (emulator time)"
        L.append("Where the charts' samples come from: exec → API socket, " + panel(ex)
                 + (" (Ember only: QEMU's side needs KVM, its figures are in the table)" if not q else "")
                 + "; InstanceStart, " + panel(ist) + "; API request latency, " + panel(api)
                 + "; tiny-guest launch, " + panel(lrt) + "; density, " + panel(dn) + ".\n")
    from bench_report_snapshot import section as snapshot_section  # here: it imports this module's helpers
    L += snapshot_section(b)
    from bench_report_vsock import section as vsock_section
    L += vsock_section(b)
    L.append("## Host-side costs (tiny guest, one launch)\n")
    if emulated(prof):
        L.append("Measured inside the **emulated KVM host**: the times below are emulator times (strace there), "
                 "so only their ranking and proportions carry over; callgrind's instruction counts do not depend "
                 "on the emulator.\n")
    L.append(f"Hardware counters through `perf`: {'available' if prof.get('perf_counters') else 'not supported where this ran (`perf stat -e instructions true` reports `<not supported>`)'}; "
             "user-space instructions come from `valgrind --tool=callgrind`, kernel/syscall time from `strace`.\n")
    hc = prof.get("host_costs")
    if hc and hc.get("by_call"):
        L.append("**The three largest host-side costs** of one tiny-guest launch (`strace -f -T`, time spent in "
                 f"each kind of system call, blocking waits left out, mean of {hc.get('launches_averaged', 1)} "
                 "launches):\n")
        for i, c in enumerate(hc["by_call"][:3], 1):
            L.append(f"{i}. `{c['what']}`: {c['seconds'] * 1000:.2f} ms over {c['calls']} calls"
                     + (f" ({c['seconds'] * 1e6 / c['calls']:.1f} µs each)" if c["calls"] > 1 else ""))
        L.append("")
        for c in hc["by_call"][3:6]:
            L.append(f"- then `{c['what']}`: {c['seconds'] * 1000:.2f} ms over {c['calls']} calls")
        L.append("")
        L.append("How to read them: `ioctl KVM_RUN` is guest execution plus one round trip per PIO exit (the tiny "
                 "guest's console is polled PIO; on kvm-pvm the guest's first run also builds its shadow page "
                 "tables); a long `close` is the KVM VM fd, whose last close tears the VM down "
                 "synchronously before ember can exit; `write` is the serial console, one `write(2)` per byte "
                 "the guest prints. strace adds its own cost to every call, so the absolute times are inflated; the "
                 "ranking is what counts. The slowest single calls are listed below.\n")
        if hc.get("dynamic_linking_pct_of_user_ir_top8"):
            L.append(f"In user space, the dynamic linker (`ld.so` symbol lookup and relocation) accounts for "
                     f"{hc['dynamic_linking_pct_of_user_ir_top8']:.0f} % of ember's own instructions "
                     "(callgrind, among the top functions).\n")
    if prof.get("slowest_calls"):
        L.append("Slowest single system calls (`strace -f -T`, wall):\n")
        for c in prof["slowest_calls"]:
            L.append(f"- {c['seconds'] * 1000:.2f} ms `{c['call']}`")
        L.append("")
    if prof.get("strace_wall_top"):
        L.append("System calls by total wall time (`strace -f -c -w`; blocking waits included):\n")
        for c in prof["strace_wall_top"][:6]:
            L.append(f"- {c['syscall']}: {c['seconds'] * 1000:.2f} ms over {c['calls']} calls ({c['pct']:.1f} %)")
        L.append("")
    if prof.get("callgrind_top_self"):
        L.append(f"User-space instructions by function (callgrind, self; total {prof.get('callgrind_total_ir')} Ir):\n")
        for c in prof["callgrind_top_self"][:6]:
            L.append(f"- {c['pct']:.1f} % `{c['fn']}`")
        L.append("")
    notes = [
        ("exec → API socket", ex),
        ("exec → API socket, Ember beside QEMU", exv),
        ("InstanceStart", ist),
        ("memory", dict(m, note=(m.get("note") or "") + "; " + (m.get("when") or "")) if m else None),
        ("launch rate", lrt),
        ("API latency", api),
        ("Linux boot", lb),
        ("density", dn),
    ]
    L.append("## What each figure means\n")
    for k, rec in notes:
        if rec and rec.get("note"):
            L.append(f"- **{k}** ({'emulated KVM host' if emulated(rec) else 'host'}): {rec['note']}.")
    L.append("- **virtio**: `build/virtio-bench --json` (device models without a guest; see `perf/README.md`).")
    L.append("- **Host noise**: the load average above counts other jobs on the same 2 vCPUs; tails (p99) and "
             "launch rates move a lot with it. Compare Ember and QEMU figures taken in the same run.")
    if any_emu:
        L.append("- **Emulated KVM host**: one QEMU TCG guest (`tests/kvmhost/run`) in which both VMMs run on the "
                 "emulated kernel's `kvm_amd`, one after the other (except quick mode's memory figure, where both boot "
                 "at once). Emulator time "
                 "stretches CPU work and VM exits by different factors (an exit costs far more under TCG than on "
                 "hardware), so even the ratios are indications, not predictions of the hardware figures.")
    if h.get("kvm_flavour") == "kvm-pvm":
        L.append("- On kvm-pvm hosts guest kernel code is emulated (~2 M instructions/s), so Linux boot figures are "
                 "tens of seconds for both VMMs and say little about the VMM itself.")
    L.append("")
    extra = os.path.join(docs, "benchmarks-notes.md.in")
    if os.path.exists(extra):
        L.append(open(extra).read())
    with open(os.path.join(docs, "benchmarks.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")


def _get(d, *keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def merge(res, part, path):
    """Lays the figures (and errors, findings) of part, a run of some benchmarks alone (BENCH_SELECT), over res."""
    res["benchmarks"].update(part["benchmarks"])
    res["errors"] = res.get("errors", []) + part.get("errors", [])
    res["findings"] = res.get("findings", []) + part.get("findings", [])
    h = part.get("host", {})
    res.setdefault("merged", []).append({"path": path, "benchmarks": sorted(part["benchmarks"]),
                                         "date": h.get("date"), "mode": h.get("mode"), "ember_git": h.get("ember_git"),
                                         "loadavg": h.get("loadavg_at_start"), "loadavg_end": h.get("loadavg_at_end")})


if __name__ == "__main__":
    # Regenerate docs/benchmarks.md from a result:
    #   python3 perf/bench_report.py RESULT.json [DATA_DIR] [--merge PART.json]...
    # --merge lays the figures of a run of some benchmarks alone (BENCH_SELECT) over RESULT's; the report says so.
    import json
    import sys
    here = os.path.dirname(os.path.abspath(__file__))
    args, parts = [], []
    it = iter(sys.argv[1:])
    for a in it:
        if a == "--merge":
            parts.append(next(it))
        else:
            args.append(a)
    jp = os.path.abspath(args[0])
    res = json.load(open(jp))
    for pp in parts:
        merge(res, json.load(open(pp)), os.path.relpath(os.path.abspath(pp), os.path.join(here, "..")))
    write(res, jp, args[1] if len(args) > 1 else None, os.path.join(here, "..", "docs"))
