# What KVM this machine offers (sourced by tests/integration/lib.sh,
# perf/bench.sh and deploy/demo.sh; perf/bench_common.py asks the same in Python).
#
# kvm_usable: this process can open /dev/kvm read-write. Test -c first: opening
# a missing path with <> would create a plain file, and a device that exists
# but does not open is no KVM either.
kvm_usable() { [ -c /dev/kvm ] && ( : <>/dev/kvm ) 2>/dev/null; }
# is_pvm_host: the /dev/kvm this process opens is kvm-pvm's (software KVM:
# guest kernel code emulated, no guest userspace system calls;
# docs/host-compat.md). Decided from the device actually opened plus which
# KVM vendor module is there: a machine can carry a kvm_pvm module that did
# not bind (then there is no /dev/kvm), and inside the emulated host
# (tests/kvmhost) /dev/kvm is kvm_amd's.
is_pvm_host() {
  kvm_usable && [ -e /sys/module/kvm_pvm ] && [ ! -e /sys/module/kvm_amd ] && [ ! -e /sys/module/kvm_intel ]
}
