"""perf/bench_report_snapshot.py - the "Snapshots" section of docs/benchmarks.md (issue 12), from the figures of
perf/bench_snapshot.py and perf/bench_snapshot_many.py; called by bench_report.write."""
from bench_report import emulated, f, s3, verdict, where

KEYS = ("snapshot_restore", "snapshot_create", "snapshot_restore_syscalls", "snapshot_clones", "snapshot_vs_qemu",
        "snapshot_network")


def med(st, scale=1.0, d=1):
    return "n/a" if not st else f(st["median"] * scale, d)


def kib(n):
    return "n/a" if n is None else (f"{n / 1024:.1f} MiB" if n >= 1024 else f"{n:.0f} KiB")


def ratio_of(a, b, stat="median"):
    return a[stat] / b[stat] if a and b and b[stat] else None


def restore_rows(rs):
    rows = []
    for key, c in (rs.get("configs") or {}).items():
        lbl = f"{c['mem_mib']} MiB, {c['backend']}"
        rows.append((f"restore {lbl}: PUT /snapshot/load sent → answer (ms)", s3(c["load_sent_to_response_ms"], 1),
                     where(rs), "(compare)", ""))
        if c.get("load_sent_to_first_kvm_run_ms"):
            rows.append(("… → vCPU 0's first KVM_RUN (ms; the issue's restore latency)",
                         s3(c["load_sent_to_first_kvm_run_ms"], 1), where(rs), "", ""))
        rows.append((f"… → the guest's first new counter line (ms; one counter step: {med(c['counter_step_ms'])})",
                     s3(c["load_sent_to_first_counter_line_ms"], 1), where(rs), "", ""))
        rows.append(("… ember's latencies_us load_snapshot; vmm_load_snapshot (ms, median)",
                     f"{med(c['load_snapshot_us'], 1e-3)}; {med(c['vmm_load_snapshot_us'], 1e-3)}", where(rs), "", ""))
        if c["backend"] == "File":
            got = c.get("mem_file_mapped_kib")
            bytes_ = f"{kib(got and got['median'])} of the memory file mapped (page-cache faults, no read(2))"
        else:
            got = c.get("uffd_pages_copied")
            bytes_ = f"{kib(got and got['median'] * 4)} copied in by the handler ({med(got, 1, 0)} pages)"
        rc = c.get("ember_rchar_bytes")
        rows.append(("… memory file taken by the first new line; ember's read(2) bytes (state file, requests)",
                     f"{bytes_}; {med(rc, 1, 0)} B read(2), {med(c.get('ember_read_bytes'), 1, 0)} B from storage",
                     where(rs, False), "", ""))
    cf = rs.get("configs") or {}
    for b in ("File", "Uffd"):
        small, big = cf.get(f"128_{b}"), cf.get(f"1024_{b}")
        if not small or not big:
            continue
        r = {stat: [ratio_of(big.get(k), small.get(k), stat) for k in ("load_sent_to_response_ms", "load_snapshot_us",
                                                                       "load_sent_to_first_counter_line_ms")]
             for stat in ("median", "min")}
        x = r["median"][0]
        rows.append((f"restore 1 GiB / 128 MiB, {b}: answer; load_snapshot metric; first new line (medians; minimums)",
                     "; ".join(f(v, 2) + "×" for v in r["median"]) + " (min: "
                     + "; ".join(f(v, 2) + "×" for v in r["min"]) + ")", where(rs, False), "≤ 1.2× (answer, median)",
                     verdict(x <= 1.2) if x is not None else "n/a"))
    return rows


def create_rows(cr):
    rows = []
    for m, c in sorted((cr.get("sizes") or {}).items(), key=lambda kv: int(kv[0])):
        for kind in ("full", "diff"):
            x = c.get(kind) or {}
            st, mf = x.get("state_file") or {}, x.get("mem_file") or {}
            rows.append((f"create {kind.capitalize()}, {m} MiB: PUT /snapshot/create round trip (ms)",
                         s3(x.get("api_round_trip_ms"), 1) + f"; metric {kind}_create_snapshot "
                         f"{med(x.get(f'{kind}_create_snapshot_us'), 1e-3)} ms (median)", where(cr), "(report)", ""))
            rows.append((f"… files: state; memory apparent / allocated",
                         f"{kib((st.get('bytes') or 0) / 1024)}; {kib((mf.get('bytes') or 0) / 1024)} / "
                         f"{kib((mf.get('allocated_bytes') or 0) / 1024)}", where(cr, False), "", ""))
    return rows


