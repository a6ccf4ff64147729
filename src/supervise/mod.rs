//! The supervisor: the one path from a planned jail to its verdict, shared by `exec`,
//! `serve` and `call` (and by anything else that runs a jail). The command modules decide
//! *what* runs (options, the target, the plan); this module runs it: limits, start, the
//! wait with its deadlines and stop signals, cleanup, and the reading of the ending.
//!
//! - [`Context`] (`context.rs`): what every verdict carries and how it is delivered;
//! - [`Hooks`]: what a mode adds once the jail runs (plugin mode's watch page and host);
//! - [`run_plan`]: limits (`limits.rs`), start, supervision, the verdict (`ending.rs`)
//!   with what was enforced (`enforced.rs`).

mod context;
mod ending;
mod enforced;
mod limits;

use std::path::Path;

use crate::jail::init::Naming;
use crate::jail::{self, Plan};
use crate::profile::Profile;
use crate::verdict::{Outcome, Resources, Verdict};

pub(crate) use context::Context;
pub(crate) use enforced::seccomp_report;

/// What a mode adds to the shared run; every method has a do-nothing default.
pub(crate) trait Hooks {
    /// The jail has started. plugjail may start threads from here on (the single-threaded
    /// clone is behind it), and should drop descriptors only the jail needs.
    fn started(&mut self, _plan: &mut Plan) {}
    /// Extra supervision next to the wall-time deadline and the stop signals.
    fn watch(&mut self) -> Option<&mut dyn jail::Watch> {
        None
    }
    /// The jail may be paused: give its cgroup a freezer where that takes one (cgroup v1).
    fn freezer(&self) -> bool {
        false
    }
}

/// A mode that adds nothing (`plugjail exec`).
pub(crate) struct NoHooks;
impl Hooks for NoHooks {}

/// Limits, start, supervision and the verdict of a planned jail: the one path `exec`,
/// `serve` and `call` share. `target` is the program's host path (for messages).
pub(crate) fn run_plan(
    ctx: &Context,
    profile: &Profile,
    plan: &mut Plan,
    target: &Path,
    hooks: &mut dyn Hooks,
) -> Verdict {
    // Limits: a cgroup where the host allows one, rlimits always; fails closed when the
    // profile requires what it cannot get.
    let (cgroup, caps) = limits::set_up(profile, plan, hooks.freezer());
    let cgroup = match cgroup {
        Ok(cg) => cg,
        Err(e) => return ctx.failed(Outcome::SetupFailed, "cgroup", None, e.to_string()),
    };
    crate::timing::mark("cgroup");
    let stop = jail::block_stop_signals().ok();
    let deadline = profile.limits.wall_time.map(|d| ctx.started + d);
    let finished = jail::start(plan, Some(&cgroup)).and_then(|running| {
        limits::reap_stale(&caps);
        hooks.started(plan);
        running.supervise_watched(deadline, stop.as_ref(), Some(&cgroup), hooks.watch())
    });
    crate::timing::mark("ended");
    let finished_naming = finished.as_ref().ok().map(|f| f.naming);
    let report = cgroup.report();
    if let Err(e) = cgroup.remove() {
        eprintln!("plugjail: {e}");
    }
    let mut v = match finished {
        Err(e) => ctx.failed(Outcome::SetupFailed, e.step(), e.errno(), e.to_string()),
        Ok(f) => {
            let v = ending::ending_verdict(&f, plan, target, profile, &report, ctx);
            Verdict {
                resources: Some(Resources {
                    cpu_time_ms: f.cpu_usec / 1000,
                    max_rss_bytes: f.max_rss,
                    memory_peak_bytes: report.memory_peak,
                }),
                ..v
            }
        }
    };
    let naming = finished_naming.unwrap_or(Naming::NotWanted);
    let mut enforced = enforced::enforced(plan, profile.seccomp.default_action, naming);
    enforced.cgroup = Some(report);
    v.enforced = Some(enforced);
    v
}
