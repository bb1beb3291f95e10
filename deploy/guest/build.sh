#!/usr/bin/env bash
# deploy/guest/build.sh - build Ember's Linux guest artifacts.
#
# Usage: deploy/guest/build.sh [OUTDIR]      (default OUTDIR: <repo>/build/guest)
#
# Produces, from Debian's UNPATCHED linux-source-6.1 and busybox-static:
#   vmlinux              ELF kernel with the PVH entry note (what Ember boots)
#   bzImage              the same kernel, LZ4-compressed bzImage
#   vmlinux-int3patched  the same kernel without the int3 self-test call
#                        (only so QEMU can be measured on kvm-pvm hosts)
#   initrd.cpio          busybox root filesystem, uncompressed newc cpio
#   rootfs.ext4          the same root filesystem as a 32 MiB ext4 image
#
# Two cache levels under ${EMBER_CACHE:-$HOME/.cache/ember}/:
#   kernel-<khash>/  the three kernels; <khash> covers kernel.fragment, the
#                    kernel-building functions of this script and the
#                    linux-source package version (not init.sh: editing the
#                    guest's init must not cost a kernel rebuild)
#   guest-<hash>/    all five artifacts; <hash> covers <khash>, this whole
#                    script, init.sh and the busybox binary
# A complete cache dir is reused as is. The files are then copied (not
# hardlinked: tests mount rootfs.ext4 read-write) into OUTDIR.
#
# Needs these Debian 12 packages (the Makefile installs them):
#   gcc make flex bison libelf-dev libssl-dev bc linux-source-6.1
#   busybox-static e2fsprogs cpio lz4 xz-utils binutils
# Runs non-interactively; root is not needed (the cpio is written by the
# kernel's gen_init_cpio, the ext4 image by `mke2fs -d`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
fragment=$here/kernel.fragment
init_script=$here/init.sh
vsock_helper=$here/vsock-helper.c
self=$here/$(basename "${BASH_SOURCE[0]}")
src_tar=/usr/src/linux-source-6.1.tar.xz
busybox=/bin/busybox
outdir=${1:-$repo/build/guest}
cache_root=${EMBER_CACHE:-$HOME/.cache/ember}
artifacts=(vmlinux bzImage vmlinux-int3patched initrd.cpio rootfs.ext4)

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[ -r "$src_tar" ] || die "$src_tar missing (apt-get install linux-source-6.1)"
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
# A dynamically linked busybox would need its libraries in the guest.
if readelf -l "$busybox" | grep -q INTERP; then
    die "$busybox is dynamically linked; install busybox-static"
fi
src_version=$(dpkg-query -W -f='${Version}' linux-source-6.1) \
    || die "cannot read the linux-source-6.1 package version"

# --- Kernel build, as functions -----------------------------------------------
# The kernel cache key hashes these functions' code (declare -f), so changes
# elsewhere in this script (the root filesystem, publishing) keep the kernel.
# They set and use the globals ksrc and build_time.
kmake() {
    make -C "$ksrc" ARCH=x86_64 KBUILD_BUILD_USER=ember KBUILD_BUILD_HOST=ember \
        KBUILD_BUILD_VERSION=1 KBUILD_BUILD_TIMESTAMP="$build_time" \
        -j"$(nproc)" "$@" >>"$buildlog" 2>&1
}

# Kconfig silently drops options whose dependencies are not met, so check
# that the result really has every line of the fragment.
verify_config() {
    local line sym bad=0
    while IFS= read -r line; do
        if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
            grep -qxF "$line" "$ksrc/.config" && continue
            sym=${BASH_REMATCH[1]}
            log "config mismatch: wanted '$line', got '$(grep -E "^$sym=|^# $sym is not set" "$ksrc/.config" || echo "(absent)")'"
            bad=1
        elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]]; then
            sym=${BASH_REMATCH[1]}
            grep -q "^$sym=" "$ksrc/.config" || continue
            log "config mismatch: wanted '$sym' unset, got '$(grep "^$sym=" "$ksrc/.config")'"
            bad=1
        fi
    done <"$fragment"
    [ "$bad" -eq 0 ] || die "the kernel config does not match $fragment"
}

