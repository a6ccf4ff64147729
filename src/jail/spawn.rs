//! The supervisor side: clone the child into its namespaces, write its id maps, release
//! it, and wait for the outcome.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::signal::Signal;

use std::time::Instant;

use crate::cgroup::{Cgroup, CgroupError};

use super::child::{self, ChildFds};
use super::idmap::MapError;
use super::init::{self, Naming, Report, Violation};
use super::plan::{Plan, close_ranges};
use super::step::{Failure, RECORD_LEN};
use super::sys::{self, CloneArgs};
use super::target::TargetError;

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
    #[error("placing the jail in its cgroup: {0}")]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Program(#[from] TargetError),
    #[error(
        "plugjail has {threads} threads here; the jail can only be cloned from a \
         single-threaded process (a plugjail bug)"
    )]
    Threaded { threads: String },
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
            SpawnError::Program(TargetError::Memfd { source, .. }) => source.raw_os_error(),
            SpawnError::Cgroup(_) | SpawnError::Program(_) | SpawnError::Threaded { .. } => None,
        }
    }

    /// The step name for the verdict.
    pub fn step(&self) -> &'static str {
        match self {
            SpawnError::Pipe { .. } => "pipe",
            SpawnError::Clone { .. } | SpawnError::Threaded { .. } => "clone",
            SpawnError::Maps(_) => "id_maps",
            SpawnError::Release { .. } => "release",
            SpawnError::Wait { .. } | SpawnError::Read { .. } => "supervise",
            SpawnError::Cgroup(_) => "cgroup",
            SpawnError::Program(_) => "program",
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
    /// A process of the jail made a syscall the seccomp filter refuses; the init named it
    /// and ended the jail (`default_action: kill_process` with ptrace naming).
    SeccompViolation(Violation),
    /// Plugin mode: the init could not hand the channel to the stub at its switch (this
    /// errno from sendmsg) and ended the jail.
    HandoverFailed(i32),
    /// The jail's init ended without reporting the target (killed from outside, e.g. by a
    /// limit): its own wait status.
    InitEnded(i32),
}

/// Why the supervisor ended the jail before it ended by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The wall-time deadline passed.
    Deadline,
    /// plugjail itself received this signal (SIGINT, SIGTERM, SIGHUP).
    Signal(i32),
    /// The caller's [`Watch`] asked for it (it knows why: a call deadline, a protocol
    /// violation seen by the host, ...).
    Watched,
}

/// Extra supervision a caller adds to [`Running::supervise_watched`]: a periodic look
/// (plugin mode: the call/idle deadlines) and descriptors that wake the supervisor (plugin
/// mode: the host thread reporting a protocol violation, the host's deadline signal, the
/// control socket that pauses and resumes the jail).
pub trait Watch {
    /// How often to call [`Watch::check`] at the least (None: only on wake-ups).
    fn period(&self) -> Option<std::time::Duration>;
    /// Descriptors whose readability (or hang-up) calls [`Watch::check`]; `check` must
    /// drain them, and stop listing one that has hung up.
    fn wake_fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>>;
    /// Looks, and may act on the running `jail`; true ends the jail now
    /// ([`Stopped::Watched`]).
    fn check(&mut self, jail: LiveJail<'_>) -> bool;
}

/// The running jail, as a [`Watch`] may act on it.
#[derive(Debug, Clone, Copy)]
pub struct LiveJail<'a> {
    /// The jail's init on the host (PID 1 inside). The supervisor's own child, reaped only
    /// once supervision ends, so the pid cannot be reused while a `Watch` looks at it.
    pub init: libc::pid_t,
    /// The jail's cgroup, if it has one.
    pub cgroup: Option<&'a Cgroup>,
}

/// The end of a run as the supervisor saw it.
#[derive(Debug, Clone, Copy)]
pub struct Finished {
    pub ending: Ending,
    /// Set when the supervisor killed the jail.
    pub stopped: Option<Stopped>,
    /// CPU time of the whole jail (every process its init reaped), in microseconds.
    pub cpu_usec: u64,
    /// Largest resident set of any one process in the jail, in bytes.
    pub max_rss: u64,
    /// How refused syscalls were named (as the init reported; `NotWanted` without a
    /// report).
    pub naming: Naming,
}

/// Signals that make plugjail end the jail and still deliver a verdict. They are blocked
/// (the child unblocks everything before exec) and read from a signalfd while waiting.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

fn stop_set() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in STOP_SIGNALS {
        set.add(s);
    }
    set
}

/// Blocks [`STOP_SIGNALS`] in the calling thread, so that one sent while plugjail sets up
/// (say, between creating the jail's cgroup and watching for signals) stays pending
/// instead of killing plugjail with the cgroup left behind. Every command calls it first;
/// [`block_stop_signals`] then reads what came early.
pub fn hold_stop_signals() {
    let _ = stop_set().thread_block();
}

