#!/usr/bin/env bash
# The MMDS end to end: the project's Linux guest, booted over the API with one
# NIC (eth0, on tap0 in a network namespace this test creates) allowed to
# reach the MMDS, reads the metadata with busybox wget and nc
# (ember.check=mmds:ADDR:PATH, deploy/guest/init.sh) when the host writes
# "check ..." on its control drive (ember.hold).
#   V1  plain GET as IMDS text and as JSON, a session token, a wrong token
#       (still answered); the host pings the guest over the same NIC; a PUT over
#       --mmds-size-limit is a 413; PATCH /mmds from the host, then the guest
#       reads the new value; through eth1 (on tap1, not in network_interfaces)
#       the guest gets nothing; the metrics line's "mmds" group (Firecracker's
#       names) counted the guest's frames, segments and connections
#   V2  at another address, the data from --metadata FILE: no token and a
#       wrong token get nothing (401), the token from PUT /latest/api/token
#       gets the data, and the same token 2 s after its 1 s TTL nothing
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating a network namespace and a tap needs root"
command -v ip >/dev/null || skip "iproute2 is needed"
command -v curl >/dev/null || skip "curl is needed for the API"
tmp=$(mktemp -d)
ns=ember-mmds-$$
EPID=
cleanup() {
  [ -n "$EPID" ] && kill -KILL "$EPID" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns_add "$ns" || skip "cannot create a network namespace here"
netns_tap "$ns" tap0 172.31.251.1/30
netns_tap "$ns" tap1
GUEST_IP=172.31.251.2
MAC=06:00:ac:10:00:02

control() { truncate -s 1M "$tmp/control.img"; printf '%s\n' "$1" | dd of="$tmp/control.img" conv=notrunc status=none; }
# wait_count FILE TEXT N SECONDS: until FILE has N lines containing TEXT.
wait_count() {
  for _ in $(seq $(($4 * 10))); do [ "$(grep -acF -- "$2" "$1" 2>/dev/null)" -ge "$3" ] && return 0; sleep 0.1; done
  return 1
}
has_line() { tr -d '\r' < "$1" | grep -qaxF -- "$2"; } # FILE EXACT-LINE
expect_code() { # DESCRIPTION WANT METHOD PATH [BODY]
  local d=$1 want=$2; shift 2
  api "$S" "$@"
  check "$d: $want (got $CODE${BODY:+ $BODY})" test "$CODE" = "$want"
}

# boot NAME MMDS-CONFIG [--metadata FILE]: ember (API, --mmds-size-limit 4096) in the namespace, configured and
# started, with the data store filled before boot (PUT /mmds, or --metadata); returns once the guest's init holds.
boot() {
  local name=$1 cfg=$2; shift 2
  S=$tmp/$name.sock OUT=$tmp/$name.out ERR=$tmp/$name.err
  cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
  control hold
  ip netns exec "$ns" "$EMBER" --api-sock "$S" --log-level info --mmds-size-limit 4096 "$@" </dev/null >"$OUT" 2>"$ERR" &
  EPID=$!
  for _ in $(seq 500); do api_answers "$S" && break; sleep 0.02; done
  expect_code "$name: machine" 204 PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
  expect_code "$name: boot source" 204 PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$LINUX_CMDLINE_BASE ip=$GUEST_IP::172.31.251.1:255.255.255.252::eth0:off ember.hold=/dev/vdb\"}"
  expect_code "$name: root drive" 204 PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$tmp/root.ext4\",\"is_root_device\":true}"
  expect_code "$name: control drive" 204 PUT /drives/control "{\"drive_id\":\"control\",\"path_on_host\":\"$tmp/control.img\",\"is_root_device\":false,\"is_read_only\":true}"
  expect_code "$name: NIC" 204 PUT /network-interfaces/eth0 "{\"iface_id\":\"eth0\",\"host_dev_name\":\"tap0\",\"guest_mac\":\"$MAC\"}"
  expect_code "$name: NIC not allowed to reach the MMDS" 204 PUT /network-interfaces/eth1 '{"iface_id":"eth1","host_dev_name":"tap1"}'
  expect_code "$name: mmds config" 204 PUT /mmds/config "$cfg"
  [ $# -eq 0 ] && expect_code "$name: mmds data" 204 PUT /mmds "$META"
  expect_code "$name: metrics file" 204 PUT /metrics "{\"metrics_path\":\"$tmp/$name.metrics\"}"
  expect_code "$name: InstanceStart" 204 PUT /actions '{"action_type":"InstanceStart"}'
  expect_code "$name: mmds config is pre-boot only" 400 PUT /mmds/config "$cfg"
  check "$name: guest init holds" wait_count "$OUT" "EMBER-HOLD: waiting" 1 600
}
# run_check NAME N SPEC: the guest runs the checks SPEC; waits for the Nth "done" line.
run_check() {
  control "check $3"
  check "$1: guest ran 'check $3'" wait_count "$OUT" "EMBER-CHECK: done:" "$2" 120
}
end_guest() { # NAME
  control reboot
  for _ in $(seq 1200); do kill -0 "$EPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$EPID" 2>/dev/null
  wait "$EPID"; RC=$?; EPID=
  check "$1: ember exit 0 after the guest's reboot (got $RC)" test "$RC" -eq 0
  show_on_failure "$OUT" "$ERR"
}

META='{"latest":{"meta-data":{"ami-id":"ami-12345678","reservation-id":"r-1"}}}'

# ---- V1
boot v1 '{"network_interfaces":["eth0"]}'
if userspace_ran "$OUT"; then
  A=169.254.169.254 P=latest/meta-data
  run_check v1 1 "mmds:$A:$P"
  check "v1: IMDS text" has_line "$OUT" "EMBER-CHECK: mmds get /$P: ami-id|reservation-id"
  check "v1: JSON" has_line "$OUT" "EMBER-CHECK: mmds json /$P: {\"ami-id\":\"ami-12345678\",\"reservation-id\":\"r-1\"}"
  check "v1: a session token" has_line "$OUT" "EMBER-CHECK: mmds token: 32 characters"
  check "v1: GET with the token" has_line "$OUT" "EMBER-CHECK: mmds token get /$P: ami-id|reservation-id"
  check "v1: GET with a wrong token is answered" has_line "$OUT" "EMBER-CHECK: mmds wrong token get /$P: ami-id|reservation-id"
  check "v1: GET with an expired token (1 s TTL, 2 s later) is answered" \
    has_line "$OUT" "EMBER-CHECK: mmds expired token get /$P: ami-id|reservation-id"
  check "v1: other traffic on the NIC still reaches the tap (ping)" ip netns exec "$ns" ping -c 1 -W 5 $GUEST_IP
  big=$(head -c 5000 /dev/zero | tr '\0' x)
  expect_code "v1: PUT over --mmds-size-limit" 413 PUT /mmds "{\"big\":\"$big\"}"
  expect_code "v1: PATCH after boot" 204 PATCH /mmds '{"latest":{"meta-data":{"ami-id":"ami-87654321","reservation-id":null}}}'
  run_check v1 2 "mmds:$A:$P/ami-id"
  check "v1: the guest sees the PATCH" has_line "$OUT" "EMBER-CHECK: mmds get /$P/ami-id: ami-87654321"
  run_check v1 3 "mmds-dev:eth1"
  run_check v1 4 "mmds:$A:$P/ami-id"
  check "v1: through eth1 (not in network_interfaces) the guest gets nothing" has_line "$OUT" "EMBER-CHECK: mmds get /$P/ami-id: failed"
  expect_code "v1: FlushMetrics" 204 PUT /actions '{"action_type":"FlushMetrics"}'
  mm=$(grep -v '^$' "$tmp/v1.metrics" | tail -1 | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin).get("mmds")))' 2>&1)
  echo "  metrics: mmds $mm"
  for k in rx_accepted rx_count tx_count tx_frames tx_bytes connections_created connections_destroyed; do
    v=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$mm" $k 2>/dev/null)
    check "v1: metrics mmds.$k > 0 after the guest's requests (${v:-none})" test "${v:-0}" -gt 0
  done
  api "$S" GET /mmds
  check "v1: GET /mmds from the host" test "$BODY" = '{"latest":{"meta-data":{"ami-id":"ami-87654321"}}}'
  api "$S" GET /vm/config
  check "v1: GET /vm/config shows mmds-config" grep -qF '"mmds-config":{"version":"V1","network_interfaces":["eth0"],"ipv4_address":"169.254.169.254","imds_compat":false}' <<<"$BODY"
fi
end_guest v1

# ---- V2, at another address
printf '%s\n' "$META" > "$tmp/meta.json"
boot v2 '{"network_interfaces":["eth0"],"version":"V2","ipv4_address":"169.254.170.2"}' --metadata "$tmp/meta.json"
if userspace_ran "$OUT"; then
  A=169.254.170.2 P=latest/meta-data
  run_check v2 1 "mmds:$A:$P"
  check "v2: GET without a token gets nothing" has_line "$OUT" "EMBER-CHECK: mmds get /$P: failed"
  check "v2: a session token" has_line "$OUT" "EMBER-CHECK: mmds token: 32 characters"
  check "v2: GET with the token" has_line "$OUT" "EMBER-CHECK: mmds token get /$P: ami-id|reservation-id"
  check "v2: GET with a wrong token gets nothing" has_line "$OUT" "EMBER-CHECK: mmds wrong token get /$P: failed"
  check "v2: GET with an expired token (1 s TTL, 2 s later) gets nothing" \
    has_line "$OUT" "EMBER-CHECK: mmds expired token get /$P: failed"
fi
end_guest v2
finish
