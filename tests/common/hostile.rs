//! The hostile program the jail tests run, and what those tests share around it.
//!
//! `tests/hostile/attack.c` is one program whose argv[1] names the attack. The jail tests
//! (`tests/jail_*.rs`) run it under `plugjail exec` with the shipped profiles, as root and
//! rootless, and check that each attack fails the way the profile says it must: killed by
//! seccomp (SIGSYS), or refused by another layer with a specific errno, and, where it aims
//! at the host, that the host is untouched afterwards.
//!
//! Profiles: `default` and `strict` show seccomp stopping a syscall; `ci-tests` allows
//! more syscalls (sockets, prctl, exec), so the mount namespace, Landlock, the PID and
//! network namespaces and the capability drop are what stop things there. Some tests
//! write their own profile that `extends:` a shipped one to open one door (a syscall, a
//! bind, a port) and show that the next layer still holds. `tests/jail_controls.rs` runs
//! the same attacks on the host and expects them to work: proof that the tests can fail.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::OnceLock;

use super::{Exec, Lang, Mode, Run, build};

/// The shipped profiles every attack runs under.
pub const SHIPPED: [&str; 3] = ["default", "strict", "ci-tests"];

/// Bytes in this process that a jailed `process_vm_readv` tries to read.
pub static SECRET: [u8; 24] = *b"plugjail-host-secret-042";

pub fn attack() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("attack", Lang::C, &["tests/hostile/attack.c"], &[]))
}

/// tests/hostile/naming.c: makes the syscall its arguments name, from any thread or child.
pub fn naming() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        build(
            "naming",
            Lang::C,
            &["tests/hostile/naming.c"],
            &["-pthread"],
        )
    })
}

/// Runs `attack ARGS...` under `profile` in `mode`.
pub fn jail(mode: Mode, profile: &Path, args: &[&str]) -> Run {
    Exec::new(mode, profile).cmd([attack()]).cmd(args).run()
}

pub fn label(profile: &str, args: &[&str]) -> String {
    format!("`attack {}` under {profile}", args.join(" "))
}

/// A host process (`sleep`) running as the same user as the jail in `mode`, so only the
/// jail — not ordinary permissions — keeps the jailed program from it. Killed (by pid)
/// on drop.
pub struct HostProcess(Child);

impl HostProcess {
    pub fn start(mode: Mode) -> HostProcess {
        let child = mode
            .command("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep");
        HostProcess(child)
    }

    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pseudo-terminal: the jailed program gets the slave as stdin.
pub struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    pub fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two fds into the given ints; name, termios and winsize
        // may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty succeeded, so `master` is a fresh fd that nothing else owns.
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        // SAFETY: likewise `slave`.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        // Non-canonical with echo: an injected byte is readable on the slave at once
        // (FIONREAD) and its echo shows up on the master.
        // SAFETY: all-zero is a valid termios (plain integers); tcgetattr fills it below.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `slave` is an open terminal and `t` a live termios for the call to fill.
        assert_eq!(unsafe { libc::tcgetattr(slave.as_raw_fd(), &mut t) }, 0);
        t.c_lflag &= !libc::ICANON;
        t.c_lflag |= libc::ECHO;
        // SAFETY: `slave` is an open terminal; the call only reads `t`.
        let rc = unsafe { libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t) };
        assert_eq!(rc, 0);
        Pty { master, slave }
    }

    pub fn slave_stdin(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("dup pty slave"))
    }

    /// What an injection left behind: bytes echoed to the master, bytes queued for the
    /// slave's reader.
    pub fn injected(&self) -> (Vec<u8>, i32) {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut echoed = vec![];
        // SAFETY: one valid pollfd; 200 ms lets the pty's echo work run.
        if unsafe { libc::poll(&mut pfd, 1, 200) } == 1 {
            let mut buf = [0u8; 64];
            // SAFETY: reading into a local buffer of the given size.
            let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), 64) };
            // Negative: failed (errno), nothing echoed.
            let n = usize::try_from(n).unwrap_or(0);
            echoed.extend_from_slice(&buf[..n]);
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut queued) };
        (echoed, queued)
    }
}
