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
  BENCH_SELECT  function names, comma-separated (b_snapshot_restore,...): run only those benchmarks; the result
              is DATE[-quick]-select.json with its report beside it (docs/ untouched), for bench_report.py --merge.
  BENCH_KVMHOST_RUN, BENCH_KVMHOST_SMP (1), BENCH_KVMHOST_MEM (3072),
  BENCH_KVMHOST_TIMEOUT (deadline of one emulated-host run, s), BENCH_KVMHOST_STALL
  (s of silence, no heartbeat, after which the emulated host counts as frozen; 120).
"""
import json
import os
import platform
import subprocess
import sys
import time

from bench_common import (DOCS, EMBER, KVM, ONLY, OUT, PVM, QEMU, QUICK, SPLIT, T0, WHERE_EMU, WORK, cmd_version,
                          cpu_model, log, results, run_one)
from bench_host import b_api_latency, b_density, b_exec_to_socket, b_exec_vs_qemu, b_virtio
from bench_limits import b_balloon, b_limits
from bench_kvmhost import run_vm_part, vm_main
from bench_snapshot import b_snapshot_create, b_snapshot_restore, b_snapshot_syscalls
from bench_snapshot_many import b_snapshot_clones, b_snapshot_vs_qemu
from bench_snapshot_net import b_snapshot_network
from bench_vsock import b_vsock_mmds
from bench_vm import b_instance_start, b_launch_rate, b_linux_boot, b_memory_quick, b_profile

SELECT = [n for n in os.environ.get("BENCH_SELECT", "").split(",") if n]


def host_info():
    cpu = cpu_model()
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                           text=True).stdout.strip()
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mode": ("quick" if QUICK else "full") + (" (selected: " + ", ".join(SELECT) + ")" if SELECT else ""),
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



def bench_list():
    """(label, function, where it can run): 'host' needs no KVM; 'vm' needs a VM; 'vm-split' runs only when the
    VM benchmarks run apart from the others (the QEMU side of exec -> API socket)."""
    b = [("exec to API socket", b_exec_to_socket, "host"),
         ("exec to API socket, Ember vs QEMU", b_exec_vs_qemu, "vm-split"),
         ("InstanceStart", b_instance_start, "vm"),
         ("launch rate", b_launch_rate, "vm"),
         ("API latency", b_api_latency, "host"),
         ("virtio", b_virtio, "host"), ("rate limiter", b_limits, "host"), ("balloon inflate", b_balloon, "host")]
    b += [("memory (quick)", b_memory_quick, "vm")] if QUICK else [("Linux boot + memory", b_linux_boot, "vm")]
    b += [("density", b_density, "host"), ("profile", b_profile, "vm")]
    b += [("snapshot create", b_snapshot_create, "vm"), ("snapshot restore", b_snapshot_restore, "vm"),
          ("snapshot restore syscalls", b_snapshot_syscalls, "vm"), ("snapshot clones", b_snapshot_clones, "vm"),
          ("snapshot vs QEMU", b_snapshot_vs_qemu, "vm")]
    b += [] if QUICK else [("snapshot to a network reply", b_snapshot_network, "vm")]  # boots Linux
    # Boots Linux too: in quick mode only when selected (BENCH_SELECT=b_vsock_mmds), with fewer bytes and requests.
    b += [("vsock and MMDS", b_vsock_mmds, "vm")] if not QUICK or "b_vsock_mmds" in SELECT else []
    if SELECT:
        b = [x for x in b if x[1].__name__ in SELECT]
    return b



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
        run_vm_part([b for b in bench_list() if b[2] != "host"], os.path.abspath(__file__))
    results["runtime_s"] = time.time() - T0
    results["host"]["loadavg_at_end"] = open("/proc/loadavg").read().split()[:3]
    day = time.strftime("%Y-%m-%d", time.gmtime())
    tag = ("-quick" if QUICK else "") + ("-select" if SELECT else "")
    path = os.path.join(OUT, f"{day}{tag}.json")
    with open(path, "w") as f:
        json.dump(results, f, indent=1)
    log(f"wrote {path}")
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_report
    # quick (smoke) runs must not overwrite the full figures in docs/: their report goes next to the JSON
    docs = DOCS if not tag else os.path.join(OUT, f"{day}{tag}")
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
