//! Closing a session: SHUTDOWN, waiting for `plugjail serve` to deliver its verdict, and
//! merging what the host itself saw (a protocol violation, a missed deadline, the stub's
//! startup ERROR, the call count) into it.

use std::io::Read;
use std::time::{Duration, Instant};

use crate::{HostFault, Session};
use plugjail_protocol::startup::startup_detail;

/// How long close() waits for `plugjail serve` to deliver its verdict before stopping it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// The verdict of a session: `plugjail serve`'s JSON verdict (see docs/protocol.md and
/// the README), with the host's own findings merged in.
#[derive(Debug, Clone)]
pub struct SessionVerdict {
    /// `ok`, `signaled`, `protocol_violation`, `timeout`, `plugin_rejected`, ...
    pub outcome: String,
    /// The signal that ended the plugin (`signaled`).
    pub signal: Option<i32>,
    /// `call`, `idle`, `wall`, `cpu` or `host` for a `timeout`.
    pub timeout_kind: Option<String>,
    pub message: Option<String>,
    /// Calls the plugin answered (RESULT or ERROR) in this session.
    pub calls: u64,
    /// The whole verdict as `plugjail serve` delivered it (updated with the fields above).
    pub json: serde_json::Value,
}

impl SessionVerdict {
    fn from_json(json: serde_json::Value) -> SessionVerdict {
        let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        SessionVerdict {
            outcome: s("outcome").unwrap_or_else(|| "unknown".to_owned()),
            signal: json
                .get("signal")
                .and_then(|v| v.get("number"))
                .and_then(|v| v.as_i64())
                .and_then(|n| i32::try_from(n).ok()),
            timeout_kind: json
                .get("timeout")
                .and_then(|t| t.get("kind"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            message: s("message"),
            calls: json.get("calls").and_then(|v| v.as_u64()).unwrap_or(0),
            json,
        }
    }

    /// A verdict the host writes itself: when `plugjail serve` delivered none (it was
    /// killed, or could not start), or the host ended a jail before it served (`step`
    /// says where).
    pub fn of_host(outcome: &str, step: &str, why: String) -> SessionVerdict {
        SessionVerdict::from_json(serde_json::json!({
            "version": plugjail_protocol::consts::VERDICT_VERSION,
            "outcome": outcome,
            "step": step,
            "message": why,
        }))
    }

    fn set(&mut self, key: &str, value: serde_json::Value) {
        if let Some(obj) = self.json.as_object_mut() {
            obj.insert(key.to_owned(), value);
        }
    }

    /// Optional fields are absent, not null, when they do not apply.
    fn unset(&mut self, key: &str) {
        if let Some(obj) = self.json.as_object_mut() {
            obj.remove(key);
        }
    }
}

impl Session {
    /// Ends the session (SHUTDOWN, so the plugin's shutdown() runs) and returns the
    /// verdict.
    pub fn close(self) -> SessionVerdict {
        self.close_within(CLOSE_GRACE)
    }

    /// [`Session::close`], waiting at most `grace` for the plugin's shutdown() and the
    /// verdict before the jail is stopped.
    pub fn close_within(mut self, grace: Duration) -> SessionVerdict {
        // First: `plugjail serve` resumes a paused jail when the control socket closes, so
        // the stub reads the SHUTDOWN below.
        if let Some(control) = self.control.take() {
            control.close();
        }
        if let Some(chan) = self.channel.take() {
            chan.shutdown();
        }
        let mut child = self.child.take().expect("a session is closed once");
        let deadline = Instant::now() + grace;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => {
                    self.child = Some(child);
                    self.stop();
                    child = self.child.take().expect("just put back");
                    break child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        let mut text = String::new();
        if let Some(mut f) = self.status.take() {
            let _ = f.read_to_string(&mut text);
        }
        let mut v = match serde_json::from_str::<serde_json::Value>(text.trim()) {
            Ok(json) => SessionVerdict::from_json(json),
            Err(_) => SessionVerdict::of_host(
                "setup_failed",
                "session",
                format!("plugjail serve delivered no verdict (it ended with {status:?})"),
            ),
        };
        let merged = self.merge(&mut v);
        if let Some(path) = &self.report
            && merged
        {
            let _ = std::fs::write(path, v.json.to_string() + "\n");
        }
        v
    }

    /// What the host saw wins over the supervisor's "stopped by SIGTERM"; the call count
    /// is the host's own. True when the host's findings changed the verdict (the report
    /// file is then written again).
    fn merge(&self, v: &mut SessionVerdict) -> bool {
        let mut merged = false;
        v.calls = self.calls;
        v.set("calls", self.calls.into());
        // `plugjail serve` knows the stage from the stub's exit code; the ERROR frame
        // the host read says more about it (as `plugjail call` adds it).
        let stage = v
            .json
            .pointer("/plugin_failure/stage")
            .and_then(|s| s.as_str());
        if let (Some(stage), Some((kind, status, message))) = (stage, &self.startup)
            && let Some(d) = startup_detail(stage, *kind, *status, message.clone())
        {
            let mut failure = serde_json::json!({ "stage": d.stage, "message": d.message });
            if let Some(status) = d.status {
                failure["status"] = status.into();
            }
            v.message = Some(d.sentence.clone());
            v.set("plugin_failure", failure);
            v.set("message", d.sentence.into());
            merged = true;
        }
        match &self.fault {
            None => {}
            Some(HostFault::Protocol(what)) => {
                v.outcome = "protocol_violation".to_owned();
                v.message = Some(what.clone());
                v.signal = None;
                v.set("outcome", "protocol_violation".into());
                v.set("message", what.as_str().into());
                // The supervisor's "stopped by SIGTERM" is not how it ended.
                v.unset("signal");
            }
            Some(HostFault::Timeout(after)) => {
                // The profile's limit, noticed by the host first; or the host's own.
                let profile = self.profile_call_time == Some(*after);
                let kind = if profile { "call" } else { "host" };
                let (what, limit) = (
                    if profile {
                        "call time"
                    } else {
                        "host deadline"
                    },
                    plugjail_protocol::units::format_duration(*after),
                );
                let msg = format!("{what} {limit}");
                let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                v.outcome = "timeout".to_owned();
                v.timeout_kind = Some(kind.to_owned());
                v.message = Some(msg.clone());
                v.set("outcome", "timeout".into());
                v.set("message", msg.into());
                v.set(
                    "timeout",
                    serde_json::json!({ "kind": kind, "limit_ms": ms }),
                );
                // The jail's ending (signal or exit code) stays as `plugjail serve` saw it,
                // unless that was plugjail's own stop.
                if v.json.pointer("/signal/number").and_then(|n| n.as_i64())
                    == Some(i64::from(libc::SIGTERM))
                {
                    v.signal = None;
                    v.unset("signal");
                }
            }
        }
        merged || self.fault.is_some()
    }
}
