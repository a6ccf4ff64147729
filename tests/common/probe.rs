//! Kernel feature probes: root, Landlock, seccomp, user namespaces.

use std::fs;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::OnceLock;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The Landlock ABI version the kernel offers, or `None` without Landlock.
pub fn landlock_abi() -> Option<i64> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
    static ABI: OnceLock<Option<i64>> = OnceLock::new();
    *ABI.get_or_init(|| {
        // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel
        // only returns the ABI version; no memory is read and no fd is created.
        let v = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                std::ptr::null::<u8>(),
                0usize,
                LANDLOCK_CREATE_RULESET_VERSION,
            )
        };
        (v > 0).then_some(v)
    })
}

/// Whether seccomp filters with `kill_process` are available.
pub fn seccomp() -> bool {
    fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .is_ok_and(|s| s.split_whitespace().any(|a| a == "kill_process"))
}

/// Whether a process running as `uid` (or as ourselves with `None`) can create a user
/// namespace. Probed for real in a child, since sysctls, LSMs and containers all have
/// a say.
pub fn user_namespaces(uid: Option<u32>) -> Result<(), String> {
    let mut cmd = Command::new("/bin/true");
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `become_and_unshare` only makes async-signal-safe syscalls and
    // allocates nothing.
    unsafe { cmd.pre_exec(move || become_and_unshare(uid)) };
    match cmd.status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("/bin/true in a new user namespace exited with {s}")),
        Err(e) => Err(format!("cannot create a user namespace: {e}")),
    }
}

/// The body of [`user_namespaces`]'s `pre_exec` hook: become `uid` (if given), then
/// unshare a user namespace. Raw syscalls only, no allocation.
fn become_and_unshare(uid: Option<u32>) -> io::Result<()> {
    if let Some(id) = uid {
        // SAFETY: an empty group list: size 0 and no memory read.
        if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: integer arguments only. glibc's wrapper makes every thread follow, but
        // after the fork this child has one thread.
        if unsafe { libc::setresgid(id, id, id) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::setresuid(id, id, id) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // SAFETY: integer arguments only; it changes this child's namespaces, nothing else.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
