#!/usr/bin/env bash
# ember-jailer end to end, as root (docs/jailer.md).
# 1. A Linux microVM configured over the API socket inside the jail, checked
#    from outside through /proc: root, uid/gid, capabilities, no_new_privs,
#    cgroup v1 placement and limits, netns, rlimits, session, fd table (an fd
#    inherited by the jailer does not reach the VMM); the guest boots to init
#    and the jail is cleaned up afterwards.
# 2. --daemonize --new-pid-ns with cgroup v2: pid 1 of its own namespace,
#    placed in the unified hierarchy with a hugetlb limit, then cleaned up.
# 3. Each failing step: its exit code, its one-line message, nothing left.
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/../jail/lib.sh"
require_jailer
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing $GUEST_DIR/vmlinux or rootfs.ext4 (make guest)"; exit 1; }
[ -f "$TEST_GUEST" ] || { echo "missing $TEST_GUEST (make all)"; exit 1; }

tmp=$(mktemp -d)
exec_name=$(basename "$EMBER")
base=$tmp/jail
parent=ember-test-$$
cleanup() {
  [ -n "${jailer:-}" ] && kill -9 "$jailer" 2>/dev/null
  mountpoint -q "$tmp/noexec" 2>/dev/null && umount "$tmp/noexec"
  cleanup_netns
  rm -rf "$tmp"
}
trap cleanup EXIT
cmdline="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
# /sys is not in the jail, so ember cannot see that this host's KVM is kvm-pvm: say it.
compat=(); is_pvm_host && compat=(--host-compat on)

# ---------------------------------------------------------------- 1. Linux guest over the API, cgroup v1
id=vm-$$
root=$base/$exec_name/$id/root
make_netns main
# The operator prepares the jail root, as with Firecracker's jailer: kernel hard-linked, a private root disk.
mkdir -p "$root"
ln "$GUEST_DIR/vmlinux" "$root/vmlinux" 2>/dev/null || cp "$GUEST_DIR/vmlinux" "$root/vmlinux"
cp "$GUEST_DIR/rootfs.ext4" "$root/rootfs.ext4"
# The guest stays up until the test writes "reboot" into this drive (ember.hold, deploy/guest/init.sh).
truncate -s 1M "$root/control.img"
printf 'hold\n' | dd of="$root/control.img" conv=notrunc status=none
chown "$JL_UID:$JL_GID" "$root/rootfs.ext4" "$root/control.img"
t0=$(date +%s.%N)
"$JAILER" --id "$id" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" \
  --netns "$JL_NETNS_FILE" --parent-cgroup "$parent" \
  --cgroup cpu.max="50000 100000" --cgroup memory.max=300M --cgroup pids.max=64 --cgroup cpuset.cpus=0 \
  --resource-limit fsize=1073741824 \
  -- --api-sock /run/ember.sock "${compat[@]}" </dev/null >"$tmp/out" 2>"$tmp/err" 7</etc/passwd &
jailer=$!
sock=$root/run/ember.sock
wait_until 10 test -S "$sock"
check "the API socket appears inside the jail" test -S "$sock"
pid=$(cat "$root/$exec_name.pid" 2>/dev/null)
check "the pid file names the jailed VMM (pid ${pid:-none})" test -n "$pid" -a -d "/proc/${pid:-0}"

# The jailed VMM's API through the socket in the jail (api: lib.sh), at most 10 s a request.
API_MAX_TIME=10
api "$sock" PUT /boot-source "{\"kernel_image_path\":\"/vmlinux\",\"boot_args\":\"$cmdline ember.hold=/dev/vdb\"}"
check "PUT /boot-source (a path inside the jail)" test "$CODE" = 204
api "$sock" PUT /drives/rootfs '{"drive_id":"rootfs","path_on_host":"/rootfs.ext4","is_root_device":true,"is_read_only":false}'
check "PUT /drives/rootfs" test "$CODE" = 204
api "$sock" PUT /drives/control '{"drive_id":"control","path_on_host":"/control.img","is_root_device":false,"is_read_only":true}'
check "PUT /drives/control" test "$CODE" = 204
api "$sock" PUT /machine-config '{"vcpu_count":1,"mem_size_mib":256}'
check "PUT /machine-config" test "$CODE" = 204
api "$sock" PUT /actions '{"action_type":"InstanceStart"}'
check "PUT /actions InstanceStart" test "$CODE" = 204

