#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests, kernel tests and the hostile
# jail tests. The tests run rootless themselves (via setpriv as uid 65534) where they need
# to, so run this as root to cover both. Installs what the tests need on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo build --locked --bins
cargo test --locked -- "$@"
