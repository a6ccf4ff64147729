//! Reading a jail's ending: how the program ended (the init's record, the child's failure
//! record, the wait status), explained by the limit or the stop that ended it when one did.

use std::path::Path;

use super::Context;
use crate::cgroup::CgroupReport;
use crate::jail::init::Naming;
use crate::jail::{Ending, Failure, Finished, Plan, Step, Stopped};
use crate::profile::{self, Profile};
use crate::verdict::{Outcome, Timeout, TimeoutKind, Verdict};

/// The verdict for a jail that ran: how the program ended, explained by the limit that
/// ended it when one did. A kill by plugjail comes first (it caused the ending), then the
/// kernel's limits.
pub(super) fn ending_verdict(
    f: &Finished,
    plan: &Plan,
    target: &Path,
    profile: &Profile,
    cg: &CgroupReport,
    ctx: &Context,
) -> Verdict {
    let failed =
        |outcome, step: &str, errno, message: String| ctx.failed(outcome, step, errno, message);
    let (profile_path, command) = (ctx.profile_path, ctx.command);
    let v = match f.ending {
        Ending::Exited(code) => Verdict::exited(profile_path, command, code),
        // A kill_process filter the init could not trace: the kill names no syscall.
        Ending::Signaled(libc::SIGSYS) if let Naming::Refused(errno) = f.naming => {
            return Verdict::seccomp_violation_unnamed(profile_path, command, errno);
        }
        Ending::Signaled(sig) => Verdict::signaled(profile_path, command, sig),
        Ending::SeccompViolation(v) => {
            return Verdict::seccomp_violation(profile_path, command, &v, &profile.seccomp);
        }
        Ending::HandoverFailed(errno) => {
            let message = "the stub's channel could not be handed over when it asked for it: \
                           its end of the handshake socket was closed or replaced, which only \
                           the plugin's code does"
                .to_owned();
            return failed(
                Outcome::ProtocolViolation,
                "serve_switch",
                Some(errno),
                message,
            );
        }
        Ending::Failed(failure) => {
            let (outcome, message) = describe_failure(plan, &failure, target);
            return failed(outcome, failure.step.name(), Some(failure.errno), message);
        }
        Ending::InitEnded(status) => init_ended(status, profile_path, command, &failed),
    };
    let limits = &profile.limits;
    let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let timed_out = |mut v: Verdict, kind, limit| {
        v.timeout = Some(Timeout {
            kind,
            limit_ms: Some(ms(limit)),
        });
        v
    };
    match f.stopped {
        Some(Stopped::Deadline) => {
            let limit = limits.wall_time.unwrap_or_default();
            let text = format!("wall time {}", profile::units::format_duration(limit));
            return timed_out(v.because(Outcome::Timeout, text), TimeoutKind::Wall, limit);
        }
        // The caller's watch ended it and explains why (plugin mode).
        Some(Stopped::Watched) => return v,
        Some(Stopped::Signal(sig)) => {
            let mut v = Verdict::signaled(profile_path, command, sig);
            v.message = Some(format!(
                "plugjail received {} and ended the jail",
                crate::verdict::Named::signal(sig).name
            ));
            return v;
        }
        None => {}
    }
    if cg.oom() {
        let limit = limits.memory.map(profile::units::format_size);
        let text = limit.map_or("memory".to_owned(), |l| format!("memory limit {l}"));
        return v.because(Outcome::Oom, text);
    }
    if cg.pids_limit() {
        let text = format!("pids limit {}", limits.pids.unwrap_or_default());
        return v.because(Outcome::PidsLimit, text);
    }
    // RLIMIT_CPU: SIGXCPU at the limit, SIGKILL a second later if the program ignored it
    // (then it has used more than the limit). The CPU time is per process, so one process
    // at its limit is enough.
    if let (Some(limit), Some(sig)) = (limits.cpu_time, v.signal.as_ref().map(|s| s.number))
        && (sig == libc::SIGXCPU
            || sig == libc::SIGKILL && u128::from(f.cpu_usec) > limit.as_micros())
    {
        let text = format!("cpu time {}", profile::units::format_duration(limit));
        return timed_out(v.because(Outcome::Timeout, text), TimeoutKind::Cpu, limit);
    }
    v
}

/// The init ended without reporting the program: the jail was killed from outside (the
/// kernel then killed everything in it). A signal is reported as the program's, since it
/// died of the same one; anything else is a supervision failure.
fn init_ended(
    status: i32,
    profile: &Path,
    command: &[String],
    failed: &impl Fn(Outcome, &str, Option<i32>, String) -> Verdict,
) -> Verdict {
    if libc::WIFSIGNALED(status) {
        let mut v = Verdict::signaled(profile, command, libc::WTERMSIG(status));
        v.message = Some("the whole jail was killed from outside".to_owned());
        return v;
    }
    let msg = format!(
        "the jail's init exited with {} before the program's end was known",
        libc::WEXITSTATUS(status)
    );
    failed(Outcome::SetupFailed, "supervise", None, msg)
}

/// Turns a child's (step, errno, item) record into an outcome and a sentence.
fn describe_failure(plan: &Plan, f: &Failure, target: &Path) -> (Outcome, String) {
    let errno = nix::errno::Errno::from_raw(f.errno);
    let about = plan
        .fs
        .as_ref()
        .and_then(|ops| ops.get(f.item as usize))
        .map(|s| s.about.display().to_string());
    if f.step == Step::Exec {
        let t = target.display();
        return match f.errno {
            libc::ENOENT => (
                Outcome::NotFound,
                format!(
                    "{t}: its dynamic loader (ELF interpreter) is not visible in the jail; \
                     bind it read-only in the profile (e.g. /usr, /lib64)"
                ),
            ),
            libc::EACCES | libc::EPERM | libc::ENOEXEC | libc::ETXTBSY | libc::EISDIR => {
                (Outcome::CannotExecute, format!("{t}: {}", errno.desc()))
            }
            _ => (
                Outcome::SetupFailed,
                format!("execveat {t}: {}", errno.desc()),
            ),
        };
    }
    let detail = match (f.step, about) {
        (Step::Landlock, _) => {
            let rule = plan
                .landlock
                .as_ref()
                .and_then(|l| l.rule_path(f.item as usize))
                .map(|p| format!(" (rule for {})", p.to_string_lossy()));
            format!("applying landlock{}", rule.unwrap_or_default())
        }
        (step, Some(path)) => format!("{} for {path}", step.name()),
        (step, None) => step.name().to_owned(),
    };
    (Outcome::SetupFailed, format!("{detail}: {}", errno.desc()))
}
