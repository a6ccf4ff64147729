//! cgroup v2: a leaf beneath a delegated cgroup (the base), never beneath the root.
//!
//! The base is our own cgroup when it is delegated to us, else its parent. A non-root
//! cgroup may not both hold processes and enable controllers for its children, so when
//! the base is our own cgroup the supervisor first moves itself into a leaf of its own,
//! `plugjail-<pid>-sup`, beside the jail leaves. That leaf outlives the run (we cannot
//! leave a cgroup we are in without entering another); the next run's [`super::reap_stale`]
//! removes it once our pid is gone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use super::{Backend, CgroupError, CgroupPlan, CgroupReport, Dir, Host, PREFIX, Step, sys};
use crate::probe::cgroup::parse;
use crate::probe::{Cgroups, Controller};
use crate::profile::Limits;

/// The supervisor's own leaf, when it had to leave the base.
pub fn sup_name() -> String {
    format!("{PREFIX}{}-sup", std::process::id())
}

/// Where jail leaves go.
#[derive(Debug, Clone)]
pub(super) struct Base {
    pub dir: PathBuf,
    pub controllers: Vec<String>,
    pub subtree_control: Vec<String>,
    /// We are still in the base itself and must move to our own leaf first.
    pub move_self: bool,
}

fn list(dir: &Path, file: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(file))
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

fn delegated(dir: &Path) -> bool {
    sys::can_write(dir, true)
        && sys::can_write(&dir.join("cgroup.procs"), false)
        && sys::can_write(&dir.join("cgroup.subtree_control"), false)
}

/// Our own cgroup as the base sees it: its path and directory, with the supervisor leaf
/// stripped (a second jail of this supervisor, after it moved), and whether we moved.
fn own(caps: &Cgroups) -> Result<(String, PathBuf, bool), String> {
    let h = caps
        .v2
        .as_ref()
        .ok_or("our cgroup is not in a mounted cgroup2 hierarchy")?;
    let dir = h
        .own
        .as_ref()
        .map(|o| o.dir.clone())
        .ok_or_else(|| format!("own cgroup {} is not reachable", h.own_path))?;
    let path = h.own_path.trim_end_matches('/').to_owned();
    if path.rsplit('/').next() == Some(sup_name().as_str()) {
        let up = parse::parent(&path).unwrap_or_else(|| "/".to_owned());
        let updir = dir.parent().map(Path::to_owned).unwrap_or(dir);
        return Ok((up, updir, true));
    }
    Ok((path, dir, false))
}

fn is_root(path: &str) -> bool {
    path.trim_end_matches('/').is_empty()
}

/// Processes in `dir` other than this one (the launcher, say).
fn others(dir: &Path) -> Vec<libc::pid_t> {
    let me = std::process::id() as libc::pid_t;
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| {
            s.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|p| *p != me)
        .collect()
}

fn base_at(dir: &Path, move_self: bool) -> Base {
    Base {
        controllers: list(dir, "cgroup.controllers"),
        subtree_control: list(dir, "cgroup.subtree_control"),
        dir: dir.to_owned(),
        move_self,
    }
}

/// The base for jail leaves, or why there is none: our own cgroup when it is delegated and
/// holds no other process (we move aside into our leaf), else its parent when that is
/// delegated (the jail leaves are then siblings of our cgroup), never the root.
pub(super) fn base(caps: &Cgroups) -> Result<Base, String> {
    let (own_path, own_dir, moved) = own(caps)?;
    if is_root(&own_path) {
        return Err(
            "own cgroup is the root cgroup: plugjail never creates jail cgroups directly \
             beneath the root; start it in a delegated cgroup (e.g. systemd-run --user \
             --scope -p Delegate=yes)"
                .to_owned(),
        );
    }
    let own_ok = delegated(&own_dir);
    let crowd = if own_ok && !moved {
        others(&own_dir)
    } else {
        Vec::new()
    };
    if own_ok && crowd.is_empty() {
        return Ok(base_at(&own_dir, !moved));
    }
    let parent = parse::parent(&own_path).unwrap_or_else(|| "/".to_owned());
    if !is_root(&parent)
        && let Some(pdir) = own_dir.parent()
        && delegated(pdir)
    {
        return Ok(base_at(pdir, false));
    }
    Err(if own_ok {
        format!(
            "own cgroup {own_path} also holds other processes ({crowd:?}), and cgroup v2 \
             enables controllers only for cgroups without processes, while its parent is not \
             delegated; start plugjail in a cgroup of its own"
        )
    } else {
        format!(
            "own cgroup {own_path} is not delegated to uid {} (a jail leaf needs write access \
             to the directory, cgroup.procs and cgroup.subtree_control of it or of its parent)",
            nix::unistd::geteuid()
        )
    })
}

