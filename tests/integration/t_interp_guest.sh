#!/usr/bin/env bash
# integration: kvm-pvm
# The tiny test guest's interpreter tests (plain and ASan+UBSan builds):
# CMPXCHG16B/8B, the XSAVE family, RDRAND/RDSEED, CLAC/STAC, FS/GS base,
# RDPID, and the VEX/EVEX vector forms Linux's AVX-512 BLAKE2s uses. Each must PASS inside the guest and end with exit 0. On kvm-pvm the
# instructions its emulator cannot run must show up in --stats as
# interpreted by Ember (on hardware KVM they never leave the guest).
source "$(dirname "$0")/lib.sh"
require_kvm
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Inside the emulated KVM host the guest is told so: QEMU's TCG does not
# raise #GP for a non-canonical WRGSBASE, and smap-fsgs skips that one check.
tcg=; in_emulated_host && tcg=" ember-tcg"

# count NAME FILE: the interpreted count of NAME in ember's --stats line.
count() { grep -o "interpreted:.*" "$2" | grep -oE "(^| )$1=[0-9]+" | cut -d= -f2; }
at_least() { [ "${1:-0}" -ge "$2" ]; }

for bin in "$EMBER" "$EMBER_ASAN"; do
  [ -x "$bin" ] || { not_ok "binary $bin missing"; continue; }
  tag=$(basename "$(dirname "$bin")")/$(basename "$bin")
  for t in cmpxchg16b xsave rdrand smap-fsgs avx512; do
    run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=$t$tcg" --stats
    check "$tag $t: guest passed" grep -q "EMBER-TEST: PASS $t" "$tmp/out"
    check "$tag $t: exit 0 after i8042 reset (got $RC)" test "$RC" -eq 0
    check "$tag $t: no sanitizer report" bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error' '$tmp/err'"
    grep "EMBER-TEST: FAIL" "$tmp/out"
    echo "$tag $t: $(grep -o 'interpreted:.*' "$tmp/err")"
    if is_pvm_host; then
      case $t in
        cmpxchg16b)
          check "$tag $t: CMPXCHG16B interpreted" at_least "$(count cmpxchg16b "$tmp/err")" 1 ;;
        xsave)
          check "$tag $t: XRSTOR interpreted (standard, compacted, initial state)" at_least "$(count xrstor "$tmp/err")" 3
          check "$tag $t: XSAVE interpreted" at_least "$(count xsave "$tmp/err")" 1
          check "$tag $t: XSAVEC interpreted" at_least "$(count xsavec "$tmp/err")" 1 ;;
        smap-fsgs)
          check "$tag $t: STAC and CLAC interpreted" bash -c \
            "[ '$(count stac "$tmp/err")' -ge 1 ] && [ '$(count clac "$tmp/err")' -ge 1 ]" ;;
        avx512)
          for k in ldmxcsr vmovdq vpalu vpshufd vpermi2 vprot vextract vzeroupper; do
            check "$tag $t: $k interpreted" at_least "$(count $k "$tmp/err")" 1
          done ;;
      esac
    fi
  done
  # The same through the PVH entry (32-bit start, the guest switches to long mode itself).
  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST_PVH" --cmdline "ember-test=xsave" --stats
  check "$tag pvh xsave: guest passed" grep -q "EMBER-TEST: PASS xsave" "$tmp/out"
done
finish
