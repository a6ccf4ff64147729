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
//! | 125 | `setup_failed` |
//! | 128+N | `signaled`: the plugin crashed with signal N |

use std::time::Duration;

use crate::exec::Context;
use crate::protocol::consts::exit_code;
use crate::verdict::{Outcome, PluginReport, Timeout, TimeoutKind, Verdict};

/// Why plugjail ended a plugin session itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStop {
    /// A call (or idle) deadline passed.
    Timeout(TimeoutKind, Duration),
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
pub(crate) fn plugin_verdict(ctx: &Context, v: Verdict, facts: SessionFacts) -> Verdict {
    let mut v = reading(ctx, v, &facts);
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
                    "the jail's init could not trace the jail (ptrace refused), and the \
                     serve phase is enforced through it; the load phase stayed in force"
                        .to_owned(),
                )
            }
            None => {}
        }
    }
    v.exit_status = exit_status(&v);
    v
}

fn reading(ctx: &Context, v: Verdict, facts: &SessionFacts) -> Verdict {
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
                limit_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
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
    let failed = |step: &str, msg: &str| {
        let mut f = ctx.failed(Outcome::SetupFailed, step, None, msg.to_owned());
        f.exit_code = Some(code);
        f
    };
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
        exit_code::ABI_MISMATCH => v.because(
            Outcome::PluginRejected,
            "the plugin's ABI version, struct size or description is not what this \
             plugjail implements; none of its code ran beyond its constructors and entry \
             function"
                .to_owned(),
        ),
        exit_code::LOAD_FAILED => failed(
            "plugin_load",
            "the stub could not dlopen the plugin or find plugjail_plugin_v1 in it",
        ),
        exit_code::INIT_FAILED => failed("plugin_init", "the plugin's init() returned non-zero"),
        exit_code::USAGE => failed("stub", "the stub refused its command line (a plugjail bug)"),
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
        Outcome::Signaled => v
            .signal
            .as_ref()
            .map_or(128, |s| 128u8.wrapping_add(s.number as u8)),
        Outcome::SetupFailed | Outcome::NotFound | Outcome::CannotExecute => 125,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn ctx_run(code: i32, facts: SessionFacts) -> Verdict {
        let cmd = vec!["p.so".to_owned()];
        let ctx = Context::new(Path::new("p.yaml"), &cmd);
        let v = Verdict::exited(Path::new("p.yaml"), &cmd, code);
        plugin_verdict(&ctx, v, facts)
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
        let init = ctx_run(exit_code::INIT_FAILED, f());
        assert_eq!(init.outcome, Outcome::SetupFailed);
        assert_eq!(init.step.as_deref(), Some("plugin_init"));
        assert_eq!(init.exit_status, 125);
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
    fn a_stop_by_plugjail_explains_the_kill() {
        let cmd = vec!["p.so".to_owned()];
        let ctx = Context::new(Path::new("p.yaml"), &cmd);
        let killed = Verdict::signaled(Path::new("p.yaml"), &cmd, libc::SIGKILL);
        let stop = HostStop::Timeout(TimeoutKind::Call, Duration::from_secs(1));
        let v = plugin_verdict(
            &ctx,
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
            Some((TimeoutKind::Call, 1000))
        );
        assert_eq!(v.message.as_deref(), Some("call time 1s"));
        let stop = HostStop::Protocol("unknown frame type 26984".to_owned());
        let v = plugin_verdict(
            &ctx,
            killed.clone(),
            SessionFacts {
                stop: Some(stop),
                ..SessionFacts::default()
            },
        );
        assert_eq!((v.outcome, v.exit_status), (Outcome::ProtocolViolation, 4));
        let crash = plugin_verdict(
            &ctx,
            Verdict::signaled(Path::new("p.yaml"), &cmd, 11),
            SessionFacts::default(),
        );
        assert_eq!((crash.outcome, crash.exit_status), (Outcome::Signaled, 139));
    }
}
