//! Pausing a jail without a cgroup freezer: job-control stops (SIGSTOP, SIGCONT) sent from
//! outside to every process of the jail but its init.
//!
//! This is the fallback where the jail has no cgroup (rootless on cgroup v1: rlimits only).
//! The jail's processes are the init's descendants: the parent of a process in the jail's
//! PID namespace is in it too (only the init's is outside), and an orphan is adopted by
//! the init (or a subreaper in the jail), never by a process outside. They are found
//! from the parent pids in `/proc/*/stat` (readable by anyone) again in every round,
//! since a process may fork or be re-parented while the round runs. (The namespace itself,
//! `/proc/<init>/ns/pid`, is out of a rootless supervisor's reach: the init is not
//! dumpable.)
//!
//! A pause sends SIGSTOP to each of them, in rounds, until two rounds in a row find the
//! same processes with every thread stopped: a stopped process cannot fork, so the rounds
//! converge. Each pid is signalled through a pidfd opened *before* its parent is checked
//! again, so a recycled pid outside the jail is never hit. A traced jail's processes stop
//! too: the init lets the SIGSTOP through and holds each group stop with `PTRACE_LISTEN`
//! until SIGCONT (`init.rs`). The init itself is left running: it is plugjail's own code,
//! asleep in `wait4` while nothing in the jail moves.
//!
//! What the plugin can notice (a freezer shows it none of this): a parent in the jail gets
//! SIGCHLD for a stopped and a continued child, `wait` with `WUNTRACED`/`WCONTINUED` sees
//! them, a SIGCONT handler runs on resume, and a process the plugin had stopped itself is
//! continued by the resume.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum StopError {
    #[error("{syscall}({signal}) to process {pid} of the jail: {source}")]
    Signal {
        syscall: &'static str,
        signal: &'static str,
        pid: libc::pid_t,
        source: io::Error,
    },
    #[error("the jail's processes were not all stopped after {waited:?}; they were continued")]
    Timeout { waited: Duration },
}

impl StopError {
    pub fn errno(&self) -> Option<i32> {
        match self {
            StopError::Signal { source, .. } => source.raw_os_error(),
            StopError::Timeout { .. } => None,
        }
    }
}

/// The processes of one jail, for stopping and continuing them.
#[derive(Debug, Clone, Copy)]
pub struct JobStop {
    init: libc::pid_t,
}

impl JobStop {
    /// The jail whose init is `init` on the host. The caller keeps `init` unreaped (it is
    /// its child), so the pid cannot be reused meanwhile.
    pub fn new(init: libc::pid_t) -> JobStop {
        JobStop { init }
    }

