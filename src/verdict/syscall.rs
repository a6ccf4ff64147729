//! The refused syscall in a verdict: its name, number and arch read from what the jail's
//! init saw at the seccomp stop, the arguments the profile's rules look at, how it reads
//! in the summary line, and the hint naming the profile key that would allow it.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use super::{Named, Outcome, Verdict, signal_exit_status};
use crate::jail::init::Violation;
use crate::seccomp::bpf::{
    AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
use crate::seccomp::{SeccompPhase, TraceData};
use crate::sysnames::Arch;

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

impl Verdict {
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
