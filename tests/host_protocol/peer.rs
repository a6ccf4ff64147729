//! Connecting to the `--listen` socket as another user: a forked child that drops to the
//! uid and connects, its bytes passed back through a pipe.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::common::pipe;

/// Connects to the socket at `path` as `uid`/`gid` and returns every byte the server sent
/// before it closed the connection; `Err` with the child's exit status if it could not
/// connect (1: dropping privileges failed, 2: socket, 3: connect).
pub fn connect_as(uid: u32, path: &Path) -> Result<Vec<u8>, i32> {
    // Everything the child needs is prepared here: after fork it only makes syscalls.
    // SAFETY: sockaddr_un is plain data; all zeroes is a valid (empty) address.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::sa_family_t::try_from(libc::AF_UNIX).expect("AF_UNIX");
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = libc::c_char::from_ne_bytes([*s]);
    }
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_un>()).expect("len");
    let (r, w) = pipe();
    let w_raw = w.as_raw_fd();
    // SAFETY: the child runs only async-signal-safe syscalls on data prepared above and
    // leaves with _exit; the parent reaps it below.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        // SAFETY: in the forked child: raw syscalls on our own descriptors and stack
        // buffers, then _exit (no destructors, no allocation).
        unsafe { child(uid, &addr, len, w_raw) }
    }
    drop(w);
    let mut got = Vec::new();
    let _ = std::fs::File::from(r).read_to_end(&mut got);
    let mut status = 0;
    // SAFETY: our own child, not yet reaped.
    unsafe { libc::waitpid(pid, &raw mut status, 0) };
    match libc::WEXITSTATUS(status) {
        0 => Ok(got),
        n => Err(n),
    }
}

/// The forked child's body.
///
/// # Safety
/// Call only in a freshly forked child: it never returns, and runs nothing but syscalls.
unsafe fn child(uid: u32, addr: &libc::sockaddr_un, len: libc::socklen_t, out: i32) -> ! {
    fn exit(code: i32) -> ! {
        // SAFETY: ends the forked child without running any Rust code of the parent's.
        unsafe { libc::_exit(code) }
    }
    // SAFETY: no groups: a null list of length 0.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        exit(1);
    }
    // SAFETY: plain integers.
    if unsafe { libc::setresgid(uid, uid, uid) } != 0 {
        exit(1);
    }
    // SAFETY: plain integers.
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        exit(1);
    }
    // SAFETY: plain integers; the descriptor is the child's own.
    let s = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        exit(2);
    }
    // SAFETY: `addr` is a valid sockaddr_un of `len` bytes (copied with the stack).
    if unsafe { libc::connect(s, std::ptr::from_ref(addr).cast(), len) } != 0 {
        exit(3);
    }
    let mut buf = [0u8; 4096];
    loop {
        // SAFETY: reads at most buf.len() bytes into the stack buffer.
        let n = unsafe { libc::read(s, buf.as_mut_ptr().cast(), buf.len()) };
        let Ok(n) = usize::try_from(n) else { break };
        if n == 0 {
            break;
        }
        // SAFETY: writes the n bytes just read from the stack buffer.
        unsafe { libc::write(out, buf.as_ptr().cast(), n) };
    }
    exit(0)
}
