//! Concern: the differential test — every program plugjail compiles (plain, traced, serve
//! gate; both architectures; shipped profiles and synthetic ones using every operator)
//! answers exactly as the reference forms ([`reference`](super::reference)) for every
//! syscall number up to past the highest one, other tables, x32 numbers, and argument
//! vectors that meet and miss every condition with a different value in each argument.

use std::collections::BTreeSet;

use super::interp::{check, run};
use super::reference;
use super::{arg_mask, profile, rule};
use crate::profile::{Action, CmpOp, Seccomp};
use crate::seccomp::bpf::{
    AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, CLONE_UNTRACED, Insn,
    X32_SYSCALL_BIT, audit_arch,
};
use crate::seccomp::gate::compile_gate_for;
use crate::seccomp::rules::{Cond, Op, RuleMap};
use crate::seccomp::{Extras, SeccompPhase, compile_for, default_action, phase_rules};
use crate::sysnames::{self, Arch};

/// The switch descriptor the gates here are compiled for.
const SWITCH_FD: u32 = 6;

/// A value per argument that no condition here compares with, each different.
fn background(index: usize) -> u64 {
    0x5a00_0000_0000_0a5a ^ (0x0101_0101_0101_0101 * (index as u64 + 1))
}

/// Values around `c`'s that meet and miss it: equal, one off, the other half changed.
fn around(c: &Cond) -> Vec<u64> {
    let v = c.value;
    let mut out = vec![
        v,
        v.wrapping_add(1),
        v.wrapping_sub(1),
        v ^ 1 << 32,
        v.wrapping_add(1 << 32),
        v.wrapping_sub(1 << 32),
        v & 0xffff_ffff,
        v | 0xffff_ffff_0000_0000,
        v ^ 0x8000_0000,
    ];
    if let Op::MaskedEq(mask) = c.op {
        out.extend([v | !mask, mask, !mask]);
        if mask != 0 {
            out.extend([
                v ^ (mask & mask.wrapping_neg()),
                v ^ (1 << (63 - mask.leading_zeros())),
            ]);
        }
    }
    out
}

/// Argument vectors for syscall `nr`: the product over the arguments its conditions read
/// (each with the values around every condition on it, 0, all ones and its background),
/// every other argument at its own background; then every value anywhere in `values` in
/// all six arguments at once.
fn vectors(rules: &RuleMap, nr: u32, special: &[(u8, u64)], values: &[u64]) -> Vec<[u64; 6]> {
    let mut per_arg: Vec<BTreeSet<u64>> = (0..6).map(|i| BTreeSet::from([background(i)])).collect();
    let conds = rules.get(&nr).into_iter().flatten().flatten();
    let mut read = BTreeSet::new();
    for c in conds {
        per_arg[usize::from(c.index)].extend(around(c));
        read.insert(usize::from(c.index));
    }
    for &(index, v) in special {
        let c = Cond {
            index,
            width: crate::seccomp::rules::Width::Full64,
            op: Op::Eq,
            value: v,
        };
        per_arg[usize::from(index)].extend(around(&c));
        read.insert(usize::from(index));
    }
    for &i in &read {
        per_arg[i].extend([0, u64::MAX]);
    }
    let mut out = vec![std::array::from_fn(background)];
    for &i in &read {
        out = out
            .iter()
            .flat_map(|base| {
                per_arg[i].iter().map(move |&v| {
                    let mut args = *base;
                    args[i] = v;
                    args
                })
            })
            .collect();
    }
    assert!(
        out.len() <= 100_000,
        "nr {nr}: {} argument vectors",
        out.len()
    );
    out.push([0; 6]);
    out.push([u64::MAX; 6]);
    if !read.is_empty() {
        out.extend(values.iter().map(|&v| [v; 6]));
    }
    out
}

