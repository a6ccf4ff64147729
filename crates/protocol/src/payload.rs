//! Payload layouts of each frame type (all integers little-endian):
//!
//! ```text
//! HELLO     u32 protocol version, u32 ABI version,
//!           u8 n + n bytes name, u8 n + n bytes version,
//!           u16 count, then count × (u8 n + n bytes method name)
//! CALL      u8 n + n bytes method name, then the input (the rest of the payload)
//! RESULT    the output (the whole payload)
//! ERROR     u32 kind (ErrorKind), i32 status (call()'s return value, or 0),
//!           then a UTF-8 message (the rest, at most MAX_ERROR_MESSAGE bytes)
//! LOG       u32 level (log_level), then the text (the rest; bytes, not checked)
//! SHUTDOWN  empty
//! SESSION   u32 protocol version, u32 max_message, u64 call_time ms, u64 idle_time ms
//!           (0: none); later versions append fields, which readers skip
//! ```
//!
//! Names are 1..=255 bytes of printable UTF-8 (no control characters).

use super::ProtocolError;
use super::consts::{ErrorKind, FrameType, MAX_METHODS, MAX_NAME_LEN, log_level};
use super::frame::FrameWriter;

/// Longest ERROR message; the stub cuts longer ones at a character boundary.
pub const MAX_ERROR_MESSAGE: usize = 4096;

/// The stub's greeting, parsed on the host side (once per session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u32,
    pub abi_version: u32,
    pub name: String,
    pub version: String,
    pub methods: Vec<String>,
}

/// `plugjail serve`'s first frame: what a host needs to size its buffers and deadlines,
/// written before the jail exists (docs/protocol.md, "SESSION").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionInfo {
    pub max_message: u32,
    /// The profile's `limits.call_time` in milliseconds; 0 when it sets none.
    pub call_time_ms: u64,
    /// The profile's `limits.idle_time` in milliseconds; 0 when it sets none.
    pub idle_time_ms: u64,
}

/// SESSION's payload in protocol version 1.
pub const SESSION_LEN: usize = 24;

impl SessionInfo {
    pub fn parse(p: &[u8]) -> Result<SessionInfo, ProtocolError> {
        let bad = |what: &'static str| ProtocolError::Payload {
            frame: "SESSION",
            what,
        };
        if p.len() < SESSION_LEN {
            return Err(bad("shorter than its 24 bytes"));
        }
        let mut words = [0u8; 8];
        let u32_at = |at: usize| u32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]]);
        let mut u64_at = |at: usize| {
            words.copy_from_slice(&p[at..at + 8]);
            u64::from_le_bytes(words)
        };
        if u32_at(0) != super::consts::PROTOCOL_VERSION {
            return Err(bad("an unknown protocol version"));
        }
        let info = SessionInfo {
            max_message: u32_at(4),
            call_time_ms: u64_at(8),
            idle_time_ms: u64_at(16),
        };
        if info.max_message < super::consts::MIN_MAX_MESSAGE {
            return Err(bad("max_message below the minimum (4096)"));
        }
        Ok(info)
    }

    /// The whole SESSION frame, header included.
    pub fn frame(&self) -> Vec<u8> {
        let mut p = Vec::with_capacity(SESSION_LEN);
        p.extend_from_slice(&super::consts::PROTOCOL_VERSION.to_le_bytes());
        p.extend_from_slice(&self.max_message.to_le_bytes());
        p.extend_from_slice(&self.call_time_ms.to_le_bytes());
        p.extend_from_slice(&self.idle_time_ms.to_le_bytes());
        let mut w = FrameWriter::new(super::consts::MIN_MAX_MESSAGE);
        w.begin(FrameType::Session, 0);
        // 24 bytes always fit the smallest cap.
        let _ = w.push(&p);
        w.finish().to_vec()
    }
}

/// An ERROR frame's payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPayload<'a> {
    pub kind: ErrorKind,
    pub status: i32,
    pub message: &'a str,
}

/// A CALL frame's payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallPayload<'a> {
    pub method: &'a str,
    pub input: &'a [u8],
}

/// A LOG frame's payload, borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPayload<'a> {
    pub level: u32,
    pub text: &'a [u8],
}

/// A cursor over a payload; every read is bounds-checked.
struct Cursor<'a> {
    frame: FrameType,
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn bad(&self, what: &'static str) -> ProtocolError {
        ProtocolError::Payload {
            frame: self.frame.name(),
            what,
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.rest.len() < n {
            return Err(self.bad(what));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ProtocolError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, ProtocolError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn name(&mut self, what: &'static str) -> Result<&'a str, ProtocolError> {
        let n = self.u8(what)? as usize;
        let bytes = self.take(n, what)?;
        check_name(bytes).ok_or_else(|| self.bad(what))
    }

    fn end(&self) -> Result<(), ProtocolError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.bad("trailing bytes"))
        }
    }
}

/// Bidi embedding/override/isolate controls and marks (Trojan Source), and the Unicode
/// line and paragraph separators (a line break to some terminals and viewers): characters
/// that change how the text around them is shown.
pub fn is_bidi_or_break(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{2066}'..='\u{2069}'
    )
}

/// A valid name: 1..=255 bytes of UTF-8 without control characters, bidi controls or
/// line separators (names are shown to people, e.g. in a host's plugin list).
pub fn check_name(bytes: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(bytes).ok()?;
    let shown_as_is = |c: char| !c.is_control() && !is_bidi_or_break(c);
    let ok = !s.is_empty() && s.len() <= MAX_NAME_LEN && s.chars().all(shown_as_is);
    ok.then_some(s)
}

