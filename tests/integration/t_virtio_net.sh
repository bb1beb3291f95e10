#!/usr/bin/env bash
# virtio-net end to end: the guest kernel configures eth0 over a tap (static
# ip= and DHCP from dnsmasq) and answers the host's pings while it is up.
# The tap lives in a network namespace this test creates and removes. Where
# guest userspace runs, its init also sends the known content to a peer on the
# tap and receives a random payload from another, checksums compared on both
# ends (ember.check=tcp-send:/tcp-recv:, deploy/guest/init.sh).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating a network namespace and a tap needs root"
command -v ip >/dev/null || skip "iproute2 is needed"
tmp=$(mktemp -d)
ns=ember-net-$$
cleanup() {
  [ -n "${dns_pid:-}" ] && kill "$dns_pid" 2>/dev/null
  [ -n "${peer_pids:-}" ] && kill $peer_pids 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns_add "$ns" || skip "cannot create a network namespace here"
netns_tap "$ns" tap0 172.31.250.1/30
MAC=06:00:ac:10:00:02

# Pings the guest from the namespace once its kernel says IP-Config is complete,
# one echo at a time until one is answered or the guest goes down (on a loaded
# host the first echoes can go out before the guest has the ARP reply). Where
# guest userspace runs, its init holds the guest up (ember.hold on the control
# drive) until this says "reboot"; on kvm-pvm the kernel panics a few guest
# seconds after init starts.
ping_when_up() { # OUT RESULT CONTROL
  local rc=1
  for _ in $(seq 1800); do
    grep -qs "IP-Config: Complete" "$1" && break
    sleep 0.1
  done
  : > "$2"
  for _ in $(seq 60); do
    ip netns exec "$ns" ping -c 1 -W 1 172.31.250.2 >> "$2" 2>&1 && { rc=0; break; }
    grep -qsE "Kernel panic|Rebooting|reboot: " "$1" && break
  done
  printf 'reboot\n' | dd of="$3" conv=notrunc status=none
  return $rc
}
# control: a fresh control drive that tells the guest's init to hold.
control() { truncate -s 1M "$tmp/control.img"; printf 'hold\n' | dd of="$tmp/control.img" conv=notrunc status=none; }

# The userspace mode's peers in the namespace, listening before the guest boots.
checks=
if command -v python3 >/dev/null; then
  tcp_peer_script > "$tmp/peer.py"
  head -c $((1024 * 1024 + 7)) /dev/urandom > "$tmp/source"
  ip netns exec "$ns" python3 "$tmp/peer.py" 172.31.250.1 5001 sink "$tmp/sink" & peer_pids="$!"
  ip netns exec "$ns" python3 "$tmp/peer.py" 172.31.250.1 5002 source "$tmp/source" & peer_pids+=" $!"
  wait_ready "$tmp/sink" && wait_ready "$tmp/source" || not_ok "userspace tcp: the host's peers did not start"
  checks=" ember.check=tcp-send:172.31.250.1:5001,tcp-recv:172.31.250.1:5002"
else
  echo "skip - userspace tcp: python3 is needed for the host's end"
fi

cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
control
ping_when_up "$tmp/out" "$tmp/ping" "$tmp/control.img" &
pinger=$!
EMBER_BIN=$EMBER
EMBER="ip netns exec $ns $EMBER_BIN" linux_run "$tmp/out" "$tmp/err" \
  --cmdline "$LINUX_CMDLINE_BASE ip=172.31.250.2::172.31.250.1:255.255.255.252::eth0:off$checks ember.hold=/dev/vdb" \
  --drive id=rootfs,path="$tmp/root.ext4",root --drive id=control,path="$tmp/control.img",ro \
  --net id=eth0,tap=tap0,mac=$MAC
wait $pinger
[ -n "${peer_pids:-}" ] && { kill $peer_pids 2>/dev/null; wait $peer_pids 2>/dev/null; peer_pids=; }
check "static: ember exit 0 (got $RC)" test "$RC" -eq 0
check "static: eth0 has the configured MAC" grep -qi "eth0: .*$MAC\|device=eth0, hwaddr=$MAC" "$tmp/out"
check "static: IP-Config completed" grep -q "IP-Config: Complete" "$tmp/out"
check "static: guest kernel answered pings" grep -qE " 1 received" "$tmp/ping"
grep -E "received|rtt" "$tmp/ping" | tail -2
if [ -n "$checks" ] && userspace_ran "$tmp/out"; then
  guest_check_content > "$tmp/content"
  want_sha=$(sha256sum < "$tmp/content" | cut -d' ' -f1)
  check "userspace tcp-send: guest sent the known content, the peer's sha256 matched" grep -qF \
    "EMBER-CHECK: tcp-send sent $(stat -c %s "$tmp/content") bytes sha256 $want_sha to 172.31.250.1:5001, peer got sha256 $want_sha" "$tmp/out"
  check "userspace tcp-send: host received exactly the known content" cmp -s "$tmp/sink" "$tmp/content"
  check "userspace tcp-recv: guest received the host's payload (size and sha256)" grep -qF \
    "EMBER-CHECK: tcp-recv received $(stat -c %s "$tmp/source") bytes sha256 $(sha256sum < "$tmp/source" | cut -d' ' -f1) from 172.31.250.1:5002" "$tmp/out"
  check "userspace tcp: no guest check failed" grep -qF "EMBER-CHECK: done: 2 check(s), 0 failed" "$tmp/out"
fi
show_on_failure "$tmp/out" "$tmp/err"

# DHCP from dnsmasq on the tap.
if command -v dnsmasq >/dev/null; then
  ip netns exec "$ns" dnsmasq --no-daemon --conf-file=/dev/null --interface=tap0 --bind-interfaces --port=0 \
    --dhcp-range=172.31.250.2,172.31.250.2,255.255.255.252,1h --dhcp-leasefile="$tmp/leases" \
    --pid-file="$tmp/dnsmasq.pid" --log-dhcp > "$tmp/dnsmasq.log" 2>&1 &
  dns_pid=$!
  sleep 0.5
  control
  ping_when_up "$tmp/out" "$tmp/ping" "$tmp/control.img" &
  pinger=$!
  EMBER="ip netns exec $ns $EMBER_BIN" linux_run "$tmp/out" "$tmp/err" --cmdline "$LINUX_CMDLINE_BASE ip=dhcp ember.hold=/dev/vdb" \
    --drive id=rootfs,path="$tmp/root.ext4",root --drive id=control,path="$tmp/control.img",ro \
    --net id=eth0,tap=tap0,mac=$MAC
  wait $pinger
  check "dhcp: ember exit 0 (got $RC)" test "$RC" -eq 0
  check "dhcp: dnsmasq acknowledged the guest" grep -q "DHCPACK(tap0) 172.31.250.2 $MAC" "$tmp/dnsmasq.log"
  check "dhcp: IP-Config completed with the leased address" grep -qE "IP-Config: Complete|addr=172.31.250.2" "$tmp/out"
  check "dhcp: guest kernel answered pings" grep -qE " 1 received" "$tmp/ping"
  [ "$FAILS" -gt 0 ] && tail -6 "$tmp/ping"
  show_on_failure "$tmp/out" "$tmp/err"
  [ "$FAILS" -gt 0 ] && tail -5 "$tmp/dnsmasq.log"
else
  not_ok "dnsmasq is not installed (make deps installs dnsmasq-base)"
fi
finish
