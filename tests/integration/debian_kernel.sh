# Debian's packaged cloud kernel for t_interp_debian_kernel (sourced).
# debian_kernel: prints the path of its vmlinuz, fetching the package with
# `apt-get download` (no installation) into ~/.cache/ember/debian-kernel/
# when missing; on failure prints why on stderr and returns 1. The
# integration runner calls it on this machine before tests run inside the
# emulated KVM host, which has no network.
debian_kernel() {
  local cache=${EMBER_DEBIAN_KERNEL_CACHE:-$HOME/.cache/ember/debian-kernel} kernel pkg deb
  kernel=$(ls "$cache"/x/boot/vmlinuz-* 2>/dev/null | head -1)
  if [ -z "$kernel" ]; then
    mkdir -p "$cache" || { echo "cannot create $cache" >&2; return 1; }
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    [ -n "$pkg" ] || { echo "apt does not know linux-image-cloud-amd64 (no Debian package lists: apt-get update?)" >&2; return 1; }
    (cd "$cache" && timeout 600 apt-get download "$pkg" >/dev/null 2>&1) ||
      { echo "cannot fetch $pkg with apt-get download (offline?)" >&2; return 1; }
    deb=$(ls "$cache"/"$pkg"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || { echo "apt-get download left no $pkg .deb in $cache" >&2; return 1; }
    rm -rf "$cache/x" && dpkg-deb -x "$deb" "$cache/x" || { echo "dpkg-deb -x $deb failed" >&2; return 1; }
    kernel=$(ls "$cache"/x/boot/vmlinuz-* 2>/dev/null | head -1)
    [ -n "$kernel" ] || { echo "no boot/vmlinuz-* in $deb" >&2; return 1; }
  fi
  echo "$kernel"
}
