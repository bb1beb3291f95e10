#!/usr/bin/env bash
# Rate limiters and the entropy device end to end with the project's Linux
# guest and its userspace (deploy/guest/init.sh, ember.check=dd:/hwrng:).
# One guest, booted from a config file with an API socket, reads with O_DIRECT
# (one virtio request per block) from four drives:
#   vdb  bandwidth 128 KiB per 250 ms (512 KiB/s): 3 MiB take (3 MiB - the
#        full bucket) / 512 KiB/s = 5.75 s of guest time, within 20 %
#   vdc  ops 2 per 100 ms (20/s): 120 reads of 4 KiB take 5.9 s, within 20 %
#   vdd  no limit: the same 3 MiB in well under the limited time
#   vde  bandwidth 64 KiB per 250 ms (256 KiB/s, 12 s for 3 MiB) until the
#        host PATCHes it to 8 MiB/s a second after the read starts: done in
#        far less, and GET /vm/config shows the new limit
#   vdf  vdb's limit plus a one_time_burst of 2 MiB: those go at full speed,
#        the rest takes (3 - 2 - 0.125) MiB / 512 KiB/s = 1.75 s more
# The rates are low enough that a request's own cost in the emulated KVM host
# (tens of ms) stays well under the time between requests the limit sets.
# and reads 32 KiB from /dev/hwrng, served by the virtio-rng device (PUT
# /entropy through the config file's "entropy") limited to 4 KiB per 250 ms
# (16 KiB/s): at least (32 - 4) KiB / 16 KiB/s = 1.75 s, less 20 % (the
# kernel's own hwrng reader may take some tokens too, so only a lower bound).
# The metrics line written at the end counts throttled requests and entropy
# bytes.
# Where the test may make a network namespace with a tap (root, iproute2,
# python3), the guest also gets eth0 on it with an rx limit of 32 KiB per
# 250 ms (128 KiB/s) and a tx limit of 16 KiB per 250 ms (64 KiB/s: the
# guest's sender, a shell pipeline in the emulated host, can fall under
# 128 KiB/s on a loaded machine, and then the limit would not be what is
# timed) and its init runs TCP transfers (tcp-recv/tcp-send)
# against net_driver below, which times them on the host and PATCHes
# /network-interfaces/eth0 between and during them:
#   rx   640 KiB host -> guest, host-timed until the guest acknowledged the
#        last byte, within 20 % of the time below
#   tx   the init's known content (438 KiB) guest -> host, from the first byte
#        to the last, within 20 % of the time below
#   free both limits PATCHed off: the rx transfer again, under half the rx time
#   patch rx PATCHed to 16 KiB per 250 ms (64 KiB/s: 9.75 s for 640 KiB), then
#        a second into the transfer to 8 MiB/s: done in under half of 9.75 s,
#        and GET /vm/config shows the new limit
# The limiter counts frames, headers included: a transfer of N bytes is at
# least N * 1514 / 1448 bytes on the wire (Ethernet, IP and TCP headers on
# 1448-byte segments). The full bucket at the start cannot all go at once:
# TCP's initial window (10 segments, 14480 bytes) is all the sender has
# before the first ack. So a transfer takes (N * 1514 / 1448 - 14480) /
# rate: 4.97 s for rx at 128 KiB/s, 6.94 s for tx at 64 KiB/s.
# integration: deadline 1500
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
command -v curl >/dev/null || skip "curl is needed"
tmp=$(mktemp -d)
EPID='' DPID='' ns=''
cleanup() {
  [ -n "$EPID" ] && kill -KILL "$EPID" 2>/dev/null
  [ -n "$DPID" ] && kill "$DPID" 2>/dev/null
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# net_driver: the host's end of the network transfers (python3). Args: API-SOCKET
# ADDR RESULTS PAYLOAD PORTS(rx,tx,free,patch) SLOW-LIMITER FAST-LIMITER. Listens on the
# four ports (then writes RESULTS.ready), serves one connection on each in turn,
# PATCHes the limiters as the header says, and writes what it measured to RESULTS.
net_driver() {
  cat <<'PY'
import fcntl, hashlib, http.client, json, os, socket, struct, sys, termios, threading, time
sock_path, addr, out, payload_path = sys.argv[1:5]
p_rx, p_tx, p_free, p_patch = (int(p) for p in sys.argv[5].split(","))
slow, fast = json.loads(sys.argv[6]), json.loads(sys.argv[7])
payload = open(payload_path, "rb").read()
results = {}

def save():
    open(out + ".tmp", "w").write(json.dumps(results))
    os.rename(out + ".tmp", out)

class UnixHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(sock_path)

def api(method, path, body=None):
    c = UnixHTTP("localhost", timeout=30)
    c.request(method, path, json.dumps(body) if body is not None else None, {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read().decode()
    c.close()
    return r.status, data

def patch(rx=None, tx=None):
    body = {"iface_id": "eth0"}
    if rx is not None:
        body["rx_rate_limiter"] = rx
    if tx is not None:
        body["tx_rate_limiter"] = tx
    return api("PATCH", "/network-interfaces/eth0", body)[0]

listeners = {}
for p in (p_rx, p_tx, p_free, p_patch):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, p))
    s.listen(1)
    s.settimeout(float(os.environ.get("BOOT_TIMEOUT", "900")))
    listeners[p] = s
open(out + ".ready", "w").write("ok\n")

def unacked(c):  # bytes sent and not yet acknowledged by the guest
    return struct.unpack("i", fcntl.ioctl(c.fileno(), termios.TIOCOUTQ, struct.pack("i", 0)))[0]

def source(c, during=None):
    """Sends the payload; ms from the first byte until the guest acknowledged the last."""
    t0 = time.monotonic()
    helper = threading.Thread(target=during or (lambda: None), daemon=True)
    helper.start()
    c.sendall(payload)
    while unacked(c):
        time.sleep(0.002)
    ms = int((time.monotonic() - t0) * 1000)
    helper.join()
    c.shutdown(socket.SHUT_WR)
    while c.recv(65536):
        pass
    c.close()
    return {"ms": ms, "bytes": len(payload)}

def sink(c):
    """Receives until the guest half-closes; ms from the first byte to the last; replies with the sha256."""
    data, first = bytearray(), None
    while chunk := c.recv(65536):
        if first is None:
            first = time.monotonic()
        data += chunk
    ms = int((time.monotonic() - (first or time.monotonic())) * 1000)
    c.sendall(hashlib.sha256(data).hexdigest().encode() + b"\n")
    c.close()
    return {"ms": ms, "bytes": len(data)}

def accept(p):
    c, _ = listeners[p].accept()
    listeners[p].close()
    c.settimeout(120)
    return c

results["rx"] = source(accept(p_rx))
save()
results["tx"] = sink(accept(p_tx))
save()
off = {"bandwidth": {"size": 0, "refill_time": 0}}
c = accept(p_free)
results["free_patch_code"] = patch(rx=off, tx=off)
results["free"] = source(c)
save()
c = accept(p_patch)
results["slow_patch_code"] = patch(rx=slow)

def speed_up():
    time.sleep(1)
    results["fast_patch_code"] = patch(rx=fast)
    results["config"] = api("GET", "/vm/config")[1]

results["patch"] = source(c, speed_up)
save()
PY
}
MiB=$((1024 * 1024))
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
for d in vdb vdc vdd vde vdf; do truncate -s 8M "$tmp/$d.img"; done
checks="ember.check=dd:/dev/vdb:48:65536,dd:/dev/vdc:120:4096,dd:/dev/vdd:48:65536,dd:/dev/vde:48:65536,dd:/dev/vdf:48:65536,hwrng:32768"
bucket() { printf '{"size":%s,"refill_time":%s%s}' "$1" "$2" "${3:+,\"one_time_burst\":$3}"; }

# The network part, where a namespace with a tap can be made.
KiB=1024
NET_LIMIT=$(bucket $((32 * KiB)) 250) # 128 KiB/s: rx
NET_SLOW=$(bucket $((16 * KiB)) 250)  # 64 KiB/s: tx, and the PATCH test's slow rx
NET_FAST_SIZE=$((8 * MiB))
NET_FAST=$(bucket $NET_FAST_SIZE 1000)
RX_BYTES=$((640 * KiB))
net=0 nic='' netcmd='' ip_arg=''
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && command -v python3 >/dev/null &&
  netns_add "ember-rl-$$" 2>/dev/null; then
  ns=ember-rl-$$
  netns_tap "$ns" tap0 172.31.251.1/30
  head -c $RX_BYTES /dev/urandom > "$tmp/payload"
  net_driver > "$tmp/driver.py"
  BOOT_TIMEOUT=${LINUX_BOOT_TIMEOUT:-900} ip netns exec "$ns" python3 "$tmp/driver.py" "$tmp/api.sock" 172.31.251.1 \
    "$tmp/net.json" "$tmp/payload" 5101,5102,5103,5104 "{\"bandwidth\":$NET_SLOW}" "{\"bandwidth\":$NET_FAST}" \
    2>"$tmp/driver.err" &
  DPID=$!
  for _ in $(seq 100); do [ -s "$tmp/net.json.ready" ] && break; sleep 0.05; done
  if [ -s "$tmp/net.json.ready" ]; then
    net=1
    checks+=",tcp-recv:172.31.251.1:5101,tcp-send:172.31.251.1:5102,tcp-recv:172.31.251.1:5103,tcp-recv:172.31.251.1:5104"
    ip_arg=" ip=172.31.251.2::172.31.251.1:255.255.255.252::eth0:off"
    nic=",\"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", \"guest_mac\": \"06:00:ac:10:00:02\",
    \"rx_rate_limiter\": {\"bandwidth\": $NET_LIMIT}, \"tx_rate_limiter\": {\"bandwidth\": $NET_SLOW}}]"
    netcmd="ip netns exec $ns"
  else
    not_ok "network: the host's end of the transfers did not start: $(cat "$tmp/driver.err")"
  fi
else
  echo "skip - network rate limits: a network namespace with a tap needs root, iproute2 and python3"
fi
drive() { # ID LIMITER-JSON
  printf '{"drive_id":"%s","path_on_host":"%s","is_root_device":false%s}' "$1" "$tmp/$1.img" "${2:+,\"rate_limiter\":$2}"
}
cat > "$tmp/config.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_DIR/vmlinux", "boot_args": "$LINUX_CMDLINE_BASE $checks$ip_arg"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "metrics": {"metrics_path": "$tmp/metrics.json"},
  "drives": [
    {"drive_id": "rootfs", "path_on_host": "$tmp/root.ext4", "is_root_device": true},
    $(drive vdb "{\"bandwidth\":$(bucket 131072 250)}"),
    $(drive vdc "{\"ops\":$(bucket 2 100)}"),
    $(drive vdd ""),
    $(drive vde "{\"bandwidth\":$(bucket 65536 250)}"),
    $(drive vdf "{\"bandwidth\":$(bucket 131072 250 $((2 * MiB)))}")
  ],
  "entropy": {"rate_limiter": {"bandwidth": $(bucket 4096 250)}}$nic
}
JSON
: > "$tmp/metrics.json"
sock=$tmp/api.sock
$netcmd $EMBER --config-file "$tmp/config.json" --api-sock "$sock" --log-level info </dev/null >"$tmp/out" 2>"$tmp/err" &
EPID=$!
BOOT_TIMEOUT=${LINUX_BOOT_TIMEOUT:-900}

