//! plugjail: a Linux jail runner for untrusted C/C++ plugins.
//!
//! The crate keeps *what* apart from *how*: [`profile`] reads and validates the policy ops
//! staff write; one module per kernel mechanism enforces it.

// Public: used by the binary (src/main.rs), the integration tests or the benches, or named
// in the docs for Rust hosts. The in-jail stub is its own crate (crates/stub), and the wire
// format it shares with this crate another (crates/protocol, re-exported as `protocol`).
pub mod cgroup;
pub mod cli;
pub mod doctor;
pub mod exec;
pub mod host;
pub mod plugin_file;
pub mod plugin_mode;
pub mod probe;
pub mod profile;
pub use plugjail_protocol as protocol;
pub mod seccomp;
pub use plugjail_client as session;
pub mod sysnames;
pub use plugjail_protocol::text;
pub mod timing;

// The crate's own: nothing outside it needs them.
pub(crate) mod jail;
pub(crate) mod landlock;
pub(crate) mod supervise;
pub(crate) mod verdict;

pub use session::{CallError, Session, SessionOptions, SessionVerdict};
