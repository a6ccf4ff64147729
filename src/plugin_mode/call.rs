//! `plugjail call`: one call of one plugin method, for the shell and CI.
//!
//! Here plugjail is both the supervisor and the host. The main thread supervises the jail
//! exactly as `exec` and `serve` do (`supervise::run_plan`); once the jail runs, a host
//! thread speaks the protocol over a pipe pair with [`Channel`]: HELLO, one CALL,
//! SHUTDOWN. The RESULT goes to stdout, LOG frames to stderr. Because plugjail is the
//! host, it sees a malformed frame itself (`protocol_violation`) and enforces the call
//! deadline itself (`timeout`, kind `call`), besides the watch page.
//!
//! Everything the plugin says reaches stderr through [`crate::text`]: one escaped line per
//! record, marked `plugin[TAG]: `, so the only `plugjail: ` line is plugjail's own.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::outcome::{HostStop, SessionFacts, plugin_verdict};
use super::prepare;
use super::serve::{prepare_failure, report};
use super::watch::Watcher;
use crate::jail::{LiveJail, Plan, Watch};
use crate::protocol::consts::log_level;
use crate::protocol::{Channel, ChannelError, ErrorKind};
use crate::supervise::{Context, Hooks, run_plan};
use crate::text::{self, LogLevel, Source};
use crate::verdict::{CallErrorReport, Outcome, TimeoutKind};

/// How long the plugin may take to load and say HELLO when the profile sets no call_time.
const DEFAULT_HANDSHAKE: Duration = Duration::from_secs(30);
/// The host's call deadline when the profile sets no call_time (wall_time still applies).
const NO_DEADLINE: Duration = Duration::from_secs(365 * 24 * 3600);

pub struct CallOptions {
    pub profile: PathBuf,
    pub plugin: PathBuf,
    pub method: String,
    /// A file, `-` for stdin, or None for empty input.
    pub input: Option<PathBuf>,
    pub report: Option<PathBuf>,
}

/// What the host thread saw.
#[derive(Debug)]
enum HostEnd {
    /// RESULT, written to stdout.
    Answered,
    /// ERROR for the call.
    Failed {
        kind: ErrorKind,
        status: i32,
        message: String,
        /// The message came from the channel (the stub or the plugin), not from plugjail.
        remote: bool,
    },
    /// ERROR with call id 0: the plugin did not start.
    Startup {
        kind: ErrorKind,
        status: i32,
        message: String,
    },
    Protocol(String),
    Timeout(Duration),
    /// The channel closed: the stub ended (the supervisor knows how).
    Closed,
    Io(String),
}

