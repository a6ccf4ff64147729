//! `plugjail exec`: run one executable in the jail and report a verdict.
//!
//! Order: check the status fd and the report file, load the profile, open the program
//! (before any jail exists), build the plan, start the jail, wait, deliver the verdict.
//! Exit status ([`ExitStatusMode::Program`], the default): the program's own; 128+N when
//! it was killed by signal N; 125 when the jail could not be set up (a broken profile
//! included); 126 / 127 when the program cannot be executed / is not found. With
//! [`ExitStatusMode::Outcome`] it names the outcome instead ([`outcome_exit_status`]).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cgroup::{self, CgroupReport};
use crate::jail::init::Naming;
use crate::jail::{self, Ending, Failure, Finished, Plan, Step, Stopped, TargetError};
use crate::profile::{self, Action, Profile};
use crate::verdict::{
    Enforced, Outcome, ReportFile, Resources, SeccompReport, Timeout, TimeoutKind, Verdict,
};

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
        let profile = match ctx.load_profile() {
            Ok(p) => p,
            Err(v) => break 'run *v,
        };
        let Some(cmd) = opts.command.first() else {
            let msg = "no command given".to_owned();
            break 'run ctx.failed(Outcome::SetupFailed, "command", None, msg);
        };
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

/// What every mode's verdict carries (profile path, the command shown) and when the run
/// started. Shared by `exec`, `serve` and `call`.
pub(crate) struct Context<'a> {
    pub profile_path: &'a Path,
    pub command: &'a [String],
    pub started: Instant,
}

impl<'a> Context<'a> {
    pub fn new(profile_path: &'a Path, command: &'a [String]) -> Context<'a> {
        Context {
            profile_path,
            command,
            started: Instant::now(),
        }
    }

    /// A verdict for a run that never started.
    pub fn failed(
        &self,
        outcome: Outcome,
        step: &str,
        errno: Option<i32>,
        message: String,
    ) -> Verdict {
        Verdict::failed(
            outcome,
            self.profile_path,
            self.command,
            step,
            errno,
            message,
        )
    }

    /// A verdict can only be delivered on an open status fd: check it first.
    pub fn check_status_fd(&self, fd: Option<RawFd>) -> Result<(), Box<Verdict>> {
        match fd {
            Some(fd) if !fd_is_open(fd) => {
                let msg = format!("--status-fd {fd} is not an open file descriptor");
                Err(Box::new(self.failed(
                    Outcome::SetupFailed,
                    "status_fd",
                    Some(libc::EBADF),
                    msg,
                )))
            }
            _ => Ok(()),
        }
    }

    /// Opens `--report FILE` now (created or truncated), before the jail exists: a report
    /// that cannot be written is a setup failure like a bad status fd, not a run whose
    /// verdict is lost at the end.
    pub fn open_report(&self, path: Option<&Path>) -> Result<Option<ReportFile>, Box<Verdict>> {
        let Some(path) = path else {
            return Ok(None);
        };
        ReportFile::create(path).map(Some).map_err(|e| {
            let msg = format!(
                "--report {}: cannot open it for writing: {e}",
                path.display()
            );
            Box::new(self.failed(Outcome::SetupFailed, "report", e.raw_os_error(), msg))
        })
    }

    /// Loads the profile; every problem goes to stderr, the verdict says which file.
    pub fn load_profile(&self) -> Result<Profile, Box<Verdict>> {
        profile::load(self.profile_path).map_err(|errors| {
            eprint!("{errors}");
            let msg = format!("the profile {} is not valid", self.profile_path.display());
            Box::new(self.failed(Outcome::SetupFailed, "profile", None, msg))
        })
    }

    /// Stamps the wall time, delivers the verdict (stderr line, report file, status fd)
    /// and returns plugjail's exit status.
    pub fn deliver(
        &self,
        mut verdict: Verdict,
        report: Option<&mut ReportFile>,
        status_fd: Option<RawFd>,
    ) -> u8 {
        verdict.wall_time_ms =
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status_fd = status_fd.filter(|fd| fd_is_open(*fd));
        for problem in verdict.deliver(report, status_fd) {
            eprintln!("plugjail: {problem}");
        }
        verdict.exit_status
    }
}

/// What a mode adds to the shared run; every method has a do-nothing default.
pub(crate) trait Hooks {
    /// The jail has started. plugjail may start threads from here on (the single-threaded
    /// clone is behind it), and should drop descriptors only the jail needs.
    fn started(&mut self, _plan: &mut Plan) {}
    /// Extra supervision next to the wall-time deadline and the stop signals.
    fn watch(&mut self) -> Option<&mut dyn jail::Watch> {
        None
    }
}

