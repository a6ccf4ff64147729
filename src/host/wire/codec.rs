//! The `plugjail host` wire format: pure encode and decode, no I/O (docs/host-protocol.md
//! is the byte-by-byte specification).
//!
//! The header is the plugin protocol's (docs/protocol.md): u32 payload length, u16 type,
//! u16 flags (0), u64 id, all little-endian, so a client writer needs one header shape for
//! both. The types are this protocol's own (0x101 and up) and so is the cap,
//! [`MAX_PAYLOAD`].
//!
//! Decoding is split in two, because the two kinds of damage call for different answers:
//! - [`decode_header`] refuses a header whose length cannot be trusted (flags not 0, a
//!   length above the cap): the reader cannot know where the next frame starts, so the
//!   connection ends ([`HeaderError`]). It never looks at the type: a frame of an unknown
//!   type with a sane length can be skipped and the stream stays in step;
//! - [`decode_request`] checks the type and the body: a bad one is refused
//!   ([`BadFrame`]) and the connection carries on.
//!
//! Every length the peer claims is compared with what is really there (or the cap) before
//! anything is reserved for it.

use std::path::PathBuf;

use serde::Deserialize;

/// Bytes in every header.
pub const HEADER_LEN: usize = 16;

/// The version in HELLO's `protocol` (docs/host-protocol.md, "Versioning").
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest payload either side sends or accepts: a plugin message of the default
/// profile's 16 MiB cap plus room for the CALL's ids and an ERROR's JSON.
pub const MAX_PAYLOAD: u32 = (16 << 20) + (64 << 10);

/// Frame types. The low byte echoes the plugin protocol's number for the same role
/// (HELLO 1, CALL 2, RESULT 3, ERROR 4, SHUTDOWN 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum FrameType {
    /// Server → client, first frame: `{"protocol": 1, "plugins": [...]}`.
    Hello = 0x101,
    /// Client → server: call a plugin's method.
    Call = 0x102,
    /// Server → client: a call's output.
    Result = 0x103,
    /// Server → client: a call or request failed, or a frame was refused (JSON).
    Error = 0x104,
    /// Server → client: one host event (JSON).
    Event = 0x105,
    /// Client → server: stop the host.
    Shutdown = 0x106,
    /// Client → server: cancel the call with this id.
    Cancel = 0x107,
    /// Client → server: pause, resume, release, status or upgrade.
    Control = 0x108,
    /// Server → client: a CONTROL request succeeded (JSON).
    Done = 0x109,
}

impl FrameType {
    pub fn from_u16(v: u16) -> Option<FrameType> {
        Some(match v {
            0x101 => FrameType::Hello,
            0x102 => FrameType::Call,
            0x103 => FrameType::Result,
            0x104 => FrameType::Error,
            0x105 => FrameType::Event,
            0x106 => FrameType::Shutdown,
            0x107 => FrameType::Cancel,
            0x108 => FrameType::Control,
            0x109 => FrameType::Done,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "HELLO",
            FrameType::Call => "CALL",
            FrameType::Result => "RESULT",
            FrameType::Error => "ERROR",
            FrameType::Event => "EVENT",
            FrameType::Shutdown => "SHUTDOWN",
            FrameType::Cancel => "CANCEL",
            FrameType::Control => "CONTROL",
            FrameType::Done => "DONE",
        }
    }
}

/// A header whose length is within the cap. The type is still the raw number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: u16,
    pub id: u64,
}

/// A header that puts the reader out of step: the connection cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("frame flags {flags:#06x} are not zero")]
    Flags { flags: u16 },
    #[error("frame length {len} exceeds the maximum of {MAX_PAYLOAD} bytes")]
    TooLarge { len: u32 },
}

