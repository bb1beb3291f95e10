#!/usr/bin/env bash
# Fault injection (issue #16). One Linux guest booted over the API (root, a
# control drive, a data drive whose image lives on a tiny tmpfs, a healthy
# ext4 data drive, one NIC on tap0 in a network namespace), held up by its
# init (ember.hold) with a TCP echo service (ember.echo). Faults, each checked,
# the VMM still serving after each:
#   1. the data image's filesystem fills up while the guest writes to it: the
#      guest sees I/O errors, ember runs on, block.execute_fails counts them;
#   2. API clients that disconnect mid-request (half a body) and mid-answer
#      (close before reading, or after a few bytes): the next client is
#      answered, no connection fd is left behind;
#   3. the tap is deleted while a ping flood runs: ember logs it (a bounded
#      number of lines: no spin on the dead fd) and the VM goes on: the API,
#      the console and a blk check on the healthy drive still work.
# Then, with the tiny test guest (tests/guest, "counter": runs for ever):
#   4. SIGKILL of ember during PUT /snapshot/create at random moments: a state
#      file under its final name always loads; else a load fails cleanly;
#   5. SIGKILL of ember at random moments of its start-up (--config-file with
#      a writable drive, a tap, a metrics file, an API socket): the next start
#      with the same files is not tripped (the stale socket is replaced).
# ember-jailer under SIGKILL: t_faults_jailer.sh.
# integration: deadline 900
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "a network namespace, taps and a tmpfs mount need root"
for c in ip curl python3 mke2fs; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
tmp=$(mktemp -d)
ns=ember-faults-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  mountpoint -q "$tmp/small" 2>/dev/null && umount "$tmp/small"
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
T0=$(date +%s)
GUEST_IP=172.31.249.2 HOST_IP=172.31.249.1 PORT=7777 MAC=06:00:ac:1f:f9:02
ip netns add "$ns" || skip "cannot create a network namespace here"
ip -n "$ns" link set lo up
for t in tap0 tap1; do ip -n "$ns" tuntap add dev $t mode tap vnet_hdr; done
ip -n "$ns" addr add $HOST_IP/30 dev tap0
ip -n "$ns" link set tap0 up

# ---- helpers
start_ember() { # NAME SOCK [ARGS...]: ember in the namespace, console in NAME.out; EPID set once the socket answers
  local name=$1 sock=$2; shift 2
  ip netns exec "$ns" "$EMBER" --api-sock "$sock" --log-level info "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
  EPID=$!; PIDS+=("$EPID")
  for _ in $(seq 500); do api_answers "$sock" && return 0; kill -0 "$EPID" 2>/dev/null || break; sleep 0.02; done
  not_ok "$name: the API socket never answered"; tail -5 "$tmp/$name.err"; return 1
}
control() { printf '%s\n' "$2" | dd of="$1" bs=512 count=1 conv=notrunc,sync status=none; }
# checks_done FILE: how many times the guest finished a round of checks.
checks_done() { grep -ac "EMBER-CHECK: done:" "$1"; }
wait_checks() { # FILE N SECONDS
  for _ in $(seq $(($3 * 10))); do [ "$(checks_done "$1")" -ge "$2" ] && return 0; sleep 0.1; done; return 1
}
metric() { # NAME: the last flushed value of a "block"/"net" counter "group.name"
  tail -1 "$tmp/metrics" | python3 -c 'import json,sys; g,n=sys.argv[1].split("."); print(json.load(sys.stdin)[g][n])' "$1" 2>/dev/null
}
flush_metrics() { api "$sock" PUT /actions '{"action_type":"FlushMetrics"}'; [ "$CODE" = 204 ]; }
alive() { kill -0 "$EPID" 2>/dev/null; }
serving() { api "$sock" GET /; [ "$CODE" = 200 ] && [[ "$BODY" == *'"state":"Running"'* ]]; }
fd_count() { ls "/proc/$EPID/fd" 2>/dev/null | wc -l; }
ticks() { grep -ac "EMBER-HOLD: tick" "$tmp/vm.out"; }

