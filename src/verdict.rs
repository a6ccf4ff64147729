//! The verdict: exactly one per run, as JSON for machines and one line for people.
//!
//! Fields are added, never renamed: later outcomes (`oom`, `timeout`, `pids_limit`,
//! `seccomp_violation`, `protocol_violation`, `plugin_rejected`) and resource figures slot
//! in as new optional fields. Consumers must ignore fields they do not know. `version`
//! changes only if an existing field changes meaning.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use serde::Serialize;

use crate::jail::init::{Naming, Violation};
use crate::landlock::LandlockReport;
use crate::seccomp::bpf::{
    AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
use crate::seccomp::{SeccompPhase, TraceData};
use crate::sysnames::Arch;

/// The verdict format version.
pub const VERSION: u32 = 1;

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

/// The syscall a seccomp filter refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Syscall {
    /// Its name in `arch`'s table; null when the number is in no table plugjail knows
    /// (e.g. 999, or any number of a foreign architecture) or the syscall is not known.
    pub name: Option<String>,
    /// The number the program passed; null when it is not known.
    pub number: Option<u32>,
    /// The syscall table it went through: "x86_64", "aarch64", "x32", "i386", "arm",
    /// or the raw `AUDIT_ARCH_*` value in hex; null when not known.
    pub arch: Option<String>,
    /// The seccomp phase the jail was in: "serve" once plugin mode's stub has switched to
    /// serving (decided by the jail's init), else "load" (all of `exec`). Absent when
    /// the syscall is not known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<&'static str>,
    /// For a syscall the refusing phase allows only with argument conditions: the
    /// arguments those conditions look at, as the program passed them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SyscallArg>,
}

/// One argument of a refused syscall.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyscallArg {
    /// 0-based, as `args[].index` in a profile.
    pub index: u8,
    /// The value in hex (the low 32 bits for arguments the kernel reads as `int`).
    pub value: String,
    /// The constant's name where plugjail knows it (`FIONBIO`, `PR_SET_NAME`, `AF_INET`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub constant: Option<&'static str>,
}

impl Syscall {
    /// What the init read at a seccomp stop. `seccomp`: the profile's policy, to pick out
    /// the arguments its rules for this syscall look at.
    pub fn from_violation(v: &Violation, seccomp: Option<&crate::profile::Seccomp>) -> Syscall {
        let Some(nr) = v.nr else {
            return Syscall::unknown();
        };
        let (arch, table) = match v.arch {
            AUDIT_ARCH_X86_64 if nr & X32_SYSCALL_BIT != 0 => ("x32".to_owned(), None),
            AUDIT_ARCH_X86_64 => ("x86_64".to_owned(), Some(Arch::X86_64)),
            AUDIT_ARCH_AARCH64 => ("aarch64".to_owned(), Some(Arch::Aarch64)),
            AUDIT_ARCH_I386 => ("i386".to_owned(), None),
            AUDIT_ARCH_ARM => ("arm".to_owned(), None),
            other => (format!("{other:#x}"), None),
        };
        let name = table.and_then(|a| crate::sysnames::name(a, nr));
        let args = match (name, seccomp) {
            (Some(name), Some(seccomp)) => {
                let rules = match refusing_phase(v) {
                    SeccompPhase::Load => &seccomp.load,
                    SeccompPhase::Serve => &seccomp.serve,
                };
                decided_by(name, rules, &v.args)
            }
            _ => Vec::new(),
        };
        Syscall {
            name: name.map(str::to_owned),
            number: Some(nr),
            arch: Some(arch),
            phase: Some(v.phase.name()),
            args,
        }
    }

    /// A kill that says nothing about the syscall.
    pub fn unknown() -> Syscall {
        Syscall {
            name: None,
            number: None,
            arch: None,
            phase: None,
            args: Vec::new(),
        }
    }
}

/// The phase whose rules refused `v`: the serve gate's refusals are the serve phase's;
/// every other refusal comes from the load filter, in force in both phases.
fn refusing_phase(v: &Violation) -> SeccompPhase {
    match TraceData::from_u32(v.data) {
        Some(TraceData::Gate | TraceData::Switch) => SeccompPhase::Serve,
        _ => SeccompPhase::Load,
    }
}

