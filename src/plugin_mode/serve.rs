//! `plugjail serve`: the helper a host application spawns for one plugin session.
//!
//! The channel is a pair of descriptors plugjail inherits (default: stdin for frames from
//! the host, stdout for frames to it). They go into the jail as they are — held by the
//! jail's init until the stub's switch to the serve phase, then the stub's: the host talks
//! to the stub directly, and plugjail keeps no copy (so the host sees end of
//! file the moment the jail ends). plugjail only watches — process exit, limits, wall
//! time, and the call/idle deadlines through the watch page — and delivers the verdict at
//! the end on `--status-fd` and/or `--report`, with a summary line on stderr. It never
//! writes to its stdout: that may be the channel. Plugin text in the frames (LOG, ERROR
//! messages, HELLO names) reaches the host unchanged: a host that shows it to people must
//! escape it (docs/protocol.md; [`crate::text`] does it for Rust hosts).
//!
//! The host cannot tell plugjail anything over the channel (plugjail does not read it),
//! so a host that gives up on a call at its own deadline says so with a signal:
//! [`HOST_DEADLINE`] (SIGUSR1), optionally sent with `sigqueue(3)` and the deadline in
//! milliseconds as its integer value. plugjail then ends the jail and the verdict is
//! `timeout`, kind `host` (docs/protocol.md). SIGTERM stays "stop, for no reason of the
//! plugin's" (`signaled`).
//!
//! Two options serve a plugin host: `--control-fd` (a socket on which the host pauses and
//! resumes the jail, [`super::control`]) and `--cpus` (the jail pinned to CPUs,
//! [`super::cpus`]).

use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::control::Control;
use super::cpus;
use super::outcome::{HostStop, SessionFacts, plugin_verdict};
use super::shm;
use super::watch::Watcher;
use super::{PrepareError, PrepareError as E, prepare};
use crate::jail::{LiveJail, Plan, Watch};
use crate::supervise::{Context, Hooks, run_plan};
use crate::verdict::{Outcome, PluginReport, Verdict};

pub struct ServeOptions {
    pub profile: PathBuf,
    pub plugin: PathBuf,
    /// (frames from the host, frames to the host); default (0, 1).
    pub fds: Option<(RawFd, RawFd)>,
    pub status_fd: Option<RawFd>,
    pub report: Option<PathBuf>,
    /// An inherited SOCK_SEQPACKET socket for PAUSE / RESUME ([`super::control`]).
    pub control_fd: Option<RawFd>,
    /// CPUs to pin the jail to (`0,2-3`), as given on the command line.
    pub cpus: Option<String>,
    /// The host's shared-memory region for calls (a sealed memfd; [`super::shm`]).
    pub shm_fd: Option<RawFd>,
}

/// The signal a host sends `plugjail serve` when its own deadline for a call passed.
pub const HOST_DEADLINE: Signal = Signal::SIGUSR1;

