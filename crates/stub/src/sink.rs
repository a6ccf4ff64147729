//! Everything the stub writes to the host goes through one lock, so a LOG frame from a
//! plugin thread can never interleave with a RESULT frame from the stub's thread.
//!
//! In the jail the channel only arrives at the switch, after the plugin's init: frames
//! written before that (init's log lines) wait in memory, bounded by the budgets below.
//!
//! Budgets keep a noisy plugin from flooding the host: each call (and init) may produce
//! at most [`LOG_BUDGET`] bytes of log text and [`OUTPUT_BUDGET`] bytes of forwarded
//! stdout/stderr; the rest is dropped and the host told once how much.

use std::ffi::c_int;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use plugjail_protocol::consts::{LOG_BUDGET, OUTPUT_BUDGET, log_level};

/// Longest single log line (longer ones are cut).
pub const MAX_LOG_LINE: usize = 16 << 10;
use plugjail_protocol::frame::FrameWriter;
use plugjail_protocol::payload;

/// How much more output one drain reads and discards before giving up (a plugin thread
/// may keep writing while the stub drains).
const DISCARD_LIMIT: usize = 4 << 20;

struct Sink {
    /// The channel's write end; `None` until the channel arrives.
    fd: Option<RawFd>,
    /// Frames written before the channel arrived.
    pending: Vec<u8>,
    log: FrameWriter,
    call_id: u64,
    log_used: usize,
    log_dropped: usize,
    /// A write to the host failed: the channel is gone, stop writing.
    dead: bool,
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);

/// Writes to the channel that completed (one per frame once the channel is connected):
/// the shared-memory transport tells the host by it whether LOG frames wait in the pipe.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Frames (whole writes) delivered to the channel so far.
pub fn writes() -> u64 {
    WRITES.load(Ordering::Acquire)
}

fn with<R>(f: impl FnOnce(&mut Sink) -> R) -> Option<R> {
    let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
    g.as_mut().map(f)
}

/// Sets up the sink; frames wait in memory until [`connect`].
pub fn init(cap: u32) {
    let mut g = SINK.lock().unwrap_or_else(|e| e.into_inner());
    *g = Some(Sink {
        fd: None,
        pending: Vec::new(),
        log: FrameWriter::new(cap),
        call_id: 0,
        log_used: 0,
        log_dropped: 0,
        dead: false,
    });
}

/// Points the sink at the channel's write end and sends what waited.
pub fn connect(fd: RawFd) -> Result<(), i32> {
    with(|s| {
        s.fd = Some(fd);
        let pending = std::mem::take(&mut s.pending);
        s.write(&pending)
    })
    .unwrap_or(Err(libc::EBADF))
}

/// Writes one whole frame to the host. Err(errno) if the channel failed.
pub fn send(frame: &[u8]) -> Result<(), i32> {
    with(|s| s.write(frame)).unwrap_or(Err(libc::EBADF))
}

impl Sink {
    fn write(&mut self, frame: &[u8]) -> Result<(), i32> {
        deliver(self.fd, &mut self.pending, &mut self.dead, frame)
    }
}

/// Writes `frame` to the channel, or keeps it until the channel arrives.
fn deliver(
    fd: Option<RawFd>,
    pending: &mut Vec<u8>,
    dead: &mut bool,
    frame: &[u8],
) -> Result<(), i32> {
    match fd {
        Some(fd) => write_fd(fd, dead, frame),
        None => {
            pending.extend_from_slice(frame);
            Ok(())
        }
    }
}

fn write_fd(fd: RawFd, dead: &mut bool, mut frame: &[u8]) -> Result<(), i32> {
    if *dead {
        return Err(libc::EPIPE);
    }
    while !frame.is_empty() {
        // SAFETY: `frame` is a valid readable slice; the fd is the channel's write end.
        let n = unsafe { libc::write(fd, frame.as_ptr().cast(), frame.len()) };
        // Negative: failed (errno).
        if let Ok(n) = usize::try_from(n) {
            frame = &frame[n..];
            continue;
        }
        let e = std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO);
        if e == libc::EINTR {
            continue;
        }
        *dead = true;
        return Err(e);
    }
    WRITES.fetch_add(1, Ordering::AcqRel);
    Ok(())
}

/// Starts the budgets of a new call (id 0: init).
pub fn begin(call_id: u64) {
    with(|s| {
        s.call_id = call_id;
        s.log_used = 0;
        s.log_dropped = 0;
    });
}

/// Reports dropped log text, if any, at the end of a call.
pub fn end() {
    with(|s| {
        if s.log_dropped > 0 {
            let note = format!(
                "plugjail-stub: {} bytes of plugin log dropped",
                s.log_dropped
            );
            s.log_dropped = 0;
            emit(s, log_level::WARN, note.as_bytes());
        }
    });
}

fn emit(s: &mut Sink, level: u32, text: &[u8]) {
    let id = s.call_id;
    if payload::write_log(&mut s.log, id, level, text).is_ok() {
        let _ = deliver(s.fd, &mut s.pending, &mut s.dead, s.log.finish());
    }
}

