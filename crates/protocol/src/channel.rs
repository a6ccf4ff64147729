//! The host side of a session: a [`Channel`] over the pipe pair to one stub.
//!
//! It reads the stub's HELLO, then runs one call at a time: a CALL frame out, LOG frames
//! (handed to a callback, never accumulated) and one RESULT or ERROR back, all under a
//! deadline enforced with poll(2). Both buffers are kept between calls, so a call
//! allocates nothing once the buffers have grown to the largest frame seen (at most the
//! cap). After a protocol violation, a timeout or the end of the channel the stream's
//! position is unknown, so the channel refuses further calls.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::ProtocolError;
use super::consts::{
    ABI_VERSION, ErrorKind, FrameType, HEADER_LEN, MIN_MAX_MESSAGE, PROTOCOL_VERSION,
};
use super::frame::{FrameReader, FrameWriter, ReadError};
use super::payload::{self, ErrorPayload, Hello, LogPayload, SessionInfo};
use super::shm::{HostRing, ShmError, host::Waited};

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The stub broke the protocol: the `protocol_violation` verdict.
    #[error("protocol violation: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("no answer within {after:?}")]
    Timeout { after: Duration },
    /// The stub closed the channel (it exited or was killed; the supervisor says why).
    #[error("the plugin closed the channel")]
    Closed,
    /// The stub had closed its end before the CALL was written (it exited or was
    /// killed): the call never reached the plugin, so it may safely go elsewhere.
    #[error("the plugin had closed the channel before the call reached it")]
    NotDelivered,
    #[error("channel {syscall}: {source}")]
    Io {
        syscall: &'static str,
        source: io::Error,
    },
    /// The call failed inside the plugin or the stub; the session goes on.
    #[error("{} error{}: {message}", kind.name(), status_note(*status))]
    Remote {
        kind: ErrorKind,
        status: i32,
        message: String,
    },
    /// The stub could not start the plugin (ERROR with call id 0). `status` is what
    /// init() returned (kind `init_failed`), else 0.
    #[error("plugin did not start ({}){}: {message}", kind.name(), status_note(*status))]
    Startup {
        kind: ErrorKind,
        status: i32,
        message: String,
    },
    #[error("input of {len} bytes does not fit in a frame of at most {cap} bytes")]
    InputTooLarge { len: usize, cap: u32 },
    #[error("the channel is unusable after an earlier failure")]
    Broken,
    #[error("call before the HELLO handshake")]
    NotReady,
    /// The shared-memory region failed on the host's side (docs/protocol.md,
    /// "Shared-memory calls").
    #[error(transparent)]
    Shm(#[from] ShmError),
}

fn status_note(status: i32) -> String {
    if status == 0 {
        String::new()
    } else {
        format!(" (status {status})")
    }
}

impl ChannelError {
    /// True when the session can go on after this error.
    pub fn is_call_error(&self) -> bool {
        matches!(
            self,
            ChannelError::Remote { .. } | ChannelError::InputTooLarge { .. }
        )
    }
}

/// A LOG frame's receiver: level (`consts::log_level`) and text.
pub type LogHandler = Box<dyn FnMut(u32, &[u8]) + Send>;

pub struct Channel {
    read: OwnedFd,
    write: OwnedFd,
    reader: FrameReader,
    writer: FrameWriter,
    next_id: u64,
    hello: Option<Hello>,
    broken: bool,
    on_log: LogHandler,
    /// Length of the last call's output, which stays in the reader's buffer.
    last_output: usize,
    /// `plugjail serve`'s SESSION frame: awaited first (`Some(None)`), then read.
    session: Option<Option<SessionInfo>>,
    /// The shared-memory transport, once attached: CALLs and their answers go through it,
    /// the pipe carries LOG frames only.
    shm: Option<Box<HostRing>>,
    /// Frames read from the pipe since HELLO (compared with the stub's count in the
    /// region, to know whether LOG frames wait).
    pipe_frames: u64,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("read", &self.read)
            .field("write", &self.write)
            .field("cap", &self.reader.cap())
            .field("hello", &self.hello)
            .field("broken", &self.broken)
            .finish()
    }
}

