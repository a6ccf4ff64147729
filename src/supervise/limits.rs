//! The limits around a run: a cgroup where the host allows one and the rlimits that go
//! into the plan, always. Fails closed when the
//! profile requires what this host cannot give.

use crate::cgroup::{self, Cgroup, CgroupError};
use crate::jail::Plan;
use crate::probe::cgroup::Cgroups;
use crate::profile::Profile;

/// Creates the run's cgroup (with a freezer, if `freezer`) and adds the limits backend's
/// rlimits to `plan`. Also returns what the probe found, for [`reap_stale`].
pub(super) fn set_up(
    profile: &Profile,
    plan: &mut Plan,
    freezer: bool,
) -> (Result<Cgroup, CgroupError>, Cgroups) {
    let caps = crate::probe::cgroups();
    crate::timing::mark("cgroup_probe");
    let cgroup = cgroup::prepare_profile(profile, &caps).and_then(|mut p| {
        if freezer {
            p.add_freezer(&caps);
        }
        add_rlimits(plan, p.rlimits.as_slice());
        p.create()
    });
    (cgroup, caps)
}

/// Kills and removes the cgroups of runs whose supervisor was killed. Called once the
/// jail's child runs, so that it overlaps the child's setup instead of delaying it.
pub(super) fn reap_stale(caps: &Cgroups) {
    cgroup::reap_stale(caps);
    crate::timing::mark("cgroup_reap");
}

/// Adds the limits backend's rlimits (e.g. RLIMIT_AS standing in for a memory cgroup)
/// that the plan does not already set; the plan's own values win.
fn add_rlimits(plan: &mut Plan, extra: &[(u32, u64)]) {
    for &(resource, value) in extra {
        if !plan.rlimits.iter().any(|(r, _)| *r == resource) {
            plan.rlimits.push((resource, value));
        }
    }
}