pub fn run(opts: CallOptions) -> u8 {
    let command = vec![opts.plugin.display().to_string(), opts.method.clone()];
    crate::jail::hold_stop_signals();
    let ctx = Context::new(&opts.profile, &command);
    let mut report_file = None;
    let verdict = 'run: {
        report_file = match ctx.open_report(opts.report.as_deref()) {
            Ok(r) => r,
            Err(v) => break 'run *v,
        };
        crate::timing::mark("report");
        let profile = match ctx.load_profile() {
            Ok(p) => p,
            Err(v) => break 'run *v,
        };
        crate::timing::mark("profile");
        let max = profile.limits.max_message;
        let input = match read_input(opts.input.as_ref(), max) {
            Ok(i) => i,
            Err(msg) => break 'run ctx.failed(Outcome::SetupFailed, "input", None, msg),
        };
        let pipes = pipe().and_then(|a| pipe().map(|b| (a, b)));
        let ((to_stub_r, to_stub_w), (from_stub_r, from_stub_w)) = match pipes {
            Ok(p) => p,
            Err(e) => {
                break 'run ctx.failed(
                    Outcome::SetupFailed,
                    "pipe",
                    e.raw_os_error(),
                    e.to_string(),
                );
            }
        };
        let mut jail = match prepare(
            &profile,
            &opts.plugin,
            to_stub_r.as_fd(),
            from_stub_w.as_fd(),
            None,
        ) {
            Ok(j) => j,
            Err(e) => break 'run prepare_failure(&ctx, &e),
        };
        // The jail holds its own copies (placed fds); ours go now, so the host thread sees
        // end of file when the stub ends.
        drop((to_stub_r, from_stub_w));
        let wake = match eventfd() {
            Ok(fd) => fd,
            Err(e) => {
                break 'run ctx.failed(
                    Outcome::SetupFailed,
                    "eventfd",
                    e.raw_os_error(),
                    e.to_string(),
                );
            }
        };
        let host = Host {
            read: from_stub_r,
            write: to_stub_w,
            method: opts.method.clone(),
            input,
            max_message: max,
            handshake: profile.limits.call_time.unwrap_or(DEFAULT_HANDSHAKE),
            call: profile.limits.call_time.unwrap_or(NO_DEADLINE),
        };
        let plugin = report(&jail.plugin);
        let mut hooks = CallHooks {
            watcher: &mut jail.watcher,
            host: Some(host),
            thread: None,
            end: Arc::new(Mutex::new(None)),
            wake: Arc::new(wake),
            stop: None,
        };
        let v = run_plan(&ctx, &profile, &mut jail.plan, &jail.stub, &mut hooks);
        if let Some(t) = hooks.thread.take() {
            let _ = t.join();
        }
        let end = hooks.end.lock().map(|mut e| e.take()).unwrap_or(None);
        let calls = u64::from(matches!(
            end,
            Some(HostEnd::Answered | HostEnd::Failed { .. })
        ));
        // What the host saw wins even when the stub ended before the supervisor heard of
        // it (half a frame, then exit).
        let seen = match &end {
            Some(HostEnd::Protocol(what)) => Some(HostStop::Protocol(what.clone())),
            Some(HostEnd::Timeout(after)) => Some(HostStop::Timeout(TimeoutKind::Call, *after)),
            _ => None,
        };
        let facts = SessionFacts {
            stop: hooks.stop.take().or(seen),
            calls,
            in_call: jail.watcher.in_call(),
            plugin: Some(plugin),
            serve_filter: jail.serve_filter.take(),
        };
        let mut v = plugin_verdict(v, facts);
        match end {
            Some(HostEnd::Failed {
                kind,
                status,
                message,
                remote,
            }) if v.outcome == Outcome::Ok => {
                // The plugin's words on a line of their own, marked as its; the summary
                // line quotes them again, escaped.
                if remote {
                    print(Source::Fail, message.as_bytes());
                }
                v.call_error = Some(CallErrorReport {
                    kind: kind.name(),
                    status,
                    message,
                });
                v.exit_status = super::outcome::exit_status(&v);
            }
            Some(HostEnd::Startup {
                kind,
                status,
                message,
            }) => {
                // The stub's words say which stage and why; they go to
                // `plugin_failure.message`, never to the summary line.
                super::outcome::add_startup_error(&mut v, kind, status, message);
            }
            Some(HostEnd::Io(e)) => eprintln!("plugjail: channel: {e}"),
            _ => {}
        }
        v
    };
    ctx.deliver(verdict, report_file.as_mut(), None)
}

/// Reads the whole input, refusing more than fits in one frame.
fn read_input(input: Option<&PathBuf>, max: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let reader: Box<dyn Read> = match input {
        None => return Ok(buf),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin()),
        Some(p) => {
            Box::new(std::fs::File::open(p).map_err(|e| format!("--input {}: {e}", p.display()))?)
        }
    };
    reader
        .take(max.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading the input: {e}"))?;
    if buf.len() as u64 > max {
        return Err(format!(
            "the input is larger than the profile's limits.max_message ({max} bytes)"
        ));
    }
    Ok(buf)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((r, w))
}

