//! plugjail: a Linux jail runner for untrusted C/C++ plugins.
//!
//! The crate keeps *what* apart from *how*: [`profile`] reads and validates the policy ops
//! staff write; one module per kernel mechanism enforces it.

// Public: used by the binaries (src/main.rs, src/bin/plugjail-stub.rs), the integration
// tests, the benches or the fuzz targets, or named in the docs for Rust hosts.
pub mod cgroup;
pub mod cli;
pub mod doctor;
pub mod exec;
pub mod plugin_file;
pub mod plugin_mode;
pub mod probe;
pub mod profile;
pub mod protocol;
pub mod seccomp;
pub mod session;
pub mod stub;
pub mod sysnames;
pub mod text;

// The crate's own: nothing outside it needs them.
pub(crate) mod jail;
pub(crate) mod landlock;
pub(crate) mod supervise;
pub(crate) mod verdict;

pub use session::{CallError, Session, SessionOptions, SessionVerdict};
