//! The verdict's JSON fields, exit statuses, summary lines and report file.

use std::path::Path;

use super::*;

fn cmd() -> Vec<String> {
    vec!["/bin/true".to_owned()]
}

#[test]
fn exit_statuses_follow_the_shell_convention() {
    let p = Path::new("p.yaml");
    assert_eq!(Verdict::exited(p, &cmd(), 3).exit_status, 3);
    assert_eq!(Verdict::signaled(p, &cmd(), 9).exit_status, 137);
    let failed = |o| Verdict::failed(o, p, &cmd(), "x", None, String::new()).exit_status;
    assert_eq!(failed(Outcome::SetupFailed), 125);
    assert_eq!(failed(Outcome::CannotExecute), 126);
    assert_eq!(failed(Outcome::NotFound), 127);
}

#[test]
fn json_has_the_documented_fields() {
    let mut v = Verdict::signaled(Path::new("p.yaml"), &cmd(), 11);
    v.wall_time_ms = 5;
    let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
    assert_eq!(json["version"], 1);
    assert_eq!(json["outcome"], "signaled");
    assert_eq!(json["signal"]["number"], 11);
    assert_eq!(json["signal"]["name"], "SIGSEGV");
    assert_eq!(json["exit_status"], 139);
    assert_eq!(json["wall_time_ms"], 5);
    assert!(json.get("exit_code").is_none());
    assert!(json.get("step").is_none());
}

#[test]
fn setup_failure_names_step_and_errno() {
    let v = Verdict::failed(
        Outcome::SetupFailed,
        Path::new("p.yaml"),
        &cmd(),
        "mount_proc",
        Some(libc::EPERM),
        "mounting proc on /proc".to_owned(),
    );
    let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
    assert_eq!(json["outcome"], "setup_failed");
    assert_eq!(json["step"], "mount_proc");
    assert_eq!(json["errno"]["name"], "EPERM");
    assert_eq!(json["errno"]["number"], 1);
    assert_eq!(
        v.to_string(),
        "could not set up the jail (step mount_proc, EPERM): mounting proc on /proc"
    );
}

#[test]
fn a_report_file_is_truncated_when_opened_and_holds_one_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.json");
    std::fs::write(
        &path,
        "an earlier run's verdict, longer than this one".repeat(9),
    )
    .unwrap();
    let mut report = ReportFile::create(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"", "truncated when opened");
    let v = Verdict::exited(Path::new("p.yaml"), &cmd(), 0);
    assert!(v.deliver(Some(&mut report), None).is_empty());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), v.to_json() + "\n");
    let e = ReportFile::create(dir.path()).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EISDIR));
}

#[test]
fn human_lines() {
    let p = Path::new("p.yaml");
    let mut v = Verdict::exited(p, &cmd(), 0);
    v.wall_time_ms = 12;
    assert_eq!(v.to_string(), "exited with code 0 after 12 ms");
    let v = Verdict::signaled(p, &cmd(), 9);
    assert_eq!(v.to_string(), "killed by signal 9 (SIGKILL) after 0 ms");
}

#[test]
fn the_verdict_summary_line_never_carries_raw_plugin_text() {
    use crate::protocol::payload::is_bidi_or_break;
    use crate::verdict::{CallErrorReport, Outcome, Verdict};
    let evil = "x\x1b]0;t\x07\x1b[2J\u{9b}\u{202e}\0\rplugjail: forged\nline";
    let mut v = Verdict::failed(
        Outcome::SetupFailed,
        std::path::Path::new("p.yaml"),
        &[],
        "plugin_init",
        None,
        format!("init failed (init_failed): {evil}"),
    );
    v.call_error = Some(CallErrorReport {
        kind: "plugin",
        status: 1,
        message: format!("\"{evil}"),
    });
    for outcome in [
        Outcome::Exited,
        Outcome::Signaled,
        Outcome::SetupFailed,
        Outcome::NotFound,
        Outcome::CannotExecute,
        Outcome::Oom,
        Outcome::Timeout,
        Outcome::PidsLimit,
        Outcome::SeccompViolation,
        Outcome::Ok,
        Outcome::PluginRejected,
        Outcome::ProtocolViolation,
    ] {
        v.outcome = outcome;
        let line = v.to_string();
        assert!(
            !line.chars().any(|c| c.is_control() || is_bidi_or_break(c)),
            "{outcome:?}: {line:?}"
        );
    }
    v.outcome = Outcome::Ok;
    assert!(
        v.to_string()
            .contains(r#"the call failed (plugin error): "\"x\x1b]0;t\x07"#),
        "{v}"
    );
    v.outcome = Outcome::PluginRejected;
    assert!(v.to_string().ends_with(r"\rplugjail: forged\nline"), "{v}");
}
