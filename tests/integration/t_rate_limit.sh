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
# integration: deadline 1500
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
command -v curl >/dev/null || skip "curl is needed"
tmp=$(mktemp -d)
EPID=
cleanup() { [ -n "$EPID" ] && kill -KILL "$EPID" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
MiB=$((1024 * 1024))
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
for d in vdb vdc vdd vde vdf; do truncate -s 8M "$tmp/$d.img"; done
checks="ember.check=dd:/dev/vdb:48:65536,dd:/dev/vdc:120:4096,dd:/dev/vdd:48:65536,dd:/dev/vde:48:65536,dd:/dev/vdf:48:65536,hwrng:32768"
bucket() { printf '{"size":%s,"refill_time":%s%s}' "$1" "$2" "${3:+,\"one_time_burst\":$3}"; }
drive() { # ID LIMITER-JSON
  printf '{"drive_id":"%s","path_on_host":"%s","is_root_device":false%s}' "$1" "$tmp/$1.img" "${2:+,\"rate_limiter\":$2}"
}
cat > "$tmp/config.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_DIR/vmlinux", "boot_args": "$LINUX_CMDLINE_BASE $checks"},
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
  "entropy": {"rate_limiter": {"bandwidth": $(bucket 4096 250)}}
}
JSON
: > "$tmp/metrics.json"
sock=$tmp/api.sock
$EMBER --config-file "$tmp/config.json" --api-sock "$sock" --log-level info </dev/null >"$tmp/out" 2>"$tmp/err" &
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
fi
show_on_failure "$tmp/out" "$tmp/err"
finish
