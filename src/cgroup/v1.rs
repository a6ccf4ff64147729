//! cgroup v1 (hybrid): one child cgroup beneath our own cgroup in each controller's
//! hierarchy. Our own cgroup may be a hierarchy's root: the jail cgroup is then a direct
//! child of the root, and nothing is ever written to the root's own files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Backend, CgroupError, CgroupPlan, CgroupReport, Dir, Host, Step, sys};
use crate::probe::cgroup::parse;
use crate::probe::{Cgroups, Controller};
use crate::profile::Limits;

pub(super) fn host(caps: &Cgroups) -> Host {
    let errors: Vec<(Controller, String)> = Controller::ALL
        .into_iter()
        .map(|c| {
            let h = caps.v1.iter().find(|h| h.controller == c.v1_name());
            let why = match h.and_then(|h| h.error.as_ref()) {
                Some(f) => f.message.clone(),
                None => format!("no writable {} hierarchy", c.v1_name()),
            };
            (
                c,
                format!("no writable {} cgroup (v1_hybrid): {why}", c.v1_name()),
            )
        })
        .collect();
    Host {
        backend: Backend::V1Hybrid,
        available: caps.writable.clone(),
        why: Box::new(move |c| {
            errors
                .iter()
                .find(|(k, _)| *k == c)
                .map(|(_, w)| w.clone())
                .unwrap_or_default()
        }),
    }
}

fn dir_of(caps: &Cgroups, c: Controller) -> Option<PathBuf> {
    caps.v1
        .iter()
        .find(|h| h.controller == c.v1_name() && h.writable)
        .and_then(|h| h.dir.clone())
}

/// Memory and cpu always (the peak memory and CPU figures), pids and blkio when the
/// profile limits them.
pub(super) fn plan(
    plan: &mut CgroupPlan,
    limits: &Limits,
    available: &[Controller],
    caps: &Cgroups,
) {
    let name = plan.name.clone();
    let add = |plan: &mut CgroupPlan, hierarchy: &'static str, base: PathBuf| {
        let path = base.join(&name);
        plan.steps.push(Step::Mkdir { path: path.clone() });
        plan.dirs.push(Dir {
            hierarchy,
            path: path.clone(),
        });
        path
    };
    let w = |plan: &mut CgroupPlan, dir: &Path, file: &str, value: String| {
        plan.steps.push(Step::Write {
            path: dir.join(file),
            value,
        });
    };
    if available.contains(&Controller::Memory)
        && let Some(base) = dir_of(caps, Controller::Memory)
    {
        let dir = add(plan, "memory", base);
        plan.controllers.push(Controller::Memory);
        if let Some(m) = limits.memory {
            w(plan, &dir, "memory.limit_in_bytes", m.to_string());
            // memsw counts memory plus swap; it must not be below the memory limit, so it
            // is written second. No swap limit in the profile means no swap at all.
            if caps.swap_accounting == Some(true) {
                let memsw = m.saturating_add(limits.swap.unwrap_or(0));
                w(plan, &dir, "memory.memsw.limit_in_bytes", memsw.to_string());
            }
        }
    }
    if available.contains(&Controller::Cpu)
        && let Some(base) = dir_of(caps, Controller::Cpu)
    {
        let dir = add(plan, "cpu", base);
        plan.controllers.push(Controller::Cpu);
        if let Some(cores) = limits.cpu {
            // The period first: the quota is checked against it.
            w(
                plan,
                &dir,
                "cpu.cfs_period_us",
                super::CPU_PERIOD_US.to_string(),
            );
            w(
                plan,
                &dir,
                "cpu.cfs_quota_us",
                super::cpu_quota_us(cores).to_string(),
            );
        }
        // cpuacct, for the CPU figure: co-mounted with cpu, or a hierarchy of its own.
        if !cpu_has_cpuacct(caps)
            && let Some(base) = cpuacct_dir(caps)
        {
            add(plan, "cpuacct", base);
        }
    }
    if limits.pids.is_some()
        && available.contains(&Controller::Pids)
        && let Some(base) = dir_of(caps, Controller::Pids)
    {
        let dir = add(plan, "pids", base);
        plan.controllers.push(Controller::Pids);
        if let Some(n) = limits.pids {
            w(plan, &dir, "pids.max", n.to_string());
        }
    }
    if !limits.io.is_empty()
        && !plan.io_devices.is_empty()
        && available.contains(&Controller::Io)
        && let Some(base) = dir_of(caps, Controller::Io)
    {
        let dir = add(plan, "blkio", base);
        plan.controllers.push(Controller::Io);
        let io = limits.io;
        for dev in plan.io_devices.clone() {
            for (file, v) in [
                ("blkio.throttle.read_bps_device", io.read_bps),
                ("blkio.throttle.write_bps_device", io.write_bps),
                ("blkio.throttle.read_iops_device", io.read_iops),
                ("blkio.throttle.write_iops_device", io.write_iops),
            ] {
                if let Some(v) = v {
                    w(plan, &dir, file, format!("{} {v}", dev.id()));
                }
            }
        }
    }
}

