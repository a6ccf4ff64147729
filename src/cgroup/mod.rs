//! Resource limits through cgroupfs, written directly (see DESIGN.md for why not
//! cgroups-rs), with one interface and three backends:
//!
//! - **v2**: a leaf `plugjail-<pid>-<n>` beneath a delegated cgroup (our own, or its
//!   parent), never beneath the root; the child is cloned into it with `CLONE_INTO_CGROUP`.
//! - **v1 hybrid**: a child `plugjail-<pid>-<n>` beneath our own cgroup in each of the
//!   memory, cpu, pids and blkio hierarchies (and cpuacct, for the CPU figure); the
//!   supervisor adds the child's pid before releasing it.
//! - **none**: rlimits only ([`Rlimits`]).
//!
//! [`prepare`] runs in the parent and decides everything (backend, directories, every file
//! write, rlimits, what is dropped); [`CgroupPlan::create`] makes it so; [`Cgroup`] reports,
//! freezes and thaws (pausing a plugin session), kills and removes. The cgroup name carries the supervisor's pid so that [`reap_stale`]
//! can remove what a killed supervisor left behind. docs/limits.md has the details.
//!
//! This file is the deciding half ([`prepare`] and the plan's types); the made cgroup
//! ([`CgroupPlan::create`], [`Cgroup`], [`CgroupReport`]) is in `live.rs`.

mod io;
mod live;
mod rlimit;
mod stale;
mod sys;
#[cfg(test)]
mod tests;
mod v1;
mod v2;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Serialize;

use crate::probe::{CgroupMode, Cgroups, Controller};
use crate::profile::units::format_size;
use crate::profile::{Level, Limits, Profile};

pub use io::IoDevice;
pub use live::{Cgroup, CgroupReport};
pub use rlimit::{RLIMITS_MAX, Rlimits};
pub use stale::{Reaped, bases, reap_stale};

/// The prefix of every cgroup plugjail creates: `plugjail-<supervisor pid>-<suffix>`.
pub const PREFIX: &str = "plugjail-";

/// cpu.max / cfs period: 100 ms, the kernel's default.
pub const CPU_PERIOD_US: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(
        "limits ({level}) cannot be enforced on this host (cgroup mode {mode}): {}; \
         run plugjail as root, in a delegated cgroup, or set `enforcement: {{limits: best_effort}}`",
        items.join("; ")
    )]
    Refused {
        level: &'static str,
        mode: &'static str,
        items: Vec<String>,
    },
    #[error("cannot create cgroup {path}: {source}")]
    Mkdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {value:?} to {path}: {source}")]
    Write {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error(
        "cannot enable {value:?} in {path}: {source}; the cgroup still holds processes other \
         than plugjail (cgroup v2 allows controllers only on cgroups without processes)"
    )]
    Busy {
        path: PathBuf,
        value: String,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot remove cgroup {path}: {source}")]
    Rmdir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("processes remain in cgroup {path} after {attempts} rounds of SIGKILL")]
    Unkillable { path: PathBuf, attempts: u32 },
    #[error("cgroup {path} was not frozen after {waited:?}; it was thawed again")]
    FreezeTimeout { path: PathBuf, waited: Duration },
    #[error("the jail cgroup has no freezer (backend {backend})")]
    NoFreezer { backend: &'static str },
    #[error("{setup}; and rolling back failed too: {cleanup}")]
    Rollback {
        setup: Box<CgroupError>,
        cleanup: Box<CgroupError>,
    },
}

/// Which backend a plan uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    V2,
    V1Hybrid,
    None,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::V2 => "v2",
            Backend::V1Hybrid => "v1_hybrid",
            Backend::None => "none",
        }
    }
}

/// A limit the profile asked for that this run does not enforce fully.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dropped {
    /// `memory 64M`, `cpu 0.5 cores`, `pids 16`, `io write_bps 1M`...
    pub what: String,
    /// Why the cgroup could not carry it.
    pub why: String,
    /// What stands in, if anything (`RLIMIT_AS`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instead: Option<String>,
}

/// One cgroup directory of a jail: the v2 leaf, or one per v1 hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dir {
    /// `unified`, or the v1 hierarchy: `memory`, `cpu`, `pids`, `blkio`, `cpuacct`.
    pub hierarchy: &'static str,
    pub path: PathBuf,
}

/// One step of creating a jail cgroup, decided by [`prepare`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// v2: move the supervisor (this whole process) into its own leaf, so that the
    /// delegated cgroup it lived in may enable controllers for its children.
    MoveSelf {
        leaf: PathBuf,
    },
    /// v2: `+memory` etc. into the base's `cgroup.subtree_control`.
    Enable {
        file: PathBuf,
        value: String,
    },
    Mkdir {
        path: PathBuf,
    },
    Write {
        path: PathBuf,
        value: String,
    },
}

