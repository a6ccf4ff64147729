#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, kernel tests, the hostile jail
# and plugin tests, and (as root) the cgroup v2 tests in a qemu VM. The tests run rootless
# themselves (via setpriv as uid 65534) where they need to, so run this as root to cover
# both. Installs what the tests need on a fresh machine.
#
#   scripts/test.sh               everything
#   PLUGJAIL_SKIP_VM=1 scripts/test.sh   everything but the VM (about 30 s less)
#   scripts/test.sh FILTER...     passes the arguments to the test binaries
#
# Every part runs even when an earlier one failed (only a build failure stops it, since
# nothing after could run), and every test binary runs (`cargo test --no-fail-fast`):
# one failing binary does not hide the others' results. The script then lists what
# failed and exits 1 if anything did.
set -uo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools
need_node_tools || echo "scripts/test.sh: going on without the Node tools" >&2

failed=()
run() {
  local what=$1
  shift
  if ! "$@"; then
    echo "scripts/test.sh: $what failed" >&2
    failed+=("$what")
  fi
}

run "cargo fmt --check" cargo fmt --all -- --check
run "cargo clippy" cargo clippy --all-targets --locked -- -D warnings
if ! cargo build --locked --bins; then
  echo "scripts/test.sh: cargo build failed; nothing else can run" >&2
  exit 1
fi
run "cargo test" cargo test --locked --no-fail-fast -- "$@"
run "cargo doc (no warnings)" env RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --workspace --quiet

if [ "${PLUGJAIL_SKIP_VM:-0}" = 1 ]; then
  echo "cgroup v2 VM tests: skipped (PLUGJAIL_SKIP_VM=1)"
elif [ "$(id -u)" != 0 ]; then
  # Booting the VM needs no root, but installing qemu does, and the guest tests run as
  # root inside; CI runs as root.
  if [ "${PLUGJAIL_TEST_STRICT:-0}" = 1 ]; then
    echo "cgroup v2 VM tests need root (PLUGJAIL_TEST_STRICT=1: failing)" >&2
    failed+=("cgroup v2 VM tests (not root)")
  else
    echo "cgroup v2 VM tests: skipped (not root)"
  fi
else
  run "cgroup v2 VM tests (scripts/vm-test.sh)" scripts/vm-test.sh
fi

# The Debian package, installed with apt and used from the installed paths only (reusing
# the debug build above; about 20 s). It installs and purges a system package, so it runs
# in CI (PLUGJAIL_TEST_STRICT=1, root) or when asked (PLUGJAIL_DEB_TEST=1).
if [ "$(id -u)" = 0 ] && [ "${PLUGJAIL_TEST_STRICT:-0}${PLUGJAIL_DEB_TEST:-0}" != 00 ]; then
  # With plugjail statically linked, as shipped (scripts/lib/static.sh).
  # shellcheck source=scripts/lib/static.sh
  . scripts/lib/static.sh
  if static=$(static_bins target/debug); then
    run "Debian package (scripts/deb-test.sh)" scripts/deb-test.sh --bindir-from "$static"
  else
    run "static plugjail build (scripts/lib/static.sh)" false
  fi
else
  echo "Debian package test: skipped (runs as root under PLUGJAIL_TEST_STRICT=1 or PLUGJAIL_DEB_TEST=1)"
fi

if ((${#failed[@]})); then
  echo >&2
  echo "scripts/test.sh: ${#failed[@]} part(s) failed:" >&2
  printf '  - %s\n' "${failed[@]}" >&2
  echo "(for cargo test, its summary above names every failing test binary and test)" >&2
  exit 1
fi
echo "scripts/test.sh: all parts passed"
