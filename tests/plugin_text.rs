//! Text from the plugin is hostile: `plugjail call` with tests/plugins/terminal.cpp, whose
//! log lines, stdout/stderr, fail() message and forged ERROR frames are terminal attacks,
//! as root and rootless under profiles/default.yaml. On stderr nothing may reach the
//! terminal raw, every plugin line is marked as the plugin's, and the only `plugjail:`
//! line is plugjail's own summary. The verdict JSON keeps the text as it came.

mod common;

use std::path::{Path, PathBuf};

use common::{Called, Mode, jail_modes};

/// The plugin's text (tests/plugins/terminal.cpp, `evil_utf8`): what an ERROR frame
/// carries, exactly.
const EVIL_UTF8: &str = "title\x1b]0;pwned by plugin\x07 clipboard\x1b]52;c;ZWNobyBwd25lZA==\x07 \
                         clear\x1b[2J\x1b[H c1csi\u{9b}2J bidi[\u{202e}exe.txt\u{202c}] nul[\0]\
                         \rplugjail: session ended cleanly after 1 call (1 ms)";

/// tests/plugins/terminal.cpp built with `defines`.
fn terminal_plugin(defines: &[&str]) -> PathBuf {
    common::plugin_with("terminal", defines)
}

/// `plugjail call` of `method` under profiles/default.yaml (tests/common: report file,
/// deadline, stderr kept as raw bytes).
fn call(mode: Mode, so: &Path, method: &str) -> Called {
    common::call(mode, &common::default_profile(), so, method, None)
}

/// The checks every run shares: no byte of the attack reaches stderr raw, every line is
/// either the plugin's (`plugin[TAG]: `) or plugjail's, and the only `plugjail:` line is
/// the last one, the real summary, which starts with `summary`. Returns stderr's lines.
fn assert_stderr_is_defused(c: &Called, summary: &str) -> Vec<String> {
    for (byte, name) in [(0x1b, "ESC"), (0x07, "BEL"), (b'\r', "CR"), (0, "NUL")] {
        assert!(
            !c.stderr_bytes.contains(&byte),
            "raw {name} on stderr: {}",
            c.describe()
        );
    }
    let text = std::str::from_utf8(&c.stderr_bytes)
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
        assert!(!c.stderr.contains("pwned"), "{}", c.describe());
        let message = c.report["message"].as_str().unwrap_or("");
        assert!(!message.contains("pwned"), "{}", c.describe());
        assert!(message.contains("returned 1"), "{}", c.describe());
    }
}