/// Everything decided before clone: no file is touched until [`CgroupPlan::create`].
#[derive(Debug, Clone)]
pub struct CgroupPlan {
    pub backend: Backend,
    /// `plugjail-<supervisor pid>-<counter>`.
    pub name: String,
    pub dirs: Vec<Dir>,
    pub steps: Vec<Step>,
    /// Controllers whose limits (or figures) the cgroup carries.
    pub controllers: Vec<Controller>,
    pub dropped: Vec<Dropped>,
    /// Block devices the io limits apply to.
    pub io_devices: Vec<IoDevice>,
    /// To apply in the child (every backend: the plain rlimits, plus the stand-ins).
    pub rlimits: Rlimits,
}

/// The cpu.max / cfs quota for a share of `cores`, per [`CPU_PERIOD_US`] (the kernel
/// refuses quotas below 1 ms).
// A float has no lossless conversion to an integer. `cores` comes from a profile, which
// keeps it within 0.01 to 1024 (so the product is at most about 10^8); anything else
// saturates (`as` maps NaN and negatives to 0), and the floor below applies.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn cpu_quota_us(cores: f64) -> u64 {
    ((cores * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

static COUNTER: AtomicU32 = AtomicU32::new(1);

/// The next `plugjail-<pid>-<n>` name for this supervisor.
fn next_name() -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{PREFIX}{}-{n}", std::process::id())
}

/// The cgroup-carried limits a profile asks for, by controller.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    memory: bool,
    cpu: bool,
    io: bool,
    pids: bool,
}

impl Wanted {
    fn of(limits: &Limits) -> Wanted {
        Wanted {
            memory: limits.memory.is_some() || limits.swap.is_some(),
            cpu: limits.cpu.is_some(),
            io: !limits.io.is_empty(),
            pids: limits.pids.is_some(),
        }
    }

    fn wants(self, c: Controller) -> bool {
        match c {
            Controller::Memory => self.memory,
            Controller::Cpu => self.cpu,
            Controller::Io => self.io,
            Controller::Pids => self.pids,
        }
    }
}

/// Human names of the limits one controller carries, for refusals and `dropped`.
fn describe(limits: &Limits, c: Controller) -> Vec<String> {
    let l = limits;
    match c {
        Controller::Memory => [
            l.memory.map(|m| format!("memory {}", format_size(m))),
            l.swap.map(|s| format!("swap {}", format_size(s))),
        ]
        .into_iter()
        .flatten()
        .collect(),
        Controller::Cpu => l
            .cpu
            .map(|c| format!("cpu {c} cores"))
            .into_iter()
            .collect(),
        Controller::Pids => l.pids.map(|p| format!("pids {p}")).into_iter().collect(),
        Controller::Io => {
            let io = &l.io;
            let mut out = Vec::new();
            let mut add = |name: &str, v: Option<u64>, size: bool| {
                if let Some(v) = v {
                    let v = if size { format_size(v) } else { v.to_string() };
                    out.push(format!("io {name} {v}"));
                }
            };
            add("read_bps", io.read_bps, true);
            add("write_bps", io.write_bps, true);
            add("read_iops", io.read_iops, false);
            add("write_iops", io.write_iops, false);
            out
        }
    }
}

/// Where the jail cgroups would go and which controllers they may carry, as each backend
/// sees the probed host; `why` explains a missing controller.
struct Host {
    backend: Backend,
    available: Vec<Controller>,
    why: Box<dyn Fn(Controller) -> String>,
}

/// The backend this host would use and the controllers a jail cgroup could carry there,
/// as this module judges it. On v2 this can differ from `caps.writable`: once the
/// supervisor has moved into its own leaf, the probe looks at that leaf, while jail
/// cgroups go beside it.
pub fn available(caps: &Cgroups) -> (Backend, Vec<Controller>) {
    let host = host(caps);
    (host.backend, host.available)
}

/// How a plugin host's pause would freeze a jail here (docs/limits.md, "Pausing a jail").
pub fn pause_method(caps: &Cgroups) -> &'static str {
    match host(caps).backend {
        Backend::V2 => "the cgroup v2 freezer (cgroup.freeze of each jail's cgroup)",
        Backend::V1Hybrid if v1::freezer_dir(caps).is_some() => {
            "the cgroup v1 freezer (a child in the freezer hierarchy per jail)"
        }
        _ => "stopping the jail's processes (SIGSTOP): no freezer this user can write",
    }
}

fn host(caps: &Cgroups) -> Host {
    match caps.mode {
        CgroupMode::V2 => v2::host(caps),
        CgroupMode::V1Hybrid => v1::host(caps),
        CgroupMode::None => Host {
            backend: Backend::None,
            available: Vec::new(),
            why: Box::new(|_| "no cgroup hierarchy is mounted".to_owned()),
        },
    }
}

