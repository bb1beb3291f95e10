#!/usr/bin/env bash
# tests/kvmhost/build.sh - build (or reuse) the emulated KVM host: a kernel
# with kvm_amd and a small initramfs that QEMU's TCG emulator boots with
# `-cpu max` (AMD SVM with nested paging), so that /dev/kvm exists inside it.
#
# Usage: tests/kvmhost/build.sh        prints the cache directory on stdout
#
# The kernel is Debian's own linux-image-<abi>-amd64 (the one the
# linux-image-amd64 metapackage names), fetched with `apt-get download` and
# unpacked with `dpkg -x`, not installed: it is the kernel this recipe was
# measured with, it carries kvm_amd, 9p, overlayfs, tun and loop as modules,
# and it costs a download instead of a 5-minute build. Its whole module tree
# is kept, so that `modprobe` works inside the emulated host (loop, tun, veth,
# ...) once the host's root filesystem is mounted there (tests/kvmhost/init).
#
# Cache: ${EMBER_CACHE:-$HOME/.cache/ember}/kvmhost-<hash>/ with
#   vmlinuz, initramfs.cpio.gz, modules/<kver>/..., kver
# and, after the first run, kallsyms (the kernel's text symbols: Debian's
# package ships no real System.map), which run uses to name a frozen
# host's vCPU addresses.
# where <hash> covers the kernel package version, busybox's version, this
# script and the init script. A complete cache directory is reused as is.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${EMBER_CACHE:-$HOME/.cache/ember}
busybox=/bin/busybox
die() { echo "kvmhost/build.sh: error: $*" >&2; exit 1; }
log() { echo "kvmhost/build.sh: $*" >&2; }

[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
readelf -l "$busybox" | grep -q INTERP && die "$busybox is dynamically linked; install busybox-static"

# The kernel package: what linux-image-amd64 depends on (e.g. linux-image-6.1.0-57-amd64).
kpkg_of() {
  apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}
kpkg=$(kpkg_of)
if [ -z "$kpkg" ]; then
  apt-get update -qq >&2 || true
  kpkg=$(kpkg_of)
fi
[ -n "$kpkg" ] || die "apt cannot name the kernel behind linux-image-amd64 (run apt-get update)"
kver_pkg=$(apt-cache policy "$kpkg" | awk '/Candidate:/ {print $2}')
bb_ver=$(dpkg-query -W -f='${Version}' busybox-static)
hash=$( { echo "$kpkg $kver_pkg $bb_ver"; cat "${BASH_SOURCE[0]}" "$here/init"; } | sha256sum | cut -c1-16)
dir=$cache_root/kvmhost-$hash
if [ -f "$dir/complete" ]; then echo "$dir"; exit 0; fi
# One builder at a time (the integration runner starts several emulated hosts at once).
mkdir -p "$cache_root"
exec 9>"$dir.lock"
flock 9
if [ -f "$dir/complete" ]; then echo "$dir"; exit 0; fi

log "building the emulated KVM host ($kpkg $kver_pkg) in $dir"
mkdir -p "$cache_root"
tmp=$(mktemp -d "$cache_root/.kvmhost-build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download "$kpkg" >/dev/null 2>"$tmp/apt.err") || {
  apt-get update -qq >&2 || true
  (cd "$tmp" && apt-get download "$kpkg" >/dev/null) || die "apt-get download $kpkg failed: $(cat "$tmp/apt.err")"
}
dpkg -x "$tmp"/"$kpkg"_*.deb "$tmp/pkg"
kver=$(ls "$tmp/pkg/lib/modules")
[ -f "$tmp/pkg/boot/vmlinuz-$kver" ] || die "no vmlinuz-$kver in $kpkg"
moddir=$tmp/pkg/lib/modules/$kver
depmod -b "$tmp/pkg" "$kver"

# The initramfs: static busybox, the modules needed to reach the host's root
# over 9p (virtio-pci, 9p, overlay) and KVM, and the init script. Order
# matters (virtio needs virtio_ring first); each entry is found by name.
mods="virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio netfs fscache 9p overlay irqbypass kvm ccp kvm-amd"
ir=$tmp/initramfs
mkdir -p "$ir"/{bin,dev,proc,sys,mnt,modules,newroot}
cp "$busybox" "$ir/bin/busybox"
for a in sh mount umount mkdir insmod poweroff cat echo sleep chroot unshare uname ln mknod sync; do
  ln -s busybox "$ir/bin/$a"
done
: >"$ir/modules/order"
for m in $mods; do
  f=$(find "$moddir" -name "$m.ko" -o -name "$m.ko.xz" -o -name "$(echo "$m" | tr - _).ko" | head -1)
  [ -n "$f" ] || die "module $m not found in $kpkg"
  case $f in *.xz) xz -dc "$f" >"$ir/modules/$m.ko" ;; *) cp "$f" "$ir/modules/$m.ko" ;; esac
  echo "$m" >>"$ir/modules/order"
done
install -m 0755 "$here/init" "$ir/init"
# The kernel runs its module loader in PID 1's root (this initramfs), not in
# the chroot the commands run in: hand the request to modprobe there.
printf '#!/bin/sh\nexec /bin/chroot /newroot /sbin/modprobe "$@"\n' >"$ir/bin/modprobe-newroot"
chmod 0755 "$ir/bin/modprobe-newroot"
(cd "$ir" && find . | cpio -o -H newc --quiet | gzip -1) >"$tmp/initramfs.cpio.gz"

rm -rf "$dir"
mkdir -p "$dir/modules"
cp "$tmp/pkg/boot/vmlinuz-$kver" "$dir/vmlinuz"
mv "$tmp/initramfs.cpio.gz" "$dir/"
mv "$moddir" "$dir/modules/$kver"
echo "$kver" >"$dir/kver"
echo "$kpkg $kver_pkg" >"$dir/package"
touch "$dir/complete"
log "done: $dir"
echo "$dir"
