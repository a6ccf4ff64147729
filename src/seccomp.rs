//! Seccomp: one phase of the profile compiled to a BPF program (parent), installed with a
//! single `seccomp(2)` call (child).
//!
//! [`compile`] may allocate and returns rich errors; [`SeccompProgram::install`] runs in the
//! single-threaded child after clone, so it only builds a `sock_fprog` on the stack that
//! points at the instructions prepared here, and reports a raw errno.
//!
//! The program is seccompiler's allowlist (mismatch = the profile's default action, match =
//! allow) with one addition: on x86_64, x32 syscall numbers are killed outright, right after
//! seccompiler's architecture check, so that no default action (`log`, `errno`) ever lets a
//! syscall through the x32 table. Then seccompiler's linear list of syscall comparisons is
//! replaced by a binary search over syscall numbers ([`search`]): a third of the
//! instructions, cheaper to install, and about log2 of the comparisons per syscall.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::RawFd;

use nix::errno::Errno;
use seccompiler::{
    BackendError, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::profile::resolve::{expand_names, resolve};
use crate::profile::{Action, ArgCondition, CmpOp, Phase, Seccomp};
use crate::sysnames::{self, Arch};

// Not used yet: the generator that replaces the splicing below comes next.
#[allow(dead_code)]
mod asm;
#[allow(dead_code)]
pub(crate) mod bpf;
mod gate;
mod search;

pub use gate::compile_gate;

/// Which of the profile's two filters to compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompPhase {
    /// While the plugin is dlopened and initialised; for `plugjail exec`, the whole run.
    Load,
    /// Stacked on top once the plugin is initialised.
    Serve,
}

impl SeccompPhase {
    pub fn name(self) -> &'static str {
        match self {
            SeccompPhase::Load => "load",
            SeccompPhase::Serve => "serve",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error(
        "seccomp {phase} phase: argument {index} of {syscall} is a 32-bit value in the kernel, \
         so {value:#x} can never match; use a value below 2^32"
    )]
    ArgTooWide {
        phase: &'static str,
        syscall: String,
        index: u8,
        value: u64,
    },
    #[error("seccomp {phase} phase: exec fd {fd} is not a file descriptor number")]
    BadExecFd { phase: &'static str, fd: RawFd },
    #[error("seccomp {phase} phase: cannot build the bpf filter for {arch}: {source}")]
    Build {
        phase: &'static str,
        arch: Arch,
        source: BackendError,
    },
    #[error(
        "seccomp {phase} phase: the filter has {len} instructions, more than the kernel's 4096"
    )]
    TooLarge { phase: &'static str, len: usize },
}

/// A compiled filter for the native architecture, ready to install without allocating.
pub struct SeccompProgram {
    phase: SeccompPhase,
    filter: Vec<libc::sock_filter>,
    /// For `default_action: kill_process` only: the same filter with every kill turned into
    /// `SECCOMP_RET_TRACE` (see [`TraceData`]), for a process whose tracer names the
    /// syscall and then kills the jail. Never install it without such a tracer: an
    /// untraced process meeting `RET_TRACE` just gets ENOSYS.
    traced: Option<Vec<libc::sock_filter>>,
    /// Names the profile allows that do not exist on this architecture (skipped).
    absent: Vec<String>,
    allowed: usize,
}

impl fmt::Debug for SeccompProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeccompProgram")
            .field("phase", &self.phase)
            .field("instructions", &self.filter.len())
            .field("allowed_syscalls", &self.allowed)
            .field("absent", &self.absent)
            .finish()
    }
}

/// The kernel's limit on a classic BPF program (BPF_MAXINSNS).
const MAX_INSTRUCTIONS: usize = 4096;

/// `__X32_SYSCALL_BIT`: x32 syscalls arrive with AUDIT_ARCH_X86_64 and this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// `offsetof(struct seccomp_data, arch)`: where seccompiler's arch check loads from.
const SECCOMP_DATA_ARCH: u32 = 4;

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
/// value above 2^32 there is refused by [`compile`]; the profile checker may warn earlier).
pub fn is_32bit_arg(syscall: &str, index: u8) -> bool {
    INT_ARGS
        .iter()
        .any(|(name, args)| *name == syscall && args.contains(&index))
}

fn arg_width(syscall: &str, index: u8) -> SeccompCmpArgLen {
    if is_32bit_arg(syscall, index) {
        SeccompCmpArgLen::Dword
    } else {
        SeccompCmpArgLen::Qword
    }
}

/// Compiles one phase of the profile into a BPF program for the native arch (x86_64 or
/// aarch64). `exec_fd`: when Some(fd), also allow exactly
/// `execveat(fd, _, _, _, AT_EMPTY_PATH)` — the one exec `plugjail exec` needs to start the
/// target from an fd after the filter is installed.
pub fn compile(
    seccomp: &Seccomp,
    phase: SeccompPhase,
    exec_fd: Option<RawFd>,
) -> Result<SeccompProgram, SeccompError> {
    let extras = Extras {
        exec_fd,
        ..Extras::default()
    };
    compile_for(Arch::native(), seccomp, phase, extras)
}

/// What the runner itself needs on top of the profile's rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extras {
    /// Allow exactly `execveat(fd, _, _, _, AT_EMPTY_PATH)`.
    pub exec_fd: Option<RawFd>,
    /// Allow `seccomp(SECCOMP_SET_MODE_FILTER, 0, _)`, so that the stub can stack the serve
    /// filter on the load filter. Harmless: a further filter can only tighten.
    pub allow_stacking: bool,
}

