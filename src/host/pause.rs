//! Pausing and resuming a plugin: every jail of it frozen through `plugjail serve`'s
//! control socket (the cgroup freezer, or stopped processes where there is none; see
//! docs/limits.md). Calls that arrive meanwhile wait or fail (`when_paused`); calls already
//! running are frozen with their jail, and their deadlines keep running.

use std::sync::Arc;

use super::HostError;
use super::lifecycle::Input;
use super::plugin::{Inner, Plugin};
use crate::session::PauseHandle;

impl Plugin {
    /// Freezes every jail of the plugin (idle and busy); no new jail starts until resume.
    /// All or nothing: if one jail cannot be paused, those already paused are resumed.
    pub fn pause(self: &Arc<Self>) -> Result<(), HostError> {
        let mut inner = self.lock();
        // Validated before anything is frozen.
        inner
            .state
            .next(Input::Pause)
            .map_err(|e| self.invalid_transition(e))?;
        let handles = pause_handles(&inner);
        for (n, handle) in handles.iter().enumerate() {
            if let Err(e) = handle.pause() {
                for done in &handles[..n] {
                    let _ = done.resume();
                }
                return Err(HostError::Pause {
                    id: self.id.clone(),
                    message: e.to_string(),
                });
            }
        }
        self.transition(&mut inner, Input::Pause, "paused by the host")
            .map_err(|e| self.invalid_transition(e))
    }

    /// Thaws every jail; a jail that cannot be resumed is ended (never left frozen) and
    /// replaced.
    pub fn resume(self: &Arc<Self>) -> Result<(), HostError> {
        let mut inner = self.lock();
        self.transition(&mut inner, Input::Resume, "resumed by the host")
            .map_err(|e| self.invalid_transition(e))?;
        let mut stuck = Vec::new();
        for (n, member) in inner.idle.iter().enumerate() {
            if member.session.resume().is_err() {
                stuck.push(n);
            }
        }
        for n in stuck.into_iter().rev() {
            let member = inner.idle.remove(n);
            self.retire(&mut inner, member, "resume failed");
        }
        for control in inner.busy.values() {
            if control.pause.as_ref().is_some_and(|h| h.resume().is_err()) {
                control.stop();
            }
        }
        self.refill(&mut inner);
        Ok(())
    }
}

/// How to pause each jail of the plugin, idle or busy.
fn pause_handles(inner: &Inner) -> Vec<PauseHandle> {
    let idle = inner
        .idle
        .iter()
        .filter_map(|m| m.session.pause_handle().ok());
    let busy = inner.busy.values().filter_map(|c| c.pause.clone());
    idle.chain(busy).collect()
}
