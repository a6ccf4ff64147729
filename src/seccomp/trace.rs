//! Concern: the traced variant of a filter, for `default_action: kill_process` under the
//! jail's init (docs/architecture.md, "Naming a refused syscall"): every kill becomes
//! `SECCOMP_RET_TRACE` with a [`TraceData`] saying which check refused, and two checks
//! come first so that no process of the jail can leave the tracer.

use super::bpf::{RET_ALLOW, RET_TRACE};
use super::program::{Answers, Check, Layout};
use super::rules::RuleMap;
use crate::sysnames::{self, Arch};

/// Why the traced variant of a filter stopped a syscall: the `SECCOMP_RET_DATA` of its
/// `SECCOMP_RET_TRACE`, which the tracer reads with the syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum TraceData {
    /// The profile does not allow the syscall (the default action, `kill_process`).
    NotAllowed = 1,
    /// An x32 syscall number (x86_64 only): always refused.
    X32 = 2,
    /// A syscall from another architecture's table (e.g. i386 through `int 0x80`).
    ForeignArch = 3,
    /// `clone` with `CLONE_UNTRACED`: its child would escape the tracer, and an untraced
    /// process meeting `RET_TRACE` only gets ENOSYS, which is weaker than the kill.
    UntracedClone = 4,
    /// The serve gate ([`compile_gate`](super::compile_gate)): the serve phase does not
    /// allow the syscall. The jail's init lets it run while the plugin loads and refuses it
    /// once the stub has switched to serving.
    Gate = 5,
    /// The serve gate: `recvmsg` on the switch descriptor, the stub's request for its
    /// channel, which ends the load phase.
    Switch = 6,
}

impl TraceData {
    pub fn from_u32(value: u32) -> Option<TraceData> {
        [
            TraceData::NotAllowed,
            TraceData::X32,
            TraceData::ForeignArch,
            TraceData::UntracedClone,
            TraceData::Gate,
            TraceData::Switch,
        ]
        .into_iter()
        .find(|d| *d as u32 == value)
    }

    /// `SECCOMP_RET_TRACE` with this data.
    pub(super) fn ret(self) -> u32 {
        RET_TRACE | self as u32
    }
}

/// The traced variant of the filter for `rules` on `arch`: each refusal a trace naming its
/// check, behind the [`clone_checks`].
pub(super) fn layout(arch: Arch, rules: &RuleMap) -> Layout {
    Layout {
        arch,
        answers: Answers {
            allow: RET_ALLOW,
            refuse: TraceData::NotAllowed.ret(),
            foreign: TraceData::ForeignArch.ret(),
            x32: TraceData::X32.ret(),
        },
        checks: clone_checks(arch, allows(arch, rules, "clone3")),
    }
}

/// Whether `rules` allow syscall `name` on `arch`, under any conditions.
pub(super) fn allows(arch: Arch, rules: &RuleMap, name: &str) -> bool {
    sysnames::number(arch, name).is_some_and(|nr| rules.contains_key(&nr))
}

/// What keeps every process of a traced jail in its tracer's sight: `clone3`, whose flags
/// sit behind a pointer the filter cannot read, returns ENOSYS when `clone3_allowed` (C
/// libraries then fall back to `clone`, as on kernels before 5.3; where the profile does
/// not allow it, it is refused like any other syscall), and `clone` with `CLONE_UNTRACED`
/// is refused (traced, so it is named and kills).
pub(super) fn clone_checks(arch: Arch, clone3_allowed: bool) -> Vec<Check> {
    let clone3 = sysnames::number(arch, "clone3").filter(|_| clone3_allowed);
    let clone = sysnames::number(arch, "clone");
    let enosys = clone3.map(|nr| Check::Enosys { nr });
    let untraced = clone.map(|clone| Check::UntracedClone {
        clone,
        answer: TraceData::UntracedClone.ret(),
    });
    enosys.into_iter().chain(untraced).collect()
}