/// [`compile`] with all of [`Extras`].
pub fn compile_with(
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
) -> Result<SeccompProgram, SeccompError> {
    compile_for(Arch::native(), seccomp, phase, extras)
}

/// The shape of the compiled program: seccompiler's linear list, or the binary search
/// built from it (what plugjail installs; the linear form is kept for comparison).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    #[cfg_attr(not(test), allow(dead_code))]
    Linear,
    Search,
}

fn compile_for(
    arch: Arch,
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
) -> Result<SeccompProgram, SeccompError> {
    compile_form(arch, seccomp, phase, extras, Form::Search)
}

fn compile_form(
    arch: Arch,
    seccomp: &Seccomp,
    phase: SeccompPhase,
    extras: Extras,
    form: Form,
) -> Result<SeccompProgram, SeccompError> {
    let rules = match phase {
        SeccompPhase::Load => &seccomp.load,
        SeccompPhase::Serve => &seccomp.serve,
    };
    let (mut map, absent) = rule_map(arch, rules, phase)?;
    if let Some(fd) = extras.exec_fd {
        add_exec_fd_rule(arch, &mut map, fd, phase)?;
    }
    if extras.allow_stacking {
        add_stacking_rule(arch, &mut map, phase)?;
    }
    let allowed = map.len();
    let clone3_allowed =
        sysnames::number(arch, "clone3").filter(|nr| map.contains_key(&i64::from(*nr)));
    let mismatch = match seccomp.default_action {
        Action::KillProcess => SeccompAction::KillProcess,
        Action::Trap => SeccompAction::Trap,
        Action::Errno => SeccompAction::Errno(seccomp.errno.unsigned_abs()),
        Action::Log => SeccompAction::Log,
    };
    let build = |source| SeccompError::Build {
        phase: phase.name(),
        arch,
        source,
    };
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let rules = (form == Form::Search).then(|| map.clone());
    let filter =
        SeccompFilter::new(map, mismatch.clone(), SeccompAction::Allow, target).map_err(build)?;
    let mut bpf: seccompiler::BpfProgram = filter.try_into().map_err(build)?;
    if arch == Arch::X86_64 {
        reject_x32(&mut bpf);
    }
    if let Some(rules) = rules {
        // After the architecture check (3 instructions) and, on x86_64, the x32 check (3),
        // seccompiler loads the syscall number: the search starts there.
        let load_nr = if arch == Arch::X86_64 { 6 } else { 3 };
        if let Some(searched) = search::build(&bpf, load_nr, &rules, &mismatch, target) {
            bpf = searched;
        }
    }
    let traced = (seccomp.default_action == Action::KillProcess)
        .then(|| traced_variant(arch, &bpf, clone3_allowed));
    for program in std::iter::once(&bpf).chain(traced.as_ref()) {
        if program.len() > MAX_INSTRUCTIONS {
            return Err(SeccompError::TooLarge {
                phase: phase.name(),
                len: program.len(),
            });
        }
    }
    Ok(SeccompProgram {
        phase,
        filter: to_libc(&bpf),
        traced: traced.as_deref().map(to_libc),
        absent,
        allowed,
    })
}

