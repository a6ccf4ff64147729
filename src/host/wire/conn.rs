//! One connection: a reader (this thread) that decodes frames and admits requests, a
//! worker thread per admitted CALL or CONTROL, an event forwarder, and a writer thread
//! that owns the output and sends frames in the order they are queued.
//!
//! The in-flight table (call id → cancel token) is the connection's: an id stays in it
//! until its answer is queued, so a duplicate is refused as long as the first could still
//! be answered, and an id is free again before the client can see the answer.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::codec::{Request, decode_request};
use super::reply;
use super::shared::{Reason, Shared};
use super::source::{End, Source};
use super::worker;
use crate::host::{CancelToken, Event};

/// Frames that may wait for the writer.
const OUT_QUEUE: usize = 256;

/// How often an idle event forwarder looks whether its connection ended.
const EVENT_POLL: Duration = Duration::from_millis(200);

pub enum Out {
    Frame(Vec<u8>),
    /// Flush and end the writer.
    Close,
}

pub struct Conn {
    out: SyncSender<Out>,
    /// The threads that run its requests.
    pub threads: Arc<super::threads::Threads>,
    state: Mutex<State>,
    idle: Condvar,
    /// The reader is done: the event forwarder may end.
    closed: AtomicBool,
}

#[derive(Default)]
pub struct State {
    /// Requests admitted and not yet answered; calls have a token.
    pub calls: HashMap<u64, Option<CancelToken>>,
    /// Requests being worked on (one outlives its table entry until its answer is
    /// queued).
    pub workers: usize,
}

/// How a connection ended, for the caller's log.
pub enum Ending {
    Eof,
    Stopped,
    /// The input cannot be trusted to be in step, or failed.
    Broken(String),
}