impl Hello {
    pub fn parse(p: &[u8]) -> Result<Hello, ProtocolError> {
        let mut c = Cursor {
            frame: FrameType::Hello,
            rest: p,
        };
        let protocol_version = c.u32("protocol version")?;
        let abi_version = c.u32("abi version")?;
        let name = c.name("plugin name")?.to_string();
        let version = c.name("plugin version")?.to_string();
        let count = c.u16("method count")? as usize;
        if count > MAX_METHODS {
            return Err(c.bad("more than 1024 methods"));
        }
        let mut methods = Vec::with_capacity(count.min(c.rest.len() / 2));
        for _ in 0..count {
            let m = c.name("method name")?;
            if methods.iter().any(|x: &String| x == m) {
                return Err(c.bad("duplicate method name"));
            }
            methods.push(m.to_string());
        }
        c.end()?;
        Ok(Hello {
            protocol_version,
            abi_version,
            name,
            version,
            methods,
        })
    }
}

/// Writes a HELLO frame (call id 0). Names must already satisfy [`check_name`].
pub fn write_hello<'m>(
    w: &mut FrameWriter,
    name: &str,
    version: &str,
    methods: impl ExactSizeIterator<Item = &'m str>,
) -> Result<(), ProtocolError> {
    use super::consts::{ABI_VERSION, PROTOCOL_VERSION};
    w.begin(FrameType::Hello, 0);
    w.push(&PROTOCOL_VERSION.to_le_bytes())?;
    w.push(&ABI_VERSION.to_le_bytes())?;
    push_name(w, name)?;
    push_name(w, version)?;
    let count = u16::try_from(methods.len()).map_err(|_| ProtocolError::Payload {
        frame: "HELLO",
        what: "more than 1024 methods",
    })?;
    w.push(&count.to_le_bytes())?;
    for m in methods {
        push_name(w, m)?;
    }
    Ok(())
}

fn push_name(w: &mut FrameWriter, name: &str) -> Result<(), ProtocolError> {
    let n = u8::try_from(name.len()).map_err(|_| ProtocolError::Payload {
        frame: "HELLO",
        what: "name longer than 255 bytes",
    })?;
    w.push(&[n])?;
    w.push(name.as_bytes())
}

impl<'a> CallPayload<'a> {
    pub fn parse(p: &'a [u8]) -> Result<CallPayload<'a>, ProtocolError> {
        let mut c = Cursor {
            frame: FrameType::Call,
            rest: p,
        };
        let method = c.name("method name")?;
        Ok(CallPayload {
            method,
            input: c.rest,
        })
    }
}

/// Writes a CALL frame.
pub fn write_call(
    w: &mut FrameWriter,
    id: u64,
    method: &str,
    input: &[u8],
) -> Result<(), ProtocolError> {
    let n = u8::try_from(method.len())
        .ok()
        .filter(|_| check_name(method.as_bytes()).is_some())
        .ok_or(ProtocolError::Payload {
            frame: "CALL",
            what: "method name",
        })?;
    w.begin(FrameType::Call, id);
    w.push(&[n])?;
    w.push(method.as_bytes())?;
    w.push(input)
}

impl<'a> ErrorPayload<'a> {
    pub fn parse(p: &'a [u8]) -> Result<ErrorPayload<'a>, ProtocolError> {
        let mut c = Cursor {
            frame: FrameType::Error,
            rest: p,
        };
        let kind = c.u32("error kind")?;
        let kind = ErrorKind::from_u32(kind).ok_or(ProtocolError::Payload {
            frame: "ERROR",
            what: "unknown error kind",
        })?;
        let status = c.u32("status")? as i32;
        if c.rest.len() > MAX_ERROR_MESSAGE {
            return Err(c.bad("message longer than 4096 bytes"));
        }
        let message = std::str::from_utf8(c.rest).map_err(|_| c.bad("message is not UTF-8"))?;
        Ok(ErrorPayload {
            kind,
            status,
            message,
        })
    }
}

/// Writes an ERROR frame; the message is cut to MAX_ERROR_MESSAGE bytes at a character
/// boundary.
pub fn write_error(
    w: &mut FrameWriter,
    id: u64,
    kind: ErrorKind,
    status: i32,
    message: &str,
) -> Result<(), ProtocolError> {
    let mut end = message.len().min(MAX_ERROR_MESSAGE);
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    w.begin(FrameType::Error, id);
    w.push(&(kind as u32).to_le_bytes())?;
    w.push(&status.to_le_bytes())?;
    w.push(&message.as_bytes()[..end])
}

impl<'a> LogPayload<'a> {
    pub fn parse(p: &'a [u8]) -> Result<LogPayload<'a>, ProtocolError> {
        let mut c = Cursor {
            frame: FrameType::Log,
            rest: p,
        };
        let level = c.u32("level")?;
        if level > log_level::OUTPUT {
            return Err(c.bad("unknown log level"));
        }
        Ok(LogPayload {
            level,
            text: c.rest,
        })
    }
}

/// Writes a LOG frame, cutting the text to what fits in the cap.
pub fn write_log(
    w: &mut FrameWriter,
    id: u64,
    level: u32,
    text: &[u8],
) -> Result<(), ProtocolError> {
    let room = (w.cap() as usize).saturating_sub(4);
    w.begin(FrameType::Log, id);
    w.push(&level.to_le_bytes())?;
    w.push(&text[..text.len().min(room)])
}

/// SHUTDOWN must be empty.
pub fn check_shutdown(p: &[u8]) -> Result<(), ProtocolError> {
    if p.is_empty() {
        Ok(())
    } else {
        Err(ProtocolError::Payload {
            frame: "SHUTDOWN",
            what: "trailing bytes",
        })
    }
}
