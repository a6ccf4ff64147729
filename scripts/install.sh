#!/usr/bin/env bash
# Installs plugjail into PREFIX (default /usr/local) in the layout docs/install.md
# describes: the binary, its stub, the profiles, the C/C++ headers, pkg-config and CMake
# packages, man pages and shell completions.
#
#   scripts/install.sh [--prefix DIR] [--destdir DIR] [--bindir-from DIR] [--no-docs]
#   scripts/install.sh --uninstall [--prefix DIR] [--destdir DIR]
#
#   --prefix DIR       where plugjail will live (absolute; default /usr/local)
#   --destdir DIR      stage the files under DIR/PREFIX instead (for packaging); the
#                      DESTDIR environment variable does the same
#   --bindir-from DIR  take plugjail, plugjail-stub and plugjail-gendocs from DIR (already
#                      built, e.g. target/release) instead of running
#                      `cargo build --release --locked --bins`
#   --no-docs          no man pages and completions (then plugjail-gendocs is not needed)
#   --uninstall        remove what an earlier install into PREFIX installed (it lists its
#                      files in PREFIX/share/plugjail/installed-files)
#
# It runs from any directory and writes nothing in the source tree but target/ (when it
# builds).
set -euo pipefail
umask 022 # whatever the caller's umask, installed directories are 0755
root=$(cd "$(dirname "$0")/.." && pwd)

prefix=/usr/local
destdir=${DESTDIR:-}
bindir_from=
docs=1
uninstall=0
usage() { sed -n '6,17p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case $1 in
    --prefix) prefix=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --destdir) destdir=${2:?--destdir needs a directory}; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --bindir-from) bindir_from=${2:?--bindir-from needs a directory}; shift 2 ;;
    --bindir-from=*) bindir_from=${1#*=}; shift ;;
    --no-docs) docs=0; shift ;;
    --uninstall) uninstall=1; shift ;;
    -h | --help) usage ;;
    *) echo "install.sh: unknown argument $1" >&2; usage ;;
  esac
done

fail() { echo "install.sh: $*" >&2; exit 1; }
case $prefix in
  /*) ;;
  *) [ -z "$destdir" ] || fail "--prefix must be absolute with --destdir (got $prefix)"
     prefix=$(realpath -m -- "$prefix") ;;
esac
prefix=${prefix%/}
[ -n "$prefix" ] || fail "--prefix / is not supported (use /usr)"
# The prefix is written into the pkg-config files (by sed) and man pages.
case $prefix in
  *[\|\&\\]* | *$'\n'*) fail "--prefix must not contain |, &, \\ or a newline (got $prefix)" ;;
esac
if [ -n "$destdir" ]; then
  destdir=$(realpath -m -- "$destdir")
fi

# The layout (docs/install.md). Every path below is as seen once installed; files are
# written under $destdir$path.
bindir=$prefix/bin
libexecdir=$prefix/libexec/plugjail
datadir=$prefix/share/plugjail
profilesdir=$datadir/profiles
schemadir=$datadir/schema
includedir=$prefix/include
pkgconfigdir=$prefix/lib/pkgconfig
cmakedir=$prefix/lib/cmake/plugjail
mandir=$prefix/share/man/man1
docdir=$prefix/share/doc/plugjail
bashdir=$prefix/share/bash-completion/completions
zshdir=$prefix/share/zsh/site-functions
fishdir=$prefix/share/fish/vendor_completions.d
manifest=$datadir/installed-files

if ((uninstall)); then
  [ -f "$destdir$manifest" ] || fail "$destdir$manifest not found: nothing installed there by this script"
  mapfile -t files <"$destdir$manifest"
  for f in "${files[@]}"; do
    rm -f -- "$destdir$f"
  done
  # Then each directory left empty, up to (not including) the prefix.
  for f in "${files[@]}"; do
    d=$(dirname -- "$destdir$f")
    while [ "${d#"$destdir$prefix"/}" != "$d" ] && rmdir -- "$d" 2>/dev/null; do
      d=$(dirname -- "$d")
    done
  done
  echo "install.sh: removed plugjail from $destdir$prefix"
  exit 0
fi

if [ -z "$bindir_from" ]; then
  # plugjail statically linked, the stub and gendocs beside it (scripts/lib/static.sh).
  # shellcheck source=scripts/lib/static.sh
  . "$root/scripts/lib/static.sh"
  (cd "$root" && cargo build --release --locked --bins)
  bindir_from=$(cd "$root" && static_bins "${CARGO_TARGET_DIR:-target}/release" --release)
  case "$bindir_from" in /*) ;; *) bindir_from=$root/$bindir_from ;; esac
fi
bins=(plugjail plugjail-stub)
((docs)) && bins+=(plugjail-gendocs)
for b in "${bins[@]}"; do
  [ -x "$bindir_from/$b" ] ||
    fail "$bindir_from/$b is missing (cargo build --bins builds it; --no-docs needs no plugjail-gendocs)"
done
version=$("$bindir_from/plugjail" --version | sed -n 's/^plugjail //p')
[ -n "$version" ] || fail "cannot read the version of $bindir_from/plugjail"

installed=()
# put MODE SRC DEST: one file, its directories created 0755.
put() {
  install -D -m "$1" -- "$2" "$destdir$3"
  installed+=("$3")
}
# put_output MODE DEST COMMAND...: what COMMAND prints, as a file (no pipeline: put must run
# in this shell to record the file).
put_output() {
  local mode=$1 dest=$2 tmp
  shift 2
  tmp=$(mktemp)
  "$@" >"$tmp" || { rm -f -- "$tmp"; fail "$* failed"; }
  put "$mode" "$tmp" "$dest"
  rm -f -- "$tmp"
}
# Substitutes @PREFIX@ and @VERSION@ in a template.
subst() { sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" -- "$1"; }

# The binary and its stub: plugjail looks for the stub next to itself, then in
# ../libexec/plugjail/ (src/plugin_mode/mod.rs, stub_candidates).
put 0755 "$bindir_from/plugjail" "$bindir/plugjail"
put 0755 "$bindir_from/plugjail-stub" "$libexecdir/plugjail-stub"

# The shipped profiles, and the JSON Schemas for editors (docs/profiles.md).
for p in "$root"/profiles/*.yaml; do
  put 0644 "$p" "$profilesdir/${p##*/}"
