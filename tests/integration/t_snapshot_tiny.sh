#!/usr/bin/env bash
# Snapshots with the tiny test guest's "counter" test (every vCPU counts
# forever, keeping the count in a register and in memory, checking a running
# sum and an 8 MiB memory pattern, printing every 2^21 counts): pause, Full
# snapshot, restore in a new process (1 and 2 vCPUs, API and command line,
# File and Uffd backends, started paused or running, clones), Diff snapshots
# merged onto their base, and the bad inputs of a create and a load, each a
# 400 that leaves ember serving. The counts before the snapshot and after the
# restore must read as one sequence: no reboot, no lost or repeated state.
# integration: deadline 1500
# One emulated CPU: with two (smp 2), about one run in five ended with a
# restored 2-vCPU guest in a triple fault (vCPU 0 or 1, RIP 0xfff0) after
# counting correctly for a while, which neither a keeper VM (tests/kvmhost)
# nor 21 solo runs explained; suspected: the emulated host's cross-CPU TLB
# handling (QEMU TCG, nested SVM) as the restored guest's first writes
# copy-on-write its MAP_PRIVATE memory. Both guest vCPUs still run, as two
# threads on one CPU. The APs now load the IDT, so a fault there prints its
# vector and RIP instead of a triple fault.
source "$(dirname "$0")/lib.sh"
require_kvm
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
HANDLER=${HANDLER:-$BUILD/ember-uffd-handler}
MERGE=${MERGE:-$BUILD/ember-snapshot-merge}
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; umount "$tmp/full" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

