#!/usr/bin/env bash
# Clients that keep their connection to the API open (firecracker-go-sdk keeps
# an HTTP keep-alive connection; others stop mid-request) must not turn a
# stop into a seccomp kill: stopping the API server with live connections
# closes them from the VMM thread. SIGTERM, SIGINT and a guest reboot each
# end ember with status 0 while one connection is idle after a full
# request/response and another has sent half a request.
source "$(dirname "$0")/lib.sh"
require_kvm
command -v python3 >/dev/null || skip "python3 is needed for the held connections"
tmp=$(mktemp -d); pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

# hold SOCK: two connections, one idle after a keep-alive GET /, one mid-request;
# they stay open until the process is killed. Writes SOCK.held once both are in place.
cat >"$tmp/hold.py" <<'PY'
import socket, sys, time
path = sys.argv[1]
a = socket.socket(socket.AF_UNIX); a.connect(path)
a.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n")
got = b""
while b"\r\n\r\n" not in got:
    got += a.recv(4096)
b = socket.socket(socket.AF_UNIX); b.connect(path)
b.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{\"vcpu")
open(path + ".held", "w").write(got.split(b"\r\n")[0].decode() + "\n")
time.sleep(600)
PY

# start NAME [ARGS...]: ember with an API socket, plus the holder; sets EPID HPID.
start() {
  local name=$1; shift
  rm -f "$tmp/api.sock" "$tmp/api.sock.held"
  "$EMBER" --api-sock "$tmp/api.sock" "$@" </dev/null >"$tmp/out" 2>"$tmp/err" &
  EPID=$!; pids+=("$EPID")
  for _ in $(seq 200); do [ -S "$tmp/api.sock" ] && break; sleep 0.05; done
  python3 "$tmp/hold.py" "$tmp/api.sock" & HPID=$!; pids+=("$HPID")
  for _ in $(seq 200); do [ -s "$tmp/api.sock.held" ] && break; sleep 0.05; done
  check "$name: both connections held (first answered: $(cat "$tmp/api.sock.held" 2>/dev/null))" grep -q "HTTP/1.1 200" "$tmp/api.sock.held"
}
ended() { # NAME: waits for ember, then checks exit 0 and no seccomp report
  local rc
  for _ in $(seq 300); do kill -0 "$EPID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$EPID" 2>/dev/null; then kill -9 "$EPID"; not_ok "$1: ember still running 30 s later"; fi
  wait "$EPID"; rc=$?
  kill "$HPID" 2>/dev/null; wait "$HPID" 2>/dev/null
  check "$1: ember exit 0 with connections held (got $rc)" test "$rc" -eq 0
  check "$1: no seccomp kill" bash -c "! grep -q 'forbidden system call' '$tmp/err'"
  check "$1: the socket is removed" test ! -e "$tmp/api.sock"
  [ "$FAILS" -gt 0 ] && tail -3 "$tmp/err"
}

for sig in TERM INT; do
  start "SIG$sig before boot"
  kill -s $sig "$EPID"
  ended "SIG$sig before boot"
done

# A running guest: the tiny guest's idle test waits until stopped.
start "SIGTERM, guest running"
api "$tmp/api.sock" PUT /boot-source "{\"kernel_image_path\": \"$TEST_GUEST\", \"boot_args\": \"ember-test=idle\"}"
api "$tmp/api.sock" PUT /actions '{"action_type": "InstanceStart"}'
for _ in $(seq 200); do grep -q "EMBER-TEST" "$tmp/out" && break; sleep 0.05; done
kill -TERM "$EPID"
ended "SIGTERM, guest running"

# The guest reboots by itself (hello resets through the i8042 when done).
start "guest reboot"
api "$tmp/api.sock" PUT /boot-source "{\"kernel_image_path\": \"$TEST_GUEST\", \"boot_args\": \"ember-test=hello\"}"
api "$tmp/api.sock" PUT /actions '{"action_type": "InstanceStart"}'
ended "guest reboot"
check "guest reboot: the guest ran" grep -q "EMBER-TEST: PASS hello" "$tmp/out"
finish
