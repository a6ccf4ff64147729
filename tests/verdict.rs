//! The verdict as `plugjail exec` delivers it, through the real binary: a report that
//! cannot be written, and exit statuses that name the outcome (`--exit-status outcome`).
//! Plugin mode's side of the same rules is in tests/plugin_*.rs.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{
    Exec, Failures, Lang, Mode, TempDir, build, extend_profile, jail_modes, naming, pipe, probe,
    profile_for,
};

fn hog() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("hog", Lang::C, &["scripts/vm/hog.c"], &["-O2"]))
}

fn read_verdict(r: OwnedFd) -> Option<serde_json::Value> {
    let mut text = String::new();
    let _ = fs::File::from(r).read_to_string(&mut text);
    serde_json::from_str(text.trim()).ok()
}

/// Report paths that cannot be written, with the errno each must be refused with: a
/// missing directory, a directory, and (rootless, when the tests run as root) a
/// directory the user may not write to.
fn unwritable_reports(dir: &TempDir, mode: Mode) -> Vec<(PathBuf, &'static str)> {
    let mut cases = vec![
        (dir.join("missing/verdict.json"), "ENOENT"),
        (dir.subdir(&common::unique("a-directory"), 0o777), "EISDIR"),
    ];
    if mode == Mode::Rootless && probe::is_root() {
        // `dir` is root's and 0755.
        cases.push((dir.join("not-writable.json"), "EACCES"));
    }
    cases
}

#[test]
fn exec_refuses_a_report_it_cannot_write_before_the_jail_is_built() {
    let dir = TempDir::new("report", 0o755);
    let mut failures = Failures::default();
    for mode in jail_modes() {
        let profile = profile_for(mode, "ci-tests");
        for (path, errno) in unwritable_reports(&dir, mode) {
            let (status_r, status_w) = pipe();
            let run = Exec::new(mode, &profile)
                .without_report()
                .option("--report")
                .option(&path)
                .option("--status-fd")
                .option("3")
                .inherit_fd(status_w, 3)
                .cmd(["/bin/echo", "the program ran"])
                .run();
            let v = read_verdict(status_r).unwrap_or_default();
            let check = if run.code() != Some(125) {
                Err(format!("exit status {:?}, expected 125", run.code()))
            } else if run.stdout.contains("the program ran") {
                Err("the program ran".to_owned())
            } else if v["outcome"] != "setup_failed" || v["step"] != "report" {
                Err(format!("status fd verdict is not setup_failed/report: {v}"))
            } else if v["errno"]["name"] != errno {
                Err(format!("errno is not {errno}: {v}"))
            } else if v.get("enforced").is_some() || v.get("resources").is_some() {
                Err(format!("a jail was built: {v}"))
            } else if !run.stderr.contains(&format!(
                "plugjail: could not set up the jail (step report, {errno}): --report {}",
                path.display()
            )) {
                Err("no clear message on stderr".to_owned())
            } else {
                Ok(())
            };
            failures.check(&format!("--report {}", path.display()), &run, check);
        }
        // The control: a report that can be written is, and the program runs.
        let run = Exec::new(mode, &profile)
            .cmd(["/bin/echo", "the program ran"])
            .run();
        failures.check("a writable report", &run, run.check_exited(0));
    }
    failures.finish();
}

/// One run of [`exit_status_outcome_tells_oom_and_timeout_apart`].
struct Case<'a> {
    label: &'a str,
    profile: PathBuf,
    program: &'a Path,
    args: &'a [&'a str],
    outcome: &'a str,
    /// Exit status by default, and with `--exit-status outcome`.
    statuses: (i32, i32),
}

/// `--exit-status outcome`: an OOM kill and a timeout, both SIGKILL (137) by default, get
/// statuses of their own, as do a seccomp kill, a clean exit and a failing one; the
/// verdict's `exit_status` is the status plugjail exited with, in both modes.
#[test]
fn exit_status_outcome_tells_oom_and_timeout_apart() {
    let dir = TempDir::new("exit-status", 0o755);
    let mut failures = Failures::default();
    for mode in jail_modes() {
        // The memory limit is a cgroup's (root here); rootless it is an rlimit and the
        // allocation fails instead of an OOM kill.
        let level = if mode == Mode::Root {
            "required"
        } else {
            "best_effort"
        };
        let limited = |name: &str, limits: &str| {
            let body = format!("limits:\n{limits}enforcement:\n  limits: {level}\n");
            extend_profile(&dir, &format!("{name}-{}", mode.name()), "ci-tests", &body)
        };
        let ci = profile_for(mode, "ci-tests");
        let default = profile_for(mode, "default");
        let case = |label, profile, program, args, outcome, statuses| Case {
            label,
            profile,
            program,
            args,
            outcome,
            statuses,
        };
        let mut cases = vec![
            case(
                "wall time",
                limited("wall", "  wall_time: 500ms\n"),
                hog(),
                &["spin", "30"][..],
                "timeout",
                (137, 5),
            ),
            case(
                "exit 0",
                ci.clone(),
                hog(),
                &["spin", "0"],
                "exited",
                (0, 0),
            ),
            case("exit 2", ci.clone(), hog(), &["usage"], "exited", (2, 1)),
            case(
                "ptrace",
                default,
                naming(),
                &["ptrace"],
                "seccomp_violation",
                (159, 8),
            ),
        ];
        if mode == Mode::Root {
            cases.push(case(
                "memory",
                limited("memory", "  memory: 64M\n"),
                hog(),
                &["memory", "256"],
                "oom",
                (137, 6),
            ));
        }
        for Case {
            label,
            profile,
            program,
            args,
            outcome,
            statuses: (by_default, by_outcome),
        } in cases
        {
            for (flag, status) in [(None, by_default), (Some("outcome"), by_outcome)] {
                let mut exec = Exec::new(mode, &profile);
                if let Some(f) = flag {
                    exec = exec.option("--exit-status").option(f);
                }
                let run = exec.cmd([program]).cmd(args).run();
                let check = if run.code() != Some(status) {
                    Err(format!("exit status {:?}, expected {status}", run.code()))
                } else if run.outcome() != Some(outcome) {
                    Err(format!("outcome is not {outcome}"))
                } else if run.field("exit_status").and_then(|s| s.as_i64())
                    != Some(i64::from(status))
                {
                    Err("the verdict's exit_status is not plugjail's".to_owned())
                } else {
                    Ok(())
                };
                failures.check(&format!("{label} --exit-status {flag:?}"), &run, check);
            }
        }
    }
    failures.finish();
}
