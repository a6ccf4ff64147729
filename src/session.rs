//! The Rust host API: one jailed plugin, called as often as you like.
//!
//! ```no_run
//! use plugjail::{Session, SessionOptions};
//!
//! let mut s = Session::spawn(&SessionOptions {
//!     profile: "profiles/default.yaml".into(),
//!     plugin: "examples/plugins/hello.so".into(),
//!     ..SessionOptions::default()
//! })?;
//! println!("methods: {:?}", s.hello()?.methods);
//! let out = s.call("greet", b"world")?;
//! assert_eq!(out, b"hello, world");
//! let verdict = s.close();
//! println!("{} after {} calls", verdict.outcome, verdict.calls);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A session runs `plugjail serve` as a child process (so the host never forks a jail
//! itself and may have as many threads as it likes) and talks to the stub in the jail over
//! two pipes, with no process in between. Each call has a deadline (the profile's
//! `limits.call_time` unless overridden). A protocol violation or a missed deadline ends
//! the session: the jail is stopped and [`Session::close`] reports why. An ERROR answer
//! from the plugin ([`CallError::Failed`]) does not: the next call works.
//!
//! A missed deadline is reported as `timeout` with kind `call` when it was the profile's
//! `limits.call_time`, and kind `host` (with the deadline as `limit_ms`) when it was the
//! session's own (`SessionOptions::call_timeout`, [`Session::call_with_timeout`]). The
//! session tells `plugjail serve` by sending it SIGUSR1 with the deadline
//! (docs/protocol.md), so the verdict `plugjail serve` writes itself says so too.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::plugin_mode::outcome::startup_detail;
use crate::profile;
use crate::protocol::{Channel, ChannelError, ErrorKind, Hello, ProtocolError};
use std::sync::Arc;

/// Deadline for the HELLO when the profile sets no call_time (loading a plugin and its
/// init are bounded by wall_time in the jail; this bounds the host's wait).
const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(30);
/// Per-call deadline when the profile sets no call_time and the options none either.
const DEFAULT_CALL: Duration = Duration::from_secs(60);
/// How long close() waits for `plugjail serve` to deliver its verdict before stopping it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);

/// Where the three descriptors go in `plugjail serve`.
const SERVE_IN: RawFd = 3;
const SERVE_OUT: RawFd = 4;
const SERVE_STATUS: RawFd = 5;

/// A receiver of LOG lines, shareable between sessions.
pub type LogFn = Arc<dyn Fn(u32, &[u8]) + Send + Sync>;

