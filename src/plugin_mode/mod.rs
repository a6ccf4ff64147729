//! Plugin mode: the stub in the jail, hosting one plugin, with the host on the channel.
//!
//! - [`watch`]: the shared page behind `limits.call_time` and `limits.idle_time`.
pub mod watch;
