//! Seccomp: syscalls no shipped profile allows kill the program, and the jail names them
//! (exec of a host program, reuse of the jail's own exec rule, ptrace and
//! process_vm_readv of the host, user namespaces through clone and clone3); with seccomp
//! opened up for those syscalls, the layers behind it (capabilities, the PID namespace,
//! no controlling terminal) still refuse; and TIOCSTI injects nothing into the caller's
//! terminal either way.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{
    Exec, Failures, HostProcess, Pty, SECRET, SHIPPED, TempDir, attack, extend_profile, jail,
    jail_modes, label, profile_for,
};

// ---------------------------------------------------------------------------------------
// Syscalls no shipped profile allows: seccomp kills the program

/// Runs an attack under every shipped profile in every mode and expects a seccomp
/// violation naming `syscall`.
fn killed_by_seccomp_everywhere(syscall: &str, args: &[&str]) {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = jail(mode, &profile_for(mode, profile), args);
            failures.check(
                &label(profile, args),
                &run,
                run.check_seccomp_violation(syscall),
            );
        }
    }
    failures.finish();
}

/// One test per line, `NAME: SYSCALL, [ATTACK ARGS...]`: the attack under every shipped
/// profile in every mode is a seccomp violation naming SYSCALL. Each keeps its own test
/// name, and its failures are labelled with the attack and the profile.
macro_rules! killed_by_seccomp {
    ($($name:ident: $syscall:literal, [$($arg:literal),+];)+) => {
        $(
            #[test]
            fn $name() {
                killed_by_seccomp_everywhere($syscall, &[$($arg),+]);
            }
        )+
    };
}

killed_by_seccomp! {
    mount_is_killed_by_seccomp: "mount", ["mount"];
    umount2_is_killed_by_seccomp: "umount2", ["umount2"];
    pivot_root_is_killed_by_seccomp: "pivot_root", ["pivot_root"];
    unshare_newuser_is_killed_by_seccomp: "unshare", ["unshare_user"];
    setns_is_killed_by_seccomp: "setns", ["setns"];
    bpf_is_killed_by_seccomp: "bpf", ["bpf"];
    keyctl_is_killed_by_seccomp: "keyctl", ["keyctl"];
    perf_event_open_is_killed_by_seccomp: "perf_event_open", ["perf_event_open"];
    userfaultfd_is_killed_by_seccomp: "userfaultfd", ["userfaultfd"];
    io_uring_setup_is_killed_by_seccomp: "io_uring_setup", ["io_uring_setup"];
    kexec_load_is_killed_by_seccomp: "kexec_load", ["kexec_load"];
    init_module_is_killed_by_seccomp: "init_module", ["init_module"];
    capset_is_killed_by_seccomp: "capset", ["capset"];
    sethostname_is_killed_by_seccomp: "sethostname", ["sethostname"];
    open_by_handle_at_is_killed_by_seccomp: "open_by_handle_at", ["open_by_handle_at"];
    chroot_is_killed_by_seccomp: "chroot", ["chroot"];
}

/// default and strict allow no exec: the program cannot start another host program.
#[test]
fn exec_of_a_host_program_is_killed_where_the_profile_allows_no_exec() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            let args = ["exec", "/usr/bin/echo"];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("execve"),
            );
        }
    }
    failures.finish();
}

/// plugjail's seccomp filter lets exactly one `execveat(N, "", .., AT_EMPTY_PATH)` through
/// to start the program from its memfd. The program must not be able to reuse that rule
/// by opening another executable at descriptor N: under profiles without exec, every N
/// must still be killed.
#[test]
fn the_jails_own_exec_rule_cannot_be_reused() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            for n in 3..=16 {
                let n = n.to_string();
                let args = ["exec_fd", &n, "/usr/bin/echo"];
                let run = jail(mode, &profile_for(mode, profile), &args);
                let check = run.check_seccomp_violation("execveat").and_then(|()| {
                    if run.stdout.contains("escaped-exec") {
                        Err("/usr/bin/echo ran".into())
                    } else {
                        Ok(())
                    }
                });
                failures.check(&label(profile, &args), &run, check);
            }
        }
    }
    failures.finish();
}

#[test]
fn ptrace_attach_to_a_host_process_is_killed_by_seccomp() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut target = HostProcess::start(mode);
        let pid = target.pid().to_string();
        for profile in SHIPPED {
            let args = ["ptrace_attach", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("ptrace"),
            );
        }
        if !target.alive() {
            failures.fail(format!("[{}] the host sleep died", mode.name()));
        }
    }
    failures.finish();
}

#[test]
fn process_vm_readv_of_the_host_is_killed_by_seccomp() {
    let pid = std::process::id().to_string();
    let addr = format!("{:#x}", SECRET.as_ptr() as usize);
    let len = SECRET.len().to_string();
    killed_by_seccomp_everywhere("process_vm_readv", &["process_vm_readv", &pid, &addr, &len]);
}

