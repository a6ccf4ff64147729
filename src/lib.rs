//! plugjail: a Linux jail runner for untrusted C/C++ plugins.
//!
//! The crate keeps *what* apart from *how*: [`profile`] reads and validates the policy ops
//! staff write; one module per kernel mechanism enforces it.

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod cli;
pub mod doctor;
pub mod exec;
pub mod profile;
pub mod sysnames;