# build_kernel OUT: vmlinux, bzImage, vmlinux-int3patched, kernel.config and
# the kernel's gen_init_cpio (the root filesystem step needs it) into OUT.
build_kernel() {
    local out=$1 alt removed
    mkdir -p "$out"
    log "unpacking $src_tar ($src_version)"
    tar -xJf "$src_tar" -C "$work"
    ksrc=$work/linux-source-6.1
    [ -f "$ksrc/Makefile" ] || die "unexpected layout in $src_tar"

    # Fixed build user/host/version/time: both kernels below report the same
    # banner (the int3 variant's relink would otherwise bump them).
    build_time=$(date -u '+%a %b %e %H:%M:%S UTC %Y')

    log "configuring: tinyconfig + $(basename "$fragment")"
    kmake tinyconfig
    # merge_config.sh -m only merges; olddefconfig then resolves dependencies.
    (cd "$ksrc" && scripts/kconfig/merge_config.sh -m .config "$fragment") >>"$buildlog" 2>&1
    kmake olddefconfig
    verify_config
    cp "$ksrc/.config" "$out/kernel.config"

    log "compiling vmlinux and bzImage with $(nproc) jobs (takes minutes)"
    kmake vmlinux bzImage
    cp "$ksrc/vmlinux" "$out/vmlinux"
    cp "$ksrc/arch/x86/boot/bzImage" "$out/bzImage"

    # The PVH note (XEN_ELFNOTE_PHYS32_ENTRY, type 18, owner "Xen") is what
    # lets a monitor (and QEMU) boot vmlinux directly.
    readelf -n "$out/vmlinux" | grep -E '^\s+Xen\s' | grep -qiE '0x00000012|PHYS32' \
        || die "vmlinux carries no PVH (XEN_ELFNOTE_PHYS32_ENTRY) note"

    # vmlinux-int3patched: QEMU on kvm-pvm hosts cannot get past the int3
    # self-test in alternative_instructions() (the emulator cannot do INT3).
    # To measure QEMU with otherwise the same kernel, drop that one call,
    # rebuild incrementally, then put the source back. Ember itself boots
    # the unpatched vmlinux.
    alt=$ksrc/arch/x86/kernel/alternative.c
    cp -p "$alt" "$work/alternative.c.orig"
    sed -i '/^[[:space:]]*int3_selftest();[[:space:]]*$/d' "$alt"
    removed=$(diff "$work/alternative.c.orig" "$alt" | grep -c '^<' || true)
    [ "$removed" -eq 1 ] || die "expected to remove exactly one int3_selftest() call, removed $removed"
    log "compiling vmlinux-int3patched (incremental)"
    kmake vmlinux
    cp "$ksrc/vmlinux" "$out/vmlinux-int3patched"
    cp -p "$work/alternative.c.orig" "$alt"

    # The kernel's own cpio writer (see the root filesystem step).
    [ -x "$ksrc/usr/gen_init_cpio" ] || cc -O2 -o "$ksrc/usr/gen_init_cpio" "$ksrc/usr/gen_init_cpio.c"
    cp "$ksrc/usr/gen_init_cpio" "$out/gen_init_cpio"
}
kernel_files=(vmlinux bzImage vmlinux-int3patched kernel.config gen_init_cpio)

# Cache keys: the content of every input, not their paths, so any checkout of
# the same revision shares the cache.
khash=$({
    sha256sum <"$fragment"
    declare -f kmake verify_config build_kernel
    echo "linux-source-6.1 $src_version"
} | sha256sum | cut -c1-16)
hash=$({
    echo "kernel $khash"
    for f in "$self" "$init_script" "$busybox" "$vsock_helper"; do sha256sum <"$f"; done
} | sha256sum | cut -c1-16)
cache_dir=$cache_root/guest-$hash
kernel_dir=$cache_root/kernel-$khash

complete() { # DIR FILE...: every file present and non-empty
    local d=$1 f; shift
    for f in "$@"; do [ -s "$d/$f" ] || return 1; done
}

# Copy the cached files to OUTDIR; each file is replaced atomically.
install_outputs() {
    local f
    mkdir -p "$outdir"
    for f in "${artifacts[@]}"; do
        cp --sparse=always "$cache_dir/$f" "$outdir/.$f.tmp"
        mv -f "$outdir/.$f.tmp" "$outdir/$f"
    done
    for f in "${artifacts[@]}"; do echo "$(cd "$outdir" && pwd)/$f"; done
}

mkdir -p "$cache_root"
# Serialise concurrent builds of the same inputs (e.g. two shells, or CI).
exec 9>"$cache_root/guest-$hash.lock"
flock 9

if complete "$cache_dir" "${artifacts[@]}"; then
    log "cached: $cache_dir"
    install_outputs
    exit 0