def syscall_rows(sc):
    rows = []
    for b, x in (sc.get("backends") or {}).items():
        top = ", ".join(f"{k} {v}" for k, v in list((x.get("by_name") or {}).items())[:6])
        extra = ""
        if b == "Uffd" and x.get("handler_whole_life") is not None:
            extra = (f"; handler: {x.get('handler_in_window')} in the same window, {x.get('handler_whole_life')} "
                     f"over its life for {x.get('handler_faults_whole_life')} faults")
        rows.append((f"system calls per restore, {sc.get('mem_mib')} MiB, {b}: request read → answer written",
                     f"{x.get('syscalls')} ({top}); {x.get('exec_to_answer')} from exec to the answer{extra}",
                     where(sc, False), "(report)", ""))
    return rows


def clone_rows(cl):
    n = cl.get("clones")
    rows = [(f"clones: {n} from one 128 MiB snapshot at once"
             + (f" (scaled down from {cl.get('clones_wanted')}: {cl['scaled_down']})" if cl.get("scaled_down") else ""),
             f"{f(cl.get('restores_per_s'), 1)} restores/s; all {cl.get('restored')} restored in "
             f"{f(cl.get('all_restored_s'), 2)} s; exec → first new line ms {s3(cl.get('exec_to_first_line_ms'), 0)}",
             where(cl), "(report)", ""),
            ("… answering (each printed new counter lines, then again with all running at once)",
             f"{cl.get('answering')} / {n}" + (f"; {cl['not_continuing']} did not continue the count"
                                               if cl.get("not_continuing") else ""), where(cl, False), f"{n} / {n}",
             verdict(cl.get("answering") == n and not cl.get("not_continuing"))),
            ("… PSS per clone beyond the pages it wrote (MiB)", s3(cl.get("pss_beyond_written_per_clone_mib"), 2),
             where(cl, False), "≤ 3 MiB",
             verdict(cl["pss_beyond_written_per_clone_mib"]["max"] <= 3)
             if cl.get("pss_beyond_written_per_clone_mib") else "n/a"),
            ("… PSS per clone; guest pages written per clone; memory file mapped per clone (MiB, median)",
             f"{med(cl.get('pss_per_clone_mib'), 1, 2)}; {med(cl.get('written_per_clone_mib'), 1, 2)}; "
             f"{med(cl.get('mem_file_mapped_per_clone_mib'), 1, 2)}", where(cl, False), "", ""),
            ("… host MemAvailable drop per clone (MiB; kernel side included)",
             f(cl.get("host_mem_available_drop_per_clone_mib"), 2), where(cl, False), "(info)", "")]
    return rows


