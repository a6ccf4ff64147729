//! The plugin-mode reading of a run: what the stub's exit codes mean, why plugjail
//! itself ended the jail, and plugjail's exit status for `serve` and `call`.
//!
//! Exit statuses of `plugjail serve` and `plugjail call` (README, "Using it"):
//!
//! | status | verdict |
//! |---|---|
//! | 0 | `ok`: the session ended cleanly (`call`: and the plugin answered RESULT) |
//! | 1 | `ok`, but the plugin answered the call with ERROR (`call` only; `call_error`) |
//! | 2 | bad command line (before any verdict) |
//! | 3 | `plugin_rejected` |
//! | 4 | `protocol_violation` |
//! | 5 | `timeout` (call, idle, wall or cpu) |
//! | 6 | `oom` |
//! | 7 | `pids_limit` |
//! | 8 | `seccomp_violation` |
//! | 9 | `exited`: the stub ended without a clean session end (the plugin called exit(), or the channel broke) |
//! | 10 | `plugin_failed`: the plugin could not start through its own fault (dlopen, entry symbol, init()) |
//! | 125 | `setup_failed` (the jail's or plugjail's fault: worth a retry) |
//! | 128+N | `signaled`: the plugin crashed with signal N |

use crate::protocol::startup::{stage_sentence, startup_detail};
use std::time::Duration;

use crate::protocol::consts::{ErrorKind, exit_code};
use crate::verdict::{
    Outcome, PluginFailure, PluginReport, Timeout, TimeoutKind, Verdict, signal_exit_status,
};

/// Why plugjail ended a plugin session itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStop {
    /// A call (or idle) deadline passed.
    Timeout(TimeoutKind, Duration),
    /// The host said its own deadline passed (SIGUSR1 to `plugjail serve`), with the
    /// deadline when it said it.
    HostDeadline(Option<Duration>),
    /// The host side (plugjail call) received a frame that breaks the protocol.
    Protocol(String),
}

/// What the supervisor knows besides the run's own verdict.
#[derive(Debug, Clone, Default)]
pub struct SessionFacts {
    pub stop: Option<HostStop>,
    /// Calls answered.
    pub calls: u64,
    /// A call was in flight when the stub ended.
    pub in_call: bool,
    pub plugin: Option<PluginReport>,
    /// The serve gate, for `enforced.seccomp_serve` (if it was in force).
    pub serve_filter: Option<crate::verdict::SeccompReport>,
}

/// Turns the shared run's verdict into the plugin-mode one.
pub(crate) fn plugin_verdict(v: Verdict, facts: SessionFacts) -> Verdict {
    let mut v = reading(v, &facts);
    v.calls = Some(facts.calls);
    v.plugin = facts.plugin;
    if let Some(e) = v.enforced.as_mut() {
        // The serve gate is installed exactly when the init traces the jail (child step
        // 28); only then is the serve phase claimed.
        let traced = e.seccomp.as_ref().is_some_and(|s| s.naming == "ptrace");
        match facts.serve_filter {
            Some(gate) if traced => e.seccomp_serve = Some(gate),
            Some(_) => {
                e.seccomp_serve_skipped = Some(
                    "the jail's init did not trace the jail (ptrace refused, or the jail \
                     ended before it could be traced), and the serve phase is enforced \
                     through it; the load phase stayed in force"
                        .to_owned(),
                )
            }
            None => {}
        }
    }
    v.exit_status = exit_status(&v);
    v
}

