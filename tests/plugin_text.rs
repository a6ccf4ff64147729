//! Text from the plugin is hostile: `plugjail call` with tests/plugins/terminal.cpp, whose
//! log lines, stdout/stderr, fail() message and forged ERROR frames are terminal attacks,
//! as root and rootless under profiles/default.yaml. On stderr nothing may reach the
//! terminal raw, every plugin line is marked as the plugin's, and the only `plugjail:`
//! line is plugjail's own summary. The verdict JSON keeps the text as it came.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Mode, TempDir, jail_modes, plugjail};

/// The plugin's text (tests/plugins/terminal.cpp, `evil_utf8`): what an ERROR frame
/// carries, exactly.
const EVIL_UTF8: &str = "title\x1b]0;pwned by plugin\x07 clipboard\x1b]52;c;ZWNobyBwd25lZA==\x07 \
                         clear\x1b[2J\x1b[H c1csi\u{9b}2J bidi[\u{202e}exe.txt\u{202c}] nul[\0]\
                         \rplugjail: session ended cleanly after 1 call (1 ms)";

/// tests/plugins/terminal.cpp built with `defines`.
fn terminal_plugin(defines: &[&str]) -> PathBuf {
    common::plugin_with("terminal", defines)
}

/// What one `plugjail call` did; stderr as raw bytes.
struct Called {
    mode: Mode,
    code: Option<i32>,
    stderr: Vec<u8>,
    report: serde_json::Value,
}

impl Called {
    fn describe(&self) -> String {
        format!(
            "[{}] status {:?}\n  stderr: {:?}\n  report: {}",
            self.mode.name(),
            self.code,
            String::from_utf8_lossy(&self.stderr),
            self.report
        )
    }
}

/// Runs `plugjail call` in `mode` with a report file, killing it (by pid) after 60 s.
fn call(mode: Mode, so: &Path, method: &str) -> Called {
    let dir = TempDir::in_system_tmp("text", 0o777);
    let report = dir.join("verdict.json");
    let mut child = mode
        .command(plugjail())
        .arg("call")
        .arg("--profile")
        .arg(common::shipped_profile("default"))
        .arg("--plugin")
        .arg(so)
        .arg("--method")
        .arg(method)
        .arg("--report")
        .arg(&report)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn plugjail call");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("wait killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Called {
        mode,
        code: status.code(),
        stderr: reader.join().unwrap_or_default(),
        report,
    }
}

/// The checks every run shares: no byte of the attack reaches stderr raw, every line is
/// either the plugin's (`plugin[TAG]: `) or plugjail's, and the only `plugjail:` line is
/// the last one, the real summary, which starts with `summary`. Returns stderr's lines.
fn assert_stderr_is_defused(c: &Called, summary: &str) -> Vec<String> {
    for (byte, name) in [(0x1b, "ESC"), (0x07, "BEL"), (b'\r', "CR"), (0, "NUL")] {
        assert!(
            !c.stderr.contains(&byte),
            "raw {name} on stderr: {}",
            c.describe()
        );
    }
    let text = std::str::from_utf8(&c.stderr)
        .unwrap_or_else(|e| panic!("stderr is not UTF-8 ({e}): {}", c.describe()));
    let bad = text.chars().find(|&ch| {
        (ch.is_control() && ch != '\n')
            || matches!(ch, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    });
    assert_eq!(bad, None, "raw control character: {}", c.describe());
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("plugjail:"))
        .collect();
    assert_eq!(ours.len(), 1, "plugjail: lines {ours:?}: {}", c.describe());
    let last = lines.last().expect("a summary line");
    assert!(
        last.starts_with(summary),
        "the last line is not the summary {summary:?}: {}",
        c.describe()
    );
    for line in &lines[..lines.len() - 1] {
        let tag = line
            .strip_prefix("plugin[")
            .and_then(|rest| rest.split_once("]: "))
            .map(|(tag, _)| tag);
        assert!(
            matches!(
                tag,
                Some("debug" | "info" | "warn" | "error" | "output" | "fail")
            ),
            "a line not marked as the plugin's: {line:?}\n{}",
            c.describe()
        );
    }
    lines
}

