#!/usr/bin/env bash
# End to end: the same kernel as a bzImage (64-bit entry from its setup
# header; the in-guest LZ4 decompressor runs first).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_boot.sh"
require_kvm
linux_boot bzimage "$GUEST_DIR/bzImage" 1
finish
