//! The verdict: exactly one per run, as JSON for machines and one line for people.
//!
//! Fields are added, never renamed: later outcomes (`oom`, `timeout`, `pids_limit`,
//! `seccomp_violation`, `protocol_violation`, `plugin_rejected`) and resource figures slot
//! in as new optional fields. Consumers must ignore fields they do not know. `version`
//! changes only if an existing field changes meaning.
//!
//! This file is the format: the types that serialize and the constructors for each
//! ending. The refused syscall and its allow hint are in `syscall.rs`, the summary line in
//! `summary.rs`, delivery (stderr, `--report`, the status fd) in `deliver.rs`.

mod deliver;
mod summary;
mod syscall;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::Serialize;

use crate::jail::init::Naming;
use crate::landlock::LandlockReport;

pub use deliver::{ReportFile, set_quiet};
pub use syscall::Syscall;

/// The verdict format version.
pub const VERSION: u32 = crate::protocol::consts::VERDICT_VERSION;

/// How the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The program ran and exited by itself (`exit_code`).
    Exited,
    /// The program was killed by a signal (`signal`).
    Signaled,
    /// plugjail could not build the jail (`step`, `errno`, `message`); nothing ran.
    SetupFailed,
    /// The program does not exist (on the host, or its loader inside the jail).
    NotFound,
    /// The program exists but cannot be executed (permissions, format, noexec, Landlock).
    CannotExecute,
    /// The OOM killer acted in the jail's memory cgroup (`exit_code` or `signal` say how the
    /// program ended).
    Oom,
    /// A time limit ran out (`timeout.kind`: wall, cpu, call, idle, host); the jail was
    /// killed.
    Timeout,
    /// A fork or thread was refused by the pids limit.
    PidsLimit,
    /// The program made a syscall the profile's seccomp filter refuses, under
    /// `default_action: kill_process`; the jail was killed (`syscall` names it).
    SeccompViolation,
    /// Plugin mode: the session ended cleanly (SHUTDOWN, or the host closed the channel
    /// between calls).
    Ok,
    /// Plugin mode: the plugin was refused before any of its code ran (sha256 not in the
    /// allowlist, not an ELF file, too large) or right after its entry function (wrong
    /// ABI version or struct size); `message` says which.
    PluginRejected,
    /// Plugin mode: a frame broke the protocol (`message` says what was malformed); the
    /// jail was killed.
    ProtocolViolation,
    /// Plugin mode: the plugin could not start through its own fault: dlopen failed (a
    /// symbol or library it needs is missing, or it is no loadable object), it lacks the
    /// entry symbol, or its init() failed (`plugin_failure` says which). Not the jail's:
    /// running it again will fail again.
    PluginFailed,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Exited => "exited",
            Outcome::Signaled => "signaled",
            Outcome::SetupFailed => "setup_failed",
            Outcome::NotFound => "not_found",
            Outcome::CannotExecute => "cannot_execute",
            Outcome::Oom => "oom",
            Outcome::Timeout => "timeout",
            Outcome::PidsLimit => "pids_limit",
            Outcome::SeccompViolation => "seccomp_violation",
            Outcome::Ok => "ok",
            Outcome::PluginRejected => "plugin_rejected",
            Outcome::ProtocolViolation => "protocol_violation",
            Outcome::PluginFailed => "plugin_failed",
        }
    }
}

/// The low 8 bits of `n`: all of an exit code that an exit status keeps (`$?`).
fn low_byte(n: i32) -> u8 {
    n.to_le_bytes()[0]
}

/// The exit status of a process killed by `signal`, by the shell's convention: 128 plus
/// the signal number, in 8 bits like every exit status.
pub fn signal_exit_status(signal: i32) -> u8 {
    128u8.wrapping_add(low_byte(signal))
}

/// A number with its symbolic name (signals, errnos).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Named {
    pub number: i32,
    pub name: String,
}

impl Named {
    pub fn signal(number: i32) -> Named {
        let name = Signal::try_from(number)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("SIG{number}"));
        Named { number, name }
    }

    pub fn errno(number: i32) -> Named {
        Named {
            number,
            name: format!("{:?}", Errno::from_raw(number)),
        }
    }
}

/// What the seccomp filter in force was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeccompReport {
    /// "load" or "serve"; for `exec`, the load phase covers the whole run.
    pub phase: &'static str,
    pub default_action: &'static str,
    pub instructions: usize,
    pub allowed_syscalls: usize,
    /// Profile names this architecture does not have.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub absent: Vec<String>,
    /// How a refused syscall is named: "ptrace" (the jail's init traces the jail and reads
    /// it), or "none" (a kill says nothing about the syscall: `kill_process` where ptrace
    /// was refused; other default actions do not end the run).
    pub naming: &'static str,
}

/// `SeccompReport::naming` for how the init named syscalls.
pub fn naming_name(naming: Naming) -> &'static str {
    match naming {
        Naming::Ptrace => "ptrace",
        Naming::NotWanted | Naming::Refused(_) => "none",
    }
}

/// Plugin mode: the plugin that was loaded (its bytes as verified, not its path again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginReport {
    pub path: PathBuf,
    /// Lowercase hex SHA-256 of the bytes that were checked and run.
    pub sha256: String,
    pub bytes: u64,
}

/// Plugin mode (`plugjail call`): the plugin answered the call with ERROR. Not a jail
/// failure: the outcome stays `ok`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallErrorReport {
    /// `plugin`, `unknown_method`, `output_too_large`, `bad_call` (docs/protocol.md).
    pub kind: &'static str,
    /// call()'s return value.
    pub status: i32,
    pub message: String,
}

