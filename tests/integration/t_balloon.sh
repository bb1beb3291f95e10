#!/usr/bin/env bash
# virtio-balloon end to end with the project's Linux guest and its userspace
# (deploy/guest/init.sh: ember.hold, "check meminfo", "check fill:MIB").
# One 256 MiB guest, booted from a config file with a balloon (target 0,
# deflate_on_oom, statistics every second), held up by ember.hold:
#   1. the guest touches 150 MiB (a tmpfs it fills and frees): ember's RSS
#      (/proc/PID/smaps_rollup) grows
#   2. statistics: GET /balloon/statistics answers with the guest's numbers
#      and the metrics' stats_updates_count grows by about one a second
#   3. PATCH /balloon {amount_mib: 128}: the guest inflates until actual
#      reaches the target; its MemAvailable drops by about 128 MiB and
#      ember's RSS by at least 60 % of the inflated 128 MiB
#   4. PATCH /balloon {amount_mib: 0}: actual returns to 0
#   5. deflate_on_oom: inflated to 128 MiB again, the guest fills 140 MiB
#      (more than it has left): the balloon gives pages back (1 MiB per
#      out-of-memory event), the fill completes and actual falls below the
#      target
# The metrics line written at the end counts inflates, deflates and no
# hostile page numbers.
# integration: deadline 1800
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
command -v curl >/dev/null || skip "curl is needed"
command -v python3 >/dev/null || skip "python3 is needed"
tmp=$(mktemp -d)
EPID=
cleanup() { [ -n "$EPID" ] && kill -KILL "$EPID" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
MiB=$((1024 * 1024))
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 1M "$tmp/control.img"
control() { printf '%s\n' "$1" | dd of="$tmp/control.img" bs=512 count=1 conv=notrunc,sync status=none; LAST_CONTROL=$1; }
control hold
cat > "$tmp/config.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$GUEST_DIR/vmlinux",
                  "boot_args": "$LINUX_CMDLINE_BASE ember.check=meminfo ember.hold=/dev/vdb"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
  "metrics": {"metrics_path": "$tmp/metrics.json"},
  "drives": [
    {"drive_id": "rootfs", "path_on_host": "$tmp/root.ext4", "is_root_device": true},
    {"drive_id": "control", "path_on_host": "$tmp/control.img", "is_root_device": false, "is_read_only": true}
  ],
  "balloon": {"amount_mib": 0, "deflate_on_oom": true, "stats_polling_interval_s": 1}
}
JSON
: > "$tmp/metrics.json"
sock=$tmp/api.sock
out=$tmp/out
$EMBER --config-file "$tmp/config.json" --api-sock "$sock" --log-level info </dev/null >"$out" 2>"$tmp/err" &
EPID=$!
BOOT_TIMEOUT=${LINUX_BOOT_TIMEOUT:-900}

rss_kib() { awk '/^Rss:/ { print $2 }' "/proc/$EPID/smaps_rollup" 2>/dev/null; }
# The Nth (default: last) value of a field of the guest's "meminfo" lines.
meminfo() { sed -n "s/.*EMBER-CHECK: meminfo .*$1 \([0-9]*\).*/\1/p" "$out" | tail -n "${2:-1}" | head -1; }
stat_of() { python3 -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$BODY" "$1" 2>/dev/null; }
# wait_actual MIB SECONDS: until GET /balloon/statistics says actual_mib is MIB.
wait_actual() {
  for _ in $(seq "$2"); do
    api "$sock" GET /balloon/statistics
    [ "$CODE" = 200 ] && [ "$(stat_of actual_mib)" = "$1" ] && return 0
    sleep 1
  done
  return 1
}
# A check run by the guest on the control drive: "check SPEC", done when the summary line after it appears.
# The guest acts on a change of the line, so "hold" goes first (the same check may come twice in a row).
says_hold() { grep -ac "EMBER-HOLD: /dev/vdb says 'hold'" "$out"; }
guest_check() { # SPEC SECONDS
  local n0 h0; n0=$(grep -ac "EMBER-CHECK: done:" "$out"); h0=$(says_hold)
  if [ "$LAST_CONTROL" != hold ]; then
    control hold
    for _ in $(seq 300); do [ "$(says_hold)" -gt "$h0" ] && break; sleep 0.1; done
  fi
  control "check $1"
  for _ in $(seq $(($2 * 10))); do
    [ "$(grep -ac "EMBER-CHECK: done:" "$out")" -gt "$n0" ] && return 0
    sleep 0.1
  done
  return 1
}
flush_metric() { # GROUP NAME: flushes the metrics and prints the last line's value
  api "$sock" PUT /actions '{"action_type":"FlushMetrics"}'
  local last; last=$(grep -v '^$' "$tmp/metrics.json" | tail -1)
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]][sys.argv[3]])' "$last" "$1" "$2" 2>/dev/null
}

