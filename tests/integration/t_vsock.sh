#!/usr/bin/env bash
# virtio-vsock end to end with the project's Linux guest and its userspace
# (deploy/guest/vsock-helper.c), booted from a config file with a "vsock"
# section. The guest's init starts a vsock echo service on port 5000
# (ember.vsock-echo) and sends 1 MiB + 7 random bytes to the host's echo
# service at <uds_path>_6000, comparing the echo's sha256 (ember.check=
# vsock-echo). The host side (python3, Firecracker's CONNECT protocol on
# uds_path) then: echoes 1 MiB + 7 random bytes through the guest (sha256
# compared), 64 connections at once, a slow reader (back-pressure), a client
# that closes mid-stream, a CONNECT to a port nobody listens on, garbage
# CONNECT lines and silent clients; after each misbehaviour ember still serves.
# The guest's echo service has a control port (5001, vsock-helper listen 5000
# 5001): while a host->guest stream flows, the host asks the guest to SIGKILL
# the echo process serving it; that connection must end (EOF or reset, no
# hang) while another connection goes on and a new one works.
# Then, with a host connection open, the VM is paused, snapshotted and ended;
# a fresh ember loads the snapshot (File backend, resume_vm, vsock_override):
# the guest gets TRANSPORT_RESET (its echo process for the old connection
# reads a reset), and a new host->guest CONNECT echoes.
# integration: deadline 1500
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
command -v python3 >/dev/null || skip "python3 is needed for the host's end"
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
tmp=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
trap cleanup EXIT
BYTES=$((1024 * 1024 + 7))
UDS=$tmp/v.sock

cat > "$tmp/host.py" <<'PY'
import hashlib, os, socket, sys, threading, time

def serve(c, log):
    h, n = hashlib.sha256(), 0
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
            n += len(d)
            c.sendall(d)
    finally:
        c.close()
    with open(log, "a") as f:
        f.write("received %d bytes sha256 %s\n" % (n, h.hexdigest()))

def echo_server(path, log):
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(128)
    open(log + ".ready", "w").write("1\n")
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c, log), daemon=True).start()

TIMEOUT = 600

def connect(uds, port):
    return connect_port(uds, port)[0]

def connect_port(uds, port):
    """A host->guest connection and the host port Ember gave it (the guest's peer port)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(TIMEOUT)
    s.connect(uds)
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        ch = s.recv(1)
        if not ch:
            raise OSError("closed before OK (got %r)" % line)
        line += ch
    if not line.startswith(b"OK ") or not line[3:-1].isdigit():
        raise OSError("answer %r is not OK <port>" % line)
    return s, int(line[3:-1])

def roundtrip(uds, port, data, slow=False):
    s = connect(uds, port)
    err = []
    def sender():
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError as e:
            err.append(e)
    t = threading.Thread(target=sender)
    t.start()
    got = bytearray()
    while True:
        d = s.recv(4096 if slow else 65536)
        if not d:
            break
        got += d
        if slow:
            time.sleep(0.005)
    t.join()
    s.close()
    if err:
        raise err[0]
    return bytes(got)

def report(ok, what):
    print(("ok - " if ok else "not ok - ") + what, flush=True)

def closed_by_ember(s, secs=60):
    s.settimeout(secs)
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return True
            if d.startswith(b"OK"):
                return False
    except ConnectionResetError:
        return True
    except OSError:
        return False

def still_serves(uds, port, what):
    data = os.urandom(4099)
    try:
        report(roundtrip(uds, port, data) == data, "after %s: a new connection echoes 4099 bytes" % what)
    except OSError as e:
        report(False, "after %s: a new connection fails: %s" % (what, e))

def ask(uds, ctl, line):
    s = connect(uds, ctl)
    s.sendall(line)
    got = b""
    while True:
        d = s.recv(4096)
        if not d:
            break
        got += d
    s.close()
    return got.decode(errors="replace").strip()

def kill_mid_stream(uds, port, ctl):
    """The guest's echo process is SIGKILLed while a host->guest stream flows."""
    t_start = time.time()
    other = connect(uds, port)
    first = os.urandom(1000)
    other.sendall(first)
    got = b""
    while len(got) < len(first):
        d = other.recv(65536)
        if not d:
            break
        got += d
    victim, hport = connect_port(uds, port)
    sent, stop, send_err = bytearray(), threading.Event(), []
    def sender():
        try:
            while not stop.is_set():
                d = os.urandom(65536)
                sent.extend(d)  # before sending: what is echoed is always a prefix of it
                victim.sendall(d)
        except OSError as e:
            send_err.append(e)
    victim.settimeout(120)
    t = threading.Thread(target=sender, daemon=True)
    t.start()
    echoed = bytearray()
    while len(echoed) < 256 * 1024:
        d = victim.recv(65536)
        if not d:
            break
        echoed += d
    ports = ask(uds, ctl, b"LIST\n")
    answer = ask(uds, ctl, b"KILL %d\n" % hport)
    t0, end = time.time(), "timeout (hung)"
    try:
        while True:
            d = victim.recv(65536)
            if not d:
                end = "EOF"
                break
            echoed += d
    except ConnectionResetError:
        end = "reset"
    except OSError as e:
        end = "error %s" % e
    waited = time.time() - t0
    t.join(60)
    stop.set()
    report(answer.startswith("killed ") and end in ("EOF", "reset"),
           "guest echo process for host port %d (LIST before: %s) answered %r, killed after %d bytes echoed: "
           "the host's connection saw %s %.1f s later" % (hport, ports, answer, len(echoed), end, waited))
    report(not t.is_alive() and bool(send_err),
           "... the host's writer was not left hanging (%s)" % (send_err[0] if send_err else "still blocked" if t.is_alive() else "no error"))
    report(bytes(echoed) == bytes(sent[:len(echoed)]), "... the %d bytes echoed before the kill are what was sent" % len(echoed))
    more = os.urandom(3000)
    try:
        other.sendall(more)
        other.shutdown(socket.SHUT_WR)
        rest = b""
        while True:
            d = other.recv(65536)
            if not d:
                break
            rest += d
        report(got + rest == first + more, "another connection open across the kill still echoes (%d bytes)" % len(got + rest))
    except OSError as e:
        report(False, "another connection open across the kill: %s" % e)
    other.close()
    victim.close()
    left = ask(uds, ctl, b"LIST\n")
    report(str(hport) not in left.split(), "the guest no longer lists the killed connection (%s)" % left)
    still_serves(uds, port, "the guest's echo process was killed mid-stream")
    print("  the kill steps took %.1f s" % (time.time() - t_start), flush=True)

