//! Processes and descriptors: /proc shows only the jail, the jail's init and host
//! processes are out of reach, signal dispositions start at their defaults, no descriptor
//! beyond stdio reaches the program, and neither the program nor the supervisor can be
//! opened for writing.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{
    Exec, Failures, HostProcess, Lang, SHIPPED, attack, build, jail, jail_modes, label, pipe,
    plugjail, profile_for, shipped_profile,
};

// ---------------------------------------------------------------------------------------
// Processes

#[test]
fn proc_shows_only_the_jail() {
    let modes = jail_modes();
    let test_pid = std::process::id().to_string();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["proc_pids", &test_pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            let check = if profile == "ci-tests" {
                // ci-tests lets Landlock read /proc: the listing must work and show only
                // the jail's few processes.
                run.check_safe().and_then(|()| {
                    let pids: Vec<u64> = run
                        .stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("pids "))
                        .unwrap_or("")
                        .split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect();
                    if pids.is_empty() || pids.len() > 4 || pids.iter().any(|&p| p > 16) {
                        return Err(format!("/proc lists {pids:?}: not a fresh PID namespace"));
                    }
                    Ok(())
                })
            } else {
                // Landlock does not grant /proc in default and strict.
                run.check_denied(&["EACCES", "ENOENT"])
            };
            failures.check(&label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// The jail's init (PID 1) stays outside the program's Landlock domain: the program can
/// neither signal it nor read its memory or environment through /proc.
#[test]
fn the_jails_init_is_out_of_reach() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["kill_pid", "1"];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_denied(&["EPERM"]));
        }
        let ci = shipped_profile("ci-tests");
        for args in [["read", "/proc/1/environ"], ["open_write", "/proc/1/mem"]] {
            let run = jail(mode, &ci, &args);
            failures.check(
                &label("ci-tests", &args),
                &run,
                run.check_denied(&["EACCES"]),
            );
        }
    }
    failures.finish();
}

#[test]
fn kill_cannot_reach_host_processes() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut target = HostProcess::start(mode);
            let pid = target.pid().to_string();
            let args = ["kill_pid", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_denied(&["ESRCH"]));
            // The program refuses kill(-1) unless the host pid is invisible, so a broken
            // jail cannot take the machine down with it.
            let args = ["kill_all", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_safe());
            if !target.alive() {
                failures.fail(format!(
                    "[{}] under {profile}: the host sleep was killed",
                    mode.name()
                ));
            }
        }
    }
    failures.finish();
}

fn sigdisp() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("sigdisp", Lang::C, &["tests/hostile/sigdisp.c"], &[]))
}

/// Signals the caller ignores do not reach the jailed program: every signal 1..=64
/// (SIGRTMAX included) starts with SIG_DFL and none is blocked, though plugjail was
/// started with SIGPIPE, SIGUSR1, SIGRTMIN and SIGRTMAX ignored (as `nohup` or a shell's
/// `trap '' SIG` leave them) and ignored dispositions survive exec. The same program
/// started the same way on the host reports them: the test can fail.
#[test]
fn signal_dispositions_start_at_their_defaults() {
    let modes = jail_modes();
    let ignored = [
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    let mut failures = Failures::default();
    let mut host = Command::new(sigdisp());
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `ignore` only calls signal(2) with SIG_IGN (async-signal-safe) over
    // an array the closure owns.
    unsafe { host.pre_exec(move || ignore(&ignored)) };
    let host = host.output().expect("run sigdisp on the host");
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    // At least these four: the test harness may itself have inherited other ignored
    // signals (cargo starts it with 32 ignored, glibc's cancellation signal).
    let missing: Vec<_> = ignored
        .iter()
        .filter(|sig| !host.lines().any(|l| l == format!("sig {sig}: ignored")))
        .collect();
    if !missing.is_empty() || !host.contains("result: inherited") {
        failures.fail(format!(
            "control: sigdisp started on the host with {ignored:?} ignored does not report \
             {missing:?} as ignored, so the jailed runs prove nothing:\n{host}"
        ));
    }
    for &mode in &modes {
        for profile in SHIPPED {
            let run = Exec::new(mode, &profile_for(mode, profile))
                .cmd([sigdisp()])
                .ignore_signals(&ignored)
                .run();
            failures.check(
                &format!("`sigdisp` started with {ignored:?} ignored, under {profile}"),
                &run,
                run.check_safe(),
            );
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Descriptors and executables

#[test]
fn no_descriptor_beyond_stdio_reaches_the_jail() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut runs = vec![("fd_scan", profile)];
            if profile == "ci-tests" {
                runs.push(("proc_fd", profile));
            }
            for (attack_name, profile) in runs {
                // A leaked host directory (the classic openat("..") escape) at fd 7, and
                // plugjail's own status pipe at fd 9.
                let leaked: OwnedFd = fs::File::open(common::target_tmp()).unwrap().into();
                let (status_read, status_write) = pipe();
                let run = Exec::new(mode, &profile_for(mode, profile))
                    .option("--status-fd")
                    .option("9")
                    .inherit_fd(leaked, 7)
                    .inherit_fd(status_write, 9)
                    .cmd([attack()])
                    .cmd([attack_name])
                    .run();
                failures.check(&label(profile, &[attack_name]), &run, run.check_safe());
                let mut verdict = String::new();
                let _ = fs::File::from(status_read).read_to_string(&mut verdict);
                let parsed: Option<serde_json::Value> = serde_json::from_str(verdict.trim()).ok();
                let outcome = parsed
                    .as_ref()
                    .and_then(|v| v.get("outcome")?.as_str().map(String::from));
                if outcome.as_deref() != Some("exited") {
                    failures.fail(format!(
                        "[{}] {attack_name} under {profile}: --status-fd 9 did not carry an `exited` verdict: {verdict:?}",
                        mode.name()
                    ));
                }
            }
        }
    }
    failures.finish();
}

/// The body of a `pre_exec` hook: ignores `signals` (failures ignored too).
fn ignore(signals: &[libc::c_int]) -> std::io::Result<()> {
    for &sig in signals {
        // SAFETY: SIG_IGN installs no handler code; it only changes this child's
        // disposition of `sig`.
        unsafe { libc::signal(sig, libc::SIG_IGN) };
    }
    Ok(())
}

#[test]
fn the_program_and_the_supervisor_cannot_be_opened_for_writing() {
    let modes = jail_modes();
    let supervisor = plugjail().to_str().unwrap();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let cases: [(&str, &[&str]); 3] = [
                ("/proc/self/exe", &["ETXTBSY", "EACCES", "EPERM", "EROFS"]),
                (
                    "/proc/1/exe",
                    &["ETXTBSY", "EACCES", "EPERM", "EROFS", "ENOENT"],
                ),
                // The supervisor's host path is not in the jail.
                (supervisor, &["ENOENT"]),
            ];
            for (path, errnos) in cases {
                let args = ["open_write", path];
                let run = jail(mode, &profile_for(mode, profile), &args);
                failures.check(&label(profile, &args), &run, run.check_denied(errnos));
            }
        }
    }
    failures.finish();
}
