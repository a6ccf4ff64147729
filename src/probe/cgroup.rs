//! cgroups: which mode the host runs (pure v2, v1 hybrid, none), where this process's own
//! cgroups are, and whether a jail cgroup could be created beneath them.
//!
//! Read-only by design: writability is judged with `faccessat(AT_EACCESS)` and ownership,
//! never by creating a cgroup, and the root cgroup is only ever looked at.

pub mod parse;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::Serialize;

use super::{Error, Failure};
pub use parse::{Mount, OwnCgroup};

const PROC_CGROUP: &str = "/proc/self/cgroup";
const MOUNTINFO: &str = "/proc/self/mountinfo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupMode {
    /// Pure cgroup v2: every controller lives in the unified hierarchy.
    V2,
    /// cgroup v1 controller hierarchies (perhaps beside an empty unified one).
    V1Hybrid,
    /// No cgroup hierarchy is mounted: only rlimits can limit a jail.
    None,
}

impl CgroupMode {
    pub fn name(self) -> &'static str {
        match self {
            CgroupMode::V2 => "v2",
            CgroupMode::V1Hybrid => "v1_hybrid",
            CgroupMode::None => "none",
        }
    }
}

/// The controllers that carry a profile's limits, by their v2 names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Controller {
    Memory,
    Cpu,
    Io,
    Pids,
}

