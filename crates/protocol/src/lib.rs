//! The pipe protocol between a host and the in-jail stub: length-prefixed binary frames
//! with a type and a call id (docs/protocol.md is the byte-by-byte specification).
//!
//! - [`consts`]: frame types, error kinds, log levels, versions, stub exit codes;
//! - [`frame`]: the 16-byte header, a reader that never reserves more than the cap, a
//!   writer that builds each frame in one reused buffer;
//! - [`payload`]: the layout of each frame type's payload;
//! - [`channel`]: the host side — HELLO handshake, then CALL → RESULT/ERROR with LOG
//!   frames in between, each call under a deadline.
//!
//! Everything the stub sends is untrusted: any malformed, oversized or out-of-order frame
//! is a [`ProtocolError`], which the supervisor reports as the `protocol_violation`
//! verdict.

pub mod channel;
pub mod consts;
pub mod control;
pub mod frame;
pub mod payload;
pub mod shm;
pub mod startup;
pub mod switch;
pub mod text;
pub mod units;
pub mod watch;

#[cfg(test)]
mod tests;

pub use channel::{Channel, ChannelError};
pub use consts::{ErrorKind, FrameType};
pub use frame::{Frame, FrameReader, FrameWriter, ReadError};
pub use payload::{Hello, SessionInfo};

/// A frame that breaks the protocol. Messages name what was wrong, for the verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("unknown frame type {kind}")]
    UnknownType { kind: u16 },
    #[error("frame flags {flags:#06x} are not zero")]
    Flags { flags: u16 },
    #[error("frame payload of {len} bytes exceeds the maximum message size of {cap} bytes")]
    TooLarge { len: u32, cap: u32 },
    #[error("channel closed after {got} of the {want} bytes of a frame")]
    Truncated { got: usize, want: usize },
    #[error("malformed {frame} payload: {what}")]
    Payload {
        frame: &'static str,
        what: &'static str,
    },
    #[error("unexpected {frame} frame {state}")]
    Unexpected {
        frame: &'static str,
        state: &'static str,
    },
    #[error("{frame} frame for call {got} while call {want} is in progress")]
    WrongId {
        frame: &'static str,
        got: u64,
        want: u64,
    },
    #[error("{what} version {got} in HELLO, expected {want}")]
    Version {
        what: &'static str,
        got: u32,
        want: u32,
    },
}