fn reading(v: Verdict, facts: &SessionFacts) -> Verdict {
    // A setup failure means the stop (if any) found nothing running worth blaming.
    if v.outcome == Outcome::SetupFailed && v.exit_code.is_none() && v.signal.is_none() {
        return v;
    }
    match &facts.stop {
        Some(HostStop::Timeout(kind, limit)) => {
            let what = match kind {
                TimeoutKind::Idle => "idle time",
                _ => "call time",
            };
            let text = format!("{what} {}", crate::profile::units::format_duration(*limit));
            let mut v = v.because(Outcome::Timeout, text);
            v.timeout = Some(Timeout {
                kind: *kind,
                limit_ms: Some(millis(*limit)),
            });
            return v;
        }
        Some(HostStop::HostDeadline(limit)) => {
            // The host's own deadline, not a profile limit: it ended the session.
            let text = match limit {
                Some(l) => format!(
                    "host deadline {}",
                    crate::profile::units::format_duration(*l)
                ),
                None => "host deadline".to_owned(),
            };
            let mut v = v.because(Outcome::Timeout, text);
            v.timeout = Some(Timeout {
                kind: TimeoutKind::Host,
                limit_ms: limit.map(millis),
            });
            return v;
        }
        Some(HostStop::Protocol(what)) => {
            return v.because(Outcome::ProtocolViolation, what.clone());
        }
        None => {}
    }
    // Traced, the init names serve-phase refusals like load-phase ones. Untraced (the
    // jail could not trace, or a kill_process filter the plugin stacked itself), a kill
    // arrives as a plain SIGSYS.
    if v.outcome == Outcome::Signaled && v.signal.as_ref().map(|s| s.number) == Some(libc::SIGSYS) {
        let mut v = v.because(
            Outcome::SeccompViolation,
            "killed by SIGSYS: a syscall a seccomp filter refuses (not named: the jail \
             could not trace it)"
                .to_owned(),
        );
        v.syscall = Some(crate::verdict::Syscall::unknown());
        return v;
    }
    if v.outcome != Outcome::Exited {
        return v;
    }
    let code = v.exit_code.unwrap_or(0);
    match code {
        exit_code::OK if facts.in_call => {
            let msg = "the plugin ended the stub (exit status 0) during a call";
            v.because(Outcome::Exited, msg.to_owned())
        }
        exit_code::OK => Verdict {
            outcome: Outcome::Ok,
            exit_code: None,
            ..v
        },
        // The plugin's own failures: running it again fails again, so none of them is a
        // setup failure (125, which CI systems retry).
        exit_code::ABI_MISMATCH => plugin_failure(v, Outcome::PluginRejected, "abi"),
        exit_code::LOAD_FAILED => plugin_failure(v, Outcome::PluginFailed, "load"),
        exit_code::INIT_FAILED => plugin_failure(v, Outcome::PluginFailed, "init"),
        // Every exit code is the plugin's to choose (it can call exit()), so none of them
        // may claim an infrastructure failure that CI would retry.
        exit_code::USAGE => v.because(
            Outcome::Exited,
            "the stub exited with 64, its code for a bad command line: a plugjail bug, or \
             the plugin called exit(64)"
                .to_owned(),
        ),
        exit_code::PROTOCOL => v.because(
            Outcome::ProtocolViolation,
            "the host sent a malformed or out-of-order frame (the stub ended the session)"
                .to_owned(),
        ),
        exit_code::CHANNEL => v.because(
            Outcome::Exited,
            "the channel to the host broke (closed in the middle of a frame, or a read or \
             write failed)"
                .to_owned(),
        ),
        other => v.because(
            Outcome::Exited,
            format!("the plugin ended the stub with exit status {other}"),
        ),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn plugin_failure(v: Verdict, outcome: Outcome, stage: &'static str) -> Verdict {
    let mut v = v.because(outcome, stage_sentence(stage, None));
    v.plugin_failure = Some(PluginFailure {
        stage,
        status: None,
        message: None,
    });
    v
}

/// Adds what the stub's startup ERROR frame said to a verdict (plugjail read the frame
/// itself, as the host of `plugjail call`).
pub(crate) fn add_startup_error(v: &mut Verdict, kind: ErrorKind, status: i32, message: String) {
    let Some(failure) = v.plugin_failure.as_mut() else {
        return;
    };
    if let Some(d) = startup_detail(failure.stage, kind, status, message) {
        failure.stage = d.stage;
        failure.status = d.status;
        failure.message = Some(d.message);
        v.message = Some(d.sentence);
    }
}

/// plugjail's exit status for a plugin-mode verdict (table above).
pub fn exit_status(v: &Verdict) -> u8 {
    match v.outcome {
        Outcome::Ok if v.call_error.is_some() => 1,
        Outcome::Ok => 0,
        Outcome::PluginRejected => 3,
        Outcome::ProtocolViolation => 4,
        Outcome::Timeout => 5,
        Outcome::Oom => 6,
        Outcome::PidsLimit => 7,
        Outcome::SeccompViolation => 8,
        Outcome::Exited => 9,
        Outcome::PluginFailed => 10,
        Outcome::Signaled => v
            .signal
            .as_ref()
            .map_or(128, |s| signal_exit_status(s.number)),
        Outcome::SetupFailed | Outcome::NotFound | Outcome::CannotExecute => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::consts::NO_ENTRY_MESSAGE as NO_ENTRY;
    use std::path::Path;

    fn ctx_run(code: i32, facts: SessionFacts) -> Verdict {
        let cmd = vec!["p.so".to_owned()];
        let v = Verdict::exited(Path::new("p.yaml"), &cmd, code);
        plugin_verdict(v, facts)
    }

    #[test]
    fn stub_exit_codes_become_outcomes() {
        let f = SessionFacts::default;
        let ok = ctx_run(0, f());
        assert_eq!(
            (ok.outcome, ok.exit_status, ok.calls),
            (Outcome::Ok, 0, Some(0))
        );
        let rejected = ctx_run(exit_code::ABI_MISMATCH, f());
        assert_eq!(
            (rejected.outcome, rejected.exit_status),
            (Outcome::PluginRejected, 3)
        );
        assert_eq!(
            rejected.plugin_failure.as_ref().map(|p| p.stage),
            Some("abi")
        );
        // The plugin's own failures are not setup failures (125: retried by CI).
        for (code, stage) in [
            (exit_code::INIT_FAILED, "init"),
            (exit_code::LOAD_FAILED, "load"),
        ] {
            let v = ctx_run(code, f());
            assert_eq!((v.outcome, v.exit_status), (Outcome::PluginFailed, 10));
            assert_eq!(v.plugin_failure.as_ref().map(|p| p.stage), Some(stage));
            assert!(v.step.is_none(), "{v:?}");
        }
        let host = ctx_run(exit_code::PROTOCOL, f());
        assert_eq!(host.outcome, Outcome::ProtocolViolation);
        let quit = ctx_run(
            0,
            SessionFacts {
                in_call: true,
                ..f()
            },
        );
        assert_eq!((quit.outcome, quit.exit_status), (Outcome::Exited, 9));
        assert_eq!(ctx_run(3, f()).exit_status, 9);
    }

    #[test]
    fn a_startup_error_frame_adds_detail_to_the_stage_the_exit_code_gave() {
        let f = SessionFacts::default;
        let no_entry = format!("{NO_ENTRY}: undefined symbol: plugjail_plugin_v1");
        let mut v = ctx_run(exit_code::LOAD_FAILED, f());
        add_startup_error(&mut v, ErrorKind::LoadFailed, 0, no_entry.to_string());
        let p = v.plugin_failure.clone().unwrap();
        assert_eq!((p.stage, p.status), ("entry", None));
        assert_eq!(p.message.as_deref(), Some(no_entry.to_string().as_str()));
        assert_eq!(
            v.message.as_deref(),
            Some("the plugin does not export plugjail_plugin_v1")
        );

        let mut v = ctx_run(exit_code::INIT_FAILED, f());
        add_startup_error(&mut v, ErrorKind::InitFailed, -2, "\u{1b}[2Jhi".to_owned());
        let p = v.plugin_failure.clone().unwrap();
        assert_eq!((p.stage, p.status), ("init", Some(-2)));
        v.wall_time_ms = 7;
        // The plugin's words are in the JSON (escaped), not in the summary line.
        assert_eq!(
            v.to_string(),
            "plugin failed to start (init): the plugin's init() returned -2 after 7 ms"
        );
        assert!(
            v.to_json().contains(r#""message":"\u001b[2Jhi""#),
            "{}",
            v.to_json()
        );

        // A frame that disagrees with the exit code adds nothing: the exit code decides.
        let mut v = ctx_run(exit_code::INIT_FAILED, f());
        add_startup_error(&mut v, ErrorKind::LoadFailed, 0, "dlopen: no".to_owned());
        let p = v.plugin_failure.clone().unwrap();
        assert_eq!((p.stage, p.status, p.message), ("init", None, None));
        // Nor to an outcome that is not a plugin failure.
        let mut v = ctx_run(exit_code::OK, f());
        add_startup_error(&mut v, ErrorKind::InitFailed, 1, "x".to_owned());
        assert_eq!((v.outcome, v.plugin_failure), (Outcome::Ok, None));
    }

    #[test]
    fn a_stop_by_plugjail_explains_the_kill() {
        let cmd = vec!["p.so".to_owned()];
        let killed = Verdict::signaled(Path::new("p.yaml"), &cmd, libc::SIGKILL);
        let stop = HostStop::Timeout(TimeoutKind::Call, Duration::from_secs(1));
        let v = plugin_verdict(
            killed.clone(),
            SessionFacts {
                stop: Some(stop),
                calls: 3,
                ..SessionFacts::default()
            },
        );
        assert_eq!(
            (v.outcome, v.exit_status, v.calls),
            (Outcome::Timeout, 5, Some(3))
        );
        assert_eq!(
            v.timeout.as_ref().map(|t| (t.kind, t.limit_ms)),
            Some((TimeoutKind::Call, Some(1000)))
        );
        assert_eq!(v.message.as_deref(), Some("call time 1s"));
        let stop = HostStop::Protocol("unknown frame type 26984".to_owned());
        let v = plugin_verdict(
            killed.clone(),
            SessionFacts {
                stop: Some(stop),
                ..SessionFacts::default()
            },
        );
        assert_eq!((v.outcome, v.exit_status), (Outcome::ProtocolViolation, 4));
        for (said, limit_ms, message) in [
            (
                Some(Duration::from_millis(250)),
                Some(250),
                "host deadline 250ms",
            ),
            (None, None, "host deadline"),
        ] {
            let v = plugin_verdict(
                killed.clone(),
                SessionFacts {
                    stop: Some(HostStop::HostDeadline(said)),
                    ..SessionFacts::default()
                },
            );
            assert_eq!((v.outcome, v.exit_status), (Outcome::Timeout, 5));
            assert_eq!(
                v.timeout.as_ref().map(|t| (t.kind, t.limit_ms)),
                Some((TimeoutKind::Host, limit_ms))
            );
            assert_eq!(v.message.as_deref(), Some(message));
            let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
            assert_eq!(json["timeout"]["kind"], "host");
            assert_eq!(json["timeout"].get("limit_ms").is_some(), said.is_some());
        }
        let crash = plugin_verdict(
            Verdict::signaled(Path::new("p.yaml"), &cmd, 11),
            SessionFacts::default(),
        );
        assert_eq!((crash.outcome, crash.exit_status), (Outcome::Signaled, 139));
    }
}