impl Controller {
    pub const ALL: [Controller; 4] = [
        Controller::Memory,
        Controller::Cpu,
        Controller::Io,
        Controller::Pids,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Io => "io",
            Controller::Pids => "pids",
        }
    }

    /// The v1 name: `io` was `blkio`.
    pub fn v1_name(self) -> &'static str {
        match self {
            Controller::Io => "blkio",
            other => other.name(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cgroups {
    pub mode: CgroupMode,
    /// /proc/self/cgroup, one entry per hierarchy.
    pub own: Vec<OwnCgroup>,
    /// The unified hierarchy: the whole story in v2 mode, usually empty in hybrid mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub v2: Option<V2Hierarchy>,
    /// In v1_hybrid mode: memory, cpu, pids and blkio, in that order.
    pub v1: Vec<V1Hierarchy>,
    /// Controllers a jail cgroup could be created with, beneath our own cgroup, in the
    /// backend this mode uses (v1 hierarchies in hybrid mode, the unified one in v2).
    pub writable: Vec<Controller>,
    /// Swap can be limited (v1 `memory.memsw.*`, v2 `memory.swap.max`); `None`: unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_accounting: Option<bool>,
    /// Any swap area is active on the host (/proc/swaps).
    pub host_swap: bool,
    /// Reading /proc/self/cgroup or mountinfo failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
    /// The mounts of /proc/self/mountinfo as read for this probe, so the cgroup setup
    /// that follows (stale reaping, the v1 cpuacct checks) need not read it again.
    #[serde(skip)]
    pub mounts: Vec<Mount>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Hierarchy {
    pub mount: PathBuf,
    /// Our cgroup in it, from the `0::` line.
    pub own_path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own: Option<V2Cgroup>,
    /// Looked at only when the own cgroup is not delegated and is not the root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<V2Cgroup>,
    /// Controllers a jail leaf beneath the delegated cgroup (own, else parent) could have.
    pub usable_controllers: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V2Cgroup {
    pub path: String,
    pub dir: PathBuf,
    pub is_root: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    /// `cgroup.controllers`: what this cgroup's parent makes available to it.
    pub controllers: Vec<String>,
    /// `cgroup.subtree_control`: what is enabled for its children now.
    pub subtree_control: Vec<String>,
    /// We may create children (the directory is writable and searchable).
    pub writable: bool,
    pub procs_writable: bool,
    pub subtree_control_writable: bool,
    /// All three: we may create a child, enable controllers for it and move into it.
    pub delegated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct V1Hierarchy {
    /// `memory`, `cpu`, `pids` or `blkio`.
    pub controller: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mount: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub own_path: Option<String>,
    /// The directory a jail cgroup would be created in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Our own cgroup is the hierarchy's root: a jail cgroup would be its direct child.
    pub own_is_root: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner_uid: Option<u32>,
    /// A child cgroup could be created in `dir`.
    pub writable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// The cgroup mode, from mountinfo alone (cheap: one small read).
pub fn cgroup_mode() -> CgroupMode {
    std::fs::read_to_string(MOUNTINFO)
        .map(|text| parse::mode(&parse::mountinfo(&text)))
        .unwrap_or(CgroupMode::None)
}

/// Everything about cgroups this process can see, without changing anything.
pub fn cgroups() -> Cgroups {
    let read = |path: &str| {
        std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.into(),
            source,
        })
    };
    let (mounts, own, error) = match (read(MOUNTINFO), read(PROC_CGROUP)) {
        (Ok(m), Ok(c)) => (parse::mountinfo(&m), parse::proc_cgroup(&c), None),
        (Err(e), _) | (_, Err(e)) => (Vec::new(), Vec::new(), Some(Failure::from(e))),
    };
    let mode = parse::mode(&mounts);
    let v2 = own
        .iter()
        .find(|o| o.hierarchy == 0)
        .and_then(|o| parse::pick(mounts.iter().filter(|m| m.is_v2()), &o.path).map(|m| (m, o)))
        .map(|(m, o)| v2_hierarchy(m, &o.path));
    let v1: Vec<V1Hierarchy> = if mode == CgroupMode::V1Hybrid {
        [
            Controller::Memory,
            Controller::Cpu,
            Controller::Pids,
            Controller::Io,
        ]
        .into_iter()
        .map(|c| v1_hierarchy(c.v1_name(), &mounts, &own))
        .collect()
    } else {
        Vec::new()
    };
    let writable = match (mode, &v2) {
        (CgroupMode::V1Hybrid, _) => Controller::ALL
            .into_iter()
            .filter(|c| v1.iter().any(|h| h.controller == c.v1_name() && h.writable))
            .collect(),
        (CgroupMode::V2, Some(h)) => Controller::ALL
            .into_iter()
            .filter(|c| h.usable_controllers.iter().any(|u| u == c.name()))
            .collect(),
        _ => Vec::new(),
    };
    let swap_accounting = match mode {
        CgroupMode::V1Hybrid => v1
            .iter()
            .find(|h| h.controller == "memory")
            .and_then(|h| h.mount.as_ref())
            .map(|m| m.join("memory.memsw.limit_in_bytes").exists()),
        CgroupMode::V2 => v2.as_ref().and_then(v2_swap_accounting),
        CgroupMode::None => None,
    };
    Cgroups {
        mode,
        own,
        v2,
        v1,
        writable,
        swap_accounting,
        host_swap: host_swap(),
        error,
        mounts,
    }
}

fn v2_hierarchy(mount: &Mount, own_path: &str) -> V2Hierarchy {
    let mut h = V2Hierarchy {
        mount: mount.mount_point.clone(),
        own_path: own_path.to_owned(),
        own: None,
        parent: None,
        usable_controllers: Vec::new(),
        error: None,
    };
    match parse::cgroup_dir(mount, own_path) {
        Ok(dir) => h.own = Some(v2_cgroup(own_path, dir)),
        Err(e) => h.error = Some(e.into()),
    }
    let own = h.own.as_ref();
    if let Some(own) = own.filter(|o| !o.delegated && !o.is_root) {
        let parent = parse::parent(&own.path).and_then(|p| {
            let dir = parse::cgroup_dir(mount, &p).ok()?;
            Some(v2_cgroup(&p, dir))
        });
        h.parent = parent;
    }
    let delegated = h.own.iter().chain(h.parent.iter()).find(|c| c.delegated);
    h.usable_controllers = delegated.map(|c| c.controllers.clone()).unwrap_or_default();
    h
}

fn v2_cgroup(path: &str, dir: PathBuf) -> V2Cgroup {
    let list = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let writable = can_write_dir(&dir).is_ok();
    let procs_writable = can_write(&dir.join("cgroup.procs")).is_ok();
    let subtree_control_writable = can_write(&dir.join("cgroup.subtree_control")).is_ok();
    V2Cgroup {
        path: path.to_owned(),
        is_root: path.trim_end_matches('/').is_empty(),
        owner_uid: std::fs::metadata(&dir).ok().map(|m| m.uid()),
        controllers: list("cgroup.controllers"),
        subtree_control: list("cgroup.subtree_control"),
        writable,
        procs_writable,
        subtree_control_writable,
        delegated: writable && procs_writable && subtree_control_writable,
        dir,
    }
}

fn v1_hierarchy(controller: &'static str, mounts: &[Mount], own: &[OwnCgroup]) -> V1Hierarchy {
    let own_path = own
        .iter()
        .find(|o| o.controllers.iter().any(|c| c == controller))
        .map(|o| o.path.clone());
    let mut h = V1Hierarchy {
        controller,
        mount: None,
        own_is_root: own_path
            .as_deref()
            .is_some_and(|p| parse::parent(p).is_none()),
        own_path,
        dir: None,
        owner_uid: None,
        writable: false,
        error: None,
    };
    let on_v1 = || mounts.iter().filter(|m| m.has_v1(controller));
    let path = h.own_path.as_deref().unwrap_or("/");
    let Some(mount) = parse::pick(on_v1(), path) else {
        h.mount = on_v1().next().map(|m| m.mount_point.clone());
        h.error = Some(
            match &h.mount {
                Some(m) => Error::Unreachable {
                    cgroup: path.to_owned(),
                    mount: m.clone(),
                },
                None => Error::NotMounted {
                    path: MOUNTINFO.into(),
                    controller,
                },
            }
            .into(),
        );
        return h;
    };
    h.mount = Some(mount.mount_point.clone());
    let dir = parse::cgroup_dir(mount, path).unwrap_or_else(|_| mount.mount_point.clone());
    h.owner_uid = std::fs::metadata(&dir).ok().map(|m| m.uid());
    match can_write_dir(&dir) {
        Ok(()) => h.writable = true,
        Err(e) => h.error = Some(e.into()),
    }
    h.dir = Some(dir);
    h
}

/// v2 has `memory.swap.max` in every non-root cgroup with the memory controller; the root
/// has none, so look at our own cgroup, else the first child of the root.
fn v2_swap_accounting(h: &V2Hierarchy) -> Option<bool> {
    let dir = match h.own.as_ref().filter(|o| !o.is_root) {
        Some(own) => own.dir.clone(),
        None => std::fs::read_dir(&h.mount)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| p.join("memory.current").exists())?,
    };
    dir.join("memory.current")
        .exists()
        .then(|| dir.join("memory.swap.max").exists())
}

fn host_swap() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1)
}

/// A child directory could be created here: write and search permission for our
/// effective ids, on a filesystem mounted read-write.
fn can_write_dir(dir: &Path) -> Result<(), Error> {
    faccess(dir, libc::W_OK | libc::X_OK)
}

fn can_write(file: &Path) -> Result<(), Error> {
    faccess(file, libc::W_OK)
}

fn faccess(path: &Path, mode: libc::c_int) -> Result<(), Error> {
    let not_writable = |errno| Error::NotWritable {
        path: path.to_owned(),
        errno,
    };
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| not_writable(Errno::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call; faccessat only reads it.
    let ret = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
    if ret == 0 {
        Ok(())
    } else {
        Err(not_writable(Errno::last()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cgroup2-like tree in a temp dir: `/` and `/app`, with the files doctor reads.
    #[test]
    fn v2_delegation_on_a_fake_tree() {
        let top = std::env::temp_dir().join(format!("plugjail-probe-v2-{}", std::process::id()));
        let app = top.join("app");
        std::fs::create_dir_all(&app).unwrap();
        for dir in [&top, &app] {
            std::fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
            std::fs::write(dir.join("cgroup.subtree_control"), "memory pids\n").unwrap();
            std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(app.join("memory.current"), "0\n").unwrap();
        std::fs::write(app.join("memory.swap.max"), "max\n").unwrap();
        let mount = Mount {
            root: "/".into(),
            mount_point: top.clone(),
            fstype: "cgroup2".into(),
            super_options: vec!["rw".into()],
        };
        let h = v2_hierarchy(&mount, "/app");
        let swap = v2_swap_accounting(&h);
        std::fs::remove_dir_all(&top).unwrap();

        assert_eq!(swap, Some(true));

        let own = h.own.as_ref().unwrap();
        assert_eq!(own.dir, app);
        assert!(!own.is_root);
        assert_eq!(own.controllers, ["cpu", "io", "memory", "pids"]);
        assert_eq!(own.subtree_control, ["memory", "pids"]);
        // We created the files, so they are ours to write: a delegated subtree.
        assert!(own.delegated, "{own:?}");
        assert!(h.parent.is_none(), "a delegated own cgroup needs no parent");
        assert_eq!(h.usable_controllers, ["cpu", "io", "memory", "pids"]);
        assert_eq!(h.error, None);
    }

    #[test]
    fn v2_own_cgroup_outside_the_mount() {
        let mount = parse::mountinfo_line("5 1 0:9 /user.slice /cg rw - cgroup2 cgroup2 rw");
        let h = v2_hierarchy(&mount.unwrap(), "/system.slice/x");
        assert!(h.own.is_none());
        assert!(h.usable_controllers.is_empty());
        assert!(
            h.error
                .unwrap()
                .message
                .contains("outside the mounted part")
        );
    }

    #[test]
    fn the_live_probe_is_consistent() {
        let c = cgroups();
        assert_eq!(c.mode, cgroup_mode());
        assert!(c.error.is_none(), "{:?}", c.error);
        if c.mode == CgroupMode::V1Hybrid {
            assert_eq!(c.v1.len(), 4);
            for h in &c.v1 {
                assert_eq!(h.writable, h.error.is_none(), "{h:?}");
            }
        }
    }
}
