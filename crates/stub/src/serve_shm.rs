//! The serve loop over shared memory (docs/protocol.md, "Shared-memory calls"): CALLs
//! come from the region's request area and are answered in its response area; the pipe
//! carries LOG frames to the host and is read only to notice the host's end (between
//! sleeps of at most a second) or its SHUTDOWN.
//!
//! The input is handed to the plugin in place and its output written straight into the
//! response area (no copy either way); the header and method name are copied out first,
//! so a plugin thread scribbling on the request confuses only its own call.

use std::ffi::c_int;
use std::os::fd::RawFd;

use plugjail_protocol::consts::{ErrorKind, FrameType, MAX_NAME_LEN, exit_code};
use plugjail_protocol::frame::{FrameReader, FrameWriter, ReadError, decode_header, encode_header};
use plugjail_protocol::payload::{self, CallPayload};
use plugjail_protocol::shm::StubRing;
use plugjail_protocol::shm::stub::Next;
use plugjail_protocol::watch::StubPage;

use super::args::Args;
use super::plugin::{Direct, Output, Plugin};
use super::serve::{Reply, invoke, reply_frame};
use super::sink;

pub fn serve(
    a: &Args,
    channel_in: RawFd,
    plugin: &Plugin,
    mut out_buf: [u8; 4096],
    watch: Option<&StubPage>,
    mut ring: StubRing,
) -> c_int {
    let area = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).min(a.max_message);
    let (req_cap, resp_cap) = (
        area(ring.layout().request_payload()),
        area(ring.response_payload()),
    );
    let mut out = Output::new(resp_cap);
    // Outputs are written straight into the response area.
    out.direct = match ring.response_payload_ptr() {
        Ok(base) => Some(Direct { base, len: 0 }),
        Err(_) => return exit_code::CHANNEL,
    };
    let mut err = FrameWriter::new(resp_cap);
    let mut pipe = FrameReader::new(a.max_message);
    let Some(call) = plugin.desc.call else {
        return exit_code::ABI_MISMATCH;
    };
    // HELLO has been sent: the host counts the pipe's frames from here.
    let base = sink::writes();
    loop {
        let seq = match ring.wait() {
            Next::Request(seq) => seq,
            Next::Idle => match check_pipe(channel_in, &mut pipe) {
                Pipe::Quiet => continue,
                Pipe::Shutdown => return shutdown(plugin),
                Pipe::End(code) => return code,
            },
        };
        let Ok(h) = decode_header(&ring.header(), req_cap) else {
            return exit_code::PROTOCOL;
        };
        match h.kind {
            FrameType::Call if h.id != 0 => {}
            FrameType::Shutdown if h.len == 0 => return shutdown(plugin),
            _ => return exit_code::PROTOCOL,
        }
        let len = h.len as usize;
        // The method's length byte and name, copied out.
        let mut name = [0u8; 1 + MAX_NAME_LEN];
        let head = len.min(name.len());
        let reply = match ring.read_payload(0, &mut name[..head]) {
            Err(_) => Reply::Error(ErrorKind::BadCall, 0, "malformed CALL payload"),
            Ok(()) => {
                let n = 1 + usize::from(name[0]);
                match CallPayload::parse(&name[..n.min(head)]) {
                    Ok(c) if n <= len => match ring.payload_ptr(n, len - n) {
                        Ok(input) => invoke(
                            a,
                            plugin,
                            call,
                            c.method,
                            input,
                            len - n,
                            h.id,
                            &mut out,
                            &mut out_buf,
                            watch,
                        ),
                        Err(_) => Reply::Error(ErrorKind::BadCall, 0, "malformed CALL payload"),
                    },
                    _ => Reply::Error(ErrorKind::BadCall, 0, "malformed CALL payload"),
                }
            }
        };
        let frames = sink::writes().wrapping_sub(base);
        let sent = match (reply, out.direct.as_ref()) {
            // The payload is in place: only the header is written.
            (Reply::Result, Some(d)) => u32::try_from(d.len).map_or(Err(()), |len| {
                let head = encode_header(FrameType::Result, len, h.id);
                ring.respond(seq, &head, frames).map_err(|_| ())
            }),
            (reply, _) => {
                let frame = reply_frame(reply, h.id, &mut out, &mut err);
                ring.respond(seq, frame, frames).map_err(|_| ())
            }
        };
        if sent.is_err() {
            return exit_code::CHANNEL;
        }
    }
}

enum Pipe {
    /// Nothing from the host: it is still there.
    Quiet,
    Shutdown,
    End(c_int),
}

/// One look at the pipe from the host (non-blocking: `plugjail serve` made it so).
fn check_pipe(fd: RawFd, reader: &mut FrameReader) -> Pipe {
    match reader.read(|b| read_fd(fd, b)) {
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Pipe::Quiet,
        Err(ReadError::Eof) => Pipe::End(exit_code::OK),
        Ok(f) if f.kind == FrameType::Shutdown && payload::check_shutdown(f.payload).is_ok() => {
            Pipe::Shutdown
        }
        Ok(_) | Err(ReadError::Protocol(_)) => Pipe::End(exit_code::PROTOCOL),
        Err(ReadError::Io(_)) => Pipe::End(exit_code::CHANNEL),
    }
}

fn shutdown(plugin: &Plugin) -> c_int {
    if let Some(shutdown) = plugin.desc.shutdown {
        // SAFETY: the ABI's shutdown, called once at the end of the session.
        unsafe { shutdown() };
    }
    exit_code::OK
}

fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is a valid writable slice.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    // Negative: failed (errno).
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}
