//! The subcommands that build no jail (`check`, `explain`, `schema`) as a user runs them:
//! one run from the crate's root, its output as text, files to give it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{manifest_dir, plugjail};

/// Runs plugjail with `args` from the crate's root (so `profiles/…` paths work).
pub fn cli(args: &[&str]) -> Output {
    Command::new(plugjail())
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .expect("plugjail runs")
}

/// What a program wrote, as text.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `body` to `dir/name` and returns the path.
pub fn write_file(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    path
}
