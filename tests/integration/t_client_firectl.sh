#!/usr/bin/env bash
# firectl's calls for one typical command line (issue #15), replayed by replay_go_sdk.py (firectl main
# df2fb87, v0.2.0-26, built on firecracker-go-sdk v1.0.0):
#   firectl --firecracker-binary=ember --kernel=vmlinux --kernel-opts='...' --root-drive=root.ext4
#           --add-drive=control.img:rw --tap-device=tap0/06:00:ac:10:00:02 --vsock-device=v.sock:3
#           --ncpus=1 --memory=256 --cpu-template=T2A|T2 --metadata='{"hello":"firectl"}'
#           -l firectl.log -s fc.sock
# ember gets only --api-sock (firectl's own command builder; seccomp on). -l makes firectl create a log
# FIFO (read into the file) and a metrics FIFO nobody reads; PUT /logger level Debug; the machine with
# smt true (firectl sends !--disable-smt) and the host vendor's template (T2A on AMD, the emulated host;
# T2 on Intel); drive "2" (the --add-drive) then root drive "1"; NIC "1" allowed to reach the MMDS;
# the vsock without an id; PUT /mmds/config; InstanceStart; only then PUT /mmds. The guest reads the
# metadata over the MMDS. Ctrl-C: Shutdown = SendCtrlAltDel, which reboots the guest (its init was told
# to, ember.ctrlaltdel=reboot): ember exits 0 with firectl's keep-alive connection still open.
# integration: deadline 600
source "$(dirname "$0")/lib.sh"; source "$(dirname "$0")/linux_run.sh"
require_kvm
[ "$(id -u)" -eq 0 ] || skip "creating a network namespace and a tap needs root"
for c in ip python3; do command -v $c >/dev/null || skip "$c is needed"; done
[ -f "$GUEST_DIR/vmlinux" ] && [ -f "$GUEST_DIR/rootfs.ext4" ] || { echo "missing guest artifacts in $GUEST_DIR (make guest)"; exit 1; }
REPLAY=$(cd "$(dirname "$0")" && pwd)/replay_go_sdk.py
tmp=$(mktemp -d)
ns=ember-firectl-$$
cleanup() {
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
netns_add "$ns" || skip "cannot create a network namespace here"
netns_tap "$ns" tap0 172.31.253.1/30
in_emulated_host && export REPLAY_TIMEOUT_SCALE=${REPLAY_TIMEOUT_SCALE:-4}
tmpl=T2; grep -q AuthenticAMD /proc/cpuinfo && tmpl=T2A

cp --sparse=always "$GUEST_DIR/rootfs.ext4" "$tmp/root.ext4"
truncate -s 1M "$tmp/control.img"
printf 'hold\n' | dd of="$tmp/control.img" conv=notrunc status=none
python3 "$REPLAY" firectl --workdir "$tmp" --netns "$ns" --ember "$(realpath "$EMBER")" \
  --kernel "$(realpath "$GUEST_DIR/vmlinux")" --rootfs "$tmp/root.ext4" --control "$tmp/control.img" \
  --mac 06:00:ac:10:00:02 --cpu-template "$tmpl" --console "$tmp/f.out" --stderr "$tmp/f.err" \
  --cmdline "$LINUX_CMDLINE_BASE ip=172.31.253.2::172.31.253.1:255.255.255.252::eth0:off ember.hold=/dev/vdb ember.ctrlaltdel=reboot" ||
  FAILS=$((FAILS + 1))
show_on_failure "$tmp/f.out" "$tmp/f.err"
finish
