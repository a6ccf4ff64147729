//! The host configuration: which plugins a [`crate::host::Host`] keeps alive, and how.
//!
//! The YAML text never goes further than this module (like profiles, `crate::profile`):
//! the host is built from the typed [`HostConfig`]. The reader reports every problem as
//! `FILE:LINE:COL` with the offending line, through the profile reader's diagnostics.

pub(crate) mod read;

use std::path::PathBuf;
use std::time::Duration;

pub use crate::protocol::shm::ShmOptions;

pub use read::{load, load_str};

/// A validated host configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct HostConfig {
    /// The plugins, in the order written; ids are unique.
    pub plugins: Vec<PluginConfig>,
}

/// One plugin the host keeps alive.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// What hosts call it by: `[a-z0-9_-]{1,64}`, unique in the file.
    pub id: String,
    /// The plugin `.so` (relative paths in a file are relative to that file's directory).
    pub plugin: PathBuf,
    /// The profile its jails are built from (relative as `plugin`).
    pub profile: PathBuf,
    /// CPUs its jails may run on (sched_setaffinity); empty: no pinning.
    pub cpus: Vec<usize>,
    pub pool: PoolConfig,
    pub restart: RestartConfig,
    /// Per-call deadline. Default: the profile's `limits.call_time`.
    pub call_time: Option<Duration>,
    /// How long a new jail may take to load the plugin and run its init (HELLO).
    pub start_time: Duration,
    /// How long a jail may take to run the plugin's shutdown and deliver its verdict.
    pub stop_time: Duration,
    /// What a call to a paused plugin does.
    pub when_paused: WhenPaused,
    /// A call a new jail (and a new version) must answer before it takes real calls.
    pub health: Option<HealthCheck>,
    /// Calls through a shared-memory region instead of the pipe (docs/protocol.md,
    /// "Shared-memory calls"); None: the pipe.
    pub shm: Option<ShmOptions>,
}

/// The warm pool of one plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolConfig {
    /// Jails kept started and initialised ahead of need (`warm`, ≥ 0).
    pub warm: usize,
    /// The most jails (so calls) at once (`max`, ≥ 1, ≥ warm).
    pub max: usize,
    /// Calls that may wait for a jail beyond `max`; one more is refused (`QueueFull`).
    pub queue: usize,
    /// Recycle a jail after this many calls (fresh state for untrusted input).
    pub recycle_calls: Option<u64>,
    /// Recycle a jail this long after it started.
    pub recycle_time: Option<Duration>,
}

/// When a plugin's jails fail, and what happens then.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartConfig {
    /// First delay after a transient fault (crash, oom, timeout, failed start).
    pub backoff: Duration,
    /// The delay doubles per fault up to this.
    pub backoff_max: Duration,
    /// At most this many transient faults in `window`; one more fails the plugin.
    pub budget: u32,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenPaused {
    /// The call waits for resume (still bounded by its deadline).
    Wait,
    /// The call fails at once with a typed error.
    Fail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    pub method: String,
    pub input: Vec<u8>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            warm: 1,
            max: 1,
            queue: 64,
            recycle_calls: None,
            recycle_time: None,
        }
    }
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_secs(30),
            budget: 5,
            window: Duration::from_secs(60),
        }
    }
}

impl PluginConfig {
    /// A plugin with every setting at its default.
    pub fn new(id: &str, plugin: impl Into<PathBuf>, profile: impl Into<PathBuf>) -> Self {
        PluginConfig {
            id: id.to_owned(),
            plugin: plugin.into(),
            profile: profile.into(),
            cpus: Vec::new(),
            pool: PoolConfig::default(),
            restart: RestartConfig::default(),
            call_time: None,
            start_time: Duration::from_secs(30),
            stop_time: Duration::from_secs(10),
            when_paused: WhenPaused::Wait,
            health: None,
            shm: None,
        }
    }
}

#[cfg(test)]
mod tests;
