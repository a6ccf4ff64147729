//! plugjail: a Linux jail runner for untrusted C/C++ plugins.
//!
//! The crate keeps *what* apart from *how*: [`profile`] reads and validates the policy ops
//! staff write; one module per kernel mechanism enforces it.

pub mod cgroup;
pub mod cli;
pub mod doctor;
pub mod exec;
pub mod jail;
pub mod landlock_rules;
pub mod plugin_file;
pub mod plugin_mode;
pub mod probe;
pub mod profile;
pub mod protocol;
pub mod seccomp;
pub mod session;
pub mod stub;
pub(crate) mod supervise;
pub mod sysnames;
pub mod text;
pub mod verdict;

pub use session::{CallError, Session, SessionOptions, SessionVerdict};
