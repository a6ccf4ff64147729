//! Host files the jail must not reach: where tests keep them, and why a path is reachable
//! under a profile (for failure messages).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::manifest_dir;

/// Where tests put host files a jailed program must neither read nor change (victims,
/// secrets): `/var/tmp`, which no shipped profile mounts or grants to Landlock, wherever
/// the checkout is. Not [`target_tmp`]: with the checkout under `/tmp` (or `/usr/src`), a
/// profile's grant on `/tmp` (or `/usr`) covers the target directory, and a test would
/// measure what the profile allows instead of what the jail refuses. Checked once against
/// the shipped profiles' grants.
pub fn outside_profiles() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/var/tmp");
        let dir = base.canonicalize().unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the jail tests keep host files the jail must not reach there)",
                base.display()
            )
        });
        let profiles = fs::read_dir(manifest_dir().join("profiles"))
            .expect("read profiles/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"));
        for profile in profiles {
            if let Some(why) = grants_covering(&profile, &dir) {
                panic!(
                    "{} cannot hold the tests' host-only files: it is covered by {why}",
                    dir.display()
                );
            }
        }
        dir
    })
}

/// Why `path` can be reachable in a jail under `profile`, in words: the profile's mounts
/// and Landlock rules that cover it ("/tmp (a tmpfs, Landlock read) in PROFILE"), or None
/// when none does. For failure messages: a test that finds a host path reachable says why.
pub fn grants_covering(profile: &Path, path: &Path) -> Option<String> {
    let p = match plugjail::profile::load(profile) {
        Ok(p) => p,
        Err(e) => return Some(format!("(cannot load {} to say: {e})", profile.display())),
    };
    let fs = &p.filesystem;
    let every_jail = [PathBuf::from("/proc"), PathBuf::from("/dev")];
    let devices = fs
        .devices
        .iter()
        .map(|d| PathBuf::from(format!("/dev/{}", d.name())));
    let kinds: [(&str, Vec<PathBuf>); 8] = [
        ("mounted in every jail", every_jail.to_vec()),
        ("bound read-only", fs.read_only.clone()),
        ("bound read-write", fs.read_write.clone()),
        ("a tmpfs", fs.tmpfs.iter().map(|t| t.path.clone()).collect()),
        ("a device node", devices.collect()),
        ("Landlock read", p.landlock.read.clone()),
        ("Landlock write", p.landlock.write.clone()),
        ("Landlock execute", p.landlock.execute.clone()),
    ];
    // Each covering path once, with everything the profile does there.
    let mut covering: Vec<(PathBuf, Vec<&str>)> = vec![];
    for (what, paths) in &kinds {
        for g in paths.iter().filter(|g| path.starts_with(g)) {
            match covering.iter_mut().find(|(q, _)| q == g) {
                Some((_, whats)) => whats.push(what),
                None => covering.push((g.clone(), vec![what])),
            }
        }
    }
    if covering.is_empty() {
        return None;
    }
    let list: Vec<String> = covering
        .iter()
        .map(|(g, whats)| format!("{} ({})", g.display(), whats.join(", ")))
        .collect();
    Some(format!("{} in {}", list.join(" and "), profile.display()))
}
