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
# SIGKILL of ember (start-up, snapshot create): t_faults_kill.sh; of
# ember-jailer: t_faults_jailer.sh. Results: docs/reliability.md.
# integration: deadline 900
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "a network namespace, taps and a tmpfs mount need root"
for c in ip curl python3 mke2fs; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
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

echo "# 1. disk full at $(( $(date +%s) - T0 )) s"
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

echo "# 2. hang-ups at $(( $(date +%s) - T0 )) s"
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

echo "# 3. tap deleted at $(( $(date +%s) - T0 )) s"
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
rf=$(metric net.tap_read_fails)
check "tap: net.tap_read_fails counted the failed read (${rf:-none}), tap_write_fails is reported ($(metric net.tap_write_fails))" \
  test "${rf:-0}" -ge 1 -a -n "$(metric net.tap_write_fails)"
control "$tmp/control.img" reboot
wait_exit "$EPID" 120
check "the guest rebooted at the end: ember exit 0 (got $RC)" test "$RC" -eq 0
[ "$FAILS" -gt 0 ] && { echo "--- console tail:"; tail -15 "$tmp/vm.out"; echo "--- stderr:"; tail -15 "$tmp/vm.err"; }
echo "# t_faults: $(( $(date +%s) - T0 )) s"

finish
