//! What every connection of one `plugjail host` shares: the host, the in-flight limit,
//! and the stop machinery.
//!
//! Stopping has one order (docs/host-protocol.md, "The end"): `stopping` is set and every
//! call in flight is cancelled ([`Shared::cancel_all`]); the host is taken out of its lock
//! once the calls in progress have returned, and shut down; then the stop descriptor wakes
//! every connection, which sends what is left and closes.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, Weak};

use nix::fcntl::OFlag;

use super::conn::Conn;
use crate::host::Host;

/// Why the server stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A client sent SHUTDOWN.
    Shutdown,
    /// The standard input ended (or became unusable, or stdout did).
    Eof,
    Signal(&'static str),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Shutdown => f.write_str("a client sent SHUTDOWN"),
            Reason::Eof => f.write_str("the connection on stdin/stdout ended"),
            Reason::Signal(name) => write!(f, "{name}"),
        }
    }
}

pub struct Shared {
    /// `None` once the host is shut down: calls then answer `shutting_down`.
    host: RwLock<Option<Host>>,
    /// Calls one connection may have in flight: the sum over the plugins of
    /// `pool.max + pool.queue`.
    pub limit: usize,
    /// Set first when stopping; admissions check it under their connection's lock.
    stopping: AtomicBool,
    requested: Mutex<Option<Reason>>,
    requested_cv: Condvar,
    /// Readable once the host is shut down: every connection then ends.
    stop_r: OwnedFd,
    stop_w: OwnedFd,
    conns: Mutex<Vec<Weak<Conn>>>,
}

impl Shared {
    pub fn new(host: Host, limit: usize) -> nix::Result<Shared> {
        let (stop_r, stop_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        Ok(Shared {
            host: RwLock::new(Some(host)),
            limit: limit.max(1),
            stopping: AtomicBool::new(false),
            requested: Mutex::new(None),
            requested_cv: Condvar::new(),
            stop_r,
            stop_w,
            conns: Mutex::new(Vec::new()),
        })
    }

    /// Runs `f` with the host, or returns `None` once it is shut down. Shutting down waits
    /// for every `f` in progress.
    pub fn with_host<T>(&self, f: impl FnOnce(&Host) -> T) -> Option<T> {
        let guard = self.host.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().map(f)
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Asks the main thread to stop the server; the first reason wins.
    pub fn request_stop(&self, reason: Reason) {
        let mut r = self.requested.lock().unwrap_or_else(|p| p.into_inner());
        r.get_or_insert(reason);
        self.requested_cv.notify_all();
    }

    /// Waits for [`Shared::request_stop`].
    pub fn wait_for_stop_request(&self) -> Reason {
        let mut r = self.requested.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(reason) = *r {
                return reason;
            }
            r = self.requested_cv.wait(r).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Readable once connections must end.
    pub fn stop_fd(&self) -> BorrowedFd<'_> {
        self.stop_r.as_fd()
    }

    pub fn add_conn(&self, conn: &Arc<Conn>) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| c.strong_count() > 0);
        conns.push(Arc::downgrade(conn));
    }

    /// Stops the host: no new calls, every call in flight cancelled, the host shut down
    /// once the calls in progress returned; then wakes every connection. Returns the
    /// number of calls cancelled.
    pub fn stop(&self) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        let conns: Vec<Arc<Conn>> = {
            let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
            conns.iter().filter_map(Weak::upgrade).collect()
        };
        let cancelled = conns.iter().map(|c| c.cancel_all()).sum();
        // Waits for every call_with in progress: each was cancelled, or started after the
        // flag and finds no host.
        let host = self.host.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(host) = host {
            host.shutdown();
        }
        // One byte, never read: the pipe stays readable for every poll from now on.
        let _ = nix::unistd::write(&self.stop_w, &[1]);
        cancelled
    }
}