# While the guest boots: what the VMM is, seen from the host.
check "the VMM is the copy in the jail (/proc/PID/exe)" test "$(dev_ino /proc/$pid/exe)" = "$(dev_ino "$root/$exec_name")"
check "its root directory is the jail (/proc/PID/root)" test "$(dev_ino /proc/$pid/root)" = "$(dev_ino "$root")"
check "uid $JL_UID (real, effective, saved, fs)" test "$(status_of $pid Uid)" = "$JL_UID $JL_UID $JL_UID $JL_UID"
check "gid $JL_GID (real, effective, saved, fs)" test "$(status_of $pid Gid)" = "$JL_GID $JL_GID $JL_GID $JL_GID"
check "no supplementary groups" test -z "$(status_of $pid Groups)"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
  check "$c is empty" test "$(status_of $pid $c)" = 0000000000000000
done
check "NoNewPrivs is 1" test "$(status_of $pid NoNewPrivs)" = 1
check "a session of its own (no controlling terminal)" test "$(ps -o sid= -p $pid | tr -d ' ')" = "$pid"
for ctl in cpu memory pids cpuset; do
  check "in the $ctl cgroup $parent/$id" grep -qE "^[0-9]+:$ctl:/$parent/$id\$" /proc/$pid/cgroup
  check "listed in $ctl/$parent/$id/cgroup.procs" grep -qx "$pid" "$JL_CG/$ctl/$parent/$id/cgroup.procs"
