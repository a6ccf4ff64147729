//! Run an untrusted C or C++ plugin in a plugjail jail from a Rust host application, and
//! call it as often as you like.
//!
//! ```no_run
//! use plugjail_client::{CallError, Session, SessionOptions};
//!
//! let mut s = Session::spawn(&SessionOptions {
//!     profile: "/usr/share/plugjail/profiles/default.yaml".into(),
//!     plugin: "plugins/hello.so".into(),
//!     ..SessionOptions::default()
//! })?;
//! println!("methods: {:?}", s.hello()?.methods);
//! match s.call("greet", b"world") {
//!     Ok(out) => assert_eq!(out, b"hello, world"),
//!     // The plugin's own ERROR: untrusted text, escaped before it is shown.
//!     Err(CallError::Failed { message, .. }) => {
//!         eprintln!("plugin error: {}", plugjail_client::text::escape(message.as_bytes()))
//!     }
//!     Err(e) => eprintln!("{e}"),
//! }
//! let verdict = s.close();
//! println!("{} after {} calls", verdict.outcome, verdict.calls);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Session`] runs `plugjail serve` as a child process (so the host never forks a jail
//! itself and may have as many threads as it likes) and talks to the stub in the jail over
//! two pipes, with no process in between. It finds `plugjail` at
//! [`SessionOptions::plugjail`], else the `PLUGJAIL` environment variable, else next to the
//! host's own executable, else on `PATH` ([`SessionError::NoPlugjail`] lists where it
//! looked). This crate is all a host needs: the jail itself is built by the `plugjail`
//! executable, so no profile parser, seccomp compiler or command line is linked in.
//!
//! Each call has a deadline (the profile's `limits.call_time`, which `plugjail serve` says
//! in its first frame, unless overridden). A protocol violation or a missed deadline ends
//! the session: the jail is stopped and [`Session::close`] reports why in the verdict
//! ([`SessionVerdict`], docs/verdict.md). An ERROR answer from the plugin
//! ([`CallError::Failed`]) does not: the next call works. A missed deadline is reported as
//! `timeout` with kind `call` when it was the profile's `limits.call_time`, and kind `host`
//! (with the deadline as `limit_ms`) when it was the session's own
//! (`SessionOptions::call_timeout`, [`Session::call_with_timeout`]).
//!
//! Another thread may pause and resume the session ([`Session::pause_handle`], with
//! `SessionOptions::pausable`). Everything the plugin sends — results, LOG lines, ERROR
//! messages, the names in its HELLO — is untrusted: [`text`] escapes it for people.
//!
//! For many plugins kept warm, restarted and quarantined by policy, see the `plugjail`
//! crate's plugin host (`plugjail::host`) or `plugjail host`.
//!
//! This file holds the options, the errors and the session itself; `spawn.rs` starts
//! `plugjail serve`, `call.rs` is the call path (HELLO, calls, deadlines), `control.rs`
//! pauses and resumes it, `verdict.rs` closes the session and merges the host's findings
//! into the verdict.

mod call;
mod control;
mod spawn;
mod verdict;

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::time::Duration;

use plugjail_protocol::{Channel, ChannelError};

pub use control::{PauseError, PauseHandle};
pub use plugjail_protocol::shm::{ShmError, ShmOptions};
pub use plugjail_protocol::text;
pub use plugjail_protocol::{ErrorKind, Hello, ProtocolError};
pub use verdict::SessionVerdict;

/// A receiver of LOG lines, shareable between sessions.
pub type LogFn = Arc<dyn Fn(u32, &[u8]) + Send + Sync>;

/// What to run, and how.
#[derive(Default)]
pub struct SessionOptions {
    /// The profile (YAML) the jail is built from.
    pub profile: PathBuf,
    /// The plugin `.so`.
    pub plugin: PathBuf,
    /// The `plugjail` executable. Default: the `PLUGJAIL` environment variable, else
    /// next to the current executable (or one directory up: cargo puts test binaries in
    /// target/debug/deps), else the first `plugjail` on `PATH`.
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
    /// Allow [`Session::pause`] and [`Session::resume`] (a control socket to `plugjail
    /// serve`, and on cgroup v1 a freezer cgroup for the jail). Default: off.
    pub pausable: bool,
    /// Pin the jail to these CPUs (`plugjail serve --cpus`). Default: empty, no pinning.
    pub cpus: Vec<usize>,
    /// Take calls through shared memory instead of the pipe (docs/protocol.md,
    /// "Shared-memory calls"): a spin-then-sleep handoff that answers in microseconds.
    /// Default: off, calls go through the pipe. When the region cannot be created here the
    /// session runs on the pipe ([`Session::transport`] says which); a profile that does not
    /// let the stub use it is refused (`setup_failed`, step `shm`).
    pub shm: Option<ShmOptions>,
}

/// How a session's calls travel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// CALL and its answer as frames over the pipes (the default).
    Pipe,
    /// CALL and its answer in a shared-memory region; LOG frames over the pipe.
    SharedMemory,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(
        "cannot find the plugjail executable (looked at {looked}); install it, or name it with SessionOptions::plugjail or the PLUGJAIL environment variable"
    )]
    NoPlugjail { looked: String },
    #[error("cannot start {path}: {source}")]
    Spawn { path: PathBuf, source: io::Error },
    #[error("pipe2: {source}")]
    Pipe { source: io::Error },
    #[error("socketpair for the control socket: {source}")]
    ControlSocket { source: io::Error },
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
    /// The jail had ended before the call reached it: the plugin never saw the call (a
    /// host may send it to another session). close() says how the jail ended.
    #[error("the session had ended before the call reached it; close() gives the verdict")]
    NotDelivered,
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

/// A running plugin session.
pub struct Session {
    child: Option<Child>,
    channel: Option<Channel>,
    status: Option<File>,
    handshake_timeout: Duration,
    /// SessionOptions::call_timeout; else the profile's (from SESSION), else 60 s.
    call_timeout: Option<Duration>,
    calls: u64,
    fault: Option<HostFault>,
    /// The profile's `limits.call_time` (from SESSION): a missed deadline equal to it is
    /// the profile's.
    profile_call_time: Option<Duration>,
    /// The stub's startup ERROR frame (kind, status, message), for the verdict.
    startup: Option<(ErrorKind, i32, String)>,
    report: Option<PathBuf>,
    /// The most the channel's read buffer ever reserved.
    peak_buffer: usize,
    /// The control socket of a pausable session.
    control: Option<Arc<control::Control>>,
    /// The shared-memory region, until HELLO (then the channel holds it).
    ring: Option<Box<plugjail_protocol::shm::HostRing>>,
    transport: Transport,
    /// Why a session that asked for shared memory runs on the pipe.
    shm_unavailable: Option<Box<ShmError>>,
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

impl Session {
    /// How this session's calls travel: [`Transport::SharedMemory`] when
    /// [`SessionOptions::shm`] asked for it and the region could be created.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// Why a session that asked for shared memory runs on the pipe, if it does.
    pub fn shm_unavailable(&self) -> Option<&ShmError> {
        self.shm_unavailable.as_deref()
    }

    /// Asks `plugjail serve` to end the jail (SIGTERM: it kills the jail and reports).
    fn stop(&mut self) {
        if let Some(child) = &self.child
            && let Ok(pid) = i32::try_from(child.id())
        {
            // Our own child, not yet reaped: the pid cannot have been reused.
            // SAFETY: kill takes no pointers.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
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
