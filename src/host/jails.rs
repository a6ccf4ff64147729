//! Starting and retiring a plugin's jails: the pool is refilled in the background, each
//! new jail on a thread of its own (a slow start never delays another), and a jail leaves
//! the pool through [`Plugin::retire`], which closes it on a thread and reports its
//! verdict as an event.

use std::sync::Arc;
use std::time::Instant;

use super::events::EventKind;
use super::lifecycle::{Input, State};
use super::plugin::{Control, Inner, Member, Plugin, Source};
use crate::session::{CallError, SessionOptions, Transport};
use crate::{Session, SessionVerdict};

/// A jail that did not make it into the pool: its verdict (boxed: a failed start is
/// rare, a successful one should not carry its size).
pub(super) struct StartFailed {
    pub verdict: Box<SessionVerdict>,
}

impl Plugin {
    /// Starts jails until the pool has what it needs: `warm` ready beyond the busy ones,
    /// more while calls wait, never more than `max` in all. Nothing starts while the plugin
    /// is paused or does not keep jails.
    pub fn refill(self: &Arc<Self>, inner: &mut Inner) {
        if !inner.state.keeps_jails() || inner.state == State::Paused {
            return;
        }
        let pool = &self.cfg.pool;
        let want = pool.max.min(inner.busy.len() + pool.warm.max(inner.queued));
        while inner.idle.len() + inner.busy.len() + inner.starting.len() < want {
            let jail = inner.next_jail;
            inner.next_jail += 1;
            inner.starting.insert(jail, None);
            let me = Arc::clone(self);
            let source = inner.source.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("plugjail-start-{}", self.id))
                .spawn(move || me.start(jail, &source));
            if spawned.is_err() {
                // Out of threads: the next refill (a call, an ending) tries again.
                inner.starting.remove(&jail);
                break;
            }
        }
    }

    /// The body of a start thread: waits out the backoff, starts the jail, and puts it in
    /// the pool, or counts its failure.
    fn start(self: Arc<Self>, jail: u64, source: &Source) {
        if !self.wait_backoff(source.generation) {
            let mut inner = self.lock();
            inner.starting.remove(&jail);
            self.wake(&inner);
            return;
        }
        let started = Instant::now();
        let launched = self.launch(source, jail, |control| {
            let mut inner = self.lock();
            if let Some(slot) = inner.starting.get_mut(&jail) {
                *slot = Some(control);
            }
        });
        let mut inner = self.lock();
        inner.starting.remove(&jail);
        match launched {
            Ok((member, version)) => {
                let wanted = inner.state.keeps_jails()
                    && member.generation == inner.source.generation
                    // Started before a pause: it joins the pool paused.
                    && (inner.state != State::Paused || member.session.pause().is_ok());
                if wanted {
                    let _ = self.transition(&mut inner, Input::Ready, "a jail said HELLO");
                    let _ = self.transition(&mut inner, Input::Healthy, "ready for calls");
                    self.emit(EventKind::JailReady {
                        jail,
                        start_ms: millis(started.elapsed()),
                        version,
                        transport: match member.session.transport() {
                            Transport::Pipe => "pipe",
                            Transport::SharedMemory => "shm",
                        },
                        shm_unavailable: member.session.shm_unavailable().map(|e| e.to_string()),
                    });
                    inner.idle.push(member);
                } else {
                    self.retire(&mut inner, member, "not needed");
                }
            }
            Err(failed) => {
                self.emit(jail_ended(jail, None, &failed.verdict));
                if source.generation == inner.source.generation {
                    self.fault(&mut inner, &failed.verdict.outcome);
                }
            }
        }
        self.refill(&mut inner);
        self.wake(&inner);
    }

    /// Sleeps until the backoff is over; false if the jail is no longer wanted by then.
    fn wait_backoff(&self, generation: u64) -> bool {
        let mut inner = self.lock();
        loop {
            if !inner.state.keeps_jails() || inner.source.generation != generation {
                return false;
            }
            let left = inner.not_before.map_or(std::time::Duration::ZERO, |t| {
                t.saturating_duration_since(Instant::now())
            });
            if left.is_zero() {
                return true;
            }
            inner = self.wait(inner, left);
        }
    }

    /// Starts one jail of `source`, waits for its HELLO and passes its health call.
    /// `running` learns how to stop it as soon as `plugjail serve` runs.
    pub fn launch(
        &self,
        source: &Source,
        jail: u64,
        running: impl FnOnce(Control),
    ) -> Result<(Member, String), StartFailed> {
        let opts = SessionOptions {
            profile: source.profile.clone(),
            plugin: source.plugin.clone(),
            plugjail: self.plugjail.clone(),
            call_timeout: Some(source.call_time),
            handshake_timeout: Some(self.cfg.start_time),
            pausable: true,
            cpus: self.cfg.cpus.clone(),
            shm: self.cfg.shm,
            ..SessionOptions::default()
        };
        let mut session = Session::spawn(&opts).map_err(|e| StartFailed {
            verdict: Box::new(SessionVerdict::of_host(
                "setup_failed",
                "session",
                e.to_string(),
            )),
        })?;
        if let Some(control) = Control::of(&session) {
            running(control);
        }
        let version = match session.hello() {
            Ok(hello) => hello.version.clone(),
            Err(_) => return Err(self.failed_start(session)),
        };
        if let Some(health) = &self.cfg.health {
            match session.call(&health.method, &health.input) {
                Ok(_) => {}
                Err(CallError::Failed { message, .. }) => {
                    let why = format!(
                        "the health call {} answered ERROR: {}",
                        health.method,
                        crate::text::escape(message.as_bytes())
                    );
                    session.close_within(self.cfg.stop_time);
                    return Err(StartFailed {
                        verdict: Box::new(SessionVerdict::of_host("plugin_failed", "health", why)),
                    });
                }
                Err(_) => return Err(self.failed_start(session)),
            }
        }
        Ok((
            Member {
                session,
                id: jail,
                generation: source.generation,
                calls: 0,
                born: Instant::now(),
            },
            version,
        ))
    }

    fn failed_start(&self, session: Session) -> StartFailed {
        StartFailed {
            verdict: Box::new(session.close_within(self.cfg.stop_time)),
        }
    }

    /// Takes `member` out of service: closes it on a thread of its own (the plugin's
    /// shutdown() runs, bounded by `stop_time`) and reports its verdict.
    pub fn retire(self: &Arc<Self>, inner: &mut Inner, member: Member, reason: &'static str) {
        inner.closing += 1;
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("plugjail-close-{}", self.id))
            .spawn(move || me.close_member(member, reason));
        if spawned.is_err() {
            // No thread: the closure, dropped, dropped the session, whose Drop stopped its
            // jail and reaped `plugjail serve` (without the plugin's shutdown()).
            inner.closing -= 1;
        }
    }

    fn close_member(&self, member: Member, reason: &'static str) {
        let jail = member.id;
        let verdict = member.session.close_within(self.cfg.stop_time);
        self.emit(jail_ended(jail, Some(reason), &verdict));
        let mut inner = self.lock();
        inner.closing -= 1;
        self.wake(&inner);
    }

    /// Retires every idle jail.
    pub fn retire_idle(self: &Arc<Self>, inner: &mut Inner, reason: &'static str) {
        for member in std::mem::take(&mut inner.idle) {
            self.retire(inner, member, reason);
        }
    }

    /// Whether `member` has done its share: `recycle_calls` calls or `recycle_time`.
    pub fn worn_out(&self, member: &Member) -> bool {
        let pool = &self.cfg.pool;
        pool.recycle_calls.is_some_and(|n| member.calls >= n)
            || pool
                .recycle_time
                .is_some_and(|t| member.born.elapsed() >= t)
    }
}

pub(super) fn jail_ended(
    jail: u64,
    reason: Option<&'static str>,
    verdict: &SessionVerdict,
) -> EventKind {
    EventKind::JailEnded {
        jail,
        outcome: verdict.outcome.clone(),
        reason,
        calls: verdict.calls,
        verdict: verdict.json.clone(),
    }
}

pub(super) fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
