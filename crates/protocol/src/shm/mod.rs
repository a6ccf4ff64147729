//! The shared-memory call transport (docs/protocol.md, "Shared-memory calls"): one memfd,
//! created and sealed by the host, mapped by the host and by the stub, holding one request
//! area (a CALL or SHUTDOWN frame) and one response area (a RESULT or ERROR frame), each
//! announced by a 32-bit sequence word that doubles as a futex.
//!
//! - [`region`]: creating, sealing and mapping the memfd; the header; raw access;
//! - [`futex`]: FUTEX_WAIT with a timeout and FUTEX_WAKE on a shared word;
//! - [`host`]: the host's end — write a CALL, wait (spin, then sleep in slices), copy the
//!   answer out once and validate it;
//! - [`stub`]: the stub's end — wait for a request, publish an answer.
//!
//! The plugin shares the stub's address space, so everything in the region is hostile to
//! the host: the host copies each word and header out once, checks the copy, and never
//! sleeps without a deadline.

pub mod futex;
pub mod host;
pub mod region;
pub mod stub;

#[cfg(test)]
mod tests;

pub use host::{HostRing, ShmOptions};
pub use region::{Layout, ShmError};
pub use stub::StubRing;

/// The descriptor number the region gets in the jail (`plugjail serve` places it there).
pub const JAIL_FD: i32 = 9;

/// The most the stub spins before it sleeps, whatever the header says.
pub const MAX_SPIN_US: u32 = 1_000_000;

/// How long the host sleeps on the futex at most before it checks its deadline and the
/// pipe (end of file: the stub is gone).
pub const HOST_SLICE: std::time::Duration = std::time::Duration::from_millis(20);

/// How long the stub sleeps on the futex at most before it checks the pipe for end of
/// file (the host gone).
pub const STUB_SLICE: std::time::Duration = std::time::Duration::from_secs(1);
