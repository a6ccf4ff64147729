//! The frames the server sends, built from the host's answers (the JSON bodies of
//! docs/host-protocol.md).
//!
//! Text that may come from inside a jail (a plugin's error message, the reason a new
//! version did not activate) goes under `plugin_message` only, never into `message`,
//! which is plugjail's own words.

use serde_json::{Value, json};

use super::codec::{FrameType, encode};
use crate::host::{Event, HostCallError, HostError, PluginStatus};

/// The first frame of every connection.
pub fn hello(plugins: &[PluginStatus]) -> Vec<u8> {
    let body = json!({ "protocol": super::codec::PROTOCOL_VERSION, "plugins": plugins });
    json_frame(FrameType::Hello, 0, &body)
}

/// A call's output, or `output_too_large` if it cannot travel in one frame.
pub fn result(id: u64, output: &[u8]) -> Vec<u8> {
    match encode(FrameType::Result, id, output) {
        Ok(frame) => frame,
        Err(e) => error(id, "output_too_large", &e.to_string()),
    }
}

/// An ERROR of plugjail's own making.
pub fn error(id: u64, kind: &str, message: &str) -> Vec<u8> {
    error_with(id, kind, message, json!({}))
}

/// An ERROR with `extra` fields beside `kind` and `message`.
fn error_with(id: u64, kind: &str, message: &str, extra: Value) -> Vec<u8> {
    let mut body = json!({ "kind": kind, "message": message });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    json_frame(FrameType::Error, id, &body)
}

/// The one answer of a call that failed.
pub fn call_error(id: u64, e: &HostCallError) -> Vec<u8> {
    let kind = e.kind_name();
    match e {
        HostCallError::Failed {
            kind: plugin_kind,
            status,
            message,
        } => error_with(
            id,
            kind,
            "the plugin answered with an error",
            json!({
                "plugin_kind": plugin_kind.name(),
                "status": status,
                "plugin_message": message,
            }),
        ),
        HostCallError::UnknownPlugin { id: plugin } => {
            error_with(id, kind, &e.to_string(), json!({ "plugin": plugin }))
        }
        HostCallError::NotServing { id: plugin, state } => error_with(
            id,
            kind,
            &e.to_string(),
            json!({ "plugin": plugin, "state": state }),
        ),
        HostCallError::QueueFull { id: plugin, queued } => error_with(
            id,
            kind,
            &e.to_string(),
            json!({ "plugin": plugin, "queued": queued }),
        ),
        HostCallError::InputTooLarge { len, cap } => {
            error_with(id, kind, &e.to_string(), json!({ "len": len, "cap": cap }))
        }
        HostCallError::Timeout { after } => {
            let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
            error_with(id, kind, &e.to_string(), json!({ "after_ms": ms }))
        }
        HostCallError::JailEnded { outcome } => {
            error_with(id, kind, &e.to_string(), json!({ "outcome": outcome }))
        }
        HostCallError::Cancelled | HostCallError::ShuttingDown => error(id, kind, &e.to_string()),
    }
}

/// The answer of a CONTROL request that failed.
pub fn host_error(id: u64, e: &HostError) -> Vec<u8> {
    let kind = e.kind_name();
    match e {
        // The reason may quote the new version's own words (its init or health call).
        HostError::RolledBack { id: plugin, reason } => error_with(
            id,
            kind,
            &format!(
                "plugin `{plugin}`: the new version did not activate; \
                 the previous one keeps serving"
            ),
            json!({ "plugin": plugin, "plugin_message": reason }),
        ),
        HostError::Transition { id: plugin, source } => error_with(
            id,
            kind,
            &e.to_string(),
            json!({ "plugin": plugin, "state": source.state }),
        ),
        HostError::UnknownPlugin { id: plugin }
        | HostError::DuplicateId { id: plugin }
        | HostError::Invalid { id: plugin, .. }
        | HostError::Pause { id: plugin, .. } => {
            error_with(id, kind, &e.to_string(), json!({ "plugin": plugin }))
        }
    }
}

/// A CONTROL request that succeeded.
pub fn done(id: u64, body: &Value) -> Vec<u8> {
    json_frame(FrameType::Done, id, body)
}

/// One host event.
pub fn event(e: &Event) -> Vec<u8> {
    match serde_json::to_value(e) {
        Ok(body) => json_frame(FrameType::Event, 0, &body),
        Err(err) => error(0, "internal", &format!("an event did not serialise: {err}")),
    }
}

fn json_frame(kind: FrameType, id: u64, body: &Value) -> Vec<u8> {
    // A Value always serialises; bodies are small (statuses, events, error texts of at most
    // a few KiB), far below the cap. Should one ever exceed it, say so in a frame that fits.
    let bytes = body.to_string().into_bytes();
    encode(kind, id, &bytes).unwrap_or_else(|e| {
        let fallback = json!({ "kind": "internal", "message": e.to_string() });
        encode(FrameType::Error, id, fallback.to_string().as_bytes()).unwrap_or_default()
    })
}
