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

# kvm_usable, is_pvm_host
source "$(dirname "${BASH_SOURCE[0]}")/../../tools/kvm_host.sh"
# require_kvm: a test that boots a guest needs KVM. Without it the test skips,
# except under CI=true, where a skip for lack of KVM would let CI be green
# while no VM ran: there it fails. (tests/integration/run.sh runs the tests
# inside the emulated KVM host, tests/kvmhost/, when this machine has none.)
require_kvm() {
  kvm_usable && return 0
  local why="/dev/kvm cannot be opened here ($( [ -e /dev/kvm ] && echo "not accessible to $(id -un)" || echo absent))"
  if [ "${CI:-}" = true ]; then
    echo "not ok - $why, and CI must not skip VM tests (run them through tests/integration/run.sh, which uses the emulated KVM host)"
    exit 1
  fi
  skip "$why: KVM tests need a host with KVM (tests/integration/run.sh provides an emulated one)"
}
# in_emulated_host: running inside tests/kvmhost (QEMU TCG): known emulator
# deviations may be named and skipped, one check at a time, saying why.
in_emulated_host() { [ "${EMBER_KVMHOST:-0}" = 1 ]; }

# run_ember OUT ERR TIMEOUT ARGS...: runs ember, stdin from /dev/null; sets RC.
run_ember_bin() {
  local bin=$1 out=$2 err=$3 to=$4; shift 4
  timeout --signal=KILL "$to" "$bin" "$@" </dev/null >"$out" 2>"$err"
  RC=$?
}

# api SOCK METHOD PATH [BODY]: one request to ember's API on its Unix socket (curl; the Python
# tests and benchmarks use tests/lib/ember_http.py). Sets CODE (the HTTP status, 000 when nothing
# answered) and BODY (the response body, trailing newlines dropped). A BODY is sent as JSON;
# @FILE sends a file's bytes. API_MAX_TIME bounds one request in seconds (default 30).
api() {
  local sock=$1 m=$2 p=$3 out
  local args=(-s -w '\n%{http_code}' --max-time "${API_MAX_TIME:-30}" --unix-socket "$sock" -X "$m")
  [ $# -ge 4 ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
  out=$(curl "${args[@]}" "http://localhost$p" 2>/dev/null)
  CODE=${out##*$'\n'}
  if [[ "$out" == *$'\n'* ]]; then BODY=${out%$'\n'*}; else BODY=; fi
  while [[ "$BODY" == *$'\n' ]]; do BODY=${BODY%$'\n'}; done
}
# api_answers SOCK: 0 once ember's API answers GET / on SOCK (any status), within a second.
api_answers() { curl -s -o /dev/null --max-time 1 --unix-socket "$1" http://localhost/ 2>/dev/null; }

# expect_code DESCRIPTION WANT SOCK METHOD PATH [BODY]: one request (api) answered with status WANT.
expect_code() {
  local d=$1 want=$2; shift 2
  api "$@"
  check "$d: $want (got $CODE${BODY:+ $BODY})" test "$CODE" = "$want"
}
# wait_exit PID SECONDS: waits for PID to end and sets RC (124, and PID killed, if it is still running).
wait_exit() {
  for _ in $(seq $(($2 * 10))); do
    kill -0 "$1" 2>/dev/null || { wait "$1"; RC=$?; return; }
    sleep 0.1
  done
  kill -KILL "$1" 2>/dev/null; wait "$1" 2>/dev/null; RC=124
}
# wait_for FILE REGEX SECONDS: 0 once FILE (read as text, binary or not) has a line matching REGEX.
wait_for() {
  for _ in $(seq $(($3 * 10))); do grep -qaE -- "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  return 1
}
# TCP_ECHO_CHECK ADDR PORT LINE SECONDS: python3 program; 0 once a TCP echo service at ADDR:PORT sends LINE back.
TCP_ECHO_CHECK=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tcp_echo_check.py

# netns_add NS: a network namespace with its loopback up; fails if it cannot be made here.
netns_add() { ip netns add "$1" && ip -n "$1" link set lo up; }
# netns_tap NS TAP [ADDR/PREFIX]: a vnet_hdr tap in NS (virtio-net's header), its host address if given, up.
netns_tap() {
  ip -n "$1" tuntap add dev "$2" mode tap vnet_hdr || return 1
  [ -z "${3:-}" ] || ip -n "$1" addr add "$3" dev "$2" || return 1
  ip -n "$1" link set "$2" up
}
