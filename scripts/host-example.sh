#!/usr/bin/env bash
# The plugin host example (examples/plugin_host.rs): builds plugjail and the example
# plugins, then runs a small Rust host over examples/host/host.yaml that prints each call's
# answer and every lifecycle event (docs/host.md).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bins --example plugin_host
make -s -C examples/plugins
target/release/examples/plugin_host