def client(uds, port, nbytes, ctl):
    data = os.urandom(nbytes)
    t0 = time.time()
    try:
        got = roundtrip(uds, port, data)
        report(hashlib.sha256(got).digest() == hashlib.sha256(data).digest() and len(got) == len(data),
               "host->guest echo of %d bytes: got %d back, sha256 %s (%.1f s)" %
               (len(data), len(got), "equal" if got == data else "DIFFERENT", time.time() - t0))
    except OSError as e:
        report(False, "host->guest echo of %d bytes: %s" % (len(data), e))

    results = [None] * 64
    def one(i):
        d = os.urandom(32768 + i)
        try:
            results[i] = roundtrip(uds, port, d) == d
        except OSError as e:
            results[i] = str(e)
    t0 = time.time()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(64)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    bad = [(i, r) for i, r in enumerate(results) if r is not True]
    report(not bad, "64 concurrent connections each echo 32 KiB+ intact (%.1f s)%s" %
           (time.time() - t0, "; failed: %r" % bad[:4] if bad else ""))

    data = os.urandom(512 * 1024)
    try:
        report(roundtrip(uds, port, data, slow=True) == data, "a slow reader gets all 512 KiB intact (back-pressure)")
    except OSError as e:
        report(False, "slow reader: %s" % e)

    try:
        s = connect(uds, port)
        s.sendall(os.urandom(256 * 1024)[:200000])
        s.recv(1000)
        s.close()
        report(True, "a host client closed mid-stream")
    except OSError as e:
        report(False, "client closing mid-stream: %s" % e)
    still_serves(uds, port, "a client closed mid-stream")

    s = socket.socket(socket.AF_UNIX)
    s.connect(uds)
    s.sendall(b"CONNECT 4999\n")
    report(closed_by_ember(s), "CONNECT to a guest port nobody listens on: closed without OK")
    s.close()

    lines = [b"HELLO\n", b"CONNECT\n", b"CONNECT abc\n", b"CONNECT 99999999999\n", b"CONNECT 4294967296\n",
             b"connect 5000\n", b"X" * 100, b"\x00\xff" * 20 + b"\n"]
    for line in lines:
        s = socket.socket(socket.AF_UNIX)
        s.connect(uds)
        s.sendall(line)
        report(closed_by_ember(s), "garbage %r: disconnected" % line[:24])
        s.close()
    silent = []
    for _ in range(200):
        s = socket.socket(socket.AF_UNIX)
        s.connect(uds)
        silent.append(s)
    half = socket.socket(socket.AF_UNIX)
    half.connect(uds)
    half.sendall(b"CONN")
    still_serves(uds, port, "garbage lines, 200 silent clients and a line without its end")
    for s in silent:
        s.close()
    half.close()
    kill_mid_stream(uds, port, ctl)

