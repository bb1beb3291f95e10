#!/usr/bin/env bash
# End to end: 2 and 4 vCPUs to guest userspace. The APs are started by the
# guest through INIT/SIPI in real mode; vmlinux through the Linux 64-bit
# boot protocol (not PVH).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_boot.sh"
require_kvm
linux_boot vmlinux-linux64-smp2 "$GUEST_DIR/vmlinux" 2 --boot linux
linux_boot vmlinux-linux64-smp4 "$GUEST_DIR/vmlinux" 4 --boot linux
finish
