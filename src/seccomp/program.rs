//! Concern: generating a whole filter program from a [`Layout`] and the rules, with the
//! assembler of [`asm`](super::asm). Every filter plugjail installs (plain, traced, the
//! serve gate) has the same four parts, in this order:
//!
//! 1. the architecture check: a syscall made through another architecture's table (i386
//!    through `int 0x80` on x86_64) gets [`Answers::foreign`];
//! 2. on x86_64, the x32 check: a number with `__X32_SYSCALL_BIT` gets [`Answers::x32`],
//!    so that no default action (`log`, `errno`) ever lets a syscall through the x32 table;
//! 3. the layout's [`Check`]s for single syscalls (the gate's switch, clone3, untraced
//!    clone), each answering only its own syscall;
//! 4. the binary search over syscall numbers ([`search`](super::search)), whose leaves are
//!    [`Answers::allow`], [`Answers::refuse`] or one syscall's argument conditions.

use super::asm::{Asm, Label, To};
use super::bpf::{
    ALU_AND_K, CLONE_UNTRACED, DATA_ARCH, DATA_NR, Insn, JEQ_K, JGE_K, JGT_K, JSET_K,
    X32_SYSCALL_BIT, arg_high, arg_low, audit_arch, ret_errno,
};
use super::rules::{Cond, Op, RuleMap, Width};
use super::search;
use crate::sysnames::Arch;

/// The return values (`SECCOMP_RET_*` with data) a program gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Answers {
    /// A syscall the rules allow.
    pub allow: u32,
    /// A native syscall the rules do not allow.
    pub refuse: u32,
    /// A syscall from another architecture's table.
    pub foreign: u32,
    /// An x32 syscall number (x86_64 only).
    pub x32: u32,
}

/// A check of one syscall ahead of the search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Check {
    /// `recvmsg` with descriptor `fd` (argument 0, as an `int`) gets `answer`.
    Switch { recvmsg: u32, fd: u32, answer: u32 },
    /// Syscall `nr` fails with ENOSYS whatever its arguments.
    Enosys { nr: u32 },
    /// `clone` with `CLONE_UNTRACED` in its flags (argument 0 on both architectures) gets
    /// `answer`.
    UntracedClone { clone: u32, answer: u32 },
}

/// What a program answers besides the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Layout {
    pub arch: Arch,
    pub answers: Answers,
    pub checks: Vec<Check>,
}

/// The program for `rules` in `layout`.
pub(super) fn emit(layout: &Layout, rules: &RuleMap) -> Vec<Insn> {
    let answers = layout.answers;
    let mut asm = Asm::new();
    let native = asm.label();
    asm.load(DATA_ARCH);
    asm.jump(JEQ_K, audit_arch(layout.arch), To::Label(native), To::Next);
    asm.ret(answers.foreign);
    asm.bind(native);
    asm.load(DATA_NR);
    if layout.arch == Arch::X86_64 {
        let not_x32 = asm.label();
        asm.jump(JGE_K, X32_SYSCALL_BIT, To::Next, To::Label(not_x32));
        asm.ret(answers.x32);
        asm.bind(not_x32);
    }
    // Each check leaves the syscall number in A for what follows.
    for check in &layout.checks {
        emit_check(&mut asm, *check);
    }
    search::emit(&mut asm, rules, answers);
    asm.finish()
}

fn emit_check(asm: &mut Asm, check: Check) {
    let other = asm.label();
    match check {
        Check::Switch {
            recvmsg,
            fd,
            answer,
        } => {
            let reload = asm.label();
            asm.jump(JEQ_K, recvmsg, To::Next, To::Label(other));
            asm.load(arg_low(0));
            asm.jump(JEQ_K, fd, To::Next, To::Label(reload));
            asm.ret(answer);
            asm.bind(reload);
            asm.load(DATA_NR);
        }
        Check::Enosys { nr } => {
            asm.jump(JEQ_K, nr, To::Next, To::Label(other));
            asm.ret(ret_errno(libc::ENOSYS as u32));
        }
        Check::UntracedClone { clone, answer } => {
            let reload = asm.label();
            asm.jump(JEQ_K, clone, To::Next, To::Label(other));
            asm.load(arg_low(0));
            asm.jump(JSET_K, CLONE_UNTRACED, To::Next, To::Label(reload));
            asm.ret(answer);
            asm.bind(reload);
            asm.load(DATA_NR);
        }
    }
    asm.bind(other);
}

/// One syscall's alternatives, entered with its number matched: the first whose
/// conditions all hold allows it, and when none does it is refused.
pub(super) fn emit_alternatives(asm: &mut Asm, alternatives: &[Vec<Cond>], answers: Answers) {
    for conditions in alternatives {
        let next = asm.label();
        for cond in conditions {
            emit_condition(asm, cond, next);
        }
        asm.ret(answers.allow);
        asm.bind(next);
    }
    asm.ret(answers.refuse);
}

/// Falls through when `c` holds, jumps to `fail` when it does not. A 64-bit comparison
/// decides on the high halves unless they are equal, then on the low halves (a mask with
/// no high bits leaves nothing to compare there).
fn emit_condition(asm: &mut Asm, c: &Cond, fail: Label) {
    let fail = To::Label(fail);
    let (high, low) = halves(c.value);
    let pass = asm.label();
    let high_mask = match c.op {
        Op::MaskedEq(mask) => halves(mask).0,
        _ => u32::MAX,
    };
    if c.width == Width::Full64 && high_mask != 0 {
        asm.load(arg_high(c.index));
        match c.op {
            Op::Eq => asm.jump(JEQ_K, high, To::Next, fail),
            // Different high halves: not equal, whatever the low ones.
            Op::Ne => asm.jump(JEQ_K, high, To::Next, To::Label(pass)),
            Op::Ge | Op::Gt => {
                asm.jump(JGT_K, high, To::Label(pass), To::Next);
                asm.jump(JEQ_K, high, To::Next, fail);
            }
            Op::Le | Op::Lt => {
                asm.jump(JGT_K, high, fail, To::Next);
                asm.jump(JEQ_K, high, To::Next, To::Label(pass));
            }
            Op::MaskedEq(_) => {
                asm.stmt(ALU_AND_K, high_mask);
                asm.jump(JEQ_K, high, To::Next, fail);
            }
        }
    }
    asm.load(arg_low(c.index));
    match c.op {
        Op::Eq => asm.jump(JEQ_K, low, To::Next, fail),
        Op::Ne => asm.jump(JEQ_K, low, fail, To::Next),
        Op::Ge => asm.jump(JGE_K, low, To::Next, fail),
        Op::Gt => asm.jump(JGT_K, low, To::Next, fail),
        Op::Le => asm.jump(JGT_K, low, fail, To::Next),
        Op::Lt => asm.jump(JGE_K, low, fail, To::Next),
        Op::MaskedEq(mask) => {
            asm.stmt(ALU_AND_K, halves(mask).1);
            asm.jump(JEQ_K, low, To::Next, fail);
        }
    }
    asm.bind(pass);
}

/// The high and low 32 bits of a 64-bit argument value: classic BPF compares 32 bits at a
/// time, so the split is the point, not a loss.
#[allow(clippy::cast_possible_truncation)]
fn halves(v: u64) -> (u32, u32) {
    ((v >> 32) as u32, v as u32)
}