/// Where stale jail cgroups may be: the base, our own cgroup and its parent when they are
/// ours to manage (delegated, not the root).
pub(super) fn scan_dirs(caps: &Cgroups) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(b) = base(caps) {
        out.push(b.dir);
    }
    if let Ok((path, dir, _)) = own(caps) {
        let parent = parse::parent(&path).unwrap_or_else(|| "/".to_owned());
        if !is_root(&path) && delegated(&dir) {
            out.push(dir.clone());
        }
        if !is_root(&parent)
            && let Some(pdir) = dir.parent()
            && delegated(pdir)
        {
            out.push(pdir.to_owned());
        }
    }
    out.dedup();
    out.sort();
    out.dedup();
    out
}

pub(super) fn host(caps: &Cgroups) -> Host {
    match base(caps) {
        Ok(b) => {
            let available: Vec<Controller> = Controller::ALL
                .into_iter()
                .filter(|c| b.controllers.iter().any(|x| x == c.name()))
                .collect();
            let dir = b.dir.clone();
            Host {
                backend: Backend::V2,
                available,
                why: Box::new(move |c| {
                    format!(
                        "the {} controller is not available in {} (cgroup.controllers)",
                        c.name(),
                        dir.display()
                    )
                }),
            }
        }
        Err(why) => Host {
            backend: Backend::V2,
            available: Vec::new(),
            why: Box::new(move |_| why.clone()),
        },
    }
}

pub(super) fn plan(
    plan: &mut CgroupPlan,
    limits: &Limits,
    available: &[Controller],
    caps: &Cgroups,
    swap_ok: bool,
) {
    let Ok(base) = base(caps) else { return };
    // Memory always (peak and OOM figures; cpu.stat's usage needs no controller), the
    // others when the profile limits them.
    let wanted = |c: Controller| match c {
        Controller::Memory => true,
        Controller::Cpu => limits.cpu.is_some(),
        Controller::Pids => limits.pids.is_some(),
        Controller::Io => !limits.io.is_empty() && !plan.io_devices.is_empty(),
    };
    let controllers: Vec<Controller> = Controller::ALL
        .into_iter()
        .filter(|c| available.contains(c) && wanted(*c))
        .collect();
    if base.move_self {
        plan.steps.push(Step::MoveSelf {
            leaf: base.dir.join(sup_name()),
        });
    }
    for c in &controllers {
        if !base.subtree_control.iter().any(|s| s == c.name()) {
            plan.steps.push(Step::Enable {
                file: base.dir.join("cgroup.subtree_control"),
                value: format!("+{}", c.name()),
            });
        }
    }
    let leaf = base.dir.join(&plan.name);
    plan.steps.push(Step::Mkdir { path: leaf.clone() });
    plan.dirs.push(Dir {
        hierarchy: "unified",
        path: leaf.clone(),
    });
    let mut w = |file: &str, value: String| {
        plan.steps.push(Step::Write {
            path: leaf.join(file),
            value,
        });
    };
    if controllers.contains(&Controller::Memory) {
        if let Some(m) = limits.memory {
            w("memory.max", m.to_string());
        }
        // No swap limit in the profile means no swap: a memory limit is not to be dodged by
        // swapping out. Only with swap accounting (else the file does not exist).
        if (limits.memory.is_some() || limits.swap.is_some())
            && caps.swap_accounting == Some(true)
            && swap_ok
        {
            w("memory.swap.max", limits.swap.unwrap_or(0).to_string());
        }
        // One OOM kill takes the whole jail: no half-dead plugin keeps running.
        w("memory.oom.group", "1".to_owned());
    }
    if let Some(cores) = limits
        .cpu
        .filter(|_| controllers.contains(&Controller::Cpu))
    {
        w(
            "cpu.max",
            format!("{} {}", super::cpu_quota_us(cores), super::CPU_PERIOD_US),
        );
    }
    if controllers.contains(&Controller::Io) {
        for dev in &plan.io_devices.clone() {
            w("io.max", dev.io_max(&limits.io));
        }
    }
    if let Some(n) = limits
        .pids
        .filter(|_| controllers.contains(&Controller::Pids))
    {
        w("pids.max", n.to_string());
    }
    plan.controllers = controllers;
}

