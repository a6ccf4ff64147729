//! The restart policy: which endings are faults, and when a faulty plugin's next jail may
//! start (exponential backoff within a budget of faults per window).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::config::RestartConfig;

/// How a jail's ending counts against its plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Not the plugin's fault: ended by the host (recycle, cancel, shutdown) or cleanly.
    None,
    /// Crash, oom, timeout, pids limit, failed start: restart after a backoff.
    Transient,
    /// seccomp_violation, protocol_violation, plugin_rejected: quarantine.
    Violation,
}

/// Classifies a verdict's outcome (docs/verdict.md).
pub fn classify(outcome: &str) -> Fault {
    match outcome {
        "ok" => Fault::None,
        "seccomp_violation" | "protocol_violation" | "plugin_rejected" => Fault::Violation,
        // signaled, oom, timeout, pids_limit, plugin_failed, exited (the stub went away),
        // setup_failed, not_found, cannot_execute and anything newer.
        _ => Fault::Transient,
    }
}

/// The transient faults of one plugin in the current window.
#[derive(Debug)]
pub struct Budget {
    cfg: RestartConfig,
    faults: VecDeque<Instant>,
    /// Faults since the last jail that served well: the backoff's exponent.
    streak: u32,
}

impl Budget {
    pub fn new(cfg: RestartConfig) -> Budget {
        Budget {
            cfg,
            faults: VecDeque::new(),
            streak: 0,
        }
    }

    /// Records a transient fault at `now`: the delay before the next start, or None when
    /// the budget is spent (`budget` faults already in the window).
    pub fn fault(&mut self, now: Instant) -> Option<Duration> {
        while self
            .faults
            .front()
            .is_some_and(|&t| now.saturating_duration_since(t) >= self.cfg.window)
        {
            self.faults.pop_front();
        }
        if self.faults.len() >= self.cfg.budget as usize {
            return None;
        }
        self.faults.push_back(now);
        let delay = self
            .cfg
            .backoff
            .saturating_mul(1u32 << self.streak.min(20))
            .min(self.cfg.backoff_max);
        self.streak = self.streak.saturating_add(1);
        Some(delay)
    }

    /// Faults in the window so far (the attempt number of the next restart).
    pub fn attempts(&self) -> u32 {
        u32::try_from(self.faults.len()).unwrap_or(u32::MAX)
    }

    /// A jail served a call: the next fault starts the backoff afresh.
    pub fn served(&mut self) {
        self.streak = 0;
    }

    /// The host released the plugin: a clean slate.
    pub fn reset(&mut self) {
        self.faults.clear();
        self.streak = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(budget: u32) -> RestartConfig {
        RestartConfig {
            backoff: Duration::from_millis(100),
            backoff_max: Duration::from_millis(500),
            budget,
            window: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_then_the_budget_ends_it() {
        let mut b = Budget::new(cfg(5));
        let t = Instant::now();
        let delays: Vec<_> = (0..6).map(|_| b.fault(t).map(|d| d.as_millis())).collect();
        assert_eq!(
            delays,
            [Some(100), Some(200), Some(400), Some(500), Some(500), None]
        );
    }

    #[test]
    fn faults_leave_the_window_and_serving_resets_the_backoff() {
        let mut b = Budget::new(cfg(2));
        let t = Instant::now();
        assert!(b.fault(t).is_some());
        assert!(b.fault(t).is_some());
        assert!(b.fault(t).is_none());
        let later = t + Duration::from_secs(11);
        b.served();
        assert_eq!(b.fault(later), Some(Duration::from_millis(100)));
    }

    #[test]
    fn violations_are_told_from_transient_faults() {
        assert_eq!(classify("ok"), Fault::None);
        for o in ["seccomp_violation", "protocol_violation", "plugin_rejected"] {
            assert_eq!(classify(o), Fault::Violation);
        }
        for o in ["signaled", "oom", "timeout", "pids_limit", "plugin_failed"] {
            assert_eq!(classify(o), Fault::Transient);
        }
    }
}
