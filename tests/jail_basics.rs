//! The jail runs programs at all: a plain program under every shipped profile and what
//! the verdict says was enforced, plugjail's own failures before the program runs, the
//! refusal to run `strict` rootless without its limits, and a well-behaved C and C++
//! program doing real work (input, output, threads, exceptions) in the jail.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{
    Exec, Failures, Lang, Mode, Run, SHIPPED, TempDir, attack, build, extend_profile, jail,
    jail_modes, label, plugjail, profile_for, shipped_profile, unique,
};

fn wellbehaved() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        build(
            "wellbehaved",
            Lang::Cxx,
            &["tests/hostile/wellbehaved.cpp"],
            &["-pthread"],
        )
    })
}

// ---------------------------------------------------------------------------------------
// The jail runs programs at all

/// Fail closed: strict.yaml requires its limits, which an ordinary user cannot get
/// without a delegated cgroup, so plugjail refuses to run rather than run weaker.
#[test]
fn strict_limits_are_refused_rootless_without_a_cgroup() {
    let modes = jail_modes();
    if !modes.contains(&Mode::Rootless) {
        return;
    }
    // What the rootless user can write, as plugjail itself sees it.
    let doctor = Mode::Rootless
        .command(plugjail())
        .args(["doctor", "--json"])
        .output()
        .expect("run doctor");
    let caps: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("doctor json");
    if caps["cgroups"]["writable"]
        .as_array()
        .is_some_and(|w| !w.is_empty())
    {
        println!("skip: the rootless user has a writable cgroup here, so strict.yaml may run");
        return;
    }
    let run = jail(Mode::Rootless, &shipped_profile("strict"), &["hello"]);
    assert_eq!(run.code(), Some(125), "{}", run.describe());
    assert_eq!(run.outcome(), Some("setup_failed"), "{}", run.describe());
    assert_eq!(run.field("step").and_then(|s| s.as_str()), Some("cgroup"));
    let msg = run
        .field("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    assert!(
        msg.contains("limits (required) cannot be enforced"),
        "{msg}"
    );
    assert!(
        msg.contains("best_effort"),
        "the message says how to run anyway: {msg}"
    );
}

#[test]
fn a_plain_program_runs_under_every_shipped_profile() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = jail(mode, &profile_for(mode, profile), &["hello"]);
            let check = run.check_safe().and_then(|()| {
                if !run.stdout.contains("hello from the jail") {
                    return Err("stdout did not pass through".into());
                }
                match run.field("wall_time_ms") {
                    Some(v) if v.is_u64() => {}
                    _ => return Err("report has no numeric `wall_time_ms`".into()),
                }
                check_enforced(&run)
            });
            failures.check(&label(profile, &["hello"]), &run, check);
            // The program's own exit status passes through (2: usage error).
            let run = jail(mode, &profile_for(mode, profile), &["no-such-attack"]);
            failures.check(
                &label(profile, &["no-such-attack"]),
                &run,
                run.check_exited(2),
            );
        }
    }
    failures.finish();
}

/// The verdict says what was enforced: every namespace, Landlock in full, a kill_process
/// seccomp filter, and whether plugjail ran rootless.
fn check_enforced(run: &Run) -> Result<(), String> {
    let enforced = run.field("enforced").ok_or("report has no `enforced`")?;
    let namespaces: Vec<&str> = enforced["namespaces"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for ns in ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"] {
        if !namespaces.contains(&ns) {
            return Err(format!("enforced.namespaces lacks `{ns}`: {namespaces:?}"));
        }
    }
    if enforced["landlock"]["status"] != "full" {
        return Err("enforced.landlock.status is not `full`".into());
    }
    if enforced["seccomp"]["default_action"] != "kill_process" {
        return Err("enforced.seccomp.default_action is not `kill_process`".into());
    }
    if enforced["rootless"] != (run.mode == Mode::Rootless) {
        return Err(format!(
            "enforced.rootless is not {}",
            run.mode == Mode::Rootless
        ));
    }
    Ok(())
}