pub fn run(opts: ServeOptions) -> u8 {
    // First of all, so that a host's early signal waits for the jail instead of killing
    // plugjail (SIGUSR1's default action) before any verdict exists.
    let host_deadline = host_deadline_signal();
    let command = vec![opts.plugin.display().to_string()];
    crate::jail::hold_stop_signals();
    let ctx = Context::new(&opts.profile, &command);
    let (fd_in, fd_out) = opts.fds.unwrap_or((0, 1));
    let mut report_file = None;
    let verdict = 'run: {
        let host_deadline = match host_deadline {
            Ok(sfd) => sfd,
            Err(e) => {
                let msg = format!("a signalfd for {}: {e}", HOST_DEADLINE.as_str());
                break 'run ctx.failed(Outcome::SetupFailed, "signalfd", Some(e as i32), msg);
            }
        };
        if let Err(v) = ctx.check_status_fd(opts.status_fd) {
            break 'run *v;
        }
        report_file = match ctx.open_report(opts.report.as_deref()) {
            Ok(r) => r,
            Err(v) => break 'run *v,
        };
        if let Err(v) = check_channel(&ctx, fd_in, fd_out, opts.status_fd) {
            break 'run *v;
        }
        let control = match opts.control_fd {
            None => None,
            Some(fd) if [fd_in, fd_out].contains(&fd) || opts.status_fd == Some(fd) => {
                let msg = "--control-fd: it must differ from the channel and --status-fd";
                break 'run ctx.failed(
                    Outcome::SetupFailed,
                    "control_fd",
                    Some(libc::EINVAL),
                    msg.to_owned(),
                );
            }
            // SAFETY: the descriptor was inherited for this purpose, and nothing else in
            // plugjail owns it (it differs from the channel and the status fd).
            Some(fd) => match unsafe { Control::new(fd) } {
                Ok(c) => Some(c),
                Err(e) => {
                    let errno = Some(e.errno());
                    break 'run ctx.failed(
                        Outcome::SetupFailed,
                        "control_fd",
                        errno,
                        e.to_string(),
                    );
                }
            },
        };
        // Before the jail is built: its processes inherit the mask.
        if let Some(list) = &opts.cpus
            && let Err(e) = cpus::parse(list).and_then(|c| cpus::pin(&c))
        {
            break 'run ctx.failed(Outcome::SetupFailed, "cpus", Some(e.errno()), e.to_string());
        }
        crate::timing::mark("report");
        let profile = match ctx.load_profile() {
            Ok(p) => p,
            Err(v) => break 'run *v,
        };
        if let Some(fd) = opts.shm_fd {
            let clash = [fd_in, fd_out].contains(&fd)
                || opts.status_fd == Some(fd)
                || opts.control_fd == Some(fd);
            let checked = if clash {
                Err((
                    libc::EINVAL,
                    "--shm-fd: it must differ from the channel, --status-fd and --control-fd"
                        .to_owned(),
                ))
            } else {
                shm::check_fd(fd)
                    .and_then(|()| shm::check_profile(&profile))
                    .map_err(|e| (e.errno(), e.to_string()))
                    .and_then(|()| {
                        shm::nonblocking(fd_in).map_err(|errno| {
                            (
                                errno,
                                "--shm-fd: making the channel non-blocking".to_owned(),
                            )
                        })
                    })
            };
            if let Err((errno, msg)) = checked {
                break 'run ctx.failed(Outcome::SetupFailed, "shm", Some(errno), msg);
            }
        }
        // The host's first frame, before the jail exists: the plugin cannot precede or
        // forge it, so the host may size its buffers by it.
        if let Err(errno) = write_session(fd_out, &profile.limits) {
            let msg = format!("--fds: writing the SESSION frame to descriptor {fd_out}");
            break 'run ctx.failed(Outcome::SetupFailed, "channel", Some(errno), msg);
        }
        // SAFETY: check_channel made sure both are open; they stay open (plugjail's own
        // inherited descriptors) until `ChannelHooks::started` lets go of them.
        let chan_in = unsafe { BorrowedFd::borrow_raw(fd_in) };
        // SAFETY: as above.
        let chan_out = unsafe { BorrowedFd::borrow_raw(fd_out) };
        // SAFETY: checked open above; plugjail's own inherited descriptor, released (closed)
        // with the channel once the jail holds its copy.
        let shm_fd = opts.shm_fd.map(|fd| unsafe { BorrowedFd::borrow_raw(fd) });
        let mut jail = match prepare(&profile, &opts.plugin, chan_in, chan_out, shm_fd) {
            Ok(j) => j,
            Err(e) => break 'run prepare_failure(&ctx, &e),
        };
        let plugin = report(&jail.plugin);
        let mut hooks = ServeHooks {
            watcher: &mut jail.watcher,
            stop: None,
            release: [Some(fd_in), Some(fd_out), opts.shm_fd],
            host_deadline: &host_deadline,
            control,
        };
        let v = run_plan(&ctx, &profile, &mut jail.plan, &jail.stub, &mut hooks);
        let stop = hooks.stop.take();
        let facts = SessionFacts {
            stop,
            calls: jail.watcher.calls(),
            in_call: jail.watcher.in_call(),
            plugin: Some(plugin),
            serve_filter: jail.serve_filter.take(),
        };
        plugin_verdict(v, facts)
    };
    ctx.deliver(verdict, report_file.as_mut(), opts.status_fd)
}

/// Writes the SESSION frame (docs/protocol.md) for `limits` to the host's channel.
fn write_session(fd: RawFd, limits: &crate::profile::Limits) -> Result<(), i32> {
    let ms =
        |d: Option<Duration>| d.map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let frame = crate::protocol::SessionInfo {
        max_message: u32::try_from(limits.max_message).unwrap_or(u32::MAX),
        call_time_ms: ms(limits.call_time),
        idle_time_ms: ms(limits.idle_time),
    }
    .frame();
    let mut done = 0;
    while done < frame.len() {
        let rest = &frame[done..];
        // SAFETY: writes from a live slice; `fd` is the inherited channel, checked open.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        match usize::try_from(n) {
            Ok(n) => done += n,
            Err(_) => {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                if errno != libc::EINTR {
                    return Err(errno);
                }
            }
        }
    }
    Ok(())
}

/// Blocks [`HOST_DEADLINE`] (the jail's child unblocks every signal before it execs) and
/// returns a non-blocking signalfd that reads it.
fn host_deadline_signal() -> nix::Result<SignalFd> {
    let mut set = SigSet::empty();
    set.add(HOST_DEADLINE);
    set.thread_block()?;
    SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
}