fi

# ---------------------------------------------------------------------------
# Build in a private temp dir under the cache root (same filesystem, so the
# final mv is an atomic rename); it is removed however the script ends.
work=$(mktemp -d "$cache_root/.guest-$hash.XXXXXX")
failed_log=$cache_root/guest-$hash.failed.log
on_exit() {
    local rc=$?
    if [ "$rc" -ne 0 ] && [ -f "$work/build.log" ]; then
        cp "$work/build.log" "$failed_log"
        log "FAILED (exit $rc); last lines of the build log ($failed_log):"
        tail -n 40 "$failed_log" >&2
    fi
    rm -rf "$work"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
stage=$work/out
mkdir -p "$stage"
buildlog=$work/build.log
: >"$buildlog"
log "building into $cache_dir (log: $buildlog while it runs)"

# --- Kernel -----------------------------------------------------------------
# Its own lock (taken after the guest lock, always in that order): guests
# that differ only in init.sh share one kernel build.
exec 8>"$cache_root/kernel-$khash.lock"
flock 8
if complete "$kernel_dir" "${kernel_files[@]}"; then
    log "kernel cached: $kernel_dir"
else
    build_kernel "$work/kernel"
    rm -rf "$kernel_dir"      # an incomplete leftover, if any
    mv "$work/kernel" "$kernel_dir"
    log "kernel built: $kernel_dir"
fi
for f in vmlinux bzImage vmlinux-int3patched kernel.config; do
    cp "$kernel_dir/$f" "$stage/$f"
done
gen_init_cpio=$work/gen_init_cpio
cp "$kernel_dir/gen_init_cpio" "$gen_init_cpio"
exec 8>&-

# --- Root filesystem ----------------------------------------------------------
log "assembling the busybox root filesystem"
root=$work/rootfs
# /mnt: where init mounts a data drive for its blk check.
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,root,etc,mnt}
cp "$busybox" "$root/bin/busybox"
chmod 0755 "$root/bin/busybox"
# One symlink per applet, except busybox's own init/linuxrc: /sbin/init is
# our script.
"$busybox" --list-full | while read -r applet; do
    case "$applet" in
        bin/busybox | sbin/init | linuxrc) continue ;;
    esac
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
done
install -m 0755 "$init_script" "$root/init"
# The vsock tests' guest side (libc only, static: the guest has no libraries).
cc -O2 -static -Wall -Wextra -Werror -o "$root/bin/vsock-helper" "$vsock_helper" >>"$buildlog" 2>&1 ||
    die "cannot build vsock-helper (see $buildlog)"
install -m 0755 "$init_script" "$root/sbin/init"
chmod 1777 "$root/tmp"
chmod 0700 "$root/root"

# initrd.cpio: uncompressed newc, written by the kernel's own gen_init_cpio
# from a list, so every entry is owned by root and /dev/console exists
# without mknod (the kernel opens it before running /init).
{
    (cd "$root" && find . -mindepth 1 | LC_ALL=C sort) | while read -r p; do
        p=${p#.}
        mode=$(stat -c %a "$root$p")
        if [ -L "$root$p" ]; then
            echo "slink $p $(readlink "$root$p") 0777 0 0"
        elif [ -d "$root$p" ]; then
            echo "dir $p $mode 0 0"
        else
            echo "file $p $root$p $mode 0 0"
        fi
    done
    echo "nod /dev/console 0600 0 0 c 5 1"
} >"$work/initrd.list"
"$gen_init_cpio" "$work/initrd.list" >"$stage/initrd.cpio" 2>>"$buildlog"

# rootfs.ext4: the same tree. No /dev/console needed here: the kernel opens
# the console on its built-in initramfs before mounting this root, and
# DEVTMPFS_MOUNT fills /dev afterwards.
mke2fs -q -F -t ext4 -L ember-root -E root_owner=0:0 -d "$root" \
    "$stage/rootfs.ext4" 32M >>"$buildlog" 2>&1
e2fsck -fn "$stage/rootfs.ext4" >>"$buildlog" 2>&1 || die "rootfs.ext4 fails e2fsck"

# Keep the cpio list next to the artifacts (and kernel.config), for reference.
cp "$work/initrd.list" "$stage/initrd.list"

# --- Publish -------------------------------------------------------------------
rm -rf "$cache_dir"      # an incomplete leftover, if any
mv "$stage" "$cache_dir"
log "built: $cache_dir"
install_outputs
