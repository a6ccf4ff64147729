//! Concern: assembling classic BPF with symbolic labels, so that no part of plugjail ever
//! computes a jump offset by hand or edits a program by instruction position.
//!
//! Code is written in program order with forward jumps to [`Label`]s; [`Asm::finish`]
//! resolves every label in one pass from the last instruction to the first (classic BPF
//! only jumps forward, so everything a jump can reach is already placed when the jump is).
//! A conditional jump has 8-bit offsets: a target more than 255 instructions away is
//! reached through a `JA` trampoline (32-bit offset) put right behind the jump, which the
//! jump's two explicit offsets always step over or into, never fall into. A trampoline
//! still in reach is shared by later jumps to the same place. minijail's `bpf.c` and
//! sandbox2's `bpf_helper` resolve labels the same way.

use std::collections::HashMap;

use super::bpf::{Insn, JA, LD_W_ABS, RET_K, stmt};

/// A place in the program, bound once with [`Asm::bind`] after every jump to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Label(usize);

/// Where one branch of a conditional jump goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum To {
    /// The instruction written next.
    Next,
    Label(Label),
}

#[derive(Debug)]
enum Op {
    Stmt(Insn),
    Jump { code: u16, k: u32, jt: To, jf: To },
    Bind(Label),
}

/// A program being written; see the module docs.
#[derive(Debug, Default)]
pub(super) struct Asm {
    ops: Vec<Op>,
    labels: usize,
}

/// The farthest a conditional branch is left to reach directly: a jump may get two
/// trampolines between itself and what follows it, which moves it two further away.
const NEAR: usize = u8::MAX as usize - 2;

impl Asm {
    pub(super) fn new() -> Asm {
        Asm::default()
    }

    pub(super) fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }

    /// The next instruction written is where `label` points.
    pub(super) fn bind(&mut self, label: Label) {
        self.ops.push(Op::Bind(label));
    }

    /// `A = seccomp_data[offset]` (32 bits).
    pub(super) fn load(&mut self, offset: u32) {
        self.ops.push(Op::Stmt(stmt(LD_W_ABS, offset)));
    }

    /// An instruction that does not jump (load, ALU).
    pub(super) fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Stmt(stmt(code, k)));
    }

    pub(super) fn ret(&mut self, value: u32) {
        self.ops.push(Op::Stmt(stmt(RET_K, value)));
    }

    /// A conditional jump (`JEQ`, `JGT`, `JGE`, `JSET` against `k`).
    pub(super) fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.ops.push(Op::Jump { code, k, jt, jf });
    }

    /// The instructions with every label resolved. Panics on a program that is not
    /// well formed (a label bound twice or never, a backward jump, a jump or label with no
    /// instruction after it): those are mistakes in plugjail's generator, which the tests
    /// run through every path of.
    pub(super) fn finish(self) -> Vec<Insn> {
        // Built back to front: `rev[i]` is the instruction `i` places before the end.
        let mut rev: Vec<Insn> = Vec::with_capacity(self.ops.len() + 8);
        let mut bound: Vec<Option<usize>> = vec![None; self.labels];
        // Where the latest trampoline to each target is.
        let mut trampolines: HashMap<usize, usize> = HashMap::new();
        let target = |rev: &Vec<Insn>, bound: &[Option<usize>], to: To| match to {
            To::Next => rev
                .len()
                .checked_sub(1)
                .expect("a jump is the last instruction"),
            To::Label(Label(l)) => bound[l].expect("a jump to a label bound before it or never"),
        };
        for op in self.ops.into_iter().rev() {
            match op {
                Op::Stmt(insn) => rev.push(insn),
                Op::Bind(Label(l)) => {
                    assert!(bound[l].is_none(), "label {l} bound twice");
                    let at = rev.len().checked_sub(1).expect("a label after the end");
                    bound[l] = Some(at);
                }
                Op::Jump { code, k, jt, jf } => {
                    let (jt, jf) = (target(&rev, &bound, jt), target(&rev, &bound, jf));
                    let mut reach = |t: usize, rev: &mut Vec<Insn>| {
                        if rev.len() - t - 1 <= NEAR {
                            return t;
                        }
                        match trampolines.get(&t) {
                            Some(&via) if rev.len() - via - 1 <= NEAR => via,
                            _ => {
                                let via = rev.len();
                                let k = u32::try_from(via - t - 1).expect("program under 2^32");
                                rev.push(stmt(JA, k));
                                trampolines.insert(t, via);
                                via
                            }
                        }
                    };
                    let jt = reach(jt, &mut rev);
                    let jf = reach(jf, &mut rev);
                    let here = rev.len();
                    let offset = |t: usize| u8::try_from(here - t - 1).expect("within reach");
                    rev.push(Insn {
                        code,
                        jt: offset(jt),
                        jf: offset(jf),
                        k,
                    });
                }
            }
        }
        rev.reverse();
        rev
    }
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{JEQ_K, JGE_K};
    use super::*;

    fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
        Insn { code, jt, jf, k }
    }

    #[test]
    fn labels_resolve_to_offsets() {
        let mut a = Asm::new();
        let (yes, no) = (a.label(), a.label());
        a.load(0);
        a.jump(JEQ_K, 7, To::Label(yes), To::Next);
        a.jump(JGE_K, 9, To::Next, To::Label(no));
        a.ret(0);
        a.bind(no);
        a.ret(1);
        a.bind(yes);
        a.ret(2);
        assert_eq!(
            a.finish(),
            [
                stmt(LD_W_ABS, 0),
                insn(JEQ_K, 3, 0, 7),
                insn(JGE_K, 0, 1, 9),
                stmt(RET_K, 0),
                stmt(RET_K, 1),
                stmt(RET_K, 2),
            ]
        );
    }

    /// A branch past 253 instructions goes through a trampoline right behind its jump;
    /// another jump in reach of that trampoline shares it.
    #[test]
    fn far_branches_go_through_shared_trampolines() {
        for filler in [252, 253, 254, 300] {
            let mut a = Asm::new();
            let far = a.label();
            a.load(0);
            a.jump(JEQ_K, 1, To::Next, To::Label(far));
            a.jump(JEQ_K, 2, To::Label(far), To::Label(far));
            for i in 0..filler {
                a.ret(i);
            }
            a.bind(far);
            a.ret(u32::MAX);
            let prog = a.finish();
            let end = prog.len() - 1;
            // Follow a branch (and any trampoline) to where it lands.
            let land = |mut pc: usize, taken: bool| {
                let i = &prog[pc];
                pc += 1 + usize::from(if taken { i.jt } else { i.jf });
                while prog[pc].code == JA {
                    pc += 1 + prog[pc].k as usize;
                }
                pc
            };
            let jump2 = (2..prog.len())
                .find(|&pc| prog[pc].code == JEQ_K && prog[pc].k == 2)
                .expect("second jump");
            assert_eq!(land(1, false), end, "filler {filler}");
            assert_eq!(land(1, true), jump2, "filler {filler}");
            assert_eq!(land(jump2, true), end, "filler {filler}");
            assert_eq!(land(jump2, false), end, "filler {filler}");
            let trampolines = prog.iter().filter(|i| i.code == JA).count();
            assert_eq!(trampolines, usize::from(filler > 252), "filler {filler}");
        }
    }

    #[test]
    #[should_panic(expected = "bound before it or never")]
    fn a_backward_jump_is_refused() {
        let mut a = Asm::new();
        let back = a.label();
        a.bind(back);
        a.load(0);
        a.jump(JEQ_K, 1, To::Label(back), To::Next);
        a.ret(0);
        a.finish();
    }
}
