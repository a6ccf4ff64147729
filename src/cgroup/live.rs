//! A jail cgroup once made: [`CgroupPlan::create`] carries out the plan's steps (and rolls
//! back what it made if one fails); [`Cgroup`] adds processes, reads the figures for the
//! verdict ([`CgroupReport`]), kills everything inside and removes the directories, also
//! when dropped.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{Backend, CgroupError, CgroupPlan, Dir, Dropped, IoDevice, Rlimits, Step};
use super::{sys, v1, v2};
use crate::probe::Controller;

impl CgroupPlan {
    /// Makes the cgroup(s): every step in order. On failure whatever was created is
    /// removed again (and both errors are kept if that fails too).
    pub fn create(&self) -> Result<Cgroup, CgroupError> {
        let mut made: Vec<PathBuf> = Vec::new();
        let result = self.run_steps(&mut made);
        if let Err(setup) = result {
            let cleanup = made
                .iter()
                .rev()
                .map(|dir| sys::kill_tree(dir).and_then(|()| sys::rmdir_tree(dir)))
                .find_map(Result::err);
            return Err(match cleanup {
                None => setup,
                Some(cleanup) => CgroupError::Rollback {
                    setup: Box::new(setup),
                    cleanup: Box::new(cleanup),
                },
            });
        }
        let dir_fd = match self.backend {
            Backend::V2 => Some(sys::open_dir(&self.dirs[0].path)?),
            _ => None,
        };
        Ok(Cgroup {
            backend: self.backend,
            name: self.name.clone(),
            dirs: self.dirs.clone(),
            controllers: self.controllers.clone(),
            dropped: self.dropped.clone(),
            io_devices: self.io_devices.clone(),
            rlimits: self.rlimits,
            dir_fd,
            removed: false,
        })
    }

    fn run_steps(&self, made: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        for step in &self.steps {
            match step {
                Step::MoveSelf { leaf } => v2::move_self(leaf)?,
                Step::Enable { file, value } => v2::enable(file, value)?,
                Step::Mkdir { path } => {
                    std::fs::create_dir(path).map_err(|source| CgroupError::Mkdir {
                        path: path.clone(),
                        source,
                    })?;
                    made.push(path.clone());
                }
                Step::Write { path, value } => sys::write(path, value)?,
            }
        }
        Ok(())
    }
}

/// A created jail cgroup. Dropping it kills what is inside and removes it; call
/// [`Cgroup::remove`] to see errors.
#[derive(Debug)]
pub struct Cgroup {
    backend: Backend,
    name: String,
    dirs: Vec<Dir>,
    controllers: Vec<Controller>,
    dropped: Vec<Dropped>,
    io_devices: Vec<IoDevice>,
    rlimits: Rlimits,
    dir_fd: Option<OwnedFd>,
    removed: bool,
}

/// What the cgroup saw, for the verdict. Figures are `None` where the backend or kernel
/// does not provide them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CgroupReport {
    pub backend: Backend,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub controllers: Vec<Controller>,
    pub dropped: Vec<Dropped>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub io_devices: Vec<IoDevice>,
    /// The rlimits the child applies, by name.
    pub rlimits: Vec<(&'static str, u64)>,
    /// Processes the OOM killer killed in the cgroup (v2 memory.events `oom_kill`, v1
    /// memory.oom_control `oom_kill`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_kills: Option<u64>,
    /// Times usage hit the memory limit (v2 memory.events `max`, v1 memory.failcnt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit_hits: Option<u64>,
    /// Bytes (v2 memory.peak, v1 memory.max_usage_in_bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<u64>,
    /// Microseconds of CPU (v2 cpu.stat `usage_usec`, v1 cpuacct.usage / 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_usage_usec: Option<u64>,
    /// Periods in which the CPU quota throttled the jail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_throttled_periods: Option<u64>,
    /// Forks refused by pids.max (pids.events `max`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit_hits: Option<u64>,
}

impl CgroupReport {
    /// The OOM killer acted in the jail: the verdict's `oom`.
    pub fn oom(&self) -> bool {
        self.oom_kills.is_some_and(|n| n > 0)
    }

    /// A fork was refused by the pids limit: the verdict's `pids_limit`.
    pub fn pids_limit(&self) -> bool {
        self.pids_limit_hits.is_some_and(|n| n > 0)
    }
}

impl Cgroup {
    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dirs(&self) -> &[Dir] {
        &self.dirs
    }

    pub fn rlimits(&self) -> &Rlimits {
        &self.rlimits
    }

