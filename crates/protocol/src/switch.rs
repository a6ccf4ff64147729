//! The switch: how the stub gets its channel. The jail's init holds the channel's two
//! descriptors until the stub asks for them with `recvmsg` on its end of a socket pair;
//! the init answers with one byte carrying both descriptors (`SCM_RIGHTS`, in, then out).
//! Both halves are allocation-free: the init's runs in the jail's PID 1, which makes raw
//! syscalls only.

use std::ffi::c_int;
use std::os::fd::RawFd;

/// The control message: one `SCM_RIGHTS` header and the two descriptors.
#[repr(C)]
struct Control {
    header: libc::cmsghdr,
    fds: [c_int; 2],
}

/// Its size, in the type the kernel's fields use (a few dozen bytes).
const CONTROL_LEN: usize = std::mem::size_of::<Control>();

/// A `msghdr` for one byte at `byte` and the control message at `control`.
fn message(byte: &mut [u8; 1], iov: &mut libc::iovec, control: &mut Control) -> libc::msghdr {
    *iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: all-zero is a valid msghdr (integers and null pointers); the fields that
    // matter are set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg.msg_control = std::ptr::from_mut(control).cast();
    msg.msg_controllen = CONTROL_LEN as _;
    msg
}

fn empty_control() -> Control {
    // SAFETY: all-zero is a valid cmsghdr and descriptor pair (plain integers).
    unsafe { std::mem::zeroed() }
}

/// The init's side: sends `fds` (in, out) over `sock`. Never raises SIGPIPE: a stub that
/// closed or replaced its end gets the init an error (EPIPE), not a signal.
pub fn send_channel(sock: RawFd, fds: [RawFd; 2]) -> Result<(), i32> {
    let mut control = empty_control();
    control.header.cmsg_len = CONTROL_LEN as _;
    control.header.cmsg_level = libc::SOL_SOCKET;
    control.header.cmsg_type = libc::SCM_RIGHTS;
    control.fds = fds;
    let (mut byte, mut iov) = (
        [b'C'],
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
    );
    let msg = message(&mut byte, &mut iov, &mut control);
    loop {
        // SAFETY: `msg` points at `iov`, `byte` and `control`, all alive on this stack for
        // the call; the kernel only reads them.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        match n {
            1 => return Ok(()),
            -1 if errno() == libc::EINTR => {}
            -1 => return Err(errno()),
            _ => return Err(libc::EPROTO),
        }
    }
}

/// The stub's side: one `recvmsg` on `sock` (the switch), which must bring exactly the two
/// descriptors (in, out), close-on-exec. `sock` is left open.
pub fn receive_channel(sock: RawFd) -> Result<(RawFd, RawFd), i32> {
    let mut control = empty_control();
    let (mut byte, mut iov) = (
        [0u8],
        libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        },
    );
    let mut msg = message(&mut byte, &mut iov, &mut control);
    let n = loop {
        // SAFETY: `msg` points at `iov`, `byte` and `control`, alive for the call; the
        // kernel writes at most their lengths.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 || errno() != libc::EINTR {
            break n;
        }
    };
    if n < 0 {
        return Err(errno());
    }
    let whole = n == 1
        && msg.msg_flags & libc::MSG_CTRUNC == 0
        && control.header.cmsg_level == libc::SOL_SOCKET
        && control.header.cmsg_type == libc::SCM_RIGHTS
        && control.header.cmsg_len == CONTROL_LEN;
    if whole {
        Ok((control.fds[0], control.fds[1]))
    } else {
        Err(libc::EPROTO)
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    fn pair(kind: c_int) -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: socketpair writes two descriptors into `fds`.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                kind | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0, "socketpair");
        // SAFETY: both were just created and are owned by nothing else.
        let a = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: as above.
        let b = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        (a, b)
    }

    #[test]
    fn the_channel_crosses_and_a_bare_byte_is_refused() {
        let (init, stub) = pair(libc::SOCK_STREAM);
        let (r, w) = pair(libc::SOCK_STREAM);
        send_channel(init.as_raw_fd(), [r.as_raw_fd(), w.as_raw_fd()]).expect("send");
        let (input, output) = receive_channel(stub.as_raw_fd()).expect("receive");
        // Received as new descriptors, close-on-exec.
        for fd in [input, output] {
            assert!(fd != r.as_raw_fd() && fd != w.as_raw_fd());
            // SAFETY: F_GETFD only reads the descriptor's flags.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
            // SAFETY: `fd` was just received and is owned by nothing else.
            drop(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        // A byte without descriptors (a plugin's own socket, say) is not a channel.
        // SAFETY: writes one byte from a live buffer.
        let wrote = unsafe { libc::write(init.as_raw_fd(), b"x".as_ptr().cast(), 1) };
        assert_eq!(wrote, 1);
        assert_eq!(receive_channel(stub.as_raw_fd()), Err(libc::EPROTO));
        // The stub's end gone: an error for the init, not SIGPIPE.
        drop(stub);
        assert_eq!(
            send_channel(init.as_raw_fd(), [r.as_raw_fd(), w.as_raw_fd()]),
            Err(libc::EPIPE)
        );
    }
}
