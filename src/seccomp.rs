//! Seccomp: one phase of the profile compiled to a BPF program (parent), installed with a
//! single `seccomp(2)` call (child).
//!
//! Concern of this file: the module's API — which phase, what the runner adds
//! ([`Extras`]), the errors, and [`compile`], which puts the parts together. [`compile`]
//! may allocate and returns rich errors; [`SeccompProgram::install`] runs in the
//! single-threaded child after clone, so it only builds a `sock_fprog` on the stack that
//! points at the instructions prepared here, and reports a raw errno.
//!
//! The parts, one concern each:
//!
//! - `bpf`: opcodes, return actions, `seccomp_data` offsets, `AUDIT_ARCH_*`: the one
//!   set of these constants in plugjail;
//! - `rules`: profile rules → per syscall number, alternative sets of argument
//!   conditions at the width the kernel reads (the `INT_ARGS` table);
//! - `asm`: a small assembler with symbolic labels;
//! - `program`: the program every filter shares — architecture check, x32 check, the
//!   checks of single syscalls, the search, the argument conditions;
//! - `search`: the binary search over syscall numbers;
//! - `trace`: the traced variant and `TraceData`; `gate`: the serve gate;
//! - `install`: the child side.
//!
//! **Why plugjail emits its own BPF.** The filters used to be seccompiler's output, edited
//! by instruction position: an x32 check spliced in at index 3, the traced variant's clone
//! checks spliced in at 6 (3 on aarch64), return values rewritten by position, the search
//! rebuilt out of seccompiler's per-syscall blocks, and the serve gate spliced in again,
//! each guarded by an assertion on seccompiler's layout. A seccompiler release that moved
//! one instruction would have failed every run, and pinning its exact version with a
//! build-time layout check (the alternative) would only have turned that into a failed
//! build and kept every splice. The program is small and regular, so plugjail now writes
//! all of it, as minijail and sandbox2 do: every part is emitted in order against
//! symbolic labels, and `asm` resolves them in one pass, reaching a target more than 255
//! instructions away through a `JA` trampoline. seccompiler stays only as a
//! dev-dependency: the tests run every program plugjail makes and seccompiler's linear
//! form of the same rules through a BPF interpreter and require the same answer for every
//! syscall, architecture and argument combination they try.

use std::fmt;
use std::os::fd::RawFd;

use crate::profile::{Action, Seccomp};
use crate::sysnames::Arch;

mod asm;
pub(crate) mod bpf;
mod gate;
mod install;
mod program;
mod rules;
mod search;
mod trace;

pub use gate::compile_gate;
pub use install::install_with_flags;
pub use rules::is_32bit_arg;
pub use trace::TraceData;

use bpf::{MAX_INSTRUCTIONS, RET_ALLOW, RET_KILL_PROCESS, RET_LOG, RET_TRAP, ret_errno};
use program::{Answers, Layout};

/// Which of the profile's two filters to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompPhase {
    /// While the plugin is dlopened and initialised; for `plugjail exec`, the whole run.
    Load,
    /// Stacked on top once the plugin is initialised.
    Serve,
}

impl SeccompPhase {
    pub fn name(self) -> &'static str {
        match self {
            SeccompPhase::Load => "load",
            SeccompPhase::Serve => "serve",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp {phase} phase: argument {index} of {syscall} is a 32-bit value in the kernel, \
         so {value:#x} can never match; use a value below 2^32"
    )]
    ArgTooWide {
        phase: &'static str,
        syscall: String,
        index: u8,
        value: u64,
    },
    #[error("seccomp {phase} phase: {syscall} has no argument {index} (syscalls have 0 to 5)")]
    BadArgIndex {
        phase: &'static str,
        syscall: String,
        index: u8,
    },
    #[error("seccomp {phase} phase: exec fd {fd} is not a file descriptor number")]
    BadExecFd { phase: &'static str, fd: RawFd },
    #[error(
        "seccomp {phase} phase: the filter has {len} instructions, more than the kernel's 4096"
    )]
    TooLarge { phase: &'static str, len: usize },
}

