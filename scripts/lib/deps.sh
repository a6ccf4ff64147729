# Installs the system tools plugjail's tests and demos need, when they are missing.
# Sourced by the scripts in scripts/; needs root (or the tools already present).

need_tools() {
  local missing=()
  command -v cc >/dev/null || missing+=(gcc)
  command -v c++ >/dev/null || missing+=(g++)
  command -v make >/dev/null || missing+=(make)
  command -v setpriv >/dev/null || missing+=(util-linux)
  command -v bwrap >/dev/null || missing+=(bubblewrap)
  # The C++ client's out-of-tree project and the install tests (find_package, pkg-config).
  command -v cmake >/dev/null || missing+=(cmake)
  command -v pkg-config >/dev/null || missing+=(pkg-config)
  command -v cargo >/dev/null || { echo "plugjail: cargo is needed (install Rust)" >&2; exit 1; }
  if ((${#missing[@]})); then
    if [ "$(id -u)" != 0 ]; then
      echo "plugjail: please install: ${missing[*]}" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# The pinned Node tools of tests/editor (cached; see scripts/lib/node-tools.sh), exported
# as PLUGJAIL_NODE_TOOLS for the test that runs the real YAML language server. Only the
# test suite needs them (scripts/test.sh), not an install. Returns 1 (after saying why)
# instead of exiting: the rest of the suite can run, and that one test then skips, or
# fails under PLUGJAIL_TEST_STRICT=1.
need_node_tools() {
  local dir
  if ! command -v npm >/dev/null; then
    if [ "$(id -u)" != 0 ]; then
      echo "plugjail: please install npm (for tests/editor_schema.rs)" >&2
      return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null || return 1
  fi
  dir="$(bash "$(dirname "${BASH_SOURCE[0]}")/node-tools.sh")" || {
    echo "plugjail: cannot install the Node tools of tests/editor" >&2
    return 1
  }
  export PLUGJAIL_NODE_TOOLS="$dir"
}
