//! What a host is told: every lifecycle transition and every jail's end, as events.
//!
//! Events go to every subscriber ([`crate::host::Host::events`]) through a bounded queue
//! each: a subscriber that does not keep up loses events (counted in
//! [`Event::dropped_before`]), and the supervisor never waits for it.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::lifecycle::State;

/// Events a subscriber may fall behind by before it loses some.
pub const SUBSCRIBER_QUEUE: usize = 1024;

/// One event. Serialised as one JSON object (docs/host.md lists every field).
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Increases by one per event of this host, across plugins.
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The plugin's id.
    pub plugin: String,
    /// Events this subscriber lost just before this one (its queue was full).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped_before: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    /// The plugin moved from one lifecycle state to another.
    State {
        from: State,
        to: State,
        reason: String,
    },
    /// A jail of the plugin said HELLO and joined the pool.
    JailReady {
        jail: u64,
        /// From spawning `plugjail serve` to the HELLO.
        start_ms: u64,
        version: String,
        /// How its calls travel: `pipe` or `shm` (shared memory).
        transport: &'static str,
        /// Why a jail whose plugin asked for shared memory calls over the pipe.
        #[serde(skip_serializing_if = "Option::is_none")]
        shm_unavailable: Option<String>,
    },
    /// A jail ended; `verdict` is its whole verdict (docs/verdict.md).
    JailEnded {
        jail: u64,
        outcome: String,
        /// Why the host ended it, when it did (`recycle`, `cancel`, `shutdown`, `upgrade`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<&'static str>,
        calls: u64,
        verdict: serde_json::Value,
    },
    /// A jail will be started again after `delay_ms` (transient fault `attempt` of the
    /// restart window).
    Restart {
        attempt: u32,
        delay_ms: u64,
        cause: String,
    },
    /// A call was cancelled (by the host); its jail was ended.
    Cancelled { call: u64 },
    /// A new version of the plugin took over.
    Activated {
        plugin_path: String,
        version: String,
    },
    /// A new version failed to activate; the previous one keeps serving.
    RolledBack { plugin_path: String, reason: String },
}

/// The fan-out to subscribers.
#[derive(Default)]
pub(crate) struct Bus {
    inner: Mutex<BusInner>,
}

#[derive(Default)]
struct BusInner {
    seq: u64,
    subscribers: Vec<Subscriber>,
}

struct Subscriber {
    tx: SyncSender<Event>,
    dropped: u64,
}

impl Bus {
    pub fn subscribe(&self) -> Receiver<Event> {
        let (tx, rx) = sync_channel(SUBSCRIBER_QUEUE);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.subscribers.push(Subscriber { tx, dropped: 0 });
        rx
    }

    /// Sends `kind` to every subscriber that has room; never blocks.
    pub fn emit(&self, plugin: &str, kind: EventKind) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.seq += 1;
        let seq = inner.seq;
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        let mut event = Event {
            seq,
            time_ms: u64::try_from(time_ms).unwrap_or(u64::MAX),
            plugin: plugin.to_owned(),
            dropped_before: 0,
            kind,
        };
        inner.subscribers.retain_mut(|s| {
            event.dropped_before = s.dropped;
            match s.tx.try_send(event.clone()) {
                Ok(()) => {
                    s.dropped = 0;
                    true
                }
                Err(TrySendError::Full(_)) => {
                    s.dropped += 1;
                    true
                }
                // The receiver is gone: forget the subscriber.
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }
}
