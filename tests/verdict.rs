//! The verdict as `plugjail exec` delivers it, through the real binary: a report that
//! cannot be written, and exit statuses that name the outcome (`--exit-status outcome`).
//! Plugin mode's side of the same rules is in tests/plugin.rs.

mod common;

use std::fs;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::PathBuf;

use common::{Exec, Failures, Mode, TempDir, jail_modes, probe, profile_for};

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded; both fds are new and owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
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
