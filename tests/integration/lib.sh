# Helpers shared by the integration tests (sourced, not run).
# Each check prints "ok - ..." or "not ok - ..." and counts failures in $FAILS.
FAILS=0
ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; FAILS=$((FAILS + 1)); }
check() { # check DESCRIPTION COMMAND...
  local d=$1; shift
  if "$@"; then ok "$d"; else not_ok "$d"; fi
}
finish() { [ "$FAILS" -eq 0 ] && exit 0; echo "$FAILS check(s) failed"; exit 1; }
skip() { echo "skip: $*"; exit 77; }

require_kvm() {
  [ -e /dev/kvm ] || skip "/dev/kvm is absent: KVM tests need a host with KVM"
  [ -r /dev/kvm ] && [ -w /dev/kvm ] || skip "/dev/kvm is not accessible to $(id -un)"
}
is_pvm_host() { [ -e /sys/module/kvm_pvm ]; }

# run_ember OUT ERR TIMEOUT ARGS...: runs ember, stdin from /dev/null; sets RC.
run_ember_bin() {
  local bin=$1 out=$2 err=$3 to=$4; shift 4
  timeout --signal=KILL "$to" "$bin" "$@" </dev/null >"$out" 2>"$err"
  RC=$?
}
