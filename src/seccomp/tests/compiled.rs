//! Concern: what compiling produces, without running it — which programs a profile gets,
//! their size, the answers they contain, the errors, and that the kernel takes them all.

use super::super::bpf::{self, RET_ALLOW, RET_K, X32_SYSCALL_BIT};
use super::super::*;
use super::{Exit, arg, interp, load, no_new_privs, profile, reference, rule, run_in_child};
use crate::profile::CmpOp;
use crate::sysnames;

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
        let ret = RET_K;
        let returns: Vec<u32> = traced
            .iter()
            .filter(|i| i.code == ret)
            .map(|i| i.k)
            .collect();
        let trace = TraceData::ret;
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
        assert!(prog.bpf().iter().all(
            |i| i.code != ret || i.k & libc::SECCOMP_RET_ACTION_FULL != libc::SECCOMP_RET_TRACE
        ));
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
    let search = |arch| compile_for(arch, &p, SeccompPhase::Load, Extras::default()).unwrap();
    let (x86, arm) = (search(Arch::X86_64), search(Arch::Aarch64));
    assert_eq!(x86.allowed_syscalls(), 3);
    assert!(x86.absent().is_empty());
    assert_eq!(arm.allowed_syscalls(), 2);
    assert_eq!(arm.absent(), ["open"]);
    // The linear form (seccompiler's, the reference), whose layout the counts below
    // describe.
    let linear = |arch| {
        let (rules, _) = phase_rules(arch, &p, SeccompPhase::Load, Extras::default()).unwrap();
        reference::linear(arch, &rules, default_action(&p)).len()
    };
    // The conditional ioctl rule was folded into the unconditional one: 3 arch checks,
    // 3 x32 checks, 1 load, 5 per unconditional syscall, 1 default.
    assert_eq!(linear(Arch::X86_64), 3 + 3 + 1 + 3 * 5 + 1);
    assert_eq!(linear(Arch::Aarch64), 3 + 1 + 2 * 5 + 1);
    // The search form: the same checks and load, then one return per interval and one
    // comparison per boundary. On aarch64 ioctl is 29 and exit_group 94: refused
    // below 29, 29 allowed, refused to 93, 94 allowed, refused above: 5 intervals.
    assert_eq!(arm.instructions(), 3 + 1 + 4 + 5);
    // On x86_64 the x32 check (2 more after the load: JGE, RET) and open (2) between
    // ioctl (16) and exit_group (231): 7 intervals.
    assert_eq!(x86.instructions(), 3 + 1 + 2 + 6 + 7);
}

/// What compiling refuses, and what it takes.
#[test]
fn compile_errors_name_the_phase_and_the_syscall() {
    let one = |name: &str, condition| rule(&[name], &[condition]);
    // (rule, phase, exec fd, the error or None)
    let cases = [
        (
            one("ioctl", arg(1, CmpOp::Eq, 1 << 40)),
            SeccompPhase::Load,
            None,
            Some(
                "seccomp load phase: argument 1 of ioctl is a 32-bit value in the kernel, so 0x10000000000 can never match; use a value below 2^32",
            ),
        ),
        // Sign-extended negative ints are fine (AT_FDCWD).
        (
            one("openat", arg(0, CmpOp::Eq, (-100i64).cast_unsigned())),
            SeccompPhase::Load,
            None,
            None,
        ),
        (
            one("openat", arg(0, CmpOp::Eq, (-100i64).cast_unsigned())),
            SeccompPhase::Serve,
            Some(-1),
            Some("seccomp serve phase: exec fd -1 is not a file descriptor number"),
        ),
        (
            one("read", arg(6, CmpOp::Eq, 0)),
            SeccompPhase::Load,
            None,
            Some("seccomp load phase: read has no argument 6 (syscalls have 0 to 5)"),
        ),
    ];
    for (rule, phase, exec_fd, want) in cases {
        let mut p = profile(Action::KillProcess, libc::EPERM, vec![rule.clone()]);
        p.serve.allow = vec![rule];
        let got = compile(&p, phase, exec_fd)
            .map(drop)
            .map_err(|e| e.to_string());
        assert_eq!(got, want.map_or(Ok(()), |w| Err(w.to_owned())));
    }
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

/// The kernel takes every program plugjail makes for the shipped profiles: plain, traced
/// and gate (installed in a child, which then ends; `RET_TRACE` without a tracer is only
/// ENOSYS, so `exit_group` is all it needs).
#[test]
fn the_kernel_accepts_every_compiled_program() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for entry in std::fs::read_dir(&dir).expect("profiles/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let extras = Extras {
            exec_fd: Some(3),
            allow_stacking: true,
        };
        let load = compile_with(&p.seccomp, SeccompPhase::Load, extras).expect("load");
        let gate = compile_gate(&p.seccomp, 6).expect("gate");
        let mut programs = vec![load.bpf(), gate.bpf()];
        programs.extend(load.bpf_traced());
        for prog in programs {
            let end = run_in_child(|| {
                if !no_new_privs() {
                    return 2;
                }
                match install_with_flags(prog, 0) {
                    Ok(_) => 0,
                    Err(e) => 100 + e as i32 % 100,
                }
            });
            assert_eq!(end, Exit::Code(0), "{}", path.display());
        }
    }
}

/// A serve phase that allows nothing still makes a gate: the switch and the clone checks,
/// and every other native syscall traced as `Gate`.
#[test]
fn a_gate_for_a_serve_phase_allowing_nothing() {
    let mut p = profile(
        Action::KillProcess,
        libc::EPERM,
        vec![rule(&["exit_group", "clone", "clone3", "recvmsg"], &[])],
    );
    p.serve.allow = Vec::new();
    for arch in Arch::ALL {
        let gate = gate::compile_gate_for(arch, &p, 6).expect("gate");
        let prog = gate.bpf();
        interp::check(prog).expect("well formed");
        let nr = |name| sysnames::number(arch, name).unwrap();
        let native = bpf::audit_arch(arch);
        let ask = |name, arg0| interp::run(prog, nr(name), native, &[arg0, 1, 2, 3, 4, 5]);
        let untraced = u64::from(bpf::CLONE_UNTRACED);
        assert_eq!(ask("recvmsg", 6), TraceData::Switch.ret(), "{arch}");
        assert_eq!(ask("recvmsg", 7), TraceData::Gate.ret(), "{arch}");
        assert_eq!(ask("clone", untraced), TraceData::UntracedClone.ret());
        assert_eq!(ask("clone", 0x11), TraceData::Gate.ret(), "{arch}");
        assert_eq!(ask("clone3", 0), bpf::ret_errno(libc::ENOSYS as u32));
        assert_eq!(ask("getpid", 0), TraceData::Gate.ret(), "{arch}");
        let i386 = interp::run(prog, 20, bpf::AUDIT_ARCH_I386, &[0; 6]);
        assert_eq!(i386, RET_ALLOW, "{arch}");
        if arch == Arch::X86_64 {
            let x32 = interp::run(prog, nr("getpid") | X32_SYSCALL_BIT, native, &[0; 6]);
            assert_eq!(x32, RET_ALLOW);
        }
    }
}
