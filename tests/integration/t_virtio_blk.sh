#!/usr/bin/env bash
# virtio-blk end to end with the project's Linux guest: root on /dev/vda
# mounted rw (the host sees the superblock's mount count change), a
# read-only root left byte-for-byte unchanged, further drives in order with
# the right sizes (one not a multiple of 512 bytes), both I/O engines, and
# the advisory lock that keeps two VMs off one writable image. Where guest
# userspace runs, its init also writes a file to an ext4 data drive that the
# host reads back (ember.check=blk:, deploy/guest/init.sh).
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing $GUEST_DIR/rootfs.ext4 (make guest)"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mount_count() { dumpe2fs -h "$1" 2>/dev/null | awk -F: '/^Mount count/ {gsub(/ /,"",$2); print $2}'; }
fsck_clean() { e2fsck -fn "$1" >/dev/null 2>&1; }

# 1: root rw (sync engine), a read-only data drive (async engine), an odd-sized drive.
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 8M "$tmp/data.img"
truncate -s $((3 * 1024 * 1024 + 100)) "$tmp/odd.img"
sha_data=$(sha256sum < "$tmp/data.img")
before=$(mount_count "$tmp/root.ext4")
linux_run "$tmp/out" "$tmp/err" --cmdline "$LINUX_CMDLINE_BASE" \
  --drive id=data,path="$tmp/data.img",ro,io_engine=async \
  --drive id=rootfs,path="$tmp/root.ext4",root \
  --drive id=odd,path="$tmp/odd.img"
check "rw root: ember exit 0 (got $RC)" test "$RC" -eq 0
check "rw root: root= added by ember" grep -q "Command line: .*root=/dev/vda rw" "$tmp/out"
check "rw root: ext4 mounted from vda" grep -q "EXT4-fs (vda): mounted filesystem" "$tmp/out"
check "rw root: VFS mounted root read-write" grep -qE "VFS: Mounted root \(ext4 filesystem\) on device" "$tmp/out"
check "rw root: kernel ran init from the disk" grep -q "Run /sbin/init as init process" "$tmp/out"
check "second drive is vdb, 8 MiB" grep -q "\[vdb\] 16384 512-byte logical blocks" "$tmp/out"
check "third drive is vdc, size rounded down to whole sectors" grep -q "\[vdc\] 6144 512-byte logical blocks" "$tmp/out"
after=$(mount_count "$tmp/root.ext4")
check "rw root: superblock mount count went $before -> $after" test "$after" -gt "$before"
check "read-only data drive unchanged" test "$(sha256sum < "$tmp/data.img")" = "$sha_data"
check "odd-size warning logged" grep -q "not a multiple of 512" "$tmp/err"
show_on_failure "$tmp/out" "$tmp/err"; FAILS_1=$FAILS

# 2: the same root through the io_uring engine, and an ext4 data drive (vdb,
# also io_uring) for the userspace mode: init writes ember-check.txt to it.
mke2fs -q -F -t ext4 "$tmp/check.ext4" 8M >/dev/null
before=$(mount_count "$tmp/root.ext4")
linux_run "$tmp/out" "$tmp/err" --cmdline "$LINUX_CMDLINE_BASE ember.check=blk:/dev/vdb" \
  --drive id=rootfs,path="$tmp/root.ext4",root,io_engine=async --drive id=check,path="$tmp/check.ext4",io_engine=async
check "async root: ember exit 0 (got $RC)" test "$RC" -eq 0
check "async root: ext4 mounted" grep -q "EXT4-fs (vda): mounted filesystem" "$tmp/out"
check "async root: kernel ran init" grep -q "Run /sbin/init as init process" "$tmp/out"
after=$(mount_count "$tmp/root.ext4")
check "async root: mount count went $before -> $after" test "$after" -gt "$before"
check "check drive is vdb, 8 MiB" grep -q "\[vdb\] 16384 512-byte logical blocks" "$tmp/out"
if userspace_ran "$tmp/out"; then
  guest_check_content > "$tmp/content"
  want="$(stat -c %s "$tmp/content") bytes sha256 $(sha256sum < "$tmp/content" | cut -d' ' -f1)"
  check "userspace blk: guest wrote the file" grep -qF "EMBER-CHECK: blk wrote $want to /dev/vdb:/ember-check.txt" "$tmp/out"
  check "userspace blk: guest read it back from the device" grep -qF "EMBER-CHECK: blk read back $want" "$tmp/out"
  check "userspace blk: no guest check failed" grep -qF "EMBER-CHECK: done: 1 check(s), 0 failed" "$tmp/out"
  debugfs -R "cat /ember-check.txt" "$tmp/check.ext4" > "$tmp/got" 2>/dev/null
  check "userspace blk: host reads the known content from the image" cmp -s "$tmp/got" "$tmp/content"
  check "userspace blk: image passes e2fsck -fn (guest unmounted it)" fsck_clean "$tmp/check.ext4"
fi
show_on_failure "$tmp/out" "$tmp/err"

# 3: a read-only root stays byte-for-byte unchanged. A pristine copy: the
# image above was left needing journal recovery (the guest panics rather than
# unmounting), which a read-only device rightly refuses.
cp "$GUEST_DIR/rootfs.ext4" "$tmp/root-ro.ext4"
sha_root=$(sha256sum < "$tmp/root-ro.ext4")
linux_run "$tmp/out" "$tmp/err" --cmdline "$LINUX_CMDLINE_BASE" --drive id=rootfs,path="$tmp/root-ro.ext4",root,ro
check "ro root: ember exit 0 (got $RC)" test "$RC" -eq 0
check "ro root: root= says ro" grep -q "Command line: .*root=/dev/vda ro" "$tmp/out"
check "ro root: mounted read-only" grep -qE "VFS: Mounted root \(ext4 filesystem\) readonly" "$tmp/out"
check "ro root: kernel ran init" grep -q "Run /sbin/init as init process" "$tmp/out"
check "ro root: image unchanged" test "$(sha256sum < "$tmp/root-ro.ext4")" = "$sha_root"
show_on_failure "$tmp/out" "$tmp/err"

# 4: the advisory lock: a writable image held by another process is refused.
flock -x "$tmp/root.ext4" sleep 20 &
holder=$!
sleep 0.5
run_ember_bin "$EMBER" "$tmp/out" "$tmp/err" 20 --kernel "$GUEST_DIR/vmlinux" --drive id=rootfs,path="$tmp/root.ext4",root
kill $holder 2>/dev/null; wait $holder 2>/dev/null
check "locked image: exit 1 (got $RC)" test "$RC" -eq 1
check "locked image: error says it is in use" grep -q "drive 'rootfs': image .* is in use by another process" "$tmp/err"
run_ember_bin "$EMBER" "$tmp/out" "$tmp/err" 20 --kernel "$GUEST_DIR/vmlinux" --drive id=rootfs,path="$tmp/nope.img",root
check "missing image: clear error" grep -q "drive 'rootfs': cannot open" "$tmp/err"
run_ember_bin "$EMBER" "$tmp/out" "$tmp/err" 20 --kernel "$GUEST_DIR/vmlinux" --drive id=bad-id,path="$tmp/root.ext4"
check "bad drive id: exit 153 (got $RC)" test "$RC" -eq 153
finish
