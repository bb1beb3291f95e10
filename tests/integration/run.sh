#!/usr/bin/env bash
# Runs every tests/integration/t_*.sh and prints one closing summary line.
# A test exits 0 (pass), 77 (skip: it printed why) or anything else (fail).
#
# Where the VMs run (EMBER_KVM=auto|host|emulated, default auto):
#   host      this machine's /dev/kvm;
#   emulated  each test inside its own emulated KVM host (tests/kvmhost/run:
#             QEMU's TCG with nested SVM), killed from outside at the test's
#             deadline (the emulated host can freeze: docs/testing.md);
#   auto      host when /dev/kvm opens, the tiny test guest runs on it and
#             it is hardware KVM, else emulated. On a kvm-pvm host (software
#             KVM, no guest userspace system calls: docs/host-compat.md) every
#             test runs emulated, where guest userspace runs, and the tests
#             that say "# integration: kvm-pvm" run on the host's /dev/kvm as
#             well, as NAME@kvm-pvm: they test what only kvm-pvm needs (Ember's
#             interpreter). The choice is printed first.
# Tests run JOBS at a time (default: the number of cores). Each test's output
# is printed whole, in order. A test may say, in a comment line of its own:
#   # integration: long              start it first
#   # integration: deadline SECONDS  its deadline (default 900)
#   # integration: smp N             vCPUs of its emulated host (default 1)
#   # integration: kvm-pvm           also run on a kvm-pvm host's /dev/kvm (auto)
# Environment: EMBER, EMBER_ASAN, JAILER, GUEST_DIR, BUILD (set by `make
# integration`), ONLY="substring ..." to run the tests whose names contain one of them,
# RETRIES (default 2): how many failed tests in all get one more run in a fresh emulated
# host (the emulated host's own faults, docs/testing.md); both runs are printed, a test
# that passed only on its retry is named at the end. Tests on this machine's /dev/kvm
# are never run again.
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
export EMBER=${EMBER:-build/ember} EMBER_ASAN=${EMBER_ASAN:-build/asan/ember} JAILER=${JAILER:-build/ember-jailer}
export GUEST_DIR=${GUEST_DIR:-build/guest} BUILD=${BUILD:-build}
export TEST_GUEST=${TEST_GUEST:-$BUILD/test-guest.elf} TEST_GUEST_PVH=${TEST_GUEST_PVH:-$BUILD/test-guest-pvh.elf}
source "$here/lib.sh"
jobs=${JOBS:-$(nproc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# --- Which KVM.
kvm_mode=${EMBER_KVM:-auto} pvm_too=0
host_kvm_works() { # the tiny guest boots on this machine's /dev/kvm
  kvm_usable || { why="no usable /dev/kvm"; return 1; }
  timeout --signal=KILL 30 "$EMBER" --kernel "$TEST_GUEST" --cmdline ember-test=hello </dev/null >"$out/probe" 2>&1 ||
    { why="/dev/kvm opens but the tiny test guest does not run: $(tail -1 "$out/probe")"; return 1; }
}
case $kvm_mode in
  host) host_kvm_works || { echo "integration: EMBER_KVM=host but $why"; exit 1; } ;;
  emulated) why="EMBER_KVM=emulated" ;;
  auto) if ! host_kvm_works; then kvm_mode=emulated
        elif is_pvm_host; then
          kvm_mode=emulated pvm_too=1
          why="this machine's /dev/kvm is kvm-pvm (software KVM: guest userspace cannot make system calls there); the tests marked kvm-pvm also run on it"
        else kvm_mode=host; fi ;;
  *) echo "integration: EMBER_KVM must be auto, host or emulated (got '$kvm_mode')"; exit 1 ;;
esac
if [ "$kvm_mode" = host ]; then
  echo "integration: VMs run on this machine's /dev/kvm ($(is_pvm_host && echo "kvm-pvm, software KVM" || echo "hardware KVM"))"
else
  echo "integration: VMs run inside the emulated KVM host ($why): each test in its own QEMU TCG -cpu max with nested SVM (tests/kvmhost)"
  kvmhost_dir=$("$repo/tests/kvmhost/build.sh") || { echo "integration: cannot build the emulated KVM host"; exit 1; }
  export KVMHOST_DIR=$kvmhost_dir
  echo "integration: emulated host: $(cat "$kvmhost_dir/package")"
fi

# Whatever a test needs from the network is fetched here, on this machine:
# the emulated host has no network.
if [ -z "${ONLY:-}" ] || [[ " $ONLY " == *debian* ]]; then
  source "$here/debian_kernel.sh"
  debian_kernel >/dev/null || echo "integration: (Debian's cloud kernel could not be fetched; its test will say so)"
fi

deadline_of() { sed -n 's/^# integration: deadline \([0-9]\+\).*/\1/p' "$1" | head -1; }
smp_of() { sed -n 's/^# integration: smp \([0-9]\+\).*/\1/p' "$1" | head -1; }

# take_retry: 0 if one of the suite's RETRIES (default 2; tests run in parallel) is still free.
retries=${RETRIES:-2}
take_retry() {
  local n
  for n in $(seq "$retries"); do mkdir "$out/retry.$n" 2>/dev/null && return 0; done
  return 1
}

