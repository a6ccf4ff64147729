#!/usr/bin/env bash
# The main job on the shipped default profile: build plugjail, validate the default
# profile, show in plain words what it allows, then run a program in that jail and print
# the verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
need_tools

cargo build --release --locked --bins
plugjail=target/release/plugjail
"$plugjail" check profiles/default.yaml
"$plugjail" explain profiles/default.yaml
echo
echo "== uname -a, run in the default jail (note the hostname), verdict below"
report=$(mktemp)
trap 'rm -f "$report"' EXIT
"$plugjail" exec --profile profiles/default.yaml --report "$report" -- /usr/bin/uname -a
cat "$report"; echo
