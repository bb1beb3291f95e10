#!/usr/bin/env bash
# End to end: 2 vCPUs; the AP is started by the guest through INIT/SIPI in
# real mode, vmlinux through the Linux 64-bit boot protocol (not PVH).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_boot.sh"
require_kvm
linux_boot vmlinux-linux64-smp2 "$GUEST_DIR/vmlinux" 2 --boot linux
finish