/// Decodes a header; the length is checked against [`MAX_PAYLOAD`].
pub fn decode_header(b: &[u8; HEADER_LEN]) -> Result<Header, HeaderError> {
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let kind = u16::from_le_bytes([b[4], b[5]]);
    let flags = u16::from_le_bytes([b[6], b[7]]);
    let id = u64::from_le_bytes([b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]]);
    if flags != 0 {
        return Err(HeaderError::Flags { flags });
    }
    if len > MAX_PAYLOAD {
        return Err(HeaderError::TooLarge { len });
    }
    Ok(Header { len, kind, id })
}

/// A payload above [`MAX_PAYLOAD`]: it cannot be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD} bytes")]
pub struct TooLarge {
    pub len: usize,
}

/// One whole frame: header and payload in one buffer.
pub fn encode(kind: FrameType, id: u64, payload: &[u8]) -> Result<Vec<u8>, TooLarge> {
    let len = checked_len(payload.len())?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(kind as u16).to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

fn checked_len(len: usize) -> Result<u32, TooLarge> {
    u32::try_from(len)
        .ok()
        .filter(|n| *n <= MAX_PAYLOAD)
        .ok_or(TooLarge { len })
}

/// CONTROL operations (the body's first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Pause = 1,
    Resume = 2,
    Release = 3,
    Status = 4,
    Upgrade = 5,
}

impl Op {
    pub fn from_u8(v: u8) -> Option<Op> {
        Some(match v {
            1 => Op::Pause,
            2 => Op::Resume,
            3 => Op::Release,
            4 => Op::Status,
            5 => Op::Upgrade,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Pause => "pause",
            Op::Resume => "resume",
            Op::Release => "release",
            Op::Status => "status",
            Op::Upgrade => "upgrade",
        }
    }
}

/// The body of an upgrade request after the plugin id.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradeTo {
    pub plugin: PathBuf,
    #[serde(default)]
    pub profile: Option<PathBuf>,
}

/// A decoded request, borrowing from the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    Call {
        id: u64,
        plugin: &'a str,
        method: &'a str,
        input: &'a [u8],
    },
    Cancel {
        id: u64,
    },
    /// `plugin` is empty only for a status of every plugin.
    Control {
        id: u64,
        op: Op,
        plugin: &'a str,
        upgrade: Option<UpgradeTo>,
    },
    Shutdown,
}

/// A frame refused for its type or body; the stream is still in step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadFrame {
    #[error("unknown frame type {kind:#06x}")]
    UnknownType { kind: u16 },
    #[error("{} frames go from the server to the client", .kind.name())]
    NotARequest { kind: FrameType },
    #[error("{} frame with id 0 (ids of calls and requests are never 0)", .kind.name())]
    ZeroId { kind: FrameType },
    #[error("{} frame ends inside its {field}", .kind.name())]
    Truncated {
        kind: FrameType,
        field: &'static str,
    },
    #[error("{} frame: the {field} is not UTF-8", .kind.name())]
    Utf8 {
        kind: FrameType,
        field: &'static str,
    },
    #[error("{} frame: {len} bytes after the last field", .kind.name())]
    Trailing { kind: FrameType, len: usize },
    #[error("CONTROL frame: unknown operation {op}")]
    UnknownOp { op: u8 },
    #[error("CONTROL {} needs a plugin id", .op.name())]
    NoPlugin { op: Op },
    #[error("CONTROL upgrade: {message}")]
    Upgrade { message: String },
}

/// Decodes a request frame's type and body.
pub fn decode_request<'a>(h: &Header, body: &'a [u8]) -> Result<Request<'a>, BadFrame> {
    let kind = FrameType::from_u16(h.kind).ok_or(BadFrame::UnknownType { kind: h.kind })?;
    match kind {
        FrameType::Call => {
            nonzero(kind, h.id)?;
            let mut r = Fields { kind, rest: body };
            let plugin = r.name("plugin id")?;
            let method = r.name("method")?;
            Ok(Request::Call {
                id: h.id,
                plugin,
                method,
                input: r.rest,
            })
        }
        FrameType::Cancel => {
            nonzero(kind, h.id)?;
            empty(kind, body)?;
            Ok(Request::Cancel { id: h.id })
        }
        FrameType::Control => {
            nonzero(kind, h.id)?;
            decode_control(h.id, body)
        }
        FrameType::Shutdown => {
            empty(kind, body)?;
            Ok(Request::Shutdown)
        }
        FrameType::Hello
        | FrameType::Result
        | FrameType::Error
        | FrameType::Event
        | FrameType::Done => Err(BadFrame::NotARequest { kind }),
    }
}

