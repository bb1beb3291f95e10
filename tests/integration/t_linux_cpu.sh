#!/usr/bin/env bash
# The virtual hardware Ember presents, as a Linux guest sees it: the project
# kernel (2 vCPUs, so SMP bring-up runs) prints no WARNING and no "XSAVE
# consistency problem", ember reports no unclaimed port or MMIO access, and
# the guest's FPU/xstate lines and CPU flags are compared with QEMU microvm's
# for the same kernel and initrd on the same KVM (inside the emulated host
# when that is where the tests run). The xstate lines must be equal; the
# flags are printed side by side. A warning QEMU's guest also prints is the
# KVM host's (the emulated CPU's), not Ember's: it is named, and still fails
# here only when Ember's guest prints it.
# integration: deadline 600
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/initrd.cpio" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cmd="$LINUX_CMDLINE_BASE rdinit=/sbin/init ember.check=cpuinfo"

linux_run "$tmp/ember.out" "$tmp/ember.err" --initrd "$GUEST_DIR/initrd.cpio" --vcpus 2 --cmdline "$cmd"
check "ember: guest userspace ran its cpuinfo check" grep -q "EMBER-CHECK: cpuinfo flags:" "$tmp/ember.out"
check "ember: exit 0 (got $RC)" test "$RC" -eq 0
check "ember: 2 CPUs brought up" grep -qE "smp: Brought up 1 node, 2 CPUs" "$tmp/ember.out"
check "ember: the guest printed no WARNING" bash -c "! grep -q 'WARNING:' '$tmp/ember.out'"
check "ember: no XSAVE consistency problem" bash -c "! grep -q 'consistency problem' '$tmp/ember.out'"
check "ember: no unclaimed port or MMIO access" bash -c "! grep -qE 'unclaimed (PIO|MMIO)' '$tmp/ember.err'"
check "ember: its stats count none either" grep -q "unclaimed_pio=0 unclaimed_mmio=0" "$tmp/ember.err"
grep -E "WARNING:|consistency problem" "$tmp/ember.out" | sed 's/^/  ember guest: /'
grep -E "unclaimed (PIO|MMIO)" "$tmp/ember.err" | sed 's/^/  ember: /' | head -5

if ! command -v qemu-system-x86_64 >/dev/null; then
  echo "  (no qemu-system-x86_64: the comparison with QEMU microvm is left out)"
  finish
fi
# QEMU microvm has no i8042 reset path the guest uses: reboot=t (triple fault) and -no-reboot end it.
t0=$(date +%s.%N)
timeout --signal=KILL 300 qemu-system-x86_64 -accel kvm -M microvm,acpi=off -cpu host -smp 2 -m 256 \
  -nodefaults -no-user-config -display none -no-reboot -serial stdio \
  -kernel "$GUEST_DIR/vmlinux" -initrd "$GUEST_DIR/initrd.cpio" \
  -append "${cmd/reboot=k/reboot=t}" </dev/null 2>"$tmp/qemu.err" |
  while IFS= read -r line; do printf '%8.2f %s\n' "$(echo "$(date +%s.%N) - $t0" | bc)" "${line%$'\r'}"; done >"$tmp/qemu.out"
# Exec to the guest's userspace marker, both VMMs, same kernel, initrd and KVM (wall seconds).
at() { grep -m1 "$2" "$1" | awk '{print $1}'; }
e=$(at "$tmp/ember.out" EMBER-INIT-OK) q=$(at "$tmp/qemu.out" EMBER-INIT-OK)
[ -n "$e" ] && [ -n "$q" ] && echo "timing: exec to guest userspace (2 vCPUs, initrd): ember ${e} s, qemu microvm ${q} s, ember/qemu $(echo "scale=2; $e / $q" | bc)"
check "qemu: guest userspace ran its cpuinfo check" grep -q "EMBER-CHECK: cpuinfo flags:" "$tmp/qemu.out"
fpu() { grep -oE "x86/fpu: .*" "$1" | tr -d '\r'; }
flags() { grep -m1 "EMBER-CHECK: cpuinfo flags:" "$1" | tr -d '\r' | cut -d: -f3 | tr ' ' '\n' | grep . | sort; }
flags "$tmp/ember.out" >"$tmp/ember.flags"; flags "$tmp/qemu.out" >"$tmp/qemu.flags"
only_ember=$(comm -23 "$tmp/ember.flags" "$tmp/qemu.flags" | tr '\n' ' ')
only_qemu=$(comm -13 "$tmp/ember.flags" "$tmp/qemu.flags" | tr '\n' ' ')
echo "  ember guest: $(fpu "$tmp/ember.out" | grep -m1 'Enabled xstate')"
echo "  qemu guest:  $(fpu "$tmp/qemu.out" | grep -m1 -E 'Enabled xstate|disabled')"
echo "  flags: ember $(wc -l <"$tmp/ember.flags"), qemu $(wc -l <"$tmp/qemu.flags"); only under ember: $only_ember; only under qemu: $only_qemu"
check "both guests see the basic x86-64 feature set" bash -c \
  "for f in fpu sse sse2 cx8 apic cmov clflush fxsr syscall nx lm; do grep -qx \$f '$tmp/ember.flags' && grep -qx \$f '$tmp/qemu.flags' || exit 1; done"
if grep -q "consistency problem" "$tmp/qemu.out"; then
  # The KVM host's CPU does not intercept XSETBV (QEMU's TCG emulating SVM, docs/testing.md):
  # QEMU's guest sees XCR0 reset behind its back, fails its XSAVE size check and turns
  # XSAVE off; Ember's guest does not (Ember starts XCR0 with the CPUID's components).
  echo "  QEMU microvm's guest on this KVM hit the KVM host's XSETBV deviation and disabled XSAVE:"
  grep -E "WARNING:|consistency problem" "$tmp/qemu.out" | sed 's/^/    /'
  check "Ember's guest kept XSAVE where QEMU's lost it" grep -q "x86/fpu: Enabled xstate features" "$tmp/ember.out"
  check "the flags only Ember's guest has are the XSAVE-dependent ones QEMU's guest turned off ($only_ember)" \
    bash -c "for f in $only_ember; do case \$f in xsave*|xgetbv1|avx*|fma|f16c|pku|ospke|vaes|vpclmulqdq|gfni) ;; *) exit 1 ;; esac; done"
else
  check "the guest's x86/fpu lines are the same under Ember and QEMU" test "$(fpu "$tmp/ember.out")" = "$(fpu "$tmp/qemu.out")"
fi
show_on_failure "$tmp/ember.out" "$tmp/ember.err"
finish
