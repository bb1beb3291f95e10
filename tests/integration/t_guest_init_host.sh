#!/usr/bin/env bash
# The guest init's ember.check= checks (deploy/guest/init.sh) run on the host,
# under busybox sh with only busybox applets as in the guest: an ext4 image
# file stands in for the data drive (busybox mount sets up a loop device, in a
# private mount namespace) and python3 peers on 127.0.0.1 for the host's end
# of the tap. Where guest userspace cannot run (kvm-pvm), this is what tests
# the script's logic; t_virtio_blk/t_virtio_net run it in a guest elsewhere.
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
bb=/bin/busybox
[ -x "$bb" ] || skip "$bb is needed (busybox-static)"
[ "$(id -u)" -eq 0 ] || skip "mounting an image file needs root"
command -v python3 >/dev/null || skip "python3 is needed for the tcp peers"
command -v unshare >/dev/null && unshare -m true 2>/dev/null || skip "cannot create a mount namespace here"
command -v debugfs >/dev/null && command -v mke2fs >/dev/null || skip "e2fsprogs is needed"
tmp=$(mktemp -d)
peers=()
cleanup() { for p in "${peers[@]}"; do kill "$p" 2>/dev/null; done; rm -rf "$tmp"; }
trap cleanup EXIT
mkdir "$tmp/bin" "$tmp/mnt" "$tmp/scratch"
for a in $("$bb" --list); do ln -s "$bb" "$tmp/bin/$a"; done
tcp_peer_script > "$tmp/peer.py"
guest_check_content > "$tmp/content"
want_sha=$(sha256sum < "$tmp/content" | cut -d' ' -f1)
want_n=$(stat -c %s "$tmp/content")

# run_init CMDLINE: init.sh's init_main (all but the guest's mounts and
# reboot) with a clean environment; output in $tmp/out, status in RC and as its own.
run_init() {
  timeout --signal=KILL 120 unshare -m --propagation private \
    env -i PATH="$tmp/bin" EMBER_INIT_LIB=1 EMBER_MNT="$tmp/mnt" EMBER_TMP="$tmp/scratch" \
    EMBER_PROC_INTERRUPTS="${EMBER_PROC_INTERRUPTS:-/proc/interrupts}" \
    "$bb" sh -c '. "$1" && init_main "$2"' sh "$GUEST_INIT_SH" "$1" > "$tmp/out" 2>&1
  RC=$?
  return $RC
}
has() { grep -qxF -- "$1" "$tmp/out"; }
peer() { # NAME MODE: starts a peer on a free port; sets PORT
  python3 "$tmp/peer.py" 127.0.0.1 0 "$2" "$tmp/$1" & peers+=($!)
  wait_ready "$tmp/$1" || { not_ok "$1 peer did not start"; PORT=1; return; }
  PORT=$(cat "$tmp/$1.ready")
}

# 1: no ember.check=: exactly today's single marker line.
run_init "console=ttyS0 reboot=k panic=1 root=/dev/vda rw"
check "no checks: exit 0 (got $RC)" test "$RC" -eq 0
check "no checks: only the EMBER-INIT-OK line" test "$(cat "$tmp/out")" = "EMBER-INIT-OK: guest userspace is running"

# 2: blk on an ext4 image, as the host makes it for the guest.
mke2fs -q -F -t ext4 "$tmp/data.ext4" 8M >/dev/null
run_init "console=ttyS0 ember.check=blk:$tmp/data.ext4"
check "blk: exit 0 (got $RC)" test "$RC" -eq 0
check "blk: wrote line" has "EMBER-CHECK: blk wrote $want_n bytes sha256 $want_sha to $tmp/data.ext4:/ember-check.txt"
check "blk: read back line" has "EMBER-CHECK: blk read back $want_n bytes sha256 $want_sha"
check "blk: done line" has "EMBER-CHECK: done: 1 check(s), 0 failed"
debugfs -R "cat /ember-check.txt" "$tmp/data.ext4" > "$tmp/got" 2>/dev/null
check "blk: the file in the image has the known content" cmp -s "$tmp/got" "$tmp/content"
fsck_clean() { e2fsck -fn "$1" >/dev/null 2>&1; }
check "blk: image passes e2fsck -fn (unmounted cleanly)" fsck_clean "$tmp/data.ext4"
check "blk: image no longer mounted" sh -c "! grep -q '$tmp' /proc/mounts"
[ "$FAILS" -gt 0 ] && cat "$tmp/out"

# 3: tcp-send and tcp-recv in one ember.check=, plus a second ember.check= word.
head -c $((1024 * 1024 + 7)) /dev/urandom > "$tmp/payload"
peer sink sink; sink_port=$PORT
cp "$tmp/payload" "$tmp/source"
peer source source; source_port=$PORT
mke2fs -q -F -t ext4 "$tmp/data2.ext4" 8M >/dev/null
run_init "ember.check=tcp-send:127.0.0.1:$sink_port,tcp-recv:127.0.0.1:$source_port quiet ember.check=blk:$tmp/data2.ext4"
wait "${peers[@]}" 2>/dev/null
check "tcp: exit 0 (got $RC)" test "$RC" -eq 0
check "tcp-send: marker with the peer's matching sha256" \
  has "EMBER-CHECK: tcp-send sent $want_n bytes sha256 $want_sha to 127.0.0.1:$sink_port, peer got sha256 $want_sha"
check "tcp-send: the peer received the known content" cmp -s "$tmp/sink" "$tmp/content"
check "tcp-recv: marker with the payload's size and sha256" \
  has "EMBER-CHECK: tcp-recv received $(stat -c %s "$tmp/payload") bytes sha256 $(sha256sum < "$tmp/payload" | cut -d' ' -f1) from 127.0.0.1:$source_port"
