//! The control socket of `plugjail serve --control-fd N` (docs/protocol.md): the host
//! pauses and resumes the jail. One command per message, one byte ([`PAUSE`] or
//! [`RESUME`]); one [`Reply`] per command. Shared by plugjail (the serve side) and host
//! libraries.

use std::time::Duration;

/// Pause the jail.
pub const PAUSE: u8 = b'P';
/// Resume the jail.
pub const RESUME: u8 = b'R';

/// How long a pause may take before plugjail gives up, resumes the jail and answers
/// [`status::TIMEOUT`]. The supervisor waits meanwhile (its other deadlines are looked at
/// once the command is answered).
pub const PAUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The largest reply (status, errno, text).
pub const REPLY_MAX: usize = 4096;

/// The reply's status byte.
pub mod status {
    /// Done: the jail is paused (PAUSE) or running (RESUME). Text: how it is held or was
    /// released: `cgroup_v2`, `cgroup_v1`, `signals`, or `running` (RESUME of a running
    /// jail).
    pub const DONE: u8 = 0;
    /// Writing or reading the freezer failed. Errno: why; text: the file.
    pub const FREEZER: u8 = 1;
    /// The jail was not paused within the bound; it was resumed. Text: the milliseconds
    /// waited.
    pub const TIMEOUT: u8 = 2;
    /// Stopping or continuing a process of the jail failed (no freezer). Errno: why; text:
    /// what failed.
    pub const SIGNALS: u8 = 3;
    /// Not a command (not one byte, or not `P` / `R`). Text: what was received.
    pub const BAD_COMMAND: u8 = 4;
}

/// One reply on the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u8,
    pub errno: i32,
    pub text: String,
}

impl Reply {
    pub fn done(text: &str) -> Reply {
        Reply {
            status: status::DONE,
            errno: 0,
            text: text.to_owned(),
        }
    }

    /// `status`, `errno` (i32, little-endian) and the text, cut to [`REPLY_MAX`] bytes at
    /// a character boundary.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.text.len());
        out.push(self.status);
        out.extend_from_slice(&self.errno.to_le_bytes());
        let mut end = self.text.len().min(REPLY_MAX - 5);
        while !self.text.is_char_boundary(end) {
            end -= 1;
        }
        out.extend_from_slice(&self.text.as_bytes()[..end]);
        out
    }

    /// None when `bytes` is shorter than the header or the text is not UTF-8.
    pub fn decode(bytes: &[u8]) -> Option<Reply> {
        let (&status, rest) = bytes.split_first()?;
        let errno = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let text = std::str::from_utf8(rest.get(4..)?).ok()?.to_owned();
        Some(Reply {
            status,
            errno,
            text,
        })
    }
}
