//! `plugjail host --config FILE [--listen PATH]`: set-up, the one connection on
//! stdin/stdout or the socket, and the ordered stop.

use std::fs::File;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use super::conn::{self, Ending};
use super::listen::Listener;
use super::shared::{Reason, Shared};
use crate::host::{Host, HostConfig};

/// The server stopped as asked (SHUTDOWN, end of input, SIGTERM/SIGINT/SIGHUP).
pub const EXIT_OK: u8 = 0;
/// The configuration is invalid (as `plugjail check`).
pub const EXIT_INVALID: u8 = 2;
/// The server could not start: signals, the socket, the standard descriptors, or the host.
pub const EXIT_SETUP: u8 = 125;

pub struct Options {
    pub config: PathBuf,
    /// Serve a unix socket at this path instead of stdin/stdout.
    pub listen: Option<PathBuf>,
}

/// Runs the server; returns the exit status.
pub fn run(opts: &Options) -> u8 {
    // First, while this is the only thread: every thread started later inherits the
    // mask, so the stop signals reach only the signalfd.
    let signals = match crate::jail::block_stop_signals() {
        Ok(fd) => fd,
        Err(e) => return setup_failed(&format!("cannot block the stop signals: {e}")),
    };
    let config = match load_config(&opts.config) {
        Ok(c) => c,
        Err(text) => {
            eprint!("{text}");
            return EXIT_INVALID;
        }
    };
    let limit = in_flight_limit(&config);
    // Still single-threaded: Listener::bind changes the umask for a moment.
    let front = match &opts.listen {
        Some(path) => match Listener::bind(path) {
            Ok(l) => Front::Socket(l),
            Err(e) => return setup_failed(&e.to_string()),
        },
        None => match Stdio::take() {
            Ok(s) => Front::Stdio(s),
            Err(e) => return setup_failed(&format!("standard descriptors: {e}")),
        },
    };
    let host = match Host::start(config) {
        Ok(h) => h,
        Err(e) => return setup_failed(&format!("the host did not start: {e}")),
    };
    let shared = match Shared::new(host, limit) {
        Ok(s) => Arc::new(s),
        Err(e) => return setup_failed(&format!("a pipe: {e}")),
    };
    let watcher = shared.clone();
    let spawned = std::thread::Builder::new()
        .name("host-wire-signals".into())
        .spawn(move || wait_for_signal(&signals, &watcher));
    if let Err(e) = spawned {
        shared.stop();
        return setup_failed(&format!("cannot start a thread: {e}"));
    }
    std::thread::scope(|s| {
        let served = s.spawn(|| match &front {
            Front::Socket(l) => l.serve(&shared),
            Front::Stdio(io) => io.serve(&shared),
        });
        let reason = shared.wait_for_stop_request();
        eprintln!("plugjail host: stopping: {reason}");
        let cancelled = shared.stop();
        if cancelled > 0 {
            eprintln!("plugjail host: {cancelled} calls in flight were cancelled");
        }
        let _ = served.join();
    });
    // The socket file goes with the listener.
    drop(front);
    EXIT_OK
}

fn setup_failed(message: &str) -> u8 {
    eprintln!("plugjail host: {message}");
    EXIT_SETUP
}

/// Requests in flight per connection: what the plugins can take at once plus what may
/// wait for them.
fn in_flight_limit(config: &HostConfig) -> usize {
    config
        .plugins
        .iter()
        .map(|p| p.pool.max.saturating_add(p.pool.queue))
        .fold(0usize, usize::saturating_add)
}

/// The configuration, or every problem in it as `plugjail check` prints them.
fn load_config(path: &std::path::Path) -> Result<HostConfig, String> {
    crate::host::config::load(path).map_err(|errors| {
        let n = errors.diagnostics.len();
        let s = if n == 1 { "" } else { "s" };
        format!("{errors}\n{}: {n} error{s}\n", path.display())
    })
}

fn wait_for_signal(fd: &nix::sys::signalfd::SignalFd, shared: &Shared) {
    loop {
        match fd.read_signal() {
            Ok(Some(info)) => {
                let name =
                    nix::sys::signal::Signal::try_from(i32::try_from(info.ssi_signo).unwrap_or(0))
                        .map_or("a stop signal", |s| s.as_str());
                shared.request_stop(Reason::Signal(name));
                return;
            }
            Ok(None) | Err(nix::Error::EINTR) => {}
            Err(e) => {
                eprintln!("plugjail host: reading signals: {e}");
                return;
            }
        }
    }
}

enum Front {
    Socket(Listener),
    Stdio(Stdio),
}

/// The protocol's own copies of stdin and stdout. Descriptors 0 and 1 themselves are
/// pointed elsewhere (/dev/null and stderr), so nothing else in the process or its
/// children can read a frame meant for us or write a byte into the frame stream.
struct Stdio {
    input: OwnedFd,
    output: OwnedFd,
}

impl Stdio {
    fn take() -> nix::Result<Stdio> {
        let input = dup_cloexec(std::io::stdin().as_fd())?;
        let output = dup_cloexec(std::io::stdout().as_fd())?;
        let null = nix::fcntl::open(
            "/dev/null",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )?;
        nix::unistd::dup2_stdin(&null)?;
        nix::unistd::dup2_stdout(std::io::stderr().as_fd())?;
        Ok(Stdio { input, output })
    }

    fn serve(&self, shared: &Arc<Shared>) {
        let (Ok(input), Ok(output)) = (self.input.try_clone(), self.output.try_clone()) else {
            eprintln!("plugjail host: cannot duplicate the standard descriptors");
            shared.request_stop(Reason::Eof);
            return;
        };
        let stopper = shared.clone();
        let on_broken = move || stopper.request_stop(Reason::Eof);
        let ending = conn::serve(shared, input, File::from(output), on_broken, true);
        if let Ending::Broken(why) = ending {
            eprintln!("plugjail host: the connection on stdin/stdout broke: {why}");
        }
    }
}

fn dup_cloexec(fd: std::os::fd::BorrowedFd<'_>) -> nix::Result<OwnedFd> {
    let raw = fcntl(fd, FcntlArg::F_DUPFD_CLOEXEC(3))?;
    // SAFETY: F_DUPFD_CLOEXEC just returned this new descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