impl Channel {
    /// Takes the host's ends of the two pipes: `read` receives the stub's frames, `write`
    /// carries CALLs. `max_message` is the profile's `limits.max_message` (payload bytes);
    /// values above u32::MAX are clamped. The write end becomes non-blocking so a stub that
    /// stops reading cannot hold a call past its deadline, and the read end so a read can
    /// be tried before polling (a waiting reply costs one syscall); both pipes are enlarged
    /// (best effort) to hold a whole frame when the system allows.
    pub fn new(read: OwnedFd, write: OwnedFd, max_message: u64) -> Result<Channel, ChannelError> {
        let cap = u32::try_from(max_message).unwrap_or(u32::MAX);
        for fd in [&write, &read] {
            set_nonblocking(fd.as_raw_fd()).map_err(|source| ChannelError::Io {
                syscall: "fcntl(F_SETFL)",
                source,
            })?;
        }
        let want = (cap as usize).saturating_add(HEADER_LEN);
        size_pipe(read.as_raw_fd(), want);
        size_pipe(write.as_raw_fd(), want);
        Ok(Channel {
            read,
            write,
            reader: FrameReader::new(cap),
            writer: FrameWriter::new(cap),
            next_id: 1,
            hello: None,
            broken: false,
            on_log: Box::new(|_, _| {}),
            last_output: 0,
            session: None,
            shm: None,
            pipe_frames: 0,
        })
    }

    /// A channel to a `plugjail serve` session: its first frame is SESSION, which sets the
    /// cap (4096 until then) and says the profile's deadlines ([`Channel::session`]).
    pub fn for_serve(read: OwnedFd, write: OwnedFd) -> Result<Channel, ChannelError> {
        let mut c = Channel::new(read, write, u64::from(MIN_MAX_MESSAGE))?;
        c.session = Some(None);
        Ok(c)
    }

    /// The SESSION frame, once [`Channel::handshake`] has read it (serve sessions only).
    pub fn session(&self) -> Option<&SessionInfo> {
        self.session.as_ref().and_then(Option::as_ref)
    }

    /// Where LOG frames go (by default they are dropped).
    pub fn set_log_handler(&mut self, f: LogHandler) {
        self.on_log = f;
    }

    /// The HELLO, once [`Channel::handshake`] has succeeded.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Bytes the read buffers hold reserved: never more than the cap.
    pub fn read_capacity(&self) -> usize {
        let shm = self.shm.as_ref().map_or(0, |r| r.out_capacity());
        self.reader.capacity().max(shm)
    }

    /// Sends the calls from now on through a shared-memory region whose descriptor the
    /// stub was given (`plugjail serve --shm-fd`); the pipe then carries LOG frames only.
    pub fn attach_shm(&mut self, ring: Box<HostRing>) {
        self.shm = Some(ring);
    }

    /// True when calls go through shared memory.
    pub fn uses_shm(&self) -> bool {
        self.shm.is_some()
    }

    /// Waits for HELLO (or the stub's startup ERROR), skipping LOG frames.
    pub fn handshake(&mut self, timeout: Duration) -> Result<&Hello, ChannelError> {
        if self.broken {
            return Err(ChannelError::Broken);
        }
        let r = self.handshake_inner(timeout);
        if r.is_err() {
            self.broken = true;
        }
        r?;
        self.hello.as_ref().ok_or(ChannelError::NotReady)
    }

