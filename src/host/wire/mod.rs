//! `plugjail host`: the multi-plugin host for applications not written in Rust, over a
//! multiplexed frame protocol on stdin/stdout or a unix socket (docs/host-protocol.md).
//!
//! - [`codec`]: the wire format, pure (no I/O);
//! - `source`: reading frames from a descriptor, woken by the stop descriptor too;
//! - `conn`: one connection (reader, workers, event forwarder, writer);
//! - `worker`: admitting a CALL or CONTROL and running it on a worker thread;
//! - `threads`: a connection's worker threads, kept between requests;
//! - `reply`: the frames sent back, built from the host's answers;
//! - `shared`: what connections share, and the ordered stop;
//! - `listen`: `--listen PATH`, the socket and its peers;
//! - `run`: the command itself.

pub mod codec;
mod conn;
mod listen;
mod reply;
mod run;
mod shared;
mod source;
mod threads;
mod worker;

#[cfg(test)]
mod tests;

pub use listen::{ListenError, MAX_CONNECTIONS};
pub use run::{EXIT_INVALID, EXIT_OK, EXIT_SETUP, Options, run};
