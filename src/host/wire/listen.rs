//! `--listen PATH`: the protocol on a unix stream socket.
//!
//! The socket is created with mode 0600 (under a umask of 0177, so it is never wider,
//! not even between bind and a chmod), only where nothing but a stale socket of ours
//! was, and removed at exit if it is still the one this server created. Connections are
//! served concurrently, at most [`MAX_CONNECTIONS`] at once; each peer must run as
//! plugjail's own user or as root (SO_PEERCRED, taken at connect time), else it gets one
//! ERROR `forbidden` and is closed.

use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{Mode, umask};

use super::conn::{self, Ending};
use super::reply;
use super::shared::Shared;

/// Connections served at once; one more gets ERROR `busy` and is closed.
pub const MAX_CONNECTIONS: usize = 16;

/// A client that takes none of our bytes for this long is disconnected.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("{}: exists and is not a socket; refusing to replace it", .path.display())]
    NotASocket { path: PathBuf },
    #[error("{}: another server is listening there", .path.display())]
    InUse { path: PathBuf },
    #[error("{}: {op}: {source}", .path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

pub struct Listener {
    sock: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file this server created.
    file: (u64, u64),
}

impl Listener {
    /// Creates the socket, mode 0600.
    ///
    /// Call while the process has a single thread: the umask is process-wide, and
    /// another thread creating a file meanwhile would get the narrow one too.
    pub fn bind(path: &Path) -> Result<Listener, ListenError> {
        let io = |op, source| ListenError::Io {
            path: path.to_owned(),
            op,
            source,
        };
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => match UnixStream::connect(path) {
                Ok(_) => return Err(ListenError::InUse { path: path.into() }),
                // A socket nobody listens on: left by a server that died.
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(|e| io("remove the stale socket", e))?;
                }
                Err(e) => return Err(io("probe the existing socket", e)),
            },
            Ok(_) => return Err(ListenError::NotASocket { path: path.into() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("stat", e)),
        }
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        umask(old);
        let sock = bound.map_err(|e| io("bind", e))?;
        let m = std::fs::symlink_metadata(path).map_err(|e| io("stat", e))?;
        let listener = Listener {
            sock,
            path: path.to_owned(),
            file: (m.dev(), m.ino()),
        };
        listener
            .sock
            .set_nonblocking(true)
            .map_err(|e| io("set non-blocking", e))?;
        Ok(listener)
    }

    /// Accepts connections until the server stops, then waits for each to end.
    pub fn serve(&self, shared: &Arc<Shared>) {
        let mut conns: Vec<JoinHandle<()>> = Vec::new();
        loop {
            let mut fds = [
                PollFd::new(shared.stop_fd(), PollFlags::POLLIN),
                PollFd::new(self.sock.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => {
                    eprintln!("plugjail host: poll on the socket: {e}");
                    break;
                }
            }
            if fds[0].any().unwrap_or(false) {
                break;
            }
            match self.sock.accept() {
                Ok((stream, _)) => {
                    conns.retain(|c| !c.is_finished());
                    if let Some(c) = admit(shared, stream, conns.len()) {
                        conns.push(c);
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    // EMFILE and the like: say so, and do not spin.
                    eprintln!("plugjail host: accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        for c in conns {
            let _ = c.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Only the socket this server created: not one that replaced it.
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == self.file
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Checks a new connection and starts its thread, or refuses it with one ERROR.
fn admit(shared: &Arc<Shared>, mut stream: UnixStream, live: usize) -> Option<JoinHandle<()>> {
    let refuse = |stream: &mut UnixStream, kind: &str, message: &str| {
        let _ = stream.write_all(&reply::error(0, kind, message));
    };
    // Blocking, with a bound on how long a write may wait.
    if stream.set_nonblocking(false).is_err()
        || stream.set_write_timeout(Some(WRITE_TIMEOUT)).is_err()
    {
        return None;
    }
    match peer_uid(stream.as_fd()) {
        Ok(uid) if uid == nix::unistd::geteuid().as_raw() || uid == 0 => {}
        Ok(uid) => {
            eprintln!("plugjail host: refused a connection from uid {uid}");
            let message = format!("uid {uid} may not use this server");
            refuse(&mut stream, "forbidden", &message);
            return None;
        }
        Err(e) => {
            refuse(
                &mut stream,
                "forbidden",
                &format!("no peer credentials: {e}"),
            );
            return None;
        }
    }
    if shared.stopping() {
        refuse(&mut stream, "shutting_down", "the host is shutting down");
        return None;
    }
    if live >= MAX_CONNECTIONS {
        let message = format!("{live} connections are open (the most: {MAX_CONNECTIONS})");
        refuse(&mut stream, "busy", &message);
        return None;
    }
    let input = stream.try_clone().ok()?;
    let hangup = stream.try_clone().ok()?;
    let shared = shared.clone();
    std::thread::Builder::new()
        .name("host-wire-conn".into())
        .spawn(move || {
            // A peer that stopped reading: end the reader too.
            let on_broken = move || {
                let _ = hangup.shutdown(std::net::Shutdown::Both);
            };
            let ending = conn::serve(&shared, OwnedFd::from(input), stream, on_broken, false);
            if let Ending::Broken(why) = ending {
                eprintln!("plugjail host: closed a connection: {why}");
            }
        })
        .ok()
}

/// The uid of the process that connected (as of its connect()).
fn peer_uid(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::ucred>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open socket for the call's duration; the kernel writes at most
    // `len` bytes (the size of `cred`, a plain struct we own) and updates `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast(),
            &raw mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}
