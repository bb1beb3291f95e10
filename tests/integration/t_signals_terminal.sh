#!/usr/bin/env bash
# SIGTERM and SIGINT stop a running VM cleanly (exit 0), and the terminal
# ember puts in raw mode is restored on every exit path (clean reset, guest
# crash, signal).
source "$(dirname "$0")/lib.sh"
require_kvm
command -v script >/dev/null || skip "script(1) (bsdutils) is needed to give ember a terminal"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
K=$GUEST_DIR/vmlinux
[ -f "$K" ] || { echo "missing $K (make guest)"; exit 1; }

for sig in TERM INT; do
  "$EMBER" --kernel "$K" --initrd "$GUEST_DIR/initrd.cpio" --mem-mib 256 --log-level info \
      </dev/null >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  # Signal a VM that is really running guest code: wait for the banner.
  for _ in $(seq 600); do grep -q "Linux version" "$tmp/out" && break; sleep 0.1; done
  kill -s $sig $pid
  # A clean stop joins the vCPU threads: give it a few seconds, never hang.
  for _ in $(seq 50); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then kill -KILL $pid; not_ok "SIG$sig: ember still running 5 s after the signal"; fi
  wait $pid; rc=$?
  check "SIG$sig: exit 0 (got $rc)" test $rc -eq 0
  check "SIG$sig: logged why it stopped" grep -q "stopped by" "$tmp/err"
  check "SIG$sig: the guest had started" grep -q "Linux version" "$tmp/out"
done

# Terminal state around each exit path, inside a pseudo-terminal.
for case in "hello:0" "triple:2"; do
  t=${case%%:*} want=${case##*:}
  script -qec "stty -g > $tmp/before; $EMBER --kernel $TEST_GUEST --cmdline ember-test=$t > $tmp/out 2>$tmp/err; echo \$? > $tmp/rc; stty -g > $tmp/after" /dev/null >/dev/null 2>&1 </dev/null
  check "terminal, $t: ember exit $want (got $(cat $tmp/rc 2>/dev/null))" test "$(cat $tmp/rc 2>/dev/null)" = "$want"
  check "terminal, $t: mode restored" cmp -s "$tmp/before" "$tmp/after"
done
script -qec "stty -g > $tmp/before; $EMBER --kernel $K --initrd $GUEST_DIR/initrd.cpio --mem-mib 256 > $tmp/out 2>$tmp/err & p=\$!; sleep 2; stty -g > $tmp/during; kill -TERM \$p; wait \$p; echo \$? > $tmp/rc; stty -g > $tmp/after" /dev/null >/dev/null 2>&1 </dev/null
check "terminal, SIGTERM: exit 0 (got $(cat $tmp/rc 2>/dev/null))" test "$(cat $tmp/rc 2>/dev/null)" = 0
check "terminal, SIGTERM: mode restored" cmp -s "$tmp/before" "$tmp/after"
finish
