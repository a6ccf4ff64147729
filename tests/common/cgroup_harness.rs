//! The cgroup tests' harness (tests/cgroup.rs): the host's cgroup backend and a jail
//! cgroup created on it ([`host_with`], [`create`]), and a forked child that waits until it
//! has been added to that cgroup, then does one thing with raw syscalls only
//! ([`fork_child`], [`Child`]; bodies such as [`direct_writer`]).

use std::ffi::CString;
use std::os::fd::RawFd;
use std::path::PathBuf;

use plugjail::cgroup::{self, Cgroup};
use plugjail::probe::{self, CgroupMode, Cgroups, Controller};
use plugjail::profile::{Level, Limits};

use super::skip;

pub const MIB: u64 = 1 << 20;

/// Limits with nothing set (a 1 MiB message cap); each test sets the one it tries.
pub fn limits() -> Limits {
    Limits {
        max_message: MIB,
        ..Limits::default()
    }
}

/// The probed host, if it can carry `controllers` in a jail cgroup (else a printed skip).
pub fn host_with(controllers: &[Controller]) -> Option<Cgroups> {
    let caps = probe::cgroups();
    let (_, available) = cgroup::available(&caps);
    let missing: Vec<_> = controllers
        .iter()
        .filter(|c| !available.contains(c))
        .map(|c| c.name())
        .collect();
    if caps.mode == CgroupMode::None || !missing.is_empty() {
        skip(&format!(
            "cgroup mode {} cannot carry {missing:?} for uid {} (available: {available:?})",
            caps.mode.name(),
            nix::unistd::geteuid(),
        ));
        return None;
    }
    Some(caps)
}

/// Creates a jail cgroup for `l` with every limit required, or panics saying which step
/// failed.
pub fn create(l: &Limits, io_paths: &[PathBuf], caps: &Cgroups) -> Cgroup {
    let plan = cgroup::prepare(l, io_paths, Level::Required, caps)
        .unwrap_or_else(|e| panic!("prepare: {e}"));
    plan.create()
        .unwrap_or_else(|e| panic!("create: {e}\n{}", plan.describe_steps()))
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-int out array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (fds[0], fds[1])
}

/// Closes a descriptor.
///
/// # Safety
/// The caller opened `fd` (with [`pipe`]) and nothing uses or closes it afterwards.
pub unsafe fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` (see above).
    unsafe { libc::close(fd) };
}

/// CLOCK_MONOTONIC in seconds, with one raw syscall (safe in a [`fork_child`] body).
pub fn now() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid out pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

/// A forked child that runs `body` once released; `body` gets the write end of a result
/// pipe and returns the exit code.
pub struct Child {
    pub pid: libc::pid_t,
    go: RawFd,
    result: RawFd,
}

/// Forks; the child waits for [`Child::release`], runs `body` and `_exit`s with its code.
///
/// # Safety
/// `body` runs in a fork of this multi-threaded test process, so it may only make
/// async-signal-safe calls (raw syscalls; no allocation, locks, stdio or panics): another
/// thread may have held any lock at the moment of the fork, and nothing releases it in the
/// child.
pub unsafe fn fork_child(body: impl FnOnce(RawFd) -> i32) -> Child {
    let (go_r, go_w) = pipe();
    let (res_r, res_w) = pipe();
    // SAFETY: besides `body` (the caller's promise) the child only reads a byte and
    // `_exit`s: async-signal-safe calls, and it never returns into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let mut b = 0u8;
        // SAFETY: reading one byte into a stack variable.
        let n = unsafe { libc::read(go_r, (&raw mut b).cast(), 1) };
        let code = if n == 1 { body(res_w) } else { 99 };
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: this process\'s ends of the two pipes made above, not used after.
    unsafe { close(go_r) };
    // SAFETY: as above.
    unsafe { close(res_w) };
    Child {
        pid,
        go: go_w,
        result: res_r,
    }
}

impl Child {
    pub fn release(&self) {
        // SAFETY: writing one byte from a stack variable.
        assert_eq!(unsafe { libc::write(self.go, b"g".as_ptr().cast(), 1) }, 1);
    }

    /// Waits; the raw wait status.
    pub fn wait(&self) -> i32 {
        let mut status = 0;
        loop {
            // SAFETY: our own child; `status` is a valid out pointer.
            let r = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if r == self.pid {
                // SAFETY: the write end this handle owns; it is closed once, here.
                unsafe { close(self.go) };
                return status;
            }
            assert_eq!(nix::errno::Errno::last(), nix::errno::Errno::EINTR);
        }
    }

    pub fn read_f64s<const N: usize>(&self) -> [f64; N] {
        let mut out = [f64::NAN; N];
        let want = std::mem::size_of_val(&out);
        // SAFETY: reading into a stack array of exactly `want` bytes.
        let n = unsafe { libc::read(self.result, out.as_mut_ptr().cast(), want) };
        // SAFETY: the read end this handle owns; it is closed once, here.
        unsafe { close(self.result) };
        assert_eq!(usize::try_from(n).ok(), Some(want), "child sent no result");
        out
    }
}

/// Sends `vals` on a result pipe with one raw write (safe in a [`fork_child`] body).
pub fn send_f64s(fd: RawFd, vals: &[f64]) {
    // SAFETY: writing the bytes of a live slice.
    unsafe { libc::write(fd, vals.as_ptr().cast(), std::mem::size_of_val(vals)) };
}

/// A raw wait status in words.
pub fn describe(status: i32) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exited {}", libc::WEXITSTATUS(status))
    }
}

/// Asserts that none of the cgroup directories is left.
pub fn assert_gone(cg_dirs: &[PathBuf]) {
    for d in cg_dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// The cgroup's directories, one per hierarchy.
pub fn dirs(cg: &Cgroup) -> Vec<PathBuf> {
    cg.dirs().iter().map(|d| d.path.clone()).collect()
}

/// A directory on a block device for O_DIRECT writes, or why there is none.
pub fn io_dir() -> Result<PathBuf, String> {
    let dir = std::env::var_os("PLUGJAIL_TEST_IO_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(dir)
}

/// Writes `mib` MiB with O_DIRECT in 1 MiB blocks; sends the seconds taken.
///
/// The closure makes raw syscalls only (mmap, open, write, fsync, clock_gettime), so it can
/// be a [`fork_child`] body.
pub fn direct_writer(path: &CString, mib: usize) -> impl FnOnce(RawFd) -> i32 + '_ {
    let block = usize::try_from(MIB).unwrap();
    move |res| {
        // SAFETY: a fresh anonymous mapping, page-aligned as O_DIRECT needs.
        let buf = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                block,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if buf == libc::MAP_FAILED {
            return 2;
        }
        // SAFETY: `buf` is `block` writable bytes.
        unsafe { std::ptr::write_bytes(buf.cast::<u8>(), 0x5a, block) };
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_DIRECT;
        // SAFETY: `path` is NUL-terminated and outlives the call.
        let fd = unsafe { libc::open(path.as_ptr(), flags, 0o600) };
        if fd < 0 {
            return 3;
        }
        let start = now();
        for _ in 0..mib {
            // SAFETY: writing `block` bytes from the mapping.
            if unsafe { libc::write(fd, buf, block) } != block as isize {
                return 4;
            }
        }
        // SAFETY: a descriptor we opened.
        unsafe { libc::fsync(fd) };
        send_f64s(res, &[now() - start]);
        0
    }
}