/// `plugjail exec` adds nothing.
struct NoHooks;
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
    // Limits: a cgroup where the host allows one (stale ones from killed runs reaped
    // first), rlimits always; fails closed when the profile requires what it cannot get.
    let caps = crate::probe::cgroups();
    cgroup::reap_stale(&caps);
    let cgroup = match cgroup::prepare_profile(profile, &caps).and_then(|p| {
        add_rlimits(plan, p.rlimits.as_slice());
        p.create()
    }) {
        Ok(cg) => cg,
        Err(e) => return ctx.failed(Outcome::SetupFailed, "cgroup", None, e.to_string()),
    };
    let stop = jail::block_stop_signals().ok();
    let deadline = profile.limits.wall_time.map(|d| ctx.started + d);
    let finished = jail::start(plan, Some(&cgroup)).and_then(|running| {
        hooks.started(plan);
        running.supervise_watched(deadline, stop.as_ref(), Some(&cgroup), hooks.watch())
    });
    let finished_naming = finished.as_ref().ok().map(|f| f.naming);
    let report = cgroup.report();
    if let Err(e) = cgroup.remove() {
        eprintln!("plugjail: {e}");
    }
    let mut v = match finished {
        Err(e) => ctx.failed(Outcome::SetupFailed, e.step(), e.errno(), e.to_string()),
        Ok(f) => {
            let v = ending_verdict(&f, plan, target, profile, &report, ctx);
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
    let mut enforced = enforced(plan, profile.seccomp.default_action, naming);
    enforced.cgroup = Some(report);
    v.enforced = Some(enforced);
    v
}

/// Adds the limits backend's rlimits (e.g. RLIMIT_AS standing in for a memory cgroup)
/// that the plan does not already set; the plan's own values win.
fn add_rlimits(plan: &mut Plan, extra: &[(u32, u64)]) {
    for &(resource, value) in extra {
        if !plan.rlimits.iter().any(|(r, _)| *r == resource) {
            plan.rlimits.push((resource, value));
        }
    }
}

/// The verdict for a jail that ran: how the program ended, explained by the limit that
/// ended it when one did. A kill by plugjail comes first (it caused the ending), then the
/// kernel's limits.
fn ending_verdict(
    f: &Finished,
    plan: &Plan,
    target: &std::path::Path,
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
        && (sig == libc::SIGXCPU || sig == libc::SIGKILL && f.cpu_usec > limit.as_micros() as u64)
    {
        let text = format!("cpu time {}", profile::units::format_duration(limit));
        return timed_out(v.because(Outcome::Timeout, text), TimeoutKind::Cpu, limit);
    }
    v
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
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

/// The init ended without reporting the program: the jail was killed from outside (the
/// kernel then killed everything in it). A signal is reported as the program's, since it
/// died of the same one; anything else is a supervision failure.
fn init_ended(
    status: i32,
    profile: &std::path::Path,
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
fn describe_failure(plan: &Plan, f: &Failure, target: &std::path::Path) -> (Outcome, String) {
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

/// What a compiled seccomp program enforces, for the verdict.
pub(crate) fn seccomp_report(
    s: &crate::seccomp::SeccompProgram,
    default_action: Action,
    naming: &'static str,
) -> SeccompReport {
    let action = match default_action {
        Action::KillProcess => "kill_process",
        Action::Trap => "trap",
        Action::Errno => "errno",
        Action::Log => "log",
    };
    SeccompReport {
        phase: s.phase().name(),
        default_action: action,
        instructions: s.instructions(),
        allowed_syscalls: s.allowed_syscalls(),
        absent: s.absent().to_vec(),
        naming,
    }
}

fn enforced(plan: &Plan, default_action: Action, naming: Naming) -> Enforced {
    let naming = crate::verdict::naming_name(naming);
    Enforced {
        namespaces: plan.namespaces.unshared.clone(),
        namespaces_dropped: plan.namespaces.dropped.clone(),
        landlock: plan.landlock.as_ref().map(|l| l.report().clone()),
        seccomp: plan
            .seccomp
            .as_ref()
            .map(|s| seccomp_report(s, default_action, naming)),
        seccomp_serve: None,
        seccomp_serve_skipped: None,
        rootless: plan.rootless,
        uid_map: plan.ids.uid_map.clone(),
        gid_map: plan.ids.gid_map.clone(),
        missing_paths: plan.missing.clone(),
        cgroup: None,
    }
}

#[cfg(test)]
mod tests {
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
