#!/usr/bin/env bash
# perf/bench.sh - Ember vs QEMU microvm benchmark suite (`make bench`, issue 7).
#
# Usage: perf/bench.sh [--quick]      (or QUICK=1 perf/bench.sh)
#   full  : every benchmark, Linux boot to init for both VMMs (~15-20 min on 2 cores)
#   quick : every benchmark briefly, no Linux boot comparison (< 3 min); only
#           checks that each benchmark runs and produces numbers
# Writes perf/results/<date>[-quick].json, docs/benchmarks.md and
# docs/benchmarks-*.png. Targets are reported, never asserted: the exit status
# is non-zero only when a benchmark produced no numbers.
# Environment: BUILD (default build), QEMU (default qemu-system-x86_64),
#   BOOT_REPS (Linux boot repetitions in full mode, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
QUICK=${QUICK:-0}
[ "${1:-}" = "--quick" ] && QUICK=1
case "$QUICK" in 1|yes|true) QUICK=1 ;; *) QUICK=0 ;; esac
BUILD=${BUILD:-build}
export QEMU=${QEMU:-qemu-system-x86_64}

[ -c /dev/kvm ] || { echo "bench: /dev/kvm missing" >&2; exit 1; }
for f in "$BUILD/ember" "$BUILD/virtio-bench" "$BUILD/test-guest.elf" \
         "$BUILD/guest/vmlinux" "$BUILD/guest/vmlinux-int3patched" "$BUILD/guest/rootfs.ext4"; do
  [ -e "$f" ] || { echo "bench: missing $f (make all guest)" >&2; exit 1; }
done
command -v "$QEMU" >/dev/null || { echo "bench: $QEMU missing (apt-get install qemu-system-x86)" >&2; exit 1; }
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
cp "$BUILD/ember" "$BUILD/virtio-bench" "$BUILD/test-guest.elf" \
   "$BUILD/guest/vmlinux" "$BUILD/guest/vmlinux-int3patched" "$BUILD/guest/rootfs.ext4" "$bin/"
cc -O2 -std=c11 -Wall -Wextra -pthread -o "$bin/benchtool" perf/lib/benchtool.c

PYTHONDONTWRITEBYTECODE=1 BENCH_BIN=$bin BENCH_QUICK=$QUICK BENCH_OUT=$PWD/perf/results BENCH_DOCS=$PWD/docs BENCH_WORK=$work \
  python3 perf/bench.py
