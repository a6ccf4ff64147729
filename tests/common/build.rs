//! Building the C/C++ test programs, once per source digest, where uid 65534 can run them.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use super::{chmod, manifest_dir, target_tmp, unique};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    Cxx,
}

/// Compiles `sources` (paths relative to the crate root, or absolute) into an executable
/// named `name` and returns its path. The output lives in cargo's per-target test scratch
/// directory under a name derived from the sources' contents and flags, so repeated builds
/// are free, and it is world-readable and executable (rootless runs exec it as uid 65534).
/// Call it through a `OnceLock` to build once per test binary.
pub fn build(name: &str, lang: Lang, sources: &[&str], flags: &[&str]) -> PathBuf {
    let (compiler, std) = match lang {
        Lang::C => ("cc", "-std=gnu11"),
        Lang::Cxx => ("c++", "-std=gnu++17"),
    };
    let paths: Vec<PathBuf> = sources.iter().map(|s| manifest_dir().join(s)).collect();
    let mut key = format!("{compiler} {std} {flags:?}");
    for p in &paths {
        let text = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        key.push_str(&String::from_utf8_lossy(&text));
    }
    let dir = target_tmp().join("plugjail-test-programs");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    // Every directory on the way must be searchable by 65534.
    chmod(&dir, 0o755);
    let out = dir.join(format!("{name}-{:016x}", fnv1a(key.as_bytes())));
    if out.exists() {
        return out;
    }
    // Build under a private name, then rename: other test binaries may build the same
    // program at the same moment.
    let tmp = dir.join(unique(&format!(".{name}")));
    let status = Command::new(compiler)
        .arg(std)
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .args(&paths)
        .args(flags)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} failed to build {name}: {status}"
    );
    chmod(&tmp, 0o755);
    fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename to {}: {e}", out.display()));
    out
}

/// A small stable hash for build cache names (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