if ! wait_for "$out" "EMBER-HOLD: tick 2([^0-9]|$)" "$BOOT_TIMEOUT"; then
  not_ok "the guest did not reach its hold loop"
  userspace_ran "$out"
  tail -20 "$out"; tail -10 "$tmp/err"
  finish
fi
check "the guest printed its memory at boot" sh -c "grep -aq 'EMBER-CHECK: meminfo total' '$out'"
expect_code "GET /balloon" 200 "$sock" GET /balloon
check "GET /balloon: the configuration" grep -q '"deflate_on_oom": *true' <<<"$BODY"

echo "# 1. the guest touches 150 MiB"
rss0=$(rss_kib)
check "guest fill:150 done" guest_check fill:150 300
check "... all 150 MiB written" grep -aq "EMBER-CHECK: fill wrote $((150 * MiB)) bytes" "$out"
check "guest meminfo after the fill" guest_check meminfo 60
avail_before=$(meminfo available)
rss1=$(rss_kib)
echo "# ember RSS: ${rss0:-?} KiB at the hold, ${rss1:-?} KiB after the guest touched 150 MiB; guest MemAvailable ${avail_before:-?} kB"
check "ember's RSS grew by at least 100 MiB (${rss0:-?} -> ${rss1:-?} KiB)" test $((${rss1:-0} - ${rss0:-0})) -ge $((100 * 1024))

echo "# 2. statistics"
expect_code "GET /balloon/statistics" 200 "$sock" GET /balloon/statistics
check "statistics: the guest's total_memory and free_memory ($BODY)" sh -c "[ -n '$(stat_of total_memory)' ] && [ -n '$(stat_of free_memory)' ]"
check "statistics: no null field (only what the guest reported)" test "$BODY" = "${BODY//null/}"
u0=$(flush_metric balloon stats_updates_count)
sleep 4
u1=$(flush_metric balloon stats_updates_count)
check "stats_updates_count grows with a 1 s interval (${u0:-?} -> ${u1:-?} in 4 s)" test "${u1:-0}" -ge $((${u0:-0} + 2))
expect_code "PATCH /balloon/statistics to 2 s" 204 "$sock" PATCH /balloon/statistics '{"stats_polling_interval_s":2}'
expect_code "PATCH /balloon/statistics to 0: statistics cannot be switched off after boot" 400 "$sock" PATCH /balloon/statistics '{"stats_polling_interval_s":0}'
expect_code "PATCH /balloon/statistics back to 1 s" 204 "$sock" PATCH /balloon/statistics '{"stats_polling_interval_s":1}'

