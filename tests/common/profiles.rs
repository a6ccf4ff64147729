//! The profiles tests run under: the shipped ones, their rootless variants, and test
//! profiles that extend a shipped one.

use std::fs;
use std::path::PathBuf;

use super::{Mode, TempDir, chmod, manifest_dir, target_tmp, unique};

/// The profile a test runs in `mode`: the shipped one, except that a profile requiring
/// limits (strict.yaml) cannot run rootless on a host without a delegated cgroup: plugjail
/// refuses it (fail closed; `strict_limits_are_refused_rootless_without_a_cgroup` checks
/// that). Rootless tests then use the same profile with `enforcement.limits: best_effort`,
/// written once under [`target_tmp`].
pub fn profile_for(mode: Mode, name: &str) -> PathBuf {
    let shipped = shipped_profile(name);
    let text = fs::read_to_string(&shipped).expect("read shipped profile");
    if mode == Mode::Root || !text.contains("limits: required") {
        return shipped;
    }
    let body = format!(
        "version: 1\nextends: {}\nenforcement:\n  limits: best_effort\n",
        shipped.display()
    );
    shared_profile(&format!("{name}-limits-best-effort.yaml"), &body)
}

/// Writes a test profile that every test of the run may share (same name, same text),
/// under cargo's test scratch directory, readable by uid 65534.
pub fn shared_profile(file_name: &str, text: &str) -> PathBuf {
    let dir = target_tmp().join("plugjail-test-profiles");
    let _ = fs::create_dir_all(&dir);
    chmod(&dir, 0o755);
    let path = dir.join(file_name);
    // Written under a unique name, then renamed: tests run in parallel threads.
    let tmp = dir.join(unique(file_name));
    fs::write(&tmp, text).expect("write test profile");
    chmod(&tmp, 0o644);
    fs::rename(&tmp, &path).expect("rename test profile");
    path
}

/// A shipped profile by name, e.g. `shipped_profile("default")`.
pub fn shipped_profile(name: &str) -> PathBuf {
    manifest_dir().join("profiles").join(format!("{name}.yaml"))
}

/// Writes a test profile that `extends:` a shipped profile and adds `body` (YAML).
pub fn extend_profile(dir: &TempDir, name: &str, base: &str, body: &str) -> PathBuf {
    let text = format!(
        "version: 1\nextends: {}\n{body}",
        shipped_profile(base).display()
    );
    dir.write(&format!("{name}.yaml"), text, 0o644)
}
