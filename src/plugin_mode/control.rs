//! `plugjail serve --control-fd N`: the host pauses and resumes the jail.
//!
//! N is an inherited `SOCK_SEQPACKET` socket (the host keeps the other end of the pair).
//! The host sends one command per message, one byte: [`PAUSE`] or [`RESUME`]. plugjail
//! answers each with one message ([`Reply`]): a status byte, an errno (4 bytes,
//! little-endian, 0 when none) and UTF-8 text. It answers a pause only once the jail is
//! really paused:
//!
//! - with a cgroup that can freeze (v2 always; v1 with a freezer child, which serve asks
//!   for when it has a control socket): `cgroup.freeze` / `freezer.state`, then waiting
//!   until the kernel says every task is frozen ([`crate::cgroup::Cgroup::freeze`]);
//! - without one (rootless on cgroup v1: rlimits only): SIGSTOP to every process of the
//!   jail but its init, in rounds, until every thread is stopped
//!   (`crate::jail::stop::JobStop`).
//!
//! Either way the wait is bounded ([`PAUSE_TIMEOUT`]); past it the jail is resumed and the
//! answer is [`status::TIMEOUT`]. Both commands are idempotent: pausing a paused jail and
//! resuming a running one answer [`status::DONE`] and change nothing.
//!
//! When the host closes its end (or shuts it down), a paused jail is resumed: a host that
//! goes away never leaves a jail frozen until its wall time. The serve-side deadlines
//! (`call_time`, `idle_time`, `wall_time`) keep running while the jail is paused.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::cgroup::CgroupError;
use crate::jail::LiveJail;
use crate::jail::stop::{JobStop, StopError};

pub use crate::protocol::control::{PAUSE, PAUSE_TIMEOUT, REPLY_MAX, RESUME, Reply, status};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("--control-fd: descriptor {fd} is not open")]
    NotOpen { fd: RawFd },
    #[error("--control-fd: descriptor {fd} is not a SOCK_SEQPACKET socket ({what})")]
    NotSeqpacket { fd: RawFd, what: String },
    #[error("--control-fd: fcntl(F_SETFD) on descriptor {fd}: {source}")]
    Cloexec { fd: RawFd, source: io::Error },
}

impl ControlError {
    pub fn errno(&self) -> i32 {
        match self {
            ControlError::NotOpen { .. } => libc::EBADF,
            ControlError::NotSeqpacket { .. } => libc::ENOTSOCK,
            ControlError::Cloexec { source, .. } => source.raw_os_error().unwrap_or(0),
        }
    }
}

/// How a paused jail is held.
#[derive(Debug)]
enum Hold {
    Cgroup(&'static str),
    Signals(JobStop),
}

impl Hold {
    fn name(&self) -> &'static str {
        match self {
            Hold::Cgroup(backend) => backend,
            Hold::Signals(_) => "signals",
        }
    }
}

/// serve's end of the control socket, and whether the jail is paused.
#[derive(Debug)]
pub(crate) struct Control {
    /// None once the host hung up.
    sock: Option<OwnedFd>,
    paused: Option<Hold>,
}

