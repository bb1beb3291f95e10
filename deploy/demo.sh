#!/usr/bin/env bash
# make demo: boots the project's guest with its console on this terminal,
# root on a fresh copy of the ext4 image (virtio-blk) and, when run as root,
# a NIC on a tap the script creates (host 172.31.250.1, guest .2) and removes.
set -euo pipefail
build=${1:-build}
guest=$build/guest
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# No usable /dev/kvm here, or kvm-pvm's (software KVM: no guest userspace
# system calls, docs/host-compat.md): the same demo, inside the emulated KVM
# host, where the guest reaches userspace. EMBER_KVM=host keeps it on kvm-pvm.
source "$repo/tools/kvm_host.sh" # kvm_usable, is_pvm_host
if [ "${EMBER_KVMHOST:-0}" != 1 ]; then
  why=
  if ! kvm_usable; then why="no usable /dev/kvm on this machine"
  elif is_pvm_host && [ "${EMBER_KVM:-auto}" != host ]; then
    why="this machine's /dev/kvm is kvm-pvm, which runs no guest userspace (EMBER_KVM=host boots on it anyway)"
  fi
  if [ -n "$why" ]; then
    echo "demo: $why: booting the demo inside an emulated KVM host (QEMU TCG, nested SVM; slower, about half a minute)"
    exec "$repo/tests/kvmhost/run" --timeout 900 -- "$repo/deploy/demo.sh" "$build"
  fi
fi
cp "$guest/rootfs.ext4" "$build/demo-rootfs.ext4"
args=(--kernel "$guest/vmlinux" --mem-mib 256 --log-level info
      --drive "id=rootfs,path=$build/demo-rootfs.ext4,root")
cmdline="console=ttyS0 reboot=k panic=1 8250.nr_uarts=1 i8042.noaux i8042.nomux"
tap=emberdemo0
if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && ip tuntap add dev $tap mode tap vnet_hdr 2>/dev/null; then
  trap 'ip link del $tap 2>/dev/null || true' EXIT
  ip addr add 172.31.250.1/30 dev $tap
  ip link set $tap up
  args+=(--net "id=eth0,tap=$tap,mac=06:00:ac:10:00:02")
  cmdline+=" ip=172.31.250.2::172.31.250.1:255.255.255.252::eth0:off"
  echo "demo: guest NIC on tap $tap (host 172.31.250.1, guest 172.31.250.2)"
fi
if [ "${EMBER_KVMHOST:-0}" != 1 ] && is_pvm_host; then
  echo "demo: this host's KVM is kvm-pvm: the guest kernel boots (about a minute, its code is emulated)"
  echo "demo: up to 'Run /sbin/init'; guest userspace cannot make system calls here, so it then panics and reboots."
fi
echo "demo: Ctrl-C stops the VM."
"$build/ember" "${args[@]}" --cmdline "$cmdline"
