#!/usr/bin/env bash
# Fault injection (issue #16): ember-jailer itself killed with SIGKILL at a
# spread of moments of its start (0 to 200 ms after it was started, once the
# exec file's copy is in the jail, once the cgroups exist, once the VMM serves
# its API: before, during and after it makes the jail directory, the copy,
# the device nodes and the cgroups, forks the jailed child, which execs the VMM).
# After each kill: no process of that VM is left (PR_SET_PDEATHSIG, or the
# child sees its supervisor gone), no mount reaches the host (the jail's
# mounts live in the child's mount namespace), and what is left is only that
# VM's jail directory and cgroups (docs/jailer.md: a killed supervisor cannot
# clean up). The next start with the same id either runs or fails with a
# clear error (203, 206) naming what is in the way; after the operator's
# cleanup that docs/reliability.md gives (remove <base>/<exec name>/<id> and
# the id's cgroup directories) it runs and leaves nothing.
# integration: deadline 600
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/../jail/lib.sh"
require_jailer
tmp=$(mktemp -d)
exec_name=$(basename "$EMBER")
base=$tmp/jail
parent=ember-fj-$$
cleanup() {
  [ -n "${jailer:-}" ] && kill -9 "$jailer" 2>/dev/null
  operator_cleanup_all
  rm -rf "$tmp"
}
# The operator's cleanup after a killed jailer (docs/reliability.md): the jail directory of the id, then its cgroup
# directories, deepest first, then the parent levels once empty.
operator_cleanup() { # ID
  rm -rf "${base:?}/$exec_name/$1"
  find "$JL_CG" -mindepth 2 -maxdepth 4 -depth -type d -path "*/$parent/$1" -exec rmdir {} \; 2>/dev/null
}
operator_cleanup_all() {
  find "$JL_CG" -mindepth 2 -maxdepth 4 -depth -type d -path "*/$parent*" -exec rmdir {} \; 2>/dev/null
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
# left ID: what the killed run left: "jail" and/or "cgroups:N", or "nothing".
left() {
  local l='' n
  [ -e "$base/$exec_name/$1" ] && l+="jail "
  n=$(cgroups_named "$1" | grep -c "/$parent/$1\$")
  [ "$n" -gt 0 ] && l+="cgroups:$n "
  echo "${l:-nothing}"
}
# Nothing outside the id's own jail directory and cgroups (and the parent levels) may be left.
only_own() {
  local other
  other=$(ls -A "$base/$exec_name" 2>/dev/null | grep -vx "$1")
  [ -z "$other" ] && [ -z "$(cgroups_named "$parent" | grep -v "/$parent\$")" ] || return 1
  [ -z "$(find "$JL_CG" -mindepth 2 -maxdepth 4 -type d -path "*/$parent/*" ! -path "*/$parent/$1" 2>/dev/null)" ]
}

no_files_left() { [ -z "$(find "$base/$exec_name/$1" ! -type d 2>/dev/null)" ] && [[ "$(left "$1")" != *cgroups* ]]; }
summary=
clean_next=0 refused_next=0 after_cleanup=0 total=0
# An undisturbed start first, timed to its API socket, stopped with SIGTERM: nothing may be left.
t=$(date +%s%N)
"$JAILER" --id undisturbed --exec-file "$EMBER" --uid "$JL_UID" --gid "$JL_GID" --chroot-base-dir "$base" "${cg[@]}" \
  -- --api-sock /run/ember.sock </dev/null >"$tmp/kout" 2>"$tmp/kerr" &
jailer=$!
wait_until 60 test -S "$base/$exec_name/undisturbed/root/run/ember.sock"
up_ms=$(( ($(date +%s%N) - t) / 1000000 ))
kill -TERM "$jailer"; wait "$jailer"; rc=$?; jailer=
check "undisturbed: the API socket came up in $up_ms ms; SIGTERM: exit 0 (got $rc), nothing left ($(left undisturbed))" \
  eval '[ $rc -eq 0 ] && [ "$(left undisturbed)" = nothing ]'
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
  kill -9 "$jailer"; wait "$jailer" 2>/dev/null; jailer=
  check "$id: no process of the VM left after the jailer's SIGKILL" wait_until 5 no_vm_procs "$id"
  check "$id: no mount of the jail on the host" no_mount_under "$base"
  what=$(left "$id")
  check "$id: only its own jail directory and cgroups are left ($what)" only_own "$id"
  summary+="$delay_ms$([ -n "${delay_ms//[0-9]/}" ] || echo " ms"): $what(socket $sock_up); "
  # The next start with the same id.
  run_jailer "$id" --version
  if [ "$RC" -eq 0 ]; then
    clean_next=$((clean_next + 1))
    # A kill right after mkdir leaves the id's empty directories, which the next run takes for the operator's
    # (it removes only what it made itself): they may stay; no file, node or cgroup may.
    check "$id: the next start ran and left no file, device node or cgroup ($(left "$id"))" no_files_left "$id"
  else
    refused_next=$((refused_next + 1))
    check "$id: the next start is refused with 203 or 206 and says what is in the way (exit $RC: $OUT)" \
      eval '{ [ "$RC" -eq 203 ] || [ "$RC" -eq 206 ]; } && [[ "$OUT" == *"$id"* ]] && [[ "$OUT" == *"exists"* || "$OUT" == *"File exists"* ]]'
    operator_cleanup "$id"
    run_jailer "$id" --version
    check "$id: after the operator's cleanup the next start runs (exit $RC${OUT:+: $OUT})" test "$RC" -eq 0
    grep -q "ember" "$tmp/out" && after_cleanup=$((after_cleanup + 1))
    check "$id: and leaves nothing ($(left "$id"))" test "$(left "$id")" = nothing
  fi
done
echo "# jailer SIGKILLs: $summary"
echo "# of $total kills: the next start ran $clean_next time(s) at once, was refused $refused_next time(s) and ran after the operator's cleanup $after_cleanup time(s)"
check "some kills fell after the jail was made (the test covered the interesting window)" test "$refused_next" -gt 0
finish