/// Blocks [`STOP_SIGNALS`] in the calling thread and returns a signalfd that reads them;
/// call before [`start`] so that none is lost or kills plugjail before a verdict exists.
pub fn block_stop_signals() -> nix::Result<nix::sys::signalfd::SignalFd> {
    let set = stop_set();
    set.thread_block()?;
    nix::sys::signalfd::SignalFd::with_flags(&set, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
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

/// A close-on-exec pipe numbered above every placed descriptor's target, so the child's
/// `dup2`s into place cannot overwrite it.
fn pipe() -> Result<(OwnedFd, OwnedFd), SpawnError> {
    let err = |e: nix::errno::Errno| SpawnError::Pipe {
        source: io::Error::from(e),
    };
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    let high = |fd: OwnedFd| {
        if fd.as_raw_fd() > super::plan::MAX_PLACED_FD {
            return Ok(fd);
        }
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own; no pointers.
        let copy = unsafe {
            libc::fcntl(
                fd.as_raw_fd(),
                libc::F_DUPFD_CLOEXEC,
                super::plan::MAX_PLACED_FD + 1,
            )
        };
        if copy < 0 {
            return Err(err(nix::errno::Errno::last()));
        }
        // SAFETY: fcntl just returned this descriptor; nothing else owns it. The low one
        // is closed when `fd` drops.
        Ok(unsafe { OwnedFd::from_raw_fd(copy) })
    };
    Ok((high(r)?, high(w)?))
}

/// Clones the child, writes its id maps and lets it run the jail sequence.
///
/// Only sound in a single-threaded process: `clone3` without a new stack is a fork, after
/// which the child makes raw syscalls only, but another thread could hold a lock (of the
/// allocator, say) at the moment of the copy. So the thread count is checked first, and a
/// threaded caller gets an error rather than undefined behaviour (`CLONE_NEWUSER` would
/// refuse it anyway).
///
/// With a cgroup, the child starts inside it on v2 (`CLONE_INTO_CGROUP`); on v1 it joins it
/// itself (child step 19b) through descriptors opened here, before it forks the target.
/// Either way no process of the program ever runs outside the jail's limits.
pub fn start(plan: &Plan, cgroup: Option<&Cgroup>) -> Result<Running, SpawnError> {
    single_threaded()?;
    let (sync_r, sync_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let join = cgroup
        .map(Cgroup::join_fds)
        .transpose()?
        .unwrap_or_default();
    let memfd = plan.target.memfd.as_raw_fd();
    let fds = ChildFds {
        sync_r: sync_r.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        status_w: status_w.as_raw_fd(),
        memfd,
        close: close_ranges(
            &[err_w.as_raw_fd(), status_w.as_raw_fd(), memfd]
                .into_iter()
                .chain(plan.fds.iter().map(|p| p.target))
                .collect::<Vec<_>>(),
        ),
        join_cgroup: join.iter().map(AsRawFd::as_raw_fd).collect(),
    };
    let mut pidfd: RawFd = -1;
    // The cgroup namespace is made by the child itself once it is in its cgroup.
    let flags = plan.namespaces.flags & !(libc::CLONE_NEWCGROUP as u64);
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(dir) = cgroup.and_then(Cgroup::dir_fd) {
        args.flags |= CLONE_INTO_CGROUP;
        // A borrowed descriptor is never negative.
        args.cgroup = u64::from(dir.as_raw_fd().cast_unsigned());
    }
    // SAFETY: plugjail is single-threaded here (checked above: no other thread exists to
    // start one in between), and the child branch below only runs
    // `child::run`, which makes raw syscalls on data prepared before this call and never
    // returns.
    let pid = unsafe { sys::clone3(&mut args) }.map_err(|e| SpawnError::Clone {
        source: io::Error::from_raw_os_error(e),
    })?;
    if pid == 0 {
        // The child must not hold the supervisor's ends: EOF on the sync pipe is how it
        // learns the supervisor died.
        // SAFETY: in the child, whose copies of these OwnedFds are never dropped (it execs
        // or `_exit`s inside `child::run`), so the numbers are closed exactly once here.
        unsafe { sys::close(sync_w.as_raw_fd()) };
        // SAFETY: as above.
        unsafe { sys::close(err_r.as_raw_fd()) };
        // SAFETY: as above.
        unsafe { sys::close(status_r.as_raw_fd()) };
        // SAFETY: this is the child of the clone3 above, made of a single-threaded process
        // (checked first thing), and `plan` and `fds` were prepared before it.
        unsafe { child::run(plan, &fds) };
    }
    crate::timing::mark("clone");
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
    running.release(b"G")?;
    crate::timing::mark("maps");
    // The program's bytes go into its memfd now, on this CPU while the child builds its
    // mounts on the other; the child waits for the second byte ("P", child step 24c)
    // before it forks the target.
    if let Err(e) = plan.target.fill() {
        running.kill_and_reap();
        return Err(e.into());
    }
    running.release(b"P")?;
    crate::timing::mark("program");
    Ok(running)
}

impl Running {
    /// Sends release bytes on the sync pipe (a failure kills and reaps the child).
    fn release(&self, bytes: &[u8]) -> Result<(), SpawnError> {
        match nix::unistd::write(&self.sync_w, bytes) {
            Ok(n) if n == bytes.len() => Ok(()),
            other => {
                self.kill_and_reap();
                Err(SpawnError::Release {
                    source: match other {
                        Err(e) => io::Error::from(e),
                        Ok(_) => io::ErrorKind::WriteZero.into(),
                    },
                })
            }
        }
    }

    fn kill_and_reap(&self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }

    /// Kills the whole jail: its init (PID 1 of the jail's PID namespace, whose death takes
    /// every process in it) through the pidfd, so a recycled pid is never hit, and
    /// everything in its cgroup.
    pub fn kill(&self, cgroup: Option<&Cgroup>) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid), None).and_then(|()| {
            // SAFETY: pidfd_send_signal with a pidfd we own, no siginfo, no flags.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    self.pidfd.as_raw_fd(),
                    libc::SIGKILL,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            };
            nix::errno::Errno::result(r).map(drop)
        });
        if let Some(cg) = cgroup {
            let _ = cg.kill_all();
        }
    }

    /// Waits for the jail to end, ending it first when `deadline` passes, plugjail is asked
    /// to stop through `stop` (a signalfd of [`STOP_SIGNALS`]), or `watch` says so.
    pub fn supervise_watched(
        mut self,
        deadline: Option<Instant>,
        stop: Option<&nix::sys::signalfd::SignalFd>,
        cgroup: Option<&Cgroup>,
        mut watch: Option<&mut dyn Watch>,
    ) -> Result<Finished, SpawnError> {
        let setup = self.read_setup_record()?;
        let mut stopped = None;
        while stopped.is_none() {
            let w = watch.as_mut().map(|w| &mut **w as &mut dyn Watch);
            match self.wait_event(deadline, stop, cgroup, w)? {
                Event::Exited => break,
                Event::Deadline => stopped = Some(Stopped::Deadline),
                Event::Signal(sig) => stopped = Some(Stopped::Signal(sig)),
                Event::Watched => stopped = Some(Stopped::Watched),
            }
            self.kill(cgroup);
        }
        let (init_status, usage) = self.reap()?;
        let record = self.init_record()?;
        let naming = record.map_or(Naming::NotWanted, |r| r.naming);
        let ending = match (setup, record) {
            (Some(failure), _) => Ending::Failed(failure),
            (None, Some(r)) => match r.report {
                Report::Ended(status) => decode_status(status),
                Report::Violation(v) => Ending::SeccompViolation(v),
                Report::HandoverFailed(errno) => Ending::HandoverFailed(errno),
            },
            (None, None) => Ending::InitEnded(init_status),
        };
        // Resource usage is never negative (0 if the kernel said otherwise).
        let positive = |n: i64| u64::try_from(n).unwrap_or(0);
        let micros = |t: libc::timeval| positive(t.tv_sec) * 1_000_000 + positive(t.tv_usec);
        Ok(Finished {
            ending,
            stopped,
            cpu_usec: micros(usage.ru_utime) + micros(usage.ru_stime),
            max_rss: positive(usage.ru_maxrss) * 1024,
            naming,
        })
    }

    /// The child's setup failure record, if a step failed. Returns at the target's exec
    /// (the pipe is close-on-exec) or when every holder has exited.
    fn read_setup_record(&mut self) -> Result<Option<Failure>, SpawnError> {
        let mut record = Vec::new();
        (&mut self.err_r)
            .take(RECORD_LEN as u64)
            .read_to_end(&mut record)
            .map_err(|source| SpawnError::Read {
                pipe: "error",
                source,
            })?;
        crate::timing::mark("exec");
        Ok(<[u8; RECORD_LEN]>::try_from(record.as_slice())
            .ok()
            .and_then(|bytes| Failure::decode(&bytes)))
    }

    /// Sleeps until the init exits, the deadline passes, a stop signal arrives or the
    /// watch asks to end the jail.
    fn wait_event(
        &self,
        deadline: Option<Instant>,
        stop: Option<&nix::sys::signalfd::SignalFd>,
        cgroup: Option<&Cgroup>,
        mut watch: Option<&mut dyn Watch>,
    ) -> Result<Event, SpawnError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let period = watch.as_ref().and_then(|w| w.period());
        loop {
            let mut wait = period;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(Event::Deadline);
                }
                wait = Some(wait.map_or(left, |p| p.min(left)));
            }
            let timeout = match wait {
                None => PollTimeout::NONE,
                Some(left) => {
                    // Round up so a wake-up never comes just before the deadline.
                    PollTimeout::try_from(left.as_millis().saturating_add(1))
                        .unwrap_or(PollTimeout::MAX)
                }
            };
            let mut fds = vec![PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            if let Some(sfd) = stop {
                fds.push(PollFd::new(sfd.as_fd(), PollFlags::POLLIN));
            }
            let wake = watch.as_ref().map(|w| w.wake_fds()).unwrap_or_default();
            for fd in wake {
                fds.push(PollFd::new(fd, PollFlags::POLLIN));
            }
            let polled = poll(&mut fds, timeout);
            let ready = |fd: &PollFd| fd.revents().is_some_and(|r| !r.is_empty());
            let exited = ready(&fds[0]);
            // The signalfd blocks: read it only when poll says a signal is there.
            let signalled = stop.is_some() && fds.get(1).is_some_and(ready);
            drop(fds);
            match polled {
                Err(nix::errno::Errno::EINTR) | Ok(_) => {}
                Err(e) => {
                    return Err(SpawnError::Wait {
                        source: io::Error::from(e),
                    });
                }
            }
            if exited {
                return Ok(Event::Exited);
            }
            // A look at every wake-up (period, wake fd, or a signal): cheap, and it keeps
            // the period even when other descriptors are busy.
            let jail = LiveJail {
                init: self.pid,
                cgroup,
            };
            if let Some(w) = watch.as_deref_mut()
                && w.check(jail)
            {
                return Ok(Event::Watched);
            }
            if let Some(sfd) = stop
                && signalled
                && let Ok(Some(info)) = sfd.read_signal()
            {
                return Ok(Event::Signal(info.ssi_signo as i32));
            }
        }
    }

    /// Reaps the init; returns its wait status and the CPU and memory figures of every
    /// process it reaped in turn.
    fn reap(&self) -> Result<(i32, libc::rusage), SpawnError> {
        loop {
            let mut status = 0;
            // SAFETY: all-zero is a valid rusage.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: `status` and `usage` are valid out pointers; the pid is our own child.
            let ret = unsafe { libc::wait4(self.pid, &mut status, 0, &mut usage) };
            if ret == self.pid {
                return Ok((status, usage));
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(SpawnError::Wait { source: err });
            }
        }
    }

    /// The init's report (the target's wait status, or a seccomp violation), if it wrote
    /// one before it ended.
    fn init_record(&mut self) -> Result<Option<init::Record>, SpawnError> {
        let mut record = Vec::new();
        (&mut self.status_r)
            .take(init::RECORD_LEN as u64)
            .read_to_end(&mut record)
            .map_err(|source| SpawnError::Read {
                pipe: "status",
                source,
            })?;
        Ok(<[u8; init::RECORD_LEN]>::try_from(record.as_slice())
            .ok()
            .and_then(|bytes| init::Record::decode(&bytes)))
    }
}

