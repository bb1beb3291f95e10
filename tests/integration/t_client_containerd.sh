#!/usr/bin/env bash
# firecracker-containerd's runtime shim (issue #15), replayed by replay_containerd.py (firecracker-containerd
# main be68640, 2026-07-16, on firecracker-go-sdk v1.0.1-0.20250818195323-ed6ff32aa924: runtime/service.go,
# noop_jailer.go, drive_handler.go; the SDK's Machine.Start and vsock.DialContext) against ember with the
# project's Linux guest, one VM with the runtime's defaults (no jailer, no NIC) and one drive mount:
#   the shim dir <base>/default#VMID as the VMM's working directory; fc-logs.fifo / fc-metrics.fifo made by
#   the runtime and read by nobody; stub drives ctrstub0 and drivemntstub0 (magic bytes + base32 id);
#   `ember --api-sock firecracker.sock --id VMID`; the SDK's socket poll; PUT /logger (Info), /metrics,
#   /machine-config (T2 on Intel only) + GET, /boot-source, /drives/root_drive (read-only root) and the two
#   stubs, /vsock {guest_cid: 0, uds_path: firecracker.vsock, vsock_id: agent_api}, InstanceStart; the agent
#   dialed as vsock.DialContext does (100 ms ticks, CONNECT 10789, "OK " within 1 s; the guest's vsock echo
#   on 10789 stands in for the agent); mountDrives' PATCH of the drive-mount stub; Set/Get/UpdateVMMetadata
#   (PUT/GET/PATCH /mmds); PauseVM/ResumeVM; a task's rootfs PATCHed onto ctrstub0 and released back to the
#   relative path "ctrstub0" (the guest reads each); StopVM: GET /, the agent's Shutdown (the guest
#   reboots), exit 0 within machine.Wait's 5 s; then a late reader of the log FIFO got ember's lines, and
#   nothing is left but the runtime's files and the vsock socket (no process, no listener).
# The VMM is build/ember-static (make all): firecracker-containerd's runc jailer copies only the binary.
# integration: deadline 300
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
for c in python3 pgrep; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
REPLAY=$(cd "$(dirname "$0")" && pwd)/replay_containerd.py
[ -x "$EMBER-static" ] || { echo "missing $EMBER-static, the static-pie ember (make all builds it)"; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
in_emulated_host && export REPLAY_TIMEOUT_SCALE=${REPLAY_TIMEOUT_SCALE:-4}
truncate -s 1M "$tmp/control.img" "$tmp/rootfs-image.img"
python3 "$REPLAY" --workdir "$tmp" --ember "$(realpath "$EMBER-static")" --kernel "$(realpath "$GUEST_DIR/vmlinux")" \
  --rootfs "$(realpath "$GUEST_DIR/rootfs.ext4")" --control "$tmp/control.img" --image "$tmp/rootfs-image.img" \
  --console "$tmp/console.out" --stderr "$tmp/vmm.err" \
  --cmdline "$LINUX_CMDLINE_BASE ember.hold=/dev/vdc ember.vsock-echo=10789" || FAILS=$((FAILS + 1))
show_on_failure "$tmp/console.out" "$tmp/vmm.err"
finish
