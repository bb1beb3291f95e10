#!/usr/bin/env bash
# Builds Debian's own libmicrohttpd (the same source version as the installed
# libmicrohttpd-dev, Debian patches applied) as a static library without TLS,
# cached in ~/.cache/ember/libmicrohttpd-notls-<version>/.
#
# Why: Ember's API is a local Unix socket and never speaks HTTPS, but Debian's
# shared libmicrohttpd links GnuTLS, which drags nine more libraries into every
# ember process: ~3.7 M instructions of dynamic linking and GnuTLS start-up per
# exec (3/4 of ember's start-up) and ~0.9 MiB of PSS per VM, plus TLS code an
# attacker could reach in the process. The Makefile links this copy when it is
# present and falls back to the system library otherwise, so a host without
# network access to Debian's source archive still builds (only slower to start).
set -euo pipefail
cache_root=${EMBER_CACHE:-$HOME/.cache/ember}
ver=$(dpkg-query -W -f='${source:Version}' libmicrohttpd-dev 2>/dev/null) ||
  { echo "mhd: libmicrohttpd-dev is not installed (make deps)"; exit 1; }
upstream=${ver%-*}
dest=$cache_root/libmicrohttpd-notls-$ver
[ -f "$dest/lib/libmicrohttpd.a" ] && { echo "mhd: reusing $dest"; exit 0; }
mkdir -p "$cache_root"
exec 9>"$dest.lock"; flock 9
[ -f "$dest/lib/libmicrohttpd.a" ] && { echo "mhd: reusing $dest"; exit 0; }

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# A private deb-src list built from the host's own deb entries, so the host's
# apt configuration is left untouched.
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && sed -e 's/^Types:.*/Types: deb-src/' "$f" && echo
  done
} > "$work/src.sources"
{ [ -f /etc/apt/sources.list ] && sed -n 's/^deb \(.*\)/deb-src \1/p' /etc/apt/sources.list; true; } > "$work/src.list"
mkdir -p "$work/lists/partial" "$work/archives/partial"
apt_opts=(-o Dir::Etc::SourceList="$work/src.list" -o Dir::Etc::SourceParts="$work/parts"
          -o Dir::State::Lists="$work/lists" -o Dir::Cache::Archives="$work/archives" -o APT::Sandbox::User=root)
mkdir -p "$work/parts" && cp "$work/src.sources" "$work/parts/src.sources"
echo "mhd: fetching libmicrohttpd $ver source from Debian"
timeout 300 apt-get "${apt_opts[@]}" -qq update >/dev/null 2>&1 ||
  { echo "mhd: cannot update a deb-src index (offline?)"; exit 1; }
(cd "$work" && timeout 300 apt-get "${apt_opts[@]}" -qq source --download-only "libmicrohttpd=$ver" >/dev/null 2>&1) ||
  { echo "mhd: cannot download the libmicrohttpd $ver source"; exit 1; }
# apt checked the files against the signed Release index; dpkg-source applies Debian's patches.
(cd "$work" && dpkg-source --no-check -x libmicrohttpd_*.dsc src >/dev/null) ||
  { echo "mhd: dpkg-source -x failed"; exit 1; }
echo "mhd: building a static libmicrohttpd without TLS"
(cd "$work/src" &&
  ./configure -q --prefix="$work/inst" --disable-shared --enable-static --with-pic \
    --disable-https --without-gnutls --disable-curl --disable-doc --disable-examples >"$work/configure.log" 2>&1 &&
  make -s -j"$(nproc)" -C src/microhttpd install >"$work/make.log" 2>&1) ||
  { echo "mhd: build failed:"; tail -20 "$work/configure.log" "$work/make.log" 2>/dev/null; exit 1; }
if nm -u "$work/inst/lib/libmicrohttpd.a" | grep -q gnutls; then
  echo "mhd: the built library still refers to GnuTLS"; exit 1
fi
rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/lib" "$dest.tmp/include"
cp "$work/inst/lib/libmicrohttpd.a" "$dest.tmp/lib/"
cp "$work/src/src/include/microhttpd.h" "$dest.tmp/include/"
mv "$dest.tmp" "$dest"
echo "mhd: built $dest"
