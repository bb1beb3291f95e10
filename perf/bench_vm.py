"""perf/bench_vm.py - the benchmarks that need a VM: InstanceStart, launch rate, VMM memory overhead, Linux boot
to init, and the host profile of a tiny-guest launch. Without a usable /dev/kvm they run inside the emulated KVM
host (perf/bench_kvmhost.py)."""
import glob
import os
import re
import shutil
import subprocess
import time

from bench_common import (EMBER, IN_KVMHOST, QEMU_BASE, QEMU_CMDLINE, QUICK, ROOTFS, TINY, TINY_PVH, VMLINUX,
                          VMLINUX_Q, WHERE, WORK, fail, finding, floats, guest_ram_pss_kib, is_guest_ram, kill_proc,
                          log, pss_kib, record, save_samples, smaps_mappings, stats, tool)


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