# ---- the images
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 1M "$tmp/control.img"; control "$tmp/control.img" hold
mke2fs -q -F -t ext4 "$tmp/good.ext4" 8M >/dev/null
# The data image: a 16 MiB ext4 without a journal, sparse, on a tmpfs with room
# for its blocks and 64 KiB more. The guest's check writes ~460 KiB to it.
mke2fs -q -F -t ext4 -O ^has_journal "$tmp/full.ext4" 16M >/dev/null
used_k=$(du -k "$tmp/full.ext4" | cut -f1)
mkdir "$tmp/small"
mount -t tmpfs -o size=$((used_k + 64))k tmpfs "$tmp/small" || skip "cannot mount a tmpfs"
cp --sparse=always "$tmp/full.ext4" "$tmp/small/full.ext4"
avail_k=$(df -k --output=avail "$tmp/small" | tail -1 | tr -d ' ')
check "disk full: the data image's filesystem has ${avail_k} KiB free (< 200, less than the guest writes)" test "$avail_k" -lt 200
: >"$tmp/metrics"

# ---- boot
sock=$tmp/vm.sock
start_ember vm "$sock" || finish
api "$sock" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
api "$sock" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$LINUX_CMDLINE_BASE ip=$GUEST_IP::$HOST_IP:255.255.255.252::eth0:off ember.echo=$PORT ember.hold=/dev/vdb\"}"
for d in "rootfs $tmp/root.ext4 true" "control $tmp/control.img false" "full $tmp/small/full.ext4 false" "good $tmp/good.ext4 false"; do
  set -- $d
  api "$sock" PUT "/drives/$1" "{\"drive_id\":\"$1\",\"path_on_host\":\"$2\",\"is_root_device\":$3,\"is_read_only\":false}"
  [ "$CODE" = 204 ] || not_ok "PUT /drives/$1: $CODE $BODY"
done
api "$sock" PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"$MAC\"}"
expect_code "PUT /metrics" 204 "$sock" PUT /metrics "{\"metrics_path\":\"$tmp/metrics\"}"
expect_code "InstanceStart" 204 "$sock" PUT /actions '{"action_type":"InstanceStart"}'
if ! wait_for "$tmp/vm.out" "EMBER-HOLD: waiting" "${LINUX_BOOT_TIMEOUT:-400}"; then
  not_ok "the guest's init never held (console tail below)"; tail -20 "$tmp/vm.out"; tail -10 "$tmp/vm.err"; finish
fi
echo "# guest up after $(( $(date +%s) - T0 )) s"
drives_in_order() { grep -qa "\[vdc\] 32768 512-byte" "$tmp/vm.out" && grep -qa "\[vdd\] 16384 512-byte" "$tmp/vm.out"; }
check "the data drive is vdc (16 MiB) and the healthy one vdd (8 MiB)" drives_in_order
check "the data drive is vdc (16 MiB) and the healthy one vdd (8 MiB)" \
  grep -qa "\[vdc\] 32768 512-byte" "$tmp/vm.out" -a -n "$(grep -a "\[vdd\] 16384 512-byte" "$tmp/vm.out")"

# ---- 1. the data image's filesystem fills up
flush_metrics; fails0=$(metric block.execute_fails)
check "disk full: block.execute_fails is 0 before (got ${fails0:-none})" test "${fails0:-x}" = 0
control "$tmp/control.img" "check blk:/dev/vdc"
wait_checks "$tmp/vm.out" 1 180 || not_ok "disk full: the guest's check never finished"
check "disk full: the image's filesystem is full ($(df -k --output=avail "$tmp/small" | tail -1 | tr -d ' ') KiB free)" \
  test "$(df -k --output=avail "$tmp/small" | tail -1 | tr -d ' ')" -lt 8
check "disk full: the guest kernel saw write I/O errors on vdc" grep -qaE "I/O error.*vdc|vdc.*I/O error" "$tmp/vm.out"
check "disk full: the guest's write check failed" grep -qaE "EMBER-CHECK: done: 1 check\(s\), 1 failed" "$tmp/vm.out"
grep -aE "I/O error|EMBER-CHECK" "$tmp/vm.out" | head -4 | sed 's/^/#   /'
check "disk full: ember still runs" alive
check "disk full: the API still serves (GET / Running)" serving
flush_metrics; fails1=$(metric block.execute_fails)
check "disk full: block.execute_fails counted the errors (0 -> ${fails1:-none})" test "${fails1:-0}" -gt 0

