#!/usr/bin/env bash
# integration: kvm-pvm
# The tiny test guest under ember (plain and ASan+UBSan builds): console,
# e820, unclaimed PIO/MMIO reports, i8042 reset, triple fault, interpreter
# routines, several vCPU threads, both boot protocols.
source "$(dirname "$0")/lib.sh"
require_kvm
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

for bin in "$EMBER" "$EMBER_ASAN"; do
  [ -x "$bin" ] || { not_ok "binary $bin missing"; continue; }
  tag=$(basename "$(dirname "$bin")")/$(basename "$bin")
  for t in hello unclaimed int3 popcnt fwait; do
    run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=$t" --stats
    check "$tag $t: guest passed" grep -q "EMBER-TEST: PASS $t" "$tmp/out"
    check "$tag $t: exit 0 after i8042 reset (got $RC)" test "$RC" -eq 0
    check "$tag $t: no sanitizer report" bash -c "! grep -qE 'ERROR: AddressSanitizer|runtime error' '$tmp/err'"
  done
  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=hello"
  check "$tag hello: e820 matches 128 MiB" grep -q "usable RAM: 130687 KiB" "$tmp/out"
  check "$tag hello: command line reached the guest" grep -q "cmdline: ember-test=hello" "$tmp/out"

  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=unclaimed" --stats
  check "$tag unclaimed: PIO write reported" grep -q "unclaimed PIO write at 0x2000" "$tmp/err"
  check "$tag unclaimed: PIO read reported" grep -q "unclaimed PIO read at 0x2004" "$tmp/err"
  check "$tag unclaimed: MMIO write reported" grep -q "unclaimed MMIO write at 0xd0000000" "$tmp/err"
  check "$tag unclaimed: counted in stats" grep -q "unclaimed_pio=4 unclaimed_mmio=2" "$tmp/err"

  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=int3" --stats
  if is_pvm_host; then
    check "$tag int3: interpreter counted one INT3 (kvm-pvm cannot run it)" grep -q "int3=1 " "$tmp/err"
  else
    check "$tag int3: the CPU ran INT3, the interpreter did not" grep -q "int3=0 " "$tmp/err"
  fi

  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST" --cmdline "ember-test=triple"
  check "$tag triple: non-zero exit on a guest crash (got $RC)" test "$RC" -eq 2
  check "$tag triple: one-line reason names the triple fault" grep -q "guest crashed: .*triple fault" "$tmp/err"
  check "$tag triple: nothing after the fault" bash -c "! grep -q PASS '$tmp/out'"

  for n in 2 4; do
    run_ember_bin "$bin" "$tmp/out" "$tmp/err" 120 --kernel "$TEST_GUEST" --cmdline "ember-test=smp" --vcpus $n
    check "$tag smp: $n vCPU threads ran guest code" grep -q "smp: $n cpus up" "$tmp/out"
    check "$tag smp $n: exit 0 (got $RC)" test "$RC" -eq 0
  done

  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST_PVH" --cmdline "ember-test=hello"
  check "$tag pvh: booted through the PVH entry" grep -q "boot protocol: pvh" "$tmp/out"
  check "$tag pvh: guest passed" grep -q "EMBER-TEST: PASS hello" "$tmp/out"
  run_ember_bin "$bin" "$tmp/out" "$tmp/err" 60 --kernel "$TEST_GUEST_PVH" --boot linux --cmdline "ember-test=hello"
  check "$tag --boot linux ignores the PVH note" grep -q "boot protocol: linux64" "$tmp/out"
done
finish