/// Requires `ours` and `theirs` to answer alike for every probe (see the module docs).
fn agree(what: &str, arch: Arch, rules: &RuleMap, ours: &[Insn], theirs: &[Insn]) -> usize {
    check(ours).unwrap_or_else(|e| panic!("{what}: the kernel would refuse ours: {e}"));
    check(theirs).unwrap_or_else(|e| panic!("{what}: the kernel would refuse the reference: {e}"));
    let special_nr = |name| sysnames::number(arch, name);
    let mut special: Vec<(u32, (u8, u64))> = Vec::new();
    special.extend(special_nr("recvmsg").map(|nr| (nr, (0, u64::from(SWITCH_FD)))));
    // clone's flags with and without CLONE_UNTRACED (0x11: SIGCHLD, as fork passes it).
    for flags in [CLONE_UNTRACED | 0x11, 0x11] {
        special.extend(special_nr("clone").map(|nr| (nr, (0, u64::from(flags)))));
    }
    let highest = rules.keys().chain(special.iter().map(|(nr, _)| nr)).max();
    let last = highest
        .copied()
        .unwrap_or(0)
        .max(special_nr("clone3").unwrap_or(0))
        + 64;
    let mut values: Vec<u64> = rules
        .values()
        .flatten()
        .flatten()
        .flat_map(|c| {
            [
                c.value,
                c.value | 0xffff_ffff_0000_0000,
                c.value.wrapping_add(1),
            ]
        })
        .collect();
    values.sort();
    values.dedup();
    let native = audit_arch(arch);
    let mut probes = 0;
    let numbers = (0..=last).chain([X32_SYSCALL_BIT, X32_SYSCALL_BIT | 1, 0x8000_0000, u32::MAX]);
    for nr in numbers {
        let mine: Vec<(u8, u64)> = special
            .iter()
            .filter(|(n, _)| *n == nr)
            .map(|(_, s)| *s)
            .collect();
        for args in vectors(rules, nr, &mine, &values) {
            let (a, b) = (run(ours, nr, native, &args), run(theirs, nr, native, &args));
            assert_eq!(a, b, "{what}: nr {nr}, args {args:#x?}");
            probes += 1;
        }
        // Another architecture's tables are answered before any number is looked at.
        for other in [
            AUDIT_ARCH_X86_64,
            AUDIT_ARCH_AARCH64,
            AUDIT_ARCH_I386,
            AUDIT_ARCH_ARM,
        ] {
            if other != native {
                let args = std::array::from_fn(background);
                let (a, b) = (run(ours, nr, other, &args), run(theirs, nr, other, &args));
                assert_eq!(a, b, "{what}: nr {nr} of arch {other:#x}");
                probes += 1;
            }
        }
    }
    probes
}

/// Profiles that use every operator on 32- and 64-bit arguments, several alternatives and
/// arguments per syscall, clone, clone3 and recvmsg, under every default action.
fn synthetic() -> Vec<(String, Seccomp)> {
    let a = |index, op, value| arg_mask(index, op, value, None);
    let m = |index, value, mask| arg_mask(index, CmpOp::MaskedEq, value, Some(mask));
    let at_fdcwd = (-100i64).cast_unsigned();
    let load = vec![
        rule(
            &["exit_group", "read", "write", "clone", "clone3", "futex"],
            &[],
        ),
        rule(&["ioctl"], &[a(1, CmpOp::Eq, 0x5401)]),
        rule(&["ioctl"], &[a(1, CmpOp::Ne, 0x541B), a(0, CmpOp::Lt, 10)]),
        rule(&["fcntl"], &[a(1, CmpOp::Ge, 4), a(1, CmpOp::Le, 1030)]),
        rule(&["fcntl"], &[a(0, CmpOp::Gt, 0xffff_fff0)]),
        rule(&["openat"], &[a(0, CmpOp::Eq, at_fdcwd), m(2, 0, 3)]),
        rule(&["openat"], &[m(2, 0x80000, 0xffff_ffff_0008_0000)]),
        rule(
            &["mmap"],
            &[
                a(2, CmpOp::Lt, 0x1_0000_0004),
                a(3, CmpOp::Gt, 0x2_0000_0001),
            ],
        ),
        rule(&["mmap"], &[a(5, CmpOp::Eq, 0x1234_5678_9abc_def0)]),
        rule(&["mprotect"], &[a(2, CmpOp::Le, 0x1_0000_0000)]),
        rule(
            &["mprotect"],
            &[
                a(1, CmpOp::Ge, 0x3_0000_0000),
                a(0, CmpOp::Ne, 0x7_0000_0007),
            ],
        ),
        rule(&["munmap"], &[m(4, 0x10_0000_0010, u64::MAX)]),
        rule(
            &["setsockopt"],
            &[a(4, CmpOp::Eq, 4), a(3, CmpOp::Ne, 0), a(2, CmpOp::Gt, 7)],
        ),
        rule(&["kill"], &[m(1, 9, 0xf)]),
        rule(&["prctl"], &[a(0, CmpOp::Eq, 15)]),
        rule(&["getpid"], &[a(5, CmpOp::Ne, 5)]),
        rule(&["getpid"], &[a(4, CmpOp::Eq, 4)]),
        rule(&["recvmsg"], &[a(0, CmpOp::Eq, 6)]),
    ];
    let serve = vec![
        load[1].clone(),
        load[7].clone(),
        rule(&["exit_group", "read", "clone"], &[]),
        rule(&["recvmsg"], &[a(2, CmpOp::Eq, 0)]),
    ];
    let mut out = Vec::new();
    for action in [
        Action::KillProcess,
        Action::Errno,
        Action::Trap,
        Action::Log,
    ] {
        let mut p = profile(action, libc::EACCES, load.clone());
        p.serve.allow = serve.clone();
        out.push((format!("synthetic {action:?}"), p));
    }
    // clone3 allowed only in the serve phase; a serve phase allowing nothing.
    let mut p = profile(
        Action::KillProcess,
        1,
        vec![rule(&["exit_group", "clone"], &[])],
    );
    p.serve.allow = vec![rule(&["exit_group", "clone3"], &[])];
    out.push(("clone3 in serve only".to_owned(), p.clone()));
    p.serve.allow = Vec::new();
    out.push(("empty serve".to_owned(), p));
    out
}

