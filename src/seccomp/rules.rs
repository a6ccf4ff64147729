//! Concern: turning a profile phase into what the filter decides per syscall number — the
//! allowed numbers on one architecture, each either unconditionally or under alternative
//! sets of argument conditions, with every value cut to the width the kernel reads (the
//! `INT_ARGS` table) — plus the rules the runner itself adds (its one exec, stacking).

use std::collections::BTreeMap;
use std::os::fd::RawFd;

use super::{SeccompError, SeccompPhase};
use crate::profile::resolve::{expand_names, resolve};
use crate::profile::{ArgCondition, CmpOp, Phase};
use crate::sysnames::{self, Arch};

/// Arguments the kernel declares `int` or `unsigned int`: it reads only the low 32 bits of
/// the register, so the filter must compare exactly those bits. A 64-bit comparison there
/// would let `ne`/`gt`/`lt` rules be bypassed by setting the upper half (e.g. `ioctl` with
/// `ne TIOCSTI`), and would wrongly refuse values a C library sign-extends. Every argument
/// not listed is compared on all 64 bits.
const INT_ARGS: &[(&str, &[u8])] = &[
    ("ioctl", &[0, 1]),
    ("fcntl", &[0, 1]),
    ("prctl", &[0]),
    ("socket", &[0, 1, 2]),
    ("socketpair", &[0, 1, 2]),
    ("setsockopt", &[0, 1, 2, 4]),
    ("getsockopt", &[0, 1, 2]),
    ("kill", &[0, 1]),
    ("tkill", &[0, 1]),
    ("tgkill", &[0, 1, 2]),
    ("personality", &[0]),
    ("madvise", &[2]),
    ("futex", &[1]),
    ("openat", &[0, 2]),
    ("dup3", &[0, 1, 2]),
    ("flock", &[0, 1]),
    ("close", &[0]),
    ("execveat", &[0, 4]),
    ("recvmsg", &[0]),
];

/// Whether the filter compares argument `index` of `syscall` on its low 32 bits only (a
/// value above 2^32 there is refused by [`compile`](super::compile); the profile checker
/// may warn earlier).
pub fn is_32bit_arg(syscall: &str, index: u8) -> bool {
    INT_ARGS
        .iter()
        .any(|(name, args)| *name == syscall && args.contains(&index))
}

/// How much of an argument a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Width {
    /// The low 32 bits (an `int` argument).
    Low32,
    Full64,
}

/// An unsigned comparison of the argument (left) with the condition's value (right).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `arg & mask == value`; the value already has no bits outside the mask.
    MaskedEq(u64),
}

/// One argument condition, its value and mask already cut to `width`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cond {
    /// 0..=5.
    pub index: u8,
    pub width: Width,
    pub op: Op,
    pub value: u64,
}

/// Syscall number → its alternatives (any one may match; each is a list of conditions
/// that must all hold). An empty list means allowed whatever the arguments, so an
/// unconditional rule for a syscall wins over conditional ones.
pub(super) type RuleMap = BTreeMap<u32, Vec<Vec<Cond>>>;

/// The rules of one profile phase on `arch`, and the names it allows that `arch` does not
/// have (sorted, each once).
pub(super) fn rule_map(
    arch: Arch,
    phase_rules: &Phase,
    phase: SeccompPhase,
) -> Result<(RuleMap, Vec<String>), SeccompError> {
    let mut unconditional = Vec::new();
    let mut conditional = RuleMap::new();
    let mut absent = Vec::new();
    for rule in &phase_rules.allow {
        let names = expand_names(rule.syscalls.iter().map(String::as_str));
        let resolved = resolve(arch, &names);
        absent.extend(resolved.absent.iter().map(|s| s.to_string()));
        for (name, nr) in resolved.numbers {
            if rule.args.is_empty() {
                unconditional.push(nr);
                continue;
            }
            let conditions = rule
                .args
                .iter()
                .map(|c| condition(name, c, phase))
                .collect::<Result<Vec<_>, _>>()?;
            conditional.entry(nr).or_default().push(conditions);
        }
    }
    for nr in unconditional {
        conditional.insert(nr, Vec::new());
    }
    absent.sort();
    absent.dedup();
    Ok((conditional, absent))
}