impl Conn {
    /// Queues a frame; false if the writer is gone.
    pub fn send(&self, frame: Vec<u8>) -> bool {
        self.out.send(Out::Frame(frame)).is_ok()
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A worker has finished (its answer is queued, or it never started).
    pub fn worker_done(&self) {
        let mut s = self.lock();
        s.workers -= 1;
        if s.workers == 0 {
            self.idle.notify_all();
        }
    }

    /// Cancels every call in flight; returns how many.
    pub fn cancel_all(&self) -> usize {
        let tokens: Vec<CancelToken> = self.lock().calls.values().flatten().cloned().collect();
        for t in &tokens {
            t.cancel();
        }
        tokens.len()
    }

    fn cancel(&self, id: u64) {
        let token = self.lock().calls.get(&id).cloned().flatten();
        // Outside the lock: cancelling ends a jail. An id not in flight (answered a moment
        // ago, or never sent) is ignored.
        if let Some(t) = token {
            t.cancel();
        }
    }

    fn wait_idle(&self) {
        let mut s = self.lock();
        while s.workers > 0 {
            s = self.idle.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// Serves one connection until its input ends, it breaks, or the server stops; returns
/// once every answer is written (or the output failed). With `ends_server` (stdin/stdout),
/// the end of the input stops the server, and the connection stays to deliver the answers
/// and events of the shutdown.
pub fn serve(
    shared: &Arc<Shared>,
    input: std::os::fd::OwnedFd,
    output: impl Write + Send + 'static,
    on_broken_output: impl FnOnce() + Send + 'static,
    ends_server: bool,
) -> Ending {
    let (tx, rx) = sync_channel(OUT_QUEUE);
    let writer = std::thread::Builder::new()
        .name("host-wire-writer".into())
        .spawn(move || write_frames(output, rx, on_broken_output));
    let Ok(writer) = writer else {
        return Ending::Broken("cannot start the writer thread".into());
    };
    let conn = Arc::new(Conn {
        out: tx,
        threads: Arc::default(),
        state: Mutex::new(State::default()),
        idle: Condvar::new(),
        closed: AtomicBool::new(false),
    });
    shared.add_conn(&conn);

    // Subscribed before the snapshot: no event after it is missed.
    let events = shared.with_host(|h| h.events());
    let plugins = shared.with_host(|h| h.status()).unwrap_or_default();
    conn.send(reply::hello(&plugins));
    let forwarder = events.and_then(|rx| {
        let (conn, shared) = (conn.clone(), shared.clone());
        std::thread::Builder::new()
            .name("host-wire-events".into())
            .spawn(move || forward_events(&rx, &conn, &shared))
            .ok()
    });

    let mut source = Source::new(input, shared.stop_fd());
    let ending = read_requests(shared, &conn, &mut source);
    if ends_server && !matches!(ending, Ending::Stopped) {
        shared.request_stop(Reason::Eof);
        wait_readable(shared);
    }
    drop(source);

    // Calls still running: cancelled (a no-op when the server's stop did it already).
    conn.cancel_all();
    conn.wait_idle();
    conn.threads.close();
    conn.closed.store(true, Ordering::SeqCst);
    if let Some(f) = forwarder {
        let _ = f.join();
    }
    let _ = conn.out.send(Out::Close);
    let _ = writer.join();
    ending
}

fn read_requests(shared: &Arc<Shared>, conn: &Arc<Conn>, source: &mut Source<'_>) -> Ending {
    loop {
        let (h, body) = match source.next() {
            Ok(frame) => frame,
            Err(End::Eof) => return Ending::Eof,
            Err(End::Stopped) => return Ending::Stopped,
            Err(e @ (End::Header(_) | End::Truncated { .. })) => {
                let message = format!("{e}; closing the connection");
                conn.send(reply::error(0, "bad_frame", &message));
                return Ending::Broken(e.to_string());
            }
            Err(e @ End::Io(_)) => return Ending::Broken(e.to_string()),
        };
        match decode_request(&h, &body) {
            Err(e) => {
                conn.send(reply::error(h.id, "bad_frame", &e.to_string()));
            }
            Ok(Request::Cancel { id }) => conn.cancel(id),
            Ok(Request::Shutdown) => shared.request_stop(Reason::Shutdown),
            Ok(Request::Call {
                id,
                plugin,
                method,
                input,
            }) => {
                let (plugin, method) = (plugin.to_owned(), method.to_owned());
                let at = body.len() - input.len();
                let mut input = body;
                input.drain(..at);
                worker::call(shared, conn, id, plugin, method, input);
            }
            Ok(Request::Control {
                id,
                op,
                plugin,
                upgrade,
            }) => {
                let plugin = plugin.to_owned();
                worker::control(shared, conn, id, op, plugin, upgrade);
            }
        }
    }
}

/// Blocks until the server's stop descriptor is readable.
fn wait_readable(shared: &Shared) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds = [PollFd::new(shared.stop_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) if fds[0].any().unwrap_or(false) => return,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            // Cannot wait: give up on delivering the shutdown's events.
            Err(_) => return,
        }
    }
}

fn forward_events(rx: &Receiver<Event>, conn: &Conn, shared: &Shared) {
    loop {
        match rx.recv_timeout(EVENT_POLL) {
            Ok(e) => {
                // A connection that ended while the host lives stops here; while the
                // server stops, the host's last events (its jails ending) still go out.
                if conn.closed.load(Ordering::SeqCst) && !shared.stopping() {
                    return;
                }
                if !conn.send(reply::event(&e)) {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                if conn.closed.load(Ordering::SeqCst) {
                    return;
                }
            }
            // The host is gone (shut down): every event it sent was forwarded.
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The writer: frames in queue order, until [`Out::Close`]. After a failed write it drops
/// frames (so that no sender waits on a dead peer) and calls `on_broken` once.
fn write_frames(mut w: impl Write, rx: Receiver<Out>, on_broken: impl FnOnce()) {
    let mut on_broken = Some(on_broken);
    for out in rx {
        match out {
            Out::Frame(bytes) => {
                if on_broken.is_some()
                    && w.write_all(&bytes).is_err()
                    && let Some(f) = on_broken.take()
                {
                    f();
                }
            }
            Out::Close => break,
        }
    }
    let _ = w.flush();
}