enum Event {
    Exited,
    Deadline,
    Signal(i32),
    Watched,
}

/// `CLONE_INTO_CGROUP` (linux/sched.h), not in the libc crate for every target.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

fn decode_status(status: i32) -> Ending {
    if libc::WIFSIGNALED(status) {
        Ending::Signaled(libc::WTERMSIG(status))
    } else {
        Ending::Exited(libc::WEXITSTATUS(status))
    }
}

/// Ok when this process has exactly one thread (`Threads:` in /proc/self/status).
fn single_threaded() -> Result<(), SpawnError> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let threads = status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .map(str::trim)
        .unwrap_or("an unknown number of");
    if threads == "1" {
        Ok(())
    } else {
        Err(SpawnError::Threaded {
            threads: threads.to_owned(),
        })
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

    #[test]
    fn a_threaded_caller_is_refused_before_clone() {
        // This test process has at least the harness's thread and this one's; one more,
        // parked, makes sure of it.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let parked = std::thread::spawn(move || rx.recv());
        let refused = single_threaded();
        drop(tx);
        let _ = parked.join();
        match refused {
            Err(SpawnError::Threaded { threads }) => {
                assert!(threads.parse::<u32>().is_ok_and(|n| n >= 2), "{threads}")
            }
            other => panic!("{other:?}"),
        }
    }
}