fn shipped() -> Vec<(String, Seccomp)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("profiles/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
            out.push((path.display().to_string(), p.seccomp));
        }
    }
    assert!(
        out.len() >= 4,
        "expected the four shipped profiles in {}",
        dir.display()
    );
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The search form allows, refuses and traces exactly what the linear form does, and
/// the gate answers as the gate spliced into seccompiler's program did.
#[test]
fn programs_decide_exactly_as_the_reference_forms() {
    let mut probes = 0;
    let mut checked = 0;
    let (shipped, synthetic) = (shipped(), synthetic());
    let all = shipped
        .iter()
        .map(|c| (c, true))
        .chain(synthetic.iter().map(|c| (c, false)));
    for ((name, p), is_shipped) in all {
        for arch in Arch::ALL {
            for phase in [SeccompPhase::Load, SeccompPhase::Serve] {
                let stacked = Extras {
                    exec_fd: Some(3),
                    allow_stacking: true,
                };
                for extras in [Extras::default(), stacked] {
                    let what = format!("{name} {arch} {phase:?} {extras:?}");
                    let (rules, _) = phase_rules(arch, p, phase, extras).unwrap();
                    if rules.is_empty() {
                        continue;
                    }
                    let ours = compile_for(arch, p, phase, extras).unwrap();
                    let linear = reference::linear(arch, &rules, default_action(p));
                    if is_shipped && arch == Arch::X86_64 && extras.allow_stacking {
                        assert!(
                            ours.instructions() < linear.len(),
                            "{what}: {} vs {}",
                            ours.instructions(),
                            linear.len()
                        );
                        eprintln!(
                            "{what}: {} instructions linear, {} search",
                            linear.len(),
                            ours.instructions()
                        );
                        checked += 1;
                    }
                    probes += agree(&what, arch, &rules, ours.bpf(), &linear);
                    assert_eq!(
                        ours.has_traced_variant(),
                        p.default_action == Action::KillProcess
                    );
                    if let Some(traced) = ours.bpf_traced() {
                        let theirs = reference::traced(arch, &rules);
                        probes += agree(&format!("{what} traced"), arch, &rules, traced, &theirs);
                    }
                }
            }
            let (serve, _) = phase_rules(arch, p, SeccompPhase::Serve, Extras::default()).unwrap();
            let gate = compile_gate_for(arch, p, SWITCH_FD as i32).unwrap();
            if serve.is_empty() {
                // The reference cannot splice into a program without a number to load.
                assert!(check(gate.bpf()).is_ok(), "{name} {arch} gate");
                continue;
            }
            let theirs = reference::gate(arch, p, SWITCH_FD);
            probes += agree(
                &format!("{name} {arch} gate"),
                arch,
                &serve,
                gate.bpf(),
                &theirs,
            );
        }
    }
    assert!(
        checked >= 8,
        "expected both phases of four shipped profiles"
    );
    eprintln!("{probes} probes");
}
