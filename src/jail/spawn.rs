//! The supervisor side: clone the child into its namespaces, write its id maps, release
//! it, and wait for the outcome.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::Signal;

use super::child::{self, ChildFds};
use super::idmap::MapError;
use super::plan::{Plan, close_ranges};
use super::step::{Failure, RECORD_LEN};
use super::sys::{self, CloneArgs};

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("pipe2: {source}")]
    Pipe { source: io::Error },
    #[error("clone3 into new namespaces: {source}")]
    Clone { source: io::Error },
    #[error(transparent)]
    Maps(#[from] MapError),
    #[error("cannot release the jail child: {source}")]
    Release { source: io::Error },
    #[error("waitpid on the jail: {source}")]
    Wait { source: io::Error },
    #[error("reading the jail's {pipe} pipe: {source}")]
    Read {
        pipe: &'static str,
        source: io::Error,
    },
}

impl SpawnError {
    /// The errno behind the error, for the verdict.
    pub fn errno(&self) -> Option<i32> {
        match self {
            SpawnError::Pipe { source }
            | SpawnError::Clone { source }
            | SpawnError::Release { source }
            | SpawnError::Wait { source }
            | SpawnError::Read { source, .. } => source.raw_os_error(),
            SpawnError::Maps(e) => e.source.raw_os_error(),
        }
    }

    /// The step name for the verdict.
    pub fn step(&self) -> &'static str {
        match self {
            SpawnError::Pipe { .. } => "pipe",
            SpawnError::Clone { .. } => "clone",
            SpawnError::Maps(_) => "id_maps",
            SpawnError::Release { .. } => "release",
            SpawnError::Wait { .. } | SpawnError::Read { .. } => "supervise",
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A step of the jail sequence failed (the target never ran, or its exec failed).
    Failed(Failure),
    /// The target exited with this code.
    Exited(i32),
    /// The target was killed by this signal.
    Signaled(i32),
    /// The jail's init ended without reporting the target (killed from outside, e.g. by a
    /// limit): its own wait status.
    InitEnded(i32),
}

/// A started jail.
#[derive(Debug)]
pub struct Running {
    pub pid: libc::pid_t,
    /// Kept for later: deadlines poll it, kills go through it without pid reuse races.
    pub pidfd: OwnedFd,
    /// Kept open while the jail runs: the child checks it to know the supervisor lives.
    sync_w: OwnedFd,
    err_r: File,
    status_r: File,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let (r, w) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| SpawnError::Pipe {
            source: io::Error::from(e),
        })?;
    Ok((r, w))
}

/// Clones the child, writes its id maps and lets it run the jail sequence.
///
/// The caller must be single-threaded (plugjail's main thread is its only thread):
/// `clone3` without a new stack is a fork, and `CLONE_NEWUSER` refuses threaded callers.
pub fn start(plan: &Plan) -> Result<Running, SpawnError> {
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let memfd = plan.target.memfd.as_raw_fd();
    let fds = ChildFds {
        sync_r: sync_r.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        status_w: status_w.as_raw_fd(),
        memfd,
        close: close_ranges(&[err_w.as_raw_fd(), status_w.as_raw_fd(), memfd]),
    };
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: plan.namespaces.flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    // SAFETY: plugjail is single-threaded here, and the child branch below only runs
    // `child::run`, which makes raw syscalls on data prepared before this call and never
    // returns.
    let pid = unsafe { sys::clone3(&mut args) }.map_err(|e| SpawnError::Clone {
        source: io::Error::from_raw_os_error(e),
    })?;
    if pid == 0 {
        // The child must not hold the supervisor's ends: EOF on the sync pipe is how it
        // learns the supervisor died.
        sys::close(sync_w.as_raw_fd());
        sys::close(err_r.as_raw_fd());
        sys::close(status_r.as_raw_fd());
        child::run(plan, &fds);
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((sync_r, err_w, status_w));
    let running = Running {
        pid,
        pidfd,
        sync_w,
        err_r: File::from(err_r),
        status_r: File::from(status_r),
    };
    if let Err(e) = plan.ids.write(pid) {
        running.kill_and_reap();
        return Err(e.into());
    }
    if let Err(e) = nix::unistd::write(&running.sync_w, b"G") {
        running.kill_and_reap();
        return Err(SpawnError::Release {
            source: io::Error::from(e),
        });
    }
    Ok(running)
}

impl Running {
    fn kill_and_reap(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }

    /// Waits for the jail to end and says how.
    pub fn wait(mut self) -> Result<Ending, SpawnError> {
        // The error pipe reaches EOF when the target has exec'd (close-on-exec) or every
        // holder has exited; a record means a step failed.
        let mut record = Vec::new();
        let read_err = |pipe| move |source| SpawnError::Read { pipe, source };
        (&mut self.err_r)
            .take(RECORD_LEN as u64)
            .read_to_end(&mut record)
            .map_err(read_err("error"))?;
        let init_status = loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out pointer; the pid is our own child.
            let ret = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if ret == self.pid {
                break status;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(SpawnError::Wait { source: err });
            }
        };
        if let Ok(bytes) = <[u8; RECORD_LEN]>::try_from(record.as_slice())
            && let Some(failure) = Failure::decode(&bytes)
        {
            return Ok(Ending::Failed(failure));
        }
        let mut status = Vec::new();
        (&mut self.status_r)
            .take(4)
            .read_to_end(&mut status)
            .map_err(read_err("status"))?;
        Ok(match <[u8; 4]>::try_from(status.as_slice()) {
            Ok(bytes) => decode_status(i32::from_ne_bytes(bytes)),
            Err(_) => Ending::InitEnded(init_status),
        })
    }
}

fn decode_status(status: i32) -> Ending {
    if libc::WIFSIGNALED(status) {
        Ending::Signaled(libc::WTERMSIG(status))
    } else {
        Ending::Exited(libc::WEXITSTATUS(status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_statuses_decode() {
        assert_eq!(decode_status(3 << 8), Ending::Exited(3));
        assert_eq!(decode_status(libc::SIGKILL), Ending::Signaled(9));
        assert_eq!(decode_status(libc::SIGSEGV | 0x80), Ending::Signaled(11));
    }
}
