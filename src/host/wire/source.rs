//! Reading frames from a connection: the I/O around [`super::codec`], woken by the
//! server's stop descriptor as well as by input.
//!
//! The header is checked before any byte of the payload is reserved; the payload buffer
//! then grows with the bytes that really arrive (at most doubling, never beyond the length
//! the header claimed), so a peer that claims 16 MiB and sends nothing costs nothing.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::codec::{HEADER_LEN, Header, HeaderError, decode_header};

/// Read-ahead for small frames, and the step in which large payloads grow.
const CHUNK: usize = 64 << 10;

/// Why no frame came.
#[derive(Debug, thiserror::Error)]
pub enum End {
    /// The peer closed its side between two frames.
    #[error("end of input")]
    Eof,
    /// The server is stopping (its stop descriptor became readable).
    #[error("the server is stopping")]
    Stopped,
    /// A header the reader cannot stay in step after.
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error("the input ended after {got} of the {want} bytes of a frame")]
    Truncated { got: usize, want: usize },
    #[error("reading the input: {0}")]
    Io(io::Error),
}

/// A connection's input.
pub struct Source<'s> {
    fd: OwnedFd,
    stop: BorrowedFd<'s>,
    ahead: Box<[u8]>,
    /// `ahead[lo..hi]` is read but not consumed.
    lo: usize,
    hi: usize,
}

impl<'s> Source<'s> {
    pub fn new(fd: OwnedFd, stop: BorrowedFd<'s>) -> Self {
        Source {
            fd,
            stop,
            ahead: vec![0u8; CHUNK].into_boxed_slice(),
            lo: 0,
            hi: 0,
        }
    }

    /// The next frame: its header and its whole payload.
    pub fn next(&mut self) -> Result<(Header, Vec<u8>), End> {
        let mut head = [0u8; HEADER_LEN];
        let got = self.fill_exact(&mut head)?;
        if got == 0 {
            return Err(End::Eof);
        }
        if got < HEADER_LEN {
            return Err(End::Truncated {
                got,
                want: HEADER_LEN,
            });
        }
        let h = decode_header(&head)?;
        let len = h.len as usize;
        let mut body = Vec::with_capacity(len.min(CHUNK));
        while body.len() < len {
            let start = body.len();
            let want = (len - start).min(CHUNK);
            if body.capacity() < start + want {
                let target = (body.capacity() * 2).clamp(start + want, len);
                body.reserve_exact(target - start);
            }
            body.resize(start + want, 0);
            let n = self.fill_exact(&mut body[start..])?;
            body.truncate(start + n);
            if n < want {
                return Err(End::Truncated {
                    got: HEADER_LEN + body.len(),
                    want: HEADER_LEN + len,
                });
            }
        }
        Ok((h, body))
    }

    /// Fills `out` (from the read-ahead, then the descriptor); fewer bytes only at end of
    /// input.
    fn fill_exact(&mut self, out: &mut [u8]) -> Result<usize, End> {
        let mut done = 0;
        while done < out.len() {
            if self.lo < self.hi {
                let n = (self.hi - self.lo).min(out.len() - done);
                out[done..done + n].copy_from_slice(&self.ahead[self.lo..self.lo + n]);
                self.lo += n;
                done += n;
                continue;
            }
            // Large remainders go straight into `out`; small ones through the read-ahead,
            // so that a small frame costs one read.
            let n = if out.len() - done >= CHUNK {
                read_ready(self.fd.as_fd(), self.stop, &mut out[done..])?
            } else {
                let n = read_ready(self.fd.as_fd(), self.stop, &mut self.ahead)?;
                (self.lo, self.hi) = (0, n);
                if n > 0 {
                    continue;
                }
                0
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// One read(2) into `buf`, once poll(2) says the input is ready; [`End::Stopped`] as soon
/// as the stop descriptor is readable, even with input waiting.
fn read_ready(fd: BorrowedFd<'_>, stop: BorrowedFd<'_>, buf: &mut [u8]) -> Result<usize, End> {
    loop {
        let mut fds = [
            PollFd::new(stop, PollFlags::POLLIN),
            PollFd::new(fd, PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(End::Io(e.into())),
        }
        if fds[0].any().unwrap_or(false) {
            return Err(End::Stopped);
        }
        if !fds[1].any().unwrap_or(false) {
            continue;
        }
        return match nix::unistd::read(fd, buf) {
            Ok(n) => Ok(n),
            Err(nix::Error::EINTR | nix::Error::EAGAIN) => continue,
            Err(e) => Err(End::Io(e.into())),
        };
    }
}