impl Control {
    /// Takes the inherited descriptor `fd`: it must be an open `SOCK_SEQPACKET` socket. It
    /// is made close-on-exec: the jail never inherits it.
    ///
    /// # Safety
    /// `fd` is an inherited descriptor that nothing else in this process owns or closes.
    pub unsafe fn new(fd: RawFd) -> Result<Control, ControlError> {
        // SAFETY: F_GETFD only queries the descriptor table.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(ControlError::NotOpen { fd });
        }
        let mut ty: libc::c_int = 0;
        // The size of an int (4) fits a socklen_t.
        let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
        // SAFETY: `ty` and `len` are valid out pointers of the sizes given.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_TYPE,
                (&raw mut ty).cast(),
                &mut len,
            )
        };
        if r != 0 || ty != libc::SOCK_SEQPACKET {
            let what = if r != 0 {
                io::Error::last_os_error().to_string()
            } else {
                format!("socket type {ty}")
            };
            return Err(ControlError::NotSeqpacket { fd, what });
        }
        // SAFETY: integer fcntl on an open descriptor.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            return Err(ControlError::Cloexec {
                fd,
                source: io::Error::last_os_error(),
            });
        }
        Ok(Control {
            // SAFETY: the caller hands over sole ownership of `fd` (see above).
            sock: Some(unsafe { OwnedFd::from_raw_fd(fd) }),
            paused: None,
        })
    }

    /// The socket to poll, until the host hangs up.
    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.sock.as_ref().map(AsFd::as_fd)
    }

    /// Answers every command waiting on the socket. On hang-up, resumes a paused jail and
    /// lets go of the socket.
    pub fn serve(&mut self, jail: LiveJail<'_>) {
        loop {
            let Some(sock) = self.sock.as_ref().map(AsRawFd::as_raw_fd) else {
                return;
            };
            let mut buf = [0u8; 16];
            // SAFETY: `sock` is open (owned by `self.sock` until a hang-up, after which the
            // loop returns before using it again); `buf` is writable for its length; MSG_TRUNC makes the result the
            // message's real length even when it did not fit.
            let n = unsafe {
                libc::recv(
                    sock,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            let reply = match usize::try_from(n) {
                Ok(0) => {
                    self.hang_up(jail);
                    return;
                }
                Ok(1) if buf[0] == PAUSE => self.pause(jail),
                Ok(1) if buf[0] == RESUME => self.resume(jail),
                Ok(len) => Reply {
                    status: status::BAD_COMMAND,
                    errno: 0,
                    text: format!(
                        "{len} bytes starting {:?}: a command is one byte, P or R",
                        String::from_utf8_lossy(&buf[..len.min(buf.len())])
                    ),
                },
                Err(_) => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EAGAIN | libc::EINTR) => return,
                        // ECONNRESET and the like: the host is gone.
                        _ => {
                            self.hang_up(jail);
                            return;
                        }
                    }
                }
            };
            let bytes = reply.encode();
            // SAFETY: `sock` is still open (a hang-up returned above); sending the bytes of a
            // live Vec. MSG_NOSIGNAL: a host that is gone
            // is an EPIPE here, not a SIGPIPE for plugjail.
            unsafe {
                libc::send(
                    sock,
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
        }
    }

    /// The host is gone: resume the jail (so it can see the channel close and end) and
    /// stop listening.
    fn hang_up(&mut self, jail: LiveJail<'_>) {
        if self.paused.is_some() {
            let _ = self.resume(jail);
        }
        self.sock = None;
    }

    fn pause(&mut self, jail: LiveJail<'_>) -> Reply {
        if let Some(hold) = &self.paused {
            return Reply::done(hold.name());
        }
        let hold = match jail.cgroup.filter(|cg| cg.can_freeze()) {
            Some(cg) => match cg.freeze(PAUSE_TIMEOUT) {
                Ok(()) => Hold::Cgroup(match cg.backend() {
                    crate::cgroup::Backend::V2 => "cgroup_v2",
                    _ => "cgroup_v1",
                }),
                Err(e) => return cgroup_reply(&e),
            },
            None => {
                let j = JobStop::new(jail.init);
                match j.stop(PAUSE_TIMEOUT) {
                    Ok(_) => Hold::Signals(j),
                    Err(e) => return stop_reply(&e),
                }
            }
        };
        let reply = Reply::done(hold.name());
        self.paused = Some(hold);
        reply
    }

    /// Resumes the jail the way it was paused. If that fails, the jail counts as paused
    /// still, so that another RESUME tries again.
    fn resume(&mut self, jail: LiveJail<'_>) -> Reply {
        let Some(hold) = self.paused.take() else {
            return Reply::done("running");
        };
        let result = match (&hold, jail.cgroup) {
            (Hold::Cgroup(_), Some(cg)) => cg.thaw().map_err(|e| cgroup_reply(&e)),
            // The cgroup lives as long as the jail: not reached.
            (Hold::Cgroup(_), None) => Ok(()),
            (Hold::Signals(j), _) => j.resume().map_err(|e| stop_reply(&e)),
        };
        match result {
            Ok(()) => Reply::done(hold.name()),
            Err(r) => {
                self.paused = Some(hold);
                r
            }
        }
    }
}

fn cgroup_reply(e: &CgroupError) -> Reply {
    match e {
        CgroupError::Write { path, source, .. } | CgroupError::Read { path, source } => Reply {
            status: status::FREEZER,
            errno: source.raw_os_error().unwrap_or(0),
            text: path.display().to_string(),
        },
        CgroupError::FreezeTimeout { waited, .. } => Reply {
            status: status::TIMEOUT,
            errno: 0,
            text: waited.as_millis().to_string(),
        },
        other => Reply {
            status: status::FREEZER,
            errno: 0,
            text: other.to_string(),
        },
    }
}

fn stop_reply(e: &StopError) -> Reply {
    match e {
        StopError::Timeout { waited } => Reply {
            status: status::TIMEOUT,
            errno: 0,
            text: waited.as_millis().to_string(),
        },
        other => Reply {
            status: status::SIGNALS,
            errno: other.errno().unwrap_or(0),
            text: other.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_round_trip_and_are_bounded() {
        let r = Reply {
            status: status::FREEZER,
            errno: libc::EACCES,
            text: "/sys/fs/cgroup/freezer/plugjail-1-1/freezer.state".to_owned(),
        };
        let bytes = r.encode();
        assert_eq!(bytes[0], 1);
        assert_eq!(&bytes[1..5], &13i32.to_le_bytes());
        assert_eq!(Reply::decode(&bytes), Some(r));
        assert_eq!(Reply::decode(&[0, 0, 0, 0]), None, "short");
        assert_eq!(Reply::decode(&[0, 0, 0, 0, 0, 0xff]), None, "not UTF-8");
        let long = Reply::done(&"é".repeat(REPLY_MAX));
        let bytes = long.encode();
        assert!(bytes.len() <= REPLY_MAX);
        assert!(
            Reply::decode(&bytes).is_some(),
            "cut at a character boundary"
        );
    }
}
