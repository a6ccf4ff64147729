//! The frame codec: a 16-byte little-endian header, then the payload.
//!
//! ```text
//! offset 0  u32 payload length (bytes after the header; at most the session's cap)
//! offset 4  u16 frame type (FrameType)
//! offset 6  u16 flags, always 0
//! offset 8  u64 call id
//! ```
//!
//! [`FrameReader`] reads one frame at a time into a buffer it keeps between frames. It
//! checks the header before it reserves anything, and reserves exactly the payload length,
//! so its buffer never holds more than `cap` bytes of payload whatever the peer sends
//! (plus a fixed 4 KiB read-ahead, so a small frame costs one `read`).

use std::io;

use super::ProtocolError;
use super::consts::{FrameType, HEADER_LEN};

/// A decoded header; the length is already checked against the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub len: u32,
    pub kind: FrameType,
    pub id: u64,
}

/// Decodes and validates a header. Pure: no I/O, no allocation.
pub fn decode_header(b: &[u8; HEADER_LEN], cap: u32) -> Result<Header, ProtocolError> {
    let len = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let kind = u16::from_le_bytes([b[4], b[5]]);
    let flags = u16::from_le_bytes([b[6], b[7]]);
    let mut id = [0u8; 8];
    id.copy_from_slice(&b[8..16]);
    let id = u64::from_le_bytes(id);
    let kind = FrameType::from_u16(kind).ok_or(ProtocolError::UnknownType { kind })?;
    if flags != 0 {
        return Err(ProtocolError::Flags { flags });
    }
    if len > cap {
        return Err(ProtocolError::TooLarge { len, cap });
    }
    Ok(Header { len, kind, id })
}

/// Encodes a header.
pub fn encode_header(kind: FrameType, len: u32, id: u64) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b[4..6].copy_from_slice(&(kind as u16).to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b
}

/// One frame, borrowing its payload from the reader's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub kind: FrameType,
    pub id: u64,
    pub payload: &'a [u8],
}

/// Why no frame was read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The channel closed cleanly, between two frames.
    #[error("channel closed")]
    Eof,
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The byte source failed (including a deadline, as `io::ErrorKind::TimedOut`).
    #[error("channel read: {0}")]
    Io(io::Error),
}

/// Bytes of read-ahead: one `read` fetches a small frame whole (header and payload)
/// instead of one `read` for the header and one for the payload. A fixed size, allocated
/// once, whatever the peer sends.
pub const READ_AHEAD: usize = 4096;

/// Reads frames with a reused buffer that never exceeds the cap.
///
/// Bytes come in through a fixed read-ahead buffer: a frame that fits in it costs one
/// `read`, and bytes of the next frame that arrived with it stay there for the next call.
/// Payload remainders of at least [`READ_AHEAD`] bytes are read straight into the
/// payload buffer, so large frames are not copied twice.
#[derive(Debug)]
pub struct FrameReader {
    buf: Vec<u8>,
    cap: u32,
    ahead: Box<[u8]>,
    /// `ahead[lo..hi]` is read but not yet consumed.
    lo: usize,
    hi: usize,
}

impl FrameReader {
    pub fn new(cap: u32) -> FrameReader {
        FrameReader {
            buf: Vec::new(),
            cap,
            ahead: vec![0u8; READ_AHEAD].into_boxed_slice(),
            lo: 0,
            hi: 0,
        }
    }

