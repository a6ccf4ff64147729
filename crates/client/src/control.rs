//! Pausing and resuming a session ([`SessionOptions::pausable`](super::SessionOptions)).
//!
//! A pausable session hands `plugjail serve` one end of a `SOCK_SEQPACKET` socket pair
//! (`--control-fd`) and keeps the other. [`Session::pause`] sends `P` and returns once
//! `plugjail serve` answers that the jail is paused: frozen in its cgroup (v2, or v1's
//! freezer hierarchy), or, with no cgroup (rootless on cgroup v1), every process of the
//! jail stopped with SIGSTOP. [`Session::resume`] sends `R`. Both are idempotent: pausing
//! a paused session and resuming a running one succeed and change nothing.
//!
//! Both take `&self`; to pause from another thread while one is in a call (which holds
//! `&mut Session`), take a [`PauseHandle`] first ([`Session::pause_handle`]): it is
//! `Clone + Send + Sync`, and fails with [`PauseError::Ended`] once the session is closed.
//!
//! Time paused counts against every deadline: the session's call deadline and the
//! profile's `call_time`, `idle_time` and `wall_time`, which `plugjail serve` keeps
//! enforcing. A call made or running while the session is paused waits for the resume,
//! within its deadline. [`Session::close`] first closes the control socket, on which
//! `plugjail serve` resumes the jail, so a paused session closes like a running one (the
//! plugin's shutdown() runs); dropping a paused session ends the jail as dropping any
//! session does.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Session, SessionError};
use plugjail_protocol::control::{PAUSE, PAUSE_TIMEOUT, REPLY_MAX, RESUME, Reply, status};

/// How long the session waits for `plugjail serve`'s answer: its own bound on a pause,
/// plus room for a supervisor busy with something else.
const REPLY_WAIT: Duration = PAUSE_TIMEOUT.saturating_add(Duration::from_secs(8));

/// Why a pause or a resume failed.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    /// The session was started without [`SessionOptions::pausable`](super::SessionOptions).
    #[error("the session was not started with SessionOptions::pausable")]
    NotPausable,
    /// The jail has ended (or the session was closed): close() gives the verdict.
    #[error("the session has ended; close() gives the verdict")]
    Ended,
    /// Writing (or reading) the cgroup freezer file `path` failed with `errno`.
    #[error("the cgroup freezer {}: {}", path.display(), io::Error::from_raw_os_error(*errno))]
    Freezer { path: PathBuf, errno: i32 },
    /// The jail was not paused within `waited` (a process stuck in the kernel, say); it
    /// was resumed and runs.
    #[error("the jail was not paused within {waited:?}; it was resumed")]
    Timeout { waited: Duration },
    /// No freezer: stopping or continuing a process of the jail failed.
    #[error("stopping the jail's processes: {message}")]
    Signals { message: String, errno: i32 },
    /// `plugjail serve` did not answer within `after`. The control socket is closed (so
    /// serve resumes the jail if it paused it); the session can no longer be paused.
    #[error("plugjail serve did not answer within {after:?}; the session can no longer be paused")]
    NoReply { after: Duration },
    /// `plugjail serve` answered something that is not a reply to the command (a plugjail
    /// of another version?).
    #[error("plugjail serve's answer: {what}")]
    Protocol { what: String },
    #[error("control socket {syscall}: {source}")]
    Io {
        syscall: &'static str,
        source: io::Error,
    },
}

/// The session's end of the control socket.
#[derive(Debug)]
pub(super) struct Control {
    sock: OwnedFd,
    /// One command and its reply at a time.
    turn: Mutex<()>,
    closed: AtomicBool,
}

/// Pauses and resumes a session from any thread ([`Session::pause_handle`]).
#[derive(Debug, Clone)]
pub struct PauseHandle {
    control: Arc<Control>,
}

