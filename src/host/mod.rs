//! The plugin host: one supervisor keeping many jailed plugins alive, for hosts that
//! should not have to write it themselves (docs/host.md).
//!
//! ```no_run
//! use plugjail::host::{Host, HostConfig, PluginConfig};
//!
//! let host = Host::start(HostConfig {
//!     plugins: vec![PluginConfig::new(
//!         "hello",
//!         "examples/plugins/hello.so",
//!         "profiles/default.yaml",
//!     )],
//! })?;
//! let events = host.events();
//! let out = host.call("hello", "greet", b"world")?;
//! assert_eq!(out, b"hello, world");
//! host.shutdown();
//! for e in events.try_iter() {
//!     println!("{}", serde_json::to_string(&e)?);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each plugin has a pool of jails (each a [`crate::Session`], so one `plugjail serve`
//! and one jail, exactly as a single session would run it): `pool.warm` of them are
//! started and initialised ahead of need, calls run in parallel across them (one call per
//! jail at a time, at most `pool.max`), and a bounded queue holds the calls waiting for
//! one. A keeper thread per plugin starts jails, restarts them after transient faults with
//! backoff within a budget, and quarantines the plugin after a violation
//! ([`lifecycle`]). Every transition and every jail's end is an [`Event`].
//!
//! Calls block the calling thread (any thread; no async runtime): [`Host::call`], or
//! [`Host::call_with`] with a [`CancelToken`] another thread may fire.

mod call;
pub mod config;
mod events;
mod jails;
pub mod lifecycle;
mod pause;
mod plugin;
mod restart;
mod upgrade;
pub mod wire;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

pub use config::{HealthCheck, HostConfig, PluginConfig, PoolConfig, RestartConfig, WhenPaused};
pub use events::{Event, EventKind};
pub use lifecycle::State;

use crate::protocol::ErrorKind;
use events::Bus;
use plugin::Plugin;

/// Why the host could not start, or refused a request about a plugin.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("no plugin `{id}` in this host")]
    UnknownPlugin { id: String },
    #[error("plugin `{id}` appears twice in the configuration")]
    DuplicateId { id: String },
    #[error("plugin `{id}`: {message}")]
    Invalid { id: String, message: String },
    #[error("plugin `{id}`: {source}")]
    Transition {
        id: String,
        source: lifecycle::InvalidTransition,
    },
    #[error("plugin `{id}`: pause: {message}")]
    Pause { id: String, message: String },
    #[error(
        "plugin `{id}`: the new version did not activate ({reason}); the previous one keeps serving"
    )]
    RolledBack { id: String, reason: String },
}

impl HostError {
    /// A stable name for the error (the `plugjail host` protocol's `kind` of a failed
    /// CONTROL request).
    pub fn kind_name(&self) -> &'static str {
        match self {
            HostError::UnknownPlugin { .. } => "unknown_plugin",
            HostError::DuplicateId { .. } => "duplicate_plugin",
            HostError::Invalid { .. } => "invalid",
            HostError::Transition { .. } => "invalid_transition",
            HostError::Pause { .. } => "pause_failed",
            HostError::RolledBack { .. } => "rolled_back",
        }
    }
}

/// Why a call through the host failed. Each call gets exactly one answer: its output or
/// one of these.
#[derive(Debug, thiserror::Error)]
pub enum HostCallError {
    #[error("no plugin `{id}` in this host")]
    UnknownPlugin { id: String },
    /// The plugin is failed, quarantined, terminated, or paused with `when_paused: fail`.
    #[error("plugin `{id}` is {} and takes no calls", state.name())]
    NotServing { id: String, state: State },
    /// `pool.max` calls run and `pool.queue` wait already.
    #[error("plugin `{id}`: {queued} calls are already waiting (pool.queue); try again later")]
    QueueFull { id: String, queued: usize },
    /// The plugin answered ERROR; its jail goes on.
    #[error("{} error{}: {message}", kind.name(), if *status != 0 { format!(" (status {status})") } else { String::new() })]
    Failed {
        kind: ErrorKind,
        status: i32,
        /// From inside the jail: untrusted text (escape before showing it).
        message: String,
    },
    #[error("input of {len} bytes does not fit in a frame of at most {cap} bytes")]
    InputTooLarge { len: usize, cap: u32 },
    /// No answer (or no jail) within the call's deadline; a jail that was running the call
    /// was ended.
    #[error("no answer within {after:?}")]
    Timeout { after: Duration },
    /// The call was cancelled ([`CancelToken::cancel`]); its jail was ended.
    #[error("the call was cancelled")]
    Cancelled,
    /// The jail ended during the call: `outcome` is its verdict's (`signaled`, `oom`,
    /// `seccomp_violation`, `protocol_violation`, ...).
    #[error("the plugin's jail ended during the call: {outcome}")]
    JailEnded { outcome: String },
    /// The host is shutting down.
    #[error("the host is shutting down")]
    ShuttingDown,
}

impl HostCallError {
    /// A stable name for the error (the `plugjail host` protocol's `kind`).
    pub fn kind_name(&self) -> &'static str {
        match self {
            HostCallError::UnknownPlugin { .. } => "unknown_plugin",
            HostCallError::NotServing { .. } => "not_serving",
            HostCallError::QueueFull { .. } => "queue_full",
            HostCallError::Failed { .. } => "plugin_error",
            HostCallError::InputTooLarge { .. } => "input_too_large",
            HostCallError::Timeout { .. } => "timeout",
            HostCallError::Cancelled => "cancelled",
            HostCallError::JailEnded { .. } => "jail_ended",
            HostCallError::ShuttingDown => "shutting_down",
        }
    }
}

/// Cancels one call from any thread. Cancelling before the call starts makes it fail at
/// once; after it answered, does nothing.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