fn condition(syscall: &str, c: &ArgCondition, phase: SeccompPhase) -> Result<Cond, SeccompError> {
    let width = if is_32bit_arg(syscall, c.index) {
        Width::Low32
    } else {
        Width::Full64
    };
    let narrow = |v: u64| -> Result<u64, SeccompError> {
        if width == Width::Full64 || v <= u64::from(u32::MAX) {
            return Ok(v);
        }
        // A negative `int` written sign-extended (AT_FDCWD as 0xffff_ffff_ffff_ff9c) is the
        // same 32-bit value the kernel reads.
        if v >> 31 == (u64::MAX >> 31) {
            return Ok(v & u64::from(u32::MAX));
        }
        Err(SeccompError::ArgTooWide {
            phase: phase.name(),
            syscall: syscall.to_string(),
            index: c.index,
            value: v,
        })
    };
    let mut value = narrow(c.value)?;
    if c.index > 5 {
        return Err(SeccompError::BadArgIndex {
            phase: phase.name(),
            syscall: syscall.to_string(),
            index: c.index,
        });
    }
    let op = match c.op {
        CmpOp::Eq => Op::Eq,
        CmpOp::Ne => Op::Ne,
        CmpOp::Lt => Op::Lt,
        CmpOp::Le => Op::Le,
        CmpOp::Gt => Op::Gt,
        CmpOp::Ge => Op::Ge,
        CmpOp::MaskedEq => {
            let mut mask = c.mask.unwrap_or(u64::MAX);
            if width == Width::Low32 {
                mask &= u64::from(u32::MAX);
            }
            value &= mask;
            Op::MaskedEq(mask)
        }
    };
    Ok(Cond {
        index: c.index,
        width,
        op,
        value,
    })
}

/// `arg index == value`, on the low 32 bits.
fn int_eq(index: u8, value: u64) -> Cond {
    Cond {
        index,
        width: Width::Low32,
        op: Op::Eq,
        value,
    }
}

/// Allows `execveat(fd, _, _, _, AT_EMPTY_PATH)` and nothing else of execveat, unless the
/// profile already allows execveat without conditions.
pub(super) fn add_exec_fd_rule(
    arch: Arch,
    map: &mut RuleMap,
    fd: RawFd,
    phase: SeccompPhase,
) -> Result<(), SeccompError> {
    let fd = u64::try_from(fd).map_err(|_| SeccompError::BadExecFd {
        phase: phase.name(),
        fd,
    })?;
    if let Some(nr) = sysnames::number(arch, "execveat") {
        let empty_path = libc::AT_EMPTY_PATH as u64;
        add_conditional(map, nr, vec![int_eq(0, fd), int_eq(4, empty_path)]);
    }
    Ok(())
}

/// Allows `seccomp(SECCOMP_SET_MODE_FILTER, 0, _)`: one more filter, no flags (no TSYNC, no
/// listener), exactly what [`SeccompProgram::install`](super::SeccompProgram::install) does.
pub(super) fn add_stacking_rule(arch: Arch, map: &mut RuleMap) {
    if let Some(nr) = sysnames::number(arch, "seccomp") {
        let mode = u64::from(libc::SECCOMP_SET_MODE_FILTER);
        add_conditional(map, nr, vec![int_eq(0, mode), int_eq(1, 0)]);
    }
}

/// Adds an alternative for `nr`, unless the syscall is already allowed whatever its
/// arguments (an empty list).
fn add_conditional(map: &mut RuleMap, nr: u32, conditions: Vec<Cond>) {
    use std::collections::btree_map::Entry;
    match map.entry(nr) {
        Entry::Occupied(mut e) if !e.get().is_empty() => e.get_mut().push(conditions),
        Entry::Occupied(_) => {}
        Entry::Vacant(e) => {
            e.insert(vec![conditions]);
        }
    }
}
