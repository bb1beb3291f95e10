#!/usr/bin/env bash
# tests/kvmhost/qemu-backports.sh - a newer QEMU for the emulated KVM host,
# unpacked into a cache folder; the system's QEMU and apt sources stay as
# they are.
#
# Debian 12's QEMU (7.2) emulates nested SVM well enough for one vCPU, but a
# two-vCPU emulated host under load faults (docs/testing.md, "The emulator's
# nested paging"): its guests triple-fault now and then, and once its own
# kernel overflowed its stack in a page-fault loop. bookworm-backports has a
# newer QEMU; this fetches its x86 emulator and firmware with apt (no other
# network) and prints the two variables tests/kvmhost/run takes:
#
#   eval "$(tests/kvmhost/qemu-backports.sh)"   # sets KVMHOST_QEMU, KVMHOST_QEMU_DATA
#
# Environment: EMBER_CACHE (default ~/.cache/ember).
set -euo pipefail
cache=${EMBER_CACHE:-$HOME/.cache/ember}
lists=$cache/apt-backports
mkdir -p "$lists/parts" "$lists/state/lists/partial"
cat >"$lists/parts/backports.sources" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$lists/parts"
          -o "Dir::State::Lists=$lists/state/lists" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" -qq update >&2 || { echo "qemu-backports: apt-get update of bookworm-backports failed" >&2; exit 1; }
ver=$(apt-cache "${apt_opts[@]}" show qemu-system-x86 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[ -n "$ver" ] || { echo "qemu-backports: bookworm-backports has no qemu-system-x86" >&2; exit 1; }
dir=$cache/qemu-${ver//[:~+]/_}
if [ ! -x "$dir/root/usr/bin/qemu-system-x86_64" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get "${apt_opts[@]}" -qq download qemu-system-x86 qemu-system-common qemu-system-data seabios >&2) ||
    { echo "qemu-backports: apt-get download failed" >&2; exit 1; }
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
  missing=$(ldd "$tmp/root/usr/bin/qemu-system-x86_64" | awk '/not found/ {print $1}')
  [ -z "$missing" ] || { echo "qemu-backports: libraries missing: $missing (apt-get install them)" >&2; exit 1; }
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$tmp/root" "$dir/root"
fi
"$dir/root/usr/bin/qemu-system-x86_64" -version | head -1 >&2
echo "export KVMHOST_QEMU=$dir/root/usr/bin/qemu-system-x86_64 KVMHOST_QEMU_DATA=$dir/root/usr/share/qemu"