fn eventfd() -> io::Result<OwnedFd> {
    // SAFETY: no pointers; the result is checked.
    let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: eventfd just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The host side, moved into its thread once the jail runs.
struct Host {
    read: OwnedFd,
    write: OwnedFd,
    method: String,
    input: Vec<u8>,
    max_message: u64,
    handshake: Duration,
    call: Duration,
}

impl Host {
    fn run(self) -> HostEnd {
        let mut chan = match Channel::new(self.read, self.write, self.max_message) {
            Ok(c) => c,
            Err(e) => return HostEnd::Io(e.to_string()),
        };
        let log = Arc::new(Mutex::new(StderrLog::default()));
        let handler = log.clone();
        chan.set_log_handler(Box::new(move |level, text| {
            if let Ok(mut log) = handler.lock() {
                log.frame(level, text);
            }
        }));
        let end = converse(
            &mut chan,
            &self.method,
            &self.input,
            self.handshake,
            self.call,
        );
        // Ends the session cleanly (the plugin's shutdown() runs) when the channel is
        // still in step; the stub then exits 0.
        chan.shutdown();
        if let Ok(mut log) = log.lock() {
            log.finish();
        }
        end
    }
}

/// HELLO, the call, the answer.
fn converse(
    chan: &mut Channel,
    method: &str,
    input: &[u8],
    handshake: Duration,
    call: Duration,
) -> HostEnd {
    if let Err(e) = chan.handshake(handshake) {
        return ended(e);
    }
    crate::timing::mark("hello");
    match chan.call(method, input, call) {
        Ok(out) => {
            crate::timing::mark("result");
            let mut stdout = io::stdout().lock();
            if let Err(e) = stdout.write_all(out).and_then(|()| stdout.flush()) {
                eprintln!("plugjail: writing the result to stdout: {e}");
            }
            HostEnd::Answered
        }
        Err(e) => ended(e),
    }
}

fn ended(e: ChannelError) -> HostEnd {
    match e {
        ChannelError::Remote {
            kind,
            status,
            message,
        } => HostEnd::Failed {
            kind,
            status,
            message,
            remote: true,
        },
        ChannelError::InputTooLarge { len, cap } => HostEnd::Failed {
            kind: ErrorKind::BadCall,
            status: 0,
            message: format!("input of {len} bytes does not fit in a frame of {cap} bytes"),
            remote: false,
        },
        ChannelError::Startup {
            kind,
            status,
            message,
        } => HostEnd::Startup {
            kind,
            status,
            message,
        },
        ChannelError::Protocol(p) => HostEnd::Protocol(p.to_string()),
        ChannelError::Timeout { after } => HostEnd::Timeout(after),
        ChannelError::Closed
        | ChannelError::NotDelivered
        | ChannelError::Broken
        | ChannelError::NotReady => HostEnd::Closed,
        ChannelError::Io { .. } | ChannelError::Shm(_) => HostEnd::Io(e.to_string()),
    }
}

/// LOG frames to stderr, for people: each log record one escaped line, the output stream
/// (chunks cut anywhere) put back into lines, every line marked `plugin[TAG]: `
/// ([`text::record`]).
#[derive(Default)]
struct StderrLog {
    output: text::Lines,
}

impl StderrLog {
    fn frame(&mut self, level: u32, text: &[u8]) {
        let level = match level {
            log_level::OUTPUT => {
                self.output.push(text, |line| print(Source::Output, line));
                return;
            }
            log_level::DEBUG => LogLevel::Debug,
            log_level::INFO => LogLevel::Info,
            log_level::WARN => LogLevel::Warn,
            _ => LogLevel::Error,
        };
        print(Source::Log(level), text);
    }

    /// The output's unfinished last line, if any.
    fn finish(&mut self) {
        self.output.finish(|line| print(Source::Output, line));
    }
}

/// One record, one write: lines from the host thread and the supervisor never mix.
fn print(source: Source, text: &[u8]) {
    let _ = io::stderr().write_all(text::record(source, text).as_bytes());
}

struct CallHooks<'a> {
    watcher: &'a mut Watcher,
    host: Option<Host>,
    thread: Option<JoinHandle<()>>,
    end: Arc<Mutex<Option<HostEnd>>>,
    /// Written by the host thread when it is done; wakes the supervisor. Shared, so the
    /// thread keeps it open even if the supervisor's side unwinds first.
    wake: Arc<OwnedFd>,
    stop: Option<HostStop>,
}

impl Hooks for CallHooks<'_> {
    fn started(&mut self, plan: &mut Plan) {
        plan.release_fds();
        self.watcher.reset();
        let Some(host) = self.host.take() else {
            return;
        };
        let end = self.end.clone();
        let wake = Arc::clone(&self.wake);
        let spawned = std::thread::Builder::new()
            .name("plugjail-host".to_owned())
            .spawn(move || {
                let e = host.run();
                if let Ok(mut slot) = end.lock() {
                    *slot = Some(e);
                }
                // SAFETY: an 8-byte write from a valid local to the eventfd this thread
                // holds open (`wake`).
                unsafe { libc::write(wake.as_raw_fd(), (&1u64 as *const u64).cast(), 8) };
            });
        match spawned {
            Ok(t) => self.thread = Some(t),
            Err(e) => eprintln!("plugjail: cannot start the host thread: {e}"),
        }
    }

    fn watch(&mut self) -> Option<&mut dyn Watch> {
        Some(self)
    }
}

impl Watch for CallHooks<'_> {
    fn period(&self) -> Option<Duration> {
        self.watcher.period()
    }

    fn wake_fds(&self) -> Vec<BorrowedFd<'_>> {
        vec![self.wake.as_fd()]
    }

    fn check(&mut self, _jail: LiveJail<'_>) -> bool {
        let mut n = 0u64;
        // SAFETY: an 8-byte read into a valid local from our non-blocking eventfd.
        unsafe { libc::read(self.wake.as_raw_fd(), (&mut n as *mut u64).cast(), 8) };
        let host = match self.end.lock() {
            Ok(e) => match e.as_ref() {
                Some(HostEnd::Protocol(what)) => Some(HostStop::Protocol(what.clone())),
                Some(HostEnd::Timeout(after)) => Some(HostStop::Timeout(TimeoutKind::Call, *after)),
                _ => None,
            },
            Err(_) => None,
        };
        if let Some(stop) = host {
            self.stop = Some(stop);
            return true;
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
