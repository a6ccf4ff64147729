//! Raw `plugjail serve`, shared by the `tests/plugin_*.rs` files: the test plays a host
//! that speaks the framed protocol itself on plugjail's stdin/stdout ([`raw_serve`],
//! [`call_frame`], [`next_frame`]) and reads the verdict from `--status-fd 3`
//! ([`status_verdict`]).

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;

use super::{Mode, plugjail};

/// Starts `plugjail serve` on stdin/stdout with `--status-fd 3`; returns the child, the
/// status pipe's read end.
pub fn raw_serve(mode: Mode, profile: &Path, so: &Path) -> (std::process::Child, OwnedFd) {
    raw_serve_with(mode, profile, so, &[])
}

/// [`raw_serve`] with more options.
pub fn raw_serve_with(
    mode: Mode,
    profile: &Path,
    so: &Path,
    extra: &[OsString],
) -> (std::process::Child, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let mut cmd = mode.command(plugjail());
    let args: Vec<OsString> = vec![
        "serve".into(),
        "--profile".into(),
        profile.into(),
        "--plugin".into(),
        so.into(),
        "--status-fd".into(),
        "3".into(),
    ];
    cmd.args(&args)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let src = w.as_raw_fd();
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `status_fd_at_3` makes one dup2 (async-signal-safe) and allocates
    // nothing.
    unsafe { cmd.pre_exec(move || status_fd_at_3(src)) };
    let child = cmd.spawn().expect("spawn plugjail serve");
    drop(w);
    (child, r)
}

/// [`raw_serve`] with `--control-fd 4`: returns also the test's end of the
/// `SOCK_SEQPACKET` control socket.
pub fn raw_serve_control(
    mode: Mode,
    profile: &Path,
    so: &Path,
) -> (std::process::Child, OwnedFd, OwnedFd) {
    let (r, w) = super::pipe();
    let mut pair = [0; 2];
    // SAFETY: room for two descriptors.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            pair.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0, "socketpair: {}", std::io::Error::last_os_error());
    // SAFETY: socketpair just created pair[0]; this is its only owner.
    let ours = unsafe { OwnedFd::from_raw_fd(pair[0]) };
    // SAFETY: likewise pair[1].
    let theirs = unsafe { OwnedFd::from_raw_fd(pair[1]) };
    let mut cmd = mode.command(plugjail());
    cmd.arg("serve")
        .arg("--profile")
        .arg(profile)
        .arg("--plugin")
        .arg(so)
        .args(["--status-fd", "3", "--control-fd", "4"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let moves = [(w.as_raw_fd(), 3), (theirs.as_raw_fd(), 4)];
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `place_fds` makes fcntl and dup2 calls (async-signal-safe) on the
    // array the closure owns and allocates nothing.
    unsafe { cmd.pre_exec(move || place_fds(&moves)) };
    let child = cmd.spawn().expect("spawn plugjail serve");
    drop((w, theirs));
    (child, r, ours)
}

/// The body of [`raw_serve_control`]'s `pre_exec` hook: each source to its target, through
/// copies above 9 so no target overwrites a source still to be moved.
fn place_fds(moves: &[(RawFd, RawFd); 2]) -> std::io::Result<()> {
    let mut tmp = [-1; 2];
    for (i, &(src, _)) in moves.iter().enumerate() {
        // SAFETY: integer fcntl, no memory passed; `src` is open in this copy of the
        // parent's descriptor table.
        tmp[i] = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 10) };
        if tmp[i] < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (i, &(_, dst)) in moves.iter().enumerate() {
        // SAFETY: no memory passed; replaces whatever this child had at `dst` just
        // before it execs.
        if unsafe { libc::dup2(tmp[i], dst) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The body of [`raw_serve_with`]'s `pre_exec` hook: `src` becomes descriptor 3.
fn status_fd_at_3(src: RawFd) -> std::io::Result<()> {
    // SAFETY: no memory passed. `src` is open here (the child's table is a copy of the
    // parent's, which holds `w` until spawn returns); whatever this child had at 3 is
    // replaced, and it execs next.
    if unsafe { libc::dup2(src, 3) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The next frame that is not a LOG or plugjail's SESSION (the first frame of every
/// serve session; `session_frame` checks it).
pub fn next_frame(r: &mut impl Read) -> Option<(u16, Vec<u8>)> {
    loop {
        let f = read_frame(r)?;
        if f.0 != 5 && f.0 != 7 {
            return Some(f);
        }
    }
}

/// One frame: its type and payload; `None` at end of file or on a short read.
pub fn read_frame(r: &mut impl Read) -> Option<(u16, Vec<u8>)> {
    let mut h = [0u8; 16];
    r.read_exact(&mut h).ok()?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = u16::from_le_bytes([h[4], h[5]]);
    let mut p = vec![0; len];
    r.read_exact(&mut p).ok()?;
    Some((kind, p))
}

/// A CALL frame (type 2) with request id `id`.
pub fn call_frame(id: u64, method: &str, input: &[u8]) -> Vec<u8> {
    let mut payload = vec![u8::try_from(method.len()).expect("a method name of at most 255 bytes")];
    payload.extend_from_slice(method.as_bytes());
    payload.extend_from_slice(input);
    let mut f = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&payload);
    f
}

/// The verdict plugjail wrote to the status pipe, read to its end.
pub fn status_verdict(r: OwnedFd) -> serde_json::Value {
    let mut text = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut text);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("status fd: {e}: {text:?}"))
}