fn decode_control(id: u64, body: &[u8]) -> Result<Request<'_>, BadFrame> {
    let kind = FrameType::Control;
    let (&op, rest) = body.split_first().ok_or(BadFrame::Truncated {
        kind,
        field: "operation",
    })?;
    let op = Op::from_u8(op).ok_or(BadFrame::UnknownOp { op })?;
    let mut r = Fields { kind, rest };
    let plugin = r.name("plugin id")?;
    if plugin.is_empty() && op != Op::Status {
        return Err(BadFrame::NoPlugin { op });
    }
    let upgrade = if op == Op::Upgrade {
        let to = serde_json::from_slice::<UpgradeTo>(r.rest).map_err(|e| BadFrame::Upgrade {
            message: e.to_string(),
        })?;
        Some(to)
    } else {
        empty(kind, r.rest)?;
        None
    };
    Ok(Request::Control {
        id,
        op,
        plugin,
        upgrade,
    })
}

fn nonzero(kind: FrameType, id: u64) -> Result<(), BadFrame> {
    if id == 0 {
        return Err(BadFrame::ZeroId { kind });
    }
    Ok(())
}

fn empty(kind: FrameType, body: &[u8]) -> Result<(), BadFrame> {
    if !body.is_empty() {
        return Err(BadFrame::Trailing {
            kind,
            len: body.len(),
        });
    }
    Ok(())
}

/// Reads fields off the front of a body.
struct Fields<'a> {
    kind: FrameType,
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// A u16 length and that many bytes of UTF-8.
    fn name(&mut self, field: &'static str) -> Result<&'a str, BadFrame> {
        let truncated = BadFrame::Truncated {
            kind: self.kind,
            field,
        };
        let (len, rest) = self.rest.split_at_checked(2).ok_or(truncated.clone())?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let (bytes, rest) = rest.split_at_checked(len).ok_or(truncated)?;
        let s = std::str::from_utf8(bytes).map_err(|_| BadFrame::Utf8 {
            kind: self.kind,
            field,
        })?;
        self.rest = rest;
        Ok(s)
    }
}

/// Why a request cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("a name of {len} bytes does not fit its u16 length")]
    Name { len: usize },
    #[error("an upgrade path is not UTF-8 (JSON cannot carry it)")]
    Path,
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
}

/// Encodes a request (the client's side; the tests and clients written in Rust use it).
pub fn encode_request(req: &Request<'_>) -> Result<Vec<u8>, EncodeError> {
    let mut body = Vec::new();
    let (kind, id) = match req {
        Request::Call {
            id,
            plugin,
            method,
            input,
        } => {
            put_name(&mut body, plugin)?;
            put_name(&mut body, method)?;
            body.extend_from_slice(input);
            (FrameType::Call, *id)
        }
        Request::Cancel { id } => (FrameType::Cancel, *id),
        Request::Control {
            id,
            op,
            plugin,
            upgrade,
        } => {
            body.push(*op as u8);
            put_name(&mut body, plugin)?;
            if let Some(to) = upgrade {
                let json = serde_json::to_vec(to).map_err(|_| EncodeError::Path)?;
                body.extend_from_slice(&json);
            }
            (FrameType::Control, *id)
        }
        Request::Shutdown => (FrameType::Shutdown, 0),
    };
    Ok(encode(kind, id, &body)?)
}

fn put_name(out: &mut Vec<u8>, s: &str) -> Result<(), EncodeError> {
    let len = u16::try_from(s.len()).map_err(|_| EncodeError::Name { len: s.len() })?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}
