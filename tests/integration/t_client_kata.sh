#!/usr/bin/env bash
# Kata Containers' Firecracker driver (issue #15), replayed by replay_kata.py (kata-containers main
# 7c6ba40c54, 4.1.0-23, Go runtime src/runtime/virtcontainers/fc.go) with ember as the hypervisor
# (installed under the file name "firecracker": Kata reads <jail root>/firecracker.pid, and the jailer
# names the pid file after the exec file) and ember-jailer as the jailer, one sandbox:
#   `firecracker --version` parsed as Kata does; the jail prepared as Kata prepares it (a /run-like
#   tmpfs, jailerRoot bind-mounted shared and remounted exec, kernel/rootfs/FIFOs/config bind-mounted in,
#   a pool of 8 empty placeholder drives); fcConfig.json (machine, boot source, read-only rootfs drive
#   that is not the root device, drive_0..drive_7, vsock "root" CID 3, logger and metrics on FIFOs of
#   mode 0000 that Kata reads, a NIC with Kata's rate limiters); `jailer --id ID --exec-file firecracker
#   --uid 0 --gid 0 --chroot-base-dir BASE --daemonize --netns NS -- --config-file /fcConfig.json`;
#   GET / every 10 ms until Running; the pid file; the agent's hybrid vsock `CONNECT 1024` (the guest's
#   vsock echo stands in for kata-agent); hot-plug and unplug by bind mount + PATCH /drives/drive_0 (the
#   guest reads the new disk, then the empty placeholder again); SIGTERM to the pid-file pid; Kata's
#   cleanupJail; then nothing left (processes, mounts, jail directory, cgroups).
# integration: deadline 600
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "bind mounts, a network namespace and a tap need root"
for c in ip python3 pgrep; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
[ -x "$JAILER" ] || { echo "no jailer at $JAILER (make all)"; exit 1; }
REPLAY=$(cd "$(dirname "$0")" && pwd)/replay_kata.py
tmp=$(mktemp -d)
ns=ember-kata-$$
cleanup() {
  ip netns del "$ns" 2>/dev/null
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
netns_add "$ns" || skip "cannot create a network namespace here"
netns_tap "$ns" tap0_kata
in_emulated_host && export REPLAY_TIMEOUT_SCALE=${REPLAY_TIMEOUT_SCALE:-4}

mkdir "$tmp/bin" "$tmp/img"
cp "$EMBER" "$tmp/bin/firecracker"
cp "$GUEST_DIR/vmlinux" "$tmp/img/vmlinux"
cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$tmp/img/kata-containers.img"
truncate -s 1M "$tmp/img/container.disk"
python3 "$REPLAY" --workdir "$tmp" --hypervisor "$tmp/bin/firecracker" --jailer "$(realpath "$JAILER")" \
  --kernel "$tmp/img/vmlinux" --rootfs "$tmp/img/kata-containers.img" --disk "$tmp/img/container.disk" \
  --netns "$ns" --tap tap0_kata --console "$tmp/console.out" --stderr "$tmp/jailer.err" \
  --cmdline "$LINUX_CMDLINE_BASE ember.hold=/dev/vdb ember.vsock-echo=1024" || FAILS=$((FAILS + 1))
show_on_failure "$tmp/console.out" "$tmp/jailer.err"
finish