run_one() { # NAME PATH MODE
  local start rc dl try
  start=$(date +%s)
  if [ "$3" = host ]; then
    bash "$2" > "$out/$1.log" 2>&1
    rc=$?
  else
    dl=$(deadline_of "$2"); dl=${dl:-900}
    smp=$(smp_of "$2"); smp=${smp:-1}
    for try in 1 2; do
      "$repo/tests/kvmhost/run" --timeout "$dl" --smp "$smp" --log "$out/$1.kernel.log" -- bash "$2" > "$out/$1.log" 2>&1
      rc=$?
      # 124: deadline (a frozen emulated host); 125: the emulated host itself failed.
      # Either costs this test one fresh emulated host, then counts as a failure.
      [ $rc -eq 124 ] || [ $rc -eq 125 ] || break
      cp "$out/$1.log" "$out/$1.try$try.log"
      echo "integration: $1: emulated host ended without a result (exit $rc, try $try)" >> "$out/$1.infra"
    done
    # A failed check gets one more run in a fresh emulated host, RETRIES per suite run at most:
    # the emulated host's own faults (docs/testing.md) break a guest now and then. Both
    # attempts are printed, and one that passes only on its retry is named at the end.
    if [ $rc -ne 0 ] && [ $rc -ne 77 ] && take_retry; then
      cp "$out/$1.log" "$out/$1.first.log"
      [ -f "$out/$1.kernel.log" ] && cp "$out/$1.kernel.log" "$out/$1.first.kernel.log"
      echo "$rc" > "$out/$1.retried"
      "$repo/tests/kvmhost/run" --timeout "$dl" --smp "$smp" --log "$out/$1.kernel.log" -- bash "$2" > "$out/$1.log" 2>&1
      rc=$?
    fi
  fi
  echo "$rc $(( $(date +%s) - start ))" > "$out/$1.rc"
}

entries=() long=() # "NAME PATH MODE", MODE host or emulated
add_entry() {
  entries+=("$1 $2 $3")
  # A test that says "# integration: long" starts first, so the others share the remaining cores meanwhile.
  grep -q "^# integration: long" "$2" && long+=("$1 $2 $3")
}
for t in "$here"/t_*.sh; do
  if [ -n "${ONLY:-}" ]; then
    hit=0; for o in $ONLY; do [[ "$(basename "$t")" == *"$o"* ]] && hit=1; done
    [ $hit = 1 ] || continue
  fi
  add_entry "$(basename "$t" .sh)" "$t" "$kvm_mode"
  [ $pvm_too = 1 ] && grep -q "^# integration: kvm-pvm" "$t" && add_entry "$(basename "$t" .sh)@kvm-pvm" "$t" host
done
order=("${long[@]}")
for e in "${entries[@]}"; do [[ " ${long[*]} " == *" $e "* ]] || order+=("$e"); done
for e in "${order[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
  read -r name path mode <<<"$e"
  run_one "$name" "$path" "$mode" &
done
wait

names=(); for e in "${entries[@]}"; do names+=("${e%% *}"); done
pass=0 fail=0 skip=0 failed=()
for name in "${names[@]}"; do
  read -r rc secs < "$out/$name.rc"
  echo "=== $name"
  for f in "$out/$name".try*.log; do
    [ -f "$f" ] || continue
    echo "--- output of an emulated host that ended without a result:"; cat "$f"
  done
  [ -f "$out/$name.infra" ] && cat "$out/$name.infra"
  if [ -f "$out/$name.retried" ]; then
    echo "--- first attempt: FAILED (exit $(cat "$out/$name.retried")); its output:"; cat "$out/$name.first.log"
    [ -f "$out/$name.first.kernel.log" ] && { echo "--- first attempt: the emulated host's kernel log (tail):"; tail -n 15 "$out/$name.first.kernel.log"; }
    echo "--- second attempt, in a fresh emulated host:"
  fi
  cat "$out/$name.log"
  case $rc in
    0) pass=$((pass + 1)); echo "--- PASS $name (${secs}s)" ;;
    77) skip=$((skip + 1)); echo "--- SKIP $name (${secs}s)" ;;
    *) fail=$((fail + 1)); failed+=("$name")
       [ "$kvm_mode" = emulated ] && [ -f "$out/$name.kernel.log" ] && {
         echo "--- emulated host's kernel log (tail):"; tail -n 15 "$out/$name.kernel.log"; }
       echo "--- FAIL $name (exit $rc, ${secs}s)" ;;
  esac
done
# Each failure (and each pass that needed its retry) again, briefly, at the end: CI reports often
# keep only a log's last lines.
retried=()
for name in "${names[@]}"; do
  [ -f "$out/$name.retried" ] && retried+=("$name")
  if [[ " ${failed[*]} " == *" $name "* ]]; then
    echo "=== failed: $name: its first failed checks"
    grep -a "^not ok" "$out/$name.log" | head -n 8
    [ "$kvm_mode" = emulated ] && [ -f "$out/$name.kernel.log" ] && {
      echo "--- $name: the emulated host's kernel log (tail):"; tail -n 6 "$out/$name.kernel.log"; }
  elif [ -f "$out/$name.retried" ]; then
    echo "=== passed only on its retry: $name: the first attempt's failed checks"
    grep -a "^not ok" "$out/$name.first.log" | head -n 8
  fi
done
echo "integration: per-test wall time ($kvm_mode KVM):$(for n in "${names[@]}"; do read -r _ s < "$out/$n.rc"; printf ' %s=%ss' "${n#t_}" "$s"; done)"
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
[ ${#retried[@]} -gt 0 ] && echo "retried once in a fresh emulated host (see each one's first attempt above): ${retried[*]}"
[ "$kvm_mode" = emulated ] && echo "integration: every test above ran inside the emulated KVM host$( [ $pvm_too = 1 ] && echo ", and those named @kvm-pvm on this machine's kvm-pvm /dev/kvm as well")"
echo "integration: $pass passed, $fail failed, $skip skipped${retried[0]+; retried once: ${retried[*]}}"
[ "$fail" -eq 0 ]