/// A compiled filter for the native architecture, ready to install without allocating.
pub struct SeccompProgram {
    phase: SeccompPhase,
    filter: Vec<libc::sock_filter>,
    /// For `default_action: kill_process` only: the same filter with every kill turned into
    /// `SECCOMP_RET_TRACE` (see [`TraceData`]), for a process whose tracer names the
    /// syscall and then kills the jail. Never install it without such a tracer: an
    /// untraced process meeting `RET_TRACE` just gets ENOSYS.
    traced: Option<Vec<libc::sock_filter>>,
    /// Names the profile allows that do not exist on this architecture (skipped).
    absent: Vec<String>,
    allowed: usize,
}

impl fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("phase", &self.phase)
            .field("instructions", &self.filter.len())
            .field("allowed_syscalls", &self.allowed)
            .field("absent", &self.absent)
            .finish()
    }
}

/// Compiles one phase of the profile into a BPF program for the native arch (x86_64 or
/// aarch64). `exec_fd`: when Some(fd), also allow exactly
/// `execveat(fd, _, _, _, AT_EMPTY_PATH)` — the one exec `plugjail exec` needs to start the
/// target from an fd after the filter is installed.
pub fn compile(
    seccomp: &Seccomp,
    phase: SeccompPhase,
    exec_fd: Option<RawFd>,
) -> Result<SeccompProgram, SeccompError> {
    let extras = Extras {
        exec_fd,
        ..Extras::default()
    };
    compile_for(Arch::native(), seccomp, phase, extras)
}

/// What the runner itself needs on top of the profile's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Allow exactly `execveat(fd, _, _, _, AT_EMPTY_PATH)`.
    pub exec_fd: Option<RawFd>,
    /// Allow `seccomp(SECCOMP_SET_MODE_FILTER, 0, _)`, so that the stub can stack the serve
    /// filter on the load filter. Harmless: a further filter can only tighten.
    pub allow_stacking: bool,
}

/// [`compile`] with all of [`Extras`].
pub fn compile_with(
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
) -> Result<SeccompProgram, SeccompError> {
    compile_for(Arch::native(), seccomp, phase, extras)
}

/// The plain filter: the profile's allowlist, every other native syscall meeting the
/// default action; another architecture's table and x32 numbers are killed outright,
/// whatever the default action (`log` or `errno` must never let them through).
fn plain_layout(arch: Arch, default_action: u32) -> Layout {
    Layout {
        arch,
        answers: Answers {
            allow: RET_ALLOW,
            refuse: default_action,
            foreign: RET_KILL_PROCESS,
            x32: RET_KILL_PROCESS,
        },
        checks: Vec::new(),
    }
}

/// The return value of the profile's default action.
fn default_action(seccomp: &Seccomp) -> u32 {
    match seccomp.default_action {
        Action::KillProcess => RET_KILL_PROCESS,
        Action::Trap => RET_TRAP,
        Action::Errno => ret_errno(seccomp.errno.unsigned_abs()),
        Action::Log => RET_LOG,
    }
}

/// The rules of `phase` with the runner's `extras`, and the names `arch` does not have.
fn phase_rules(
    arch: Arch,
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
) -> Result<(rules::RuleMap, Vec<String>), SeccompError> {
    let phase_rules = match phase {
        SeccompPhase::Load => &seccomp.load,
        SeccompPhase::Serve => &seccomp.serve,
    };
    let (mut map, absent) = rules::rule_map(arch, phase_rules, phase)?;
    if let Some(fd) = extras.exec_fd {
        rules::add_exec_fd_rule(arch, &mut map, fd, phase)?;
    }
    if extras.allow_stacking {
        rules::add_stacking_rule(arch, &mut map);
    }
    Ok((map, absent))
}

fn compile_for(
    arch: Arch,
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
) -> Result<SeccompProgram, SeccompError> {
    let (map, absent) = phase_rules(arch, seccomp, phase, extras)?;
    let filter = program::emit(&plain_layout(arch, default_action(seccomp)), &map);
    let traced = (seccomp.default_action == Action::KillProcess)
        .then(|| program::emit(&trace::layout(arch, &map), &map));
    for program in std::iter::once(&filter).chain(traced.as_ref()) {
        if program.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::TooLarge {
                phase: phase.name(),
                len: program.len(),
            });
        }
    }
    Ok(SeccompProgram {
        phase,
        filter,
        traced,
        absent,
        allowed: map.len(),
    })
}

#[cfg(test)]
pub(crate) mod tests;
