//! Whose failure it is: a plugin that cannot start through its own fault (a missing symbol,
//! no entry point, init() failing) is `plugin_failed`, never `setup_failed`, through
//! `plugjail call`, raw `plugjail serve` and the `Session`; and a `--report` plugjail cannot
//! write is refused before the jail is built.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::process::Stdio;

use common::{
    TempDir, call, default_profile, expect, jail_modes, next_frame, plugin, plugjail, raw_serve,
    raw_serve_with, session_opts, spawn, status_verdict,
};
use plugjail::CallError;

#[test]
fn call_and_serve_refuse_a_report_they_cannot_write_before_the_jail_is_built() {
    let so = plugin("hello");
    let dir = TempDir::new("report", 0o755);
    let missing = dir.join("missing/verdict.json");
    let said = "could not set up the jail (step report, ENOENT): --report";
    for mode in jail_modes() {
        let out = mode
            .command(plugjail())
            .arg("call")
            .arg("--profile")
            .arg(default_profile())
            .arg("--plugin")
            .arg(&so)
            .args(["--method", "greet", "--report"])
            .arg(&missing)
            .stdin(Stdio::null())
            .output()
            .expect("run plugjail call");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "[{}] {err}", mode.name());
        assert!(out.stdout.is_empty(), "[{}] the call ran", mode.name());
        assert!(err.contains(said), "[{}] {err}", mode.name());

        let report: Vec<OsString> = vec!["--report".into(), missing.clone().into()];
        let (mut child, status) = raw_serve_with(mode, &default_profile(), &so, &report);
        let mut out = child.stdout.take().expect("stdout");
        let mut frames = Vec::new();
        let _ = out.read_to_end(&mut frames);
        let exit = child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(exit.code(), Some(125), "[{}] {v:#}", mode.name());
        assert!(
            frames.is_empty(),
            "[{}] the plugin was started",
            mode.name()
        );
        assert_eq!(v["outcome"], "setup_failed", "{v:#}");
        assert_eq!(v["step"], "report", "{v:#}");
        assert_eq!(v["errno"]["name"], "ENOENT", "{v:#}");
        assert!(v.get("enforced").is_none(), "a jail was built: {v:#}");
    }
}

/// A plugin that cannot start through its own fault is `plugin_failed` (exit status 10),
/// never `setup_failed` (125, which CI systems retry as infrastructure): through
/// `plugjail call` and the `Session` (both read the stub's ERROR frame and add its words
/// as `plugin_failure.message`), and through `plugjail serve` alone (the stage from the
/// stub's exit code).
#[test]
fn a_plugin_that_cannot_start_is_its_own_failure_not_the_jails() {
    // (plugin, stage, stage from the exit code alone, init()'s status, the stub's words)
    let cases = [
        (
            "missing_symbol",
            "load",
            "load",
            None,
            "undefined symbol: plugjail_test_symbol_nobody_defines",
        ),
        (
            "no_entry",
            "entry",
            "load",
            None,
            "does not export plugjail_plugin_v1",
        ),
        ("init_fails", "init", "init", Some(3i64), "returned 3"),
    ];
    for mode in jail_modes() {
        for (name, stage, exit_stage, status, says) in cases {
            let so = plugin(name);
            let what = format!("[{}] {name}", mode.name());

            let c = call(mode, &default_profile(), &so, "run", None);
            assert_eq!(c.code, Some(10), "{what}: {}", c.describe());
            assert_eq!(c.outcome(), "plugin_failed", "{}", c.describe());
            let failure = &c.report["plugin_failure"];
            assert_eq!(failure["stage"], stage, "{}", c.describe());
            assert_eq!(failure["status"].as_i64(), status, "{}", c.describe());
            let words = failure["message"].as_str().unwrap_or_default();
            assert!(words.contains(says), "{what}: {}", c.describe());
            assert!(c.stdout.is_empty(), "{}", c.describe());
            // The summary line is plugjail's own words; the stub's stay in the JSON.
            let line = c
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("plugjail: plugin failed to start ({stage})")))
                .unwrap_or_else(|| panic!("{what}: no summary line: {}", c.describe()));
            assert!(!line.contains(words), "{what}: {line}");
            assert!(
                !line.contains("plugjail_test_symbol_nobody_defines"),
                "{what}: {line}"
            );
            if let Some(n) = status {
                assert!(line.contains(&format!("init() returned {n}")), "{line}");
            }

            let (mut child, status_r) = raw_serve(mode, &default_profile(), &so);
            let mut out = child.stdout.take().expect("stdout");
            let (kind, payload) = next_frame(&mut out).expect("a startup ERROR");
            assert_eq!(kind, 4, "{what}: the first frame is ERROR");
            assert!(String::from_utf8_lossy(&payload).contains(says), "{what}");
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest);
            drop(child.stdin.take());
            let exit = child.wait().expect("wait serve");
            let v = status_verdict(status_r);
            assert_eq!(exit.code(), Some(10), "{what}: {v:#}");
            assert_eq!(v["outcome"], "plugin_failed", "{what}: {v:#}");
            assert_eq!(v["exit_status"], 10, "{v:#}");
            assert_eq!(v["plugin_failure"]["stage"], exit_stage, "{what}: {v:#}");
            // plugjail serve does not read the channel: the words are the host's to read.
            assert!(v["plugin_failure"].get("message").is_none(), "{v:#}");

            let mut s = spawn(&session_opts(mode, &default_profile(), &so));
            match s.hello() {
                Err(CallError::Startup {
                    status: got,
                    message,
                    ..
                }) => {
                    assert_eq!(i64::from(got), status.unwrap_or(0), "{what}");
                    assert!(message.contains(says), "{what}: {message}");
                }
                other => panic!("{what}: hello: {other:?}"),
            }
            let v = s.close();
            expect(&v, "plugin_failed", &what);
            assert_eq!(v.json["plugin_failure"]["stage"], stage, "{:#}", v.json);
            let words = v.json["plugin_failure"]["message"].as_str().unwrap_or("");
            assert!(words.contains(says), "{what}: {:#}", v.json);
        }
    }
}
