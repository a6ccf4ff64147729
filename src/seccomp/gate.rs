//! The serve gate: how plugin mode enforces the serve phase without trusting the stub.
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
//!   init's sight), and `clone3` ENOSYS where the load phase allows it (its flags are
//!   behind a pointer).
//!
//! Why the load filter's verdict wins for a syscall it refuses: filters stack, and the
//! kernel takes the strictest action; among equal actions (two `RET_TRACE`s) the most
//! recently installed filter's data. The gate is installed first, so the load filter's
//! `NotAllowed` trace, or its kill, errno or trap, always outranks the gate's `Gate`.

use std::os::fd::RawFd;

use super::{
    Extras, Form, SeccompError, SeccompPhase, SeccompProgram, TraceData, compile_form, rule_map,
};
use crate::profile::{Action, Seccomp};
use crate::sysnames::{self, Arch};

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// `offsetof(struct seccomp_data, args[0])`, low half (little-endian).
const ARG0_LO: u32 = 16;

fn trace(data: TraceData) -> u32 {
    libc::SECCOMP_RET_TRACE | data as u32
}

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
    // The traced form of the serve phase under kill_process is exactly the shape wanted:
    // every refusal a trace that says which check refused. Then only the answers change.
    let serve = Seccomp {
        default_action: Action::KillProcess,
        ..seccomp.clone()
    };
    let compiled = compile_form(
        arch,
        &serve,
        SeccompPhase::Serve,
        Extras::default(),
        Form::Search,
    )?;
    let mut filter = compiled
        .traced
        .expect("kill_process always has a traced variant");
    for ins in filter.iter_mut().filter(|i| i.code == RET_K) {
        ins.k = match TraceData::from_u32(ins.k & libc::SECCOMP_RET_DATA) {
            _ if ins.k & libc::SECCOMP_RET_ACTION_FULL != libc::SECCOMP_RET_TRACE => ins.k,
            Some(TraceData::NotAllowed) => trace(TraceData::Gate),
            Some(TraceData::ForeignArch | TraceData::X32) => libc::SECCOMP_RET_ALLOW,
            _ => ins.k,
        };
    }
    let fd = u32::try_from(switch_fd).map_err(|_| SeccompError::BadExecFd {
        phase: SeccompPhase::Serve.name(),
        fd: switch_fd,
    })?;
    let (load_rules, _) = rule_map(arch, &seccomp.load, SeccompPhase::Load)?;
    let clone3_in_load =
        sysnames::number(arch, "clone3").filter(|nr| load_rules.contains_key(&i64::from(*nr)));
    let recvmsg = sysnames::number(arch, "recvmsg").expect("every architecture has recvmsg");
    let stmt = |code, k| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |k, jt, jf| libc::sock_filter {
        code: JEQ_K,
        jt,
        jf,
        k,
    };
    // In front of the serve rules (where the architecture and x32 checks jump to): the
    // switch, and clone3. Each path ends by reloading the number for what follows.
    let mut prologue = vec![
        stmt(LD_W_ABS, 0),
        jump(recvmsg, 0, 3),
        stmt(LD_W_ABS, ARG0_LO),
        jump(fd, 0, 1),
        stmt(RET_K, trace(TraceData::Switch)),
    ];
    if let Some(nr) = clone3_in_load {
        prologue.push(stmt(LD_W_ABS, 0));
        prologue.push(jump(nr, 0, 1));
        prologue.push(stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    let start = if arch == Arch::X86_64 { 6 } else { 3 };
    assert!(
        filter.len() > start && filter[start].code == LD_W_ABS && filter[start].k == 0,
        "the traced serve filter no longer loads the syscall number after the arch check"
    );
    filter.splice(start..start, prologue);
    if filter.len() > super::MAX_INSTRUCTIONS {
        return Err(SeccompError::TooLarge {
            phase: SeccompPhase::Serve.name(),
            len: filter.len(),
        });
    }
    Ok(SeccompProgram {
        phase: SeccompPhase::Serve,
        filter,
        traced: None,
        absent: compiled.absent,
        allowed: compiled.allowed,
    })
}