/// What to run, and how.
#[derive(Default)]
pub struct SessionOptions {
    /// The profile (YAML) the jail is built from.
    pub profile: PathBuf,
    /// The plugin `.so`.
    pub plugin: PathBuf,
    /// The `plugjail` executable. Default: next to the current executable, or one
    /// directory up (cargo puts test binaries in target/debug/deps).
    pub plugjail: Option<PathBuf>,
    /// Per-call deadline. Default: the profile's `limits.call_time`.
    pub call_timeout: Option<Duration>,
    /// Deadline for the plugin to load and say HELLO. Default: 30 s.
    pub handshake_timeout: Option<Duration>,
    /// Receives the plugin's LOG frames: level (`protocol::consts::log_level`; 4 is the
    /// plugin's own stdout/stderr) and text. Default: dropped.
    pub on_log: Option<LogFn>,
    /// Also write the verdict (JSON) to this file.
    pub report: Option<PathBuf>,
    /// Let `plugjail serve` write its one-line verdict summary (and any setup error) to
    /// this process's stderr. Default: discarded; the verdict comes from close().
    pub inherit_stderr: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{path}: the profile is not valid:\n{errors}")]
    Profile { path: PathBuf, errors: String },
    #[error(
        "cannot find the plugjail executable (looked at {looked}); set SessionOptions::plugjail"
    )]
    NoPlugjail { looked: String },
    #[error("cannot start {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error("pipe2: {source}")]
    Pipe { source: io::Error },
    #[error(transparent)]
    Channel(#[from] ChannelError),
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The plugin (or the stub) answered ERROR: `kind` says whose fault (see
    /// docs/protocol.md). The session goes on.
    #[error("{} error{}: {message}", kind.name(), if *status != 0 { format!(" (status {status})") } else { String::new() })]
    Failed {
        kind: ErrorKind,
        status: i32,
        message: String,
    },
    /// The input does not fit in one frame; nothing was sent. The session goes on.
    #[error("input of {len} bytes does not fit in a frame of at most {cap} bytes")]
    InputTooLarge { len: usize, cap: u32 },
    /// The plugin did not answer within the deadline; the session was ended.
    #[error("no answer within {after:?}; the session was ended")]
    Timeout { after: Duration },
    /// The stub sent something that breaks the protocol; the session was ended.
    #[error("protocol violation: {0}; the session was ended")]
    Protocol(ProtocolError),
    /// The plugin did not start (load, ABI, init or serve-filter failure): the stub's
    /// ERROR frame. `status` is what init() returned (`init_failed`), else 0. The message
    /// comes from inside the jail: untrusted text. close() gives the verdict
    /// (`plugin_failed` or `plugin_rejected`, with `plugin_failure`).
    #[error("the plugin did not start ({}): {message}", kind.name())]
    Startup {
        kind: ErrorKind,
        status: i32,
        message: String,
    },
    /// The jail ended (the plugin crashed or was killed): close() says how.
    #[error("the session has ended; close() gives the verdict")]
    Ended,
    #[error("channel {syscall}: {source}")]
    Io {
        syscall: &'static str,
        source: io::Error,
    },
}

impl CallError {
    /// True when the session can still take calls.
    pub fn session_goes_on(&self) -> bool {
        matches!(
            self,
            CallError::Failed { .. } | CallError::InputTooLarge { .. }
        )
    }
}

/// What the host itself saw go wrong, which overrides the supervisor's view (it only saw
/// the jail being stopped).
#[derive(Debug, Clone)]
enum HostFault {
    Protocol(String),
    Timeout(Duration),
}

/// The verdict of a session: `plugjail serve`'s JSON verdict (see docs/protocol.md and
/// the README), with the host's own findings merged in.
#[derive(Debug, Clone)]
pub struct SessionVerdict {
    /// `ok`, `signaled`, `protocol_violation`, `timeout`, `plugin_rejected`, ...
    pub outcome: String,
    /// The signal that ended the plugin (`signaled`).
    pub signal: Option<i32>,
    /// `call`, `idle`, `wall`, `cpu` or `host` for a `timeout`.
    pub timeout_kind: Option<String>,
    pub message: Option<String>,
    /// Calls the plugin answered (RESULT or ERROR) in this session.
    pub calls: u64,
    /// The whole verdict as `plugjail serve` delivered it (updated with the fields above).
    pub json: serde_json::Value,
}

impl SessionVerdict {
    fn from_json(json: serde_json::Value) -> SessionVerdict {
        let s = |k: &str| json.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        SessionVerdict {
            outcome: s("outcome").unwrap_or_else(|| "unknown".to_owned()),
            signal: json
                .get("signal")
                .and_then(|v| v.get("number"))
                .and_then(|v| v.as_i64())
                .and_then(|n| i32::try_from(n).ok()),
            timeout_kind: json
                .get("timeout")
                .and_then(|t| t.get("kind"))
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            message: s("message"),
            calls: json.get("calls").and_then(|v| v.as_u64()).unwrap_or(0),
            json,
        }
    }

    /// A verdict when `plugjail serve` delivered none (it was killed, or could not start).
    fn missing(why: String) -> SessionVerdict {
        SessionVerdict::from_json(serde_json::json!({
            "version": crate::verdict::VERSION,
            "outcome": "setup_failed",
            "step": "session",
            "message": why,
        }))
    }

    fn set(&mut self, key: &str, value: serde_json::Value) {
        if let Some(obj) = self.json.as_object_mut() {
            obj.insert(key.to_owned(), value);
        }
    }

    /// Optional fields are absent, not null, when they do not apply.
    fn unset(&mut self, key: &str) {
        if let Some(obj) = self.json.as_object_mut() {
            obj.remove(key);
        }
    }
}

/// A running plugin session.
pub struct Session {
    child: Option<Child>,
    channel: Option<Channel>,
    status: Option<File>,
    handshake_timeout: Duration,
    call_timeout: Duration,
    calls: u64,
    fault: Option<HostFault>,
    /// The profile's `limits.call_time`: a missed deadline equal to it is the profile's.
    profile_call_time: Option<Duration>,
    /// The stub's startup ERROR frame (kind, status, message), for the verdict.
    startup: Option<(ErrorKind, i32, String)>,
    report: Option<PathBuf>,
    /// The most the channel's read buffer ever reserved.
    peak_buffer: usize,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("pid", &self.child.as_ref().map(Child::id))
            .field("calls", &self.calls)
            .field("fault", &self.fault)
            .finish()
    }
}

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
fn move_fds(moves: &[(RawFd, RawFd); 3]) -> io::Result<()> {
    let mut tmp = [-1; 3];
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

/// The plugjail executable: next to the current one, or one directory up.
fn find_plugjail() -> Result<PathBuf, SessionError> {
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    let candidates: Vec<PathBuf> = dir
        .into_iter()
        .flat_map(|d| [d.join("plugjail"), d.join("../plugjail")])
        .collect();
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
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
        if !opts.inherit_stderr {
            cmd.stderr(Stdio::null());
        }
        let moves = [
            (to_stub_r.as_raw_fd(), SERVE_IN),
            (from_stub_w.as_raw_fd(), SERVE_OUT),
            (status_w.as_raw_fd(), SERVE_STATUS),
        ];
        // SAFETY: the hook runs in the child between fork and exec, where the host may
        // have had other threads: `move_fds` only makes async-signal-safe calls (fcntl,
        // dup2) on the array the closure owns, and allocates nothing.
        unsafe { cmd.pre_exec(move || move_fds(&moves)) };
        let mut child = cmd.spawn().map_err(|source| SessionError::Spawn {
            path: plugjail.clone(),
            source,
        })?;
        drop((to_stub_r, from_stub_w, status_w));
        // The host needs max_message and call_time. Read the profile while `plugjail
        // serve` starts (and reads it too) on another CPU: off the cold start's critical
        // path. A broken profile stops that process before it is reported.
        let prof = match profile::load(&opts.profile) {
            Ok(p) => p,
            Err(e) => {
                // Our own child, by its handle: it fails on the same profile anyway.
                let _ = child.kill();
                let _ = child.wait();
                return Err(SessionError::Profile {
                    path: opts.profile.clone(),
                    errors: e.to_string(),
                });
            }
        };
        let mut channel = Channel::new(from_stub_r, to_stub_w, prof.limits.max_message)?;
        if let Some(f) = opts.on_log.clone() {
            channel.set_log_handler(Box::new(move |level, text| f(level, text)));
        }
        let call_timeout = opts
            .call_timeout
            .or(prof.limits.call_time)
            .unwrap_or(DEFAULT_CALL);
        Ok(Session {
            child: Some(child),
            channel: Some(channel),
            status: Some(File::from(status_r)),
            handshake_timeout: opts.handshake_timeout.unwrap_or(DEFAULT_HANDSHAKE),
            call_timeout,
            calls: 0,
            fault: None,
            profile_call_time: prof.limits.call_time,
            startup: None,
            report: opts.report.clone(),
            peak_buffer: 0,
        })
    }

    /// Waits for the plugin's HELLO (once): its name, version and methods.
    pub fn hello(&mut self) -> Result<&Hello, CallError> {
        let timeout = self.handshake_timeout;
        let chan = self.channel.as_mut().ok_or(CallError::Ended)?;
        if chan.hello().is_none()
            && let Err(e) = chan.handshake(timeout)
        {
            return Err(self.fail(e));
        }
        let chan = self.channel.as_ref().ok_or(CallError::Ended)?;
        chan.hello().ok_or(CallError::Ended)
    }

    /// Calls `method` with `input` under the session's per-call deadline.
    pub fn call(&mut self, method: &str, input: &[u8]) -> Result<Vec<u8>, CallError> {
        let timeout = self.call_timeout;
        self.call_with_timeout(method, input, timeout)
    }

    /// Calls `method` with `input`, answering within `timeout` or ending the session.
    pub fn call_with_timeout(
        &mut self,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        self.call_ref_with_timeout(method, input, timeout)
            .map(<[u8]>::to_vec)
    }

    /// Like [`Session::call`], but the output is borrowed from the session's read buffer
    /// (valid until the next call) instead of copied into a new `Vec`: for hosts that
    /// consume the output at once, one copy of it less.
    pub fn call_ref(&mut self, method: &str, input: &[u8]) -> Result<&[u8], CallError> {
        let timeout = self.call_timeout;
        self.call_ref_with_timeout(method, input, timeout)
    }

    /// [`Session::call_ref`] with its own deadline.
    pub fn call_ref_with_timeout(
        &mut self,
        method: &str,
        input: &[u8],
        timeout: Duration,
    ) -> Result<&[u8], CallError> {
        self.hello()?;
        let chan = self.channel.as_mut().ok_or(CallError::Ended)?;
        match chan.call(method, input, timeout) {
            Ok(_) => {
                self.calls += 1;
                // Borrowed again: the first borrow could not outlive the error arm.
                let chan = self.channel.as_ref().ok_or(CallError::Ended)?;
                Ok(chan.last_output())
            }
            Err(e) => {
                if matches!(e, ChannelError::Remote { .. }) {
                    self.calls += 1;
                }
                Err(self.fail(e))
            }
        }
    }

    /// The per-call deadline in use.
    pub fn call_timeout(&self) -> Duration {
        self.call_timeout
    }

    /// The most memory the host side ever reserved for reading frames: never more than
    /// the profile's max_message, whatever the plugin sends.
    pub fn peak_buffer(&self) -> usize {
        let now = self.channel.as_ref().map_or(0, Channel::read_capacity);
        self.peak_buffer.max(now)
    }

    /// Turns a channel error into a call error; a fatal one ends the session.
    fn fail(&mut self, e: ChannelError) -> CallError {
        self.peak_buffer = self.peak_buffer();
        let err = match e {
            ChannelError::Remote {
                kind,
                status,
                message,
            } => {
                return CallError::Failed {
                    kind,
                    status,
                    message,
                };
            }
            ChannelError::InputTooLarge { len, cap } => {
                return CallError::InputTooLarge { len, cap };
            }
            ChannelError::Protocol(p) => {
                self.fault = Some(HostFault::Protocol(p.to_string()));
                CallError::Protocol(p)
            }
            ChannelError::Timeout { after } => {
                self.fault = Some(HostFault::Timeout(after));
                CallError::Timeout { after }
            }
            ChannelError::Startup {
                kind,
                status,
                message,
            } => {
                self.startup = Some((kind, status, message.clone()));
                CallError::Startup {
                    kind,
                    status,
                    message,
                }
            }
            ChannelError::Io { syscall, source } => CallError::Io { syscall, source },
            ChannelError::Closed | ChannelError::Broken | ChannelError::NotReady => {
                CallError::Ended
            }
        };
        match self.fault {
            // The plugin is stuck: tell the supervisor it is the host's deadline (it ends
            // the jail and says `timeout`, kind `host`).
            Some(HostFault::Timeout(after)) => self.signal_deadline(after),
            // The stream is out of step: stop the jail now (the supervisor ends it and
            // still delivers its verdict).
            Some(HostFault::Protocol(_)) => self.stop(),
            None => {}
        }
        // Closing our ends lets a stub that is still alive see end of file.
        self.channel = None;
        err
    }

    /// Tells `plugjail serve` that the host's deadline passed (SIGUSR1, the deadline in
    /// milliseconds as the signal's value): it ends the jail and reports a timeout.
    fn signal_deadline(&mut self, after: Duration) {
        let Some(pid) = self.child.as_ref().and_then(|c| i32::try_from(c.id()).ok()) else {
            return;
        };
        // 0 (not said) when it does not fit the signal's int; a non-negative int fits a
        // usize.
        let ms = i32::try_from(after.as_millis()).unwrap_or(0);
        let ms = usize::try_from(ms).unwrap_or(0);
        // sigval is a union of an int and a pointer: the int is the pointer's low half,
        // which is its first bytes on a little-endian machine and its last on a big one.
        let bits = if cfg!(target_endian = "little") {
            ms
        } else {
            ms << (usize::BITS - 32)
        };
        let value = libc::sigval {
            sival_ptr: std::ptr::without_provenance_mut(bits),
        };
        // SAFETY: sigqueue copies the value; the pid is our own child, not yet reaped, so
        // it cannot have been reused.
        if unsafe { libc::sigqueue(pid, libc::SIGUSR1, value) } != 0 {
            self.stop();
        }
    }

    /// Asks `plugjail serve` to end the jail (SIGTERM: it kills the jail and reports).
    fn stop(&mut self) {
        if let Some(child) = &self.child
            && let Ok(pid) = i32::try_from(child.id())
        {
            // Our own child, not yet reaped: the pid cannot have been reused.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }

    /// Ends the session (SHUTDOWN, so the plugin's shutdown() runs) and returns the
    /// verdict.
    pub fn close(mut self) -> SessionVerdict {
        if let Some(chan) = self.channel.take() {
            chan.shutdown();
        }
        let mut child = self.child.take().expect("a session is closed once");
        let deadline = Instant::now() + CLOSE_GRACE;
        let status = loop {
            match child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Ok(None) => {
                    self.child = Some(child);
                    self.stop();
                    child = self.child.take().expect("just put back");
                    break child.wait().ok();
                }
                Err(_) => break None,
            }
        };
        let mut text = String::new();
        if let Some(mut f) = self.status.take() {
            let _ = f.read_to_string(&mut text);
        }
        let mut v = match serde_json::from_str::<serde_json::Value>(text.trim()) {
            Ok(json) => SessionVerdict::from_json(json),
            Err(_) => SessionVerdict::missing(format!(
                "plugjail serve delivered no verdict (it ended with {status:?})"
            )),
        };
        let merged = self.merge(&mut v);
        if let Some(path) = &self.report
            && merged
        {
            let _ = std::fs::write(path, v.json.to_string() + "\n");
        }
        v
    }

    /// What the host saw wins over the supervisor's "stopped by SIGTERM"; the call count
    /// is the host's own. True when the host's findings changed the verdict (the report
    /// file is then written again).
    fn merge(&self, v: &mut SessionVerdict) -> bool {
        let mut merged = false;
        v.calls = self.calls;
        v.set("calls", self.calls.into());
        // `plugjail serve` knows the stage from the stub's exit code; the ERROR frame
        // the host read says more about it (as `plugjail call` adds it).
        let stage = v
            .json
            .pointer("/plugin_failure/stage")
            .and_then(|s| s.as_str());
        if let (Some(stage), Some((kind, status, message))) = (stage, &self.startup)
            && let Some(d) = startup_detail(stage, *kind, *status, message.clone())
        {
            let mut failure = serde_json::json!({ "stage": d.stage, "message": d.message });
            if let Some(status) = d.status {
                failure["status"] = status.into();
            }
            v.message = Some(d.sentence.clone());
            v.set("plugin_failure", failure);
            v.set("message", d.sentence.into());
            merged = true;
        }
        match &self.fault {
            None => {}
            Some(HostFault::Protocol(what)) => {
                v.outcome = "protocol_violation".to_owned();
                v.message = Some(what.clone());
                v.signal = None;
                v.set("outcome", "protocol_violation".into());
                v.set("message", what.as_str().into());
                // The supervisor's "stopped by SIGTERM" is not how it ended.
                v.unset("signal");
            }
            Some(HostFault::Timeout(after)) => {
                // The profile's limit, noticed by the host first; or the host's own.
                let profile = self.profile_call_time == Some(*after);
                let kind = if profile { "call" } else { "host" };
                let (what, limit) = (
                    if profile {
                        "call time"
                    } else {
                        "host deadline"
                    },
                    crate::profile::units::format_duration(*after),
                );
                let msg = format!("{what} {limit}");
                let ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
                v.outcome = "timeout".to_owned();
                v.timeout_kind = Some(kind.to_owned());
                v.message = Some(msg.clone());
                v.set("outcome", "timeout".into());
                v.set("message", msg.into());
                v.set(
                    "timeout",
                    serde_json::json!({ "kind": kind, "limit_ms": ms }),
                );
                // The jail's ending (signal or exit code) stays as `plugjail serve` saw it,
                // unless that was plugjail's own stop.
                if v.json.pointer("/signal/number").and_then(|n| n.as_i64())
                    == Some(i64::from(libc::SIGTERM))
                {
                    v.signal = None;
                    v.unset("signal");
                }
            }
        }
        merged || self.fault.is_some()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Not closed: end the jail and reap `plugjail serve` (never leave it behind).
        self.channel = None;
        if self.child.is_some() {
            self.stop();
            if let Some(mut c) = self.child.take() {
                let _ = c.wait();
            }
        }
    }
}
