//! plugjail: a Linux jail runner for untrusted C/C++ plugins.
//!
//! The crate is split between *what* (the [`profile`], a validated policy) and *how* (one
//! module per kernel mechanism, added as the jail grows).

#![warn(clippy::undocumented_unsafe_blocks)]

pub mod profile;
pub mod sysnames;
