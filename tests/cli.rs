//! The profile subcommands as a user runs them: exit codes, output on the right stream,
//! FILE:LINE:COL errors with the offending line.

mod common;

use common::{cli, jail_modes, profile_for, text, write_file};

#[test]
fn check_accepts_every_shipped_profile() {
    let out = cli(&[
        "check",
        "profiles/default.yaml",
        "profiles/strict.yaml",
        "profiles/ci-tests.yaml",
        "profiles/audit.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "profiles/default.yaml: ok\nprofiles/strict.yaml: ok\nprofiles/ci-tests.yaml: ok\nprofiles/audit.yaml: ok\n"
    );
}

#[test]
fn check_reports_all_errors_of_all_files_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "version: 1\nlimits:\n  memory: 64Q\nseccomp:\n  load:\n    allow:\n      - syscalls: [opneat]\n",
    );
    let good = write_file(dir.path(), "good.yaml", "version: 1\n");
    let out = cli(&["check", bad.to_str().unwrap(), good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let b = bad.display();
    assert!(err.contains(&format!("{b}:3:11: error: `64Q` has an unknown size unit `Q`\n 3 |   memory: 64Q\n   |           ^\n")), "{err}");
    assert!(
        err.contains(&format!("{b}:7:20: error: unknown syscall `opneat`")),
        "{err}"
    );
    assert!(err.contains("did you mean `openat`?"), "{err}");
    assert!(err.contains(&format!("{b}: 2 errors")), "{err}");
    assert_eq!(text(&out.stdout), format!("{}: ok\n", good.display()));
}

#[test]
fn check_of_a_missing_file_is_an_error_not_a_panic() {
    let out = cli(&["check", "/nonexistent/profile.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/profile.yaml: error: cannot open profile"));
}

#[test]
fn explain_says_what_the_plugin_may_do() {
    let out = cli(&["explain", "profiles/default.yaml"]);
    assert!(out.status.success());
    let t = text(&out.stdout);
    for expected in [
        "Network: none",
        "read-only:  /usr",
        "tmpfs:      /tmp (64M",
        "Each mount, with the Landlock rights that reach it:",
        "  /usr              read-only bind   read, execute\n",
        "  /tmp              tmpfs            read, write\n",
        "  /dev/null         device           read (from /dev), write\n",
        "  /dev/zero         device           read (from /dev)\n",
        "any other syscall: kill the process",
        "ioctl when arg1 eq 0x5401",
        "limits: cgroup limits",
    ] {
        assert!(t.contains(expected), "missing {expected:?} in:\n{t}");
    }
}

#[test]
fn explain_json_is_a_profile_that_checks() {
    let out = cli(&["explain", "--json", "profiles/audit.yaml"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The format's own version, apart from the profile's.
    assert_eq!(v["version"], 1);
    assert_eq!(v["profile"]["seccomp"]["default_action"], "log");
    assert!(
        v["seccomp"]["load"]["x86_64"]["allowed"]
            .as_array()
            .unwrap()
            .len()
            > 50
    );
    assert!(
        v["seccomp"]["load"]["aarch64"]["absent"]
            .as_array()
            .unwrap()
            .contains(&"open".into())
    );
    let dir = tempfile::tempdir().unwrap();
    let again = write_file(dir.path(), "again.json", &v["profile"].to_string());
    let out = cli(&["check", again.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn explain_of_a_bad_profile_exits_2_with_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write_file(dir.path(), "bad.yaml", "version: 1\nnetwrok: none\n");
    let out = cli(&["explain", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("did you mean `network`?"));
    assert!(out.stdout.is_empty());
}

#[test]
fn schema_is_json_schema_covering_every_section() {
    let out = cli(&["schema"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    let props = v["properties"].as_object().unwrap();
    for key in [
        "namespaces",
        "filesystem",
        "landlock",
        "seccomp",
        "limits",
        "network",
        "environment",
        "plugin",
        "enforcement",
        "extends",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    // One enum of groups and names (so an editor's error for an unknown name is short).
    let syscalls = &v["properties"]["seccomp"]["properties"]["load"]["properties"]["allow"]["items"]
        ["properties"]["syscalls"]["items"];
    let names = syscalls["enum"].as_array().unwrap();
    assert!(names.contains(&"@basic-io".into()));
    assert!(names.contains(&"openat".into()));
    assert!(syscalls["errorMessage"].as_str().unwrap().len() < 200);
    for which in ["--verdict", "--doctor", "--host"] {
        let out = cli(&["schema", which]);
        assert!(out.status.success(), "{which}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["$schema"], "https://json-schema.org/draft/2020-12/schema");
    }
    assert_eq!(
        cli(&["schema", "--verdict", "--doctor"]).status.code(),
        Some(2)
    );
}

#[test]
fn help_explains_each_command() {
    let out = cli(&["--help"]);
    let t = text(&out.stdout);
    for cmd in ["check", "explain", "syscall", "schema", "doctor", "exec"] {
        assert!(t.contains(cmd), "{cmd} missing from --help:\n{t}");
    }
}

#[test]
fn check_lints_across_layers_warns_and_exits_0_unless_strict() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_file(
        dir.path(),
        "lint.yaml",
        "version: 1\nfilesystem:\n  read_only: [/usr, /etc/ssl]\nlandlock:\n  read: [/usr]\n  write: [/usr/share]\n",
    );
    let path = p.to_str().unwrap();
    let out = cli(&["check", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{path}: ok, 2 warnings\n"));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{path}:3:21: warning: `/etc/ssl` is bound read-only, but Landlock grants no read there"
        )),
        "{err}"
    );
    assert!(
        err.contains(" 3 |   read_only: [/usr, /etc/ssl]\n   |                     ^\n"),
        "{err}"
    );
    assert!(
        err.contains("  = fix: add `/etc/ssl` to landlock.read"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{path}:6:11: warning: Landlock grants write on `/usr/share`, but it is on the read-only bind of `/usr`"
        )),
        "{err}"
    );
    for flag in ["--strict", "--deny-warnings"] {
        let out = cli(&["check", flag, path, "profiles/default.yaml"]);
        assert_eq!(out.status.code(), Some(1), "{flag}: {}", text(&out.stderr));
    }
    // Shipped profiles are clean under --strict; an invalid file still exits 2.
    let out = cli(&["check", "--strict", "profiles/default.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "version: 1\nlimits: { memory: 64Q }\n",
    );
    let out = cli(&["check", "--strict", path, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_diff_says_what_each_side_allows_and_exits_like_diff() {
    let dir = tempfile::tempdir().unwrap();
    let before = write_file(
        dir.path(),
        "before.yaml",
        "version: 1\nfilesystem:\n  read_only: [/usr]\nlandlock:\n  read: [/usr]\nlimits:\n  memory: 64M\n",
    );
    let after = write_file(
        dir.path(),
        "after.yaml",
        "version: 1\nextends: before.yaml\nfilesystem:\n  read_write: [/srv/out]\nlandlock:\n  write: [/srv/out]\nlimits:\n  memory: 32M\n",
    );
    let (a, b) = (before.to_str().unwrap(), after.to_str().unwrap());
    let out = cli(&["explain", "--diff", a, b]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!(
            "A: {a}\nB: {b}\n\nWhat B allows that A does not:\n  \
             filesystem: host `/srv/out` bound read-write (A: not bound)\n  \
             landlock.write: write `/srv/out`\n\n\
             What A allows that B does not:\n  limits.memory: memory 64M (B: 32M)\n\n\
             Changed, wider in neither:\n  nothing\n"
        )
    );
    let out = cli(&["explain", "--json", "--diff", a, b]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["b_allows"][0]["area"], "filesystem");
    assert_eq!(v["b_allows"][0]["item"], "/srv/out");
    assert_eq!(v["b_allows"][0]["b"], "read-write");
    assert_eq!(v["a_allows"][0]["a"], "64M");
    assert_eq!(v["changed"], serde_json::json!([]));

    let out = cli(&["explain", "--diff", a, a]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("The two profiles allow the same."));
    let bad = write_file(
        dir.path(),
        "bad.yaml",
        "version: 1\nlimits: { memory: 64Q }\n",
    );
    let out = cli(&["explain", "--diff", a, bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("bad.yaml:2:19: error:"),
        "{}",
        text(&out.stderr)
    );
    // Usage mistakes are clap's (exit 2): one profile for --diff, or both forms at once.
    assert_eq!(cli(&["explain", "--diff", a]).status.code(), Some(2));
    assert_eq!(cli(&["explain", a, "--diff", a, b]).status.code(), Some(2));
}

#[test]
fn syscall_looks_up_names_numbers_and_groups() {
    let out = cli(&["syscall", "openat"]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(t.starts_with("openat: x86_64 257"), "{t}");
    assert!(
        t.contains("aarch64 56") && t.contains("in @file-read"),
        "{t}"
    );
    let out = cli(&["syscall", "101"]);
    assert!(
        text(&out.stdout).starts_with("101: ptrace on x86_64, "),
        "{}",
        text(&out.stdout)
    );
    let out = cli(&["syscall", "--json", "@time"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 1);
    assert_eq!(v["group"]["name"], "@time");
    let out = cli(&["syscall", "opneat"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "plugjail: unknown syscall `opneat`; did you mean `openat`?\n"
    );
}

/// `-q` drops the summary line of a run that ended normally but never a failure's; `-v`
/// adds the setup steps with their times. Real runs, as root and rootless.
#[test]
fn quiet_and_verbose_runs() {
    for mode in jail_modes() {
        let default = profile_for(mode, "default");
        let strict = profile_for(mode, "strict");
        let run_under = |profile: &std::path::Path, flags: &[&str], program: &str| {
            let out = mode
                .command(common::plugjail())
                .args(flags)
                .arg("exec")
                .arg("--profile")
                .arg(profile)
                .args(["--", program])
                .output()
                .expect("plugjail runs");
            (out.status.code(), text(&out.stderr))
        };
        let run = |flags: &[&str], program: &str| run_under(&default, flags, program);
        let m = mode.name();
        let (code, err) = run(&[], "/usr/bin/true");
        assert_eq!(code, Some(0), "{m}: {err}");
        assert!(
            err.contains("plugjail: exited with code 0 after"),
            "{m}: {err}"
        );
        assert!(!err.contains("timing"), "{m}: {err}");

        let (code, err) = run(&["-q"], "/usr/bin/true");
        assert_eq!((code, err.as_str()), (Some(0), ""), "{m}");
        let (code, err) = run(&["--quiet"], "/usr/bin/false");
        assert_eq!((code, err.as_str()), (Some(1), ""), "{m}");
        // A violation is said even when quiet: strict allows no ioctl, which ls makes.
        let (code, err) = run_under(&strict, &["-q"], "/usr/bin/ls");
        assert_eq!(code, Some(128 + 31), "{m}: {err}");
        assert!(err.contains("plugjail: seccomp violation: "), "{m}: {err}");

        let (code, err) = run(&["-v"], "/usr/bin/true");
        assert_eq!(code, Some(0), "{m}: {err}");
        assert!(
            err.contains("plugjail: exited with code 0 after"),
            "{m}: {err}"
        );
        let timing = err
            .lines()
            .find(|l| l.starts_with("plugjail: timing (ms since main): "))
            .unwrap_or_else(|| panic!("{m}: no timing line in {err}"));
        for step in ["profile ", "clone ", "exec ", "ended "] {
            assert!(timing.contains(step), "{m}: {step} missing from {timing}");
        }
        assert_eq!(
            cli(&["-q", "-v", "check", "profiles/default.yaml"])
                .status
                .code(),
            Some(2)
        );
        eprintln!("quiet_and_verbose_runs: ran {m}");
    }
}

#[test]
fn quiet_check_prints_only_problems() {
    let out = cli(&[
        "check",
        "-q",
        "profiles/default.yaml",
        "profiles/strict.yaml",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
}
