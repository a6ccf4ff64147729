//! What a run actually enforced, for the verdict's `enforced` section: namespaces,
//! Landlock, the seccomp programs and how refused syscalls were named, the id maps.

use crate::jail::Plan;
use crate::jail::init::Naming;
use crate::profile::Action;
use crate::seccomp::SeccompProgram;
use crate::verdict::{Enforced, SeccompReport};

/// What a compiled seccomp program enforces, for the verdict.
pub(crate) fn seccomp_report(
    s: &SeccompProgram,
    default_action: Action,
    naming: &'static str,
) -> SeccompReport {
    let action = match default_action {
        Action::KillProcess => "kill_process",
        Action::Trap => "trap",
        Action::Errno => "errno",
        Action::Log => "log",
    };
    SeccompReport {
        phase: s.phase().name(),
        default_action: action,
        instructions: s.instructions(),
        allowed_syscalls: s.allowed_syscalls(),
        absent: s.absent().to_vec(),
        naming,
    }
}

/// The plan's part of `enforced`; the caller adds the cgroup report.
pub(super) fn enforced(plan: &Plan, default_action: Action, naming: Naming) -> Enforced {
    let naming = crate::verdict::naming_name(naming);
    Enforced {
        namespaces: plan.namespaces.unshared.clone(),
        namespaces_dropped: plan.namespaces.dropped.clone(),
        landlock: plan.landlock.as_ref().map(|l| l.report().clone()),
        seccomp: plan
            .seccomp
            .as_ref()
            .map(|s| seccomp_report(s, default_action, naming)),
        seccomp_serve: None,
        seccomp_serve_skipped: None,
        rootless: plan.rootless,
        uid_map: plan.ids.uid_map.clone(),
        gid_map: plan.ids.gid_map.clone(),
        missing_paths: plan.missing.clone(),
        cgroup: None,
    }
}