/// Serialises the supervisor's move between threads of one process.
static MOVED: Mutex<()> = Mutex::new(());

/// Moves this whole process into `leaf` (created if needed), unless already there.
pub(super) fn move_self(leaf: &Path) -> Result<(), CgroupError> {
    let _guard = MOVED.lock().unwrap_or_else(|e| e.into_inner());
    let me = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let name = sup_name();
    if me
        .lines()
        .any(|l| l.starts_with("0::") && l.trim_end().ends_with(&format!("/{name}")))
    {
        return Ok(());
    }
    match std::fs::create_dir(leaf) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(source) => {
            return Err(CgroupError::Mkdir {
                path: leaf.to_owned(),
                source,
            });
        }
    }
    sys::write(&leaf.join("cgroup.procs"), &std::process::id().to_string())
}

pub(super) fn enable(file: &Path, value: &str) -> Result<(), CgroupError> {
    sys::write(file, value).map_err(|e| match e {
        CgroupError::Write {
            path,
            value,
            source,
        } if source.raw_os_error() == Some(libc::EBUSY) => CgroupError::Busy {
            path,
            value,
            source,
        },
        e => e,
    })
}

/// `cgroup.kill` (kernel 5.14+) kills the whole subtree at once, forks included; then the
/// same wait-until-empty as v1 (which also covers kernels without `cgroup.kill`).
pub(super) fn kill(dir: &Path) -> Result<(), CgroupError> {
    if dir.join("cgroup.kill").exists() {
        sys::write(&dir.join("cgroup.kill"), "1")?;
    }
    sys::kill_tree(dir)
}

pub(super) fn figures(dir: &Path, r: &mut CgroupReport) {
    let events = sys::read(&dir.join("memory.events")).ok();
    r.oom_kills = events.as_deref().and_then(|t| sys::keyed(t, "oom_kill"));
    r.memory_limit_hits = events.as_deref().and_then(|t| sys::keyed(t, "max"));
    r.memory_peak = sys::number(&dir.join("memory.peak"));
    let stat = sys::read(&dir.join("cpu.stat")).ok();
    r.cpu_usage_usec = stat.as_deref().and_then(|t| sys::keyed(t, "usage_usec"));
    r.cpu_throttled_periods = stat.as_deref().and_then(|t| sys::keyed(t, "nr_throttled"));
    let pids = sys::read(&dir.join("pids.events")).ok();
    r.pids_limit_hits = pids.as_deref().and_then(|t| sys::keyed(t, "max"));
}

/// Freezes the leaf `dir`: `1` into `cgroup.freeze`, then waits until `cgroup.events`
/// says `frozen 1` (every task of the cgroup has stopped; tasks in a ptrace or job-control
/// stop count as frozen). Past `timeout` the leaf is thawed again and the error says so.
pub(super) fn freeze(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    sys::write(&dir.join("cgroup.freeze"), "1")?;
    let events = dir.join("cgroup.events");
    let frozen = sys::wait_until(timeout, || {
        sys::read(&events).map(|t| sys::keyed(&t, "frozen") == Some(1))
    });
    match frozen {
        Ok(true) => Ok(()),
        Ok(false) => {
            thaw(dir)?;
            Err(CgroupError::FreezeTimeout {
                path: events,
                waited: timeout,
            })
        }
        Err(e) => {
            let _ = thaw(dir);
            Err(e)
        }
    }
}

/// Thaws the leaf `dir` (`0` into `cgroup.freeze`; the tasks run again at once).
pub(super) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    sys::write(&dir.join("cgroup.freeze"), "0")
}