    /// v2: the leaf directory, for `clone3(CLONE_INTO_CGROUP)` (`clone_args.cgroup`).
    pub fn dir_fd(&self) -> Option<BorrowedFd<'_>> {
        self.dir_fd.as_ref().map(|fd| {
            // SAFETY: the descriptor is owned by `self` and stays open while the borrow lives.
            unsafe { BorrowedFd::borrow_raw(fd.as_raw_fd()) }
        })
    }

    /// Moves process `pid` (all its threads) into the jail cgroup: `cgroup.procs` in every
    /// hierarchy. The jail itself does not use this (see [`Cgroup::join_fds`]); it places a
    /// process plugjail did not clone. On v1 the write usually waits for an RCU grace period.
    pub fn add(&self, pid: libc::pid_t) -> Result<(), CgroupError> {
        for dir in &self.dirs {
            sys::write(&dir.path.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// v1: the `tasks` file of every hierarchy, opened for writing, for the jail's child to
    /// join the cgroup itself (child step 19b) by writing `0` into each: a thread moving
    /// itself takes no global lock, while a write of a pid to `cgroup.procs` takes
    /// `cgroup_threadgroup_rwsem` for writing and usually waits for an RCU grace period
    /// (5-20 ms here). Empty on v2 (`clone3` places the child with `CLONE_INTO_CGROUP`)
    /// and without a cgroup. The descriptors are close-on-exec and opened with plugjail's
    /// credentials: the child's own no longer count.
    pub fn join_fds(&self) -> Result<Vec<OwnedFd>, CgroupError> {
        if self.backend != Backend::V1Hybrid {
            return Ok(Vec::new());
        }
        self.dirs
            .iter()
            .map(|dir| sys::open_write(&dir.path.join("tasks")))
            .collect()
    }

    /// Reads the figures. Never fails: a file that cannot be read gives `None`.
    pub fn report(&self) -> CgroupReport {
        let mut r = CgroupReport {
            backend: self.backend,
            name: (self.backend != Backend::None).then(|| self.name.clone()),
            controllers: self.controllers.clone(),
            dropped: self.dropped.clone(),
            io_devices: self.io_devices.clone(),
            rlimits: self.rlimits.named(),
            oom_kills: None,
            memory_limit_hits: None,
            memory_peak: None,
            cpu_usage_usec: None,
            cpu_throttled_periods: None,
            pids_limit_hits: None,
        };
        match self.backend {
            Backend::V2 => v2::figures(&self.dirs[0].path, &mut r),
            Backend::V1Hybrid => v1::figures(&self.dirs, &mut r),
            Backend::None => {}
        }
        r
    }

    /// Whether [`Cgroup::freeze`] can work: v2 (every leaf has `cgroup.freeze`), or v1 with
    /// a freezer child ([`super::CgroupPlan::add_freezer`]).
    pub fn can_freeze(&self) -> bool {
        self.freezer().is_some()
    }

    /// The directory whose freezer pauses the jail, and its backend.
    fn freezer(&self) -> Option<(&Path, Backend)> {
        match self.backend {
            Backend::V2 => self
                .dirs
                .first()
                .map(|d| d.path.as_path())
                .filter(|p| p.join("cgroup.freeze").exists())
                .map(|p| (p, Backend::V2)),
            Backend::V1Hybrid => self
                .dirs
                .iter()
                .find(|d| d.hierarchy == "freezer")
                .map(|d| (d.path.as_path(), Backend::V1Hybrid)),
            Backend::None => None,
        }
    }

    /// Freezes every process of the cgroup and returns once the kernel says they are all
    /// frozen (v2 `cgroup.events` `frozen 1`, v1 `freezer.state` `FROZEN`), or thaws it
    /// again and fails after `timeout`. Freezing a frozen cgroup is harmless.
    pub fn freeze(&self, timeout: Duration) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((dir, Backend::V2)) => v2::freeze(dir, timeout),
            Some((dir, _)) => v1::freeze(dir, timeout),
            None => Err(CgroupError::NoFreezer {
                backend: self.backend.name(),
            }),
        }
    }

    /// Thaws the cgroup: its processes run again. Thawing a thawed cgroup is harmless.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((dir, Backend::V2)) => v2::thaw(dir),
            Some((dir, _)) => v1::thaw(dir),
            None => Err(CgroupError::NoFreezer {
                backend: self.backend.name(),
            }),
        }
    }

    /// Kills every process in the cgroup (and any sub-cgroup) and waits until it is empty:
    /// v2 `cgroup.kill`, else rounds of SIGKILL to every pid listed in `cgroup.procs`. A
    /// frozen cgroup is killed too: v2 kills frozen tasks; on v1 the first round of SIGKILL
    /// goes to the frozen tasks, then the freezer thaws them, so they die without running
    /// another instruction.
    pub fn kill_all(&self) -> Result<(), CgroupError> {
        self.unfreeze_killed()?;
        for dir in &self.dirs {
            if self.backend == Backend::V2 {
                v2::kill(&dir.path)?;
            } else {
                sys::kill_tree(&dir.path)?;
            }
        }
        Ok(())
    }

    /// v1: SIGKILL to everything in the freezer child, then thaw it (a frozen v1 task
    /// never dies, and the teardown would wait for it in vain). Nothing to do elsewhere.
    fn unfreeze_killed(&self) -> Result<(), CgroupError> {
        match self.freezer() {
            Some((dir, Backend::V1Hybrid)) if dir.exists() => {
                sys::kill_round(dir);
                v1::thaw(dir)
            }
            _ => Ok(()),
        }
    }

    /// Kills what is left inside and removes the directories (waiting briefly while the
    /// kernel finishes tearing the processes down).
    pub fn remove(mut self) -> Result<(), CgroupError> {
        self.removed = true;
        self.teardown()
    }

    fn teardown(&mut self) -> Result<(), CgroupError> {
        self.dir_fd = None;
        let mut first = self.unfreeze_killed().err();
        for dir in &self.dirs {
            let r = if self.backend == Backend::V2 {
                v2::kill(&dir.path)
            } else {
                sys::kill_tree(&dir.path)
            }
            .and_then(|()| sys::rmdir_tree(&dir.path));
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        if !self.removed {
            self.removed = true;
            if let Err(e) = self.teardown() {
                eprintln!("plugjail: cgroup cleanup: {e}");
            }
        }
    }
}