done
put_output 0644 "$schemadir/profile.schema.json" "$bindir_from/plugjail" schema
put_output 0644 "$schemadir/host.schema.json" "$bindir_from/plugjail" schema --host

# Headers: the plugin ABI, and whatever host clients include/plugjail/ holds.
put 0644 "$root/include/plugjail.h" "$includedir/plugjail.h"
shopt -s nullglob
for h in "$root"/include/plugjail/*.h*; do
  put 0644 "$h" "$includedir/plugjail/${h##*/}"
done
shopt -u nullglob

# pkg-config and CMake packages.
for pc in plugjail plugjail-host; do
  put_output 0644 "$pkgconfigdir/$pc.pc" subst "$root/packaging/pkgconfig/$pc.pc.in"
done
put 0644 "$root/cmake/plugjailConfig.cmake" "$cmakedir/plugjailConfig.cmake"
put_output 0644 "$cmakedir/plugjailConfigVersion.cmake" \
  subst "$root/cmake/plugjailConfigVersion.cmake.in"

# Documentation.
put 0644 "$root/README.md" "$docdir/README.md"
put 0644 "$root/SECURITY.md" "$docdir/SECURITY.md"
for d in "$root"/docs/*.md; do
  put 0644 "$d" "$docdir/${d##*/}"
done

gen=$(mktemp -d)
trap 'rm -rf -- "$gen"' EXIT

# Man pages and completions, rendered from the CLI's definitions (crates/gendocs).
if ((docs)); then
  "$bindir_from/plugjail-gendocs" man "$gen" "$prefix"
  for m in "$gen"/*.1; do
    gzip -9n -- "$m"
    put 0644 "$m.gz" "$mandir/${m##*/}.gz"
  done
  put_output 0644 "$bashdir/plugjail" "$bindir_from/plugjail-gendocs" completion bash
  put_output 0644 "$zshdir/_plugjail" "$bindir_from/plugjail-gendocs" completion zsh
  put_output 0644 "$fishdir/plugjail.fish" "$bindir_from/plugjail-gendocs" completion fish
fi

installed+=("$manifest")
printf '%s\n' "${installed[@]}" >"$gen/installed-files"
install -D -m 0644 -- "$gen/installed-files" "$destdir$manifest"
echo "install.sh: plugjail $version installed in $destdir$prefix (${#installed[@]} files)"
