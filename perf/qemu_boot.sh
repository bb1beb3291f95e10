#!/usr/bin/env bash
# perf/qemu_boot.sh - boot time of a Linux guest under QEMU microvm, the peer
# Ember is measured against.
#
# Usage: perf/qemu_boot.sh KERNEL MODE VCPUS [EXTRA_CMDLINE...]
#   KERNEL  vmlinux (PVH) or bzImage, e.g. build/guest/vmlinux-int3patched
#           (on kvm-pvm hosts QEMU needs the int3-patched kernel: the emulator
#           cannot run the kernel's INT3 self-test)
#   MODE    initrd  root is initrd.cpio (kernel runs /init)
#           disk    root is rootfs.ext4 on virtio-blk (root=/dev/vda rw;
#                   kernel runs /sbin/init); a QEMU snapshot keeps the image
#                   unchanged
#   VCPUS   number of vCPUs. On kvm-pvm hosts more than one needs `nopv` as
#           EXTRA_CMDLINE (PV IPIs spin in a hypercall otherwise).
# Environment: INITRD, ROOTFS (default: next to KERNEL), TIMEOUT (s, default
#   300), POST_WAIT (s of console kept after the init line, default 3),
#   LOG (console log file, default a temp file, kept), QEMU (binary).
#
# Prints the wall time from exec of QEMU until the console shows the kernel's
# "Run /... as init process" line, and that line's own kernel timestamp, then
# kills QEMU. Exit status: 0 if the line was seen, 1 otherwise.
set -euo pipefail

usage() { sed -n '2,21p' "$0" >&2; exit 2; }
[ $# -ge 3 ] || usage
kernel=$1 mode=$2 vcpus=$3
shift 3
extra="$*"
guestdir=$(dirname "$kernel")
initrd=${INITRD:-$guestdir/initrd.cpio}
rootfs=${ROOTFS:-$guestdir/rootfs.ext4}
timeout=${TIMEOUT:-300}
post_wait=${POST_WAIT:-3}
qemu=${QEMU:-qemu-system-x86_64}

[ -r "$kernel" ] || { echo "qemu_boot: no kernel $kernel" >&2; exit 2; }
[[ $vcpus =~ ^[1-9][0-9]*$ ]] || usage

# The clearcpuid list and noxsave steer the guest away from instructions the
# kvm-pvm emulator cannot run (XRSTOR, POPCNT, CMPXCHG16B, ...); reboot=k
# goes through the i8042, which reaches QEMU (reboot=t does not here).
cmdline="console=ttyS0 reboot=k panic=1 noxsave"
cmdline+=" clearcpuid=popcnt,xsave,avx,avx2,avx512f,rdrand,rdseed,smap,smep,fsgsbase,bmi1,bmi2,pcid,invpcid,cx16"

# -cpu host alone fails on kvm-pvm (MSR 0x10a); microvm appends its own
# virtio_mmio.device= entries to the command line.
args=(-M microvm,acpi=off -enable-kvm -cpu host,-arch-capabilities
      -m 256 -smp "$vcpus" -nographic -no-reboot -nic none -kernel "$kernel")
case "$mode" in
initrd)
    [ -r "$initrd" ] || { echo "qemu_boot: no initrd $initrd" >&2; exit 2; }
    args+=(-initrd "$initrd")
    ;;
disk)
    [ -r "$rootfs" ] || { echo "qemu_boot: no rootfs $rootfs" >&2; exit 2; }
    args+=(-drive "id=root,file=$rootfs,format=raw,if=none,snapshot=on"
           -device virtio-blk-device,drive=root)
    cmdline+=" root=/dev/vda rw"
    ;;
*) usage ;;
esac
[ -z "$extra" ] || cmdline+=" $extra"
if [ "$vcpus" -gt 1 ] && [[ " $extra " != *" nopv "* ]]; then
    echo "qemu_boot: warning: $vcpus vCPUs without nopv stall on kvm-pvm hosts" >&2
fi
args+=(-append "$cmdline")

log=${LOG:-$(mktemp /tmp/qemu_boot.XXXXXX.log)}
echo "qemu_boot: $qemu ${args[*]}" >&2

pid=
stop_qemu() {
    [ -n "$pid" ] || return 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=
}
trap stop_qemu EXIT
trap 'exit 130' INT TERM

# Serial console on stdio (-nographic), captured to the log and polled.
start=$EPOCHREALTIME
"$qemu" "${args[@]}" </dev/null >"$log" 2>&1 &
pid=$!

pattern='Run /[^ ]* as init process'
found= end=
deadline=$(( ${start%.*} + timeout ))
while :; do
    if line=$(grep -a -m1 -E "$pattern" "$log"); then
        end=$EPOCHREALTIME found=1
        break
    fi
    kill -0 "$pid" 2>/dev/null || break
    [ "${EPOCHREALTIME%.*}" -lt "$deadline" ] || break
    sleep 0.1
done

if [ -n "$found" ]; then
    sleep "$post_wait"   # keep what the guest prints right after
fi
stop_qemu
elapsed=$(awk -v a="$start" -v b="${end:-$EPOCHREALTIME}" 'BEGIN { printf "%.2f", b - a }')

echo "--- console (last lines) ---"
tr -d '\r' <"$log" | tail -n 25
echo "----------------------------"
echo "qemu_boot: kernel=$kernel mode=$mode vcpus=$vcpus extra='${extra}'"
echo "qemu_boot: console log: $log"
if [ -z "$found" ]; then
    echo "qemu_boot: FAILED: no '$pattern' after ${elapsed}s (QEMU exited or timeout ${timeout}s)"
    exit 1
fi
kts=$(printf '%s\n' "$line" | sed -nE 's/^[^[]*\[ *([0-9]+\.[0-9]+)\].*/\1/p')
echo "qemu_boot: wall_to_init_s=$elapsed kernel_ts_s=${kts:-?} line='$(printf '%s' "$line" | tr -d '\r')'"
