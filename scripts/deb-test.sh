#!/usr/bin/env bash
# Builds the Debian package (scripts/deb.sh), installs it on this machine with apt, and
# uses it from the installed paths only: a plugin built against /usr/include/plugjail.h
# (no -I), called by /usr/bin/plugjail under /usr/share/plugjail/profiles/default.yaml from
# a directory outside the checkout, the stub found in /usr/libexec/plugjail; then
# pkg-config and CMake without search paths, the man page and completions. The package is
# removed (purged) at the end, pass or fail. Needs root; refuses to run where a plugjail
# package is already installed (it would remove it).
#
#   scripts/deb-test.sh [--bindir-from DIR]   (DIR: already-built release binaries)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

[ "$(id -u)" = 0 ] || { echo "deb-test.sh: needs root (apt install)" >&2; exit 1; }
if dpkg-query -W -f '${Status}' plugjail 2>/dev/null | grep -q 'installed'; then
  echo "deb-test.sh: a plugjail package is already installed here; remove it first" >&2
  exit 1
fi
# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools

start=$SECONDS
phase() { echo "== deb-test: $* (at $((SECONDS - start)) s)"; }

phase "building the package"
scripts/deb.sh "$@"
deb=$(ls -t "${CARGO_TARGET_DIR:-$root/target}"/debian/plugjail_*.deb | head -n1)

work=$(mktemp -d)
chmod 755 "$work"
cleanup() {
  local rc=$?
  phase "removing the package"
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq plugjail >/dev/null || rc=1
  if [ -e /usr/bin/plugjail ] || [ -e /usr/libexec/plugjail ] || [ -e /usr/share/plugjail ]; then
    echo "deb-test.sh: FAIL: files left after purge" >&2
    rc=1
  fi
  rm -rf -- "$work"
  if ((rc == 0)); then
    echo "deb-test.sh: passed in $((SECONDS - start)) s"
  else
    echo "deb-test.sh: FAILED after $((SECONDS - start)) s" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

phase "apt install $deb"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null

fail() { echo "deb-test.sh: FAIL: $*" >&2; exit 1; }
# From here on nothing comes from the checkout but the plugin's source text.
cd "$work"
[ "$(command -v plugjail)" = /usr/bin/plugjail ] || fail "plugjail on PATH is $(command -v plugjail)"
[ -x /usr/libexec/plugjail/plugjail-stub ] || fail "no stub in /usr/libexec/plugjail"
[ ! -e /usr/bin/plugjail-stub ] || fail "a stub next to /usr/bin/plugjail: the libexec lookup is not tested"

phase "a plugin against /usr/include/plugjail.h, called by /usr/bin/plugjail"
cp "$root/examples/plugins/hello.cpp" "$work/hello.cpp"
c++ -std=c++17 -O2 -shared -fPIC -o hello.so hello.cpp
chmod 644 hello.so
plugjail check /usr/share/plugjail/profiles/*.yaml
out=$(printf world | plugjail call --profile /usr/share/plugjail/profiles/default.yaml \
  --plugin hello.so --method greet --input - --report verdict.json)
[ "$out" = "hello, world" ] || fail "plugjail call printed '$out'"
grep -q '"outcome":"ok"' verdict.json || fail "verdict: $(cat verdict.json)"
echo "hello.so answered: $out"

if command -v pkg-config >/dev/null; then
  phase "pkg-config, no search path"
  [ "$(pkg-config --modversion plugjail)" = "$(plugjail --version | sed 's/^plugjail //')" ] ||
    fail "pkg-config --modversion plugjail: $(pkg-config --modversion plugjail)"
  [ "$(pkg-config --variable=profilesdir plugjail)" = /usr/share/plugjail/profiles ] ||
    fail "profilesdir: $(pkg-config --variable=profilesdir plugjail)"
  # shellcheck disable=SC2046
  c++ -std=c++17 -shared $(pkg-config --cflags plugjail) -o hello-pc.so hello.cpp
else
  echo "deb-test: pkg-config not installed: its check skipped"
fi

if command -v cmake >/dev/null; then
  phase "CMake find_package(plugjail CONFIG), no prefix path"
  mkdir cm
  cp hello.cpp cm/
  cat >cm/CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(deb_consumer CXX)
find_package(plugjail 0.1 CONFIG REQUIRED)
plugjail_add_plugin(hello hello.cpp)
if(NOT plugjail_EXECUTABLE STREQUAL "/usr/bin/plugjail")
  message(FATAL_ERROR "plugjail_EXECUTABLE is ${plugjail_EXECUTABLE}")
endif()
EOF
  cmake -S cm -B cm/build >/dev/null
  cmake --build cm/build >/dev/null
  out=$(plugjail call --profile "/usr/share/plugjail/profiles/default.yaml" \
    --plugin cm/build/hello.so --method greet </dev/null)
  [ "$out" = "hello, " ] || fail "the CMake-built plugin answered '$out'"
else
  echo "deb-test: cmake not installed: its check skipped"
fi

phase "man pages and completions"
for f in /usr/share/man/man1/plugjail.1.gz /usr/share/man/man1/plugjail-call.1.gz \
  /usr/share/bash-completion/completions/plugjail \
  /usr/share/zsh/vendor-completions/_plugjail \
  /usr/share/fish/vendor_completions.d/plugjail.fish; do
  [ -s "$f" ] || fail "$f is missing"
done
zcat /usr/share/man/man1/plugjail.1.gz | grep -q 'usr/libexec/plugjail/plugjail\\-stub' ||
  fail "plugjail.1 does not name the installed stub"
