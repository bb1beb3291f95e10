# shellcheck shell=bash
# Helpers for the ember-jailer integration tests (sourced after tests/integration/lib.sh).
JAILER=${JAILER:-${BUILD:-build}/ember-jailer}
# A uid/gid of this run's own, so that "no process of uid N is left" cannot see anyone else's.
JL_UID=${JL_UID:-$((200000 + $$ % 100000))}
JL_GID=${JL_GID:-$JL_UID}
JL_CG=/sys/fs/cgroup

require_jailer() {
  [ "$(id -u)" = 0 ] || skip "ember-jailer needs root"
  require_kvm
  [ -x "$JAILER" ] || { echo "missing $JAILER (make build/ember-jailer)"; exit 1; }
  [ -x "$EMBER" ] || { echo "missing $EMBER (make)"; exit 1; }
}

# dev:inode of a path, following links (for /proc/PID/root, /proc/PID/ns/net, netns files).
dev_ino() { stat -L -c '%d:%i' "$1" 2>/dev/null; }

# The four values of a /proc/PID/status line ("Uid", "Gid", ...), or its single value.
status_of() { awk -v k="$2:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$1/status" 2>/dev/null; }

# wait_until SECONDS COMMAND...: polls every 0.1 s; 0 once COMMAND succeeds, 1 on timeout.
wait_until() {
  local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
  until "$@"; do
    [ "$(date +%s%N)" -lt "$end" ] || return 1
    sleep 0.1
  done
}

# Mounts (root or mount point) that mention PATH: none may appear on the host for a jail.
# (Not a before/after comparison of every mount: other tests on the host add their own.)
mounts_under() { grep -F -- "$1" /proc/self/mountinfo; }
no_mount_under() { ! mounts_under "$1" >/dev/null; }

# Every cgroup directory below the given names in every hierarchy (v1 and the unified one).
cgroups_named() {
  local n
  for n in "$@"; do find "$JL_CG" -mindepth 2 -maxdepth 3 -type d -name "$n" 2>/dev/null; done | sort
}

# The open fds of PID as "fd -> target" lines.
fds_of() { local f; for f in /proc/"$1"/fd/*; do echo "$(basename "$f") -> $(readlink "$f")"; done; }

# A private network namespace with only a loopback interface (down), removed by cleanup_netns.
make_netns() {
  JL_NETNS=ember-jl-$$-$1
  ip netns add "$JL_NETNS" || { echo "ip netns add failed"; exit 1; }
  # shellcheck disable=SC2034 # used by the tests that source this file
  JL_NETNS_FILE=/var/run/netns/$JL_NETNS
}
cleanup_netns() { [ -n "${JL_NETNS:-}" ] && ip netns delete "$JL_NETNS" 2>/dev/null; return 0; }

# exited PID: the process is gone or a zombie (a background job not yet waited for).
exited() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null); [ -z "$s" ] || [[ $s == Z* ]]; }

# The supervisor's fds: 0-2 and, as fd 3, its end of the janitor's socket (docs/jailer.md).
supervisor_fds_ok() {
  [ "$(ls /proc/"$1"/fd 2>/dev/null | sort | tr '\n' ' ')" = "0 1 2 3 " ] &&
    [[ "$(readlink /proc/"$1"/fd/3)" == socket:* ]]
}
# The janitor of the VM with id ID (its command line is the jailer's; its name ember-janitor).
janitor_of() {
  local p
  for p in $(pgrep -f -- "--id $1( |\$)"); do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = ember-janitor ] && echo "$p"; done
}
# The janitor holds 0-2 on /dev/null and its socket, nothing else.
janitor_fds_ok() {
  [ "$(fds_of "$1" | sort | tr '\n' ' ')" = "0 -> /dev/null 1 -> /dev/null 2 -> /dev/null 3 -> $(readlink /proc/"$1"/fd/3) " ] &&
    [[ "$(readlink /proc/"$1"/fd/3)" == socket:* ]]
}
