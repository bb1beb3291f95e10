#!/usr/bin/env bash
# The REST API over its real Unix socket (curl --unix-socket), end to end:
# the socket's life (mode 0600, removed on exit, stale replaced, live
# refused), Firecracker's boot sequences (the getting-started order and the
# firecracker-go-sdk order) booting the Linux guest, every post-boot rule,
# pause/resume, Ctrl-Alt-Del reaching the guest's keyboard driver, swapping a
# drive's backing file (the guest sees the new size), failed starts
# that leave the API usable, malformed and oversized requests, 100 concurrent
# clients during boot, config-file mode and exit codes. It also measures (and
# prints, without asserting) API latency and the time from exec to a socket
# that accepts.
source "$(dirname "$0")/lib.sh"
require_kvm
command -v curl >/dev/null || skip "curl is needed (make deps installs it)"
command -v cc >/dev/null || skip "a C compiler is needed for the load client"
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
tmp=$(mktemp -d)
PIDS=()
ns=""
cleanup() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  [ -n "$ns" ] && ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
CMDLINE="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
BOOT_TIMEOUT=${LINUX_BOOT_TIMEOUT:-600}

# ---- a small HTTP-over-Unix-socket client: load and latency, raw requests, start-up time
cc -O2 -pthread -I"$(dirname "$0")/../.." -o "$tmp/apiclient" "$(dirname "$0")/../lib/apiclient.c" || { echo "cannot build the load client"; exit 1; }
CLIENT=$tmp/apiclient

# ---- helpers
# api SOCK METHOD PATH [BODY] (lib.sh): sets CODE and BODY (the response body).
# expect_code, wait_exit PID SECONDS, wait_for FILE REGEX SECONDS: lib.sh.
# expect_fault DESCRIPTION TEXT SOCK METHOD PATH [BODY]: a 400 whose fault_message contains TEXT.
expect_fault() {
  local d=$1 text=$2; shift 2
  api "$@"
  if [ "$CODE" = 400 ] && [[ "$BODY" == '{"fault_message":'*"$text"* ]]; then ok "$d: 400 '$text'"
  else not_ok "$d: want 400 with '$text', got $CODE $BODY"; fi
}
# start_ember NAME SOCK [PREFIX...] -- ARGS...: runs ember in the background (stdin /dev/null),
# console in $tmp/NAME.out, stderr in $tmp/NAME.err; sets EPID. Waits for the socket to answer.
start_ember() {
  local name=$1 sock=$2; shift 2
  local prefix=()
  while [ "$1" != -- ]; do prefix+=("$1"); shift; done
  shift
  # No wrapper: EPID is ember itself (ip netns exec execs it), so signals reach it; wait_exit bounds it.
  "${prefix[@]}" "$EMBER" --api-sock "$sock" "$@" </dev/null >"$tmp/$name.out" 2>"$tmp/$name.err" &
  EPID=$!
  PIDS+=("$EPID")
  for _ in $(seq 500); do
    api_answers "$sock" && return 0
    kill -0 "$EPID" 2>/dev/null || break
    sleep 0.01
  done
  not_ok "$name: the API socket $sock never answered"; cat "$tmp/$name.err"
  return 1
}
# wait_exit PID SECONDS: sets RC (124 if still running after SECONDS; then it is killed).
alive() { kill -0 "$1" 2>/dev/null; }
# has STRING SUBSTRING...: every SUBSTRING occurs in STRING.
has() { local s=$1; shift; for x in "$@"; do [[ "$s" == *"$x"* ]] || return 1; done; }
# got CODES-REGEX [SUBSTRING...]: the last api call's status matches and its body has each SUBSTRING.
got() { [[ "$CODE" =~ ^($1)$ ]] || return 1; shift; has "$BODY" "$@"; }
# all_2xx LOAD-LINE: every request of an apiclient load run got a 2xx.
all_2xx() { [[ "$1" =~ requests=([0-9]+).*2xx=([0-9]+).*failed=0 ]] && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]; }
no_sanitizer_report() { ! grep -qE 'ERROR: AddressSanitizer|runtime error|LeakSanitizer' "$1"; }
state_is() { api "$1" GET /; [ "$CODE" = 200 ] && [[ "$BODY" == *"\"state\":\"$2\""* ]]; }

# =====================================================================
echo "# 1. the socket: mode 0600, answers, a second ember is refused, removed on exit, stale replaced"
S=$tmp/a.sock
start_ember sock1 "$S" -- --id sock-test --log-level info || finish
check "socket is a socket" test -S "$S"
check "socket mode is 0600 (got $(stat -c %a "$S"))" test "$(stat -c %a "$S")" = 600
api "$S" GET /
check "GET / 200 (got $CODE)" test "$CODE" = 200
check "GET / shape: app_name, id from --id, state Not started, vmm_version ($BODY)" \
  got 200 '"app_name":"' '"id":"sock-test"' '"state":"Not started"' '"vmm_version":"'
