//! Concern: the reference forms the differential test holds plugjail's programs against —
//! seccompiler's linear allowlist of the same rules, with the x32 check, the traced
//! variant's clone checks and the serve gate's prologue put in front of it and its answers
//! rewritten the way plugjail did before it emitted its own BPF: by instruction position,
//! checked against seccompiler's layout. A seccompiler release that changes that layout
//! fails this test, never a run.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::profile::{Action, Seccomp};
use crate::seccomp::bpf::{
    CLONE_UNTRACED, DATA_ARCH, Insn, JEQ_K, JGE_K, JSET_K, LD_W_ABS, RET_ACTION_FULL, RET_ALLOW,
    RET_DATA, RET_ERRNO, RET_KILL_PROCESS, RET_LOG, RET_TRACE, RET_TRAP, X32_SYSCALL_BIT, arg_low,
    stmt,
};
use crate::seccomp::rules::{Cond, Op, RuleMap, Width, rule_map};
use crate::seccomp::{SeccompPhase, TraceData};
use crate::sysnames::{self, Arch};

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

fn trace(data: TraceData) -> u32 {
    RET_TRACE | data as u32
}

fn condition(c: &Cond) -> SeccompCondition {
    let width = match c.width {
        Width::Low32 => SeccompCmpArgLen::Dword,
        Width::Full64 => SeccompCmpArgLen::Qword,
    };
    let op = match c.op {
        Op::Eq => SeccompCmpOp::Eq,
        Op::Ne => SeccompCmpOp::Ne,
        Op::Lt => SeccompCmpOp::Lt,
        Op::Le => SeccompCmpOp::Le,
        Op::Gt => SeccompCmpOp::Gt,
        Op::Ge => SeccompCmpOp::Ge,
        Op::MaskedEq(mask) => SeccompCmpOp::MaskedEq(mask),
    };
    SeccompCondition::new(c.index, width, op, c.value).expect("argument index 0..=5")
}

fn action(ret: u32) -> SeccompAction {
    match ret & RET_ACTION_FULL {
        RET_KILL_PROCESS => SeccompAction::KillProcess,
        RET_TRAP => SeccompAction::Trap,
        RET_ERRNO => SeccompAction::Errno(ret & RET_DATA),
        RET_LOG => SeccompAction::Log,
        other => panic!("no default action returns {other:#x}"),
    }
}

/// seccompiler's program for `rules`, refusing with `mismatch`, and on x86_64 the x32
/// check (killing) right after its 3-instruction architecture check.
pub(crate) fn linear(arch: Arch, rules: &RuleMap, mismatch: u32) -> Vec<Insn> {
    let map: BTreeMap<i64, Vec<SeccompRule>> = rules
        .iter()
        .map(|(&nr, alternatives)| {
            let rules = alternatives
                .iter()
                .map(|conds| SeccompRule::new(conds.iter().map(condition).collect()).unwrap())
                .collect();
            (i64::from(nr), rules)
        })
        .collect();
    let target = match arch {
        Arch::X86_64 => TargetArch::x86_64,
        Arch::Aarch64 => TargetArch::aarch64,
    };
    let filter = SeccompFilter::new(map, action(mismatch), SeccompAction::Allow, target).unwrap();
    let bpf: BpfProgram = filter.try_into().expect("seccompiler builds the filter");
    let mut out: Vec<Insn> = bpf
        .iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect();
    assert!(
        out.len() > 3 && out[0].code == LD_W_ABS && out[0].k == DATA_ARCH,
        "seccompiler's filter no longer starts with the architecture check"
    );
    if arch == Arch::X86_64 {
        let check = [
            stmt(LD_W_ABS, 0),
            jump(JGE_K, X32_SYSCALL_BIT, 0, 1),
            stmt(crate::seccomp::bpf::RET_K, RET_KILL_PROCESS),
        ];
        out.splice(3..3, check);
    }
    out
}

