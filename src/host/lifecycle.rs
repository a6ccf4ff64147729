//! The lifecycle of one plugin in a host: its states, and the only transitions between
//! them. Pure: no jail, no clock; the host feeds it what happened and acts on the answer.
//!
//! ```text
//!             ready               healthy
//!   Loaded ──────────▶ Initialized ──────────▶ Running ◀──────┐
//!     ▲  │                 │                    │   ▲         │ resume
//!     │  │                 │              pause │   │         │
//!     │  └──── fault ──────┴────────────────────┼───┼──▶ Paused
//!     │        (budget spent: Failed;           │   │
//!     │         violation: Quarantined)         ▼   │
//!     │                                     (faults: see below)
//!     └──────── release ── Failed | Quarantined
//!
//!   every state ── stop ──▶ Terminated (final)
//! ```
//!
//! A transient fault (crash, oom, timeout, failed start) within the restart budget keeps
//! the state (the host restarts the jail after a backoff); one beyond the budget moves to
//! `Failed`. A violation (seccomp_violation, protocol_violation, plugin_rejected) moves to
//! `Quarantined`. Both stay until the host releases the plugin, which starts it afresh.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Configured; no jail has said HELLO yet.
    Loaded,
    /// A jail loaded the plugin and ran its init; the health call is pending.
    Initialized,
    /// Taking calls.
    Running,
    /// Every jail frozen; calls wait or fail (`when_paused`).
    Paused,
    /// Transient faults beyond the restart budget; no jail runs until released.
    Failed,
    /// A violation; no jail runs until released.
    Quarantined,
    /// Stopped for good (host shutdown).
    Terminated,
}

/// What happened to the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A jail said HELLO (its init ran).
    Ready,
    /// The health call passed (or there is none).
    Healthy,
    Pause,
    Resume,
    /// A jail ended by a transient fault; `within_budget` says whether the restart budget
    /// allows another start.
    Transient {
        within_budget: bool,
    },
    /// A jail ended by a violation.
    Violation,
    /// The host releases a failed or quarantined plugin.
    Release,
    Stop,
}

/// A transition the lifecycle does not allow (the host answers the request with it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {input:?} a plugin that is {}", state.name())]
pub struct InvalidTransition {
    pub state: State,
    pub input: Input,
}

/// What a call finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// A jail may take it.
    Serve,
    /// The plugin is starting (or restarting, or paused with `when_paused: wait`): wait.
    Wait,
    /// The plugin cannot take calls in this state.
    Refuse,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Loaded => "loaded",
            State::Initialized => "initialized",
            State::Running => "running",
            State::Paused => "paused",
            State::Failed => "failed",
            State::Quarantined => "quarantined",
            State::Terminated => "terminated",
        }
    }

    /// The state after `input`, or why it cannot happen.
    pub fn next(self, input: Input) -> Result<State, InvalidTransition> {
        use Input as I;
        use State as S;
        let next = match (self, input) {
            (S::Terminated, _) => None,
            (_, I::Stop) => Some(S::Terminated),
            (S::Failed | S::Quarantined, I::Release) => Some(S::Loaded),
            (S::Failed | S::Quarantined, _) => None,
            (_, I::Violation) => Some(S::Quarantined),
            (
                _,
                I::Transient {
                    within_budget: false,
                },
            ) => Some(S::Failed),
            (
                s,
                I::Transient {
                    within_budget: true,
                },
            ) => Some(s),
            (S::Loaded, I::Ready) => Some(S::Initialized),
            (S::Initialized, I::Healthy) => Some(S::Running),
            // Further jails of a serving plugin say HELLO and pass their health call too.
            (S::Running | S::Paused, I::Ready | I::Healthy) => Some(self),
            (S::Running, I::Pause) => Some(S::Paused),
            (S::Paused, I::Resume) => Some(S::Running),
            _ => None,
        };
        next.ok_or(InvalidTransition { state: self, input })
    }

    /// Whether a call may go to a jail now.
    pub fn admission(self, wait_when_paused: bool) -> Admission {
        match self {
            State::Running => Admission::Serve,
            State::Loaded | State::Initialized => Admission::Wait,
            State::Paused if wait_when_paused => Admission::Wait,
            State::Paused | State::Failed | State::Quarantined | State::Terminated => {
                Admission::Refuse
            }
        }
    }

    /// Whether the host should keep jails started in this state.
    pub fn keeps_jails(self) -> bool {
        matches!(
            self,
            State::Loaded | State::Initialized | State::Running | State::Paused
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATES: [State; 7] = [
        State::Loaded,
        State::Initialized,
        State::Running,
        State::Paused,
        State::Failed,
        State::Quarantined,
        State::Terminated,
    ];

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            Just(Input::Ready),
            Just(Input::Healthy),
            Just(Input::Pause),
            Just(Input::Resume),
            any::<bool>().prop_map(|within_budget| Input::Transient { within_budget }),
            Just(Input::Violation),
            Just(Input::Release),
            Just(Input::Stop),
        ]
    }

    #[test]
    fn terminated_is_final_and_stop_always_reaches_it() {
        for s in STATES {
            assert_eq!(
                s.next(Input::Stop).ok(),
                (s != State::Terminated).then_some(State::Terminated)
            );
        }
    }

    #[test]
    fn only_release_leaves_failed_or_quarantined() {
        for s in [State::Failed, State::Quarantined] {
            assert_eq!(s.next(Input::Release), Ok(State::Loaded));
            for i in [
                Input::Ready,
                Input::Healthy,
                Input::Pause,
                Input::Resume,
                Input::Violation,
            ] {
                assert!(s.next(i).is_err(), "{s:?} {i:?}");
            }
        }
    }

    proptest! {
        /// Any sequence: a refused input leaves the state as it was, calls are served only
        /// when Running, and a violation is never followed by serving without a release.
        #[test]
        fn random_sequences_stay_valid(inputs in proptest::collection::vec(input(), 0..64)) {
            let mut s = State::Loaded;
            let mut quarantined = false;
            for i in inputs {
                match s.next(i) {
                    Ok(n) => {
                        if i == Input::Violation { quarantined = true; }
                        if i == Input::Release { quarantined = false; }
                        s = n;
                    }
                    Err(e) => prop_assert_eq!(e.state, s),
                }
                if quarantined {
                    prop_assert!(matches!(s, State::Quarantined | State::Terminated));
                }
                prop_assert_eq!(s.admission(true) == Admission::Serve, s == State::Running);
            }
        }
    }
}
