#!/usr/bin/env python3
"""Hold one idle KVM VM open for the emulated host's whole life.

Why: KVM flips static keys when the first vCPU with a software-disabled
LAPIC is created and (a second later, deferred) when the last one enables
its LAPIC or goes away; it also enables SVM on every CPU when the first VM
is created and disables it after the last. Each flip patches the running
kernel's text (int3-based text_poke). Under QEMU's multi-threaded TCG that
patching is not reliable: the emulated host has frozen with a CPU in
exc_int3 while patching. A host that
runs many microVMs never sees those flips (some VM always holds the keys);
this idle VM makes the emulated host look like that: its vCPU's LAPIC stays
software-disabled, so the keys stay on and SVM stays enabled.

Creates the VM, its in-kernel irqchip and one vCPU, then forks: the parent
returns once they exist (so the tests start after), the child keeps them
until the emulated host powers off. Never runs the vCPU.
"""
import fcntl
import os
import sys
import time

KVM_CREATE_VM = 0xAE01
KVM_CREATE_VCPU = 0xAE41
KVM_CREATE_IRQCHIP = 0xAE60


def main():
    try:
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        fcntl.ioctl(vm, KVM_CREATE_IRQCHIP, 0)
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    except OSError as e:
        print("kvm-keeper: cannot hold an idle VM open: %s" % e, file=sys.stderr)
        return 1
    if os.fork():
        return 0
    os.setsid()
    keep = (kvm, vm, vcpu)
    while keep:
        time.sleep(3600)
    return 0


if __name__ == "__main__":
    sys.exit(main())