def hold(uds, port, ready):
    """A connection that echoes once, then stays open until ember goes away."""
    s, hport = connect_port(uds, port)
    s.sendall(b"before the snapshot\n")
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(100)
    open(ready, "w").write("%d\n" % hport)
    s.settimeout(None)
    try:
        rest = s.recv(100)
        print("old connection: %s once ember went away" % ("EOF" if not rest else "data %r" % rest), flush=True)
    except OSError as e:
        print("old connection: %s once ember went away" % e, flush=True)

if sys.argv[1] == "server":
    echo_server(sys.argv[2], sys.argv[3])
elif sys.argv[1] == "hold":
    hold(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif sys.argv[1] == "list":
    print(ask(sys.argv[2], int(sys.argv[3]), b"LIST\n"))
elif sys.argv[1] == "echo":
    still_serves(sys.argv[2], int(sys.argv[3]), sys.argv[4])
else:
    client(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
PY

python3 "$tmp/host.py" server "${UDS}_6000" "$tmp/hostecho.log" & PIDS+=($!)
for _ in $(seq 100); do [ -s "$tmp/hostecho.log.ready" ] && break; sleep 0.05; done
[ -s "$tmp/hostecho.log.ready" ] || not_ok "the host's echo service did not start"

cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
control() { truncate -s 1M "$tmp/control.img"; printf '%s\n' "$1" | dd of="$tmp/control.img" conv=notrunc status=none; }
control hold
cat > "$tmp/config.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_DIR/vmlinux",
                  "boot_args": "$LINUX_CMDLINE_BASE ember.vsock-echo=5000:5001 ember.check=vsock-echo:6000:$BYTES ember.hold=/dev/vdb"},
  "drives": [{"drive_id": "rootfs", "path_on_host": "$tmp/root.ext4", "is_root_device": true, "is_read_only": false},
             {"drive_id": "control", "path_on_host": "$tmp/control.img", "is_root_device": false, "is_read_only": true}],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "metrics": {"metrics_path": "$tmp/metrics.json"},
  "vsock": {"guest_cid": 3, "uds_path": "$UDS"}
}
JSON
: > "$tmp/metrics.json"
S=$tmp/api.sock
timeout --signal=KILL "${LINUX_BOOT_TIMEOUT:-600}" "$EMBER" --config-file "$tmp/config.json" --api-sock "$S" --log-level info \
  </dev/null >"$tmp/out" 2>"$tmp/err" & EPID=$!; PIDS+=($EPID)
wait_for() { # FILE REGEX SECONDS
  for _ in $(seq $(($3 * 10))); do grep -qaE -- "$2" "$1" 2>/dev/null && return 0; kill -0 $EPID 2>/dev/null || break; sleep 0.1; done
  grep -qaE -- "$2" "$1" 2>/dev/null
}
booted=0
if wait_for "$tmp/out" "EMBER-CHECK: done" 900 && userspace_ran "$tmp/out"; then
  booted=1
  line=$(grep -a "EMBER-CHECK: vsock-echo" "$tmp/out" | tr -d '\r' | head -1)
  sha=$(echo "$line" | sed -n 's/.*sent [0-9]* bytes sha256 \([0-9a-f]*\) .*/\1/p')
  check "guest->host: the guest sent $BYTES bytes and got them back, sha256 equal ($line)" \
    grep -qaE "EMBER-CHECK: vsock-echo sent $BYTES bytes sha256 $sha to host port 6000, got back $BYTES bytes sha256 $sha" "$tmp/out"
  check "guest->host: the host's end received exactly those $BYTES bytes" grep -q "received $BYTES bytes sha256 $sha" "$tmp/hostecho.log"
  check "guest: no check failed" grep -qaF "EMBER-CHECK: done: 1 check(s), 0 failed" "$tmp/out"
  check "guest: the vsock echo service started" grep -qa "EMBER-VSOCK-ECHO: vsock echo service on port 5000" "$tmp/out"
  sleep 1 # the echo service's listen follows its start line
  python3 "$tmp/host.py" client "$UDS" 5000 "$BYTES" 5001 > "$tmp/client.log" 2>&1
  while IFS= read -r l; do
    case $l in "ok - "*) ok "${l#ok - }" ;; "not ok - "*) not_ok "${l#not ok - }" ;; *) echo "  $l" ;; esac
  done < "$tmp/client.log"
  check "host client: every step reported (21 expected, got $(grep -c '^ok - ' "$tmp/client.log"))" \
    test "$(grep -c '^ok - ' "$tmp/client.log")" -eq 21
  # The metrics (FlushMetrics): the stream bytes both ways (rx: to the guest) and the connections.
  expect_code "FlushMetrics" 204 "$S" PUT /actions '{"action_type":"FlushMetrics"}'
  last=$(grep -v '^$' "$tmp/metrics.json" | tail -1)
  metric() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["vsock"][sys.argv[2]])' "$last" "$1" 2>/dev/null; }
  for k in rx_bytes_count tx_bytes_count; do
    v=$(metric $k); check "metrics: vsock.$k >= $((2 * BYTES)) (${v:-none})" test "${v:-0}" -ge $((2 * BYTES))
  done
  v=$(metric conns_added); check "metrics: vsock.conns_added >= 66 (${v:-none})" test "${v:-0}" -ge 66
