//! A call through the host: wait for a jail of the plugin (bounded queue, deadline,
//! cancel), run the call on it, and give the jail back, or act on its ending.

use std::sync::Arc;
use std::time::Instant;

use super::config::WhenPaused;
use super::events::EventKind;
use super::jails::jail_ended;
use super::lifecycle::{Admission, State};
use super::plugin::{Control, Member, Plugin};
use super::{CancelToken, HostCallError};
use crate::session::CallError;

impl Plugin {
    /// Runs one call; every call gets exactly one answer. A call that never reached its
    /// jail (it had ended while idle) goes to another one, within the same deadline.
    pub fn call(
        self: &Arc<Self>,
        number: u64,
        method: &str,
        input: &[u8],
        cancel: Option<&CancelToken>,
    ) -> Result<Vec<u8>, HostCallError> {
        let call_time = self.lock().source.call_time;
        let deadline = Instant::now() + call_time;
        loop {
            // While the call waits for a jail, a cancel wakes it.
            if let Some(token) = cancel {
                let me = Arc::clone(self);
                // Under the lock: a caller between its check of the token and its wait
                // would otherwise miss this wake-up.
                token.set_stop(Some(Arc::new(move || me.wake(&me.lock()))));
            }
            let mut member = match self.take(deadline, call_time, cancel) {
                Ok(member) => member,
                Err(e) => {
                    if let Some(token) = cancel {
                        token.set_stop(None);
                    }
                    return Err(e);
                }
            };
            // While it runs, a cancel ends the jail. Fired between take() and here: at once.
            if let Some(token) = cancel
                && let Some(control) = Control::of(&member.session)
            {
                token.set_stop(Some(Arc::new(move || control.stop())));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let result = if left.is_zero() {
                Err(CallError::Timeout { after: call_time })
            } else {
                member
                    .session
                    .call_with_timeout(method, input, left)
                    .map_err(|e| match e {
                        // The host's deadline covers the wait for a jail too.
                        CallError::Timeout { .. } => CallError::Timeout { after: call_time },
                        e => e,
                    })
            };
            // No stop may reach the jail after this: its session is closed next.
            let cancelled = cancel.is_some_and(|token| {
                token.set_stop(None);
                token.is_cancelled()
            });
            if matches!(result, Err(CallError::NotDelivered)) && !cancelled {
                self.bury(number, member, false);
                continue;
            }
            return self.finish(number, member, result, cancelled);
        }
    }

    /// Waits for an idle jail (queued, so counted against `pool.queue`), until the deadline.
    fn take(
        self: &Arc<Self>,
        deadline: Instant,
        call_time: std::time::Duration,
        cancel: Option<&CancelToken>,
    ) -> Result<Member, HostCallError> {
        let mut inner = self.lock();
        let mut queued = false;
        let wait_when_paused = self.cfg.when_paused == WhenPaused::Wait;
        let outcome = loop {
            if cancel.is_some_and(CancelToken::is_cancelled) {
                break Err(HostCallError::Cancelled);
            }
            match inner.state.admission(wait_when_paused) {
                Admission::Refuse if inner.state == State::Terminated => {
                    break Err(HostCallError::ShuttingDown);
                }
                Admission::Refuse => {
                    break Err(HostCallError::NotServing {
                        id: self.id.clone(),
                        state: inner.state,
                    });
                }
                Admission::Serve => {
                    if let Some(member) = self.pop_fresh(&mut inner) {
                        break Ok(member);
                    }
                }
                Admission::Wait => {}
            }
            if !queued {
                if inner.queued >= self.cfg.pool.queue {
                    break Err(HostCallError::QueueFull {
                        id: self.id.clone(),
                        queued: inner.queued,
                    });
                }
                inner.queued += 1;
                queued = true;
                self.refill(&mut inner);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Err(HostCallError::Timeout { after: call_time });
            }
            inner = self.wait(inner, left);
        };
        if queued {
            inner.queued -= 1;
        }
        if let Ok(member) = &outcome
            && let Some(control) = Control::of(&member.session)
        {
            inner.busy.insert(member.id, control);
        }
        // Keep `warm` jails ready beside the busy ones.
        self.refill(&mut inner);
        outcome
    }

    /// The most recently used idle jail that is not worn out (those are retired).
    fn pop_fresh(self: &Arc<Self>, inner: &mut super::plugin::Inner) -> Option<Member> {
        while let Some(member) = inner.idle.pop() {
            if self.worn_out(&member) {
                self.retire(inner, member, "recycle");
            } else {
                return Some(member);
            }
        }
        None
    }

    /// Gives the jail back after a call, or closes it and acts on how it ended.
    fn finish(
        self: &Arc<Self>,
        number: u64,
        member: Member,
        result: Result<Vec<u8>, CallError>,
        cancelled: bool,
    ) -> Result<Vec<u8>, HostCallError> {
        let error = match result {
            Ok(out) => {
                self.give_back(member, Answer::Result);
                return Ok(out);
            }
            Err(CallError::Failed {
                kind,
                status,
                message,
            }) => {
                self.give_back(member, Answer::Error);
                return Err(HostCallError::Failed {
                    kind,
                    status,
                    message,
                });
            }
            Err(CallError::InputTooLarge { len, cap }) => {
                self.give_back(member, Answer::NotSent);
                return Err(HostCallError::InputTooLarge { len, cap });
            }
            Err(e) => e,
        };
        self.lock().calls += 1;
        let outcome = self.bury(number, member, cancelled);
        Err(match error {
            _ if cancelled => HostCallError::Cancelled,
            _ if outcome.is_none() => HostCallError::ShuttingDown,
            CallError::Timeout { after } => HostCallError::Timeout { after },
            _ => HostCallError::JailEnded {
                outcome: outcome.unwrap_or_default(),
            },
        })
    }

    /// Closes a jail that ended (or was ended) during a call, reports its verdict and
    /// acts on it; returns its outcome, or None when the host is shutting down.
    fn bury(self: &Arc<Self>, number: u64, member: Member, cancelled: bool) -> Option<String> {
        let jail = member.id;
        self.lock().busy.remove(&jail);
        let verdict = member.session.close_within(self.cfg.stop_time);
        let mut inner = self.lock();
        let outcome = if cancelled {
            self.emit(EventKind::Cancelled { call: number });
            self.emit(jail_ended(jail, Some("cancel"), &verdict));
            Some(verdict.outcome)
        } else if inner.state == State::Terminated {
            self.emit(jail_ended(jail, Some("shutdown"), &verdict));
            None
        } else {
            self.emit(jail_ended(jail, None, &verdict));
            self.fault(&mut inner, &verdict.outcome);
            Some(verdict.outcome)
        };
        self.refill(&mut inner);
        self.wake(&inner);
        outcome
    }

    /// Returns a jail that answered to the pool, unless it is due for recycling, of an
    /// older generation, or the plugin no longer keeps jails.
    fn give_back(self: &Arc<Self>, mut member: Member, answer: Answer) {
        let mut inner = self.lock();
        inner.busy.remove(&member.id);
        if answer != Answer::NotSent {
            member.calls += 1;
            inner.calls += 1;
        }
        if answer == Answer::Result {
            inner.budget.served();
        }
        if member.generation != inner.source.generation {
            self.retire(&mut inner, member, "upgrade");
        } else if !inner.state.keeps_jails() {
            let reason = if inner.state == State::Terminated {
                "shutdown"
            } else {
                "quarantine"
            };
            self.retire(&mut inner, member, reason);
        } else if self.worn_out(&member) {
            self.retire(&mut inner, member, "recycle");
            self.refill(&mut inner);
        } else {
            inner.idle.push(member);
        }
        self.wake(&inner);
    }
}

/// What a jail that goes back to the pool did with its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// RESULT: it served well (the restart backoff starts afresh).
    Result,
    /// The plugin's ERROR: a call all the same.
    Error,
    /// Refused before sending (too large): no call.
    NotSent,
}