/// `clone` is allowed for threads, and `clone3` hides its flags behind a pointer: neither
/// may create a user namespace (which would hand the program every capability inside it).
/// strict allows neither (a named violation); default and ci-tests allow `clone`, which the
/// jail's user.max_user_namespaces = 0 refuses with ENOSPC, and `clone3`, which the traced
/// filter answers with ENOSYS (its flags could hide CLONE_UNTRACED).
#[test]
fn clone_into_a_new_user_namespace_fails() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            for (attack, syscall, errno) in [
                ("clone_newuser", "clone", "ENOSPC"),
                ("clone3_newuser", "clone3", "ENOSYS"),
            ] {
                let run = jail(mode, &profile_for(mode, profile), &[attack]);
                let check = if profile == "strict" {
                    run.check_seccomp_violation(syscall)
                } else {
                    run.check_denied(&[errno])
                };
                failures.check(&label(profile, &[attack]), &run, check);
            }
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// The same syscalls with seccomp opened up: the other layers still refuse

/// ci-tests plus the dangerous syscalls, so that the capability drop, the PID namespace
/// and the missing controlling terminal are what must stop them.
fn profile_without_seccomp_guard(dir: &TempDir) -> PathBuf {
    extend_profile(
        dir,
        "ci-tests-open-seccomp",
        "ci-tests",
        r#"
seccomp:
  load:
    allow:
      - syscalls: [mount, umount2, pivot_root, ptrace, process_vm_readv, capset, sethostname]
        comment: test only, to reach the layers behind seccomp
      - syscalls: [ioctl]
        args: [{ index: 1, op: eq, value: 0x5412 }]
        comment: TIOCSTI, test only
"#,
    )
}

/// What TIOCSTI fails with for a process without CAP_SYS_ADMIN that is not on its
/// controlling terminal.
fn tiocsti_errno() -> &'static str {
    match fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti") {
        Ok(v) if v.trim() == "0" => "EIO",
        _ => "EPERM",
    }
}

#[test]
fn behind_seccomp_the_other_layers_still_refuse() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let profile = profile_without_seccomp_guard(&dir);
    let test_pid = std::process::id().to_string();
    let addr = format!("{:#x}", SECRET.as_ptr() as usize);
    let len = SECRET.len().to_string();
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut target = HostProcess::start(mode);
        let sleep_pid = target.pid().to_string();
        let cases: [(&[&str], &[&str]); 9] = [
            // The jail's init (PID 1, outside the program's Landlock domain) holds the
            // pipes to the supervisor: out of reach too.
            (&["ptrace_attach", "1"], &["EPERM"]),
            (&["process_vm_readv", "1", &addr, &len], &["EPERM"]),
            (&["mount"], &["EPERM"]),
            (&["umount2"], &["EPERM"]),
            (&["pivot_root"], &["EPERM"]),
            (&["capset"], &["EPERM"]),
            (&["sethostname"], &["EPERM"]),
            // The PID namespace hides host processes entirely.
            (&["ptrace_attach", &sleep_pid], &["ESRCH"]),
            (&["process_vm_readv", &test_pid, &addr, &len], &["ESRCH"]),
        ];
        for (args, errnos) in cases {
            let run = jail(mode, &profile, args);
            failures.check(
                &label("ci-tests + those syscalls", args),
                &run,
                run.check_denied(errnos),
            );
            if run.stdout.contains("plugjail-host-secret") {
                failures.fail(format!(
                    "[{}] `attack {}`: the program's output holds bytes of the test \
                     process's memory (plugjail-host-secret...)",
                    mode.name(),
                    args.join(" ")
                ));
            }
        }
        if !target.alive() {
            failures.fail(format!("[{}] the host sleep died", mode.name()));
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Terminal injection

#[test]
fn tiocsti_injects_nothing_into_the_terminal() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let open = profile_without_seccomp_guard(&dir);
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut cases: Vec<(String, PathBuf, bool)> = SHIPPED
            .iter()
            .map(|p| (p.to_string(), profile_for(mode, p), true))
            .collect();
        cases.push(("ci-tests + TIOCSTI".into(), open.clone(), false));
        for (name, profile, by_seccomp) in cases {
            let pty = Pty::open();
            let run = Exec::new(mode, &profile)
                .cmd([attack()])
                .cmd(["tiocsti"])
                .stdin(pty.slave_stdin())
                .run();
            let check = if by_seccomp {
                run.check_seccomp_violation("ioctl")
            } else {
                run.check_denied(&[tiocsti_errno()])
            };
            failures.check(&label(&name, &["tiocsti"]), &run, check);
            let (echoed, queued) = pty.injected();
            if echoed.contains(&b'x') || queued != 0 {
                failures.fail(format!(
                    "[{}] tiocsti under {name}: the terminal got input (echo {echoed:?}, {queued} bytes queued)",
                    mode.name()
                ));
            }
        }
    }
    failures.finish();
}