echo "# 3. inflate to 128 MiB"
expect_code "PATCH /balloon beyond the VM's memory" 400 "$sock" PATCH /balloon '{"amount_mib":300}'
expect_code "PATCH /balloon {amount_mib: 128}" 204 "$sock" PATCH /balloon '{"amount_mib":128}'
t0=$(date +%s.%N)
check "actual reaches 128 MiB" wait_actual 128 600
t1=$(date +%s.%N)
rss2=$(rss_kib)
check "guest meminfo after the inflate" guest_check meminfo 60
avail_after=$(meminfo available)
dropped=$(( ${rss1:-0} - ${rss2:-0} ))
echo "# inflate 128 MiB in $(echo "$t1 - $t0" | bc) s; ember RSS ${rss1:-?} -> ${rss2:-?} KiB (-$((dropped / 1024)) MiB); guest MemAvailable ${avail_before:-?} -> ${avail_after:-?} kB"
check "ember's RSS dropped by at least 60 % of 128 MiB (${dropped} KiB)" test "$dropped" -ge $((128 * 1024 * 60 / 100))
check "the guest's MemAvailable dropped by 100..160 MiB (${avail_before:-?} -> ${avail_after:-?} kB)" \
  test $((${avail_before:-0} - ${avail_after:-0})) -ge $((100 * 1024)) -a $((${avail_before:-0} - ${avail_after:-0})) -le $((160 * 1024))
api "$sock" GET /balloon/statistics
check "statistics: target_mib 128, target_pages 32768 ($BODY)" sh -c "[ '$(stat_of target_mib)' = 128 ] && [ '$(stat_of target_pages)' = 32768 ]"
api "$sock" GET /vm/config
check "GET /vm/config shows the new target" grep -q '"amount_mib": *128' <<<"$BODY"

echo "# 4. deflate to 0"
expect_code "PATCH /balloon {amount_mib: 0}" 204 "$sock" PATCH /balloon '{"amount_mib":0}'
check "actual returns to 0" wait_actual 0 600
check "the guest fills 150 MiB again after the deflate" guest_check fill:150 300
check "... all 150 MiB written" test "$(grep -ac "EMBER-CHECK: fill wrote $((150 * MiB)) bytes" "$out")" -ge 2

echo "# 5. deflate_on_oom"
expect_code "PATCH /balloon {amount_mib: 128} again" 204 "$sock" PATCH /balloon '{"amount_mib":128}'
check "actual reaches 128 MiB again" wait_actual 128 600
t0=$(date +%s)
check "the guest fills 140 MiB with 128 MiB in the balloon" guest_check fill:140 900
check "... all 140 MiB written in $(($(date +%s) - t0)) s: the balloon gave pages back" grep -aq "EMBER-CHECK: fill wrote $((140 * MiB)) bytes" "$out"
api "$sock" GET /balloon/statistics
echo "# after the fill: actual_mib $(stat_of actual_mib), oom_kill $(stat_of oom_kill)"
check "actual fell below the target ($(stat_of actual_mib) MiB)" test "$(stat_of actual_mib)" -lt 128

control reboot
wait_exit "$EPID" 300
EPID=
check "ember exit 0 (got $RC)" test "$RC" -eq 0
check "no kernel panic or oops" sh -c "! grep -aqE 'Kernel panic|Oops|BUG:' '$out'"
last=$(grep -v '^$' "$tmp/metrics.json" | tail -1)
metric() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])["balloon"][sys.argv[2]])' "$last" "$1" 2>/dev/null; }
echo "# metrics: balloon $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["balloon"])' "$last" 2>/dev/null)"
check "metrics: inflate_count > 0" test "$(metric inflate_count)" -gt 0
check "metrics: deflate_count > 0" test "$(metric deflate_count)" -gt 0
check "metrics: pages_inflated >= 2 x 128 MiB of pages" test "$(metric pages_inflated)" -ge $((2 * 128 * 256))
check "metrics: no hostile page numbers from a well-behaved guest" test "$(metric hostile_pfns)" = 0
[ "$FAILS" -gt 0 ] && { echo "--- console tail:"; tail -25 "$out"; echo "--- stderr:"; tail -10 "$tmp/err"; }
finish
