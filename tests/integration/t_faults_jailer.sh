#!/usr/bin/env bash
# Fault injection (issues #15, #16): ember-jailer itself killed with SIGKILL
# at a spread of moments of its start (0 to 200 ms after it was started, once
# the exec file's copy is in the jail, once the cgroups exist, once the VMM
# serves its API: before, during and after it makes the jail directory, the
# copy, the device nodes and the cgroups, forks the jailed child, which execs
# the VMM). After each kill, within 10 s (the janitor's bounded wait):
# nothing is left of that VM, no process (PR_SET_PDEATHSIG, or the child sees
# its supervisor gone), no mount on the host, no jail directory, no cgroup
# (the janitor cleans up after its killed supervisor); the next start with the
# same id runs at once and leaves nothing either.
# Then with --new-pid-ns, --daemonize and both: SIGKILL of the supervisor and
# SIGKILL of the VMM (the pid in the pid file, which Kata signals): nothing left.
# integration: deadline 600
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/../jail/lib.sh"
require_jailer
tmp=$(mktemp -d)
exec_name=$(basename "$EMBER")
base=$tmp/jail
parent=ember-fj-$$
cleanup() {
  [ -n "${jailer:-}" ] && kill -9 "$jailer" 2>/dev/null
  # Only if a check failed: what a janitor did not remove.
  find "$JL_CG" -mindepth 2 -maxdepth 4 -depth -type d -path "*/$parent*" -exec rmdir {} \; 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
cg=(--parent-cgroup "$parent" --cgroup cpu.cfs_quota_us=50000 --cgroup memory.limit_in_bytes=268435456 --cgroup pids.max=64)
run_jailer() { # ID ARGS-AFTER--...: in the foreground; RC, OUT (its stderr's last line)
  local id=$1; shift
  "$JAILER" --id "$id" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" "${cg[@]}" \
    -- "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  RC=$?; OUT=$(tail -1 "$tmp/err")
}
vm_procs() { pgrep -f -- "--id $1( |\$)"; }
no_vm_procs() { [ -z "$(vm_procs "$1")" ]; }
# left ID: what is left of the VM: "jail", "cgroups:N", "procs:N", "mount", or "nothing".
left() {
  local l='' n
  [ -e "$base/$exec_name/$1" ] && l+="jail "
  n=$(cgroups_named "$1" | grep -c "/$parent/$1\$")
  [ "$n" -gt 0 ] && l+="cgroups:$n "
  n=$(vm_procs "$1" | wc -l)
  [ "$n" -gt 0 ] && l+="procs:$n "
  no_mount_under "$base" || l+="mount "
  echo "${l:-nothing}"
}
nothing_left() { [ "$(left "$1")" = nothing ]; }
# Nothing of any VM of this test: no other id's directory, no cgroup below the parent.
no_other() { [ -z "$(ls -A "$base/$exec_name" 2>/dev/null)" ] && [ -z "$(find "$JL_CG" -mindepth 2 -maxdepth 4 -type d -path "*/$parent/*" 2>/dev/null)" ]; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

summary="" made_at_kill=0 total=0 max_clean_ms=0
# An undisturbed start first, timed to its API socket, stopped with SIGTERM: nothing may be left.
t=$(date +%s%N)
"$JAILER" --id undisturbed --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" "${cg[@]}" \
  -- --api-sock /run/ember.sock </dev/null >"$tmp/kout" 2>"$tmp/kerr" &
jailer=$!
wait_until 60 test -S "$base/$exec_name/undisturbed/root/run/ember.sock"
up_ms=$(ms_since "$t")
jan=$(janitor_of undisturbed)
check "undisturbed: one janitor runs (${jan:-none}), in a session of its own, nobody's child in the jailer's tree" \
  eval '[ -n "$jan" ] && [ "$(echo "$jan" | wc -w)" -eq 1 ] &&
    [ "$(ps -o sid= -p "$jan" | tr -d " ")" != "$(ps -o sid= -p "$jailer" | tr -d " ")" ] &&
    [ "$(ps -o ppid= -p "$jan" | tr -d " ")" != "$jailer" ]'
check "undisturbed: the janitor holds only /dev/null on 0-2 and its socket" janitor_fds_ok "${jan:-0}"
check "undisturbed: the supervisor holds only 0-2 and the janitor's socket" supervisor_fds_ok "$jailer"
kill -TERM "$jailer"; wait "$jailer"; rc=$?; jailer=
check "undisturbed: the API socket came up in $up_ms ms; SIGTERM: exit 0 (got $rc), nothing left ($(left undisturbed))" \
  eval '[ $rc -eq 0 ] && nothing_left undisturbed'
check "undisturbed: the janitor ended with the jailer" test ! -d "/proc/${jan:-0}"
# Fixed moments (0 to 200 ms), and three events the test waits for, as the timing varies with the load:
# "copied" once the exec file's copy is in the jail, "cgroups" once the id's cgroup exists, "up" once the VMM serves.
for delay_ms in 0 5 20 50 100 200 copied cgroups up; do
  id=k$delay_ms
  total=$((total + 1))
  "$JAILER" --id "$id" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" "${cg[@]}" \
    -- --api-sock /run/ember.sock </dev/null >"$tmp/kout" 2>"$tmp/kerr" &
  jailer=$!
  if [ "$delay_ms" = up ]; then # the VMM serves its API: the supervisor is in its last step, waiting
    wait_until 60 test -S "$base/$exec_name/$id/root/run/ember.sock"
  elif [ "$delay_ms" = copied ]; then
    wait_until 60 test -e "$base/$exec_name/$id/root/$exec_name"
  elif [ "$delay_ms" = cgroups ]; then
    wait_until 60 test -d "$JL_CG/pids/$parent/$id"
  elif [ "$delay_ms" -gt 0 ]; then
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
  fi
  sock_up=no; [ -S "$base/$exec_name/$id/root/run/ember.sock" ] && sock_up=yes
  at_kill=$(left "$id")
  [[ "$at_kill" == *jail* || "$at_kill" == *cgroups* ]] && made_at_kill=$((made_at_kill + 1))
  t=$(date +%s%N)
  kill -9 "$jailer"; wait "$jailer" 2>/dev/null; jailer=
  wait_until 10 nothing_left "$id"
  clean_ms=$(ms_since "$t"); [ "$clean_ms" -gt "$max_clean_ms" ] && max_clean_ms=$clean_ms
  check "$id: nothing of the VM left within 10 s of the jailer's SIGKILL (at the kill: ${at_kill% }; now: $(left "$id"))" \
    nothing_left "$id"
  check "$id: nothing of any other VM either" no_other
  summary+="$delay_ms$([ -n "${delay_ms//[0-9]/}" ] || echo " ms"): ${at_kill% }, socket $sock_up, clean in $clean_ms ms; "
  # The next start with the same id runs at once, and leaves nothing.
  run_jailer "$id" --version
  check "$id: the next start runs at once (exit $RC${OUT:+: $OUT})" eval '[ "$RC" -eq 0 ] && grep -q ember "$tmp/out"'
  check "$id: and leaves nothing ($(left "$id"))" nothing_left "$id"
done
echo "# jailer SIGKILLs: $summary"
echo "# of $total kills, $made_at_kill fell after something was made; the slowest cleanup took $max_clean_ms ms"
check "some kills fell after the jail or cgroups were made (the test covered the interesting window)" \
  test "$made_at_kill" -gt 0

# --new-pid-ns, --daemonize, both: SIGKILL of the supervisor, then of the VMM.
modes_t=$(date +%s%N)
for mode in pidns daemon daemon-pidns; do
  extra=()
  [[ $mode == *pidns* ]] && extra+=(--new-pid-ns)
  [[ $mode == daemon* ]] && extra+=(--daemonize)
  for target in supervisor vmm; do
    id=$mode-$target
    "$JAILER" --id "$id" --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" "${cg[@]}" \
      "${extra[@]}" -- --api-sock /run/ember.sock </dev/null >"$tmp/kout" 2>"$tmp/kerr" &
    jailer=$!
    if [[ $mode == daemon* ]]; then
      wait "$jailer"; rc=$?; jailer=
      check "$id: --daemonize returns 0 once the VMM runs (got $rc)" test "$rc" -eq 0
    fi
    wait_until 60 test -S "$base/$exec_name/$id/root/run/ember.sock"
    vmm=$(cat "$base/$exec_name/$id/root/$exec_name.pid" 2>/dev/null)
    sup=$(ps -o ppid= -p "${vmm:-0}" | tr -d ' ')
    [[ $mode == daemon* ]] || check "$id: the supervisor is the process started" test "${sup:-0}" = "$jailer"
    check "$id: the pid file names the VMM, the supervisor's child (vmm ${vmm:-?}, supervisor ${sup:-?})" \
      eval '[ -n "$vmm" ] && [ -n "$sup" ] && [ "$sup" != 1 ] && tr "\\0" " " </proc/$vmm/cmdline | grep -q -- "--id $id"'
    t=$(date +%s%N)
    if [ $target = supervisor ]; then kill -9 "${sup:-0}"; else kill -9 "${vmm:-0}"; fi
    if [ -n "$jailer" ]; then
      wait "$jailer"; rc=$?; jailer=
      want=137
      check "$id: the jailer's status is 137 (got $rc)" test "$rc" -eq "$want"
    fi
    wait_until 10 nothing_left "$id"
    check "$id: SIGKILL of the $target: nothing left within 10 s ($(left "$id"), $(ms_since "$t") ms)" nothing_left "$id"
    check "$id: the supervisor is gone" test ! -d "/proc/${sup:-0}"
  done
done
echo "# the --new-pid-ns/--daemonize kills took $(( $(ms_since "$modes_t") / 1000 )) s"
check "nothing of any VM of this test is left" no_other
finish