/// The arguments that `rules` condition `name` on (none if they allow it unconditionally
/// or not at all).
fn decided_by(name: &str, rules: &crate::profile::Phase, args: &[u64; 6]) -> Vec<SyscallArg> {
    let mut indices: Vec<u8> = rules
        .allow
        .iter()
        .filter(|r| {
            crate::profile::resolve::expand_names(r.syscalls.iter().map(String::as_str))
                .contains(name)
        })
        .flat_map(|r| r.args.iter().map(|c| c.index))
        .collect();
    indices.sort_unstable();
    indices.dedup();
    indices
        .into_iter()
        .filter_map(|index| {
            let raw = *args.get(usize::from(index))?;
            let value = if crate::seccomp::is_32bit_arg(name, index) {
                raw & u64::from(u32::MAX)
            } else {
                raw
            };
            Some(SyscallArg {
                index,
                value: format!("{value:#x}"),
                constant: crate::sysnames::arg_constant(name, index, value),
            })
        })
        .collect()
}

impl fmt::Display for Syscall {
    /// `ptrace (101, x86_64)`, `ioctl (16, x86_64) with arg 1 = 0x5421 FIONBIO in the
    /// serve phase`, `syscall 999 (x86_64)`, `an unknown syscall`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arch = self.arch.as_deref().unwrap_or("?");
        match (&self.name, self.number) {
            (Some(name), Some(nr)) => write!(f, "{name} ({nr}, {arch})")?,
            (None, Some(nr)) => write!(f, "syscall {nr} ({arch})")?,
            _ => return write!(f, "an unknown syscall"),
        }
        for (i, a) in self.args.iter().enumerate() {
            let sep = if i == 0 { " with" } else { "," };
            write!(f, "{sep} arg {} = {}", a.index, a.value)?;
            if let Some(c) = a.constant {
                write!(f, " {c}")?;
            }
        }
        if let Some(phase) = self.phase {
            write!(f, " in the {phase} phase")?;
        }
        Ok(())
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

    /// A syscall refused, named by the jail's init (`seccomp` is the profile's policy, for
    /// the arguments and the hint). Exit status 159 (128 + SIGSYS), as for the kernel's
    /// own kill.
    pub fn seccomp_violation(
        profile: &Path,
        command: &[String],
        v: &Violation,
        seccomp: &crate::profile::Seccomp,
    ) -> Verdict {
        let syscall = Syscall::from_violation(v, Some(seccomp));
        let message = match TraceData::from_u32(v.data) {
            Some(TraceData::UntracedClone) => {
                Some("clone with CLONE_UNTRACED: every process of the jail stays traced".to_owned())
            }
            Some(TraceData::X32) => Some("x32 syscalls are always refused".to_owned()),
            Some(TraceData::ForeignArch) => {
                Some("syscalls of another architecture are refused".to_owned())
            }
            Some(TraceData::NotAllowed | TraceData::Gate | TraceData::Switch) => {
                allow_hint(&syscall, refusing_phase(v))
            }
            None if v.nr.is_none() => Some("the syscall could not be read".to_owned()),
            None => Some("stopped by a filter the program installed itself".to_owned()),
        };
        Verdict {
            syscall: Some(syscall),
            message,
            exit_status: signal_exit_status(libc::SIGSYS),
            ..Verdict::new(Outcome::SeccompViolation, profile, command)
        }
    }

