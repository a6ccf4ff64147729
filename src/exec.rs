//! `plugjail exec`: run one executable in the jail and report a verdict.
//!
//! Order: check the status fd and the report file, load the profile, open the program
//! (before any jail exists), build the plan, hand it to the supervisor
//! (`supervise::run_plan`: limits, start, wait, the verdict), deliver the verdict.
//! Exit status ([`ExitStatusMode::Program`], the default): the program's own; 128+N when
//! it was killed by signal N; 125 when the jail could not be set up (a broken profile
//! included); 126 / 127 when the program cannot be executed / is not found. With
//! [`ExitStatusMode::Outcome`] it names the outcome instead ([`outcome_exit_status`]).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use crate::jail::{self, TargetError};
use crate::supervise::{Context, NoHooks, run_plan};
use crate::verdict::{Outcome, Verdict};

pub struct ExecOptions {
    pub profile: PathBuf,
    pub report: Option<PathBuf>,
    pub status_fd: Option<RawFd>,
    pub exit_status: ExitStatusMode,
    pub command: Vec<OsString>,
}

/// What `plugjail exec`'s exit status says (`--exit-status`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ExitStatusMode {
    /// The program's own status, as a shell would report it (128 + N for signal N), so
    /// plugjail can stand in for the program; limits are told apart only by the verdict.
    #[default]
    Program,
    /// The outcome, one status each ([`outcome_exit_status`]): a caller tells `oom`,
    /// `timeout`, `pids_limit` and `seccomp_violation` apart without reading the verdict.
    Outcome,
}

/// `--exit-status outcome`: plugin mode's table (docs/verdict.md) where it applies, with
/// `exec`'s own 125–127, and the program's code reduced to success or failure:
///
/// | status | outcome |
/// |---|---|
/// | 0 | `exited` with code 0 |
/// | 1 | `exited` with any other code (the verdict's `exit_code` has it) |
/// | 5 | `timeout` (wall or cpu) |
/// | 6 | `oom` |
/// | 7 | `pids_limit` |
/// | 8 | `seccomp_violation` |
/// | 125 / 126 / 127 | `setup_failed` / `cannot_execute` / `not_found` |
/// | 128 + N | `signaled` N (no limit explains it) |
pub fn outcome_exit_status(v: &Verdict) -> u8 {
    match v.outcome {
        Outcome::Exited if v.exit_code == Some(0) => 0,
        Outcome::Exited => 1,
        Outcome::SetupFailed => 125,
        Outcome::CannotExecute => 126,
        Outcome::NotFound => 127,
        _ => crate::plugin_mode::outcome::exit_status(v),
    }
}

pub fn run(opts: ExecOptions) -> u8 {
    let command: Vec<String> = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    crate::jail::hold_stop_signals();
    let ctx = Context::new(&opts.profile, &command);
    let mut report = None;
    let verdict = 'run: {
        if let Err(v) = ctx.check_status_fd(opts.status_fd) {
            break 'run *v;
        }
        report = match ctx.open_report(opts.report.as_deref()) {
            Ok(r) => r,
            Err(v) => break 'run *v,
        };
        crate::timing::mark("report");
        let profile = match ctx.load_profile() {
            Ok(p) => p,
            Err(v) => break 'run *v,
        };
        let Some(cmd) = opts.command.first() else {
            let msg = "no command given".to_owned();
            break 'run ctx.failed(Outcome::SetupFailed, "command", None, msg);
        };
        crate::timing::mark("profile");
        let target = match jail::target::open(cmd) {
            Ok(t) => t,
            Err(e) => break 'run target_failure(&e, &|o, s: &str, e, m| ctx.failed(o, s, e, m)),
        };
        let target_path = target.path.clone();
        let mut plan = match jail::build(&profile, target, &opts.command, |n| std::env::var_os(n)) {
            Ok(p) => p,
            Err(e) => break 'run ctx.failed(Outcome::SetupFailed, "plan", None, e.to_string()),
        };
        run_plan(&ctx, &profile, &mut plan, &target_path, &mut NoHooks)
    };
    let mut verdict = verdict;
    if opts.exit_status == ExitStatusMode::Outcome {
        verdict.exit_status = outcome_exit_status(&verdict);
    }
    ctx.deliver(verdict, report.as_mut(), opts.status_fd)
}

fn target_failure(
    e: &TargetError,
    failed: &impl Fn(Outcome, &str, Option<i32>, String) -> Verdict,
) -> Verdict {
    let errno = match e {
        TargetError::Open { source, .. } | TargetError::Memfd { source, .. } => {
            source.raw_os_error()
        }
        TargetError::NotFound { .. } => Some(libc::ENOENT),
        TargetError::CannotExecute { .. } => None,
    };
    let outcome = match e.exit_status() {
        127 => Outcome::NotFound,
        126 => Outcome::CannotExecute,
        _ => Outcome::SetupFailed,
    };
    failed(outcome, "open_command", errno, e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn outcome_exit_statuses_tell_the_limits_apart() {
        let (p, cmd) = (Path::new("p.yaml"), vec!["/bin/true".to_owned()]);
        let killed = || Verdict::signaled(p, &cmd, libc::SIGKILL);
        let status = |v: Verdict| (v.exit_status, outcome_exit_status(&v));
        assert_eq!(status(Verdict::exited(p, &cmd, 0)), (0, 0));
        assert_eq!(status(Verdict::exited(p, &cmd, 6)), (6, 1));
        assert_eq!(status(killed()), (137, 137));
        for (outcome, code) in [
            (Outcome::Timeout, 5),
            (Outcome::Oom, 6),
            (Outcome::PidsLimit, 7),
        ] {
            assert_eq!(
                status(killed().because(outcome, String::new())),
                (137, code)
            );
        }
        let violation = Verdict::seccomp_violation_unnamed(p, &cmd, libc::EPERM);
        assert_eq!(status(violation), (159, 8));
        for (outcome, code) in [
            (Outcome::SetupFailed, 125),
            (Outcome::CannotExecute, 126),
            (Outcome::NotFound, 127),
        ] {
            let v = Verdict::failed(outcome, p, &cmd, "x", None, String::new());
            assert_eq!(status(v), (code, code));
        }
    }
}
