//! Starting a session: `plugjail serve` as a child process, its three descriptors moved
//! into place between fork and exec, and the profile read for the host's own limits.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{Session, SessionError, SessionOptions, Transport};
use plugjail_protocol::Channel;
use plugjail_protocol::shm::HostRing;

/// Deadline for the HELLO when the profile sets no call_time (loading a plugin and its
/// init are bounded by wall_time in the jail; this bounds the host's wait).
const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(30);

/// Where the three descriptors go in `plugjail serve`.
const SERVE_IN: RawFd = 3;
const SERVE_OUT: RawFd = 4;
const SERVE_STATUS: RawFd = 5;
const SERVE_CONTROL: RawFd = 6;
const SERVE_SHM: RawFd = 7;
/// At most this many descriptors are moved into `plugjail serve`.
const MOVES_MAX: usize = 5;

fn pipe() -> Result<(OwnedFd, OwnedFd), SessionError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(SessionError::Pipe {
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((r, w))
}

/// The body of [`Session::spawn`]'s `pre_exec` hook: puts each `(source, target)`
/// descriptor at its target number, inheritable. Two passes: first every source above the
/// targets (close-on-exec), then onto its target, so no target overwrites a source still
/// needed. Async-signal-safe, no allocation.
fn move_fds(moves: &[(RawFd, RawFd)]) -> io::Result<()> {
    let mut tmp = [-1; MOVES_MAX];
    if moves.len() > MOVES_MAX {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    for (i, &(src, _)) in moves.iter().enumerate() {
        // SAFETY: integer fcntl, no memory passed. `src` is open here: this child's
        // descriptor table is a copy of the parent's, where spawn() held it at the fork.
        tmp[i] = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 10) };
        if tmp[i] < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    for (i, &(_, dst)) in moves.iter().enumerate() {
        // SAFETY: no memory passed; it replaces whatever this child had at `dst`, and the
        // child execs next, so nothing here uses that descriptor again.
        if unsafe { libc::dup2(tmp[i], dst) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The plugjail executable: `$PLUGJAIL`, else next to the current executable (or one
/// directory up), else on `PATH`.
fn find_plugjail() -> Result<PathBuf, SessionError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(named) = std::env::var_os("PLUGJAIL").filter(|v| !v.is_empty()) {
        candidates.push(PathBuf::from(named));
    }
    let exe = std::env::current_exe().ok();
    if let Some(dir) = exe.as_deref().and_then(Path::parent) {
        candidates.push(dir.join("plugjail"));
        candidates.push(dir.join("../plugjail"));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("plugjail")));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| SessionError::NoPlugjail {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

impl Session {
    /// Starts `plugjail serve` for the plugin. Returns once the process runs; the jail is
    /// built and the plugin loaded in the background ([`Session::hello`] waits for it).
    pub fn spawn(opts: &SessionOptions) -> Result<Session, SessionError> {
        let plugjail = match &opts.plugjail {
            Some(p) => p.clone(),
            None => find_plugjail()?,
        };
        let (to_stub_r, to_stub_w) = pipe()?;
        let (from_stub_r, from_stub_w) = pipe()?;
        let (status_r, status_w) = pipe()?;
        let mut cmd = Command::new(&plugjail);
        cmd.arg("serve")
            .arg("--profile")
            .arg(&opts.profile)
            .arg("--plugin")
            .arg(&opts.plugin)
            .arg("--fds")
            .arg(format!("{SERVE_IN},{SERVE_OUT}"))
            .arg("--status-fd")
            .arg(SERVE_STATUS.to_string());
        if let Some(r) = &opts.report {
            cmd.arg("--report").arg(r);
        }
        let control = if opts.pausable {
            cmd.arg("--control-fd").arg(SERVE_CONTROL.to_string());
            Some(crate::control::socketpair()?)
        } else {
            None
        };
        // Shared memory when asked for and possible here; else the pipe, and the reason.
        let (ring, shm_unavailable) = match opts.shm.as_ref().map(HostRing::create) {
            None => (None, None),
            Some(Ok(pair)) => (Some(pair), None),
            Some(Err(e)) => (None, Some(Box::new(e))),
        };
        if ring.is_some() {
            cmd.arg("--shm-fd").arg(SERVE_SHM.to_string());
        }
        if !opts.cpus.is_empty() {
            let list: Vec<String> = opts.cpus.iter().map(usize::to_string).collect();
            cmd.arg("--cpus").arg(list.join(","));
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if !opts.inherit_stderr {
            cmd.stderr(Stdio::null());
        }
        let mut moves = vec![
            (to_stub_r.as_raw_fd(), SERVE_IN),
            (from_stub_w.as_raw_fd(), SERVE_OUT),
            (status_w.as_raw_fd(), SERVE_STATUS),
        ];
        if let Some((_, theirs)) = &control {
            moves.push((theirs.as_raw_fd(), SERVE_CONTROL));
        }
        if let Some((_, fd)) = &ring {
            moves.push((fd.as_raw_fd(), SERVE_SHM));
        }
        // SAFETY: the hook runs in the child between fork and exec, where the host may
        // have had other threads: `move_fds` only makes async-signal-safe calls (fcntl,
        // dup2) on the vector the closure owns (allocated before the fork), and allocates
        // nothing.
        unsafe { cmd.pre_exec(move || move_fds(&moves)) };
        let child = cmd.spawn().map_err(|source| SessionError::Spawn {
            path: plugjail.clone(),
            source,
        })?;
        drop((to_stub_r, from_stub_w, status_w));
        // The host keeps its mapping only; the stub gets the descriptor through the jail.
        let ring = ring.map(|(ring, fd)| {
            drop(fd);
            Box::new(ring)
        });
        let control = control.map(|(ours, theirs)| {
            drop(theirs);
            crate::control::Control::new(ours)
        });
        // The frame cap and the profile's call_time come in plugjail serve's SESSION
        // frame: the host never reads the profile.
        let mut channel = Channel::for_serve(from_stub_r, to_stub_w)?;
        if let Some(f) = opts.on_log.clone() {
            channel.set_log_handler(Box::new(move |level, text| f(level, text)));
        }
        Ok(Session {
            child: Some(child),
            channel: Some(channel),
            status: Some(File::from(status_r)),
            handshake_timeout: opts.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE),
            call_timeout: opts.call_timeout,
            calls: 0,
            fault: None,
            profile_call_time: None,
            startup: None,
            report: opts.report.clone(),
            peak_buffer: 0,
            control,
            transport: if ring.is_some() {
                Transport::SharedMemory
            } else {
                Transport::Pipe
            },
            ring,
            shm_unavailable,
        })
    }
}