# The PATCH, a second after the guest starts reading vde.
patched=0
for _ in $(seq $((BOOT_TIMEOUT * 10))); do
  kill -0 "$EPID" 2>/dev/null || break
  if grep -q "EMBER-CHECK: dd /dev/vde start" "$tmp/out"; then
    sleep 1
    api "$sock" PATCH /drives/vde "{\"drive_id\":\"vde\",\"rate_limiter\":{\"bandwidth\":$(bucket $((8 * MiB)) 1000)}}"
    check "PATCH /drives/vde rate_limiter mid-read: 204 (got $CODE $BODY)" test "$CODE" = 204
    api "$sock" GET /vm/config
    check "GET /vm/config shows the new limit" grep -q "\"size\": *$((8 * MiB))" <<<"$BODY"
    patched=1
    break
  fi
  sleep 0.1
done
check "the guest reached the vde read and the host patched it" test "$patched" = 1
RC=124
for _ in $(seq $((BOOT_TIMEOUT * 10))); do
  kill -0 "$EPID" 2>/dev/null || { wait "$EPID"; RC=$?; break; }
  sleep 0.1
done
EPID_DONE=$EPID; [ "$RC" = 124 ] && kill -KILL "$EPID" 2>/dev/null; EPID=
check "ember exit 0 (got $RC)" test "$RC" -eq 0

