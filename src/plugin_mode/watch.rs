//! Call and idle deadlines without a syscall per call: a shared page.
//!
//! The supervisor creates a one-page memfd and hands it to the stub (`--watch-fd`). The
//! stub maps it once at start-up and keeps one counter in it, `seq`: it adds one just
//! before calling into the plugin (odd: a call is in flight) and one right after (even:
//! idle). Two plain memory stores per call, no clock and no syscall, so the call round trip
//! stays at pipe speed.
//!
//! The supervisor maps the same page read-only and looks at `seq` every
//! [`Watcher::period`] (a quarter of the shortest limit, 10–250 ms). It remembers when it
//! first saw the current value; a value that stays odd for `call_time` is a call that ran
//! too long, one that stays even for `idle_time` an idle session. Either way the jail is
//! killed, so a host that simply waits (no deadline of its own) is still protected. The
//! kill comes between the limit and the limit plus one period after the call started.
//!
//! The plugin shares the stub's address space and can write the page. Forging it can only
//! hide a long call (keep `seq` even or keep changing it), which leaves the run bounded by
//! `idle_time` (if set, when `seq` stands still) and always by `wall_time` and the host's
//! own deadline (SECURITY.md). The memfd is sealed against shrinking, so nothing the jail
//! does can make the supervisor's read fault.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

pub use plugjail_protocol::watch::WatchError;
use plugjail_protocol::watch::{PAGE, Page};

use crate::verdict::TimeoutKind;

/// The supervisor's side: the page's memfd (to hand to the stub) and a read-only view.
#[derive(Debug)]
pub struct Watcher {
    memfd: OwnedFd,
    page: Page,
    call_time: Option<Duration>,
    idle_time: Option<Duration>,
    last: u64,
    since: Instant,
}

impl Watcher {
    /// A new page; `call_time` / `idle_time` are the profile's limits (None: unlimited).
    pub fn new(
        call_time: Option<Duration>,
        idle_time: Option<Duration>,
    ) -> Result<Watcher, WatchError> {
        // SAFETY: NUL-terminated name, valid flags; the result is checked.
        let fd = unsafe {
            libc::memfd_create(
                c"plugjail-watch".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        };
        if fd < 0 {
            return Err(WatchError::last("memfd_create"));
        }
        // SAFETY: memfd_create just returned this descriptor; nothing else owns it.
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: integer calls on the memfd we own.
        if unsafe { libc::ftruncate(memfd.as_raw_fd(), PAGE as libc::off_t) } < 0 {
            return Err(WatchError::last("ftruncate"));
        }
        // No shrinking (a read past the end would SIGBUS the supervisor), no growing, no
        // new seals; writes stay allowed for the stub.
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: as above.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(WatchError::last("fcntl(F_ADD_SEALS)"));
        }
        let page = Page::map(memfd.as_raw_fd(), libc::PROT_READ)?;
        Ok(Watcher {
            memfd,
            page,
            call_time,
            idle_time,
            last: 0,
            since: Instant::now(),
        })
    }

    /// The memfd the stub maps (`--watch-fd`).
    pub fn memfd(&self) -> &OwnedFd {
        &self.memfd
    }

    /// How often to look: a quarter of the shortest limit, between 10 and 250 ms; None
    /// when neither limit is set.
    pub fn period(&self) -> Option<Duration> {
        let shortest = match (self.call_time, self.idle_time) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some((shortest / 4).clamp(Duration::from_millis(10), Duration::from_millis(250)))
    }

    /// Starts the clocks (call right after the jail started).
    pub fn reset(&mut self) {
        self.last = self.page.seq().load(Ordering::Acquire);
        self.since = Instant::now();
    }

    /// Looks at the page: Some(kind) when a limit ran out.
    pub fn check(&mut self) -> Option<TimeoutKind> {
        let now = Instant::now();
        let seq = self.page.seq().load(Ordering::Acquire);
        if seq != self.last {
            self.last = seq;
            self.since = now;
            return None;
        }
        let still = now.saturating_duration_since(self.since);
        let in_call = seq % 2 == 1;
        match (in_call, self.call_time, self.idle_time) {
            (true, Some(limit), _) if still >= limit => Some(TimeoutKind::Call),
            (false, _, Some(limit)) if still >= limit => Some(TimeoutKind::Idle),
            _ => None,
        }
    }

    /// Calls the stub finished, as the page says (the plugin could forge it: a figure, not
    /// evidence).
    pub fn calls(&self) -> u64 {
        self.page.seq().load(Ordering::Acquire) / 2
    }

    /// Whether the page says a call is in flight.
    pub fn in_call(&self) -> bool {
        self.page.seq().load(Ordering::Acquire) % 2 == 1
    }

    /// The limit of `kind`, for the verdict.
    pub fn limit(&self, kind: TimeoutKind) -> Option<Duration> {
        match kind {
            TimeoutKind::Call => self.call_time,
            TimeoutKind::Idle => self.idle_time,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plugjail_protocol::watch::StubPage;

    #[test]
    fn a_long_call_and_a_long_idle_are_seen() {
        let mut w = Watcher::new(
            Some(Duration::from_millis(40)),
            Some(Duration::from_millis(80)),
        )
        .expect("watcher");
        assert_eq!(w.period(), Some(Duration::from_millis(10)));
        let stub = StubPage::map(w.memfd().as_raw_fd()).expect("stub map");
        w.reset();
        stub.begin();
        assert_eq!(w.check(), None);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(w.check(), Some(TimeoutKind::Call));
        stub.end();
        assert_eq!(w.check(), None);
        assert_eq!(w.calls(), 1);
        std::thread::sleep(Duration::from_millis(90));
        assert_eq!(w.check(), Some(TimeoutKind::Idle));
        // Calls faster than the period keep the clocks fresh.
        for _ in 0..3 {
            stub.begin();
            stub.end();
            assert_eq!(w.check(), None);
        }
        assert_eq!(w.calls(), 4);
    }

    #[test]
    fn period_is_a_quarter_of_the_shortest_limit_within_bounds() {
        let p = |c: Option<u64>, i: Option<u64>| {
            Watcher::new(c.map(Duration::from_secs), i.map(Duration::from_secs))
                .expect("watcher")
                .period()
        };
        assert_eq!(p(None, None), None);
        assert_eq!(p(Some(1), None), Some(Duration::from_millis(250)));
        assert_eq!(p(Some(30), Some(60)), Some(Duration::from_millis(250)));
        let w = Watcher::new(Some(Duration::from_millis(200)), None).expect("watcher");
        assert_eq!(w.period(), Some(Duration::from_millis(50)));
    }
}