# ---- 2. API clients that go away mid-request and mid-answer
fds0=$(fd_count)
python3 - "$sock" >"$tmp/hangup.log" 2>&1 <<'PY'
import socket, struct, sys
path = sys.argv[1]
def conn():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s
def rst(s):  # close with a reset instead of a FIN
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
n = {"half_body": 0, "half_headers": 0, "no_read": 0, "partial_read": 0}
for i in range(30):  # half a body, then gone
    s = conn()
    s.sendall(b"PUT /mmds HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              b"Content-Length: 4000\r\n\r\n{\"latest\": {\"meta-data\": \"" + b"x" * 1000)
    (rst if i % 2 else socket.socket.close)(s); n["half_body"] += 1
for i in range(30):  # half the headers, then gone
    s = conn(); s.sendall(b"GET /vm/config HTTP/1.1\r\nHost: loc"); (rst if i % 2 else socket.socket.close)(s)
    n["half_headers"] += 1
for i in range(30):  # a whole request, gone before the answer is read
    s = conn(); s.sendall(b"GET /vm/config HTTP/1.1\r\nHost: localhost\r\n\r\n"); (rst if i % 2 else socket.socket.close)(s)
    n["no_read"] += 1
for i in range(10):  # a few bytes of the answer read, then gone
    s = conn(); s.sendall(b"GET /vm/config HTTP/1.1\r\nHost: localhost\r\n\r\n"); s.recv(10); rst(s)
    n["partial_read"] += 1
print(" ".join("%s=%d" % kv for kv in n.items()))
PY
check "hang-ups: the client script ran ($(tail -1 "$tmp/hangup.log"))" grep -q "partial_read=10" "$tmp/hangup.log"
check "hang-ups: ember still runs" alive
check "hang-ups: the next client is answered (GET / Running)" serving
expect_code "hang-ups: the next GET /vm/config" 200 "$sock" GET /vm/config
expect_code "hang-ups: the next PUT /mmds (nothing half-applied before)" 204 "$sock" PUT /mmds '{"ok":1}'
api "$sock" GET /mmds
check "hang-ups: the MMDS holds only the whole PUT ($BODY)" test "$(tr -d ' \n' <<<"$BODY")" = '{"ok":1}'
for _ in $(seq 20); do [ "$(fd_count)" -le "$fds0" ] && break; sleep 0.1; done
check "hang-ups: no connection fd left ($fds0 fds before, $(fd_count) after)" test "$(fd_count)" -le "$fds0"

# ---- 3. the tap deleted while traffic flows
check "tap: the guest's echo service answers through tap0" \
  ip netns exec "$ns" python3 "$TCP_ECHO_CHECK" $GUEST_IP $PORT "before the fault" 60
ip netns exec "$ns" ping -f -w 8 $GUEST_IP >"$tmp/ping.log" 2>&1 &
pinger=$!
sleep 2
ticks0=$(ticks)
ip -n "$ns" link del tap0
check "tap: tap0 is gone from the host" test -z "$(ip -n "$ns" link show tap0 2>/dev/null)"
sleep 4
wait $pinger 2>/dev/null
grep -E "transmitted" "$tmp/ping.log" | sed 's/^/#   ping -f: /'
check "tap: the flood had replies before the tap went" grep -qE "[1-9][0-9]* received" "$tmp/ping.log"
check "tap: ember still runs" alive
check "tap: ember logged the dead tap" grep -qE "net 'eth0': reading tap 'tap0' failed" "$tmp/vm.err"
nwarn=$(grep -cE "net 'eth0'" "$tmp/vm.err")
check "tap: a bounded number of log lines about it ($nwarn; a spin on the dead fd would log thousands)" test "$nwarn" -le 20
check "tap: the API still serves (GET / Running)" serving
control "$tmp/control.img" "check blk:/dev/vdd"
wait_checks "$tmp/vm.out" 2 180 || not_ok "tap: the guest's blk check on the healthy drive never finished"
check "tap: the guest's other devices work (blk check on vdd passed)" \
  grep -qaE "EMBER-CHECK: done: 1 check\(s\), 0 failed" "$tmp/vm.out"
check "tap: the guest still ticks ($ticks0 -> $(ticks))" test "$(ticks)" -gt "$ticks0"
check "tap: FlushMetrics still works" flush_metrics
control "$tmp/control.img" reboot
wait_exit "$EPID" 120
check "the guest rebooted at the end: ember exit 0 (got $RC)" test "$RC" -eq 0
[ "$FAILS" -gt 0 ] && { echo "--- console tail:"; tail -15 "$tmp/vm.out"; echo "--- stderr:"; tail -15 "$tmp/vm.err"; }
echo "# Linux part done after $(( $(date +%s) - T0 )) s"

# ---- 4. SIGKILL during PUT /snapshot/create (the tiny counter guest)
boot_counter() { # NAME SOCK: a counting guest over the API
  start_ember "$1" "$2" || return 1
  api "$2" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
  api "$2" PUT /boot-source "{\"kernel_image_path\":\"$TEST_GUEST\",\"boot_args\":\"ember-test=counter\"}"
  api "$2" PUT /actions '{"action_type":"InstanceStart"}'
  [ "$CODE" = 204 ] && wait_for "$tmp/$1.out" "counter cpu0: " 60
}
# loads STATE MEM: 0 if ember restores the snapshot (GET / says Paused); sets LOAD_RC and LOAD_ERR otherwise.
loads() {
  "$EMBER" --snapshot-load "$1" --mem "$2" --api-sock "$tmp/load.sock" </dev/null >"$tmp/load.out" 2>"$tmp/load.err" &
  local p=$! ok=1
  for _ in $(seq 300); do
    kill -0 $p 2>/dev/null || break
    api_answers "$tmp/load.sock" && { api "$tmp/load.sock" GET /; [[ "$BODY" == *'"state":"Paused"'* ]] && ok=0; break; }
    sleep 0.05
  done
  kill -KILL $p 2>/dev/null; wait $p; LOAD_RC=$?
  LOAD_ERR=$(tail -1 "$tmp/load.err")
  return $ok
}
snapshot_body() { echo "{\"snapshot_type\":\"Full\",\"snapshot_path\":\"$1/state\",\"mem_file_path\":\"$1/mem\"}"; }
# A whole snapshot first, timed: the random kills fall inside its duration.
mkdir -p "$tmp/snap0"
if boot_counter snap0 "$tmp/snap0.sock"; then
  api "$tmp/snap0.sock" PATCH /vm '{"state":"Paused"}'
  t=$(date +%s%N)
  expect_code "snapshot: an undisturbed PUT /snapshot/create" 204 "$tmp/snap0.sock" PUT /snapshot/create "$(snapshot_body "$tmp/snap0")"
  create_ms=$(( ($(date +%s%N) - t) / 1000000 ))
  echo "# snapshot: an undisturbed create took $create_ms ms ($(du -k "$tmp/snap0/mem" | cut -f1) KiB of memory file)"
  kill -KILL "$EPID"; wait "$EPID" 2>/dev/null
  check "snapshot: the undisturbed snapshot loads" loads "$tmp/snap0/state" "$tmp/snap0/mem"
else
  not_ok "snapshot: the counter guest did not start"; create_ms=500
fi
whole=0 none=0 bad=0 tmps=0
for i in 1 2 3 4 5 6; do
  d=$tmp/snap$i; mkdir -p "$d"
  boot_counter "snap$i" "$tmp/snap$i.sock" || { not_ok "snapshot $i: the counter guest did not start"; continue; }
  api "$tmp/snap$i.sock" PATCH /vm '{"state":"Paused"}'
  curl -s --max-time 60 --unix-socket "$tmp/snap$i.sock" -X PUT -H 'Content-Type: application/json' \
    --data "$(snapshot_body "$d")" http://localhost/snapshot/create >/dev/null 2>&1 &
  client=$!
  # Kills spread over the create's duration (and a little past it).
  delay_ms=$(( (RANDOM % (create_ms * 12 / 10 + 1)) ))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill -KILL "$EPID"; wait "$EPID" 2>/dev/null; wait $client 2>/dev/null
  n_tmp=$(ls "$d" | grep -c '\.tmp\.' || true); tmps=$((tmps + n_tmp))
  left="$(ls "$d" | tr '\n' ' ')"
  if [ -e "$d/state" ]; then
    if [ -e "$d/mem" ] && loads "$d/state" "$d/mem"; then whole=$((whole + 1)); else bad=$((bad + 1)); not_ok "snapshot $i (killed at $delay_ms ms): a state file under its final name does not load: $LOAD_ERR"; fi
  else
    if loads "$d/state" "$d/mem"; then bad=$((bad + 1)); not_ok "snapshot $i: a load without a state file succeeded"
    else none=$((none + 1)); fi
    check "snapshot $i (killed at $delay_ms ms, left: ${left:-nothing}): the load fails cleanly: exit 1, '$LOAD_ERR'" \
      test "$LOAD_RC" -eq 1 -a -n "$LOAD_ERR"
  fi
done
echo "# snapshot kills: $whole left a whole snapshot, $none none under the final name, $bad a bad one; $tmps temporary file(s) left beside"
check "snapshot: no kill left a state file that does not load" test "$bad" -eq 0

# ---- 5. SIGKILL at random moments of start-up
cat >"$tmp/boot.json" <<EOF
{"boot-source": {"kernel_image_path": "$TEST_GUEST", "boot_args": "ember-test=counter"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 "drives": [{"drive_id": "data", "path_on_host": "$tmp/good.ext4", "is_root_device": false, "is_read_only": false}],
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap1"}],
 "metrics": {"metrics_path": "$tmp/boot.metrics"}}
EOF
: >"$tmp/boot.metrics"
killed_at=
for i in 1 2 3 4 5 6 7 8; do
  delay_ms=$(( RANDOM % 600 ))
  ip netns exec "$ns" "$EMBER" --config-file "$tmp/boot.json" --api-sock "$tmp/boot.sock" </dev/null >"$tmp/boot.out" 2>"$tmp/boot.err" &
  p=$!; PIDS+=("$p")
  sleep "$(printf '0.%03d' $delay_ms)"
  kill -KILL $p; wait $p 2>/dev/null
  if grep -qa "counter cpu0" "$tmp/boot.out"; then phase=guest-running; elif [ -S "$tmp/boot.sock" ]; then phase=socket-made; else phase=early; fi
  killed_at+="${delay_ms}ms:$phase "
done
echo "# start-up kills at: $killed_at"
left=$(ls "$tmp" | grep -E '^boot\.' | tr '\n' ' ')
echo "# start-up: left in the directory: $left"
ip netns exec "$ns" "$EMBER" --config-file "$tmp/boot.json" --api-sock "$tmp/boot.sock" </dev/null >"$tmp/boot.out" 2>"$tmp/boot.err" &
EPID=$!; PIDS+=("$EPID")
check "start-up: the next start runs the guest (same drive, tap, metrics file and socket)" wait_for "$tmp/boot.out" "counter cpu0: " 60
api "$tmp/boot.sock" GET /
check "start-up: its API answers on the same socket path (GET / $CODE)" test "$CODE" = 200
if [ -S "$tmp/boot.sock" ] && grep -q "replaced stale API socket" "$tmp/boot.err"; then echo "# start-up: the next start replaced a stale socket"; fi
check "start-up: nothing in its log about a leftover" test -z "$(grep -iE 'in use|exists|stale.*cannot' "$tmp/boot.err")"
kill -TERM "$EPID"; wait_exit "$EPID" 30
check "start-up: SIGTERM ends it (exit 0, got $RC)" test "$RC" -eq 0
check "start-up: its socket is removed at exit" test ! -e "$tmp/boot.sock"
echo "# t_faults: $(( $(date +%s) - T0 )) s"
finish
