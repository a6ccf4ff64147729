#!/usr/bin/env bash
# The main job on the shipped default profile: build plugjail, validate the default
# profile, and show in plain words what a plugin jailed by it may do.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools

cargo build --release --locked --bins
plugjail=target/release/plugjail
"$plugjail" check profiles/default.yaml
"$plugjail" explain profiles/default.yaml
