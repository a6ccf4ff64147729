//! The search form of a filter: after the architecture and x32 checks, a binary search over
//! syscall numbers instead of seccompiler's linear list of comparisons.
//!
//! seccompiler emits one block per allowed syscall — `JEQ nr`, then the syscall's rules,
//! then `RET mismatch` — and a syscall walks every block before its own: up to two
//! instructions per allowed syscall, and a program of 600–700 instructions that the kernel
//! checks, converts and JIT-compiles at every install. Here the number line is cut into
//! intervals with one outcome each — a run of unconditionally allowed numbers, a gap of
//! refused ones, or one syscall with argument conditions — and a tree of `JGE` comparisons
//! finds a syscall's interval in about log2(intervals) steps. A conditional syscall's rules
//! are seccompiler's own block for it (compiled alone), entered past its `JEQ`; their
//! instructions are copied unchanged, so the argument checks are exactly seccompiler's.
//!
//! Instructions are seccompiler's type, so the traced variant and the x32 check apply to
//! this form as they do to the linear one.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch, sock_filter};

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

/// What a range of syscall numbers leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    Allow,
    Refuse,
    /// One syscall's rules (seccompiler's block without its `JEQ`).
    Rules(Vec<sock_filter>),
}

/// Builds the search form. `linear` is seccompiler's program after the x32 check was added;
/// its prefix up to and including the load of the syscall number (at `load_nr`) is kept as
/// it is. `rules` is the map seccompiler was given (number → alternatives; empty: allowed
/// whatever the arguments). None when the linear form has no such prefix (no syscall is
/// allowed at all) or a block is not shaped as expected: the caller keeps the linear form,
/// which is equally strict.
pub(super) fn build(
    linear: &BpfProgram,
    load_nr: usize,
    rules: &BTreeMap<i64, Vec<SeccompRule>>,
    mismatch: &SeccompAction,
    target: TargetArch,
) -> Option<BpfProgram> {
    let at = linear.get(load_nr)?;
    if at.code != LD_W_ABS || at.k != 0 || rules.is_empty() {
        return None;
    }
    let refuse = u32::from(mismatch.clone());
    let allow = u32::from(SeccompAction::Allow);
    // Interval starts, each with its outcome; the last one runs to u32::MAX.
    let mut cuts: Vec<(u32, Leaf)> = Vec::new();
    let mut push = |start: u32, leaf: Leaf| match cuts.last() {
        Some((_, Leaf::Allow)) if leaf == Leaf::Allow => {}
        Some((_, Leaf::Refuse)) if leaf == Leaf::Refuse => {}
        _ => cuts.push((start, leaf)),
    };
    let mut next = 0u32;
    for (&nr, alternatives) in rules {
        let nr = u32::try_from(nr).ok()?;
        if nr > next {
            push(next, Leaf::Refuse);
        }
        let leaf = if alternatives.is_empty() {
            Leaf::Allow
        } else {
            Leaf::Rules(block(nr, alternatives, mismatch, target)?)
        };
        push(nr, leaf);
        next = nr.checked_add(1)?;
    }
    push(next, Leaf::Refuse);
    let mut out = linear[..=load_nr].to_vec();
    out.extend(tree(&cuts, allow, refuse)?);
    Some(out)
}

/// seccompiler's block for one syscall, without the `JEQ` that guards it: entered with the
/// number already matched, every path through it ends in a `RET`. Its "number did not
/// match" jumps (now unreachable) point just past its end, where the tree always has more
/// instructions (the last interval is a refusal).
fn block(
    nr: u32,
    alternatives: &[SeccompRule],
    mismatch: &SeccompAction,
    target: TargetArch,
) -> Option<Vec<sock_filter>> {
    let one = BTreeMap::from([(i64::from(nr), alternatives.to_vec())]);
    let filter = SeccompFilter::new(one, mismatch.clone(), SeccompAction::Allow, target).ok()?;
    let prog: BpfProgram = filter.try_into().ok()?;
    // [arch check (3), LD nr, JEQ nr 0 1, rules..., RET mismatch, RET mismatch (default)]
    let jeq = prog.get(4)?;
    if prog.len() < 7 || prog[3].code != LD_W_ABS || jeq.code != JEQ_K || jeq.k != nr {
        return None;
    }
    Some(prog[5..prog.len() - 1].to_vec())
}

/// The search tree over `cuts[..]`, in preorder: a `JGE` on the middle interval's start
/// goes right, falling through goes left. A right subtree more than 255 instructions away
/// is reached through a `JA` (32-bit offset).
fn tree(cuts: &[(u32, Leaf)], allow: u32, refuse: u32) -> Option<Vec<sock_filter>> {
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    if let [(_, leaf)] = cuts {
        return Some(match leaf {
            Leaf::Allow => vec![stmt(RET_K, allow)],
            Leaf::Refuse => vec![stmt(RET_K, refuse)],
            Leaf::Rules(body) => body.clone(),
        });
    }
    let mid = cuts.len() / 2;
    let left = tree(&cuts[..mid], allow, refuse)?;
    let right = tree(&cuts[mid..], allow, refuse)?;
    let start = cuts[mid].0;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(sock_filter {
            code: JGE_K,
            jt: skip,
            jf: 0,
            k: start,
        }),
        Err(_) => {
            out.push(sock_filter {
                code: JGE_K,
                jt: 0,
                jf: 1,
                k: start,
            });
            out.push(stmt(JA, u32::try_from(left.len()).ok()?));
        }
    }
    out.extend(left);
    out.extend(right);
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A classic BPF interpreter for the instructions seccompiler and this module emit,
    /// over a `struct seccomp_data` (nr, arch, instruction pointer, six arguments).
    pub(crate) fn run(prog: &[sock_filter], nr: u32, arch: u32, args: &[u64; 6]) -> u32 {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        for (i, a) in args.iter().enumerate() {
            data[16 + 8 * i..24 + 8 * i].copy_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = &prog[pc];
            pc += 1;
            let cond = |taken: bool| if taken { ins.jt } else { ins.jf } as usize;
            match ins.code {
                LD_W_ABS => {
                    let k = ins.k as usize;
                    acc = u32::from_ne_bytes(data[k..k + 4].try_into().unwrap());
                }
                c if c == (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16 => acc &= ins.k,
                JA => pc += ins.k as usize,
                JEQ_K => pc += cond(acc == ins.k),
                JGE_K => pc += cond(acc >= ins.k),
                c if c == (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16 => {
                    pc += cond(acc > ins.k)
                }
                c if c == (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16 => {
                    pc += cond(acc & ins.k != 0)
                }
                RET_K => return ins.k,
                other => panic!("instruction {other:#x} at {}", pc - 1),
            }
            assert!(pc < prog.len(), "ran off the end of the program");
        }
    }

    #[test]
    fn far_right_subtrees_go_through_a_long_jump() {
        // 200 alternating intervals: the left half alone is over 255 instructions.
        let cuts: Vec<(u32, Leaf)> = (0..400u32)
            .map(|i| {
                (
                    i,
                    if i % 2 == 0 {
                        Leaf::Allow
                    } else {
                        Leaf::Refuse
                    },
                )
            })
            .collect();
        let tree = tree(&cuts, 1, 2).unwrap();
        assert!(tree.iter().any(|i| i.code == JA));
        let mut prog = vec![sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        }];
        prog.extend(tree);
        for nr in 0..420u32 {
            let want = if nr < 400 && nr % 2 == 0 { 1 } else { 2 };
            assert_eq!(run(&prog, nr, 0, &[0; 6]), want, "nr {nr}");
        }
    }
}