/// The escaped form of the attack (the parts every copy of it shows).
const SHOWN: &str = "title\\x1b]0;pwned by plugin\\x07 clipboard\\x1b]52;c;ZWNobyBwd25lZA==\\x07 \
                     clear\\x1b[2J\\x1b[H c1csi\\u{9b}2J bidi[\\u{202e}exe.txt\\u{202c}] nul[\\x00]";

#[test]
fn plugin_logs_output_and_fail_messages_reach_stderr_defused() {
    let so = terminal_plugin(&[]);
    for mode in jail_modes() {
        let c = call(mode, &so, "shout");
        assert_eq!(c.code, Some(1), "{}", c.describe());
        let lines = assert_stderr_is_defused(
            &c,
            "plugjail: session ended cleanly after 1 call; the call failed (plugin error): \"title",
        );
        let has = |prefix: &str, rest: &str| {
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(rest))
        };
        // Log records, one line each, whatever they contain.
        let log = format!("{SHOWN} bad-utf8[\\xff\\xfe\\xc3]\\rplugjail: session ended cleanly");
        assert!(has("plugin[info]: ", &log), "{}", c.describe());
        assert!(has("plugin[warn]: ", &log), "{}", c.describe());
        assert!(
            lines.contains(
                &"plugin[error]: first line\\nplugjail: session ended cleanly after 1 call (2 ms)"
                    .to_owned()
            ),
            "{}",
            c.describe()
        );
        // stdout and stderr, line by line.
        assert!(has("plugin[output]: ", &log), "{}", c.describe());
        assert!(
            lines.contains(
                &"plugin[output]: plugjail: session ended cleanly after 1 call (3 ms)".to_owned()
            ),
            "{}",
            c.describe()
        );
        // fail(): the stub made the message UTF-8 (U+FFFD for each bad sequence).
        assert!(has("plugin[fail]: ", SHOWN), "{}", c.describe());
        // The verdict keeps the message as the host received it.
        let message = c.report["call_error"]["message"].as_str().unwrap_or("");
        assert!(
            message.starts_with(&EVIL_UTF8[..EVIL_UTF8.find("\r").unwrap()]),
            "{message:?}"
        );
        assert!(message.contains("bad-utf8[\u{fffd}"), "{message:?}");
    }
}

#[test]
fn a_forged_error_frame_reaches_stderr_defused_and_the_verdict_intact() {
    let so = terminal_plugin(&[]);
    for mode in jail_modes() {
        let c = call(mode, &so, "forge");
        assert_eq!(c.code, Some(1), "{}", c.describe());
        let lines = assert_stderr_is_defused(
            &c,
            "plugjail: session ended cleanly after 1 call; the call failed (plugin error): \"title",
        );
        let fail = format!("plugin[fail]: {SHOWN}\\rplugjail: session ended cleanly");
        assert!(
            lines.iter().any(|l| l.starts_with(&fail)),
            "{}",
            c.describe()
        );
        assert_eq!(
            c.report["call_error"]["message"],
            EVIL_UTF8,
            "{}",
            c.describe()
        );
        assert_eq!(c.report["call_error"]["status"], 7, "{}", c.describe());
    }
}

/// A startup ERROR forged from init() (where a stub holding its channel from the start
/// would have it, fd 4) never reaches the host: the channel only exists after the switch.
/// The host hears the stub's own report of the failed init().
#[test]
fn a_startup_error_forged_while_loading_never_reaches_the_host() {
    let so = terminal_plugin(&["-DFORGE_STARTUP"]);
    for mode in jail_modes() {
        let c = call(mode, &so, "shout");
        assert_ne!(c.code, Some(0), "{}", c.describe());
        assert_stderr_is_defused(&c, "plugjail: ");
        assert!(
            !String::from_utf8_lossy(&c.stderr).contains("pwned"),
            "{}",
            c.describe()
        );
        let message = c.report["message"].as_str().unwrap_or("");
        assert!(!message.contains("pwned"), "{}", c.describe());
        assert!(message.contains("returned 1"), "{}", c.describe());
    }
}
