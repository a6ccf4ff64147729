//! The serve loop: one CALL at a time, answered with RESULT or ERROR.
//!
//! This runs in the serve phase: it may use only read, write and memory syscalls (the strict profile allows little else). Buffers are reused: a call allocates
//! nothing once they have grown to the largest frame seen.

use std::ffi::{c_char, c_int};
use std::os::fd::RawFd;

use plugjail_protocol::consts::{ErrorKind, FrameType, exit_code};
use plugjail_protocol::frame::{FrameReader, FrameWriter, ReadError};
use plugjail_protocol::payload::{self, CallPayload};

use super::args::Args;
use super::plugin::{Output, Plugin};
use super::sink;
use plugjail_protocol::watch::StubPage;

pub fn serve(
    a: &Args,
    channel_in: RawFd,
    plugin: &Plugin,
    mut out_buf: [u8; 4096],
    watch: Option<&StubPage>,
) -> c_int {
    let cap = a.max_message;
    let mut reader = FrameReader::new(cap);
    let mut out = Output::new(cap);
    let mut err = FrameWriter::new(cap);
    let Some(call) = plugin.desc.call else {
        return exit_code::ABI_MISMATCH;
    };
    loop {
        let fd = channel_in;
        let frame = match reader.read(|b| read_fd(fd, b)) {
            Ok(f) => f,
            Err(ReadError::Eof) => return exit_code::OK,
            Err(ReadError::Protocol(_)) => return exit_code::PROTOCOL,
            Err(ReadError::Io(_)) => return exit_code::CHANNEL,
        };
        match frame.kind {
            FrameType::Call if frame.id != 0 => {}
            FrameType::Shutdown if payload::check_shutdown(frame.payload).is_ok() => {
                if let Some(shutdown) = plugin.desc.shutdown {
                    // SAFETY: the ABI's shutdown, called once at the end of the session.
                    unsafe { shutdown() };
                }
                return exit_code::OK;
            }
            _ => return exit_code::PROTOCOL,
        }
        let id = frame.id;
        let reply = match CallPayload::parse(frame.payload) {
            Err(_) => Reply::Error(ErrorKind::BadCall, 0, "malformed CALL payload"),
            Ok(c) => invoke(
                a,
                plugin,
                call,
                c.method,
                c.input.as_ptr(),
                c.input.len(),
                id,
                &mut out,
                &mut out_buf,
                watch,
            ),
        };
        let sent = sink::send(reply_frame(reply, id, &mut out, &mut err));
        if sent.is_err() {
            return exit_code::CHANNEL;
        }
    }
}

pub(crate) enum Reply {
    Result,
    Failed(i32),
    Error(ErrorKind, i32, &'static str),
}

/// The plugin's function table entry for `call`.
pub(crate) type CallFn =
    unsafe extern "C" fn(*const c_char, *const u8, usize, *mut Output) -> c_int;

/// Runs `method` (looked up in the plugin) on the `len` input bytes at `input`, marking the
/// call in the watch page and forwarding what the plugin printed; the output is built in
/// `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn invoke(
    a: &Args,
    plugin: &Plugin,
    call: CallFn,
    method: &str,
    input: *const u8,
    len: usize,
    id: u64,
    out: &mut Output,
    out_buf: &mut [u8; 4096],
    watch: Option<&StubPage>,
) -> Reply {
    let Some(m) = plugin.method(method) else {
        return Reply::Error(ErrorKind::UnknownMethod, 0, "no such method");
    };
    out.frame.begin(FrameType::Result, id);
    if let Some(d) = out.direct.as_mut() {
        d.len = 0;
    }
    out.overflow = false;
    out.message.clear();
    sink::begin(id);
    // Two plain stores around the call: the supervisor's call_time clock.
    if let Some(w) = watch {
        w.begin();
    }
    // SAFETY: the ABI's call: `m` is the plugin's own method pointer, the input is `len`
    // readable bytes for the call (the caller's promise), `out` outlives it.
    let status = unsafe { call(m, input, len, out) };
    if let Some(w) = watch {
        w.end();
    }
    sink::end();
    if let Some(fd) = a.output_fd {
        sink::drain_output_if_written(fd, out_buf);
    }
    if out.overflow {
        Reply::Error(
            ErrorKind::OutputTooLarge,
            status,
            "output exceeds max_message",
        )
    } else if status != 0 {
        Reply::Failed(status)
    } else {
        Reply::Result
    }
}

/// The whole frame answering call `id` with `reply`.
pub(crate) fn reply_frame<'a>(
    reply: Reply,
    id: u64,
    out: &'a mut Output,
    err: &'a mut FrameWriter,
) -> &'a [u8] {
    match reply {
        Reply::Result => out.frame.finish(),
        Reply::Error(kind, status, msg) => {
            let _ = payload::write_error(err, id, kind, status, msg);
            err.finish()
        }
        Reply::Failed(status) => {
            let msg = String::from_utf8_lossy(&out.message);
            let _ = payload::write_error(err, id, ErrorKind::Plugin, status, &msg);
            err.finish()
        }
    }
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // Negative: failed (errno).
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}
