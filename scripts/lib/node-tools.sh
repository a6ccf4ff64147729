#!/usr/bin/env bash
# Installs the Node tools tests/editor_schema.rs drives (yaml-language-server, the YAML
# language server editors use, and ajv), pinned by tests/editor/package-lock.json, into a
# cache outside the checkout: $PLUGJAIL_NODE_TOOLS, else ~/.cache/plugjail/node-tools.
# Cheap when cached: nothing is installed while the cache holds the same lock file. Prints
# the directory on stdout. Needs npm (scripts/lib/deps.sh installs it).
set -euo pipefail
src="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tests/editor" && pwd)"
dir="${PLUGJAIL_NODE_TOOLS:-${XDG_CACHE_HOME:-${HOME:?neither XDG_CACHE_HOME nor HOME is set}/.cache}/plugjail/node-tools}"
if ! cmp -s "$src/package-lock.json" "$dir/package-lock.json" ||
  [ ! -x "$dir/node_modules/.bin/yaml-language-server" ]; then
  command -v npm >/dev/null || { echo "node-tools.sh: npm is needed" >&2; exit 1; }
  # A fresh directory next to the cache, then a rename: a half-done install is never
  # taken for a finished one.
  mkdir -p "$(dirname "$dir")"
  tmp="$(mktemp -d "$dir.XXXXXX")"
  cp "$src/package.json" "$src/package-lock.json" "$tmp/"
  (cd "$tmp" && npm ci --no-audit --no-fund --silent >&2)
  rm -rf "$dir"
  mv "$tmp" "$dir"
fi
echo "$dir"
