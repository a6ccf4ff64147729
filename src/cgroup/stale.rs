//! Reaping what a killed supervisor left: `plugjail-<pid>-*` cgroups beneath the places
//! ours go, whose supervisor pid no longer exists. Their processes are killed first.
//!
//! A pid that was reused by an unrelated process keeps its stale cgroup alive a while
//! longer (the safe direction); a supervisor in another pid namespace would look dead,
//! which is why only the places our own jails go are looked at (on v2: our own cgroup
//! and its parent when delegated to us; on v1: our own cgroup in each hierarchy).

use std::path::{Path, PathBuf};

use super::{CgroupError, PREFIX, sys, v2};
use crate::probe::{CgroupMode, Cgroups};

/// What one reaping pass did.
#[derive(Debug, Default)]
pub struct Reaped {
    pub removed: Vec<PathBuf>,
    pub failed: Vec<CgroupError>,
}

/// The supervisor pid in a `plugjail-<pid>-<suffix>` name.
pub fn supervisor_pid(name: &str) -> Option<libc::pid_t> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, suffix) = rest.split_once('-')?;
    if suffix.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok().filter(|p| *p > 0)
}

fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks for existence and permission; no memory arguments.
    let ret = unsafe { libc::kill(pid, 0) };
    ret == 0 || nix::errno::Errno::last() != nix::errno::Errno::ESRCH
}

/// The directories jail cgroups are created in (and stale ones looked for), for this
/// host's mode.
pub fn bases(caps: &Cgroups) -> Vec<PathBuf> {
    match caps.mode {
        CgroupMode::V2 => v2::scan_dirs(caps),
        CgroupMode::V1Hybrid => {
            let mut out: Vec<PathBuf> = caps
                .v1
                .iter()
                .filter(|h| h.writable)
                .filter_map(|h| h.dir.clone())
                .collect();
            if let Some(acct) = super::v1::cpuacct_base(caps) {
                out.push(acct);
            }
            // Only pausable sessions have a freezer child, but any may be left behind.
            if let Some(freezer) = super::v1::freezer_dir(caps) {
                out.push(freezer);
            }
            out
        }
        CgroupMode::None => Vec::new(),
    }
}

/// Kills and removes every stale `plugjail-<dead pid>-*` cgroup beneath our bases.
pub fn reap_stale(caps: &Cgroups) -> Reaped {
    let mut reaped = Reaped::default();
    for base in bases(caps) {
        reap_in(&base, &mut reaped);
    }
    reaped
}

fn reap_in(base: &Path, reaped: &mut Reaped) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let me = std::process::id() as libc::pid_t;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(supervisor_pid) else {
            continue;
        };
        if pid == me || alive(pid) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        if dir.join("cgroup.kill").exists() {
            // Best effort: kill_tree below catches what this misses.
            let _ = sys::write(&dir.join("cgroup.kill"), "1");
        }
        if dir.join("freezer.state").exists() {
            // A paused session's v1 freezer child: frozen tasks die only once thawed.
            sys::kill_round(&dir);
            let _ = super::v1::thaw(&dir);
        }
        match sys::kill_tree(&dir).and_then(|()| sys::rmdir_tree(&dir)) {
            Ok(()) => reaped.removed.push(dir),
            // Another supervisor reaping at the same time got there first.
            Err(CgroupError::Rmdir { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => reaped.failed.push(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(supervisor_pid("plugjail-123-4"), Some(123));
        assert_eq!(supervisor_pid("plugjail-123-sup"), Some(123));
        assert_eq!(supervisor_pid("plugjail-123-"), None);
        assert_eq!(supervisor_pid("plugjail-12a-1"), None);
        assert_eq!(supervisor_pid("plugjail--1"), None);
        assert_eq!(supervisor_pid("plugjail-0-1"), None);
        assert_eq!(supervisor_pid("other-123-1"), None);
        assert_eq!(supervisor_pid("plugjail-99999999999999-1"), None);
    }

    #[test]
    fn liveness() {
        assert!(alive(std::process::id() as libc::pid_t));
    }
}