api "$S" GET /version
check "GET /version has firecracker_version (got $CODE $BODY)" got 200 '"firecracker_version":"'
timeout 20 "$EMBER" --api-sock "$S" </dev/null >"$tmp/second.out" 2>"$tmp/second.err"
RC=$?
check "a second ember on a live socket fails (exit $RC)" test "$RC" -ne 0 -a "$RC" -lt 128
check "... saying the socket is in use" grep -q "API socket '$S' is in use" "$tmp/second.err"
check "... in one line" test "$(wc -l < "$tmp/second.err")" -eq 1
api "$S" GET /
check "... and the first still answers" grep -q sock-test <<<"$BODY"
kill -TERM "$EPID"; wait_exit "$EPID" 20
check "SIGTERM before boot: exit 0 (got $RC)" test "$RC" -eq 0
check "socket removed on exit" test ! -e "$S"

# A stale socket (its process was SIGKILLed) is replaced.
start_ember sock2 "$S" -- || finish
kill -KILL "$EPID"; wait "$EPID" 2>/dev/null
check "SIGKILL leaves a stale socket file" test -S "$S"
start_ember sock3 "$S" -- --log-level info || finish
api "$S" GET /
check "stale socket replaced: GET / answers" grep -q 'Not started' <<<"$BODY"
check "stale socket replaced: logged" grep -q "replaced stale API socket" "$tmp/sock3.err"
check "replaced socket mode is 0600" test "$(stat -c %a "$S")" = 600
kill -TERM "$EPID"; wait_exit "$EPID" 20
check "socket removed on exit (again)" test ! -e "$S"
# A path that is not a socket is left alone.
echo precious > "$tmp/notsock"
timeout 20 "$EMBER" --api-sock "$tmp/notsock" </dev/null >/dev/null 2>"$tmp/notsock.err"
RC=$?
check "a regular file as socket path: exit 1 (got $RC)" test "$RC" -eq 1
check "... says it is not a socket" grep -q "not a socket" "$tmp/notsock.err"
check "... and the file is untouched" test "$(cat "$tmp/notsock")" = precious
long_path=$tmp/$(head -c 120 /dev/zero | tr '\0' 's').sock
timeout 20 "$EMBER" --api-sock "$long_path" </dev/null >/dev/null 2>"$tmp/long.err"
RC=$?
check "a socket path too long for sun_path: exit 1 (got $RC)" test "$RC" -eq 1
check "... with a clear line" grep -q 'API socket path must be' "$tmp/long.err"

# An oversized body as the very first request: the refusal is built on the API thread.
# (No readiness probe here: a GET / first would hide what this checks.)
S=$tmp/first.sock
"$EMBER" --api-sock "$S" </dev/null >"$tmp/first.out" 2>"$tmp/first.err" &
EPID=$!
PIDS+=("$EPID")
for _ in $(seq 500); do [ -S "$S" ] && break; sleep 0.01; done
sleep 0.2
head -c 60000 /dev/zero | tr '\0' ' ' > "$tmp/60k.json"
api "$S" PUT /machine-config "@$tmp/60k.json"
check "first request over the limit: 413 (got $CODE $BODY)" got 413 '{"fault_message":"'
check "... and ember is still running" alive "$EPID"
kill -TERM "$EPID"; wait_exit "$EPID" 20
check "... exit 0 on SIGTERM (got $RC)" test "$RC" -eq 0
grep -q "seccomp" "$tmp/first.err" && echo "  $(cat "$tmp/first.err")"

# =====================================================================
echo "# 2. malformed requests: each a 400 with a fault_message, ember keeps running"
S=$tmp/m.sock
start_ember malformed "$S" -- --log-level info || finish
MPID=$EPID
bad_bodies=('{' '}' '{"vcpu_count": }' 'nul' '[]' '"str"' '5' 'null' '{} x' '{"vcpu_count":2,"vcpu_count":2,"mem_size_mib":1}'
            '{"vcpu_count":"2","mem_size_mib":128}' '{"vcpu_count":0,"mem_size_mib":128}' '{"vcpu_count":33,"mem_size_mib":128}'
            '{"vcpu_count":1,"mem_size_mib":0}' '{"vcpu_count":1}' '{"vcpu_count":1,"mem_size_mib":128,"x":1}' ' ')
n_ok=0
for b in "${bad_bodies[@]}"; do
  api "$S" PUT /machine-config "$b"
  if [ "$CODE" = 400 ] && [[ "$BODY" == '{"fault_message":"'* ]]; then n_ok=$((n_ok + 1))
  else not_ok "PUT /machine-config '$b': want 400 + fault_message, got $CODE $BODY"; fi
  alive "$MPID" || { not_ok "ember died on body '$b'"; break; }