/// plugjail's own failures have their own exit statuses and outcomes: 127 not found,
/// 126 cannot execute (text, a FIFO with no writer, a device: refused at once, never
/// waited on or read), 125 the jail could not be set up (here: an invalid profile).
#[test]
fn failures_before_the_program_runs_have_their_own_statuses() {
    let modes = jail_modes();
    let dir = TempDir::new("exec-failures", 0o755);
    let text = dir.write("not-a-program.txt", "just text\n", 0o755);
    let bad_profile = dir.write(
        "bad.yaml",
        "version: 1\nfilesystem: {read_only: relative/path}\n",
        0o644,
    );
    // Nobody ever writes to it: opening it for reading must not wait for a writer.
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o777) }, 0, "mkfifo");
    common::chmod(&fifo, 0o777);
    let mut failures = Failures::default();
    for &mode in &modes {
        let default = shipped_profile("default");
        let cases: [(&Path, &Path, i32, &str); 5] = [
            (
                &default,
                Path::new("/nonexistent/plugjail-program"),
                127,
                "not_found",
            ),
            (&default, &text, 126, "cannot_execute"),
            (&default, &fifo, 126, "cannot_execute"),
            (&default, Path::new("/dev/zero"), 126, "cannot_execute"),
            (&bad_profile, attack(), 125, "setup_failed"),
        ];
        for (profile, program, status, outcome) in cases {
            let run = Exec::new(mode, profile)
                .cmd([program])
                .cmd(["hello"])
                .timeout(std::time::Duration::from_secs(10))
                .run();
            let check = if run.code() != Some(status) {
                Err(format!("exit status {:?}, expected {status}", run.code()))
            } else if run.outcome() != Some(outcome) {
                Err(format!("report outcome is not `{outcome}`"))
            } else if run.stdout.contains("hello from the jail") {
                Err("the program ran".into())
            } else {
                Ok(())
            };
            failures.check(
                &format!("{} under {}", program.display(), profile.display()),
                &run,
                check,
            );
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// A well-behaved program

#[test]
fn a_well_behaved_program_reads_its_input_and_writes_its_output() {
    let modes = jail_modes();
    let input_text = "pear two words\napple one\nfig three small words\n";
    let profiles = TempDir::new("profiles", 0o755);
    let mut failures = Failures::default();
    for &mode in &modes {
        let input = TempDir::new("input", 0o755);
        let in_file = input.write("input.txt", input_text, 0o644);
        let output = TempDir::new("output", 0o777);
        let profile = extend_profile(
            &profiles,
            &unique("default-io"),
            "default",
            &format!(
                "filesystem:\n  read_only: [{i}]\n  read_write: [{o}]\nlandlock:\n  read: [{i}, {o}]\n  write: [{o}]\n",
                i = input.path().display(),
                o = output.path().display()
            ),
        );
        // C, with a scratch file in the jail's /tmp.
        let out_c = output.join("reversed.txt");
        let args = [
            "transform",
            in_file.to_str().unwrap(),
            out_c.to_str().unwrap(),
            "/tmp/scratch",
        ];
        let run = jail(mode, &profile, &args);
        failures.check(
            &label("default + in/out binds", &args),
            &run,
            run.check_safe(),
        );
        let reversed: String = input_text.chars().rev().collect();
        let expected = format!("lines=3\n{reversed}");
        match fs::read_to_string(&out_c) {
            Ok(text) if text == expected => {}
            other => failures.fail(format!(
                "[{}] C output: {other:?}, expected {expected:?}",
                mode.name()
            )),
        }
        // C++: libstdc++, a thread, an exception.
        let out_cxx = output.join("sorted.txt");
        let run = Exec::new(mode, &profile)
            .cmd([wellbehaved(), in_file.as_path(), out_cxx.as_path()])
            .run();
        failures.check(
            "wellbehaved (C++) under default + in/out binds",
            &run,
            run.check_safe(),
        );
        let expected = "words=9\napple one\nfig three small words\npear two words\n";
        match fs::read_to_string(&out_cxx) {
            Ok(text) if text == expected => {}
            other => failures.fail(format!(
                "[{}] C++ output: {other:?}, expected {expected:?}",
                mode.name()
            )),
        }
        if fs::read_to_string(&in_file).unwrap() != input_text {
            failures.fail(format!("[{}] the input file changed", mode.name()));
        }
    }
    failures.finish();
}