    /// A SIGSYS kill under `kill_process` where ptrace was refused (errno): the filter
    /// killed the program, but which syscall it was is not known.
    pub fn seccomp_violation_unnamed(profile: &Path, command: &[String], errno: i32) -> Verdict {
        Verdict {
            syscall: Some(Syscall::unknown()),
            message: Some(format!(
                "ptrace was refused ({}), so the kill could not be traced to a syscall",
                Named::errno(errno).name
            )),
            exit_status: signal_exit_status(libc::SIGSYS),
            ..Verdict::new(Outcome::SeccompViolation, profile, command)
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

    /// Delivers the verdict: the summary line on stderr, the JSON to the report file and
    /// the status fd. Returns a description of each delivery that failed.
    pub fn deliver(
        &self,
        report: Option<&mut ReportFile>,
        status_fd: Option<BorrowedFd<'_>>,
    ) -> Vec<String> {
        eprintln!("plugjail: {self}");
        let json = self.to_json() + "\n";
        let mut errors = Vec::new();
        if let Some(r) = report
            && let Err(e) = r.file.write_all(json.as_bytes())
        {
            errors.push(format!(
                "cannot write the report to {}: {e}",
                r.path.display()
            ));
        }
        if let Some(fd) = status_fd.as_ref().map(AsRawFd::as_raw_fd) {
            // SAFETY: `fd` is borrowed, so it stays open for this call; ManuallyDrop keeps
            // the File from closing it, since it belongs to whoever lent it.
            let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            if let Err(e) = file.write_all(json.as_bytes()) {
                errors.push(format!("cannot write the verdict to fd {fd}: {e}"));
            }
        }
        errors
    }
}

/// Which profile key would allow `syscall`, refused by `phase`'s rules: a serve-phase
/// refusal needs the serve key only (the load phase allowed it, or the gate would not have
/// been asked); a load-phase refusal in the serve phase needs both.
fn allow_hint(syscall: &Syscall, phase: SeccompPhase) -> Option<String> {
    let name = syscall.name.as_deref()?;
    let keys = match (phase, syscall.phase) {
        (SeccompPhase::Serve, _) => "seccomp.serve.allow",
        (SeccompPhase::Load, Some("serve")) => "seccomp.load.allow and seccomp.serve.allow",
        (SeccompPhase::Load, _) => "seccomp.load.allow",
    };
    let args: Vec<String> = syscall
        .args
        .iter()
        .map(|a| format!("{{ index: {}, op: eq, value: {} }}", a.index, a.value))
        .collect();
    Some(if args.is_empty() {
        format!("to allow it, add `{name}` to {keys}")
    } else {
        format!(
            "to allow it, add {{ syscalls: [{name}], args: [{}] }} to {keys}",
            args.join(", ")
        )
    })
}

/// `--report FILE`, opened before anything else is done, so that a report that cannot be
/// written is a setup failure and never a run without a verdict. The file is created (or
/// truncated: no verdict of an earlier run stays behind) and written once, at the end.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    /// Creates or truncates `path` for writing (close-on-exec: the jail never gets it).
    pub fn create(path: &Path) -> io::Result<ReportFile> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl fmt::Display for Verdict {
    /// The one human line, e.g. `exited with code 0 after 12 ms`. `message` and
    /// `call_error.message` may hold plugin text (a startup ERROR, a fail() message), so
    /// they are printed escaped (`crate::text`): one line, no control characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::text::{Escaped, Quoted};
        let ms = self.wall_time_ms;
        let message = self.message.as_deref().map(|m| Escaped(m.as_bytes()));
        match self.outcome {
            Outcome::Exited => write!(
                f,
                "exited with code {} after {ms} ms",
                self.exit_code.unwrap_or(0)
            ),
            Outcome::Signaled => {
                let (n, name) = self
                    .signal
                    .as_ref()
                    .map_or((0, "?"), |s| (s.number, s.name.as_str()));
                write!(f, "killed by signal {n} ({name}) after {ms} ms")
            }
            Outcome::Oom | Outcome::Timeout | Outcome::PidsLimit => {
                let what = match self.outcome {
                    Outcome::Oom => "out of memory",
                    Outcome::Timeout => "timed out",
                    _ => "hit the pids limit",
                };
                write!(f, "{what}")?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                match (&self.signal, self.exit_code) {
                    (Some(s), _) => write!(f, ", killed by {}", s.name)?,
                    (None, Some(code)) => write!(f, ", exited with code {code}")?,
                    (None, None) => {}
                }
                write!(f, " after {ms} ms")
            }
            Outcome::SeccompViolation => {
                let unknown = Syscall::unknown();
                write!(
                    f,
                    "seccomp violation: {}",
                    self.syscall.as_ref().unwrap_or(&unknown)
                )?;
                if let Some(m) = message {
                    write!(f, " ({m})")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::Ok => {
                write!(f, "session ended cleanly")?;
                if let Some(n) = self.calls {
                    write!(f, " after {n} call{}", if n == 1 { "" } else { "s" })?;
                }
                if let Some(e) = &self.call_error {
                    write!(
                        f,
                        "; the call failed ({} error): {}",
                        e.kind,
                        Quoted(&e.message)
                    )?;
                }
                write!(f, " ({ms} ms)")
            }
            Outcome::PluginFailed => {
                // Only plugjail's own words: `plugin_failure.message` is the plugin's.
                let stage = self.plugin_failure.as_ref().map_or("?", |p| p.stage);
                write!(f, "plugin failed to start ({stage})")?;
                if let Some(m) = &self.message {
                    write!(f, ": {m}")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::ProtocolViolation => {
                write!(f, "protocol violation")?;
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                write!(f, " after {ms} ms")
            }
            Outcome::SetupFailed
            | Outcome::NotFound
            | Outcome::CannotExecute
            | Outcome::PluginRejected => {
                let what = match self.outcome {
                    Outcome::SetupFailed => "could not set up the jail",
                    Outcome::NotFound => "command not found",
                    Outcome::PluginRejected => "plugin rejected",
                    _ => "cannot execute the command",
                };
                write!(f, "{what}")?;
                if let Some(step) = &self.step {
                    write!(f, " (step {step}")?;
                    if let Some(e) = &self.errno {
                        write!(f, ", {}", e.name)?;
                    }
                    write!(f, ")")?;
                }
                if let Some(m) = message {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Vec<String> {
        vec!["/bin/true".to_owned()]
    }

    #[test]
    fn exit_statuses_follow_the_shell_convention() {
        let p = Path::new("p.yaml");
        assert_eq!(Verdict::exited(p, &cmd(), 3).exit_status, 3);
        assert_eq!(Verdict::signaled(p, &cmd(), 9).exit_status, 137);
        let failed = |o| Verdict::failed(o, p, &cmd(), "x", None, String::new()).exit_status;
        assert_eq!(failed(Outcome::SetupFailed), 125);
        assert_eq!(failed(Outcome::CannotExecute), 126);
        assert_eq!(failed(Outcome::NotFound), 127);
    }

    #[test]
    fn json_has_the_documented_fields() {
        let mut v = Verdict::signaled(Path::new("p.yaml"), &cmd(), 11);
        v.wall_time_ms = 5;
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["outcome"], "signaled");
        assert_eq!(json["signal"]["number"], 11);
        assert_eq!(json["signal"]["name"], "SIGSEGV");
        assert_eq!(json["exit_status"], 139);
        assert_eq!(json["wall_time_ms"], 5);
        assert!(json.get("exit_code").is_none());
        assert!(json.get("step").is_none());
    }

    #[test]
    fn setup_failure_names_step_and_errno() {
        let v = Verdict::failed(
            Outcome::SetupFailed,
            Path::new("p.yaml"),
            &cmd(),
            "mount_proc",
            Some(libc::EPERM),
            "mounting proc on /proc".to_owned(),
        );
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(json["outcome"], "setup_failed");
        assert_eq!(json["step"], "mount_proc");
        assert_eq!(json["errno"]["name"], "EPERM");
        assert_eq!(json["errno"]["number"], 1);
        assert_eq!(
            v.to_string(),
            "could not set up the jail (step mount_proc, EPERM): mounting proc on /proc"
        );
    }

    #[test]
    fn a_report_file_is_truncated_when_opened_and_holds_one_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v.json");
        std::fs::write(
            &path,
            "an earlier run's verdict, longer than this one".repeat(9),
        )
        .unwrap();
        let mut report = ReportFile::create(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"", "truncated when opened");
        let v = Verdict::exited(Path::new("p.yaml"), &cmd(), 0);
        assert!(v.deliver(Some(&mut report), None).is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), v.to_json() + "\n");
        let e = ReportFile::create(dir.path()).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
    }

    #[test]
    fn human_lines() {
        let p = Path::new("p.yaml");
        let mut v = Verdict::exited(p, &cmd(), 0);
        v.wall_time_ms = 12;
        assert_eq!(v.to_string(), "exited with code 0 after 12 ms");
        let v = Verdict::signaled(p, &cmd(), 9);
        assert_eq!(v.to_string(), "killed by signal 9 (SIGKILL) after 0 ms");
    }
}
