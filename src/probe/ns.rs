//! User namespaces, tried for real: a forked child unshares a user namespace, writes its
//! uid/gid maps, then tries each other namespace the jail uses (mounting a tmpfs in its
//! private mount namespace). Everything it creates dies with it.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use serde::Serialize;

use super::{Check, Error, read_trimmed};

/// The probe child's steps, in order; the child reports one errno (or 0) per step.
const STEPS: [&str; 11] = [
    "unshare(CLONE_NEWUSER)",
    "write /proc/self/setgroups",
    "write /proc/self/uid_map",
    "write /proc/self/gid_map",
    "unshare(CLONE_NEWNS)",
    "mount(tmpfs) in the new mount namespace",
    "unshare(CLONE_NEWPID)",
    "unshare(CLONE_NEWNET)",
    "unshare(CLONE_NEWIPC)",
    "unshare(CLONE_NEWUTS)",
    "unshare(CLONE_NEWCGROUP)",
];
const USER: usize = 0;
const SETGROUPS: usize = 1;
const UID_MAP: usize = 2;
const GID_MAP: usize = 3;
const MOUNT: usize = 4;
const TMPFS: usize = 5;
const OTHERS: [(usize, libc::c_int); 5] = [
    (6, libc::CLONE_NEWPID),
    (7, libc::CLONE_NEWNET),
    (8, libc::CLONE_NEWIPC),
    (9, libc::CLONE_NEWUTS),
    (10, libc::CLONE_NEWCGROUP),
];
/// A step the child never reached (an earlier step it depends on failed).
const NOT_TRIED: i32 = -1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    /// A user namespace could be created and its uid/gid maps written: the jail can run
    /// rootless.
    pub works: bool,
    pub user: Check,
    /// setgroups deny, uid_map and gid_map (mapping our own ids to 0 inside).
    pub maps: Check,
    /// A mount namespace inside the user namespace, with a tmpfs mounted in it.
    pub mount: Check,
    pub pid: Check,
    pub net: Check,
    pub ipc: Check,
    pub uts: Check,
    pub cgroup: Check,
    /// /proc/sys/user/max_user_namespaces (0 disables them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_user_namespaces: Option<u64>,
    /// Ubuntu's AppArmor switch that confines unprivileged user namespaces, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apparmor_restrict_unprivileged_userns: Option<bool>,
    /// What usually causes the user-namespace failure seen, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<&'static str>,
    /// Debian's older switch for unprivileged user namespaces, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unprivileged_userns_clone: Option<bool>,
}

/// Tries user namespaces (and the others inside one) in a forked child.
pub fn userns() -> Namespaces {
    let sysctl = |path| {
        read_trimmed(path)
            .ok()
            .flatten()
            .and_then(|s| s.parse::<u64>().ok())
    };
    let steps = run_child();
    let check = |i: usize| match &steps {
        Err(e) => Check::failed(e),
        Ok(r) => step_check(r, i),
    };
    let maps = [SETGROUPS, UID_MAP, GID_MAP]
        .into_iter()
        .map(check)
        .find(|c| !c.ok)
        .unwrap_or_else(Check::ok);
    let mount = [MOUNT, TMPFS]
        .into_iter()
        .map(check)
        .find(|c| !c.ok)
        .unwrap_or_else(Check::ok);
    let user = check(USER);
    Namespaces {
        works: user.ok && maps.ok,
        user,
        maps,
        mount,
        pid: check(OTHERS[0].0),
        net: check(OTHERS[1].0),
        ipc: check(OTHERS[2].0),
        uts: check(OTHERS[3].0),
        cgroup: check(OTHERS[4].0),
        hint: steps.as_ref().ok().and_then(hint),
        max_user_namespaces: sysctl("/proc/sys/user/max_user_namespaces"),
        apparmor_restrict_unprivileged_userns: sysctl(
            "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
        )
        .map(|v| v != 0),
        unprivileged_userns_clone: sysctl("/proc/sys/kernel/unprivileged_userns_clone")
            .map(|v| v != 0),
    }
}

const HINT_EPERM: &str = "unprivileged user namespaces are turned off (sysctl \
    kernel.unprivileged_userns_clone, AppArmor's apparmor_restrict_unprivileged_userns) or a \
    container's seccomp policy forbids unshare";
const HINT_ENOSPC: &str = "user.max_user_namespaces is 0 or its limit is reached";
const HINT_MAPS: &str = "the kernel refused the uid/gid maps: setgroups or the map \
    files are restricted here";

/// The usual cause of a failed user-namespace probe, when there is a well-known one.
fn hint(results: &[i32; STEPS.len()]) -> Option<&'static str> {
    match results[USER] {
        libc::EPERM => Some(HINT_EPERM),
        libc::ENOSPC | libc::EUSERS => Some(HINT_ENOSPC),
        0 if results[SETGROUPS..=GID_MAP].iter().any(|&r| r != 0) => Some(HINT_MAPS),
        _ => None,
    }
}

fn step_check(results: &[i32; STEPS.len()], i: usize) -> Check {
    match results[i] {
        0 => Check::ok(),
        NOT_TRIED => {
            // Name the earlier step that stopped this one.
            let blocker = results[..i].iter().position(|&r| r > 0).unwrap_or(USER);
            Check::failed(Error::NotTried {
                blocker: STEPS[blocker],
            })
        }
        errno => Check::failed(Error::Child {
            step: STEPS[i],
            errno: Errno::from_raw(errno),
        }),
    }
}

