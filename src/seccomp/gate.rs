//! Concern: the serve gate — how plugin mode enforces the serve phase without trusting the
//! stub.
//!
//! The plugin's constructors and `init()` run inside the stub's address space, so nothing
//! the stub does after them can be relied on — not even installing a filter. The gate is
//! therefore installed by the jail itself (child step 28, before the load-phase filter and
//! before the stub exists), and the phase switch is decided by the jail's init, which
//! traces every process of the jail:
//!
//! - a syscall the serve phase allows: `ALLOW` (the load filter still has its say);
//! - `recvmsg(switch_fd, ..)`: `RET_TRACE` with [`TraceData::Switch`] — the stub asking
//!   for its channel; the init hands it over and from then on the jail is serving;
//! - any other native syscall: `RET_TRACE` with [`TraceData::Gate`] — while loading the
//!   init lets it run (the load filter, installed later, already allowed it: a syscall it
//!   refuses never reaches the gate's trace, see below), once serving it applies the
//!   profile's default action;
//! - another architecture's table, x32 numbers: `ALLOW`, left to the load filter, which
//!   refuses them;
//! - `clone` with `CLONE_UNTRACED`: [`TraceData::UntracedClone`] (no process may leave the
//!   init's sight), and `clone3` ENOSYS where the load or the serve phase allows it (its
//!   flags are behind a pointer).
//!
//! Why the load filter's verdict wins for a syscall it refuses: filters stack, and the
//! kernel takes the strictest action; among equal actions (two `RET_TRACE`s) the most
//! recently installed filter's data. The gate is installed first, so the load filter's
//! `NotAllowed` trace, or its kill, errno or trap, always outranks the gate's `Gate`.
//!
//! The gate is generated like any filter ([`program`](super::program)): the serve rules
//! with the answers above, and the switch and clone checks ahead of the search.

use std::os::fd::RawFd;

use super::bpf::{MAX_INSTRUCTIONS, RET_ALLOW};
use super::program::{self, Answers, Check, Layout};
use super::trace::{self, TraceData};
use super::{SeccompError, SeccompPhase, SeccompProgram, rules};
use crate::profile::Seccomp;
use crate::sysnames::{self, Arch};

/// Compiles the gate for the profile's serve phase (see the module docs). `switch_fd` is
/// the stub's end of the socket its channel arrives through.
pub fn compile_gate(seccomp: &Seccomp, switch_fd: RawFd) -> Result<SeccompProgram, SeccompError> {
    compile_gate_for(Arch::native(), seccomp, switch_fd)
}

pub(super) fn compile_gate_for(
    arch: Arch,
    seccomp: &Seccomp,
    switch_fd: RawFd,
) -> Result<SeccompProgram, SeccompError> {
    let (serve, absent) = rules::rule_map(arch, &seccomp.serve, SeccompPhase::Serve)?;
    let fd = u32::try_from(switch_fd).map_err(|_| SeccompError::BadExecFd {
        phase: SeccompPhase::Serve.name(),
        fd: switch_fd,
    })?;
    let (load, _) = rules::rule_map(arch, &seccomp.load, SeccompPhase::Load)?;
    let recvmsg = sysnames::number(arch, "recvmsg").expect("every architecture has recvmsg");
    let switch = Check::Switch {
        recvmsg,
        fd,
        answer: TraceData::Switch.ret(),
    };
    let clone3 = trace::allows(arch, &load, "clone3") || trace::allows(arch, &serve, "clone3");
    let layout = Layout {
        arch,
        answers: Answers {
            allow: RET_ALLOW,
            refuse: TraceData::Gate.ret(),
            foreign: RET_ALLOW,
            x32: RET_ALLOW,
        },
        checks: std::iter::once(switch)
            .chain(trace::clone_checks(arch, clone3))
            .collect(),
    };
    let filter = program::emit(&layout, &serve);
    if filter.len() > MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLarge {
            phase: SeccompPhase::Serve.name(),
            len: filter.len(),
        });
    }
    Ok(SeccompProgram {
        phase: SeccompPhase::Serve,
        filter,
        traced: None,
        absent,
        allowed: serve.len(),
    })
}
