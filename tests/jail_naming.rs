//! Naming the refused syscall (seccomp_violation): under kill_process the jail's init
//! traces every process and names what the filter refused, in any thread or child, by
//! number when it has no name, including an untraced clone; clone3 is ENOSYS and threads
//! still work; signals and job control behave as untraced; abort is still SIGABRT; and
//! without ptrace the kill is a violation without a name.

mod common;

use std::path::Path;
use std::process::Command;

use common::{
    Exec, Failures, Mode, Run, SHIPPED, TempDir, extend_profile, jail_modes, naming, profile_for,
    shipped_profile,
};

// ---------------------------------------------------------------------------------------
// Naming the refused syscall (seccomp_violation)

/// Runs `naming ARGS...` under `profile` in `mode`.
fn naming_run(mode: Mode, profile: &Path, args: &[&str]) -> Run {
    Exec::new(mode, profile).cmd([naming()]).cmd(args).run()
}

fn naming_label(profile: &str, args: &[&str]) -> String {
    format!("`naming {}` under {profile}", args.join(" "))
}

/// The issue's own example: `ptrace` under a kill_process profile names `ptrace`, with
/// its x86_64 number, root and rootless.
#[test]
fn ptrace_is_a_named_seccomp_violation() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = naming_run(mode, &profile_for(mode, profile), &["ptrace"]);
            #[cfg(target_arch = "x86_64")]
            let check = run.check_seccomp_number(Some("ptrace"), 101);
            #[cfg(not(target_arch = "x86_64"))]
            let check = run.check_seccomp_violation("ptrace");
            failures.check(&naming_label(profile, &["ptrace"]), &run, check);
        }
    }
    failures.finish();
}

/// A number that is no syscall (999), or beyond every table (just below the x32 bit), is
/// still refused, and reported by number with a null name.
#[test]
fn an_unknown_syscall_number_is_reported_by_number() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            for (arg, nr) in [("nr999", 999), ("nr_huge", 0x3fff_ffff)] {
                let run = naming_run(mode, &profile_for(mode, profile), &[arg]);
                let check = run.check_seccomp_number(None, nr).and_then(|()| {
                    let name = run.report.as_ref().and_then(|r| r.pointer("/syscall/name"));
                    match name {
                        Some(serde_json::Value::Null) => Ok(()),
                        other => Err(format!("syscall.name is {other:?}, expected null")),
                    }
                });
                failures.check(&naming_label(profile, &[arg]), &run, check);
            }
        }
    }
    failures.finish();
}

