#!/usr/bin/env bash
# firecracker-go-sdk's request sequences (issue #15), replayed by replay_go_sdk.py (its docstring names
# the SDK commit read: main 6fb280e, v1.0.0-166) against ember with the project's Linux guest:
#   (a) Machine.Start with the default handler list: the 10 ms socket poll with GET /machine-config,
#       PUT /logger (a file) and /metrics (a FIFO nobody reads), /machine-config + GET, /boot-source
#       (args through a Go map, ip= from the static NIC config), /drives/0 and /drives/root_drive,
#       /network-interfaces/1 (tap0, AllowMMDS), /vsock, /mmds/config, the user's SetMetadata (PUT
#       /mmds) and, when this build has a balloon, CreateBalloon; InstanceStart. Then GetMetadata,
#       UpdateMetadata, GetMachineConfiguration, DescribeInstanceInfo, GetFirecrackerVersion,
#       UpdateGuestDrive (the guest reads the new backing file and runs an MMDS check through it),
#       UpdateGuestNetworkInterfaceRateLimit, the balloon calls, PauseVM, CreateSnapshot, ResumeVM, and
#       StopVMM: SIGTERM with the SDK's keep-alive connection open -> exit 0. Seccomp on (the SDK's
#       Seccomp{Enabled: true}).
#   (b) WithSnapshot in a fresh ember (--no-seccomp, the SDK's default): the poll, PUT /logger (a
#       FIFO) and /metrics, PUT /snapshot/load with mem_backend File and resume_vm; the guest goes on;
#       DescribeInstanceInfo, GetMachineConfiguration; Shutdown (SendCtrlAltDel), then the guest's reboot
#       ends ember with exit 0.
#   (c) JailerCfg (Daemonize false, NaiveChrootStrategy): the SDK's jailer command line, the poll at
#       the socket inside the jail, kernel/drives/log FIFO hard-linked into the jail and named by their
#       base names (relative paths) in the requests; the guest boots; StopVMM (SIGTERM to the jailer
#       the SDK started) ends the VM with exit 0 and leaves no process.
#   (d) JailerCfg with Daemonize true: --daemonize; the jailer the SDK started exits 0 once the VMM runs;
#       the guest's vsock echo answers CONNECT (the daemonized VMM's console is /dev/null); Shutdown
#       (SendCtrlAltDel) reboots the guest, which ends the VMM named in the jail's pid file; StopVMM then
#       signals a process that is gone (the SDK never reads the pid file); no process, jail directory,
#       socket or cgroup is left.
# Every answer is checked as the SDK parses it (2xx success, the JSON fields of GETs, Content-Type),
# and each request against the SDK's own timeout (times REPLAY_TIMEOUT_SCALE in the emulated host).
# integration: deadline 900
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating a network namespace and a tap needs root"
for c in ip python3; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
REPLAY=$(cd "$(dirname "$0")" && pwd)/replay_go_sdk.py
EMBER_ABS=$(realpath "$EMBER")
tmp=$(mktemp -d)
ns=ember-gosdk-$$
cleanup() {
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns_add "$ns" || skip "cannot create a network namespace here"
netns_tap "$ns" tap0 172.31.252.1/30
in_emulated_host && export REPLAY_TIMEOUT_SCALE=${REPLAY_TIMEOUT_SCALE:-4}

cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 1M "$tmp/control.img" "$tmp/control2.img"
printf 'hold\n' | dd of="$tmp/control.img" conv=notrunc status=none
common=(--workdir "$tmp" --netns "$ns" --ember "$EMBER_ABS" --kernel "$(realpath "$GUEST_DIR/vmlinux")"
        --rootfs "$tmp/root.ext4" --control "$tmp/control.img" --control2 "$tmp/control2.img"
        --mac 06:00:ac:10:00:02 --guest-ip 172.31.252.2 --gw 172.31.252.1
        --snap-mem "$tmp/snap.mem" --snap-state "$tmp/snap.state")

echo "# (a) Machine.Start ... StopVMM"
python3 "$REPLAY" sdk-start "${common[@]}" --console "$tmp/a.out" --stderr "$tmp/a.err" \
  --cmdline "$LINUX_CMDLINE_BASE ember.hold=/dev/vdb"
rc_a=$?
[ $rc_a -eq 0 ] || FAILS=$((FAILS + 1))
show_on_failure "$tmp/a.out" "$tmp/a.err"

if [ -f "$tmp/snap.state" ]; then
  echo "# (b) WithSnapshot: LoadSnapshot in a fresh ember"
  # Disks are not in a snapshot: put back the images as they were when it was taken. The vsock's
  # socket file is left by the first process, as with Firecracker; a user removes it.
  mv "$tmp/root.ext4.at-snapshot" "$tmp/root.ext4"
  mv "$tmp/control2.img.at-snapshot" "$tmp/control2.img"
  printf 'hold\n' | dd of="$tmp/control2.img" conv=notrunc status=none
  rm -f "$tmp/v.sock"
  FAILS_BEFORE=$FAILS
  python3 "$REPLAY" sdk-load "${common[@]}" --console "$tmp/b.out" --stderr "$tmp/b.err" || FAILS=$((FAILS + 1))
  show_on_failure "$tmp/b.out" "$tmp/b.err"
else
  not_ok "(b) not run: (a) made no snapshot"
fi

echo "# (c) JailerCfg: Machine.Start through ember-jailer, StopVMM"
if [ -x "$JAILER" ]; then
  juid=$((200000 + $$ % 100000))
  mkdir "$tmp/j"
  cp "$GUEST_DIR/vmlinux" "$tmp/j/vmlinux"; chmod 644 "$tmp/j/vmlinux"
  cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$tmp/j/root.ext4"
  truncate -s 1M "$tmp/j/control.img"
  printf 'hold\n' | dd of="$tmp/j/control.img" conv=notrunc status=none
  chown "$juid:$juid" "$tmp/j/root.ext4" "$tmp/j/control.img"
  python3 "$REPLAY" sdk-jailer --workdir "$tmp/j" --ember "$EMBER_ABS" --jailer "$(realpath "$JAILER")" \
    --uid "$juid" --gid "$juid" --kernel "$tmp/j/vmlinux" --rootfs "$tmp/j/root.ext4" --control "$tmp/j/control.img" \
    --console "$tmp/c.out" --stderr "$tmp/c.err" --cmdline "$LINUX_CMDLINE_BASE ember.hold=/dev/vdb" || FAILS=$((FAILS + 1))
  show_on_failure "$tmp/c.out" "$tmp/c.err"
else
  not_ok "(c) not run: no jailer at $JAILER (make all)"
fi

echo "# (d) JailerCfg with Daemonize: the jailer returns at once, Shutdown ends the VM, nothing is left"
if [ -x "$JAILER" ]; then
  juid=$((200000 + $$ % 100000))
  mkdir "$tmp/d"
  cp "$GUEST_DIR/vmlinux" "$tmp/d/vmlinux"; chmod 644 "$tmp/d/vmlinux"
  cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$tmp/d/root.ext4"
  truncate -s 1M "$tmp/d/control.img"
  printf 'hold\n' | dd of="$tmp/d/control.img" conv=notrunc status=none
  chown "$juid:$juid" "$tmp/d/root.ext4" "$tmp/d/control.img"
  python3 "$REPLAY" sdk-jailer-daemon --workdir "$tmp/d" --ember "$EMBER_ABS" --jailer "$(realpath "$JAILER")" \
    --uid "$juid" --gid "$juid" --kernel "$tmp/d/vmlinux" --rootfs "$tmp/d/root.ext4" --control "$tmp/d/control.img" \
    --console "$tmp/d.out" --stderr "$tmp/d.err" \
    --cmdline "$LINUX_CMDLINE_BASE ember.hold=/dev/vdb ember.ctrlaltdel=reboot ember.vsock-echo=52" || FAILS=$((FAILS + 1))
  show_on_failure "$tmp/d.out" "$tmp/d.err"
else
  not_ok "(d) not run: no jailer at $JAILER (make all)"
fi
finish
