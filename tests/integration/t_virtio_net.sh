#!/usr/bin/env bash
# virtio-net end to end: the guest kernel configures eth0 over a tap (static
# ip= and DHCP from dnsmasq) and answers the host's pings while it is up.
# The tap lives in a network namespace this test creates and removes.
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating a network namespace and a tap needs root"
command -v ip >/dev/null || skip "iproute2 is needed"
tmp=$(mktemp -d)
ns=ember-net-$$
cleanup() {
  [ -n "${dns_pid:-}" ] && kill "$dns_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
ip netns add "$ns" || skip "cannot create a network namespace here"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tap0 mode tap vnet_hdr
ip -n "$ns" addr add 172.31.250.1/30 dev tap0
ip -n "$ns" link set tap0 up
MAC=06:00:ac:10:00:02

# Pings the guest from the namespace once its kernel says IP-Config is complete,
# one echo at a time until one is answered or the guest goes down (its userspace
# cannot run here, so the kernel panics a few guest seconds after init starts;
# on a loaded host the first echoes can go out before the guest has the ARP reply).
ping_when_up() { # OUT RESULT
  for _ in $(seq 1800); do
    grep -qs "IP-Config: Complete" "$1" && break
    sleep 0.1
  done
  : > "$2"
  for _ in $(seq 60); do
    ip netns exec "$ns" ping -c 1 -W 1 172.31.250.2 >> "$2" 2>&1 && return 0
    grep -qsE "Kernel panic|Rebooting|reboot: " "$1" && break
  done
  return 1
}

cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
ping_when_up "$tmp/out" "$tmp/ping" &
pinger=$!
EMBER_BIN=$EMBER
EMBER="ip netns exec $ns $EMBER_BIN" linux_run "$tmp/out" "$tmp/err" \
  --cmdline "$LINUX_CMDLINE_BASE ip=172.31.250.2::172.31.250.1:255.255.255.252::eth0:off" \
  --drive id=rootfs,path="$tmp/root.ext4",root --net id=eth0,tap=tap0,mac=$MAC
wait $pinger
check "static: ember exit 0 (got $RC)" test "$RC" -eq 0
check "static: eth0 has the configured MAC" grep -qi "eth0: .*$MAC\|device=eth0, hwaddr=$MAC" "$tmp/out"
check "static: IP-Config completed" grep -q "IP-Config: Complete" "$tmp/out"
check "static: guest kernel answered pings" grep -qE " 1 received" "$tmp/ping"
grep -E "received|rtt" "$tmp/ping" | tail -2
show_on_failure "$tmp/out" "$tmp/err"

# DHCP from dnsmasq on the tap.
if command -v dnsmasq >/dev/null; then
  ip netns exec "$ns" dnsmasq --no-daemon --conf-file=/dev/null --interface=tap0 --bind-interfaces --port=0 \
    --dhcp-range=172.31.250.2,172.31.250.2,255.255.255.252,1h --dhcp-leasefile="$tmp/leases" \
    --pid-file="$tmp/dnsmasq.pid" --log-dhcp > "$tmp/dnsmasq.log" 2>&1 &
  dns_pid=$!
  sleep 0.5
  ping_when_up "$tmp/out" "$tmp/ping" &
  pinger=$!
  EMBER="ip netns exec $ns $EMBER_BIN" linux_run "$tmp/out" "$tmp/err" --cmdline "$LINUX_CMDLINE_BASE ip=dhcp" \
    --drive id=rootfs,path="$tmp/root.ext4",root --net id=eth0,tap=tap0,mac=$MAC
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