#[derive(Default)]
struct CancelInner {
    cancelled: AtomicBool,
    /// Set while a jail runs the call: ends that jail.
    stop: Mutex<Option<StopFn>>,
}

impl std::fmt::Debug for CancelInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelInner")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

/// Ends the jail running a call.
type StopFn = Arc<dyn Fn() + Send + Sync>;

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn cancel(&self) {
        self.inner.cancelled.store(true, Ordering::SeqCst);
        // Under the lock: the call takes its stop back (set_stop(None)) before it closes
        // the jail, so a stop never reaches a `plugjail serve` already reaped.
        let stop = self.inner.stop.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(stop) = stop.as_ref() {
            stop();
        }
    }

    /// What cancel() does now; fired at once if the call was already cancelled.
    fn set_stop(&self, stop: Option<StopFn>) {
        let mut slot = self.inner.stop.lock().unwrap_or_else(|p| p.into_inner());
        *slot = stop;
        if self.is_cancelled()
            && let Some(stop) = slot.as_ref()
        {
            stop();
        }
    }

    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }
}

/// A plugin's state as [`Host::status`] reports it.
#[derive(Debug, Clone, Serialize)]
pub struct PluginStatus {
    pub id: String,
    pub state: State,
    pub plugin_path: String,
    /// Jails ready for a call.
    pub idle: usize,
    /// Jails running a call.
    pub busy: usize,
    /// Jails being started.
    pub starting: usize,
    /// Calls waiting for a jail.
    pub queued: usize,
    pub calls: u64,
    pub restarts: u64,
}

/// The plugin host.
pub struct Host {
    plugins: HashMap<String, Arc<Plugin>>,
    /// In configuration order, for [`Host::status`].
    order: Vec<String>,
    bus: Arc<Bus>,
    /// Numbers the calls (for events).
    calls: AtomicU64,
}

/// How a [`Host`] runs its jails, beyond the configuration.
#[derive(Debug, Clone, Default)]
pub struct HostOptions {
    /// The `plugjail` executable. Default: found like [`crate::SessionOptions::plugjail`].
    pub plugjail: Option<PathBuf>,
}

impl Host {
    /// Starts every plugin's pool in the background and returns at once; calls wait for a
    /// plugin that is still starting (within their deadline).
    pub fn start(config: HostConfig) -> Result<Host, HostError> {
        Host::start_with(config, HostOptions::default())
    }

    /// [`Host::start`] with options.
    pub fn start_with(config: HostConfig, options: HostOptions) -> Result<Host, HostError> {
        let bus = Arc::new(Bus::default());
        let mut plugins = HashMap::new();
        let mut order = Vec::new();
        for cfg in config.plugins {
            let id = cfg.id.clone();
            if plugins.contains_key(&id) {
                return Err(HostError::DuplicateId { id });
            }
            let plugin = Plugin::new(cfg, options.plugjail.clone(), Arc::clone(&bus))?;
            plugins.insert(id.clone(), plugin);
            order.push(id);
        }
        let host = Host {
            plugins,
            order,
            bus,
            calls: AtomicU64::new(0),
        };
        for plugin in host.plugins.values() {
            plugin.refill(&mut plugin.lock());
        }
        Ok(host)
    }

    fn plugin(&self, id: &str) -> Result<&Arc<Plugin>, HostError> {
        self.plugins
            .get(id)
            .ok_or_else(|| HostError::UnknownPlugin { id: id.to_owned() })
    }

    /// Calls `method` of plugin `id` with `input`, under the plugin's call deadline.
    pub fn call(&self, id: &str, method: &str, input: &[u8]) -> Result<Vec<u8>, HostCallError> {
        self.call_with(id, method, input, None)
    }

    /// [`Host::call`] that another thread may cancel through `cancel`.
    pub fn call_with(
        &self,
        id: &str,
        method: &str,
        input: &[u8],
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<u8>, HostCallError> {
        let plugin = self
            .plugins
            .get(id)
            .ok_or_else(|| HostCallError::UnknownPlugin { id: id.to_owned() })?;
        let number = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        plugin.call(number, method, input, cancel)
    }

    /// Freezes every jail of plugin `id`; calls wait or fail (`when_paused`).
    pub fn pause(&self, id: &str) -> Result<(), HostError> {
        self.plugin(id)?.pause()
    }

    pub fn resume(&self, id: &str) -> Result<(), HostError> {
        self.plugin(id)?.resume()
    }

    /// Lets a failed or quarantined plugin start again.
    pub fn release(&self, id: &str) -> Result<(), HostError> {
        self.plugin(id)?.release()
    }

    /// Replaces plugin `id` with a new build (and optionally a new profile); returns once
    /// the new version serves, or [`HostError::RolledBack`] with the old one still serving.
    pub fn upgrade(
        &self,
        id: &str,
        plugin: PathBuf,
        profile: Option<PathBuf>,
    ) -> Result<(), HostError> {
        self.plugin(id)?.upgrade(plugin, profile)
    }

    /// Every plugin's state and pool, in configuration order.
    pub fn status(&self) -> Vec<PluginStatus> {
        self.order
            .iter()
            .filter_map(|id| self.plugins.get(id))
            .map(|p| p.status())
            .collect()
    }

    /// A new subscriber to every event from now on.
    pub fn events(&self) -> Receiver<Event> {
        self.bus.subscribe()
    }

    /// Ends every jail (each plugin's shutdown() runs, bounded by `stop_time`) and waits
    /// for their verdicts.
    pub fn shutdown(self) {
        // Drop does it.
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // In parallel: each plugin's jails close on threads of their own anyway; this
        // only waits for them.
        std::thread::scope(|s| {
            for plugin in self.plugins.values() {
                s.spawn(|| plugin.stop());
            }
        });
    }
}
