//! Who the jail runs as: the user-namespace id maps and the ids the child switches to.
//!
//! Inside the jail the program is always uid/gid 1000: an ordinary, unprivileged id, the
//! same for every caller, so a program cannot tell from its ids who started it.
//!
//! Outside (the kernel's view, which is what host permission checks use):
//! - an ordinary caller's own uid/gid: the jail can never do more than the caller could;
//! - for root, 65534/65534 (nobody/nogroup): the jail gets no root-owned file access at all
//!   (root's DAC ownership would otherwise still apply to host files it can see), and root's
//!   supplementary groups are dropped. Root keeps no power inside either way: capabilities
//!   are dropped and `SECBIT_NOROOT` is locked.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

/// The uid and gid the jailed program has inside its user namespace.
pub const INSIDE_ID: u32 = 1000;
/// The host uid/gid a jail started by root runs as.
pub const ROOT_JAIL_ID: u32 = 65534;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdPlan {
    /// `uid_map` / `gid_map` text, or `None` without a user namespace.
    pub uid_map: Option<String>,
    pub gid_map: Option<String>,
    /// Write "deny" to /proc/PID/setgroups: required before an unprivileged gid_map write.
    #[serde(skip)]
    pub deny_setgroups: bool,
    /// The ids the child switches to (as seen from its own namespace), if any.
    #[serde(skip)]
    pub switch_to: Option<(u32, u32)>,
    /// Drop supplementary groups (possible only when setgroups is allowed).
    #[serde(skip)]
    pub clear_groups: bool,
}

/// Plans ids for a caller with effective ids `euid`/`egid`.
pub fn plan(euid: u32, egid: u32, user_ns: bool) -> IdPlan {
    let root = euid == 0;
    let (out_uid, out_gid) = if root {
        (ROOT_JAIL_ID, ROOT_JAIL_ID)
    } else {
        (euid, egid)
    };
    if user_ns {
        IdPlan {
            uid_map: Some(format!("{INSIDE_ID} {out_uid} 1\n")),
            gid_map: Some(format!("{INSIDE_ID} {out_gid} 1\n")),
            deny_setgroups: !root,
            switch_to: Some((INSIDE_ID, INSIDE_ID)),
            clear_groups: root,
        }
    } else {
        // Without a user namespace the child switches host ids directly, which only root
        // can do; an ordinary caller simply stays itself.
        IdPlan {
            uid_map: None,
            gid_map: None,
            deny_setgroups: false,
            switch_to: root.then_some((ROOT_JAIL_ID, ROOT_JAIL_ID)),
            clear_groups: root,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub struct MapError {
    pub path: PathBuf,
    pub source: io::Error,
}

impl IdPlan {
    /// Parent side: writes the maps of the child `pid` (blocked until we release it).
    pub fn write(&self, pid: i32) -> Result<(), MapError> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let write = |name: &str, text: &str| {
            let path = proc.join(name);
            fs::write(&path, text).map_err(|source| MapError { path, source })
        };
        if self.deny_setgroups {
            write("setgroups", "deny")?;
        }
        if let Some(map) = &self.uid_map {
            write("uid_map", map)?;
        }
        if let Some(map) = &self.gid_map {
            write("gid_map", map)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_caller_maps_itself_to_1000() {
        let p = plan(65534, 65534, true);
        assert_eq!(p.uid_map.as_deref(), Some("1000 65534 1\n"));
        assert_eq!(p.gid_map.as_deref(), Some("1000 65534 1\n"));
        assert!(p.deny_setgroups);
        assert!(!p.clear_groups);
        assert_eq!(p.switch_to, Some((1000, 1000)));
    }

    #[test]
    fn root_runs_the_jail_as_nobody() {
        let p = plan(0, 0, true);
        assert_eq!(p.uid_map.as_deref(), Some("1000 65534 1\n"));
        assert!(
            !p.deny_setgroups,
            "root drops its groups itself, so setgroups stays allowed"
        );
        assert!(p.clear_groups);
    }

    #[test]
    fn without_user_namespace_only_root_switches() {
        assert_eq!(plan(1000, 1000, false).switch_to, None);
        assert_eq!(plan(0, 0, false).switch_to, Some((65534, 65534)));
        assert_eq!(plan(0, 0, false).uid_map, None);
    }
}