fn to_libc(bpf: &[seccompiler::sock_filter]) -> Vec<libc::sock_filter> {
    bpf.iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

type RuleMap = BTreeMap<i64, Vec<SeccompRule>>;

/// The syscall → conditions map seccompiler wants. An empty condition list means "allowed
/// whatever the arguments", so an unconditional rule for a syscall wins over conditional
/// ones, and conditional rules for the same syscall are alternatives (any one may match).
fn rule_map(
    arch: Arch,
    phase_rules: &Phase,
    phase: SeccompPhase,
) -> Result<(RuleMap, Vec<String>), SeccompError> {
    let mut unconditional = BTreeMap::<i64, ()>::new();
    let mut conditional = RuleMap::new();
    let mut absent = Vec::new();
    for rule in &phase_rules.allow {
        let names = expand_names(rule.syscalls.iter().map(String::as_str));
        let resolved = resolve(arch, &names);
        absent.extend(resolved.absent.iter().map(|s| s.to_string()));
        for (name, nr) in resolved.numbers {
            let nr = i64::from(nr);
            if rule.args.is_empty() {
                unconditional.insert(nr, ());
                continue;
            }
            let conditions = rule
                .args
                .iter()
                .map(|c| condition(arch, name, c, phase))
                .collect::<Result<Vec<_>, _>>()?;
            let rule = SeccompRule::new(conditions).map_err(|source| SeccompError::Build {
                phase: phase.name(),
                arch,
                source,
            })?;
            conditional.entry(nr).or_default().push(rule);
        }
    }
    for nr in unconditional.into_keys() {
        conditional.insert(nr, Vec::new());
    }
    absent.sort();
    absent.dedup();
    Ok((conditional, absent))
}

fn condition(
    arch: Arch,
    syscall: &str,
    c: &ArgCondition,
    phase: SeccompPhase,
) -> Result<SeccompCondition, SeccompError> {
    let width = arg_width(syscall, c.index);
    let narrow = |v: u64| -> Result<u64, SeccompError> {
        if width == SeccompCmpArgLen::Qword || v <= u64::from(u32::MAX) {
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
    let value = narrow(c.value)?;
    let op = match c.op {
        CmpOp::Eq => SeccompCmpOp::Eq,
        CmpOp::Ne => SeccompCmpOp::Ne,
        CmpOp::Lt => SeccompCmpOp::Lt,
        CmpOp::Le => SeccompCmpOp::Le,
        CmpOp::Gt => SeccompCmpOp::Gt,
        CmpOp::Ge => SeccompCmpOp::Ge,
        CmpOp::MaskedEq => {
            let mask = c.mask.unwrap_or(u64::MAX);
            let mask = match width {
                SeccompCmpArgLen::Dword => mask & u64::from(u32::MAX),
                SeccompCmpArgLen::Qword => mask,
            };
            SeccompCmpOp::MaskedEq(mask)
        }
    };
    SeccompCondition::new(c.index, width, op, value).map_err(|source| SeccompError::Build {
        phase: phase.name(),
        arch,
        source,
    })
}

/// Allows `execveat(fd, _, _, _, AT_EMPTY_PATH)` and nothing else of execveat, unless the
/// profile already allows execveat without conditions.
fn add_exec_fd_rule(
    arch: Arch,
    map: &mut RuleMap,
    fd: RawFd,
    phase: SeccompPhase,
) -> Result<(), SeccompError> {
    let build = |source| SeccompError::Build {
        phase: phase.name(),
        arch,
        source,
    };
    let fd = u64::try_from(fd).map_err(|_| SeccompError::BadExecFd {
        phase: phase.name(),
        fd,
    })?;
    let Some(nr) = sysnames::number(arch, "execveat") else {
        return Ok(());
    };
    let dword = || SeccompCmpArgLen::Dword;
    let conditions = vec![
        SeccompCondition::new(0, dword(), SeccompCmpOp::Eq, fd).map_err(build)?,
        SeccompCondition::new(4, dword(), SeccompCmpOp::Eq, libc::AT_EMPTY_PATH as u64)
            .map_err(build)?,
    ];
    add_conditional(map, nr, SeccompRule::new(conditions).map_err(build)?);
    Ok(())
}

/// Allows `seccomp(SECCOMP_SET_MODE_FILTER, 0, _)`: one more filter, no flags (no TSYNC, no
/// listener), exactly what [`SeccompProgram::install`] does.
fn add_stacking_rule(
    arch: Arch,
    map: &mut RuleMap,
    phase: SeccompPhase,
) -> Result<(), SeccompError> {
    let build = |source| SeccompError::Build {
        phase: phase.name(),
        arch,
        source,
    };
    let Some(nr) = sysnames::number(arch, "seccomp") else {
        return Ok(());
    };
    let dword = || SeccompCmpArgLen::Dword;
    let mode = u64::from(libc::SECCOMP_SET_MODE_FILTER);
    let conditions = vec![
        SeccompCondition::new(0, dword(), SeccompCmpOp::Eq, mode).map_err(build)?,
        SeccompCondition::new(1, dword(), SeccompCmpOp::Eq, 0).map_err(build)?,
    ];
    add_conditional(map, nr, SeccompRule::new(conditions).map_err(build)?);
    Ok(())
}

/// Adds an alternative rule for `nr`, unless the syscall is already allowed whatever its
/// arguments (an empty rule list).
fn add_conditional(map: &mut RuleMap, nr: u32, rule: SeccompRule) {
    use std::collections::btree_map::Entry;
    match map.entry(i64::from(nr)) {
        Entry::Occupied(mut e) if !e.get().is_empty() => e.get_mut().push(rule),
        Entry::Occupied(_) => {}
        Entry::Vacant(e) => {
            e.insert(vec![rule]);
        }
    }
}

/// Inserts, right after seccompiler's 3-instruction architecture check, a check that kills
/// any syscall number with the x32 bit. Seccompiler's own checks compare numbers exactly, so
/// an x32 number would otherwise meet only the default action, which may be `log`.
fn reject_x32(bpf: &mut seccompiler::BpfProgram) {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    // The layout this relies on; a seccompiler upgrade that changes it must fail loudly.
    assert!(
        bpf.len() >= 3 && bpf[0].code == LD_W_ABS && bpf[0].k == SECCOMP_DATA_ARCH,
        "seccompiler's filter no longer starts with the architecture check"
    );
    let check = [
        sock_filter {
            code: LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0, // offsetof(struct seccomp_data, nr)
        },
        sock_filter {
            code: JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: RET_K,
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_KILL_PROCESS,
        },
    ];
    bpf.splice(3..3, check);
}

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
    /// The serve gate ([`compile_gate`]): the serve phase does not allow the syscall. The
    /// jail's init lets it run while the plugin loads and refuses it once the stub has
    /// switched to serving.
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
}

/// `CLONE_UNTRACED` (linux/sched.h).
const CLONE_UNTRACED: u32 = 0x0080_0000;
/// `offsetof(struct seccomp_data, args[0])`; its low 32 bits on little-endian machines.
const SECCOMP_DATA_ARG0_LO: u32 = 16;

/// The filter for a traced process (`default_action: kill_process` named by the jail's
/// init, see docs/architecture.md): every `RET_KILL_PROCESS` becomes `RET_TRACE` with a
/// [`TraceData`] telling which check refused, and two checks come first so that no process
/// of the jail can leave the tracer: `clone` with `CLONE_UNTRACED` is refused (traced, so
/// it is named and kills), and `clone3`, whose flags sit behind a pointer the filter cannot
/// read, returns ENOSYS when the profile allows it (C libraries then fall back to `clone`,
/// as on kernels before 5.3; where the profile does not allow it, it is refused like any
/// other syscall).
fn traced_variant(
    arch: Arch,
    bpf: &seccompiler::BpfProgram,
    clone3: Option<u32>,
) -> seccompiler::BpfProgram {
    use seccompiler::sock_filter;
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const JSET_K: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let stmt = |code, k| sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code, k, jt, jf| sock_filter { code, jt, jf, k };
    let trace = |data: TraceData| libc::SECCOMP_RET_TRACE | data as u32;
    // Seccompiler's arch check returns at 2; reject_x32's check (x86_64) at 5; then comes
    // seccompiler's load of the syscall number, where the clone checks go.
    let x32_ret = (arch == Arch::X86_64).then_some(5);
    let start = if arch == Arch::X86_64 { 6 } else { 3 };
    let mut out = bpf.clone();
    for (i, ins) in out.iter_mut().enumerate() {
        if ins.code == RET_K && ins.k == libc::SECCOMP_RET_KILL_PROCESS {
            ins.k = trace(match i {
                2 => TraceData::ForeignArch,
                i if Some(i) == x32_ret => TraceData::X32,
                _ => TraceData::NotAllowed,
            });
        }
    }
    assert!(
        out.len() > start && out[start].code == LD_W_ABS && out[start].k == 0,
        "seccompiler's filter no longer loads the syscall number after the arch check"
    );
    let mut checks = vec![stmt(LD_W_ABS, 0)];
    if let Some(nr) = clone3 {
        checks.push(jump(JEQ_K, nr, 0, 1));
        checks.push(stmt(RET_K, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32));
    }
    if let Some(nr) = sysnames::number(arch, "clone") {
        // Both architectures pass the flags first.
        checks.push(jump(JEQ_K, nr, 0, 3));
        checks.push(stmt(LD_W_ABS, SECCOMP_DATA_ARG0_LO));
        checks.push(jump(JSET_K, CLONE_UNTRACED, 0, 1));
        checks.push(stmt(RET_K, trace(TraceData::UntracedClone)));
    }
    out.splice(start..start, checks);
    out
}

impl SeccompProgram {
    /// Installs the filter on the calling thread. Child-safe: no allocation; needs
    /// no_new_privs already set by the caller. Returns the errno on failure.
    pub fn install(&self) -> Result<(), Errno> {
        install(&self.filter)
    }

    /// Installs the traced variant when there is one and `traced` says the calling process
    /// is already traced with `PTRACE_O_TRACESECCOMP` (and its clone options) by a tracer
    /// that kills on every seccomp stop; the plain filter otherwise. Child-safe like
    /// [`install`](Self::install).
    pub fn install_for(&self, traced: bool) -> Result<(), Errno> {
        match &self.traced {
            Some(filter) if traced => install(filter),
            _ => install(&self.filter),
        }
    }

    /// Whether this program has a traced variant (`default_action: kill_process`), i.e.
    /// whether a tracer can name the syscalls it refuses.
    pub fn has_traced_variant(&self) -> bool {
        self.traced.is_some()
    }

    /// The traced variant's instructions (see [`install_for`](Self::install_for)), e.g. for
    /// the in-jail stub to stack a later phase that its tracer names too.
    pub fn bpf_traced(&self) -> Option<&[libc::sock_filter]> {
        self.traced.as_deref()
    }
}

/// Installs `filter` on the calling thread (see [`SeccompProgram::install`]). No flags:
/// the jail's child is single-threaded, so there are no other threads to synchronise.
fn install(filter: &[libc::sock_filter]) -> Result<(), Errno> {
    install_with_flags(filter, 0).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, filter)`, allocation-free. Returns the
/// syscall's non-negative result (with `SECCOMP_FILTER_FLAG_TSYNC`, the id of a thread
/// that could not be synchronised, else 0). `filter` must hold at most 4096 instructions.
pub fn install_with_flags(filter: &[libc::sock_filter], flags: u32) -> Result<libc::c_long, Errno> {
    let prog = libc::sock_fprog {
        len: filter.len() as libc::c_ushort,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel copies the
    // instructions and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}

impl SeccompProgram {
    pub fn instructions(&self) -> usize {
        self.filter.len()
    }

    /// The BPF instructions, e.g. to hand a later phase to the in-jail stub.
    pub fn bpf(&self) -> &[libc::sock_filter] {
        &self.filter
    }

    pub fn phase(&self) -> SeccompPhase {
        self.phase
    }

    /// How many distinct syscalls the filter lets through (some only with conditions).
    pub fn allowed_syscalls(&self) -> usize {
        self.allowed
    }

    /// Names the profile allows that this architecture does not have (legitimately skipped).
    pub fn absent(&self) -> &[String] {
        &self.absent
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::ffi::CString;
    use std::os::fd::AsRawFd;

    use super::*;
    use crate::profile::Rule;

    /// How a forked test child ended.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum Exit {
        Code(i32),
        Signal(i32),
    }

    /// Ends the child if `f` panics, so a failing child never runs the rest of the test
    /// harness in the forked copy of the test process.
    struct ExitOnUnwind;

    impl Drop for ExitOnUnwind {
        fn drop(&mut self) {
            // SAFETY: _exit ends the forked child at once; nothing of it is shared.
            unsafe { libc::_exit(101) }
        }
    }

    /// Forks; the child runs `f` and `_exit`s with its result. `f` must only make raw
    /// syscalls: the test process has other threads, so the child may not allocate.
    pub(crate) fn run_in_child(f: impl FnOnce() -> i32) -> Exit {
        // SAFETY: the child only runs `f` (raw syscalls, no allocation, see above) and then
        // `_exit`s, which is what POSIX allows after fork in a multi-threaded process.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", Errno::last());
        if pid == 0 {
            let guard = ExitOnUnwind;
            let code = f();
            std::mem::forget(guard);
            // SAFETY: ends the child without running the parent's atexit handlers.
            unsafe { libc::_exit(code) }
        }
        let mut status = 0;
        loop {
            // SAFETY: waits for the child forked above; `status` is a valid out pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, 0) };
            if r == pid {
                break;
            }
            assert_eq!(Errno::last(), Errno::EINTR, "waitpid");
        }
        if libc::WIFEXITED(status) {
            Exit::Code(libc::WEXITSTATUS(status))
        } else {
            Exit::Signal(libc::WTERMSIG(status))
        }
    }

    /// Sets no_new_privs in the calling (child) process: required to install a filter or
    /// restrict with Landlock without CAP_SYS_ADMIN.
    pub(crate) fn no_new_privs() -> bool {
        // SAFETY: prctl with integer arguments only; affects the calling process alone.
        unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 }
    }

    /// `errno` of the last failed call in the child, without allocating.
    pub(crate) fn errno() -> i32 {
        Errno::last_raw()
    }

    pub(crate) fn rule(names: &[&str], args: &[ArgCondition]) -> Rule {
        Rule {
            syscalls: names.iter().map(|s| s.to_string()).collect(),
            args: args.to_vec(),
            comment: None,
        }
    }

    pub(crate) fn profile(action: Action, errno: i32, allow: Vec<Rule>) -> Seccomp {
        Seccomp {
            default_action: action,
            errno,
            load: Phase { allow },
            serve: Phase { allow: Vec::new() },
        }
    }

    fn arg(index: u8, op: CmpOp, value: u64) -> ArgCondition {
        ArgCondition {
            index,
            op,
            value,
            mask: None,
        }
    }

    /// The generic ioctl numbers, shared by x86_64 and aarch64.
    const TCGETS: u64 = 0x5401;
    const FIONREAD: u64 = 0x541B;

    /// An errno no syscall in these tests returns by itself, so seeing it proves the filter.
    const FILTER_ERRNO: i32 = libc::ENOTRECOVERABLE;

    fn load(seccomp: &Seccomp, exec_fd: Option<RawFd>) -> SeccompProgram {
        compile(seccomp, SeccompPhase::Load, exec_fd).expect("compile")
    }

    #[test]
    fn kill_process_kills_on_a_forbidden_syscall() {
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["exit_group", "getpid"], &[])],
        );
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // SAFETY: getpid/getppid take no arguments and touch no memory.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 3;
            }
            // SAFETY: as above; the filter kills the process here.
            unsafe { libc::syscall(libc::SYS_getppid) };
            4
        });
        assert_eq!(end, Exit::Signal(libc::SIGSYS));
    }

    #[test]
    fn only_kill_process_has_a_traced_variant_and_it_never_kills() {
        for action in [Action::Trap, Action::Errno, Action::Log] {
            let p = profile(action, libc::EPERM, vec![rule(&["exit_group"], &[])]);
            assert!(!load(&p, None).has_traced_variant(), "{action:?}");
        }
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["exit_group", "clone", "clone3"], &[])],
        );
        for arch in Arch::ALL {
            let prog = compile_for(arch, &p, SeccompPhase::Load, Extras::default()).unwrap();
            let traced = prog.bpf_traced().expect("traced variant");
            let ret = (libc::BPF_RET | libc::BPF_K) as u16;
            let returns: Vec<u32> = traced
                .iter()
                .filter(|i| i.code == ret)
                .map(|i| i.k)
                .collect();
            let trace = |d: TraceData| libc::SECCOMP_RET_TRACE | d as u32;
            assert!(!returns.contains(&libc::SECCOMP_RET_KILL_PROCESS), "{arch}");
            assert!(returns.contains(&trace(TraceData::NotAllowed)), "{arch}");
            assert!(returns.contains(&trace(TraceData::ForeignArch)), "{arch}");
            assert!(returns.contains(&trace(TraceData::UntracedClone)), "{arch}");
            assert!(returns.contains(&(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32)));
            assert_eq!(
                returns.contains(&trace(TraceData::X32)),
                arch == Arch::X86_64,
                "{arch}"
            );
            // The plain filter is untouched: it kills, and never traces.
            assert!(
                prog.bpf().iter().all(|i| i.code != ret
                    || i.k & libc::SECCOMP_RET_ACTION_FULL != libc::SECCOMP_RET_TRACE)
            );
        }
        // clone3 is only turned into ENOSYS where the profile allows it.
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["exit_group"], &[])],
        );
        let prog = load(&p, None);
        let enosys = libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
        assert!(prog.bpf_traced().unwrap().iter().all(|i| i.k != enosys));
    }

    /// Why the traced variant is only installed under a tracer: without one, the kernel
    /// answers `RET_TRACE` with ENOSYS and the program goes on.
    #[test]
    fn traced_variant_without_a_tracer_is_only_enosys() {
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["exit_group", "clone3"], &[])],
        );
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install_for(true).is_err() {
                return 2;
            }
            // SAFETY: getppid takes no arguments.
            if unsafe { libc::syscall(libc::SYS_getppid) } != -1 || errno() != libc::ENOSYS {
                return 3;
            }
            // SAFETY: clone3 with a null pointer never reads memory here: the filter
            // answers before the kernel looks at the arguments.
            let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) };
            if r != -1 || errno() != libc::ENOSYS {
                return 4;
            }
            0
        });
        assert_eq!(end, Exit::Code(0));
        // install_for(false) is the plain kill.
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install_for(false).is_err() {
                return 2;
            }
            // SAFETY: getppid takes no arguments; the filter kills here.
            unsafe { libc::syscall(libc::SYS_getppid) };
            3
        });
        assert_eq!(end, Exit::Signal(libc::SIGSYS));
    }

    #[test]
    fn errno_action_returns_the_profile_errno() {
        let p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![rule(&["exit_group"], &[])],
        );
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // SAFETY: getppid takes no arguments.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            if r == -1 && errno() == FILTER_ERRNO {
                0
            } else {
                3
            }
        });
        assert_eq!(end, Exit::Code(0));
    }

    #[test]
    fn log_action_lets_the_syscall_through() {
        let p = profile(Action::Log, libc::EPERM, vec![rule(&["exit_group"], &[])]);
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // SAFETY: getppid takes no arguments.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            if r > 0 { 0 } else { 3 }
        });
        assert_eq!(end, Exit::Code(0));
    }

    /// ioctl on a pipe: the kernel answers TCGETS with ENOTTY (the filter let it through),
    /// FIONREAD with a byte count; the filter answers with FILTER_ERRNO.
    fn ioctl(fd: RawFd, request: u64) -> Result<(), i32> {
        let mut buf = [0u8; 256];
        // SAFETY: `buf` is larger than both `struct termios` and `int`, the only things
        // these requests write.
        let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, request, buf.as_mut_ptr()) };
        if r == 0 { Ok(()) } else { Err(errno()) }
    }

    #[test]
    fn arg_condition_allows_tcgets_only() {
        let tcgets = TCGETS;
        let p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![
                rule(&["exit_group"], &[]),
                rule(&["ioctl"], &[arg(1, CmpOp::Eq, tcgets)]),
            ],
        );
        let prog = load(&p, None);
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        let fd = r.as_raw_fd();
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            if ioctl(fd, tcgets) != Err(libc::ENOTTY) {
                return 3;
            }
            if ioctl(fd, FIONREAD) != Err(FILTER_ERRNO) {
                return 4;
            }
            // The kernel reads `cmd` as 32 bits: garbage above them is still TCGETS to it,
            // and the filter compares the same 32 bits.
            if ioctl(fd, tcgets | 1 << 32) != Err(libc::ENOTTY) {
                return 5;
            }
            0
        });
        assert_eq!(end, Exit::Code(0));
    }

    #[test]
    fn ne_condition_cannot_be_bypassed_with_the_upper_half() {
        let fionread = FIONREAD;
        let p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![
                rule(&["exit_group"], &[]),
                rule(&["ioctl"], &[arg(1, CmpOp::Ne, fionread)]),
            ],
        );
        let prog = load(&p, None);
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        let fd = r.as_raw_fd();
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // A 64-bit comparison would see "not FIONREAD" here while the kernel ran
            // FIONREAD (and succeeded on the pipe).
            if ioctl(fd, fionread | 1 << 32) != Err(FILTER_ERRNO) {
                return 3;
            }
            if ioctl(fd, TCGETS) != Err(libc::ENOTTY) {
                return 4;
            }
            0
        });
        assert_eq!(end, Exit::Code(0));
    }

    /// What `execveat` needs, prepared before fork.
    struct ExecArgs {
        _strings: Vec<CString>,
        argv: Vec<*const libc::c_char>,
        envp: [*const libc::c_char; 1],
        empty: CString,
    }

    impl ExecArgs {
        fn new(argv0: &str) -> ExecArgs {
            let strings = vec![CString::new(argv0).expect("argv0")];
            let argv = vec![strings[0].as_ptr(), std::ptr::null()];
            ExecArgs {
                _strings: strings,
                argv,
                envp: [std::ptr::null()],
                empty: CString::default(),
            }
        }

        /// Returns the errno; on success the process image is gone.
        pub(crate) fn execveat(&self, fd: RawFd, flags: libc::c_int) -> i32 {
            // SAFETY: every pointer refers to NUL-terminated strings / NULL-terminated
            // arrays owned by `self`, alive for the call.
            unsafe {
                libc::syscall(
                    libc::SYS_execveat,
                    fd,
                    self.empty.as_ptr(),
                    self.argv.as_ptr(),
                    self.envp.as_ptr(),
                    flags,
                )
            };
            errno()
        }
    }

    pub(crate) fn true_binary() -> Option<std::path::PathBuf> {
        ["/usr/bin/true", "/bin/true"]
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
    }

    #[test]
    fn exec_fd_rule_allows_execveat_of_that_fd_only() {
        let Some(bin) = true_binary() else {
            panic!("no /usr/bin/true to exec");
        };
        let target = std::fs::File::open(&bin).expect("open true");
        let other = std::fs::File::open(&bin).expect("open true again");
        let (fd, other_fd) = (target.as_raw_fd(), other.as_raw_fd());
        // What the dynamic loader and `true` itself need once exec'd under the filter.
        let base = rule(
            &[
                "@basic-io",
                "@memory",
                "@file-read",
                "@process-info",
                "@signals",
                "@threads",
                "@time",
            ],
            &[],
        );
        let p = profile(Action::Errno, FILTER_ERRNO, vec![base]);
        let prog = load(&p, Some(fd));
        let args = ExecArgs::new("true");
        let path = CString::new(bin.as_os_str().as_encoded_bytes()).expect("path");
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            if args.execveat(other_fd, libc::AT_EMPTY_PATH) != FILTER_ERRNO {
                return 3;
            }
            let nofollow = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
            if args.execveat(fd, nofollow) != FILTER_ERRNO {
                return 4;
            }
            // SAFETY: NUL-terminated path and NULL-terminated argv/envp owned by the parent
            // frame, alive for the call.
            unsafe { libc::execve(path.as_ptr(), args.argv.as_ptr(), args.envp.as_ptr()) };
            if errno() != FILTER_ERRNO {
                return 5;
            }
            args.execveat(fd, libc::AT_EMPTY_PATH);
            6
        });
        // `true` ran under the filter and exited 0.
        assert_eq!(end, Exit::Code(0));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x32_syscalls_are_killed_even_when_the_default_is_errno() {
        let p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![rule(&["exit_group", "getpid"], &[])],
        );
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // SAFETY: x32 getpid takes no arguments; the filter kills before it runs.
            unsafe { libc::syscall(libc::SYS_getpid | X32_SYSCALL_BIT as libc::c_long) };
            3
        });
        assert_eq!(end, Exit::Signal(libc::SIGSYS));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn i386_syscalls_are_killed_by_the_arch_check() {
        let p = profile(Action::Log, libc::EPERM, vec![rule(&["exit_group"], &[])]);
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            let mut nr: u32 = 20; // getpid in the i386 table
            // SAFETY: `int 0x80` enters the kernel's i386 syscall path with getpid, which
            // takes no arguments; the filter kills the process before it runs.
            unsafe { std::arch::asm!("int 0x80", inout("eax") nr, options(nostack)) };
            let _ = nr;
            3
        });
        match end {
            Exit::Signal(libc::SIGSYS) => {}
            // The kernel was booted without ia32 emulation: no i386 syscalls to filter.
            Exit::Signal(libc::SIGSEGV) => eprintln!("skip: ia32 emulation is off"),
            other => panic!("i386 getpid was not killed: {other:?}"),
        }
    }

    #[test]
    fn unconditional_rule_wins_and_absent_names_are_listed() {
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![
                rule(&["ioctl"], &[arg(1, CmpOp::Eq, 0x5401)]),
                rule(&["ioctl", "open", "exit_group"], &[]),
            ],
        );
        // The linear form, whose layout the counts below describe.
        let linear = |arch| {
            compile_form(
                arch,
                &p,
                SeccompPhase::Load,
                Extras::default(),
                Form::Linear,
            )
            .expect("compiles")
        };
        let (x86, arm) = (linear(Arch::X86_64), linear(Arch::Aarch64));
        assert_eq!(x86.allowed_syscalls(), 3);
        assert!(x86.absent().is_empty());
        assert_eq!(arm.allowed_syscalls(), 2);
        assert_eq!(arm.absent(), ["open"]);
        // The conditional ioctl rule was folded into the unconditional one: 3 arch checks,
        // 3 x32 checks, 1 load, 5 per unconditional syscall, 1 default.
        assert_eq!(x86.instructions(), 3 + 3 + 1 + 3 * 5 + 1);
        assert_eq!(arm.instructions(), 3 + 1 + 2 * 5 + 1);
        // The search form: the same checks and load, then one return per interval and one
        // comparison per boundary. On aarch64 ioctl is 29 and exit_group 94: refused
        // below 29, 29 allowed, refused to 93, 94 allowed, refused above: 5 intervals.
        let search =
            compile_for(Arch::Aarch64, &p, SeccompPhase::Load, Extras::default()).expect("aarch64");
        assert_eq!(search.instructions(), 3 + 1 + 4 + 5);
    }

    /// The search form allows, refuses and traces exactly what the linear form does: every
    /// syscall number up to past the highest one, with argument values that meet and miss
    /// every condition, for every shipped profile, both phases, with the runner's extras.
    #[test]
    fn search_form_decides_exactly_as_the_linear_form() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let audit_x86_64 = 0xC000_003E;
        let max = sysnames::number(Arch::X86_64, "clone3").unwrap_or(435) + 64;
        let mut checked = 0;
        for entry in std::fs::read_dir(&dir).expect("profiles/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            for phase in [SeccompPhase::Load, SeccompPhase::Serve] {
                let extras = Extras {
                    exec_fd: Some(3),
                    allow_stacking: true,
                };
                let form = |f| compile_form(Arch::X86_64, &p.seccomp, phase, extras, f).unwrap();
                let (linear, search) = (form(Form::Linear), form(Form::Search));
                assert!(
                    search.instructions() < linear.instructions(),
                    "{}: {} vs {}",
                    path.display(),
                    search.instructions(),
                    linear.instructions()
                );
                eprintln!(
                    "{} {phase:?}: {} instructions linear, {} search",
                    path.display(),
                    linear.instructions(),
                    search.instructions()
                );
                // Argument vectors: nothing, everything, and every constant either program
                // compares with, alone and with the upper half set.
                let mut values: Vec<u64> = vec![0, u64::MAX, 3];
                for ins in linear.bpf() {
                    let k = u64::from(ins.k);
                    values.extend([k, k | 0xffff_ffff_0000_0000, k.wrapping_add(1)]);
                }
                values.sort();
                values.dedup();
                let pairs = [
                    (linear.bpf(), search.bpf()),
                    (
                        linear.bpf_traced().unwrap_or_default(),
                        search.bpf_traced().unwrap_or_default(),
                    ),
                ];
                for (a, b) in pairs.iter().filter(|(a, _)| !a.is_empty()) {
                    let (a, b) = (to_seccompiler(a), to_seccompiler(b));
                    let numbers = (0..=max).chain([X32_SYSCALL_BIT, X32_SYSCALL_BIT | 1, u32::MAX]);
                    for nr in numbers {
                        for &v in &values {
                            let args = [v; 6];
                            let (x, y) = (
                                search::tests::run(&a, nr, audit_x86_64, &args),
                                search::tests::run(&b, nr, audit_x86_64, &args),
                            );
                            assert_eq!(x, y, "{} {phase:?}: nr {nr}, args {v:#x}", path.display());
                        }
                        // Another architecture's number space is refused before either.
                        let args = [0; 6];
                        assert_eq!(
                            search::tests::run(&a, nr, 0x4000_0003, &args),
                            search::tests::run(&b, nr, 0x4000_0003, &args)
                        );
                    }
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 8,
            "expected the four shipped profiles in {}",
            dir.display()
        );
    }

    fn to_seccompiler(prog: &[libc::sock_filter]) -> Vec<seccompiler::sock_filter> {
        prog.iter()
            .map(|i| seccompiler::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect()
    }

    #[test]
    fn wide_value_on_a_32_bit_argument_is_an_error() {
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["ioctl"], &[arg(1, CmpOp::Eq, 1 << 40)])],
        );
        let err = compile(&p, SeccompPhase::Load, None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("seccomp load phase: argument 1 of ioctl is a 32-bit value"),
            "{err}"
        );
        // Sign-extended negative ints are fine (AT_FDCWD).
        let p = profile(
            Action::KillProcess,
            libc::EPERM,
            vec![rule(&["openat"], &[arg(0, CmpOp::Eq, -100i64 as u64)])],
        );
        compile(&p, SeccompPhase::Load, None).expect("AT_FDCWD");
        let err = compile(&p, SeccompPhase::Serve, Some(-1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "seccomp serve phase: exec fd -1 is not a file descriptor number"
        );
    }

    #[test]
    fn serve_filter_stacks_on_load_and_only_tightens() {
        let mut p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![rule(&["exit_group", "getppid"], &[])],
        );
        p.serve.allow = vec![rule(&["exit_group", "getpid"], &[])];
        let without = load(&p, None);
        // Installing the second filter is itself a syscall the first must allow.
        let extras = Extras {
            allow_stacking: true,
            ..Extras::default()
        };
        let load_prog = compile_with(&p, SeccompPhase::Load, extras).expect("load");
        let serve = compile(&p, SeccompPhase::Serve, None).expect("serve");
        let end = run_in_child(|| {
            if !no_new_privs() || load_prog.install().is_err() || serve.install().is_err() {
                return 2;
            }
            // SAFETY: getppid/getpid take no arguments.
            if unsafe { libc::syscall(libc::SYS_getppid) } != -1 || errno() != FILTER_ERRNO {
                return 3;
            }
            // Allowed by serve but never by load: the stricter filter wins.
            // SAFETY: as above.
            if unsafe { libc::syscall(libc::SYS_getpid) } != -1 || errno() != FILTER_ERRNO {
                return 4;
            }
            0
        });
        assert_eq!(end, Exit::Code(0));
        let end = run_in_child(|| {
            if !no_new_privs() || without.install().is_err() {
                return 2;
            }
            match serve.install() {
                Err(e) if e as i32 == FILTER_ERRNO => 0,
                _ => 3,
            }
        });
        assert_eq!(end, Exit::Code(0), "stacking without allow_stacking");
    }

    #[test]
    fn shipped_profiles_compile_for_both_arches() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).expect("profiles/") {
            let path = entry.expect("entry").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            for arch in Arch::ALL {
                for phase in [SeccompPhase::Load, SeccompPhase::Serve] {
                    let extras = Extras {
                        exec_fd: Some(3),
                        allow_stacking: true,
                    };
                    let prog = compile_for(arch, &p.seccomp, phase, extras)
                        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(prog.instructions() > 10, "{}", path.display());
                }
            }
            seen += 1;
        }
        assert!(
            seen >= 4,
            "expected the four shipped profiles in {}",
            dir.display()
        );
    }
}
