//! Concern: the binary search over syscall numbers that ends every filter program.
//!
//! A linear allowlist (seccompiler's form: one `JEQ` per allowed syscall, in order) walks
//! up to one comparison per allowed syscall, and makes a program of 600–700 instructions
//! that the kernel checks, converts and JIT-compiles at every install. Here the number line
//! is cut into intervals with one outcome each — a run of unconditionally allowed numbers,
//! a gap of refused ones, or one syscall with argument conditions — and a tree of `JGE`
//! comparisons finds a syscall's interval in about log2(intervals) steps. The kernel's
//! constant-action cache still applies: it follows `JGE`, `JA` and `JEQ` on the number.

use super::asm::{Asm, To};
use super::bpf::JGE_K;
use super::program::{Answers, emit_alternatives};
use super::rules::{Cond, RuleMap};

/// What a range of syscall numbers leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf<'a> {
    Allow,
    Refuse,
    /// One syscall's alternatives.
    Rules(&'a [Vec<Cond>]),
}

/// The search, entered with the syscall number in A: every path ends in a `RET`.
pub(super) fn emit(asm: &mut Asm, rules: &RuleMap, answers: Answers) {
    tree(asm, &cuts(rules), answers);
}

/// Interval starts, each with its outcome; the last one runs to `u32::MAX`.
fn cuts(rules: &RuleMap) -> Vec<(u32, Leaf<'_>)> {
    let mut cuts: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf| match (cuts.last(), leaf) {
        (Some((_, Leaf::Allow)), Leaf::Allow) | (Some((_, Leaf::Refuse)), Leaf::Refuse) => {}
        _ => cuts.push((start, leaf)),
    };
    let mut next = 0u32;
    for (&nr, alternatives) in rules {
        if nr > next {
            push(next, Leaf::Refuse);
        }
        let leaf = if alternatives.is_empty() {
            Leaf::Allow
        } else {
            Leaf::Rules(alternatives)
        };
        push(nr, leaf);
        // No table has a syscall number anywhere near u32::MAX.
        next = nr.checked_add(1).expect("syscall number below u32::MAX");
    }
    push(next, Leaf::Refuse);
    cuts
}

/// The search tree over `cuts`, in preorder: a `JGE` on the middle interval's start goes
/// right, falling through goes left. The assembler reaches a right subtree more than 255
/// instructions away through a `JA`.
fn tree(asm: &mut Asm, cuts: &[(u32, Leaf<'_>)], answers: Answers) {
    if let [(_, leaf)] = cuts {
        match leaf {
            Leaf::Allow => asm.ret(answers.allow),
            Leaf::Refuse => asm.ret(answers.refuse),
            Leaf::Rules(alternatives) => emit_alternatives(asm, alternatives, answers),
        }
        return;
    }
    let mid = cuts.len() / 2;
    let right = asm.label();
    asm.jump(JGE_K, cuts[mid].0, To::Label(right), To::Next);
    tree(asm, &cuts[..mid], answers);
    asm.bind(right);
    tree(asm, &cuts[mid..], answers);
}

#[cfg(test)]
mod tests {
    use super::super::bpf::{DATA_NR, JA};
    use super::super::tests::interp::run;
    use super::*;

    #[test]
    fn far_right_subtrees_go_through_a_long_jump() {
        // 200 alternating intervals: the left half alone is over 255 instructions.
        let rules: RuleMap = (0..400u32).step_by(2).map(|nr| (nr, Vec::new())).collect();
        let answers = Answers {
            allow: 1,
            refuse: 2,
            foreign: 3,
            x32: 4,
        };
        assert_eq!(cuts(&rules).len(), 400);
        let mut asm = Asm::new();
        asm.load(DATA_NR);
        emit(&mut asm, &rules, answers);
        let prog = asm.finish();
        assert!(prog.iter().any(|i| i.code == JA));
        for nr in 0..420u32 {
            let want = if nr < 400 && nr % 2 == 0 { 1 } else { 2 };
            assert_eq!(run(&prog, nr, 0, &[0; 6]), want, "nr {nr}");
        }
    }
}
