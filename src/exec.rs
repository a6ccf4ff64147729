//! `plugjail exec`: run one executable in the jail and report a verdict.
//!
//! Order: check the status fd, load the profile, open the program (before any jail
//! exists), build the plan, start the jail, wait, deliver the verdict. Exit status: the
//! program's own; 128+N when it was killed by signal N; 125 when the jail could not be set
//! up (a broken profile included); 126 / 127 when the program cannot be executed / is not
//! found.

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Instant;

use crate::jail::{self, Ending, Failure, Plan, Step, TargetError};
use crate::profile::{self, Action};
use crate::verdict::{Enforced, Outcome, SeccompReport, Verdict};

pub struct ExecOptions {
    pub profile: PathBuf,
    pub report: Option<PathBuf>,
    pub status_fd: Option<RawFd>,
    pub command: Vec<OsString>,
}

pub fn run(opts: ExecOptions) -> u8 {
    let started = Instant::now();
    let command: Vec<String> = opts
        .command
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let failed = |outcome, step: &str, errno, message: String| {
        Verdict::failed(outcome, &opts.profile, &command, step, errno, message)
    };
    let mut verdict = 'run: {
        if let Some(fd) = opts.status_fd
            && !fd_is_open(fd)
        {
            let msg = format!("--status-fd {fd} is not an open file descriptor");
            break 'run failed(Outcome::SetupFailed, "status_fd", Some(libc::EBADF), msg);
        }
        let profile = match profile::load(&opts.profile) {
            Ok(p) => p,
            Err(errors) => {
                eprint!("{errors}");
                let msg = format!("the profile {} is not valid", opts.profile.display());
                break 'run failed(Outcome::SetupFailed, "profile", None, msg);
            }
        };
        let Some(cmd) = opts.command.first() else {
            let msg = "no command given".to_owned();
            break 'run failed(Outcome::SetupFailed, "command", None, msg);
        };
        let target = match jail::target::open(cmd) {
            Ok(t) => t,
            Err(e) => break 'run target_failure(&e, &failed),
        };
        let target_path = target.path.clone();
        let plan = match jail::build(&profile, target, &opts.command, |n| std::env::var_os(n)) {
            Ok(p) => p,
            Err(e) => break 'run failed(Outcome::SetupFailed, "plan", None, e.to_string()),
        };
        let enforced = enforced(&plan, profile.seccomp.default_action);
        let ending = jail::start(&plan).and_then(|running| running.wait());
        let mut v = match ending {
            Err(e) => failed(Outcome::SetupFailed, e.step(), e.errno(), e.to_string()),
            Ok(Ending::Exited(code)) => Verdict::exited(&opts.profile, &command, code),
            Ok(Ending::Signaled(sig)) => Verdict::signaled(&opts.profile, &command, sig),
            Ok(Ending::Failed(f)) => {
                let (outcome, message) = describe_failure(&plan, &f, &target_path);
                failed(outcome, f.step.name(), Some(f.errno), message)
            }
            Ok(Ending::InitEnded(status)) => init_ended(status, &opts.profile, &command, &failed),
        };
        v.enforced = Some(enforced);
        v
    };
    verdict.wall_time_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let status_fd = opts.status_fd.filter(|fd| fd_is_open(*fd));
    for problem in verdict.deliver(opts.report.as_deref(), status_fd) {
        eprintln!("plugjail: {problem}");
    }
    verdict.exit_status
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

fn enforced(plan: &Plan, default_action: Action) -> Enforced {
    let action = match default_action {
        Action::KillProcess => "kill_process",
        Action::Trap => "trap",
        Action::Errno => "errno",
        Action::Log => "log",
    };
    Enforced {
        namespaces: plan.namespaces.unshared.clone(),
        namespaces_dropped: plan.namespaces.dropped.clone(),
        landlock: plan.landlock.as_ref().map(|l| l.report().clone()),
        seccomp: plan.seccomp.as_ref().map(|s| SeccompReport {
            phase: s.phase().name(),
            default_action: action,
            instructions: s.instructions(),
            allowed_syscalls: s.allowed_syscalls(),
            absent: s.absent().to_vec(),
        }),
        rootless: plan.rootless,
        uid_map: plan.ids.uid_map.clone(),
        gid_map: plan.ids.gid_map.clone(),
        missing_paths: plan.missing.clone(),
    }
}
