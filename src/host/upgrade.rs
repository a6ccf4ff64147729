//! Replacing a plugin's build while it serves.
//!
//! An upgrade starts one jail of the new build beside the serving ones and sends it the
//! health call; only when that passes does the new build take over (idle old jails are
//! retired at once, busy ones when their call ends). If it fails — rejected, init failed,
//! crashed or refused during the health call — the old build keeps serving and the
//! `rolled_back` event says why.

use std::path::PathBuf;
use std::sync::Arc;

use super::HostError;
use super::events::EventKind;
use super::jails::jail_ended;
use super::lifecycle::State;
use super::plugin::{Plugin, Source};

impl Plugin {
    pub fn upgrade(
        self: &Arc<Self>,
        plugin: PathBuf,
        profile: Option<PathBuf>,
    ) -> Result<(), HostError> {
        // One upgrade at a time per plugin: the generation counts builds in order.
        let _one = self.upgrading.lock().unwrap_or_else(|p| p.into_inner());
        let (candidate, jail) = {
            let mut inner = self.lock();
            if inner.state == State::Terminated {
                return Err(HostError::Invalid {
                    id: self.id.clone(),
                    message: "the host is shutting down".to_owned(),
                });
            }
            let profile = profile.unwrap_or_else(|| inner.source.profile.clone());
            let candidate = Source::new(&self.cfg, plugin, profile, inner.source.generation + 1)?;
            let jail = inner.next_jail;
            inner.next_jail += 1;
            inner.starting.insert(jail, None);
            (candidate, jail)
        };
        let launched = self.launch(&candidate, jail, |control| {
            if let Some(slot) = self.lock().starting.get_mut(&jail) {
                *slot = Some(control);
            }
        });
        let mut inner = self.lock();
        inner.starting.remove(&jail);
        self.wake(&inner);
        let plugin_path = candidate.plugin.display().to_string();
        match launched {
            Ok((member, _)) if inner.state == State::Terminated => {
                self.retire(&mut inner, member, "shutdown");
                Err(HostError::Invalid {
                    id: self.id.clone(),
                    message: "the host is shutting down".to_owned(),
                })
            }
            Ok((member, version)) => {
                inner.source = candidate;
                self.retire_idle(&mut inner, "upgrade");
                self.emit(EventKind::Activated {
                    plugin_path,
                    version,
                });
                if inner.state == State::Paused {
                    // Takes over when the plugin resumes.
                    self.retire(&mut inner, member, "not needed");
                } else {
                    inner.idle.push(member);
                }
                self.refill(&mut inner);
                Ok(())
            }
            Err(failed) => {
                let v = &failed.verdict;
                self.emit(jail_ended(jail, Some("upgrade"), v));
                let reason = match &v.message {
                    Some(m) => format!("{}: {}", v.outcome, crate::text::escape(m.as_bytes())),
                    None => v.outcome.clone(),
                };
                self.emit(EventKind::RolledBack {
                    plugin_path,
                    reason: reason.clone(),
                });
                Err(HostError::RolledBack {
                    id: self.id.clone(),
                    reason,
                })
            }
        }
    }
}