/// A log line from the plugin (any thread).
pub fn log(level: u32, text: &[u8]) {
    with(|s| {
        if s.log_used + text.len() > LOG_BUDGET {
            s.log_dropped += text.len();
            return;
        }
        s.log_used += text.len();
        emit(s, level, text);
    });
}

/// Forwards what the plugin wrote to stdout/stderr since the last drain: up to
/// OUTPUT_BUDGET bytes as LOG frames (level OUTPUT), the rest read and dropped.
/// `fd` is non-blocking; `buf` is reused scratch space.
/// Set by the SIGURG handler when the plugin wrote to its stdout or stderr.
static OUTPUT_PENDING: AtomicBool = AtomicBool::new(false);

extern "C" fn output_arrived(_: c_int) {
    OUTPUT_PENDING.store(true, Ordering::Relaxed);
}

/// Asks the kernel to signal the stub (SIGURG) whenever the plugin writes to the output
/// pipe (`O_ASYNC` on its read end), so a call that printed nothing costs no syscall to
/// check. SIGURG's default action is to ignore it: a plugin that blocks it or replaces the
/// handler only keeps its own output from being forwarded. Best effort by design: if the
/// kernel refuses, output is drained after every call instead.
pub fn notify_output(fd: RawFd) {
    // SAFETY: an all-zero sigaction is valid; we fill in the handler and flags.
    let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
    sa.sa_sigaction = output_arrived as extern "C" fn(c_int) as libc::sighandler_t;
    sa.sa_flags = libc::SA_RESTART;
    let fcntl = |cmd, arg: c_int| {
        // SAFETY: only the integer commands below (F_SETOWN, F_SETSIG, F_GETFL, F_SETFL)
        // on the stub's own pipe end: no memory is passed.
        unsafe { libc::fcntl(fd, cmd, arg) }
    };
    // SAFETY: getpid has no preconditions and cannot fail.
    let pid = unsafe { libc::getpid() };
    // SAFETY: `sa` is a valid sigaction whose handler only stores to an atomic
    // (async-signal-safe); the old action is not asked for.
    let armed = unsafe { libc::sigaction(libc::SIGURG, &sa, std::ptr::null_mut()) } == 0
        && fcntl(libc::F_SETOWN, pid) == 0
        && fcntl(F_SETSIG, libc::SIGURG) == 0
        && fcntl(libc::F_SETFL, fcntl(libc::F_GETFL, 0) | libc::O_ASYNC) == 0;
    SIGNALLED.store(armed, Ordering::Relaxed);
    // SAFETY: integer fcntl on the stub's own pipe end.
    let size = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
    if let Ok(size) = usize::try_from(size) {
        OUTPUT_PIPE_SIZE.store(size, Ordering::Relaxed);
    }
    // Whatever init() printed before this is drained once anyway.
    OUTPUT_PENDING.store(true, Ordering::Relaxed);
}

/// `F_SETSIG` (linux/fcntl.h), not exported by the libc crate.
const F_SETSIG: c_int = 10;

/// Whether output notification is armed (else every call drains).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

/// Drains the plugin's output if it wrote any since the last drain.
pub fn drain_output_if_written(fd: RawFd, buf: &mut [u8]) {
    if !SIGNALLED.load(Ordering::Relaxed) || OUTPUT_PENDING.swap(false, Ordering::Relaxed) {
        drain_output(fd, buf);
    }
}

pub fn drain_output(fd: RawFd, buf: &mut [u8]) {
    let (mut sent, mut dropped) = (0usize, 0usize);
    loop {
        // SAFETY: `buf` is a valid writable slice.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        let n = match usize::try_from(n) {
            Ok(n) if n > 0 => n,
            // 0: every writer closed; -1: EAGAIN (empty) or an error — nothing to forward.
            _ => break,
        };
        if sent + n <= OUTPUT_BUDGET {
            sent += n;
            with(|s| emit(s, log_level::OUTPUT, &buf[..n]));
        } else {
            dropped += n;
            if dropped > DISCARD_LIMIT {
                break;
            }
        }
    }
    // The pipe is non-blocking for the plugin: once it is full, further writes fail
    // (EAGAIN) and their bytes are lost before the stub could count them. A drain that
    // found the pipe full says so, in the same single note.
    let filled = sent + dropped >= OUTPUT_PIPE_SIZE.load(Ordering::Relaxed);
    if dropped > 0 || filled {
        let lost = if filled {
            "; the pipe was full, so the plugin's later writes failed and are not counted"
        } else {
            ""
        };
        let note = format!(
            "plugjail-stub: plugin stdout/stderr: {sent} bytes forwarded, {dropped} dropped{lost}"
        );
        with(|s| emit(s, log_level::WARN, note.as_bytes()));
    }
}

/// The output pipe's capacity (`F_GETPIPE_SZ`), set by [`notify_output`].
static OUTPUT_PIPE_SIZE: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(usize::MAX);
