#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh and prints one closing summary line.
# A test exits 0 (pass), 77 (skip: it printed why) or anything else (fail).
# Tests run JOBS at a time (default: the number of cores): most of their time
# is one emulated guest on one core. Each test's output is printed whole.
# Environment: EMBER, EMBER_ASAN, JAILER, GUEST_DIR, BUILD (set by `make integration`),
# ONLY=substring to run a subset.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export EMBER=${EMBER:-build/ember} EMBER_ASAN=${EMBER_ASAN:-build/asan/ember} JAILER=${JAILER:-build/ember-jailer}
export GUEST_DIR=${GUEST_DIR:-build/guest} BUILD=${BUILD:-build}
export TEST_GUEST=${TEST_GUEST:-$BUILD/test-guest.elf} TEST_GUEST_PVH=${TEST_GUEST_PVH:-$BUILD/test-guest-pvh.elf}
jobs=${JOBS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

run_one() { # NAME PATH
  local start rc
  start=$(date +%s)
  bash "$2" > "$out/$1.log" 2>&1
  rc=$?
  echo "$rc $(( $(date +%s) - start ))" > "$out/$1.rc"
}

tests=() long=()
for t in "$here"/t_*.sh; do
  [ -n "${ONLY:-}" ] && [[ "$(basename "$t")" != *"$ONLY"* ]] && continue
  tests+=("$t")
  # A test that says "# integration: long" starts first, so the others share the remaining cores meanwhile.
  grep -q "^# integration: long" "$t" && long+=("$t")
done
order=("${long[@]}")
for t in "${tests[@]}"; do [[ " ${long[*]} " == *" $t "* ]] || order+=("$t"); done
for t in "${order[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  run_one "$(basename "$t" .sh)" "$t" &
done
wait

pass=0 fail=0 skip=0 failed=()
for t in "${tests[@]}"; do
  name=$(basename "$t" .sh)
  read -r rc secs < "$out/$name.rc"
  echo "=== $name"
  cat "$out/$name.log"
  case $rc in
    0) pass=$((pass + 1)); echo "--- PASS $name (${secs}s)" ;;
    77) skip=$((skip + 1)); echo "--- SKIP $name (${secs}s)" ;;
    *) fail=$((fail + 1)); failed+=("$name"); echo "--- FAIL $name (exit $rc, ${secs}s)" ;;
  esac
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "integration: $pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
