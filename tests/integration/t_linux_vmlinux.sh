#!/usr/bin/env bash
# End to end: the project's guest kernel (unpatched linux-source-6.1), ELF
# vmlinux through its PVH entry, uncompressed initrd, 1 vCPU.
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_boot.sh"
require_kvm
linux_boot vmlinux-pvh "$GUEST_DIR/vmlinux" 1
finish
