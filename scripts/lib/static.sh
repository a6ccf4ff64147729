# plugjail itself is shipped statically linked (glibc static-pie): it then starts without
# the dynamic loader, which measured 0.6-0.9 ms of every cold start on this machine kind and
# 0.3 MiB of its peak RSS (docs/performance.md, issue 13). The stub stays dynamic: it
# dlopens plugins, whose libstdc++ needs the system's shared libc. Cargo applies
# `crt-static` to every crate of a build, so plugjail is built once more, for the host's
# target triple (which keeps build scripts and proc-macros dynamic), in target/static.
#
#   dir=$(static_bins FROM [CARGO_FLAGS...])
#
# FROM is the ordinary build's directory (target/release or target/debug, already built);
# CARGO_FLAGS select the same profile (--release or nothing). Prints a directory holding
# the static plugjail with copies of FROM's other binaries (the stub, gendocs) beside it,
# laid out like FROM, so that plugjail finds its stub and install.sh takes all three.
# Sourced, and called from the repository root.
static_bins() {
  local from="$1" triple dir b
  shift
  triple="$(rustc -vV | sed -n 's/^host: //p')"
  [ -n "$triple" ] || { echo "plugjail: cannot read the host triple from rustc -vV" >&2; return 1; }
  local static_target="${CARGO_TARGET_DIR:-target}/static"
  RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" CARGO_TARGET_DIR="$static_target" \
    cargo build --locked "$@" --target "$triple" --bin plugjail >&2 || return 1
  dir="$static_target/$triple/$(basename "$from")"
  for b in plugjail-stub plugjail-gendocs; do
    if [ -e "$from/$b" ]; then cp -f "$from/$b" "$dir/$b"; fi
  done
  echo "$dir"
}
