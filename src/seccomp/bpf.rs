//! Concern: the vocabulary of a seccomp program — classic BPF opcodes, the kernel's return
//! actions, the layout of `struct seccomp_data` and the `AUDIT_ARCH_*` values. This is the
//! one place plugjail spells these numbers; the filter generator, the serve hand-over and
//! the verdict all take them from here.

use crate::sysnames::Arch;

/// One classic BPF instruction, exactly as the kernel takes it.
pub(crate) type Insn = libc::sock_filter;

/// A `struct sock_filter` opcode from libc's `BPF_*` bits (which libc types as `u32`).
/// Opcodes are 16-bit by definition; the assertion makes a wider value fail to compile.
#[allow(clippy::cast_possible_truncation)]
const fn opcode(bits: u32) -> u16 {
    assert!(bits <= 0xffff);
    bits as u16
}

/// `A = *(u32 *)(seccomp_data + k)`.
pub(crate) const LD_W_ABS: u16 = opcode(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS);
/// `A &= k`.
pub(crate) const ALU_AND_K: u16 = opcode(libc::BPF_ALU | libc::BPF_AND | libc::BPF_K);
/// `pc += k` (32-bit offset, forward only).
pub(crate) const JA: u16 = opcode(libc::BPF_JMP | libc::BPF_JA);
/// `pc += (A == k) ? jt : jf` (8-bit offsets, forward only), and the same for the others.
pub(crate) const JEQ_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K);
/// `A > k`, unsigned.
pub(crate) const JGT_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K);
/// `A >= k`, unsigned.
pub(crate) const JGE_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K);
/// `A & k != 0`.
pub(crate) const JSET_K: u16 = opcode(libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K);
/// Return `k`: the action (`SECCOMP_RET_*`) and its data.
pub(crate) const RET_K: u16 = opcode(libc::BPF_RET | libc::BPF_K);

/// The kernel's limit on a classic BPF program (`BPF_MAXINSNS`).
pub(crate) const MAX_INSTRUCTIONS: usize = 4096;

/// `offsetof(struct seccomp_data, nr)`.
pub(crate) const DATA_NR: u32 = 0;
/// `offsetof(struct seccomp_data, arch)`.
pub(crate) const DATA_ARCH: u32 = 4;
/// `offsetof(struct seccomp_data, args)`; each argument is 8 bytes.
const DATA_ARGS: u32 = 16;

/// Where the low 32 bits of argument `index` are (both architectures are little-endian).
pub(crate) const fn arg_low(index: u8) -> u32 {
    DATA_ARGS + 8 * index as u32
}

/// Where the high 32 bits of argument `index` are.
pub(crate) const fn arg_high(index: u8) -> u32 {
    arg_low(index) + 4
}

pub(crate) const RET_KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
pub(crate) const RET_TRAP: u32 = libc::SECCOMP_RET_TRAP;
pub(crate) const RET_ERRNO: u32 = libc::SECCOMP_RET_ERRNO;
pub(crate) const RET_TRACE: u32 = libc::SECCOMP_RET_TRACE;
pub(crate) const RET_LOG: u32 = libc::SECCOMP_RET_LOG;
pub(crate) const RET_ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
/// The data bits of a return value (an errno, a tracer's hint).
pub(crate) const RET_DATA: u32 = libc::SECCOMP_RET_DATA;
/// The action bits of a return value.
#[cfg(test)]
pub(crate) const RET_ACTION_FULL: u32 = libc::SECCOMP_RET_ACTION_FULL;

/// `SECCOMP_RET_ERRNO` with `errno` (only its low 16 bits fit, as the kernel reads them).
pub(crate) const fn ret_errno(errno: u32) -> u32 {
    RET_ERRNO | (errno & RET_DATA)
}

/// `AUDIT_ARCH_*` values (linux/audit.h): `seccomp_data.arch`, which table a syscall
/// number belongs to.
pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub(crate) const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;
pub(crate) const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub(crate) const AUDIT_ARCH_ARM: u32 = 0x4000_0028;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with `AUDIT_ARCH_X86_64` and this bit set.
pub(crate) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `CLONE_UNTRACED` (linux/sched.h): the new process is not auto-attached to the tracer.
pub(crate) const CLONE_UNTRACED: u32 = 0x0080_0000;

/// The `AUDIT_ARCH_*` of `arch`'s native syscall table.
pub(crate) const fn audit_arch(arch: Arch) -> u32 {
    match arch {
        Arch::X86_64 => AUDIT_ARCH_X86_64,
        Arch::Aarch64 => AUDIT_ARCH_AARCH64,
    }
}

/// The `AUDIT_ARCH_*` of the architecture this binary runs on.
#[cfg(target_arch = "x86_64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = AUDIT_ARCH_X86_64;
#[cfg(target_arch = "aarch64")]
pub(crate) const AUDIT_ARCH_NATIVE: u32 = AUDIT_ARCH_AARCH64;

/// An instruction without jumps.
pub(crate) const fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}