    fn handshake_inner(&mut self, timeout: Duration) -> Result<(), ChannelError> {
        if self.hello.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let fd = self.read.as_raw_fd();
            let frame = self
                .reader
                .read(|b| read_before(fd, b, deadline))
                .map_err(|e| read_error(e, timeout))?;
            let awaiting_session = self.session == Some(None);
            match frame.kind {
                // Only as the very first frame: written by plugjail before the jail existed.
                FrameType::Session if awaiting_session => {
                    let info = SessionInfo::parse(frame.payload)?;
                    self.reader.set_cap(info.max_message);
                    self.writer.set_cap(info.max_message);
                    let want = (info.max_message as usize).saturating_add(HEADER_LEN);
                    size_pipe(self.read.as_raw_fd(), want);
                    size_pipe(self.write.as_raw_fd(), want);
                    self.session = Some(Some(info));
                }
                _ if awaiting_session => {
                    return Err(unexpected(frame.kind, "before plugjail's SESSION"));
                }
                FrameType::Log => {
                    let log = LogPayload::parse(frame.payload)?;
                    (self.on_log)(log.level, log.text);
                }
                FrameType::Hello => {
                    self.pipe_frames = 0;
                    let hello = Hello::parse(frame.payload)?;
                    check_version("protocol", hello.protocol_version, PROTOCOL_VERSION)?;
                    check_version("abi", hello.abi_version, ABI_VERSION)?;
                    self.hello = Some(hello);
                    return Ok(());
                }
                FrameType::Error if frame.id == 0 => {
                    let e = ErrorPayload::parse(frame.payload)?;
                    return Err(ChannelError::Startup {
                        kind: e.kind,
                        status: e.status,
                        message: e.message.to_string(),
                    });
                }
                other => {
                    return Err(unexpected(other, "before HELLO"));
                }
            }
        }
    }

    /// Calls `method` with `input`; returns the output, borrowed from the channel's
    /// buffer until the next call. `timeout` bounds the whole exchange.
    pub fn call(
        &mut self,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<&[u8], ChannelError> {
        if self.broken {
            return Err(ChannelError::Broken);
        }
        if self.hello.is_none() {
            return Err(ChannelError::NotReady);
        }
        self.last_output = 0;
        let id = self.next_id;
        self.next_id += 1;
        if self.shm.is_some() {
            return match self.call_shm(id, method, input, timeout) {
                Ok(len) => {
                    self.last_output = len;
                    Ok(self.last_output())
                }
                Err(e) => {
                    if !e.is_call_error() {
                        self.broken = true;
                    }
                    Err(e)
                }
            };
        }
        // The header and method name are built in the writer; the input is sent from
        // where it lies (writev), not copied into the frame first.
        let too_large = |cap| ChannelError::InputTooLarge {
            len: input.len() + method.len() + 1,
            cap,
        };
        if let Err(e) = payload::write_call(&mut self.writer, id, method, &[]) {
            return Err(match e {
                ProtocolError::TooLarge { cap, .. } => too_large(cap),
                other => ChannelError::Protocol(other),
            });
        }
        let head = match self.writer.finish_with(input.len()) {
            Ok(head) => head,
            Err(ProtocolError::TooLarge { cap, .. }) => return Err(too_large(cap)),
            Err(other) => return Err(ChannelError::Protocol(other)),
        };
        let deadline = Instant::now() + timeout;
        let fd = self.write.as_raw_fd();
        if let Err(e) = write_before(fd, head, input, deadline) {
            self.broken = true;
            return Err(match e.kind() {
                io::ErrorKind::TimedOut => ChannelError::Timeout { after: timeout },
                // No reader left: the stub cannot have read the whole frame, so the call
                // did not run.
                io::ErrorKind::BrokenPipe => ChannelError::NotDelivered,
                _ => ChannelError::Io {
                    syscall: "write",
                    source: e,
                },
            });
        }
        match self.await_reply(id, timeout, deadline) {
            Ok(len) => {
                self.last_output = len;
                Ok(self.reader_payload(len))
            }
            Err(e) => {
                if !e.is_call_error() {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }

    /// Reads frames until the reply to `id`; returns the RESULT payload's length (the
    /// payload stays in the reader's buffer).
    fn await_reply(
        &mut self,
        id: u64,
        timeout: Duration,
        deadline: Instant,
    ) -> Result<usize, ChannelError> {
        loop {
            let fd = self.read.as_raw_fd();
            let frame = self
                .reader
                .read(|b| read_before(fd, b, deadline))
                .map_err(|e| read_error(e, timeout))?;
            match frame.kind {
                FrameType::Log => {
                    let log = LogPayload::parse(frame.payload)?;
                    (self.on_log)(log.level, log.text);
                    continue;
                }
                FrameType::Result | FrameType::Error if frame.id != id => {
                    return Err(ProtocolError::WrongId {
                        frame: frame.kind.name(),
                        got: frame.id,
                        want: id,
                    }
                    .into());
                }
                FrameType::Result => return Ok(frame.payload.len()),
                FrameType::Error => return Err(call_error(frame.payload)),
                other => return Err(unexpected(other, "during a call")),
            }
        }
    }

    /// One call through the shared-memory region; returns the RESULT's length (the payload
    /// is in the ring's own buffer, copied out of the region).
    fn call_shm(
        &mut self,
        id: u64,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<usize, ChannelError> {
        let Some(ring) = self.shm.as_mut() else {
            return Err(ChannelError::NotReady);
        };
        let area = ring.request_payload();
        let cap = u32::try_from(area)
            .unwrap_or(u32::MAX)
            .min(self.writer.cap());
        let too_large = ChannelError::InputTooLarge {
            len: input.len() + method.len() + 1,
            cap,
        };
        if input.len() + method.len() + 1 > cap as usize {
            return Err(too_large);
        }
        if payload::write_call(&mut self.writer, id, method, &[]).is_err() {
            return Err(too_large);
        }
        let head =
            self.writer
                .finish_with(input.len())
                .map_err(|_| ChannelError::InputTooLarge {
                    len: input.len() + method.len() + 1,
                    cap,
                })?;
        let deadline = Instant::now() + timeout;
        let seq = ring.send(head, input)?;
        let fd = self.read.as_raw_fd();
        let (reader, on_log, frames) = (&mut self.reader, &mut self.on_log, &mut self.pipe_frames);
        let waited = ring.wait(seq, deadline, || {
            drain_logs(fd, reader, on_log, frames, deadline, timeout)
        });
        ring.scrub();
        if waited? == Waited::TimedOut {
            return Err(ChannelError::Timeout { after: timeout });
        }
        let (h, stub_frames) = ring.take_answer(self.reader.cap())?;
        if stub_frames != self.pipe_frames {
            drain_logs(
                fd,
                &mut self.reader,
                &mut self.on_log,
                &mut self.pipe_frames,
                deadline,
                timeout,
            )?;
        }
        let len = h.len as usize;
        match h.kind {
            FrameType::Result | FrameType::Error if h.id != id => Err(ProtocolError::WrongId {
                frame: h.kind.name(),
                got: h.id,
                want: id,
            }
            .into()),
            FrameType::Result => Ok(len),
            FrameType::Error => Err(call_error(ring.answer(len))),
            other => Err(unexpected(other, "in the shared-memory response area")),
        }
    }

    fn reader_payload(&self, len: usize) -> &[u8] {
        self.reader.last_payload(len)
    }

    /// The output of the last successful [`Channel::call`] (empty before the first): for
    /// callers that had to drop the borrow `call` returned.
    pub fn last_output(&self) -> &[u8] {
        match &self.shm {
            Some(ring) => ring.answer(self.last_output),
            None => self.reader.last_payload(self.last_output),
        }
    }

    /// Asks the stub to finish (best effort) and closes the channel.
    pub fn shutdown(mut self) {
        if self.broken {
            return;
        }
        if let Some(ring) = self.shm.as_mut() {
            ring.shutdown();
            return;
        }
        self.writer.begin(FrameType::Shutdown, 0);
        let deadline = Instant::now() + Duration::from_secs(1);
        let _ = write_before(self.write.as_raw_fd(), self.writer.finish(), &[], deadline);
    }
}

fn check_version(what: &'static str, got: u32, want: u32) -> Result<(), ProtocolError> {
    if got == want {
        Ok(())
    } else {
        Err(ProtocolError::Version { what, got, want })
    }
}

/// The ERROR answering a call: the plugin's error, or a violation if it is of a kind only
/// startup may send (the stub's own load and init failures, never a call's).
fn call_error(payload: &[u8]) -> ChannelError {
    let e = match ErrorPayload::parse(payload) {
        Ok(e) => e,
        Err(err) => return err.into(),
    };
    if matches!(
        e.kind,
        ErrorKind::LoadFailed
            | ErrorKind::AbiMismatch
            | ErrorKind::InitFailed
            | ErrorKind::FilterFailed
    ) {
        return unexpected(FrameType::Error, "of a startup kind after HELLO");
    }
    ChannelError::Remote {
        kind: e.kind,
        status: e.status,
        message: e.message.to_string(),
    }
}

fn unexpected(kind: FrameType, state: &'static str) -> ChannelError {
    ChannelError::Protocol(ProtocolError::Unexpected {
        frame: kind.name(),
        state,
    })
}

/// Reads the LOG frames waiting in the pipe during a shared-memory call, without waiting
/// for more: a frame begun is read to its end (within the deadline). Anything but LOG is a
/// violation (the answer comes through the region); end of file means the stub is gone.
fn drain_logs(
    fd: RawFd,
    reader: &mut FrameReader,
    on_log: &mut LogHandler,
    count: &mut u64,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), ChannelError> {
    loop {
        // Only a frame not yet begun may find the pipe empty: then the drain is over.
        let mut first = reader.buffered() == 0;
        let frame = reader.read(|b| {
            if std::mem::take(&mut first) {
                // SAFETY: `b` is a valid writable slice; the fd is non-blocking.
                let n = unsafe { libc::read(fd, b.as_mut_ptr().cast(), b.len()) };
                // Negative: failed (errno).
                return usize::try_from(n).map_err(|_| io::Error::last_os_error());
            }
            read_before(fd, b, deadline)
        });
        match frame {
            Ok(f) if f.kind == FrameType::Log => {
                let log = LogPayload::parse(f.payload)?;
                on_log(log.level, log.text);
                *count += 1;
            }
            Ok(f) => {
                return Err(unexpected(
                    f.kind,
                    "on the pipe during a shared-memory call",
                ));
            }
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(read_error(e, timeout)),
        }
    }
}

fn read_error(e: ReadError, timeout: Duration) -> ChannelError {
    match e {
        ReadError::Eof => ChannelError::Closed,
        ReadError::Protocol(p) => ChannelError::Protocol(p),
        ReadError::Io(e) if e.kind() == io::ErrorKind::TimedOut => {
            ChannelError::Timeout { after: timeout }
        }
        ReadError::Io(source) => ChannelError::Io {
            syscall: "read",
            source,
        },
    }
}

/// Waits for `events` on `fd` until `deadline`; TimedOut when it passes.
fn wait(fd: RawFd, events: libc::c_short, deadline: Instant) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // Round up so a sub-millisecond remainder still waits instead of spinning.
        let ms = i32::try_from(left.as_millis().saturating_add(1)).unwrap_or(i32::MAX);
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd on the stack, count 1.
        let r = unsafe { libc::poll(&mut p, 1, ms) };
        if r > 0 {
            // POLLHUP/POLLERR also end the wait: the read or write reports them.
            return Ok(());
        }
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }
}

/// Reads what is there (the fd is non-blocking) and polls only when nothing is: a reply
/// that is already waiting costs one syscall, not two. The deadline is checked on every
/// attempt (a clock read, no syscall), so a stub that never stops sending cannot hold
/// the host past it.
fn read_before(fd: RawFd, buf: &mut [u8], deadline: Instant) -> io::Result<usize> {
    loop {
        if Instant::now() >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        // SAFETY: `buf` is a valid writable slice of buf.len() bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        // Negative: failed (errno).
        if let Ok(n) = usize::try_from(n) {
            return Ok(n);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => wait(fd, libc::POLLIN, deadline)?,
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
}

/// Writes `head` then `tail` (one `writev` when the pipe takes both), waiting for room
/// until `deadline`.
fn write_before(fd: RawFd, mut head: &[u8], mut tail: &[u8], deadline: Instant) -> io::Result<()> {
    while !head.is_empty() || !tail.is_empty() {
        let iov = [
            libc::iovec {
                iov_base: head.as_ptr().cast_mut().cast(),
                iov_len: head.len(),
            },
            libc::iovec {
                iov_base: tail.as_ptr().cast_mut().cast(),
                iov_len: tail.len(),
            },
        ];
        // SAFETY: two iovecs over live slices that outlive the call; the kernel only
        // reads through them (writev); the fd is non-blocking.
        let n = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        // Negative: failed (errno).
        if let Ok(n) = usize::try_from(n) {
            let from_head = n.min(head.len());
            head = &head[from_head..];
            tail = &tail[(n - from_head).min(tail.len())..];
            continue;
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::WouldBlock => wait(fd, libc::POLLOUT, deadline)?,
            io::ErrorKind::Interrupted => {}
            _ => return Err(e),
        }
    }
    Ok(())
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: integer fcntl calls on an fd the caller owns.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Asks for a pipe buffer of at least `bytes` (capped at fs.pipe-max-size by the kernel
/// for unprivileged users); best effort: a smaller pipe only costs more wake-ups.
/// Returns the size the pipe has afterwards, or None if `fd` is not a pipe.
pub fn size_pipe(fd: RawFd, bytes: usize) -> Option<usize> {
    const MAX: libc::c_int = 1 << 20; // the default fs.pipe-max-size
    let want = libc::c_int::try_from(bytes).unwrap_or(MAX).clamp(4096, MAX);
    // SAFETY: integer fcntl on an fd the caller owns; fails harmlessly on non-pipes.
    unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, want) };
    // SAFETY: as above.
    let now = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    usize::try_from(now).ok()
}