done
all_threads=1
for t in /proc/$pid/task/*; do grep -qx "$(basename "$t")" "$JL_CG/cpu/$parent/$id/tasks" || all_threads=0; done
check "every thread of the VMM is in the cpu cgroup" test $all_threads = 1
check "cpu.max 50000/100000 -> cpu.cfs_quota_us 50000" test "$(cat "$JL_CG/cpu/$parent/$id/cpu.cfs_quota_us")" = 50000
check "cpu.max 50000/100000 -> cpu.cfs_period_us 100000" test "$(cat "$JL_CG/cpu/$parent/$id/cpu.cfs_period_us")" = 100000
check "memory.max 300M -> memory.limit_in_bytes 314572800" test "$(cat "$JL_CG/memory/$parent/$id/memory.limit_in_bytes")" = 314572800
check "pids.max 64" test "$(cat "$JL_CG/pids/$parent/$id/pids.max")" = 64
check "cpuset.cpus 0" test "$(cat "$JL_CG/cpuset/$parent/$id/cpuset.cpus")" = 0
check "cpuset.mems inherited from the parent" test "$(cat "$JL_CG/cpuset/$parent/$id/cpuset.mems")" = "$(cat "$JL_CG/cpuset/cpuset.mems")"
check "in the requested network namespace" test "$(dev_ino /proc/$pid/ns/net)" = "$(dev_ino "$JL_NETNS_FILE")"
check "not in the host's network namespace" test "$(dev_ino /proc/$pid/ns/net)" != "$(dev_ino /proc/self/ns/net)"
check "no-file 2048 by default" grep -qE '^Max open files +2048 +2048 ' /proc/$pid/limits
check "fsize as requested" grep -qE '^Max file size +1073741824 +1073741824 ' /proc/$pid/limits
fds_of $pid >"$tmp/fds"
check "the fd inherited by the jailer (7 -> /etc/passwd) is not in the VMM" bash -c "! grep -q /etc/passwd '$tmp/fds'"
# Beyond stdio: only what ember opened itself, all inside the jail (/root/... is the jail seen from <id>).
check "every other fd is ember's own (anon inodes, sockets, files in the jail)" \
  bash -c "! awk '\$1 > 2 && \$3 !~ /^(anon_inode:|socket:|pipe:|\/root\/)/' '$tmp/fds' | grep -q ."
check "the VMM holds /dev/kvm from the jail" grep -q -- '-> /root/dev/kvm$' "$tmp/fds"
check "the VMM holds the root disk from the jail" grep -q -- '-> /root/rootfs.ext4$' "$tmp/fds"
check "the jail's /dev holds kvm, net/tun and urandom only" \
  test "$(cd "$root/dev" && find . -mindepth 1 | sort | tr '\n' ' ')" = "./kvm ./net ./net/tun ./urandom "
check "the supervising jailer is still root" test "$(status_of $jailer Uid)" = "0 0 0 0"
check "the supervising jailer holds only fds 0-2 and the janitor's socket" supervisor_fds_ok $jailer
check "the host sees no mount of the jail" no_mount_under "$tmp"
api "$sock" GET /
check "ember got --id $id from the jailer" grep -q "\"id\":\"$id\"" <<<"$BODY"
check "the VMM holds the control drive from the jail" grep -q -- '-> /root/control.img$' "$tmp/fds"
[ "$FAILS" -gt 0 ] && { echo "--- fds:"; cat "$tmp/fds"; }

# The guest's userspace runs in the jailed VM too; then it is told to end.
if is_pvm_host; then
  echo "  (kvm-pvm: guest userspace cannot run; the kernel panics at init and the VM resets by itself)"
else
  check "the jailed guest's userspace runs and holds" wait_until 300 grep -q "EMBER-HOLD: tick 2" "$tmp/out"
fi
printf 'reboot\n' | dd of="$root/control.img" conv=notrunc status=none
wait_until 600 exited "$jailer" || { echo "the guest did not end in 600 s"; kill "$jailer"; }
wait $jailer; RC=$?; jailer=
secs=$(echo "$(date +%s.%N) - $t0" | bc)
echo "jailed Linux guest ran for ${secs}s"
check "the jailer exits with ember's status 0 (got $RC)" test "$RC" -eq 0
check "the guest kernel got the API's command line" grep -q "Command line: console=ttyS0" "$tmp/out"
check "the guest mounted its root from the jail's disk" grep -q "EXT4-fs (vda): mounted filesystem" "$tmp/out"
check "the guest booted to init" grep -q "Run /sbin/init as init process" "$tmp/out"
check "afterwards the prepared root holds the operator's files only" \
  test "$(ls -A "$root" | sort | tr '\n' ' ')" = "control.img rootfs.ext4 vmlinux "
check "the root directory is the operator's again" test "$(stat -c '%u:%g' "$root")" = 0:0
check "no cgroup $parent left" test -z "$(cgroups_named "$parent")"
check "no process of uid $JL_UID left" bash -c "! pgrep -u $JL_UID >/dev/null"
check "no mount of a jail on the host" no_mount_under "$tmp"
if [ "$FAILS" -gt 0 ]; then echo "--- stderr:"; tail -5 "$tmp/err"; echo "--- console:"; tail -5 "$tmp/out"; fi
rm -rf "${root:?}"

# ---------------------------------------------------------------- 2. --daemonize --new-pid-ns, cgroup v2
id2=tiny-$$
parent2=ember-test2-$$
root2=$base/$exec_name/$id2/root
mkdir -p "$root2"
ln "$TEST_GUEST" "$root2/test-guest.elf" 2>/dev/null || cp "$TEST_GUEST" "$root2/test-guest.elf"
subtree_before=$(cat "$JL_CG/unified/cgroup.subtree_control")
"$JAILER" --id "$id2" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" \
  --daemonize --new-pid-ns --cgroup-version 2 --parent-cgroup "$parent2" --cgroup hugetlb.2MB.max=2097152 \
  -- --api-sock /run/ember.sock </dev/null >"$tmp/out2" 2>"$tmp/err2"
RC=$?
check "daemonized: the jailer returns 0 once the VMM runs (got $RC)" test "$RC" -eq 0
pid2=$(cat "$root2/$exec_name.pid" 2>/dev/null)
check "the pid file holds the VMM's host pid (${pid2:-none})" test -n "$pid2" -a -d "/proc/${pid2:-0}"
check "the VMM is pid 1 of a new PID namespace" test "$(status_of "$pid2" NSpid)" = "$pid2 1"
check "placed in the unified hierarchy: $parent2/$id2/cgroup.procs" grep -qx "$pid2" "$JL_CG/unified/$parent2/$id2/cgroup.procs"
check "/proc/PID/cgroup says 0::/$parent2/$id2" grep -qx "0::/$parent2/$id2" /proc/$pid2/cgroup
check "hugetlb.2MB.max is 2097152" test "$(cat "$JL_CG/unified/$parent2/$id2/hugetlb.2MB.max" 2>/dev/null)" = 2097152
check "hugetlb enabled for the parent's children" grep -qw hugetlb "$JL_CG/unified/$parent2/cgroup.subtree_control"
sup=$(ps -o ppid= -p "$pid2" | tr -d ' ')
check "the VMM's parent is the detached jailer (supervisor)" test "$(dev_ino /proc/$sup/exe)" = "$(dev_ino "$JAILER")"
check "the supervisor is in its own session" test "$(ps -o sid= -p "$sup" | tr -d ' ')" != "$(ps -o sid= -p $$ | tr -d ' ')"
check "the supervisor's stdio is /dev/null, and it holds nothing else but the janitor's socket" \
  eval 'supervisor_fds_ok "$sup" && [ "$(fds_of "$sup" | head -3 | tr "\n" " ")" = "0 -> /dev/null 1 -> /dev/null 2 -> /dev/null " ]'
check "the VMM's stdio is /dev/null" test "$(readlink /proc/$pid2/fd/1)" = /dev/null
sock2=$root2/run/ember.sock
api "$sock2" PUT /boot-source '{"kernel_image_path":"/test-guest.elf","boot_args":"ember-test=hello"}'
api "$sock2" PUT /actions '{"action_type":"InstanceStart"}'
gone() { [ ! -d "/proc/$pid2" ] && [ ! -d "/proc/$sup" ] && [ ! -e "$root2/$exec_name.pid" ]; }
wait_until 30 gone
check "the tiny guest ran and ended; VMM and supervisor are gone" gone
check "the prepared root holds the operator's file only" test "$(ls -A "$root2" | tr '\n' ' ')" = "test-guest.elf "
check "no cgroup $parent2 left" test -z "$(cgroups_named "$parent2")"
check "the root's cgroup.subtree_control is as before ('$subtree_before')" \
  test "$(cat "$JL_CG/unified/cgroup.subtree_control")" = "$subtree_before"
rm -rf "$base"

# ---------------------------------------------------------------- 3. failing steps: code, message, no trace
id3=fail-$$
parent3=ember-test3-$$
run_fail() { # run_fail CODE STEP DESCRIPTION JAILER-ARGS...: the jailer must fail at STEP, leaving nothing
  local code=$1 step=$2 what=$3 fails=$FAILS; shift 3
  "$JAILER" "$@" </dev/null >"$tmp/fout" 2>"$tmp/ferr"
  local rc=$?
  check "$what: exit $code (got $rc)" test "$rc" -eq "$code"
  check "$what: one line naming the step '$step'" \
    bash -c "[ \$(wc -l <'$tmp/ferr') -eq 1 ] && grep -q '^ember-jailer: $step: ' '$tmp/ferr'"
  check "$what: no jail directory left" test ! -e "$base"
  check "$what: no cgroup left" test -z "$(cgroups_named "$parent3")"
  [ "$FAILS" -gt "$fails" ] && cat "$tmp/ferr"
  rm -rf "$base"
}
std=(--id "$id3" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" --parent-cgroup "$parent3")
run_fail 200 arguments "bad id" --id bad_id --exec-file "$EMBER" --uid 1 --gid 1
run_fail 200 arguments "missing exec file" --id x --exec-file "$tmp/nope" --uid 1 --gid 1
run_fail 200 arguments "uid not a number" --id x --exec-file "$EMBER" --uid root --gid 1
run_fail 200 arguments "stray argument" "${std[@]}" --api-sock /x
printf '#!/bin/sh\necho hi\n' >"$tmp/script.sh"; chmod +x "$tmp/script.sh"
run_fail 203 "copy exec file" "a script as exec file" --id "$id3" --exec-file "$tmp/script.sh" --uid 1 --gid 1 --chroot-base-dir "$base"
run_fail 204 netns "a missing netns" "${std[@]}" --netns /nonexistent --cgroup pids.max=5
run_fail 204 netns "a file that is no netns" "${std[@]}" --netns /etc/hostname --cgroup pids.max=5
run_fail 205 rlimits "no-file above the system's maximum" "${std[@]}" --resource-limit no-file=99999999 --cgroup pids.max=5
run_fail 206 cgroups "a value the kernel refuses" "${std[@]}" --cgroup memory.max=1G --cgroup pids.max=lots
run_fail 206 cgroups "a controller with no v1 hierarchy" "${std[@]}" --cgroup hugetlb.2MB.limit_in_bytes=0
run_fail 206 cgroups "a bad cpu.max" "${std[@]}" --cgroup cpu.max=half
mkdir -p "$tmp/noexec" && mount -t tmpfs -o noexec,mode=755 tmpfs "$tmp/noexec"
run_fail 214 exec "an exec file on a noexec mount" --id "$id3" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" \
  --chroot-base-dir "$tmp/noexec/jail" --parent-cgroup "$parent3" --cgroup pids.max=5
check "exec failure: nothing left on the noexec mount" test -z "$(ls -A "$tmp/noexec")"
umount "$tmp/noexec"

# A jail in use: its exec file's copy is there. The second jailer refuses and touches nothing.
inuse=$base/$exec_name/$id3/root
mkdir -p "$inuse" && echo running >"$inuse/$exec_name"
"$JAILER" "${std[@]}" --cgroup pids.max=5 </dev/null >"$tmp/fout" 2>"$tmp/ferr"
RC=$?
check "a jail in use: exit 203 (got $RC)" test "$RC" -eq 203
check "a jail in use: the message says so" grep -q "a VM with this id is running" "$tmp/ferr"
check "a jail in use: its files are untouched" test "$(cat "$inuse/$exec_name")" = running
check "a jail in use: no cgroup made" test -z "$(cgroups_named "$parent3")"
check "no mount of a jail on the host" no_mount_under "$tmp"
finish
