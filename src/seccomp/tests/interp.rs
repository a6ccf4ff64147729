//! Concern: asking a seccomp program for its answer without the kernel — a classic BPF
//! interpreter over a `struct seccomp_data`, and the kernel's own checks at install that
//! matter for the instructions plugjail emits.

use crate::seccomp::bpf::{
    ALU_AND_K, Insn, JA, JEQ_K, JGE_K, JGT_K, JSET_K, LD_W_ABS, MAX_INSTRUCTIONS, RET_K,
};

/// What the kernel refuses at install (`bpf_check_classic`, `seccomp_check_filter`): an
/// empty or too long program, an opcode seccomp does not take, a load outside
/// `seccomp_data` or not 4-byte aligned, a jump out of the program, no `RET` at the end.
pub(crate) fn check(prog: &[Insn]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > MAX_INSTRUCTIONS {
        return Err(format!("{} instructions", prog.len()));
    }
    for (pc, i) in prog.iter().enumerate() {
        let lands = |off: u64| pc as u64 + 1 + off < prog.len() as u64;
        let ok = match i.code {
            LD_W_ABS => i.k % 4 == 0 && i.k < 64,
            ALU_AND_K | RET_K => true,
            JA => lands(u64::from(i.k)),
            JEQ_K | JGT_K | JGE_K | JSET_K => lands(i.jt.into()) && lands(i.jf.into()),
            _ => false,
        };
        if !ok {
            return Err(format!("instruction {pc}: {i:?}"));
        }
    }
    match prog.last() {
        Some(i) if i.code == RET_K => Ok(()),
        _ => Err("the last instruction is not a RET".to_owned()),
    }
}

/// The program's return value for syscall `nr` of table `arch` with `args` (instruction
/// pointer 0).
pub(crate) fn run(prog: &[Insn], nr: u32, arch: u32, args: &[u64; 6]) -> u32 {
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
            ALU_AND_K => acc &= ins.k,
            JA => pc += ins.k as usize,
            JEQ_K => pc += cond(acc == ins.k),
            JGE_K => pc += cond(acc >= ins.k),
            JGT_K => pc += cond(acc > ins.k),
            JSET_K => pc += cond(acc & ins.k != 0),
            RET_K => return ins.k,
            other => panic!("instruction {other:#x} at {}", pc - 1),
        }
        assert!(pc < prog.len(), "ran off the end of the program");
    }
}