/// Forks the probe child and collects one result per step over a pipe.
fn run_child() -> Result<[i32; STEPS.len()], Error> {
    let syscall = |syscall| move |errno| Error::Syscall { syscall, errno };
    let (read_end, write_end) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(syscall("pipe2"))?;
    // Formatted before fork: the child must not allocate.
    let uid_map = format!("0 {} 1\n", nix::unistd::geteuid());
    let gid_map = format!("0 {} 1\n", nix::unistd::getegid());

    // SAFETY: the child runs only `child`, which makes raw syscalls on memory prepared
    // before the fork (no allocation, no locks) and ends in `_exit`, so forking from a
    // multi-threaded process is sound.
    match unsafe { fork() }.map_err(syscall("fork"))? {
        ForkResult::Child => {
            drop(read_end);
            child(&write_end, uid_map.as_bytes(), gid_map.as_bytes())
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut buf = [0u8; STEPS.len() * 4];
            let got = read_full(&read_end, &mut buf);
            let status = waitpid(child, None).map_err(syscall("waitpid"))?;
            if got != Ok(buf.len()) {
                return Err(Error::ChildDied {
                    status: describe(status),
                });
            }
            let mut results = [NOT_TRIED; STEPS.len()];
            for (r, bytes) in results.iter_mut().zip(buf.chunks_exact(4)) {
                *r = i32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
            }
            Ok(results)
        }
    }
}

fn read_full(fd: &OwnedFd, buf: &mut [u8]) -> Result<usize, Errno> {
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd, &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit status {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    }
}

/// The probe child: async-signal-safe syscalls only, then `_exit`.
fn child(out: &OwnedFd, uid_map: &[u8], gid_map: &[u8]) -> ! {
    let mut r = [NOT_TRIED; STEPS.len()];
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers; the child must
    // not outlive a parent that dies mid-probe.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    r[USER] = errno_of(
        // SAFETY: unshare only changes this (single-threaded) child's namespaces.
        unsafe { libc::unshare(libc::CLONE_NEWUSER) },
    );
    if r[USER] == 0 {
        r[SETGROUPS] = write_file(c"/proc/self/setgroups", b"deny");
        r[UID_MAP] = write_file(c"/proc/self/uid_map", uid_map);
        r[GID_MAP] = write_file(c"/proc/self/gid_map", gid_map);
        // SAFETY: as above; the new mount namespace belongs to this child alone.
        r[MOUNT] = errno_of(unsafe { libc::unshare(libc::CLONE_NEWNS) });
        if r[MOUNT] == 0 {
            r[TMPFS] = mount_tmpfs();
        }
        for (i, flag) in OTHERS {
            // SAFETY: as above; namespaces owned by our user namespace, gone at _exit.
            r[i] = errno_of(unsafe { libc::unshare(flag) });
        }
    }
    let mut bytes = [0u8; STEPS.len() * 4];
    for (chunk, v) in bytes.chunks_exact_mut(4).zip(r) {
        chunk.copy_from_slice(&v.to_ne_bytes());
    }
    // SAFETY: writes from a live stack buffer to the pipe we own; a short write shows up
    // as a short read in the parent, which reports it.
    unsafe { libc::write(out.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
    // SAFETY: _exit skips atexit handlers and stdio flushing, which belong to the parent.
    unsafe { libc::_exit(0) }
}

/// Makes every mount private (so nothing propagates out), then mounts a tmpfs over "/":
/// it exists on every system and the mount lives only in this child's namespace.
fn mount_tmpfs() -> i32 {
    // SAFETY: NUL-terminated literals; the mount namespace is this child's own.
    let ret = unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if ret != 0 {
        return Errno::last_raw();
    }
    // SAFETY: as above.
    errno_of(unsafe {
        libc::mount(
            c"plugjail-probe".as_ptr(),
            c"/".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"size=4k".as_ptr().cast(),
        )
    })
}

fn write_file(path: &std::ffi::CStr, data: &[u8]) -> i32 {
    // SAFETY: `path` is NUL-terminated; the fd is closed below on every path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Errno::last_raw();
    }
    // SAFETY: `data` is a live slice for the duration of the call.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let r = if n < 0 { Errno::last_raw() } else { 0 };
    // SAFETY: `fd` was opened above and is not used after this.
    unsafe { libc::close(fd) };
    r
}

fn errno_of(ret: libc::c_int) -> i32 {
    if ret == 0 { 0 } else { Errno::last_raw() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_first_step_is_named_for_the_later_ones() {
        let mut r = [NOT_TRIED; STEPS.len()];
        r[USER] = libc::EPERM;
        let c = step_check(&r, 7);
        let f = c.error.unwrap();
        assert_eq!(f.call, "unshare(CLONE_NEWUSER)");
        assert_eq!(f.errno, None);
        assert_eq!(f.message, "not tried: unshare(CLONE_NEWUSER) failed first");
        let f = step_check(&r, USER).error.unwrap();
        assert_eq!(f.errno.as_deref(), Some("EPERM"));
        assert_eq!(hint(&r), Some(HINT_EPERM));
    }

    #[test]
    fn the_probe_reports_every_step() {
        let ns = userns();
        // Whatever the machine allows, every step has an answer and nothing panics.
        if !ns.works {
            crate::probe::skip(&format!("user namespaces do not work here: {:?}", ns.user));
            return;
        }
        assert!(ns.mount.ok, "{:?}", ns.mount);
        assert!(ns.pid.ok && ns.net.ok && ns.ipc.ok && ns.uts.ok, "{ns:?}");
    }
}
