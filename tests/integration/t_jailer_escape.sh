#!/usr/bin/env bash
# Escape attempts from inside the jail. A test-only payload (tests/jail/escape.c,
# built here with gcc -static) runs in place of ember in the same jail ember
# gets (uid/gid, no capabilities, no_new_privs, pivot_root + chroot, its own
# session, a network namespace with only a loopback that is down) and tries
# to get out: host files and ../ paths, ptrace and signals to the jailer and
# to pid 1, mounts, user/net/mount namespaces (and a user namespace then a
# mount), reaching a TCP listener on the host, setuid(0), kernel modules,
# /proc/sysrq-trigger, block devices, chroot, sethostname, capabilities, and
# TIOCSTI into the terminal it was started from (run under a pty). It prints
# BLOCKED or ALLOWED per attempt; every one must be BLOCKED.
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/../jail/lib.sh"
require_jailer
command -v gcc >/dev/null || { echo "gcc is needed to build the payload"; exit 1; }
command -v script >/dev/null || { echo "script (bsdutils) is needed for the pty"; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
cleanup() {
  [ -n "${listener:-}" ] && kill "$listener" 2>/dev/null
  cleanup_netns
  rm -rf "$tmp"
}
trap cleanup EXIT

gcc -static -O2 -Wall -Wextra -Werror -o "$tmp/escape" "$here/../jail/escape.c" 2>"$tmp/cc.err" ||
  { cat "$tmp/cc.err"; echo "cannot build the payload"; exit 1; }
# A TCP listener on the host (all addresses), to be unreachable from the jail.
"$tmp/escape" --listen "$tmp/port" &
listener=$!
wait_until 5 test -s "$tmp/port"
port=$(cat "$tmp/port")
host_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "src") print $(i + 1) }')
targets=("127.0.0.1:$port")
[ -n "$host_ip" ] && targets+=("$host_ip:$port")
make_netns esc

base=$tmp/jail
parent=ember-esc-$$
run_payload() { # run_payload OUT EXTRA-JAILER-ARGS...: under a pty, so the payload's stdin is a terminal
  local out=$1; shift
  local cmd
  printf -v cmd '%q ' "$JAILER" --id "esc-$$" --exec-file "$tmp/escape" --uid "$JL_UID" --gid "$JL_GID" \
    --chroot-base-dir "$base" --parent-cgroup "$parent" --cgroup pids.max=32 "$@" -- "${targets[@]}"
  timeout --signal=KILL 60 script -qfec "$cmd" /dev/null </dev/null | tr -d '\r' >"$out"
  RC=${PIPESTATUS[0]}
}

attempts=(host-file dotdot symlink ptrace-parent ptrace-init kill-parent mount-tmpfs mount-proc unshare-user
  userns-then-mount unshare-net unshare-mount inet-socket inet-connect setuid-root kernel-module sysrq-trigger
  mknod-block chroot sethostname capabilities tiocsti)

for mode in plain pidns; do
  extra=(--netns "$JL_NETNS_FILE")
  [ $mode = pidns ] && extra+=(--new-pid-ns)
  run_payload "$tmp/out.$mode" "${extra[@]}"
  echo "--- payload ($mode):"; cat "$tmp/out.$mode"
  check "$mode: the jailer ran the payload (exit $RC)" test "$RC" -eq 0
  check "$mode: the payload ran as $JL_UID:$JL_GID" grep -q "^escape: uid $JL_UID gid $JL_GID " "$tmp/out.$mode"
  for a in "${attempts[@]}"; do
    check "$mode: $a is BLOCKED" grep -q "^BLOCKED $a: " "$tmp/out.$mode"
  done
  check "$mode: no attempt ALLOWED" bash -c "! grep -q '^ALLOWED' '$tmp/out.$mode'"
  check "$mode: the payload finished" grep -q "^escape: 0 attempt(s) allowed" "$tmp/out.$mode"
  check "$mode: the host listener saw no connection" test ! -e "$tmp/port.log"
  check "$mode: no jail directory left" test ! -e "$base"
  check "$mode: no cgroup left" test -z "$(cgroups_named "$parent")"
done
# What the kernel itself said for the two attempts whose meaning depends on the host.
grep -q "^BLOCKED kernel-module: .*Function not implemented" "$tmp/out.plain" &&
  echo "note: this kernel has no module support (ENOSYS); the capabilities line shows the VMM could not load one anyway"
check "no mount of a jail on the host" no_mount_under "$tmp"
finish