/// The host's deadline signal, if one is pending: Some(the deadline it said, if it said
/// one with sigqueue(3)).
fn host_deadline_sent(sfd: &SignalFd) -> Option<Option<Duration>> {
    let info = sfd.read_signal().ok().flatten()?;
    let said = u64::try_from(info.ssi_int)
        .ok()
        .filter(|&ms| info.ssi_code == libc::SI_QUEUE && ms > 0);
    Some(said.map(Duration::from_millis))
}

/// The channel descriptors must be open, distinct, and not the status fd.
fn check_channel(
    ctx: &Context,
    fd_in: RawFd,
    fd_out: RawFd,
    status: Option<RawFd>,
) -> Result<(), Box<Verdict>> {
    let bad =
        |msg: String| Box::new(ctx.failed(Outcome::SetupFailed, "fds", Some(libc::EBADF), msg));
    for fd in [fd_in, fd_out] {
        // SAFETY: F_GETFD only queries the descriptor table.
        if fd < 0 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(bad(format!("--fds: descriptor {fd} is not open")));
        }
    }
    if fd_in == fd_out || status.is_some_and(|s| s == fd_in || s == fd_out) {
        return Err(bad(
            "--fds: the two channel descriptors and --status-fd must all differ".to_owned(),
        ));
    }
    Ok(())
}

/// The verdict when the jail could not be prepared.
pub(crate) fn prepare_failure(ctx: &Context, e: &PrepareError) -> Verdict {
    let outcome = if e.is_rejection() {
        Outcome::PluginRejected
    } else {
        Outcome::SetupFailed
    };
    let errno = match e {
        E::Plugin(crate::plugin_file::PluginFileError::Open { source, .. }) => {
            source.raw_os_error()
        }
        _ => None,
    };
    let mut v = ctx.failed(outcome, e.step(), errno, e.to_string());
    v.exit_status = super::outcome::exit_status(&v);
    v
}

pub(crate) fn report(p: &super::PluginInfo) -> PluginReport {
    PluginReport {
        path: p.path.clone(),
        sha256: p.sha256.clone(),
        bytes: p.bytes,
    }
}

/// Lets go of descriptors only the jail needs, once it runs: the plan's copies, and `fds`.
///
/// # Safety
/// This process owns every number in `fds`, and nothing will use or close it afterwards
/// (`serve`'s inherited channel: no Rust object wraps it).
unsafe fn release(plan: &mut Plan, fds: &[Option<RawFd>]) {
    plan.release_fds();
    for &fd in fds.iter().flatten() {
        if fd <= 2 {
            // Keep stdio numbers taken (nothing must land on them by accident), but not
            // by the channel: /dev/null instead.
            if let Ok(null) = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/null")
            {
                // SAFETY: dup2 onto our own stdio number; `null` closes when dropped.
                unsafe { libc::dup2(std::os::fd::AsRawFd::as_raw_fd(&null), fd) };
            }
        } else {
            // SAFETY: the channel descriptor was inherited for the jail; nothing in this
            // process uses it after this point.
            unsafe { libc::close(fd) };
        }
    }
}

struct ServeHooks<'a> {
    watcher: &'a mut Watcher,
    stop: Option<HostStop>,
    release: [Option<RawFd>; 3],
    /// Reads [`HOST_DEADLINE`].
    host_deadline: &'a SignalFd,
    /// `--control-fd`: the host pauses and resumes the jail.
    control: Option<Control>,
}

impl Hooks for ServeHooks<'_> {
    fn started(&mut self, plan: &mut Plan) {
        // SAFETY: `release` holds the channel numbers plugjail serve inherited; it only
        // lent them (BorrowedFd) to the plan, whose copies the jail now holds.
        unsafe { release(plan, &self.release) };
        self.watcher.reset();
    }

    fn watch(&mut self) -> Option<&mut dyn Watch> {
        Some(self)
    }

    fn freezer(&self) -> bool {
        self.control.is_some()
    }
}

impl Watch for ServeHooks<'_> {
    fn period(&self) -> Option<std::time::Duration> {
        self.watcher.period()
    }

    fn wake_fds(&self) -> Vec<BorrowedFd<'_>> {
        let control = self.control.as_ref().and_then(Control::fd);
        std::iter::once(self.host_deadline.as_fd())
            .chain(control)
            .collect()
    }

    fn check(&mut self, jail: LiveJail<'_>) -> bool {
        if let Some(limit) = host_deadline_sent(self.host_deadline) {
            self.stop = Some(HostStop::HostDeadline(limit));
            return true;
        }
        // The deadlines below keep running while the jail is paused.
        if let Some(c) = self.control.as_mut() {
            c.serve(jail);
        }
        match self.watcher.check() {
            Some(kind) => {
                let limit = self.watcher.limit(kind).unwrap_or_default();
                self.stop = Some(HostStop::Timeout(kind, limit));
                true
            }
            None => false,
        }
    }
}