/// Where seccompiler's load of the syscall number is, after the checks in front of it.
fn load_nr_at(arch: Arch, prog: &[Insn]) -> usize {
    let start = if arch == Arch::X86_64 { 6 } else { 3 };
    assert!(
        prog.len() > start && prog[start].code == LD_W_ABS && prog[start].k == 0,
        "seccompiler's filter no longer loads the syscall number after the arch check"
    );
    start
}

/// The traced variant of [`linear`] under `kill_process`: every kill a trace naming its
/// check (by position: the arch check's at 2, the x32 check's at 5), and the clone checks
/// in front of seccompiler's load of the number.
pub(crate) fn traced(arch: Arch, rules: &RuleMap) -> Vec<Insn> {
    let ret = crate::seccomp::bpf::RET_K;
    let mut out = linear(arch, rules, RET_KILL_PROCESS);
    let x32_ret = (arch == Arch::X86_64).then_some(5);
    for (i, ins) in out.iter_mut().enumerate() {
        if ins.code == ret && ins.k == RET_KILL_PROCESS {
            ins.k = trace(match i {
                2 => TraceData::ForeignArch,
                i if Some(i) == x32_ret => TraceData::X32,
                _ => TraceData::NotAllowed,
            });
        }
    }
    let start = load_nr_at(arch, &out);
    let mut checks = vec![stmt(LD_W_ABS, 0)];
    if let Some(nr) = sysnames::number(arch, "clone3").filter(|nr| rules.contains_key(nr)) {
        checks.push(jump(JEQ_K, nr, 0, 1));
        checks.push(stmt(ret, RET_ERRNO | libc::ENOSYS as u32));
    }
    if let Some(nr) = sysnames::number(arch, "clone") {
        checks.push(jump(JEQ_K, nr, 0, 3));
        checks.push(stmt(LD_W_ABS, arg_low(0)));
        checks.push(jump(JSET_K, CLONE_UNTRACED, 0, 1));
        checks.push(stmt(ret, trace(TraceData::UntracedClone)));
    }
    out.splice(start..start, checks);
    out
}

/// The serve gate: the traced serve filter (kill_process) with its answers changed, and
/// the switch and the load phase's clone3 in front.
pub(crate) fn gate(arch: Arch, seccomp: &Seccomp, switch_fd: u32) -> Vec<Insn> {
    let ret = crate::seccomp::bpf::RET_K;
    let serve = Seccomp {
        default_action: Action::KillProcess,
        ..seccomp.clone()
    };
    let (rules, _) = rule_map(arch, &serve.serve, SeccompPhase::Serve).unwrap();
    let mut out = traced(arch, &rules);
    for ins in out.iter_mut().filter(|i| i.code == ret) {
        ins.k = match TraceData::from_u32(ins.k & RET_DATA) {
            _ if ins.k & RET_ACTION_FULL != RET_TRACE => ins.k,
            Some(TraceData::NotAllowed) => trace(TraceData::Gate),
            Some(TraceData::ForeignArch | TraceData::X32) => RET_ALLOW,
            _ => ins.k,
        };
    }
    let (load, _) = rule_map(arch, &seccomp.load, SeccompPhase::Load).unwrap();
    let recvmsg = sysnames::number(arch, "recvmsg").unwrap();
    let mut prologue = vec![
        stmt(LD_W_ABS, 0),
        jump(JEQ_K, recvmsg, 0, 3),
        stmt(LD_W_ABS, arg_low(0)),
        jump(JEQ_K, switch_fd, 0, 1),
        stmt(ret, trace(TraceData::Switch)),
    ];
    if let Some(nr) = sysnames::number(arch, "clone3").filter(|nr| load.contains_key(nr)) {
        prologue.push(stmt(LD_W_ABS, 0));
        prologue.push(jump(JEQ_K, nr, 0, 1));
        prologue.push(stmt(ret, RET_ERRNO | libc::ENOSYS as u32));
    }
    let start = load_nr_at(arch, &out);
    out.splice(start..start, prologue);
    out
}