/// A close-on-exec `SOCK_SEQPACKET` pair: (the session's end, `plugjail serve`'s end).
pub(super) fn socketpair() -> Result<(OwnedFd, OwnedFd), SessionError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(SessionError::ControlSocket {
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: socketpair just created fds[0]; this is its only owner.
    let ours = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let theirs = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((ours, theirs))
}

impl Control {
    pub(super) fn new(sock: OwnedFd) -> Arc<Control> {
        Arc::new(Control {
            sock,
            turn: Mutex::new(()),
            closed: AtomicBool::new(false),
        })
    }

    /// Closes the conversation for every holder: `plugjail serve` sees the hang-up and
    /// resumes a paused jail; a thread waiting for a reply sees end of file.
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        // SAFETY: shutdown of a socket we own; no memory passed. The descriptor stays
        // open (and owned) until the last holder drops it.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR) };
    }

    /// Sends `command` and waits for the reply.
    fn request(&self, command: u8) -> Result<(), PauseError> {
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return Err(PauseError::Ended);
        }
        let fd = self.sock.as_raw_fd();
        // SAFETY: sending one byte from a live local; MSG_NOSIGNAL: a serve that is gone
        // is EPIPE here, not a SIGPIPE for the host.
        let sent = unsafe { libc::send(fd, (&raw const command).cast(), 1, libc::MSG_NOSIGNAL) };
        if sent != 1 {
            return Err(self.io_error("send"));
        }
        let start = Instant::now();
        loop {
            let left = REPLY_WAIT.saturating_sub(start.elapsed());
            if left.is_zero() {
                self.close();
                return Err(PauseError::NoReply { after: REPLY_WAIT });
            }
            let mut pfd = libc::pollfd {
                fd,
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = libc::c_int::try_from(left.as_millis() + 1).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n > 0 {
                break;
            }
            if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return Err(self.io_error("poll"));
            }
        }
        let mut buf = vec![0u8; REPLY_MAX];
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        let n = match usize::try_from(n) {
            Ok(0) => {
                self.closed.store(true, Ordering::SeqCst);
                return Err(PauseError::Ended);
            }
            Ok(n) => n,
            Err(_) => return Err(self.io_error("recv")),
        };
        let reply = Reply::decode(&buf[..n]).ok_or_else(|| PauseError::Protocol {
            what: format!("{n} bytes that are not a reply"),
        })?;
        match reply.status {
            status::DONE => Ok(()),
            status::FREEZER => Err(PauseError::Freezer {
                path: PathBuf::from(reply.text),
                errno: reply.errno,
            }),
            status::TIMEOUT => Err(PauseError::Timeout {
                waited: Duration::from_millis(reply.text.parse().unwrap_or(0)),
            }),
            status::SIGNALS => Err(PauseError::Signals {
                message: reply.text,
                errno: reply.errno,
            }),
            other => Err(PauseError::Protocol {
                what: format!("status {other}: {}", reply.text),
            }),
        }
    }

    /// The error of a failed socket call: a peer that is gone ends the session.
    fn io_error(&self, syscall: &'static str) -> PauseError {
        let source = io::Error::last_os_error();
        match source.raw_os_error() {
            Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => {
                self.closed.store(true, Ordering::SeqCst);
                PauseError::Ended
            }
            _ => PauseError::Io { syscall, source },
        }
    }
}

impl PauseHandle {
    /// [`Session::pause`], from any thread.
    pub fn pause(&self) -> Result<(), PauseError> {
        self.control.request(PAUSE)
    }

    /// [`Session::resume`], from any thread.
    pub fn resume(&self) -> Result<(), PauseError> {
        self.control.request(RESUME)
    }
}

impl Session {
    /// Pauses the jail: returns once none of its processes runs (see the module docs for
    /// how, per cgroup backend). Pausing a paused session succeeds and changes nothing.
    pub fn pause(&self) -> Result<(), PauseError> {
        self.pause_handle()?.pause()
    }

    /// Resumes a paused jail. Resuming a running session succeeds and changes nothing.
    pub fn resume(&self) -> Result<(), PauseError> {
        self.pause_handle()?.resume()
    }

    /// A handle that pauses and resumes this session from another thread, for instance
    /// while this one is in a call.
    pub fn pause_handle(&self) -> Result<PauseHandle, PauseError> {
        let control = self.control.clone().ok_or(PauseError::NotPausable)?;
        Ok(PauseHandle { control })
    }

    /// The process id of this session's `plugjail serve` (None once closed): for looking
    /// at it from outside (its jail's cgroups are named `plugjail-<pid>-<n>`). The session
    /// holds it unreaped until it is closed or dropped, so it is not reused before.
    pub fn serve_pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }
}