/// Plugin mode: how the plugin failed to start (`plugin_failed`, and `plugin_rejected` for
/// a wrong ABI).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PluginFailure {
    /// `load` (dlopen failed), `entry` (no `plugjail_plugin_v1`), `abi` (wrong ABI
    /// version, struct size or description) or `init` (init() failed). Read from the
    /// stub's exit code; `load` also stands for `entry` when plugjail did not read the
    /// stub's ERROR frame (`plugjail serve`: the host reads the channel).
    pub stage: &'static str,
    /// What init() returned (stage `init`), when plugjail read the ERROR frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The stub's ERROR message (the loader's error, say), when plugjail read it. Written
    /// in the jail, after the plugin's code may have run: untrusted text, never shown in
    /// the summary line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutKind {
    /// `limits.wall_time`, for the whole run.
    Wall,
    /// `limits.cpu_time` (RLIMIT_CPU: per process).
    Cpu,
    /// `limits.call_time`, for one plugin call.
    Call,
    /// `limits.idle_time`, with no call in flight.
    Idle,
    /// The host's own deadline (plugin mode): the host ended the session because a call
    /// took longer than it was willing to wait (`Session`'s per-call deadline, or SIGUSR1
    /// to `plugjail serve`, docs/protocol.md).
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Timeout {
    pub kind: TimeoutKind,
    /// The limit; absent only for kind `host` when the host did not say its deadline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_ms: Option<u64>,
}

/// What the run used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Resources {
    /// CPU time of every process in the jail (user + system).
    pub cpu_time_ms: u64,
    /// The largest resident set of any single process.
    pub max_rss_bytes: u64,
    /// Peak memory of the whole jail, from its cgroup.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<u64>,
}

/// What was actually enforced.
#[derive(Debug, Clone, Serialize)]
pub struct Enforced {
    pub namespaces: Vec<&'static str>,
    /// Namespaces the profile asked for but the kernel lacks (best_effort only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub namespaces_dropped: Vec<&'static str>,
    pub landlock: Option<LandlockReport>,
    /// `None`: no seccomp filter (best_effort on a kernel without seccomp).
    pub seccomp: Option<SeccompReport>,
    /// Plugin mode: the serve phase, when it was in force: the jail's serve gate,
    /// installed before the stub existed, with the switch to serving decided by the jail's
    /// init (docs/architecture.md, "The serve phase"). Absent when the profile has no
    /// serve phase of its own, or the init could not trace the jail (best_effort; see
    /// `seccomp_serve_skipped`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_serve: Option<SeccompReport>,
    /// Plugin mode: why the profile's serve phase was not enforced (best_effort only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seccomp_serve_skipped: Option<String>,
    /// Whether plugjail ran without root (the jail is rootless either way inside).
    pub rootless: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid_map: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid_map: Option<String>,
    /// Profile paths absent on this host, so not bound into the jail.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_paths: Vec<PathBuf>,
    /// The limits backend, what it enforced and dropped, and what it measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroup::CgroupReport>,
}

/// One run's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub version: u32,
    pub outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signal: Option<Named>,
    /// The setup step that failed (setup_failed, and exec failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<Named>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Timeout>,
    /// The refused syscall (seccomp_violation).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub syscall: Option<Syscall>,
    /// Plugin mode: calls the plugin answered (RESULT or ERROR).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
    /// Plugin mode: the plugin's verified bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginReport>,
    /// `plugjail call`: the plugin's ERROR answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call_error: Option<CallErrorReport>,
    /// Plugin mode: how the plugin failed to start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin_failure: Option<PluginFailure>,
    /// plugjail's own exit status for this verdict.
    pub exit_status: u8,
    pub wall_time_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
    pub profile: PathBuf,
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced: Option<Enforced>,
}

impl Verdict {
    fn new(outcome: Outcome, profile: &Path, command: &[String]) -> Verdict {
        Verdict {
            version: VERSION,
            outcome,
            exit_code: None,
            signal: None,
            step: None,
            errno: None,
            message: None,
            timeout: None,
            syscall: None,
            calls: None,
            plugin: None,
            call_error: None,
            plugin_failure: None,
            exit_status: 0,
            wall_time_ms: 0,
            resources: None,
            profile: profile.to_path_buf(),
            command: command.to_vec(),
            enforced: None,
        }
    }

    pub fn exited(profile: &Path, command: &[String], code: i32) -> Verdict {
        Verdict {
            exit_code: Some(code),
            exit_status: low_byte(code),
            ..Verdict::new(Outcome::Exited, profile, command)
        }
    }

    pub fn signaled(profile: &Path, command: &[String], signal: i32) -> Verdict {
        Verdict {
            signal: Some(Named::signal(signal)),
            exit_status: signal_exit_status(signal),
            ..Verdict::new(Outcome::Signaled, profile, command)
        }
    }

    /// A failure before the program ran: `outcome` is setup_failed, not_found or
    /// cannot_execute.
    pub fn failed(
        outcome: Outcome,
        profile: &Path,
        command: &[String],
        step: &str,
        errno: Option<i32>,
        message: String,
    ) -> Verdict {
        Verdict {
            step: Some(step.to_owned()),
            errno: errno.map(Named::errno),
            message: Some(message),
            exit_status: match outcome {
                Outcome::NotFound => 127,
                Outcome::CannotExecute => 126,
                _ => 125,
            },
            ..Verdict::new(outcome, profile, command)
        }
    }

    /// The same ending (exit code or signal, exit status), explained by a limit.
    pub fn because(mut self, outcome: Outcome, message: String) -> Verdict {
        self.outcome = outcome;
        self.message = Some(message);
        self
    }

    pub fn to_json(&self) -> String {
        // Serializing plain data (strings, numbers, enums) cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