done
check "${#bad_bodies[@]} malformed machine-config bodies: all 400 with a fault_message ($n_ok)" test "$n_ok" -eq "${#bad_bodies[@]}"
expect_fault "PUT without a body" "empty" "$S" PUT /machine-config
expect_fault "GET with a body" "no body" "$S" GET / '{}'
expect_fault "unknown path" "Invalid request method and/or path" "$S" GET /nope
expect_fault "unknown method" "Invalid request method and/or path" "$S" DELETE /drives/rootfs
expect_fault "POST is not a method of this API" "Invalid request method and/or path" "$S" POST /actions '{"action_type":"InstanceStart"}'
expect_fault "snapshot create before boot" "not supported before starting" "$S" PUT /snapshot/create '{"snapshot_path":"a","mem_file_path":"b"}'
expect_fault "balloon: free page reporting is not implemented" "free page reporting" "$S" PUT /balloon '{"amount_mib":1,"deflate_on_oom":true,"free_page_reporting":true}'
expect_fault "vsock: a guest_cid beyond u32 is refused (any u32 is taken, as Firecracker)" "guest_cid" "$S" PUT /vsock '{"guest_cid":4294967296,"uds_path":"/tmp/v.sock"}'
expect_fault "entropy: a negative bucket size" "rate_limiter.bandwidth" "$S" PUT /entropy '{"rate_limiter":{"bandwidth":{"size":-1,"refill_time":1}}}'
expect_fault "mmds: PATCH before any PUT" "not initialized" "$S" PATCH /mmds '{"latest":{}}'
expect_fault "post-boot only before boot: PATCH /vm" "not supported before starting the microVM" "$S" PATCH /vm '{"state":"Paused"}'
expect_fault "post-boot only before boot: FlushMetrics" "not supported before starting the microVM" "$S" PUT /actions '{"action_type":"FlushMetrics"}'
expect_fault "post-boot only before boot: SendCtrlAltDel" "not supported before starting the microVM" "$S" PUT /actions '{"action_type":"SendCtrlAltDel"}'
expect_fault "InstanceStart without a boot source" "kernel" "$S" PUT /actions '{"action_type":"InstanceStart"}'
expect_fault "missing kernel file" "$tmp/nope" "$S" PUT /boot-source "{\"kernel_image_path\":\"$tmp/nope\"}"
expect_fault "path id differs from body id" "does not match" "$S" PUT /drives/a "{\"drive_id\":\"b\",\"is_root_device\":false,\"path_on_host\":\"$TEST_GUEST\"}"
expect_fault "bad id" "drive_id" "$S" PUT /drives/a-b "{\"drive_id\":\"a-b\",\"is_root_device\":false,\"path_on_host\":\"$TEST_GUEST\"}"
# An URL-escaped byte that is not UTF-8 must still give a JSON error body.
api "$S" GET /%ff
check "GET /%ff: 400 with a JSON fault_message (got $CODE '$BODY')" got 400 '{"fault_message":"Invalid request method and/or path'
# Raw HTTP the server must survive.
raw() { printf "$1" | "$CLIENT" raw "$S"; }
r=$(raw 'GARBAGE\r\n\r\n')
check "garbage request line: a 4xx or the connection closed ($r)" bash -c "[[ '$r' =~ ^(HTTP/1\.[01]\ 4[0-9][0-9]|NO-RESPONSE) ]]"
r=$(raw 'PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"vcpu_count":')
echo "  (a body shorter than its Content-Length, then silence: $r)"
check "ember survived the garbage" alive "$MPID"
r=$(raw 'PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\n{"vcp\r\n0\r\n\r\n')
check "chunked malformed body: 400 ($r)" has "$r" " 400"
r=$(raw 'PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n25\r\n{"vcpu_count":2,"mem_size_mib":200}  \r\n0\r\n\r\n')
check "chunked valid body: 204 ($r)" has "$r" " 204"
r=$(raw 'GET / HTTP/1.0\r\n\r\n')
check "HTTP/1.0 GET /: 200 ($r)" has "$r" " 200"
# Bodies over the 51,200-byte limit are refused; at the limit accepted.
pad() { head -c "$1" /dev/zero | tr '\0' ' '; }
small='{"vcpu_count":2,"mem_size_mib":256}'
printf '%s%s' "$small" "$(pad $((51200 - ${#small})))" > "$tmp/at-limit.json"
printf '%s%s' "$small" "$(pad $((51201 - ${#small})))" > "$tmp/over-limit.json"
printf '%s%s' "$small" "$(pad $((1024 * 1024)))" > "$tmp/huge.json"
api "$S" PUT /machine-config "@$tmp/at-limit.json"
check "a 51,200-byte body is accepted: 204 (got $CODE $BODY)" test "$CODE" = 204
api "$S" PUT /machine-config "@$tmp/over-limit.json"
check "a 51,201-byte body is refused: 413 or 400 (got $CODE $BODY)" got '413|400'
api "$S" PUT /machine-config "@$tmp/huge.json"
check "a 1 MiB body is refused: 413 or 400 (got $CODE)" got '413|400'
# Chunked, so no Content-Length to refuse up front: a 413 or 400, or the server closes mid-upload (curl: 000).
CODE=$(curl -s -o "$tmp/resp" -w '%{http_code}' --max-time 20 --unix-socket "$S" -X PUT -H 'Transfer-Encoding: chunked' -H 'Expect:' \
  --data-binary "@$tmp/huge.json" http://localhost/machine-config 2>/dev/null)
check "a 1 MiB chunked body is refused: 413, 400 or the connection closed (got $CODE)" got '413|400|000'
[ "$CODE" = 000 ] && echo "  (chunked over-limit body: the connection was closed without a status)"
check "ember survived all of it" alive "$MPID"
api "$S" GET /machine-config
check "and the configuration is the last good one (got $BODY)" got 200 '"vcpu_count":2' '"mem_size_mib":256'

# ---- latency, before boot (printed, not asserted)
echo "# latency (pre-boot; new connection per request; microseconds):"
for spec in "GET / " "PUT /machine-config {\"vcpu_count\":1,\"mem_size_mib\":128}"; do
  read -r m p b <<< "$spec"
  one=$("$CLIENT" load "$S" "$m" "$p" "${b:-}" 1 500)
  many=$("$CLIENT" load "$S" "$m" "$p" "${b:-}" 100 20)
  echo "  latency: $m $p 1 client x500:     $one"
  echo "  latency: $m $p 100 clients x20:   $many"
  check "latency run $m $p, 1 client: every request answered 2xx" all_2xx "$one"
  check "latency run $m $p, 100 clients: every request answered 2xx" all_2xx "$many"
done
kill -TERM "$MPID"; wait_exit "$MPID" 20
check "malformed-request ember: exit 0 on SIGTERM (got $RC)" test "$RC" -eq 0
grep -q "seccomp" "$tmp/malformed.err" && echo "  $(grep seccomp "$tmp/malformed.err")"
check "no sanitizer report" no_sanitizer_report "$tmp/malformed.err"

# ---- start-up: exec to a socket that accepts (printed)
su=()
for i in 1 2 3 4 5; do
  r=$("$CLIENT" startup "$tmp/st.sock" "$EMBER" --api-sock "$tmp/st.sock")
  su+=("$(sed -n 's/.*startup_us=\([0-9-]*\).*/\1/p' <<< "$r")")
  [[ "$r" == *"get=200 exit=0"* ]] || not_ok "start-up run $i: $r"
done
echo "  startup: exec -> API socket accepting, 5 runs (us): ${su[*]}"

# =====================================================================
echo "# 3. failed InstanceStart leaves the API usable; a corrected start boots (tiny guest)"
S=$tmp/f.sock
start_ember failstart "$S" -- --log-level info || finish
FPID=$EPID
expect_code "machine-config too small for the guest" 204 "$S" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":1}'
expect_code "boot-source" 204 "$S" PUT /boot-source "{\"kernel_image_path\":\"$TEST_GUEST\",\"boot_args\":\"ember-test=hello\"}"
api "$S" PUT /actions '{"action_type":"InstanceStart"}'
check "InstanceStart with 1 MiB: 400 naming memory (got $CODE $BODY)" got 400 MiB
check "... state still Not started" state_is "$S" "Not started"
expect_code "PATCH machine-config to 64 MiB" 204 "$S" PATCH /machine-config '{"mem_size_mib":64}'
truncate -s 1M "$tmp/gone.img"
expect_code "PUT a drive" 204 "$S" PUT /drives/data "{\"drive_id\":\"data\",\"is_root_device\":false,\"path_on_host\":\"$tmp/gone.img\"}"
rm -f "$tmp/gone.img"
api "$S" PUT /actions '{"action_type":"InstanceStart"}'
check "InstanceStart with the drive file deleted: 400 naming the drive (got $CODE $BODY)" got 400 data gone.img
check "... state still Not started" state_is "$S" "Not started"
check "... ember still running" alive "$FPID"
truncate -s 1M "$tmp/gone.img"
api "$S" PUT /actions '{"action_type":"InstanceStart"}'
check "corrected InstanceStart: 204 (got $CODE $BODY)" test "$CODE" = 204
wait_exit "$FPID" 60
check "tiny guest ran and reset: ember exit 0 (got $RC)" test "$RC" -eq 0
check "tiny guest printed PASS" grep -q "EMBER-TEST: PASS hello" "$tmp/failstart.out"
check "socket removed after the guest ended" test ! -e "$S"
check "no sanitizer report" no_sanitizer_report "$tmp/failstart.err"

# =====================================================================
echo "# 4. config file (--no-api), bad config files (152), bad arguments (153)"
cat > "$tmp/vm.json" <<JSON
{
  "boot-source": {"kernel_image_path": "$TEST_GUEST", "boot_args": "ember-test=hello"},
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
  "drives": [],
  "network-interfaces": []
}
JSON
t0=$(date +%s%N)
run_ember_bin "$EMBER" "$tmp/cfg.out" "$tmp/cfg.err" 60 --config-file "$tmp/vm.json" --no-api
t1=$(date +%s%N)
check "--config-file --no-api: exit 0 (got $RC)" test "$RC" -eq 0
check "--config-file --no-api: the guest ran" grep -q "EMBER-TEST: PASS hello" "$tmp/cfg.out"
echo "  (config-file boot of the tiny guest, exec to exit: $(( (t1 - t0) / 1000000 )) ms)"
badcfg() { # DESCRIPTION REGEX CONTENT
  printf '%s' "$3" > "$tmp/bad.json"
  run_ember_bin "$EMBER" "$tmp/bad.out" "$tmp/bad.err" 30 --config-file "$tmp/bad.json" --no-api
  check "bad config ($1): exit 152 (got $RC)" test "$RC" -eq 152
  check "bad config ($1): message names it" grep -qE -- "$2" "$tmp/bad.err"
}
badcfg "not JSON" "config file .*bad.json" '{"boot-source": '
badcfg "unknown key" "unknown field .boot_source." '{"boot_source": {}}'
badcfg "no boot-source" "boot-source.* missing" '{"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}'
badcfg "missing kernel file" "$tmp/nope" "{\"boot-source\": {\"kernel_image_path\": \"$tmp/nope\"}}"
badcfg "vcpu_count 0" "vcpu_count" "{\"boot-source\": {\"kernel_image_path\": \"$TEST_GUEST\"}, \"machine-config\": {\"vcpu_count\": 0, \"mem_size_mib\": 64}}"
badcfg "balloon without deflate_on_oom" "balloon.*deflate_on_oom" "{\"boot-source\": {\"kernel_image_path\": \"$TEST_GUEST\"}, \"balloon\": {\"amount_mib\": 1}}"
run_ember_bin "$EMBER" "$tmp/bad.out" "$tmp/bad.err" 30 --config-file "$tmp/does-not-exist.json" --no-api
check "config file that does not exist: exit 152 (got $RC)" test "$RC" -eq 152
badarg() { # DESCRIPTION REGEX ARGS...
  local d=$1 re=$2; shift 2
  run_ember_bin "$EMBER" "$tmp/arg.out" "$tmp/arg.err" 30 "$@"
  check "bad args ($d): exit 153 (got $RC)" test "$RC" -eq 153
  check "bad args ($d): names it" grep -qE -- "$re" "$tmp/arg.err"
  check "bad args ($d): in one line" test "$(wc -l < "$tmp/arg.err")" -eq 1
}
badarg "--no-api alone" "--no-api needs --config-file" --no-api
badarg "--no-api with --api-sock" "contradict" --config-file "$tmp/vm.json" --no-api --api-sock "$tmp/x.sock"
badarg "--kernel with --config-file" "alternatives" --kernel "$TEST_GUEST" --config-file "$tmp/vm.json"
badarg "unknown argument" "unknown argument '--frobnicate'" --api-sock "$tmp/x.sock" --frobnicate
badarg "--api-sock without a value" "needs a value" --api-sock
badarg "--id too long" "--id" --api-sock "$tmp/x.sock" --id "$(head -c 65 /dev/zero | tr '\0' i)"
badarg "nothing to do" "--kernel is required" --log-level info
check "no socket left behind by refused starts" test ! -e "$tmp/x.sock"

# =====================================================================
# The Linux parts boot a guest that stays up until the test says so: its
# init (deploy/guest/init.sh, ember.hold=DEV) prints "EMBER-HOLD: tick N"
# every 0.5 s and reboots when the first line of DEV's first sector says
# "reboot". So every post-boot request below meets a live guest.
# control FILE LINE: writes LINE as the first line of FILE's first sector.
control() { printf '%s\n' "$2" | dd of="$1" bs=512 count=1 conv=notrunc,sync status=none; }
# last_tick FILE: the guest's last tick number so far (0 when none).
last_tick() { local n; n=$(grep -oE "EMBER-HOLD: tick [0-9]+" "$1" | tail -1 | awk '{print $3}'); echo "${n:-0}"; }

echo "# 5. Linux guest, the getting-started order: machine-config, boot-source, drives, network-interfaces, InstanceStart"
S=$tmp/fc1.sock
F0=$FAILS
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 8M "$tmp/scratch.img"
control "$tmp/scratch.img" hold
prefix=()
NET=0
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && netns_add "ember-api-$$" 2>/dev/null; then
  ns=ember-api-$$
  netns_tap "$ns" tap0
  prefix=(ip netns exec "$ns")
  NET=1
else
  echo "  (no network namespace here: the network-interfaces step is skipped)"
fi
start_ember boot1 "$S" "${prefix[@]}" -- --id boot1 --log-level info || finish
B1=$EPID
expect_code "PUT /machine-config" 204 "$S" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
expect_code "PUT /boot-source" 204 "$S" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$CMDLINE ember.hold=/dev/vdb\"}"
expect_code "PUT /drives/rootfs" 204 "$S" PUT /drives/rootfs "{\"drive_id\":\"rootfs\",\"path_on_host\":\"$tmp/root.ext4\",\"is_root_device\":true,\"is_read_only\":false}"
expect_code "PUT /drives/scratch" 204 "$S" PUT /drives/scratch "{\"drive_id\":\"scratch\",\"path_on_host\":\"$tmp/scratch.img\",\"is_root_device\":false}"
if [ $NET = 1 ]; then
  expect_code "PUT /network-interfaces/eth0" 204 "$S" PUT /network-interfaces/eth0 '{"iface_id":"eth0","host_dev_name":"tap0","guest_mac":"06:00:ac:10:00:02"}'
fi
api "$S" GET /vm/config
check "GET /vm/config shows the drives (got $BODY)" got 200 '"drive_id":"rootfs"' '"drive_id":"scratch"'
[ $NET = 1 ] && check "GET /vm/config shows the NIC" got 200 '"host_dev_name":"tap0"'
t_start=$(date +%s.%N)
expect_code "PUT /actions InstanceStart" 204 "$S" PUT /actions '{"action_type":"InstanceStart"}'
check "GET / says Running" state_is "$S" Running
# Every pre-boot-only request is now refused.
AFTER="not supported after starting the microVM"
expect_fault "after boot: PUT /machine-config" "$AFTER" "$S" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":128}'
expect_fault "after boot: PATCH /machine-config" "$AFTER" "$S" PATCH /machine-config '{"vcpu_count":2}'
expect_fault "after boot: PUT /boot-source" "$AFTER" "$S" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\"}"
expect_fault "after boot: PUT /drives" "$AFTER" "$S" PUT /drives/other "{\"drive_id\":\"other\",\"path_on_host\":\"$tmp/scratch.img\",\"is_root_device\":false}"
expect_fault "after boot: PUT /network-interfaces" "$AFTER" "$S" PUT /network-interfaces/eth9 '{"iface_id":"eth9","host_dev_name":"tap9"}'
expect_fault "after boot: PUT /logger" "$AFTER" "$S" PUT /logger '{"level":"Debug"}'
expect_fault "after boot: PUT /metrics" "$AFTER" "$S" PUT /metrics "{\"metrics_path\":\"$tmp/m2\"}"
expect_fault "after boot: PUT /serial" "$AFTER" "$S" PUT /serial "{\"serial_out_path\":\"$tmp/ser\"}"
expect_fault "InstanceStart a second time" "$AFTER" "$S" PUT /actions '{"action_type":"InstanceStart"}'
expect_fault "FlushMetrics with no metrics configured" "etrics" "$S" PUT /actions '{"action_type":"FlushMetrics"}'
# From here on the guest's userspace is up and ticking.
if ! wait_for "$tmp/boot1.out" "EMBER-HOLD: tick 2([^0-9]|$)" "$BOOT_TIMEOUT"; then
  not_ok "boot1: the guest's init never started ticking"
else
  ok "boot1: guest userspace up and held (ticking)"
  expect_code "GET /machine-config with the guest running" 200 "$S" GET /machine-config
  expect_code "GET /vm/config with the guest running" 200 "$S" GET /vm/config
  # Pause: every vCPU stopped when the answer comes, so not one more tick until resumed.
  expect_code "PATCH /vm Paused" 204 "$S" PATCH /vm '{"state":"Paused"}'
  check "GET / says Paused" state_is "$S" Paused
  t1=$(last_tick "$tmp/boot1.out"); s1=$(stat -c %s "$tmp/boot1.out")
  sleep 2
  t2=$(last_tick "$tmp/boot1.out"); s2=$(stat -c %s "$tmp/boot1.out")
  check "paused: no tick and no console output for 2 s (tick $t1 -> $t2, $s1 -> $s2 bytes)" test "$s1" = "$s2"
  expect_code "PATCH /vm Paused again (idempotent)" 204 "$S" PATCH /vm '{"state":"Paused"}'
  expect_code "GET /machine-config while paused" 200 "$S" GET /machine-config
  expect_code "PATCH /vm Resumed" 204 "$S" PATCH /vm '{"state":"Resumed"}'
  check "GET / says Running again" state_is "$S" Running
  check "resumed: the guest ticks again (after tick $t2)" wait_for "$tmp/boot1.out" "EMBER-HOLD: tick $((t2 + 2))([^0-9]|$)" 60
  expect_fault "PATCH /vm with a bad state" "state" "$S" PATCH /vm '{"state":"Stopped"}'
  expect_code "SendCtrlAltDel into the running guest" 204 "$S" PUT /actions '{"action_type":"SendCtrlAltDel"}'
  check "... and the guest keeps running (it has no VT to act on it)" wait_for "$tmp/boot1.out" "EMBER-HOLD: tick $((t2 + 4))([^0-9]|$)" 60
  [ $NET = 1 ] && expect_code "PATCH /network-interfaces/eth0 (no rate limiters)" 204 "$S" PATCH /network-interfaces/eth0 '{"iface_id":"eth0"}'
  expect_fault "PATCH /drives of an unknown drive" "nope" "$S" PATCH /drives/nope '{"drive_id":"nope","path_on_host":"/tmp/x"}'
  expect_fault "PATCH /drives to a missing file" "$tmp/missing.img" "$S" PATCH /drives/scratch "{\"drive_id\":\"scratch\",\"path_on_host\":\"$tmp/missing.img\"}"
  check "boot1: the guest read its control drive" grep -q "EMBER-HOLD: /dev/vdb says 'hold'" "$tmp/boot1.out"
  # Swap the control drive for a bigger file with another first line: the guest must read the new file.
  truncate -s 16M "$tmp/scratch2.img"
  control "$tmp/scratch2.img" swapped
  expect_code "PATCH /drives/scratch to a 16 MiB file" 204 "$S" PATCH /drives/scratch "{\"drive_id\":\"scratch\",\"path_on_host\":\"$tmp/scratch2.img\"}"
  api "$S" GET /vm/config
  check "GET /vm/config shows the new backing file" got 200 scratch2.img
  check "boot1: the guest reads the new backing file" wait_for "$tmp/boot1.out" "EMBER-HOLD: /dev/vdb says 'swapped'" 60
  check "boot1: the guest saw vdb grow to 16 MiB" wait_for "$tmp/boot1.out" "\[vdb\] new size: 32768 512-byte" 60
  control "$tmp/scratch2.img" reboot
fi
wait_exit "$B1" "$BOOT_TIMEOUT"
t_end=$(date +%s.%N)
check "boot1: guest userspace ran" grep -q "EMBER-INIT-OK" "$tmp/boot1.out"
check "boot1: root on vda mounted" grep -q "EXT4-fs (vda): mounted filesystem" "$tmp/boot1.out"
check "boot1: the guest rebooted when told" grep -q "EMBER-HOLD: /dev/vdb says 'reboot'" "$tmp/boot1.out"
check "boot1: ember exit 0 (got $RC)" test "$RC" -eq 0
check "boot1: socket removed" test ! -e "$S"
check "boot1: no sanitizer report" no_sanitizer_report "$tmp/boot1.err"
[ $NET = 1 ] && check "boot1: ember attached the NIC on tap0" grep -q "eth0: virtio-mmio at" "$tmp/boot1.err"
echo "  boot1: InstanceStart -> ember exit: $(echo "$t_end - $t_start" | bc) s"
[ "$FAILS" -gt "$F0" ] && { echo "--- boot1 console tail:"; tail -15 "$tmp/boot1.out"; echo "--- stderr:"; tail -10 "$tmp/boot1.err"; }

# =====================================================================
echo "# 6. Linux guest, the firecracker-go-sdk order: logger, metrics, machine-config, boot-source, drives, network-interfaces, InstanceStart"
S=$tmp/fc2.sock
F0=$FAILS
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 1M "$tmp/control.img"
control "$tmp/control.img" hold
start_ember boot2 "$S" "${prefix[@]}" -- --id boot2 || finish
B2=$EPID
# The SDK polls GET /machine-config until it answers.
expect_code "SDK readiness probe GET /machine-config" 200 "$S" GET /machine-config
expect_code "PUT /logger" 204 "$S" PUT /logger "{\"log_path\":\"$tmp/fc.log\",\"level\":\"Debug\",\"show_level\":true,\"show_log_origin\":false}"
expect_code "PUT /metrics" 204 "$S" PUT /metrics "{\"metrics_path\":\"$tmp/fc.metrics\"}"
expect_code "PUT /machine-config" 204 "$S" PUT /machine-config '{"vcpu_count":2,"mem_size_mib":256,"smt":false,"track_dirty_pages":false}'
# The guest kernel has no VT (CONFIG_VT is off), so nothing in it acts on Ctrl-Alt-Del;
# i8042.debug shows every byte its driver takes from the controller, by interrupt.
expect_code "PUT /boot-source" 204 "$S" PUT /boot-source "{\"kernel_image_path\":\"$GUEST_DIR/vmlinux\",\"boot_args\":\"$CMDLINE ember.hold=/dev/vdb i8042.debug=1 i8042.unmask_kbd_data=1 loglevel=8\"}"
expect_code "PUT /drives/1 (the SDK names drives by index)" 204 "$S" PUT /drives/1 "{\"drive_id\":\"1\",\"path_on_host\":\"$tmp/root.ext4\",\"is_root_device\":true,\"is_read_only\":false}"
expect_code "PUT /drives/2" 204 "$S" PUT /drives/2 "{\"drive_id\":\"2\",\"path_on_host\":\"$tmp/control.img\",\"is_root_device\":false,\"is_read_only\":true}"
[ $NET = 1 ] && expect_code "PUT /network-interfaces/1" 204 "$S" PUT /network-interfaces/1 '{"iface_id":"1","host_dev_name":"tap0","guest_mac":"06:00:ac:10:00:03"}'
expect_code "PUT /actions InstanceStart" 204 "$S" PUT /actions '{"action_type":"InstanceStart"}'
# 100 concurrent clients hammer GET / while the guest boots.
hammer=$("$CLIENT" load "$S" GET / "" 100 20)
echo "  hammer during boot: $hammer"
check "100 clients x 20 GET / during boot: all 2000 answered 200" has "$hammer" "requests=2000 200=2000 "
check "... and the guest kept booting (ember alive)" alive "$B2"
expect_code "FlushMetrics" 204 "$S" PUT /actions '{"action_type":"FlushMetrics"}'
check "the metrics file has a JSON line" grep -q '^{.*"utc_timestamp_ms":[0-9]*.*}$' "$tmp/fc.metrics"
if command -v python3 >/dev/null; then
  check "every metrics line parses as JSON" python3 -c "import json,sys; [json.loads(l) for l in open(sys.argv[1])]" "$tmp/fc.metrics"
fi
check "the logger file got lines" test "$(wc -l < "$tmp/fc.log")" -gt 0
check "the logger file shows levels (show_level)" grep -qE '\[(INFO|DEBUG|WARN|ERROR)' "$tmp/fc.log"
check "the log file is owner-only" test "$(stat -c %a "$tmp/fc.log")" = 600
api "$S" GET /vm/config
check "GET /vm/config shows logger and metrics" got 200 '"logger":' '"metrics":' '"vcpu_count":2'
# SendCtrlAltDel into the running guest, its keyboard driver bound: the scan codes reach it by interrupt.
if wait_for "$tmp/boot2.out" "EMBER-HOLD: tick 2([^0-9]|$)" "$BOOT_TIMEOUT" && grep -q "input: AT Translated Set 2 keyboard" "$tmp/boot2.out"; then
  ok "boot2: guest userspace up and held, keyboard bound"
  expect_code "SendCtrlAltDel" 204 "$S" PUT /actions '{"action_type":"SendCtrlAltDel"}'
  # Scan code set 1 (translation on): Ctrl 1d, Alt 38, Del e0 53, then the releases e0 d3, b8, 9d.
  check "boot2: the guest's i8042 driver got Ctrl down (1d) by interrupt" \
    wait_for "$tmp/boot2.out" "i8042: \[[0-9]+\] 1d <- i8042 \(interrupt" 60
  check "boot2: ... and the last byte, Ctrl up (9d)" wait_for "$tmp/boot2.out" "i8042: \[[0-9]+\] 9d <- i8042 \(interrupt" 60
  check "boot2: ... Del down (e0 53) in between" grep -qE "i8042: \[[0-9]+\] 53 <- i8042 \(interrupt" "$tmp/boot2.out"
  # Metrics flushed while the guest runs: one more line each time.
  n1=$(wc -l < "$tmp/fc.metrics")
  expect_code "FlushMetrics with the guest running" 204 "$S" PUT /actions '{"action_type":"FlushMetrics"}'
  check "... one more metrics line ($n1 -> $(wc -l < "$tmp/fc.metrics"))" test "$(wc -l < "$tmp/fc.metrics")" -gt "$n1"
else
  not_ok "boot2: the guest never reached its held init with the keyboard bound"
fi
control "$tmp/control.img" reboot
wait_exit "$B2" "$BOOT_TIMEOUT"
check "boot2: guest userspace ran" grep -q "EMBER-INIT-OK" "$tmp/boot2.out"
check "boot2: 2 CPUs" grep -qE "smp: Brought up 1 node, 2 CPUs" "$tmp/boot2.out"
check "boot2: the guest rebooted when told" grep -q "EMBER-HOLD: /dev/vdb says 'reboot'" "$tmp/boot2.out"
check "boot2: ember exit 0 (got $RC)" test "$RC" -eq 0
check "boot2: socket removed" test ! -e "$S"
check "boot2: a final metrics line at exit" test "$(wc -l < "$tmp/fc.metrics")" -ge 3
check "boot2: no sanitizer report" no_sanitizer_report "$tmp/boot2.err"
echo "  logger lines: $(wc -l < "$tmp/fc.log"), metrics lines: $(wc -l < "$tmp/fc.metrics")"
[ "$FAILS" -gt "$F0" ] && { echo "--- boot2 console tail:"; grep -v "panic blink" "$tmp/boot2.out" | tail -15; echo "--- stderr:"; tail -10 "$tmp/boot2.err"; echo "--- log:"; tail -5 "$tmp/fc.log"; }

finish
