#!/usr/bin/env bash
# Per-thread seccomp: every thread of a running ember (VMM, API, vCPUs) is
# filtered (Seccomp: 2) before the guest runs; a call outside a thread's
# policy ends ember with status 148 and a log line naming the thread and
# the call, for each kind of thread; --no-seccomp turns it off and says so.
source "$(dirname "$0")/lib.sh"
require_kvm
tmp=$(mktemp -d); trap 'rm -rf "$tmp"; [ -n "${pid:-}" ] && kill -9 $pid 2>/dev/null' EXIT

for kind in vmm vcpu api; do
  args=(--kernel "$TEST_GUEST" --cmdline ember-test=hello)
  [ $kind = api ] && args=(--api-sock "$tmp/api.sock")
  EMBER_SECCOMP_TEST_VIOLATION=$kind timeout 20 "$EMBER" "${args[@]}" </dev/null >"$tmp/out" 2>"$tmp/err"
  rc=$?
  check "$kind thread: a forbidden call ends ember with 148 (got $rc)" test $rc -eq 148
  case $kind in vmm) tname=ember ;; vcpu) tname='fc_vcpu 0' ;; api) tname=fc_api ;; esac
  check "$kind thread: the log names the thread ('$tname') and the call" \
    grep -q "seccomp: thread '$tname' made a forbidden system call: getppid" "$tmp/err"
  [ $kind = vcpu ] && check "vcpu thread: it died before the guest printed anything" bash -c "! grep -q EMBER-TEST '$tmp/out'"
done

# The same for filters compiled ahead (API mode, before InstanceStart).
for kind in vmm vcpu; do
  rm -f "$tmp/api2.sock"
  EMBER_SECCOMP_TEST_VIOLATION=$kind timeout 20 "$EMBER" --api-sock "$tmp/api2.sock" </dev/null >"$tmp/out" 2>"$tmp/err" &
  p2=$!
  for _ in $(seq 100); do [ -S "$tmp/api2.sock" ] && break; sleep 0.05; done
  api "$tmp/api2.sock" PUT /boot-source "{\"kernel_image_path\": \"$TEST_GUEST\", \"boot_args\": \"ember-test=hello\"}"
  api "$tmp/api2.sock" PUT /actions '{"action_type": "InstanceStart"}'
  wait $p2
  rc=$?
  check "API-started $kind thread (filter compiled ahead): a forbidden call ends ember with 148 (got $rc)" test $rc -eq 148
  [ $kind = vcpu ] && check "API-started vcpu thread: it died before the guest printed anything" bash -c "! grep -q EMBER-TEST '$tmp/out'"
done

# A live VM over the API: every thread filtered, counted from /proc.
"$EMBER" --api-sock "$tmp/api.sock" --kernel "$GUEST_DIR/vmlinux" --vcpus 2 --mem-mib 256 </dev/null >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 100); do grep -q "Linux version" "$tmp/out" && break; sleep 0.1; done
names="" unfiltered=0
for t in /proc/$pid/task/*; do
  n=$(cat $t/comm); s=$(awk '/^Seccomp:/ {print $2}' $t/status)
  names="$names,$n"
  case $n in ember* | fc_*) [ "$s" = 2 ] || unfiltered=$((unfiltered + 1)) ;; esac
done
echo "threads:$names"
check "threads ember, fc_api, fc_vcpu 0, fc_vcpu 1 (Firecracker's names) exist" bash -c "echo '$names,' | grep -q ',ember,' && echo '$names,' | grep -q ',fc_api,' && echo '$names,' | grep -q ',fc_vcpu 0,' && echo '$names,' | grep -q ',fc_vcpu 1,'"
check "every ember thread has Seccomp: 2" test $unfiltered -eq 0
kill -TERM $pid; wait $pid; rc=$?; pid=
check "SIGTERM under seccomp: clean exit (got $rc)" test $rc -eq 0

"$EMBER" --no-seccomp --kernel "$TEST_GUEST" --cmdline ember-test=hello </dev/null >"$tmp/out" 2>"$tmp/err"
check "--no-seccomp says so in the log" grep -q "seccomp filtering is OFF" "$tmp/err"
"$EMBER" --seccomp-print > "$tmp/policy"
check "--seccomp-print lists the three policies" test "$(grep -c '^thread ' "$tmp/policy")" -eq 3
check "--seccomp-print: ioctl is allowed only for named requests" bash -c "! grep -qx '  allow ioctl' '$tmp/policy'"
grep '^thread ' "$tmp/policy"
finish