    /// Every process of the jail but the init, in pid order: the init's descendants.
    pub fn processes(&self) -> Vec<libc::pid_t> {
        let parents = parents();
        let mut out = Vec::new();
        let mut frontier = vec![self.init];
        while let Some(p) = frontier.pop() {
            for &(child, parent) in &parents {
                if parent == p && child != self.init && !out.contains(&child) {
                    out.push(child);
                    frontier.push(child);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Stops every process of the jail but the init and returns once all of them are
    /// stopped (every thread in a job-control or ptrace stop, or exited): how many there
    /// are. Past `timeout` it continues them again and fails. Stopping a stopped jail is
    /// harmless.
    pub fn stop(&self, timeout: Duration) -> Result<usize, StopError> {
        let start = Instant::now();
        let mut nap = Duration::from_micros(100);
        let mut last: Option<Vec<libc::pid_t>> = None;
        loop {
            let procs = self.processes();
            let mut all_stopped = true;
            for &pid in &procs {
                // Every round, to every process: SIGSTOP to a stopped process does nothing
                // (a later SIGCONT discards it), and a process the round before saw stopped
                // may have been continued by another one since.
                self.signal(pid, &procs, libc::SIGSTOP)?;
                all_stopped &= stopped(pid);
            }
            if all_stopped && last.as_ref() == Some(&procs) {
                return Ok(procs.len());
            }
            last = Some(procs);
            if start.elapsed() >= timeout {
                let _ = self.resume();
                return Err(StopError::Timeout { waited: timeout });
            }
            std::thread::sleep(nap);
            nap = (nap * 2).min(Duration::from_millis(5));
        }
    }

    /// Continues every process of the jail but the init (SIGCONT).
    pub fn resume(&self) -> Result<(), StopError> {
        let procs = self.processes();
        let mut first = None;
        for &pid in &procs {
            if let Err(e) = self.signal(pid, &procs, libc::SIGCONT) {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// Sends `sig` to `pid` through a pidfd opened before checking again that `pid` is in
    /// the jail: its parent is the init or one of `jail`. A process that is gone is no
    /// error.
    fn signal(&self, pid: libc::pid_t, jail: &[libc::pid_t], sig: i32) -> Result<(), StopError> {
        let err = |syscall, source| StopError::Signal {
            syscall,
            signal: if sig == libc::SIGSTOP {
                "SIGSTOP"
            } else {
                "SIGCONT"
            },
            pid,
            source,
        };
        // SAFETY: pidfd_open takes a pid and flags, no pointers.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let Some(fd) = RawFd::try_from(fd).ok().filter(|&fd| fd >= 0) else {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ESRCH) => Ok(()),
                _ => Err(err("pidfd_open", e)),
            };
        };
        // SAFETY: the syscall returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // A recycled pid's process is no child of the jail's (a process of the jail
        // would be in the next round anyway).
        match parent(pid) {
            Some(p) if p == self.init || jail.contains(&p) => {}
            _ => return Ok(()),
        }
        // SAFETY: a pidfd we own, a signal number, a null siginfo and no flags.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::ESRCH) => Ok(()),
            _ => Err(err("pidfd_send_signal", e)),
        }
    }
}

/// (pid, parent pid) of every process in /proc.
fn parents() -> Vec<(libc::pid_t, libc::pid_t)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter_map(|pid| Some((pid, parent(pid)?)))
        .collect()
}

/// The parent pid of `pid` (field 4 of /proc/PID/stat), if it still exists.
fn parent(pid: libc::pid_t) -> Option<libc::pid_t> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Every thread of `pid` is in a job-control stop (`T`), a ptrace stop (`t`), or has
/// exited (`Z`, `X`); a process that is gone counts as stopped.
fn stopped(pid: libc::pid_t) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat"))
            .map(|s| matches!(state(&s), Some('T' | 't' | 'Z' | 'X')))
            // A thread that vanished between the listing and the read has exited.
            .unwrap_or(true)
    })
}

/// The state letter of a `/proc/PID/stat` line (the field after the command, which may
/// itself hold spaces and parentheses).
fn state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_letters() {
        assert_eq!(state("12 (a b) c) R 1 2 3"), Some('R'));
        assert_eq!(state("7 (plugjail-stub) t 1"), Some('t'));
        assert_eq!(state("garbage"), None);
    }

    #[test]
    fn a_forked_child_is_found_stopped_and_continued() {
        // The pieces, on a child of this test standing in for a jail's process: stop()
        // itself waits for every descendant of the "init" (this test process, with its
        // other tests' children) to stop; tests/plugin_pause.rs runs it on real jails.
        // SAFETY: the child only spins (no allocation, no locks) until killed.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            loop {
                std::hint::spin_loop();
            }
        }
        let me = std::process::id() as libc::pid_t;
        let jail = JobStop::new(me);
        let procs = jail.processes();
        assert!(procs.contains(&pid), "{procs:?}");
        assert!(!procs.contains(&me));
        assert_eq!(parent(pid), Some(me));
        assert!(!stopped(pid));
        jail.signal(pid, &procs, libc::SIGSTOP).expect("SIGSTOP");
        let t = Instant::now();
        while !stopped(pid) && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(stopped(pid), "not stopped");
        jail.signal(pid, &procs, libc::SIGCONT).expect("SIGCONT");
        let t = Instant::now();
        while stopped(pid) && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(!stopped(pid), "not continued");
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let mut status = 0;
        // SAFETY: our own child; `status` is a valid out pointer.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        // A reaped process is gone: signalling it is no error, and it counts as stopped.
        assert!(jail.signal(pid, &procs, libc::SIGCONT).is_ok());
        assert!(stopped(pid));
        // A process that is not the "init"'s descendant is never signalled: a jail whose
        // init is another child of ours leaves this one alone.
        // SAFETY: as above.
        let other = unsafe { libc::fork() };
        assert!(other >= 0);
        if other == 0 {
            loop {
                std::hint::spin_loop();
            }
        }
        let elsewhere = JobStop::new(1);
        assert!(elsewhere.signal(other, &[], libc::SIGSTOP).is_ok());
        std::thread::sleep(Duration::from_millis(20));
        assert!(!stopped(other), "a process outside the jail was stopped");
        // SAFETY: our own child, not yet reaped.
        unsafe { libc::kill(other, libc::SIGKILL) };
        // SAFETY: our own child; `status` is a valid out pointer.
        unsafe { libc::waitpid(other, &mut status, 0) };
    }
}