fi
show_on_failure "$tmp/out" "$tmp/err"
[ "$booted" = 1 ] || finish

echo "# snapshot with a host connection open; restore in a fresh ember"
F0=$FAILS T_SNAP=$(date +%s)
python3 "$tmp/host.py" hold "$UDS" 5000 "$tmp/hold.port" > "$tmp/hold.log" 2>&1 & HOLD=$!; PIDS+=($HOLD)
for _ in $(seq 600); do [ -s "$tmp/hold.port" ] && break; sleep 0.1; done
HPORT=$(cat "$tmp/hold.port" 2>/dev/null)
check "a host connection (host port ${HPORT:-none}) echoed before the snapshot" test -n "$HPORT"
listed=$(python3 "$tmp/host.py" list "$UDS" 5001 2>&1)
check "the guest lists it as open ($listed)" grep -qw -- "${HPORT:-none}" <<<"$listed"
expect_code "PATCH /vm Paused" 204 "$S" PATCH /vm '{"state":"Paused"}'
expect_code "PUT /snapshot/create" 204 "$S" PUT /snapshot/create "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"$tmp/s.state\",\"mem_file_path\":\"$tmp/s.mem\"}"
kill -TERM "$EPID"; wait_exit "$EPID" 60
check "source: SIGTERM while paused: exit 0 (got $RC)" test "$RC" -eq 0
wait_exit "$HOLD" 30
check "the old host connection ended with the old process ($(cat "$tmp/hold.log"))" grep -q "EOF once ember went away\|reset" "$tmp/hold.log"
R=$tmp/r.sock UDS2=$tmp/v2.sock
"$EMBER" --api-sock "$R" --log-level info </dev/null >"$tmp/r.out" 2>"$tmp/r.err" & EPID=$!; PIDS+=($EPID)
for _ in $(seq 500); do api_answers "$R" && break; sleep 0.02; done
expect_code "PUT /snapshot/load (File, resume_vm, vsock_override)" 204 "$R" PUT /snapshot/load \
  "{\"snapshot_path\":\"$tmp/s.state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$tmp/s.mem\"},\"resume_vm\":true,\"vsock_override\":{\"uds_path\":\"$UDS2\"}}"
check "restored: the guest's echo process for host port $HPORT saw its connection reset (TRANSPORT_RESET)" \
  wait_for "$tmp/r.out" "vsock-helper: connection from host port $HPORT: read: " 120
python3 "$tmp/host.py" echo "$UDS2" 5000 "the restore" > "$tmp/restored.log" 2>&1
while IFS= read -r l; do
  case $l in "ok - "*) ok "restored: ${l#ok - }" ;; "not ok - "*) not_ok "restored: ${l#not ok - }" ;; *) echo "  $l" ;; esac
done < "$tmp/restored.log"
check "restored: a new connection echoed through $UDS2" grep -q '^ok - ' "$tmp/restored.log"
listed=$(python3 "$tmp/host.py" list "$UDS2" 5001 2>&1)
check "restored: the guest no longer lists host port $HPORT ($listed)" sh -c "echo '$listed' | grep -q '^ports:' && ! echo '$listed' | grep -qw '$HPORT'"
check "restored: no kernel panic or oops" sh -c "! grep -aqE 'Kernel panic|Oops|BUG:' '$tmp/r.out'"
control reboot
wait_exit "$EPID" 120
check "restored: ember exit 0 after the guest's reboot (got $RC)" test "$RC" -eq 0
check "ember logged no seccomp violation" sh -c "! grep -q 'forbidden system call' '$tmp/err' '$tmp/r.err'"
echo "  snapshot, restore and the checks after it: $(( $(date +%s) - T_SNAP )) s"
[ "$FAILS" -gt "$F0" ] && { echo "--- restored console tail:"; tail -15 "$tmp/r.out"; echo "--- stderr:"; tail -10 "$tmp/r.err"; }
finish
