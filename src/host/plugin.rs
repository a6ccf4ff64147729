//! One plugin of a host: its lifecycle state, its pool of jails, and the policies that act
//! on what its jails do. `jails.rs` starts and retires jails, `call.rs` runs calls on them.
//!
//! Everything about a plugin is under one mutex ([`Plugin::inner`]), held only for
//! bookkeeping: never while a jail starts, answers a call or delivers its verdict. The
//! condition variable wakes every thread that waits on the plugin (calls waiting for a
//! jail, jails waiting out a backoff, shutdown) whenever something changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::config::PluginConfig;
use super::events::{Bus, EventKind};
use super::lifecycle::{Input, InvalidTransition, State};
use super::restart::{Budget, Fault, classify};
use super::{HostError, PluginStatus};
use crate::Session;
use crate::session::PauseHandle;

/// Which build of the plugin jails are started from; `generation` grows with each upgrade.
#[derive(Debug, Clone)]
pub(super) struct Source {
    pub plugin: PathBuf,
    pub profile: PathBuf,
    pub generation: u64,
    /// The call deadline: the configuration's, else the profile's `limits.call_time`.
    pub call_time: Duration,
}

impl Source {
    /// Checks that the plugin file exists and the profile is valid, for `cfg`'s plugin.
    pub fn new(
        cfg: &PluginConfig,
        plugin: PathBuf,
        profile: PathBuf,
        generation: u64,
    ) -> Result<Source, HostError> {
        let invalid = |message: String| HostError::Invalid {
            id: cfg.id.clone(),
            message,
        };
        let loaded = crate::profile::load(&profile)
            .map_err(|e| invalid(format!("the profile is not valid:\n{e}")))?;
        if !plugin.is_file() {
            return Err(invalid(format!("{}: no such file", plugin.display())));
        }
        let call_time = cfg
            .call_time
            .or(loaded.limits.call_time)
            .unwrap_or(DEFAULT_CALL_TIME);
        Ok(Source {
            plugin,
            profile,
            generation,
            call_time,
        })
    }
}

/// A jail that said HELLO: one session, one call at a time.
pub(super) struct Member {
    pub session: Session,
    pub id: u64,
    pub generation: u64,
    pub calls: u64,
    pub born: Instant,
}

/// How to reach a jail that another thread holds (starting it, or running a call on it).
#[derive(Debug, Clone)]
pub(super) struct Control {
    /// `plugjail serve`, unreaped while it is in [`Inner::busy`] or [`Inner::starting`]:
    /// the thread holding the session removes it from there (under the lock) before it
    /// closes the session.
    pub serve_pid: i32,
    pub pause: Option<PauseHandle>,
}

impl Control {
    pub fn of(session: &Session) -> Option<Control> {
        let serve_pid = i32::try_from(session.serve_pid()?).ok()?;
        Some(Control {
            serve_pid,
            pause: session.pause_handle().ok(),
        })
    }