if userspace_ran "$tmp/out"; then
  ms_of() { sed -n "s|.*EMBER-CHECK: $1 read \([0-9]*\) bytes in \([0-9]*\) ms.*|\1 \2|p" "$tmp/out" | tail -1; }
  within() { # MS EXPECTED_MS PERCENT
    [ "$1" -ge $(($2 * (100 - $3) / 100)) ] && [ "$1" -le $(($2 * (100 + $3) / 100)) ]
  }
  read -r b_bytes b_ms <<<"$(ms_of "dd /dev/vdb")"
  read -r c_bytes c_ms <<<"$(ms_of "dd /dev/vdc")"
  read -r d_bytes d_ms <<<"$(ms_of "dd /dev/vdd")"
  read -r e_bytes e_ms <<<"$(ms_of "dd /dev/vde")"
  read -r f_bytes f_ms <<<"$(ms_of "dd /dev/vdf")"
  read -r r_bytes r_ms <<<"$(ms_of "hwrng")"
  echo "# measured: vdb ${b_ms:-?} ms (want 5750), vdc ${c_ms:-?} ms (want 5900), vdd ${d_ms:-?} ms (no limit)," \
    "vde ${e_ms:-?} ms (PATCHed after ~1 s; 12000 without), vdf ${f_ms:-?} ms (want 1750), hwrng ${r_bytes:-?} bytes in ${r_ms:-?} ms (want >= 1750)"
  check "vdb: all 3 MiB read" test "${b_bytes:-0}" = $((3 * MiB))
  check "vdb: bandwidth limit: ${b_ms:-?} ms within 20 % of 5750" within "${b_ms:-0}" 5750 20
  check "vdc: all 120 blocks read" test "${c_bytes:-0}" = $((120 * 4096))
  check "vdc: ops limit: ${c_ms:-?} ms within 20 % of 5900" within "${c_ms:-0}" 5900 20
  check "vdd: all 3 MiB read" test "${d_bytes:-0}" = $((3 * MiB))
  check "vdd: unlimited read (${d_ms:-?} ms) under half the limited one (${b_ms:-?} ms)" \
    test $((${d_ms:-999999} * 2)) -lt "${b_ms:-0}"
  check "vde: all 3 MiB read" test "${e_bytes:-0}" = $((3 * MiB))
  check "vde: the PATCH sped it up: ${e_ms:-?} ms, well under the 12000 of the old limit" \
    test "${e_ms:-999999}" -lt 6000
  check "vdf: all 3 MiB read" test "${f_bytes:-0}" = $((3 * MiB))
  # The burst goes at full speed (as vdd's unlimited read), the rest at the limit.
  check "vdf: one_time_burst: ${f_ms:-?} ms, at least 80 % of 1750, at most vdd's ${d_ms:-?} + 120 % of 1750" \
    test "${f_ms:-0}" -ge 1400 -a "${f_ms:-999999}" -le $((${d_ms:-0} + 2100))
  check "vdf: the burst made it faster than vdb (${f_ms:-?} < ${b_ms:-?} ms)" test "${f_ms:-999999}" -lt "${b_ms:-0}"
  check "hwrng is the virtio device" grep -q "EMBER-CHECK: hwrng rng_current virtio_rng" "$tmp/out"
  check "hwrng: 32 KiB read" test "${r_bytes:-0}" = 32768
  check "hwrng: entropy rate limit: ${r_ms:-?} ms, at least 80 % of 1750" test "${r_ms:-0}" -ge 1400
  last=$(grep -v '^$' "$tmp/metrics.json" | tail -1)
  metric() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$last" "$1" "$2" 2>/dev/null; }
  throttled=$(metric block rate_limiter_throttled_events)
  check "metrics: block.rate_limiter_throttled_events > 0 (${throttled:-none})" test "${throttled:-0}" -gt 0
  ebytes=$(metric entropy entropy_bytes)
  check "metrics: entropy.entropy_bytes >= 32768 (${ebytes:-none})" test "${ebytes:-0}" -ge 32768
  ethrottled=$(metric entropy entropy_rate_limiter_throttled)
  check "metrics: entropy.entropy_rate_limiter_throttled > 0 (${ethrottled:-none})" test "${ethrottled:-0}" -gt 0
  if [ "$net" = 1 ]; then
    [ -n "$DPID" ] && { wait "$DPID"; DPID=; }
    res() { python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {"json": json}, r))' "$tmp/net.json" "$1" 2>/dev/null; }
    rx_ms=$(res 'rx["ms"]') tx_ms=$(res 'tx["ms"]') free_ms=$(res 'free["ms"]') patch_ms=$(res 'patch["ms"]')
    tx_bytes=$(res 'tx["bytes"]')
    content_bytes=$(guest_check_content | wc -c)
    wire_ms() { echo $((($1 * 1514 / 1448 - 14480) * 1000 / $2)); } # BYTES RATE: see the header
    want_rx=$(wire_ms $RX_BYTES $((128 * KiB))) want_tx=$(wire_ms "$content_bytes" $((64 * KiB)))
    want_slow=$(((RX_BYTES - 16 * KiB) * 1000 / (64 * KiB)))
    echo "# measured: net rx ${rx_ms:-?} ms (want $want_rx), tx ${tx_ms:-?} ms (want $want_tx)," \
      "unlimited ${free_ms:-?} ms, PATCHed mid-transfer ${patch_ms:-?} ms ($want_slow at the old limit)"
    check "net rx: the guest received the 640 KiB" grep -qF "EMBER-CHECK: tcp-recv received $RX_BYTES bytes sha256 $(sha256sum < "$tmp/payload" | cut -d' ' -f1) from 172.31.251.1:5101" "$tmp/out"
    check "net rx limit: ${rx_ms:-?} ms within 20 % of $want_rx" within "${rx_ms:-0}" "$want_rx" 20
    check "net tx: the host received the guest's $content_bytes bytes (${tx_bytes:-?})" test "${tx_bytes:-0}" = "$content_bytes"
    check "net tx limit: ${tx_ms:-?} ms within 20 % of $want_tx" within "${tx_ms:-0}" "$want_tx" 20
    check "net: PATCH both limits off: 204 ($(res free_patch_code))" test "$(res free_patch_code)" = 204
    check "net unlimited: ${free_ms:-?} ms, under half the rx-limited ${rx_ms:-?} ms" test $((${free_ms:-999999} * 2)) -lt "${rx_ms:-0}"
    check "net: PATCH rx to 64 KiB/s, then mid-transfer to 8 MiB/s: 204, 204 ($(res slow_patch_code), $(res fast_patch_code))" \
      test "$(res slow_patch_code) $(res fast_patch_code)" = "204 204"
    check "net: the mid-transfer PATCH sped it up: ${patch_ms:-?} ms, under half the old limit's $want_slow" \
      test $((${patch_ms:-999999} * 2)) -lt "$want_slow"
    check "net: the guest received all of the PATCHed transfer" grep -qF "EMBER-CHECK: tcp-recv received $RX_BYTES bytes sha256 $(sha256sum < "$tmp/payload" | cut -d' ' -f1) from 172.31.251.1:5104" "$tmp/out"
    check "net: GET /vm/config shows the new rx limit" test "$(res 'json.loads(config)["network-interfaces"][0]["rx_rate_limiter"]["bandwidth"]["size"]' 2>/dev/null)" = $NET_FAST_SIZE
    nrx=$(metric net rx_rate_limiter_throttled) ntx=$(metric net tx_rate_limiter_throttled)
    check "metrics: net.rx_rate_limiter_throttled > 0 (${nrx:-none}), tx_rate_limiter_throttled > 0 (${ntx:-none})" \
      test "${nrx:-0}" -gt 0 -a "${ntx:-0}" -gt 0
    check "net: no guest check failed" grep -qE "EMBER-CHECK: done: [0-9]+ check\(s\), 0 failed" "$tmp/out"
    [ "$FAILS" -gt 0 ] && { echo "--- driver:"; cat "$tmp/net.json" "$tmp/driver.err" 2>/dev/null; }
  fi
fi
show_on_failure "$tmp/out" "$tmp/err"
finish