# counter_lines FILE CPU: the counts cpu CPU printed, one a line.
counter_lines() { grep -ao "counter cpu$2: [0-9]*" "$1" | awk '{print $3}'; }
# wait_lines FILE N [SECONDS]: until FILE holds N counter lines.
wait_lines() {
  local i
  for ((i = 0; i < ${3:-60} * 10; i++)); do
    [ "$(grep -ac 'counter cpu' "$1")" -ge "$2" ] && return 0
    sleep 0.1
  done
  return 1
}
# continues BEFORE AFTER CPUS: the lines of BEFORE then AFTER (as one stream: a line the snapshot cut in two is
# whole again) are, per CPU, one sequence of consecutive multiples of 2^21, with 3+ counts after the restore.
continues() {
  python3 - "$1" "$2" "$3" <<'EOF'
import re, sys
before, after = (open(p, 'rb').read().decode('latin1') for p in sys.argv[1:3])
step = 1 << 21
for cpu in range(int(sys.argv[3])):
    pat = re.compile(r'counter cpu%d: (\d+)\n' % cpu)
    b = [int(x) for x in pat.findall(before)]
    whole = [int(x) for x in pat.findall(before + after)]
    if len(b) < 2 or len(whole) < len(b) + 3:
        sys.exit('cpu%d: %d counts before, %d in all' % (cpu, len(b), len(whole)))
    for x, y in zip(whole, whole[1:]):
        if y != x + step:
            sys.exit('cpu%d: %d then %d' % (cpu, x, y))
if 'counting' in after or 'FAIL' in after:
    sys.exit('the restored guest rebooted or failed')
EOF
}
# start_ember NAME ARGS...: ember in the background, output in $tmp/NAME.{out,err}, API on $tmp/NAME.sock.
start_ember() {
  local name=$1; shift
  "$EMBER_BIN" --api-sock "$tmp/$name.sock" --log-level info "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
  PID=$!; pids+=("$PID")
  local i; for ((i = 0; i < 100; i++)); do api_answers "$tmp/$name.sock" && return 0; sleep 0.05; done
  return 1
}
# stop_ember PID: SIGTERM, and SIGKILL after 20 s (RC is then 137: the caller's check fails rather than hangs).
stop_ember() {
  kill -TERM "$1" 2>/dev/null
  local i; for ((i = 0; i < 200; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$1" 2>/dev/null
  wait "$1"; RC=$?
}
# boot_counter NAME VCPUS [MACHINE_JSON_EXTRA]: a counting guest over the API, PID set.
boot_counter() {
  start_ember "$1" || return 1
  api "$tmp/$1.sock" PUT /machine-config "{\"vcpu_count\":$2,\"mem_size_mib\":128${3:-}}"
  api "$tmp/$1.sock" PUT /boot-source "{\"kernel_image_path\":\"$TEST_GUEST\",\"boot_args\":\"ember-test=counter\"}"
  api "$tmp/$1.sock" PUT /actions '{"action_type":"InstanceStart"}'
  [ "$CODE" = 204 ] && wait_lines "$tmp/$1.out" $((4 * $2))
}
# pause_and_snapshot NAME DIR [TYPE]: pauses NAME, keeps its output so far in DIR/before, snapshots into DIR.
pause_and_snapshot() {
  mkdir -p "$2"
  api "$tmp/$1.sock" PATCH /vm '{"state":"Paused"}'; local pc=$CODE
  cp "$tmp/$1.out" "$2/before"
  api "$tmp/$1.sock" PUT /snapshot/create \
    "{\"snapshot_path\":\"$2/state\",\"mem_file_path\":\"$2/mem\",\"snapshot_type\":\"${3:-Full}\"}"
  [ "$pc" = 204 ]
}
lacks() { ! grep -q "$1" <<<"$2"; }
no_sanitizer_report() { ! grep -qE 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$1"; }

for EMBER_BIN in "$EMBER" "$EMBER_ASAN"; do
  tag=$(basename "$(dirname "$EMBER_BIN")")
  [ -x "$EMBER_BIN" ] || { not_ok "$tag: $EMBER_BIN missing"; continue; }
  vcpu_list="1 2"; [ "$tag" = asan ] && vcpu_list=1
  for n in $vcpu_list; do
    s="$tmp/s$n-$tag"
    boot_counter orig "$n"; check "$tag $n vCPU: the counter guest runs" test "$CODE" = 204
    opid=$PID
    pause_and_snapshot orig "$s"
    check "$tag $n vCPU: PUT /snapshot/create on the paused VM: 204 (got $CODE $BODY)" test "$CODE" = 204
    check "$tag $n vCPU: state and memory files written" test -s "$s/state" -a -s "$s/mem"
    check "$tag $n vCPU: memory file is the guest's RAM size" test "$(stat -c %s "$s/mem")" = $((128 << 20))
    api "$tmp/orig.sock" GET /; check "$tag $n vCPU: still Paused after create" grep -q '"state":"Paused"' <<<"$BODY"
    sleep 0.5
    check "$tag $n vCPU: nothing printed while paused" cmp -s "$s/before" "$tmp/orig.out"
    stop_ember "$opid"; check "$tag $n vCPU: the snapshotted ember stops with 0 (got $RC)" test "$RC" -eq 0

    # Restore over the API, running at once.
    start_ember rest1
    rpid=$PID
    api "$tmp/rest1.sock" PUT /snapshot/load \
      "{\"snapshot_path\":\"$s/state\",\"mem_backend\":{\"backend_type\":\"File\",\"backend_path\":\"$s/mem\"},\"resume_vm\":true}"
    check "$tag $n vCPU: PUT /snapshot/load: 204 (got $CODE $BODY)" test "$CODE" = 204
    api "$tmp/rest1.sock" GET /; check "$tag $n vCPU: restored VM is Running" grep -q '"state":"Running"' <<<"$BODY"
    api "$tmp/rest1.sock" GET /vm/config
    check "$tag $n vCPU: GET /vm/config shows the restored machine" grep -q "\"vcpu_count\":$n" <<<"$BODY"
    check "$tag $n vCPU: ... and no boot source (as Firecracker)" lacks boot-source "$BODY"
    wait_lines "$tmp/rest1.out" $((3 * n)) 60
    check "$tag $n vCPU: the count continues exactly where it stopped" continues "$s/before" "$tmp/rest1.out" "$n"
    # The restored VM pauses and resumes like a booted one.
    api "$tmp/rest1.sock" PATCH /vm '{"state":"Paused"}'; check "$tag $n vCPU: restored VM pauses" test "$CODE" = 204
    cp "$tmp/rest1.out" "$tmp/paused.out"; sleep 0.5
    check "$tag $n vCPU: ... and stays quiet" cmp -s "$tmp/paused.out" "$tmp/rest1.out"
    api "$tmp/rest1.sock" PATCH /vm '{"state":"Resumed"}'
    wait_lines "$tmp/rest1.out" $(($(grep -ac 'counter cpu' "$tmp/paused.out") + n)) 30
    check "$tag $n vCPU: ... and continues after resume" continues "$tmp/paused.out" \
      <(tail -c +$(($(stat -c %s "$tmp/paused.out") + 1)) "$tmp/rest1.out") "$n"
    api "$tmp/rest1.sock" PUT /actions '{"action_type":"FlushMetrics"}'
    stop_ember "$rpid"
    check "$tag $n vCPU: restored ember stops with 0 (got $RC: $(grep -v ': info:' "$tmp/rest1.err" | tail -2 | tr '\n' ' '))" \
      test "$RC" -eq 0
    [ "$RC" -eq 0 ] || echo "# the restored guest's last output: $(tail -c 400 "$tmp/rest1.out" | tr -c '[:print:]\n' '?' | tail -4 | tr '\n' '|')"
    check "$tag $n vCPU: no sanitizer report" no_sanitizer_report "$tmp/rest1.err"
  done
done
EMBER_BIN=$EMBER
s="$tmp/s1-build"

# Command line, started paused: nothing runs until PATCH /vm Resumed.
"$EMBER" --snapshot-load "$s/state" --mem "$s/mem" --api-sock "$tmp/cli.sock" </dev/null >"$tmp/cli.out" 2>"$tmp/cli.err" &
cpid=$!; pids+=("$cpid")
for i in $(seq 100); do api_answers "$tmp/cli.sock" && break; sleep 0.05; done
api "$tmp/cli.sock" GET /; check "cli: --snapshot-load without --resume is Paused" grep -q '"state":"Paused"' <<<"$BODY"
sleep 0.5
check "cli: ... and the guest prints nothing" test "$(grep -ac 'counter cpu' "$tmp/cli.out")" -eq 0
api "$tmp/cli.sock" PATCH /vm '{"state":"Resumed"}'
wait_lines "$tmp/cli.out" 3 30
check "cli: after PATCH /vm Resumed the count continues" continues "$s/before" "$tmp/cli.out" 1
api "$tmp/cli.sock" PUT /snapshot/load "{\"snapshot_path\":\"$s/state\",\"mem_file_path\":\"$s/mem\"}"
check "cli: a second load is refused (got $CODE)" test "$CODE" = 400
stop_ember "$cpid"

# Clones: four processes from one snapshot at once, each continuing from the same point.
sha_before=$(sha256sum <"$s/mem")
cl=()
for c in 1 2 3 4; do
  "$EMBER" --snapshot-load "$s/state" --mem "$s/mem" --resume --no-api </dev/null >"$tmp/clone$c.out" 2>"$tmp/clone$c.err" &
  cl+=($!); pids+=($!)
done
for c in 1 2 3 4; do wait_lines "$tmp/clone$c.out" 3 60; done
for c in 1 2 3 4; do check "clone $c continues from the snapshot" continues "$s/before" "$tmp/clone$c.out" 1; done
for p in "${cl[@]}"; do stop_ember "$p"; done
check "the memory file is unchanged after four clones wrote to their RAM" test "$(sha256sum <"$s/mem")" = "$sha_before"

# Uffd: the bundled handler serves the memory file's pages.
if [ -x "$HANDLER" ]; then
  "$HANDLER" "$tmp/handler.sock" "$s/mem" 2>"$tmp/handler.err" &
  hpid=$!; pids+=("$hpid")
  for i in $(seq 100); do [ -S "$tmp/handler.sock" ] && break; sleep 0.05; done
  start_ember uffd
  upid=$PID
  api "$tmp/uffd.sock" PUT /snapshot/load \
    "{\"snapshot_path\":\"$s/state\",\"mem_backend\":{\"backend_type\":\"Uffd\",\"backend_path\":\"$tmp/handler.sock\"},\"resume_vm\":true}"
  check "uffd: load with the bundled handler: 204 (got $CODE $BODY)" test "$CODE" = 204
  wait_lines "$tmp/uffd.out" 3 60
  check "uffd: the count continues" continues "$s/before" "$tmp/uffd.out" 1
  stop_ember "$upid"
  for i in $(seq 100); do kill -0 "$hpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$hpid" 2>/dev/null # still there after 10 s: the check below fails
  wait "$hpid"; hrc=$?
  check "uffd: the handler exits 0 when the VM goes (got $hrc)" test "$hrc" -eq 0
  check "uffd: the handler served page faults" grep -qE "[1-9][0-9]* fault" "$tmp/handler.err"
else
  not_ok "uffd: $HANDLER missing (make all)"
fi

# Diff: Full, run, Diff; the diff holds only what changed; base + diff restores the later state.
boot_counter dif 1 ',"track_dirty_pages":true'; dpid=$PID
check "diff: booted with track_dirty_pages" test "$CODE" = 204
pause_and_snapshot dif "$tmp/d" Full; check "diff: Full snapshot (got $CODE $BODY)" test "$CODE" = 204
mv "$tmp/d/state" "$tmp/d/full.state"; mv "$tmp/d/mem" "$tmp/d/full.mem"
api "$tmp/dif.sock" PATCH /vm '{"state":"Resumed"}'
wait_lines "$tmp/dif.out" $(($(grep -ac 'counter cpu' "$tmp/d/before") + 3)) 30
mkdir -p "$tmp/d2"
pause_and_snapshot dif "$tmp/d2" Diff; check "diff: Diff snapshot (got $CODE $BODY)" test "$CODE" = 204
stop_ember "$dpid"
alloc_kib=$(du -k "$tmp/d2/mem" | cut -f1)
check "diff: the diff file is sparse: ${alloc_kib} KiB allocated of 131072" test "$alloc_kib" -gt 0 -a "$alloc_kib" -lt 4096
check "diff: same size as RAM" test "$(stat -c %s "$tmp/d2/mem")" = $((128 << 20))
"$MERGE" "$tmp/d/full.mem" "$tmp/d2/mem" >"$tmp/merge.out" 2>&1
check "diff: ember-snapshot-merge lays the diff onto the base (rc $?)" test $? -eq 0
"$EMBER" --snapshot-load "$tmp/d2/state" --mem "$tmp/d/full.mem" --resume --no-api </dev/null >"$tmp/merged.out" 2>"$tmp/merged.err" &
mpid=$!; pids+=("$mpid")
wait_lines "$tmp/merged.out" 3 60
check "diff: base + diff restores the later state" continues "$tmp/d2/before" "$tmp/merged.out" 1
stop_ember "$mpid"
api_create_diff_without_tracking() {
  boot_counter nodirty 1; local p=$PID
  mkdir -p "$tmp/nd"; pause_and_snapshot nodirty "$tmp/nd" Diff
  check "diff without track_dirty_pages: 400 naming it (got $CODE $BODY)" grep -q track_dirty_pages <<<"$BODY"
  stop_ember "$p"
}
api_create_diff_without_tracking

# Bad input: each a 400 with a fault_message, ember still serving, nothing half-written.
boot_counter bad 1; bpid=$PID
api "$tmp/bad.sock" PUT /snapshot/create "{\"snapshot_path\":\"$tmp/x.state\",\"mem_file_path\":\"$tmp/x.mem\"}"
check "create on a running VM: 400 (got $CODE $BODY)" grep -q "not paused\|pause it" <<<"$BODY"
api "$tmp/bad.sock" PATCH /vm '{"state":"Paused"}'
api "$tmp/bad.sock" PUT /snapshot/create "{\"snapshot_path\":\"$tmp/nodir/x.state\",\"mem_file_path\":\"$tmp/nodir/x.mem\"}"
check "create into a missing directory: 400 naming the file (got $CODE $BODY)" grep -q "nodir/x.mem" <<<"$BODY"
mkdir -p "$tmp/full"; mount -t tmpfs -o size=1m tmpfs "$tmp/full"
api "$tmp/bad.sock" PUT /snapshot/create "{\"snapshot_path\":\"$tmp/full/x.state\",\"mem_file_path\":\"$tmp/full/x.mem\"}"
check "create on a full disk: 400 (got $CODE $BODY)" grep -qi "no space" <<<"$BODY"
check "... and no partial file is left behind" test -z "$(ls -A "$tmp/full")"
umount "$tmp/full"
api "$tmp/bad.sock" PATCH /vm '{"state":"Resumed"}'
before=$(grep -ac 'counter cpu' "$tmp/bad.out")
wait_lines "$tmp/bad.out" $((before + 2)) 30
check "... and the VM resumes after the failed creates" test "$(grep -ac 'counter cpu' "$tmp/bad.out")" -ge $((before + 2))
stop_ember "$bpid"

start_ember load; lpid=$PID
L=$tmp/load.sock
load_body() { echo "{\"snapshot_path\":\"$1\",\"mem_backend\":{\"backend_type\":\"${3:-File}\",\"backend_path\":\"$2\"}}"; }
head -c 100 "$s/state" >"$tmp/trunc.state"
api "$L" PUT /snapshot/load "$(load_body "$tmp/trunc.state" "$s/mem")"
check "load of a truncated state file: 400 naming it (got $CODE $BODY)" grep -q "trunc.state" <<<"$BODY"
cp "$s/state" "$tmp/flip.state"; printf '\xff' | dd of="$tmp/flip.state" bs=1 seek=2000 conv=notrunc 2>/dev/null
api "$L" PUT /snapshot/load "$(load_body "$tmp/flip.state" "$s/mem")"
check "load of a corrupted state file: 400 (checksum) (got $CODE $BODY)" grep -qi "checksum\|crc" <<<"$BODY"
cp "$s/state" "$tmp/magic.state"; printf 'XXXX' | dd of="$tmp/magic.state" bs=1 seek=0 conv=notrunc 2>/dev/null
api "$L" PUT /snapshot/load "$(load_body "$tmp/magic.state" "$s/mem")"
check "load of a file with a wrong magic: 400 (got $CODE $BODY)" test "$CODE" = 400
head -c $((64 << 20)) "$s/mem" >"$tmp/short.mem"
api "$L" PUT /snapshot/load "$(load_body "$s/state" "$tmp/short.mem")"
check "load with a short memory file: 400 saying so (got $CODE $BODY)" grep -q "truncated" <<<"$BODY"
api "$L" PUT /snapshot/load "$(load_body "$s/state" "$tmp/nobody.sock" Uffd)"
check "load with a Uffd socket nobody listens on: 400 (got $CODE $BODY)" grep -q "no page-fault handler" <<<"$BODY"
api "$L" PUT /snapshot/load "$(load_body "$tmp/missing.state" "$s/mem")"
check "load of a missing state file: 400 (got $CODE $BODY)" grep -q "missing.state" <<<"$BODY"
api "$L" GET /; check "after every refused load: Not started, serving" grep -q '"state":"Not started"' <<<"$BODY"
api "$L" GET /vm/config; check "... with no drive, NIC or machine change left behind" grep -q '"vcpu_count":1,"mem_size_mib":128' <<<"$BODY"
api "$L" PUT /snapshot/load "$(load_body "$s/state" "$s/mem")"
check "... and a good load then works on the same process (got $CODE $BODY)" test "$CODE" = 204
api "$L" PATCH /vm '{"state":"Resumed"}'
wait_lines "$tmp/load.out" 3 30
check "... and continues the count" continues "$s/before" "$tmp/load.out" 1
stop_ember "$lpid"

start_ember conf; fpid=$PID
api "$tmp/conf.sock" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":64}'
api "$tmp/conf.sock" PUT /snapshot/load "$(load_body "$s/state" "$s/mem")"
check "load after PUT /machine-config: 400 (got $CODE $BODY)" grep -q "not allowed after configuring" <<<"$BODY"
stop_ember "$fpid"
finish
