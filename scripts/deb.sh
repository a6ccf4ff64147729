#!/usr/bin/env bash
# Builds the Debian package: target/debian/plugjail_VERSION-1_ARCH.deb, installable with
#   apt install ./target/debian/plugjail_*.deb
#
#   scripts/deb.sh [--bindir-from DIR]
#
# It stages scripts/install.sh's layout with prefix /usr (so the .deb holds exactly what a
# prefix install holds: /usr/bin/plugjail, /usr/libexec/plugjail/plugjail-stub,
# /usr/share/plugjail/profiles/, headers, pkg-config, CMake, man pages, completions), moves
# the zsh completion to Debian's vendor directory, strips the binaries, writes the control
# file and runs `dpkg-deb --build`. Needs cargo (unless --bindir-from gives release
# binaries), dpkg-deb, and binutils (objdump, strip; installed with gcc).
#
# Why not cargo-deb: it is built from source by `cargo install cargo-deb`, which took
# 2 min 37 s on this project's 2-core machines, more than building plugjail itself; this
# script needs only what Debian already has (docs/install.md).
set -euo pipefail
umask 022
root=$(cd "$(dirname "$0")/.." && pwd)

bindir_from=
while (($#)); do
  case $1 in
    --bindir-from) bindir_from=${2:?--bindir-from needs a directory}; shift 2 ;;
    --bindir-from=*) bindir_from=${1#*=}; shift ;;
    -h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    *) echo "deb.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
fail() { echo "deb.sh: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg objdump strip; do
  command -v "$tool" >/dev/null || fail "$tool is needed (apt-get install dpkg binutils)"
done

target=${CARGO_TARGET_DIR:-$root/target}
if [ -z "$bindir_from" ]; then
  # shellcheck source=scripts/lib/static.sh
  . "$root/scripts/lib/static.sh"
  (cd "$root" && cargo build --release --locked --bins)
  bindir_from=$(cd "$root" && static_bins "$target/release" --release)
  case "$bindir_from" in /*) ;; *) bindir_from=$root/$bindir_from ;; esac
fi
out=$target/debian
stage=$out/stage
rm -rf -- "$stage"
mkdir -p -- "$out"

"$root/scripts/install.sh" --prefix /usr --destdir "$stage" --bindir-from "$bindir_from"
# dpkg keeps the list of files; install.sh's own list would invite `install.sh
# --uninstall` behind dpkg's back.
rm -f -- "$stage/usr/share/plugjail/installed-files"
# Debian's zsh looks in vendor-completions, not site-functions.
mkdir -p -- "$stage/usr/share/zsh/vendor-completions"
mv -- "$stage/usr/share/zsh/site-functions/_plugjail" "$stage/usr/share/zsh/vendor-completions/"
rmdir -- "$stage/usr/share/zsh/site-functions"
strip --strip-unneeded -- "$stage/usr/bin/plugjail" "$stage/usr/libexec/plugjail/plugjail-stub"

bins=("$stage/usr/bin/plugjail" "$stage/usr/libexec/plugjail/plugjail-stub")
version=$("$bindir_from/plugjail" --version | sed -n 's/^plugjail //p')
[ -n "$version" ] || fail "cannot read the version of $bindir_from/plugjail"
arch=$(dpkg --print-architecture)

# Depends, from the libraries the binaries need (their DT_NEEDED entries). glibc's
# version is the newest GLIBC_ symbol version they use; a library not listed here stops
# the build rather than ship a package that cannot load.
glibc=$(objdump -T -- "${bins[@]}" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' |
  sort -uV | tail -n1)
declare -A depends=([libc6]="libc6 (>= ${glibc:?no GLIBC_ symbol versions found})")
while read -r lib; do
  case $lib in
    libc.so.6 | libm.so.6 | libdl.so.2 | libpthread.so.0 | librt.so.1 | ld-linux*) ;;
    libgcc_s.so.1) depends[libgcc-s1]="libgcc-s1" ;;
    *) fail "no Debian package known for $lib, which the binaries need: add it to scripts/deb.sh" ;;
  esac
done < <(objdump -p -- "${bins[@]}" | awk '$1 == "NEEDED" { print $2 }' | sort -u)

mkdir -p -- "$stage/DEBIAN"
{
  echo "Package: plugjail"
  echo "Version: $version-1"
  echo "Architecture: $arch"
  # A placeholder address (.invalid, RFC 2606) until the project has a public home.
  echo "Maintainer: ${DEBFULLNAME:-plugjail developers} <${DEBEMAIL:-plugjail@maintainers.invalid}>"
  echo "Installed-Size: $(du -sk --exclude=DEBIAN -- "$stage" | cut -f1)"
  echo "Depends: $(printf '%s\n' "${depends[@]}" | sort | paste -sd, | sed 's/,/, /g')"
  echo "Suggests: g++ | c++-compiler, pkgconf | pkg-config, cmake"
  echo "Section: utils"
  echo "Priority: optional"
  echo "Description: jail runner for untrusted C/C++ plugins"
  echo " plugjail runs plugins (shared objects) and programs in a Linux jail built from a"
  echo " YAML profile: namespaces, a minimal root, Landlock, seccomp and cgroup limits."
  echo " A crash, hang, memory blow-up or escape attempt ends in one structured verdict;"
  echo " the host application keeps running."
  echo " ."
  echo " This package holds the plugjail command and its in-jail stub, the shipped"
  echo " profiles (/usr/share/plugjail/profiles), the C and C++ headers for plugins and"
  echo " hosts, and their pkg-config and CMake packages."
} >"$stage/DEBIAN/control"

deb=$out/plugjail_${version}-1_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
rm -rf -- "$stage"
echo "deb.sh: built $deb"
echo "deb.sh: install it with: apt install $deb"