def qemu_rows(vq):
    rows = [("restore vs QEMU, 128 MiB: exec → first new counter line (ms), Ember `--snapshot-load --resume`",
             s3(vq.get("ember_exec_to_first_line_ms"), 1), where(vq), "", ""),
            ("… QEMU microvm `-incoming \"exec:cat FILE\"`", s3(vq.get("qemu_exec_to_first_line_ms"), 1), where(vq),
             "", ""),
            ("… Ember speed-up over QEMU: medians (minimums)", f"{f(vq.get('speedup_exec_to_first_line'), 1)}× ("
             + f(ratio_of(vq.get("qemu_exec_to_first_line_ms"), vq.get("ember_exec_to_first_line_ms"), "min"), 1)
             + "×)", where(vq, False), "(compare: includes process start and the rest of a counting step)", ""),
            ("request → running (ms): Ember PUT /snapshot/load → answer; QEMU QMP migrate-incoming → RESUME",
             f"{s3(vq.get('ember_load_to_response_ms'), 1)}; {s3(vq.get('qemu_migrate_incoming_to_resume_ms'), 1)}",
             where(vq), "", ""),
            ("… Ember speed-up over QEMU: medians (minimums); to the first new line",
             f"{f(vq.get('speedup_request_to_running'), 1)}× ("
             + f(ratio_of(vq.get("qemu_migrate_incoming_to_resume_ms"), vq.get("ember_load_to_response_ms"), "min"), 1)
             + f"×); {f(vq.get('speedup_request_to_first_line'), 1)}× ("
             + f(ratio_of(vq.get("qemu_migrate_incoming_to_first_line_ms"), vq.get("ember_load_to_first_line_ms"),
                          "min"), 1) + "×)", where(vq, False), "(compare)", "")]
    if vq.get("ember_load_to_first_kvm_run_ms"):
        rows += [("restore latency (ms): Ember PUT /snapshot/load → vCPU 0's first KVM_RUN; QEMU → RESUME",
                  f"{s3(vq.get('ember_load_to_first_kvm_run_ms'), 1)}; "
                  f"{s3(vq.get('qemu_migrate_incoming_to_resume_ms'), 1)}", where(vq), "", ""),
                 ("… Ember speed-up over QEMU: medians (minimums)",
                  f"{f(vq.get('speedup_request_to_first_kvm_run'), 1)}× ("
                  + f(ratio_of(vq.get("qemu_migrate_incoming_to_resume_ms"), vq.get("ember_load_to_first_kvm_run_ms"),
                               "min"), 1) + "×)", where(vq, False), "≥ 20× (median)",
                  verdict((vq.get("speedup_request_to_first_kvm_run") or 0) >= 20))]
    mi, eb = vq.get("qemu_migration") or {}, vq.get("ember_snapshot_bytes") or {}
    rows.append(("… files: QEMU migration file; Ember state + memory allocated",
                 f"{kib((mi.get('file_bytes') or 0) / 1024)} (migrate took {f(mi.get('migrate_s'), 2)} s); "
                 f"{kib(((eb.get('state') or 0) + (eb.get('mem_allocated') or 0)) / 1024)}", where(vq, False), "", ""))
    return rows


def network_rows(sn):
    return [("restore, Linux guest 128 MiB, File: PUT /snapshot/load sent → answer (ms)",
             s3(sn.get("load_sent_to_response_ms"), 1), where(sn), "(compare)", ""),
            ("… → the guest's first TCP echo over its tap (ms)", s3(sn.get("load_sent_to_first_echo_ms"), 1),
             where(sn), "", "")]


def section(b):
    """The lines of the Snapshots section, or [] when the run has none of its figures."""
    recs = {k: b.get(k) for k in KEYS}
    if not any(recs.values()):
        return []
    rows = []
    for key, fn in (("snapshot_restore", restore_rows), ("snapshot_create", create_rows),
                    ("snapshot_restore_syscalls", syscall_rows), ("snapshot_clones", clone_rows),
                    ("snapshot_vs_qemu", qemu_rows), ("snapshot_network", network_rows)):
        if recs[key]:
            rows += fn(recs[key])
        elif key == "snapshot_network":
            rows.append(("restore to the guest's first network reply",
                         "not measured (full `make bench` only, it boots Linux; or see Errors above)", "", "", ""))
        else:
            rows.append((key.replace("_", " "), "not measured (see Errors above)", "", "", ""))
    L = ["## Snapshots\n"]
    if any(emulated(r) for r in recs.values() if r):
        L.append("Measured inside the **emulated KVM host**: every time in ms or s is an **emulator time** (10 to 50 "
                 "times slower than on hardware, VM exits far more); the ratios (1 GiB / 128 MiB, Ember / QEMU "
                 "in the same run), the counts and the memory figures are the ones to read, and only those are "
                 "judged (on medians; the minimums, what a run takes with the least interference from other "
                 "work on the host, are given beside them). The guest is the tiny test guest's `counter` test (`ember-test=counter`, 1 vCPU), which "
                 "prints `EMBER-TEST: counter cpu0: N` every 2^21 counts; a restore has to continue its count.\n")
    L.append("| figure | measured | where | target | |")
    L.append("|---|---|---|---|---|")
    for r in rows:
        L.append("| " + " | ".join(str(c) for c in r) + " |")
    L.append("")
    L.append("How they were measured:\n")
    for key in KEYS:
        r = recs[key]
        if r and r.get("note"):
            L.append(f"- **{key.replace('_', ' ')}** ({'emulated KVM host' if emulated(r) else 'host'}): "
                     f"{r['note']}.")
    L.append("")
    return L