fn cpu_has_cpuacct(caps: &Cgroups) -> bool {
    let cpu_mount = caps
        .v1
        .iter()
        .find(|h| h.controller == "cpu")
        .and_then(|h| h.mount.clone());
    // The probe's copy of mountinfo: read once per run.
    caps.mounts.iter().any(|m| {
        m.has_v1("cpu") && m.has_v1("cpuacct") && Some(&m.mount_point) == cpu_mount.as_ref()
    })
}

/// Our own cgroup in a separately mounted cpuacct hierarchy, if we may create a child.
fn cpuacct_dir(caps: &Cgroups) -> Option<PathBuf> {
    let dir = cpuacct_base(caps)?;
    sys::can_write(&dir, true).then_some(dir)
}

/// Our own cgroup in a separately mounted cpuacct hierarchy.
pub(super) fn cpuacct_base(caps: &Cgroups) -> Option<PathBuf> {
    let own = caps
        .own
        .iter()
        .find(|o| o.controllers.iter().any(|c| c == "cpuacct"))?;
    let mount = parse::pick(
        caps.mounts.iter().filter(|m| m.has_v1("cpuacct")),
        &own.path,
    )?;
    parse::cgroup_dir(mount, &own.path).ok()
}

pub(super) fn figures(dirs: &[Dir], r: &mut CgroupReport) {
    for dir in dirs {
        let p = &dir.path;
        match dir.hierarchy {
            "memory" => {
                let oom = sys::read(&p.join("memory.oom_control")).ok();
                r.oom_kills = oom.as_deref().and_then(|t| sys::keyed(t, "oom_kill"));
                // With swap accounting, memsw may be the limit that fails first.
                r.memory_limit_hits = [p.join("memory.failcnt"), p.join("memory.memsw.failcnt")]
                    .iter()
                    .filter_map(|f| sys::number(f))
                    .max();
                r.memory_peak = sys::number(&p.join("memory.max_usage_in_bytes"));
            }
            "cpu" => {
                let stat = sys::read(&p.join("cpu.stat")).ok();
                r.cpu_throttled_periods =
                    stat.as_deref().and_then(|t| sys::keyed(t, "nr_throttled"));
                if let Some(ns) = sys::number(&p.join("cpuacct.usage")) {
                    r.cpu_usage_usec = Some(ns / 1000);
                }
            }
            "cpuacct" => {
                r.cpu_usage_usec = sys::number(&p.join("cpuacct.usage")).map(|ns| ns / 1000);
            }
            "pids" => {
                let events = sys::read(&p.join("pids.events")).ok();
                r.pids_limit_hits = events.as_deref().and_then(|t| sys::keyed(t, "max"));
            }
            _ => {}
        }
    }
}

/// Our own cgroup in the freezer hierarchy, if we may create a child there (where jail
/// cgroups go, and stale ones are looked for).
pub(super) fn freezer_dir(caps: &Cgroups) -> Option<PathBuf> {
    let own = caps
        .own
        .iter()
        .find(|o| o.controllers.iter().any(|c| c == "freezer"))?;
    let mount = parse::pick(
        caps.mounts.iter().filter(|m| m.has_v1("freezer")),
        &own.path,
    )?;
    let dir = parse::cgroup_dir(mount, &own.path).ok()?;
    sys::can_write(&dir, true).then_some(dir)
}

/// Adds a `plugjail-<pid>-<n>` child in the freezer hierarchy to the plan; false when
/// there is no writable freezer hierarchy.
pub(super) fn add_freezer(plan: &mut CgroupPlan, caps: &Cgroups) -> bool {
    if plan.dirs.iter().any(|d| d.hierarchy == "freezer") {
        return true;
    }
    let Some(base) = freezer_dir(caps) else {
        return false;
    };
    let path = base.join(&plan.name);
    plan.steps.push(Step::Mkdir { path: path.clone() });
    plan.dirs.push(Dir {
        hierarchy: "freezer",
        path,
    });
    true
}

/// Freezes the cgroup `dir` of the freezer hierarchy: `FROZEN` into `freezer.state`, then
/// reads it until the kernel says `FROZEN` (it says `FREEZING` while tasks are still on
/// their way). Past `timeout` the cgroup is thawed again and the error says so.
pub(super) fn freeze(dir: &Path, timeout: Duration) -> Result<(), CgroupError> {
    let state = dir.join("freezer.state");
    sys::write(&state, "FROZEN")?;
    let frozen = sys::wait_until(timeout, || sys::read(&state).map(|s| s.trim() == "FROZEN"));
    match frozen {
        Ok(true) => Ok(()),
        Ok(false) => {
            thaw(dir)?;
            Err(CgroupError::FreezeTimeout {
                path: state,
                waited: timeout,
            })
        }
        Err(e) => {
            let _ = thaw(dir);
            Err(e)
        }
    }
}

/// Thaws the cgroup `dir` of the freezer hierarchy (`THAWED`; at once, nothing to wait for).
pub(super) fn thaw(dir: &Path) -> Result<(), CgroupError> {
    sys::write(&dir.join("freezer.state"), "THAWED")
}
