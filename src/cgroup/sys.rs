//! cgroupfs file operations shared by the backends: single-write file updates, keyed
//! reads, and the kill-then-rmdir teardown of a cgroup subtree.

use std::ffi::CString;
use std::io::{ErrorKind, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;

/// How long teardown waits for the kernel to finish killing and unlinking.
const TEARDOWN: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(5);

/// One `write(2)` of `value` (cgroupfs parses each write on its own).
pub fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let err = |source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(err)?;
    file.write_all(value.as_bytes()).map_err(err)
}

pub fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The value of `key` in a `key value` file (memory.events, cpu.stat, pids.events,
/// memory.oom_control).
pub fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Calls `done` until it says true (Ok(true)) or `timeout` passes (Ok(false)), sleeping a
/// little longer each time (50 µs doubling to 5 ms): a freezer usually settles within a
/// millisecond. An error from `done` ends the wait.
pub fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<bool, CgroupError> {
    let start = Instant::now();
    let mut nap = Duration::from_micros(50);
    loop {
        if done()? {
            return Ok(true);
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(nap.min(left));
        nap = (nap * 2).min(POLL);
    }
}

/// A file holding one number.
pub fn number(path: &Path) -> Option<u64> {
    read(path).ok()?.trim().parse().ok()
}

/// A directory descriptor for `CLONE_INTO_CGROUP`.
pub fn open_dir(path: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| CgroupError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Opens a cgroup file for writing (close-on-exec, like every std open).
pub fn open_write(path: &Path) -> Result<OwnedFd, CgroupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|source| CgroupError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Write and search access for our effective ids (what mkdir and writes will need).
pub fn can_write(path: &Path, dir: bool) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mode = if dir {
        libc::W_OK | libc::X_OK
    } else {
        libc::W_OK
    };
    // SAFETY: `c` is NUL-terminated and outlives the call; faccessat only reads it.
    unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) == 0 }
}

/// `dir` and every cgroup beneath it, parents first.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            out.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    out
}

fn procs(dir: &Path) -> Vec<libc::pid_t> {
    std::fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

/// SIGKILLs every process in `dir` and its sub-cgroups, in rounds, until none is left (a
/// process may fork while the round runs; a killed one cannot). A pid is signalled through
/// a pidfd opened *before* re-checking that the pid is still listed in the cgroup, so a
/// recycled pid outside the cgroup is never hit. A missing directory is already empty.
pub fn kill_tree(dir: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut rounds = 0;
    loop {
        if kill_round(dir) == 0 {
            return Ok(());
        }
        if start.elapsed() > TEARDOWN {
            return Err(CgroupError::Unkillable {
                path: dir.to_owned(),
                attempts: rounds,
            });
        }
        rounds += 1;
        std::thread::sleep(POLL);
    }
}

/// One round of [`kill_tree`]: SIGKILL to every process listed in `dir` and its
/// sub-cgroups; returns how many were listed. A frozen v1 cgroup's processes only die once
/// it is thawed: the signal waits, pending, and no instruction of theirs runs first.
pub fn kill_round(dir: &Path) -> usize {
    let cgroups = tree(dir);
    let listed: Vec<(PathBuf, libc::pid_t)> = cgroups
        .iter()
        .flat_map(|d| procs(d).into_iter().map(move |p| (d.clone(), p)))
        .collect();
    let n = listed.len();
    let fds: Vec<(PathBuf, libc::pid_t, Option<OwnedFd>)> = listed
        .into_iter()
        .map(|(d, p)| (d, p, pidfd_open(p)))
        .collect();
    for (d, pid, fd) in fds {
        if !procs(&d).contains(&pid) {
            continue;
        }
        match fd {
            Some(fd) => pidfd_kill(&fd),
            // No pidfds (kernel < 5.3): a plain kill, the pid having just been listed.
            None => {
                // SAFETY: kill has no memory arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
    n
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags, no pointers.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // A new descriptor, or -1 (errno).
    let fd = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0)?;
    // SAFETY: the syscall returned a new descriptor that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn pidfd_kill(fd: &OwnedFd) {
    // SAFETY: a valid pidfd, a signal number, a null siginfo and no flags.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
}

/// Removes `dir` and any sub-cgroups, deepest first, retrying EBUSY while the kernel
/// finishes tearing down exited processes. A missing directory is already removed.
pub fn rmdir_tree(dir: &Path) -> Result<(), CgroupError> {
    for d in tree(dir).iter().rev() {
        rmdir_retry(d)?;
    }
    Ok(())
}

fn rmdir_retry(dir: &Path) -> Result<(), CgroupError> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < TEARDOWN => {
                std::thread::sleep(POLL);
            }
            Err(source) => {
                return Err(CgroupError::Rmdir {
                    path: dir.to_owned(),
                    source,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let text = "low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed(text, "oom_kill"), Some(1));
        assert_eq!(keyed(text, "max"), Some(12));
        assert_eq!(keyed(text, "oom"), Some(2));
        assert_eq!(keyed(text, "missing"), None);
        assert_eq!(keyed("usage_usec 123456\n", "usage_usec"), Some(123456));
        assert_eq!(
            keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill"),
            Some(3)
        );
    }

    #[test]
    fn teardown_of_a_plain_tree() {
        // An ordinary directory tree stands in for a cgroup (no cgroup.procs: nothing to
        // kill), so the rmdir order is checked without privileges.
        let top = std::env::temp_dir().join(format!("plugjail-cg-sys-{}", std::process::id()));
        std::fs::create_dir_all(top.join("a/b")).unwrap();
        std::fs::create_dir_all(top.join("c")).unwrap();
        kill_tree(&top).unwrap();
        rmdir_tree(&top).unwrap();
        assert!(!top.exists());
        rmdir_tree(&top).unwrap();
        kill_tree(&top).unwrap();
    }
}
