#!/usr/bin/env bash
# integration: kvm-pvm
# End to end: the project's guest kernel (unpatched linux-source-6.1, PVH
# vmlinux, 1 vCPU) with --host-compat off, so with no kvm-pvm-specific
# kernel arguments: the guest uses XSAVE/XRSTOR, POPCNT, SMAP (CLAC/STAC),
# INT3 (its alternatives self-test) and whatever else its CPUID offers, and
# Ember's interpreter runs what kvm-pvm's emulator cannot. It must reach
# "Run /sbin/init" (on kvm-pvm it then panics on init's first system call,
# and ember exits 0 through the i8042 reset; see linux_boot.sh).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_boot.sh"
require_kvm
log=$(mktemp); trap 'rm -f "$log"' EXIT
linux_boot vmlinux-nocompat "$GUEST_DIR/vmlinux" 1 --host-compat off >"$log"
cat "$log"
count() { grep -o "interpreted:.*" "$log" | grep -oE "(^| )$1=[0-9]+" | cut -d= -f2; }
if is_pvm_host; then
  # The routines the boot needs on this host; a zero means the guest took another path.
  check "vmlinux-nocompat: XRSTOR interpreted ($(count xrstor))" test "$(count xrstor)" -ge 1
  check "vmlinux-nocompat: POPCNT interpreted ($(count popcnt))" test "$(count popcnt)" -ge 1
  check "vmlinux-nocompat: CLAC interpreted ($(count clac))" test "$(count clac)" -ge 1
fi
finish
