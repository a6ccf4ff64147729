#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, kernel tests, the hostile jail
# and plugin tests, and (as root) the cgroup v2 tests in a qemu VM. The tests run rootless
# themselves (via setpriv as uid 65534) where they need to, so run this as root to cover
# both. Installs what the tests need on a fresh machine.
#
#   scripts/test.sh               everything
#   PLUGJAIL_SKIP_VM=1 scripts/test.sh   everything but the VM (about 30 s less)
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked --bins
cargo test --locked -- "$@"

if [ "${PLUGJAIL_SKIP_VM:-0}" = 1 ]; then
  echo "cgroup v2 VM tests: skipped (PLUGJAIL_SKIP_VM=1)"
elif [ "$(id -u)" != 0 ]; then
  # Booting the VM needs no root, but installing qemu does, and the guest tests run as
  # root inside; CI runs as root.
  if [ "${PLUGJAIL_TEST_STRICT:-0}" = 1 ]; then
    echo "cgroup v2 VM tests need root (PLUGJAIL_TEST_STRICT=1: failing)" >&2
    exit 1
  fi
  echo "cgroup v2 VM tests: skipped (not root)"
else
  scripts/vm-test.sh
fi