/// Every thread is traced from its first instruction: a refused syscall in a second
/// thread is named like one in the main thread. strict allows no threads at all.
#[test]
fn a_refused_syscall_in_a_second_thread_is_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for (profile, syscall) in [
            ("default", "ptrace"),
            ("ci-tests", "ptrace"),
            ("strict", "clone3"),
        ] {
            let args = ["thread_ptrace"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation(syscall);
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// Every child is traced from its first instruction: a refused syscall in a forked child
/// is named, and ends the whole jail (the parent never reports). ci-tests allows fork and
/// wait; strict allows no clone.
#[test]
fn a_refused_syscall_in_a_forked_child_is_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for (profile, syscall) in [("ci-tests", "ptrace"), ("strict", "clone")] {
            let args = ["fork_ptrace"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation(syscall);
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// `clone(CLONE_UNTRACED)` would start a process the init does not trace, for which the
/// filter's trace action means only ENOSYS: it is refused, named, and says why.
#[test]
fn an_untraced_clone_is_refused_and_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["untraced_clone"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation("clone").and_then(|()| {
                let message = run.field("message").and_then(|m| m.as_str());
                if message.is_some_and(|m| m.contains("CLONE_UNTRACED")) {
                    Ok(())
                } else {
                    Err(format!(
                        "message {message:?} does not mention CLONE_UNTRACED"
                    ))
                }
            });
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// Where the profile allows clone3, the traced filter answers it with ENOSYS (its flags
/// are out of the filter's reach), and threads still work: the C library falls back to
/// clone.
#[test]
fn clone3_is_enosys_and_threads_still_work() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "ci-tests"] {
            let path = profile_for(mode, profile);
            let run = naming_run(mode, &path, &["clone3"]);
            failures.check(
                &naming_label(profile, &["clone3"]),
                &run,
                run.check_denied(&["ENOSYS"]),
            );
            let run = naming_run(mode, &path, &["threads"]);
            failures.check(&naming_label(profile, &["threads"]), &run, run.check_safe());
        }
    }
    failures.finish();
}

/// The tracer is invisible to a program that uses signals heavily: SIGUSR1 to itself in a
/// loop (each handled), ignored SIGUSR2, queued realtime signals, SIGCHLD from children
/// reaped with their exit codes, and a child that stops itself and is continued. The
/// result line is the same on the host, traced (ci-tests) and untraced (ci-tests with
/// `errno` as default action, which plugjail does not trace).
#[test]
fn signals_children_and_job_control_behave_as_untraced() {
    let modes = jail_modes();
    let args = ["signals", "2000"];
    let host = Command::new(naming())
        .args(args)
        .output()
        .expect("run naming on the host");
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    let expected = "result: usr1=2000 rt=8 sum=15 stopped=1 code=7 chld=1";
    assert_eq!(host.trim_end(), expected, "on the host");
    let dir = TempDir::new("profiles", 0o755);
    let untraced = extend_profile(
        &dir,
        "ci-tests-errno",
        "ci-tests",
        "seccomp:\n  default_action: errno\n",
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        for (name, profile, naming) in [
            ("ci-tests", shipped_profile("ci-tests"), "ptrace"),
            ("ci-tests with errno", untraced.clone(), "none"),
        ] {
            let run = naming_run(mode, &profile, &args);
            let check = run.check_exited(0).and_then(|()| {
                let got = run.report.as_ref().and_then(|r| {
                    r.pointer("/enforced/seccomp/naming")
                        .and_then(|n| n.as_str())
                });
                if run.result().map(|r| format!("result: {r}")).as_deref() != Some(expected) {
                    Err(format!("expected `{expected}`"))
                } else if got != Some(naming) {
                    Err(format!("enforced.seccomp.naming is {got:?}, not {naming}"))
                } else {
                    Ok(())
                }
            });
            failures.check(&naming_label(name, &args), &run, check);
        }
    }
    failures.finish();
}

/// abort() under a traced profile still ends in SIGABRT (the signal is delivered, not
/// swallowed by the tracer), not in a seccomp violation.
#[test]
fn abort_is_still_signaled_sigabrt() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = naming_run(mode, &profile_for(mode, profile), &["abort"]);
            let check = if run.code() != Some(128 + libc::SIGABRT) {
                Err(format!("exit status {:?}, expected 134", run.code()))
            } else if run.outcome() != Some("signaled") {
                Err("report outcome is not `signaled`".into())
            } else if run.report.as_ref().and_then(|r| r.pointer("/signal/name"))
                != Some(&serde_json::json!("SIGABRT"))
            {
                Err("report signal is not SIGABRT".into())
            } else {
                Ok(())
            };
            failures.check(&naming_label(profile, &["abort"]), &run, check);
        }
    }
    failures.finish();
}

/// Where ptrace is refused (here: a seccomp filter around plugjail, as a container may
/// have), the jail falls back to the plain kill_process filter — never weaker — and the
/// verdict says the syscall is not known and why.
#[test]
fn without_ptrace_the_kill_is_a_seccomp_violation_without_a_name() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = Exec::new(mode, &profile_for(mode, profile))
                .cmd([naming()])
                .cmd(["ptrace"])
                .deny_ptrace()
                .run();
            let report = run.report.clone().unwrap_or_default();
            let check = if run.result().is_some() {
                Err("the program survived the refused syscall".to_string())
            } else if run.code() != Some(128 + libc::SIGSYS) {
                Err(format!("exit status {:?}, expected 159", run.code()))
            } else if run.outcome() != Some("seccomp_violation") {
                Err("report outcome is not `seccomp_violation`".into())
            } else if report.get("syscall")
                != Some(&serde_json::json!({"name": null, "number": null, "arch": null}))
            {
                Err("syscall is not all null".into())
            } else if report.pointer("/enforced/seccomp/naming") != Some(&"none".into()) {
                Err("enforced.seccomp.naming is not \"none\"".into())
            } else if !report["message"]
                .as_str()
                .is_some_and(|m| m.contains("EPERM"))
            {
                Err("the message does not say ptrace was refused with EPERM".into())
            } else if !run
                .stderr
                .contains("plugjail: seccomp violation: an unknown syscall (ptrace was refused")
            {
                Err("no human line for the unknown syscall".into())
            } else {
                Ok(())
            };
            failures.check(&naming_label(profile, &["ptrace"]), &run, check);
        }
    }
    failures.finish();
}
