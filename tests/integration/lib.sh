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
# vmm_diag PID: for a failure's log, what a VMM whose guest stopped answering is doing: each
# thread's state and CPU time now and 2 s later, and its kernel stack; where KVM's trace events
# can be read (root, tracefs: the emulated host), 1 s of them for this process: each vCPU's exit
# reasons and the guest address it last entered at. A vCPU thread that used no CPU, sleeping in
# KVM, is a halted guest CPU; one busy with no exits to Ember is looping inside KVM.
vmm_diag() {
  local p=$1 t tids=() tr=/sys/kernel/tracing
  [ -d "/proc/$p" ] || { echo "--- vmm_diag: process $p has gone"; return 0; }
  thread_line() { echo "$(cat "$1/comm") [${1##*/}]: $(sed 's/.*) //' "$1/stat" | awk '{ print "state " $1 ", cpu " $12 + $13 " ticks" }')"; }
  echo "--- vmm_diag: threads of process $p"
  for t in /proc/"$p"/task/*; do tids+=("${t##*/}"); echo "  $(thread_line "$t"), waits in $(cat "$t/wchan" 2>/dev/null)"; done
  sleep 2
  echo "--- vmm_diag: 2 s later, and kernel stacks"
  for t in /proc/"$p"/task/*; do
    echo "  $(thread_line "$t")"; sed -n '1,6s/^/      /p' "$t/stack" 2>/dev/null
  done
  [ -d "$tr/events/kvm" ] || mount -t tracefs nodev "$tr" 2>/dev/null
  if [ -w "$tr/set_event_pid" ] && [ -d "$tr/events/kvm/kvm_exit" ]; then
    echo > "$tr/trace"; echo "${tids[*]}" > "$tr/set_event_pid"
    echo 1 > "$tr/events/kvm/kvm_exit/enable"; echo 1 > "$tr/events/kvm/kvm_entry/enable"
    sleep 1
    echo 0 > "$tr/events/kvm/kvm_exit/enable"; echo 0 > "$tr/events/kvm/kvm_entry/enable"; echo > "$tr/set_event_pid"
    echo "--- vmm_diag: KVM trace, 1 s: count, thread, event, vCPU, exit reason"
    # A line: "COMM-TID [CPU] FLAGS TIME: kvm_exit: vcpu N reason R rip ..." (COMM may hold spaces).
    grep -v '^#' "$tr/trace" | awk '{ t = substr($0, 1, index($0, " [") - 1); sub(/^ +/, "", t)
        for (i = 1; i <= NF; i++) if ($i ~ /^kvm_(exit|entry):$/) {
          r = ""; for (j = i + 1; j < NF; j++) if ($j == "reason") r = $(j + 1)
          sub(/ +$/, "", t); print t ",", $i, $(i + 1), $(i + 2), r; break } }' | sort | uniq -c | sort -rn | head -12
    echo "--- vmm_diag: each thread's last KVM trace line"
    grep -v '^#' "$tr/trace" | awk '{ t = substr($0, 1, index($0, " [") - 1); last[t] = $0 }
        END { for (k in last) print "  " last[k] }'
    echo > "$tr/trace"
  fi
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