check "second ember.check= word ran too" has "EMBER-CHECK: done: 3 check(s), 0 failed"
[ "$FAILS" -gt 0 ] && cat "$tmp/out"

# 4: failures are reported, never a silent pass.
truncate -s 1M "$tmp/notfs.img"
peer closed sink; closed_port=$PORT
kill "${peers[-1]}"; wait "${peers[-1]}" 2>/dev/null
run_init "ember.check=blk:$tmp/notfs.img,tcp-send:127.0.0.1:$closed_port,tcp-recv:127.0.0.1:$closed_port,bogus:1"
check "failures: exit 1 (got $RC)" test "$RC" -eq 1
check "failures: blk on a non-ext4 drive" has "EMBER-CHECK: blk FAIL: cannot mount $tmp/notfs.img on $tmp/mnt"
check "failures: tcp-send to a closed port" has "EMBER-CHECK: tcp-send FAIL: nc to 127.0.0.1:$closed_port failed"
check "failures: tcp-recv from a closed port" has "EMBER-CHECK: tcp-recv FAIL: nc from 127.0.0.1:$closed_port failed"
check "failures: unknown check" grep -q "^EMBER-CHECK: bogus:1 FAIL: unknown check" "$tmp/out"
check "failures: done line counts them" has "EMBER-CHECK: done: 4 check(s), 4 failed"
[ "$FAILS" -gt 0 ] && cat "$tmp/out"

# 5: blk-verify re-reads what blk wrote (data.ext4 from 2), and fails on a drive without the file.
mke2fs -q -F -t ext4 "$tmp/empty.ext4" 8M >/dev/null
run_init "ember.check=blk-verify:$tmp/data.ext4,blk-verify:$tmp/empty.ext4"
check "blk-verify: exit 1 (got $RC)" test "$RC" -eq 1
check "blk-verify: the known content found" has "EMBER-CHECK: blk-verify read $want_n bytes sha256 $want_sha from $tmp/data.ext4:/ember-check.txt"
check "blk-verify: a drive without the file fails" has "EMBER-CHECK: blk-verify FAIL: no ember-check.txt on $tmp/empty.ext4"
check "blk-verify: done line" has "EMBER-CHECK: done: 2 check(s), 1 failed"
[ "$FAILS" -gt 0 ] && cat "$tmp/out"

# 6: hold with a loop device as the control drive (O_DIRECT works on it
# whatever filesystem holds the file), 100 ms ticks, the echo service, a
# "check" line, and Ctrl-Alt-Del seen as a keyboard interrupt in a stand-in
# for /proc/interrupts (two CPUs' columns summed).
truncate -s 1M "$tmp/ctl.img"
printf 'hold\n' | dd of="$tmp/ctl.img" conv=notrunc status=none
if loop=$(losetup -f --show "$tmp/ctl.img" 2>/dev/null); then
  printf '  0:  10  20  IO-APIC   2-edge  timer\n  1:   5   3  IO-APIC   1-edge  i8042\n' > "$tmp/interrupts"
  echo_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  EMBER_PROC_INTERRUPTS=$tmp/interrupts run_init "ember.echo=$echo_port ember.tick=100 ember.ctrlaltdel=reboot ember.hold=$loop" &
  held=$!
  waitline() { for _ in $(seq 300); do grep -qE -- "$1" "$tmp/out" && return 0; sleep 0.1; done; return 1; }
  check "hold: the echo service starts" waitline "^EMBER-ECHO: TCP echo service on port $echo_port \(pid [0-9]+\)$"
  check "hold: Ctrl-Alt-Del armed with the keyboard's 8 interrupts so far" waitline "^EMBER-HOLD: Ctrl-Alt-Del \(a keyboard interrupt\) reboots; 8 so far$"
  check "hold: ticks, with the uptime" waitline "^EMBER-HOLD: tick 3 \(up [0-9]+\.[0-9]+ s\)$"
  check "hold: the echo service echoes" python3 -c '
import socket, sys
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as s:
    s.sendall(b"echo me\n")
    got = b""
    while not got.endswith(b"\n"):
        got += s.recv(100) or b"\n!"
sys.exit(got != b"echo me\n")' "$echo_port"
  printf 'check blk-verify:%s\n' "$tmp/data.ext4" | dd of="$tmp/ctl.img" conv=notrunc status=none
  check "hold: a 'check' control line runs the check" waitline "^EMBER-CHECK: blk-verify read $want_n bytes sha256 $want_sha from"
  check "hold: ... and says so" waitline "^EMBER-CHECK: done: 1 check\(s\), 0 failed$"
  t=$(grep -c "^EMBER-HOLD: tick" "$tmp/out")
  check "hold: ticking on after the check" waitline "^EMBER-HOLD: tick $((t + 2)) "
  sed -i 's/^  1:   5 /  1:   6 /' "$tmp/interrupts"
  check "hold: a keyboard interrupt ends the hold" waitline "^EMBER-HOLD: keyboard interrupts 8 -> 9: Ctrl-Alt-Del, rebooting$"
  wait "$held"; RC=$?
  check "hold: init_main returned 0 (got $RC)" test "$RC" -eq 0
  pid=$(sed -n 's/^EMBER-ECHO: .*(pid \([0-9]*\))$/\1/p' "$tmp/out")
  [ -n "$pid" ] && kill "$pid" 2>/dev/null
  losetup -d "$loop"
  [ "$FAILS" -gt 0 ] && cat "$tmp/out"
else
  echo "skip - hold: no loop device here (losetup -f failed)"
fi
finish
