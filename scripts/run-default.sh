#!/usr/bin/env bash
# The main job on the shipped default profile: build plugjail and the example plugins,
# validate the default profile, show in plain words what it allows, then call two real
# plugins in that jail and print each result and verdict.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib/deps.sh
. scripts/lib/deps.sh
# shellcheck source=scripts/lib/static.sh
. scripts/lib/static.sh
need_tools

cargo build --release --locked --bins
plugjail="$(static_bins target/release --release)/plugjail"
make -s -C examples/plugins
"$plugjail" check profiles/default.yaml
"$plugjail" explain profiles/default.yaml

report=$(mktemp)
input=$(mktemp)
trap 'rm -f "$report" "$input"' EXIT

echo
echo "== hello.so, method greet, in the default jail: result, then the verdict"
printf 'world' >"$input"
"$plugjail" call --profile profiles/default.yaml --plugin examples/plugins/hello.so \
  --method greet --input "$input" --report "$report"
echo
cat "$report"; echo

echo
echo "== csv2json.so, method convert: untrusted CSV in, JSON out"
printf 'name,lang\nada,"C++, mostly"\nbjarne,C++\n' |
  "$plugjail" call --profile profiles/default.yaml --plugin examples/plugins/csv2json.so \
    --method convert --input - --report "$report"
echo
cat "$report"; echo