/// Decides the cgroup plan for a profile: `profile.limits`, enforced at
/// `profile.enforcement.limits`, with io limits on the devices of the profile's
/// read-write and read-only paths.
pub fn prepare_profile(profile: &Profile, caps: &Cgroups) -> Result<CgroupPlan, CgroupError> {
    let fs = &profile.filesystem;
    let paths: Vec<PathBuf> = fs.read_write.iter().chain(&fs.read_only).cloned().collect();
    prepare(&profile.limits, &paths, profile.enforcement.limits, caps)
}

/// Decides the cgroup plan: the backend, every directory and file write, the rlimits, and
/// what is dropped. `io_paths` are the host paths whose block devices the io limits apply
/// to (at least the jail's writable paths). With [`Level::Required`] a limit this host
/// cannot enforce is an error; with [`Level::BestEffort`] it is recorded in `dropped`.
pub fn prepare(
    limits: &Limits,
    io_paths: &[PathBuf],
    level: Level,
    caps: &Cgroups,
) -> Result<CgroupPlan, CgroupError> {
    let wanted = Wanted::of(limits);
    let host = host(caps);
    let io_devices = io::devices(io_paths);
    // (what, why) for every limit the cgroup cannot carry.
    let mut missing: Vec<(String, String)> = Controller::ALL
        .into_iter()
        .filter(|c| wanted.wants(*c) && !host.available.contains(c))
        .flat_map(|c| {
            let why = (host.why)(c);
            describe(limits, c)
                .into_iter()
                .map(move |what| (what, why.clone()))
        })
        // No swap is active on the host: a swap limit holds without any cgroup.
        .filter(|(what, _)| caps.host_swap || !what.starts_with("swap "))
        .collect();
    // Swap can be limited only with swap accounting; without any active swap there is
    // nothing to limit, so the limit holds anyway.
    let swap_ok = caps.swap_accounting == Some(true) || !caps.host_swap;
    if let Some(swap) = limits.swap
        && host.available.contains(&Controller::Memory)
        && !swap_ok
    {
        missing.push((
            format!("swap {}", format_size(swap)),
            "swap accounting is off in this kernel".to_owned(),
        ));
    }
    if let (Some(swap), None, CgroupMode::V1Hybrid) = (limits.swap, limits.memory, caps.mode) {
        missing.push((
            format!("swap {}", format_size(swap)),
            "cgroup v1 limits swap only together with memory (memsw)".to_owned(),
        ));
    }
    let refused: Vec<String> = missing
        .iter()
        .map(|(w, why)| format!("{w}: {why}"))
        .collect();
    let dropped: Vec<Dropped> = missing
        .into_iter()
        .map(|(what, why)| Dropped {
            instead: rlimit::stand_in(&what),
            what,
            why,
        })
        .collect();
    if level == Level::Required && !refused.is_empty() {
        return Err(CgroupError::Refused {
            level: level.name(),
            mode: caps.mode.name(),
            items: refused,
        });
    }
    let name = next_name();
    let memory_by_cgroup = host.available.contains(&Controller::Memory);
    let pids_by_cgroup = host.available.contains(&Controller::Pids);
    let rlimits = Rlimits::plan(limits, !memory_by_cgroup, !pids_by_cgroup);
    let mut plan = CgroupPlan {
        backend: host.backend,
        name,
        dirs: Vec::new(),
        steps: Vec::new(),
        controllers: Vec::new(),
        dropped,
        io_devices,
        rlimits,
    };
    match host.backend {
        Backend::V2 => v2::plan(&mut plan, limits, &host.available, caps, swap_ok),
        Backend::V1Hybrid => v1::plan(&mut plan, limits, &host.available, caps),
        Backend::None => {}
    }
    if plan.dirs.is_empty() {
        plan.backend = Backend::None;
    }
    Ok(plan)
}

impl CgroupPlan {
    /// Makes the cgroup freezable, for a session that may be paused. v2: nothing to add
    /// (`cgroup.freeze` is in every non-root cgroup, kernel 5.2+). v1: a child in the
    /// freezer hierarchy beside the others, when we may create one there. Without a
    /// cgroup (rlimits only) there is nothing to freeze: the caller falls back to stopping
    /// the jail's processes ([`Cgroup::can_freeze`] says which).
    pub fn add_freezer(&mut self, caps: &Cgroups) {
        if caps.mode == CgroupMode::V1Hybrid && v1::add_freezer(self, caps) {
            self.backend = Backend::V1Hybrid;
        }
    }

    /// One line per step, for `--dry-run`-style output and tests.
    pub fn describe_steps(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let _ = match step {
                Step::MoveSelf { leaf } => writeln!(out, "move self -> {}", leaf.display()),
                Step::Enable { file, value } => writeln!(out, "{} <- {value}", file.display()),
                Step::Mkdir { path } => writeln!(out, "mkdir {}", path.display()),
                Step::Write { path, value } => writeln!(out, "{} <- {value}", path.display()),
            };
        }
        out
    }
}
