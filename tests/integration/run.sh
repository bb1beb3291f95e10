#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh and prints one closing summary line.
# A test exits 0 (pass), 77 (skip: it printed why) or anything else (fail).
# Environment: EMBER, EMBER_ASAN, GUEST_DIR, BUILD (set by `make integration`).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export EMBER=${EMBER:-build/ember} EMBER_ASAN=${EMBER_ASAN:-build/asan/ember}
export GUEST_DIR=${GUEST_DIR:-build/guest} BUILD=${BUILD:-build}
export TEST_GUEST=${TEST_GUEST:-$BUILD/test-guest.elf} TEST_GUEST_PVH=${TEST_GUEST_PVH:-$BUILD/test-guest-pvh.elf}
pass=0 fail=0 skip=0 failed=()
for t in "$here"/t_*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$(basename "$t")" != *"$ONLY"* ]] && continue
  name=$(basename "$t" .sh)
  echo "=== $name"
  start=$(date +%s)
  bash "$t"
  rc=$?
  secs=$(( $(date +%s) - start ))
  case $rc in
    0) pass=$((pass + 1)); echo "--- PASS $name (${secs}s)" ;;
    77) skip=$((skip + 1)); echo "--- SKIP $name (${secs}s)" ;;
    *) fail=$((fail + 1)); failed+=("$name"); echo "--- FAIL $name (exit $rc, ${secs}s)" ;;
  esac
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
