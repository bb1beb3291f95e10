#!/usr/bin/env bash
# perf/bench.sh - Ember vs QEMU microvm benchmark suite (`make bench`, issue 7).
#
# Usage: perf/bench.sh [--quick]      (or QUICK=1 perf/bench.sh)
#   full  : every benchmark, Linux boot to init for both VMMs (< 25 min on 2 cores)
#   quick : every benchmark briefly, no Linux boot comparison (< 5 min); only
#           checks that each benchmark runs and produces numbers
# Writes perf/results/<date>[-quick].json, docs/benchmarks.md and
# docs/benchmarks-*.png (quick: perf/results/<date>-quick/). Targets are
# reported, never asserted: the exit status is non-zero only when a benchmark
# produced no numbers.
# Where the figures are measured: with a usable hardware /dev/kvm (a character
# device that opens read-write, not kvm-pvm's) every benchmark runs here. Without one, the benchmarks
# that need no KVM (exec -> API socket, API latency, virtio device models,
# density of idle VMMs) run here, and those that need a VM (InstanceStart,
# launch rate, memory, Linux boot, the tiny-guest profile, the snapshot
# benchmarks, and the QEMU side of exec -> API socket) run inside the emulated
# KVM host (tests/kvmhost/run, see docs/testing.md) side by side with QEMU
# microvm on that host's KVM; their times are emulator times and the
# Ember/QEMU ratios are the figures.
# Environment: BUILD (default build), QEMU (default qemu-system-x86_64),
#   BOOT_REPS (Linux boot repetitions in full mode, default 2),
#   EMBER_KVM auto (default) | host (fail without a usable /dev/kvm) |
#   emulated (the VM benchmarks in the emulated KVM host even where /dev/kvm works),
#   BENCH_KVMHOST_SMP (vCPUs of the emulated host, 1), BENCH_KVMHOST_TIMEOUT (s),
#   BENCH_SELECT (only these benchmarks, by function name: see perf/bench.py).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
[ "${1:-}" = "--quick" ] && QUICK=1
case "$QUICK" in 1|yes|true) QUICK=1 ;; *) QUICK=0 ;; esac
BUILD=${BUILD:-build}
export QEMU=${QEMU:-qemu-system-x86_64}

source tools/kvm_host.sh # kvm_usable, is_pvm_host
case "${EMBER_KVM:-auto}" in
  host)     kvm_usable || { echo "bench: EMBER_KVM=host but /dev/kvm is missing or does not open read-write" >&2; exit 1; }
            kvm=host ;;
  emulated) kvm=emulated; why="not used (EMBER_KVM=emulated)" ;;
  auto)     if kvm_usable && ! is_pvm_host; then kvm=host
            elif kvm_usable; then kvm=emulated
                 why="kvm-pvm (software KVM: its figures would be its emulator's, and it runs no guest userspace)"
            else kvm=emulated
                 if [ -c /dev/kvm ]; then why="none: /dev/kvm does not open read-write"; else why="none: no /dev/kvm"; fi
            fi ;;
  *) echo "bench: EMBER_KVM must be auto, host or emulated" >&2; exit 1 ;;
esac
inputs=("$BUILD/ember" "$BUILD/ember-uffd-handler" "$BUILD/virtio-bench" "$BUILD/test-guest.elf"
        "$BUILD/guest/vmlinux" "$BUILD/guest/vmlinux-int3patched" "$BUILD/guest/rootfs.ext4")
# QEMU microvm boots the tiny guest's PVH build: the launch comparison in the emulated host
[ $kvm = emulated ] && inputs+=("$BUILD/test-guest-pvh.elf" tests/kvmhost/run)
for f in "${inputs[@]}"; do
  [ -e "$f" ] || { echo "bench: missing $f (make all guest)" >&2; exit 1; }
done
command -v "$QEMU" >/dev/null || { echo "bench: $QEMU missing (apt-get install qemu-system-x86)" >&2; exit 1; }
if [ $kvm = emulated ]; then
  echo "bench: /dev/kvm: ${why#none: }; the benchmarks that need a VM run inside the emulated KVM host (tests/kvmhost), beside QEMU microvm there"
  # Made (or found in ~/.cache/ember) now, not inside the timed run. Without it those benchmarks fail; the others still run.
  tests/kvmhost/build.sh >/dev/null || echo "bench: tests/kvmhost/build.sh failed: the VM benchmarks will have no numbers" >&2
fi
if ! command -v gnuplot >/dev/null; then
  echo "bench: installing gnuplot-nox" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gnuplot-nox >/dev/null || echo "bench: no gnuplot: no charts" >&2
fi
for t in valgrind strace; do command -v $t >/dev/null || echo "bench: $t missing: host profile partial" >&2; done

# Private copies: others may rebuild build/ while this runs.
work=$(mktemp -d /tmp/ember-bench.XXXXXX)
bin=$work/bin
mkdir -p "$bin"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
cp "$BUILD/ember" "$BUILD/ember-uffd-handler" "$BUILD/virtio-bench" "$BUILD/test-guest.elf" \
   "$BUILD/guest/vmlinux" "$BUILD/guest/vmlinux-int3patched" "$BUILD/guest/rootfs.ext4" "$bin/"
[ -e "$BUILD/test-guest-pvh.elf" ] && cp "$BUILD/test-guest-pvh.elf" "$bin/"
cc -O2 -std=c11 -Wall -Wextra -pthread -I. -o "$bin/benchtool" perf/lib/benchtool.c

# The emulated KVM host sees this machine's root filesystem, so $work (under /tmp) is at the same path inside.
PYTHONDONTWRITEBYTECODE=1 BENCH_BIN=$bin BENCH_QUICK=$QUICK BENCH_OUT=$PWD/perf/results BENCH_DOCS=$PWD/docs BENCH_WORK=$work \
  BENCH_KVM=$kvm BENCH_KVM_WHY=${why:-} BENCH_KVMHOST_RUN=$PWD/tests/kvmhost/run \
  python3 perf/bench.py
