#!/usr/bin/env bash
# Fault injection (issue #16): SIGKILL of ember, with the tiny test guest
# (tests/guest, "counter": runs for ever), in a network namespace:
#   1. during PUT /snapshot/create, at random moments over the create's
#      duration (measured first on an undisturbed create, whose snapshot must
#      load): a state file under its final name always loads (the memory file
#      is written first, each file to a temporary name then renamed); else a
#      load fails cleanly (exit 1, a message naming the file);
#   2. at random moments of its start-up (--config-file with a writable drive,
#      a tap, a metrics file, and an API socket): the next start with the same
#      files is not tripped (the stale socket is replaced; the drive's lock
#      and the tap went with the process).
# The Linux-guest faults: t_faults.sh; ember-jailer killed: t_faults_jailer.sh.
# integration: deadline 600
source "$(dirname "$0")/lib.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "a network namespace and a tap need root"
for c in ip curl mke2fs; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
tmp=$(mktemp -d)
ns=ember-fkill-$$
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  wait 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
T0=$(date +%s)
ip netns add "$ns" || skip "cannot create a network namespace here"
ip -n "$ns" tuntap add dev tap1 mode tap vnet_hdr
mke2fs -q -F -t ext4 "$tmp/good.ext4" 8M >/dev/null
start_ember() { # NAME SOCK [ARGS...]: ember in the namespace, console in NAME.out; EPID set once the socket answers
  local name=$1 sock=$2; shift 2
  ip netns exec "$ns" "$EMBER" --api-sock "$sock" --log-level info "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
  EPID=$!; PIDS+=("$EPID")
  for _ in $(seq 500); do api_answers "$sock" && return 0; kill -0 "$EPID" 2>/dev/null || break; sleep 0.02; done
  not_ok "$name: the API socket never answered"; tail -5 "$tmp/$name.err"; return 1
}
kill_wait() { { kill -KILL "$1"; wait "$1"; } 2>/dev/null; } # no job-control notice in the output

# ---- 1. SIGKILL during PUT /snapshot/create (the tiny counter guest)
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
  { kill -KILL $p; wait $p; LOAD_RC=$?; } 2>/dev/null
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
  kill_wait "$EPID"
  check "snapshot: the undisturbed snapshot loads" loads "$tmp/snap0/state" "$tmp/snap0/mem"
else
  not_ok "snapshot: the counter guest did not start"; create_ms=500
fi
whole=0 none=0 bad=0 tmps=0
for i in 1 2 3 4 5; do
  d=$tmp/snap$i; mkdir -p "$d"
  boot_counter "snap$i" "$tmp/snap$i.sock" || { not_ok "snapshot $i: the counter guest did not start"; continue; }
  api "$tmp/snap$i.sock" PATCH /vm '{"state":"Paused"}'
  curl -s --max-time 60 --unix-socket "$tmp/snap$i.sock" -X PUT -H 'Content-Type: application/json' \
    --data "$(snapshot_body "$d")" http://localhost/snapshot/create >/dev/null 2>&1 &
  client=$!
  # Random kills, one in each fifth of [0, 1.25 x the undisturbed create's duration].
  delay_ms=$(( (i - 1) * create_ms / 4 + RANDOM % (create_ms / 4 + 1) ))
  sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  kill_wait "$EPID"; wait $client 2>/dev/null
  n_tmp=$(ls "$d" | grep -c '\.tmp\.' || true); tmps=$((tmps + n_tmp))
  left="$(ls "$d" | tr '\n' ' ')"
  if [ -e "$d/state" ]; then
    if [ -e "$d/mem" ] && loads "$d/state" "$d/mem"; then
      whole=$((whole + 1)); ok "snapshot $i (killed at $delay_ms ms, left: $left): whole, and it loads"
    else bad=$((bad + 1)); not_ok "snapshot $i (killed at $delay_ms ms): a state file under its final name does not load: $LOAD_ERR"; fi
  else
    if loads "$d/state" "$d/mem"; then bad=$((bad + 1)); not_ok "snapshot $i: a load without a state file succeeded"
    else none=$((none + 1)); fi
    check "snapshot $i (killed at $delay_ms ms, left: ${left:-nothing}): the load fails cleanly: exit 1, '$LOAD_ERR'" \
      test "$LOAD_RC" -eq 1 -a -n "$LOAD_ERR"
  fi
done
echo "# snapshot kills: $whole left a whole snapshot, $none none under the final name, $bad a bad one; $tmps temporary file(s) left beside"
check "snapshot: no kill left a state file that does not load" test "$bad" -eq 0

# ---- 2. SIGKILL at random moments of start-up
cat >"$tmp/boot.json" <<EOF
{"boot-source": {"kernel_image_path": "$TEST_GUEST", "boot_args": "ember-test=counter"},
 "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
 "drives": [{"drive_id": "data", "path_on_host": "$tmp/good.ext4", "is_root_device": false, "is_read_only": false}],
 "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap1"}],
 "metrics": {"metrics_path": "$tmp/boot.metrics"}}
EOF
: >"$tmp/boot.metrics"
killed_at=
for i in 1 2 3 4 5 6; do
  delay_ms=$(( (i - 1) * 100 + RANDOM % 100 )) # one random moment in each 100 ms of the first 600
  ip netns exec "$ns" "$EMBER" --config-file "$tmp/boot.json" --api-sock "$tmp/boot.sock" </dev/null >"$tmp/boot.out" 2>"$tmp/boot.err" &
  p=$!; PIDS+=("$p")
  sleep "$(printf '0.%03d' $delay_ms)"
  kill_wait $p
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
echo "# t_faults_kill: $(( $(date +%s) - T0 )) s"
finish