    /// Ends the jail (`plugjail serve` kills it and reports).
    pub fn stop(&self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.serve_pid),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

pub(super) struct Inner {
    pub state: State,
    pub source: Source,
    pub idle: Vec<Member>,
    pub busy: HashMap<u64, Control>,
    /// Jails being started; the control once `plugjail serve` runs.
    pub starting: HashMap<u64, Option<Control>>,
    /// Jails being closed, until their verdict is in.
    pub closing: usize,
    /// Calls waiting for a jail.
    pub queued: usize,
    pub budget: Budget,
    /// No jail starts before this (the backoff after a transient fault).
    pub not_before: Option<Instant>,
    pub next_jail: u64,
    pub calls: u64,
    pub restarts: u64,
    /// Threads waiting on [`Plugin::changed`]: a wake-up costs a futex call, saved on
    /// every call when nobody waits.
    pub waiters: usize,
}

pub(crate) struct Plugin {
    pub id: String,
    pub cfg: PluginConfig,
    pub plugjail: Option<PathBuf>,
    pub bus: Arc<Bus>,
    pub inner: Mutex<Inner>,
    pub changed: Condvar,
    /// Held for the length of an upgrade.
    pub upgrading: Mutex<()>,
}

/// The call deadline when neither the configuration nor the profile sets one.
const DEFAULT_CALL_TIME: Duration = Duration::from_secs(60);

impl Plugin {
    pub fn new(
        cfg: PluginConfig,
        plugjail: Option<PathBuf>,
        bus: Arc<Bus>,
    ) -> Result<Arc<Plugin>, HostError> {
        if cfg.pool.max == 0 || cfg.pool.warm > cfg.pool.max {
            return Err(HostError::Invalid {
                id: cfg.id.clone(),
                message: "pool: need 1 ≤ max and warm ≤ max".to_owned(),
            });
        }
        let source = Source::new(&cfg, cfg.plugin.clone(), cfg.profile.clone(), 0)?;
        let inner = Inner {
            state: State::Loaded,
            source,
            idle: Vec::new(),
            busy: HashMap::new(),
            starting: HashMap::new(),
            closing: 0,
            queued: 0,
            budget: Budget::new(cfg.restart.clone()),
            not_before: None,
            next_jail: 1,
            calls: 0,
            restarts: 0,
            waiters: 0,
        };
        Ok(Arc::new(Plugin {
            id: cfg.id.clone(),
            cfg,
            plugjail,
            bus,
            inner: Mutex::new(inner),
            changed: Condvar::new(),
            upgrading: Mutex::new(()),
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere leaves bookkeeping that is still consistent enough to shut
        // down: every update below is a single assignment or push.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until something changed or `left` passed.
    pub fn wait<'a>(
        &self,
        mut inner: MutexGuard<'a, Inner>,
        left: Duration,
    ) -> MutexGuard<'a, Inner> {
        inner.waiters += 1;
        let mut inner = self
            .changed
            .wait_timeout(inner, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        inner.waiters -= 1;
        inner
    }

    /// Wakes every waiting thread, if there is one.
    pub fn wake(&self, inner: &Inner) {
        if inner.waiters > 0 {
            self.changed.notify_all();
        }
    }

    pub fn emit(&self, kind: EventKind) {
        self.bus.emit(&self.id, kind);
    }

    /// Moves the lifecycle on `input`; an actual change is an event and wakes waiters.
    pub fn transition(
        &self,
        inner: &mut Inner,
        input: Input,
        reason: &str,
    ) -> Result<(), InvalidTransition> {
        let to = inner.state.next(input)?;
        if to != inner.state {
            let from = std::mem::replace(&mut inner.state, to);
            self.emit(EventKind::State {
                from,
                to,
                reason: reason.to_owned(),
            });
            self.wake(inner);
        }
        Ok(())
    }

    /// Acts on a jail's ending: a transient fault delays the next start (or fails the
    /// plugin once the budget is spent), a violation quarantines it.
    pub fn fault(self: &Arc<Self>, inner: &mut Inner, outcome: &str) {
        let input = match classify(outcome) {
            Fault::None => return,
            Fault::Violation => Input::Violation,
            Fault::Transient => match inner.budget.fault(Instant::now()) {
                Some(delay) => {
                    inner.not_before = Some(Instant::now() + delay);
                    inner.restarts += 1;
                    self.emit(EventKind::Restart {
                        attempt: inner.budget.attempts(),
                        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                        cause: outcome.to_owned(),
                    });
                    Input::Transient {
                        within_budget: true,
                    }
                }
                None => Input::Transient {
                    within_budget: false,
                },
            },
        };
        let reason = match input {
            Input::Violation => format!("a jail ended in {outcome}: quarantined until released"),
            _ => format!("a jail ended in {outcome}"),
        };
        // Every input here is valid in every state that keeps jails; a terminated plugin
        // stays terminated.
        let _ = self.transition(inner, input, &reason);
        if !inner.state.keeps_jails() {
            self.retire_idle(inner, "quarantine");
        }
    }

    /// Lets a failed or quarantined plugin start afresh.
    pub fn release(self: &Arc<Self>) -> Result<(), HostError> {
        let mut inner = self.lock();
        self.transition(&mut inner, Input::Release, "released by the host")
            .map_err(|source| self.invalid_transition(source))?;
        inner.budget.reset();
        inner.not_before = None;
        self.refill(&mut inner);
        Ok(())
    }

    pub fn invalid_transition(&self, source: InvalidTransition) -> HostError {
        HostError::Transition {
            id: self.id.clone(),
            source,
        }
    }

    pub fn status(&self) -> PluginStatus {
        let inner = self.lock();
        PluginStatus {
            id: self.id.clone(),
            state: inner.state,
            plugin_path: inner.source.plugin.display().to_string(),
            idle: inner.idle.len(),
            busy: inner.busy.len(),
            starting: inner.starting.len(),
            queued: inner.queued,
            calls: inner.calls,
            restarts: inner.restarts,
        }
    }

    /// Ends the plugin: no new jail starts, idle ones close, busy ones are stopped (their
    /// calls answer `shutting_down`). Waits for every jail's verdict, at most `stop_time`
    /// beyond the slowest start.
    pub fn stop(self: &Arc<Self>) {
        let mut inner = self.lock();
        let _ = self.transition(&mut inner, Input::Stop, "the host is shutting down");
        self.retire_idle(&mut inner, "shutdown");
        for control in inner.busy.values().chain(inner.starting.values().flatten()) {
            control.stop();
        }
        let limit = Instant::now() + self.cfg.stop_time + self.cfg.start_time;
        while !(inner.busy.is_empty() && inner.starting.is_empty() && inner.closing == 0) {
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = self.wait(inner, left);
        }
    }
}