    /// Bytes already read from the source but not yet returned as (part of) a frame:
    /// when nonzero, the next [`FrameReader::read`] may not need the source at all.
    pub fn buffered(&self) -> usize {
        self.hi - self.lo
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    /// Changes the cap for the frames still to come (bytes read ahead are kept).
    pub fn set_cap(&mut self, cap: u32) {
        self.cap = cap;
    }

    /// Bytes reserved for payloads so far: never more than the cap.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The payload of the frame read last, given its length (for callers that had to
    /// drop the borrow of [`FrameReader::read`]).
    pub fn last_payload(&self, len: usize) -> &[u8] {
        &self.buf[..len.min(self.buf.len())]
    }

    /// Reads one frame. `read` is `read(2)`-like: fills a prefix of the slice and returns
    /// how many bytes, 0 at end of input. It is called only when the read-ahead does not
    /// already hold what is needed.
    ///
    /// After an error the stream's position is unknown: the read-ahead is emptied, so a
    /// reader never hands out bytes that followed a failure.
    pub fn read<R>(&mut self, read: R) -> Result<Frame<'_>, ReadError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        match self.read_frame(read) {
            Ok(h) => Ok(Frame {
                kind: h.kind,
                id: h.id,
                payload: &self.buf[..h.len as usize],
            }),
            Err(e) => {
                (self.lo, self.hi) = (0, 0);
                Err(e)
            }
        }
    }

    /// [`FrameReader::read`] without the clean-up; returns the header, the payload is
    /// `buf[..len]`.
    fn read_frame<R>(&mut self, mut read: R) -> Result<Header, ReadError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        while self.buffered() < HEADER_LEN {
            if self.refill(&mut read)? == 0 {
                break;
            }
        }
        let got = self.buffered();
        if got == 0 {
            return Err(ReadError::Eof);
        }
        if got < HEADER_LEN {
            return Err(truncated(got, HEADER_LEN));
        }
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&self.ahead[self.lo..self.lo + HEADER_LEN]);
        // The cap is checked here, before anything is reserved for the payload.
        let h = decode_header(&head, self.cap)?;
        self.lo += HEADER_LEN;
        let len = h.len as usize;
        if self.buf.len() < len {
            // Exactly the payload length (at most the cap): `resize` alone may double.
            self.buf.reserve_exact(len - self.buf.len());
            self.buf.resize(len, 0);
        }
        let mut done = self.take(0, len);
        while done < len {
            let n = if len - done >= READ_AHEAD {
                // The read-ahead is empty (take() emptied it): big remainders go
                // straight into the payload buffer, one copy less.
                read_some(&mut read, &mut self.buf[done..len])?
            } else {
                let n = self.refill(&mut read)?;
                if n > 0 {
                    self.take(done, len) - done
                } else {
                    0
                }
            };
            if n == 0 {
                return Err(truncated(HEADER_LEN + done, HEADER_LEN + len));
            }
            done += n;
        }
        Ok(h)
    }

    /// Moves read-ahead bytes into `buf[from..to]`; returns the new end of what `buf`
    /// holds.
    fn take(&mut self, from: usize, to: usize) -> usize {
        let n = self.buffered().min(to - from);
        self.buf[from..from + n].copy_from_slice(&self.ahead[self.lo..self.lo + n]);
        self.lo += n;
        from + n
    }

    /// One `read` into the free end of the read-ahead (moving unconsumed bytes to the
    /// front first); returns the bytes read, 0 at end of input.
    fn refill<R>(&mut self, read: &mut R) -> Result<usize, ReadError>
    where
        R: FnMut(&mut [u8]) -> io::Result<usize>,
    {
        if self.lo == self.hi {
            (self.lo, self.hi) = (0, 0);
        } else if self.lo > 0 {
            self.ahead.copy_within(self.lo..self.hi, 0);
            (self.lo, self.hi) = (0, self.hi - self.lo);
        }
        let n = read_some(read, &mut self.ahead[self.hi..])?;
        self.hi += n;
        Ok(n)
    }
}

fn truncated(got: usize, want: usize) -> ReadError {
    ReadError::Protocol(ProtocolError::Truncated { got, want })
}

/// One `read` (retried on EINTR); returns the bytes read, 0 at end of input. Callers
/// only ask with a non-empty `buf`.
fn read_some<R>(read: &mut R, buf: &mut [u8]) -> Result<usize, ReadError>
where
    R: FnMut(&mut [u8]) -> io::Result<usize>,
{
    loop {
        match read(buf) {
            // A source that claims more than it was given cannot overrun the buffer.
            Ok(n) => return Ok(n.min(buf.len())),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}

/// Builds frames in a reused buffer: header space first, payload appended, length patched
/// at the end, so a frame goes out in one `write`.
#[derive(Debug)]
pub struct FrameWriter {
    buf: Vec<u8>,
    cap: u32,
}

impl FrameWriter {
    pub fn new(cap: u32) -> FrameWriter {
        FrameWriter {
            buf: Vec::new(),
            cap,
        }
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    pub fn set_cap(&mut self, cap: u32) {
        self.cap = cap;
    }

    /// Starts a frame, discarding any unfinished one.
    pub fn begin(&mut self, kind: FrameType, id: u64) {
        self.buf.clear();
        self.buf.extend_from_slice(&encode_header(kind, 0, id));
    }

    /// Payload bytes so far.
    pub fn payload_len(&self) -> usize {
        self.buf.len().saturating_sub(HEADER_LEN)
    }

    /// Appends payload bytes; refuses (appending nothing) past the cap.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        let len = self.payload_len() + bytes.len();
        if len > self.cap as usize {
            return Err(ProtocolError::TooLarge {
                len: u32::try_from(len).unwrap_or(u32::MAX),
                cap: self.cap,
            });
        }
        self.buf.extend_from_slice(bytes);
        Ok(())
    }

    /// Drops payload bytes after `len` (to undo a partial payload).
    pub fn truncate_payload(&mut self, len: usize) {
        self.buf.truncate(HEADER_LEN + len);
    }

    /// Patches the length as if `extra` more payload bytes followed, and returns the
    /// frame's start (header and payload so far): for a caller that sends the rest from
    /// where it lies (`writev`) instead of copying it in. Refuses past the cap.
    pub fn finish_with(&mut self, extra: usize) -> Result<&[u8], ProtocolError> {
        let len = self.payload_len().saturating_add(extra);
        let len =
            u32::try_from(len)
                .ok()
                .filter(|&l| l <= self.cap)
                .ok_or(ProtocolError::TooLarge {
                    len: u32::try_from(len).unwrap_or(u32::MAX),
                    cap: self.cap,
                })?;
        if self.buf.len() < HEADER_LEN {
            return Ok(&[]);
        }
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        Ok(&self.buf)
    }

    /// Patches the length and returns the whole frame.
    pub fn finish(&mut self) -> &[u8] {
        if self.buf.len() < HEADER_LEN {
            return &[];
        }
        // push() kept the payload within the u32 cap, so this cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        let len = self.payload_len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_le_bytes());
        &self.buf
    }
}
