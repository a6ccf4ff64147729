//! Which namespaces the jail gets: the profile's choice, checked against what this kernel
//! offers.
//!
//! A kernel built without a namespace type has no `/proc/self/ns/<name>` entry for it. With
//! `enforcement.namespaces: required` a missing one refuses the run; with `best_effort`
//! it is left out and the verdict lists it. Anything else that stops `clone` (user
//! namespaces disabled by sysctl, limits reached) fails the run at the `clone` step.

use std::path::Path;

use serde::Serialize;

use crate::profile::{Level, Namespaces};

/// (clone flag, name in verdicts, name under /proc/self/ns).
const ALL: [(libc::c_int, &str, &str); 7] = [
    (libc::CLONE_NEWUSER, "user", "user"),
    (libc::CLONE_NEWNS, "mount", "mnt"),
    (libc::CLONE_NEWPID, "pid", "pid"),
    (libc::CLONE_NEWNET, "net", "net"),
    (libc::CLONE_NEWIPC, "ipc", "ipc"),
    (libc::CLONE_NEWUTS, "uts", "uts"),
    (libc::CLONE_NEWCGROUP, "cgroup", "cgroup"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NamespacePlan {
    #[serde(skip)]
    pub flags: u64,
    /// Namespaces the jail gets.
    pub unshared: Vec<&'static str>,
    /// Namespaces the profile asked for that this kernel lacks (best_effort only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<&'static str>,
}

/// A `CLONE_NEW*` flag (a C int) as a bit of the u64 `clone3` takes: the same bits, not
/// sign-extended.
fn flag_bits(flag: libc::c_int) -> u64 {
    u64::from(flag.cast_unsigned())
}

impl NamespacePlan {
    pub fn has(&self, flag: libc::c_int) -> bool {
        self.flags & flag_bits(flag) != 0
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "the profile requires a {name} namespace but this kernel has none \
     (/proc/self/ns/{proc_name} is missing); set enforcement.namespaces: best_effort to run without it"
)]
pub struct NamespaceError {
    pub name: &'static str,
    pub proc_name: &'static str,
}

pub fn plan(wanted: &Namespaces, level: Level) -> Result<NamespacePlan, NamespaceError> {
    plan_with(wanted, level, |proc_name| {
        Path::new("/proc/self/ns").join(proc_name).exists()
    })
}

fn plan_with(
    wanted: &Namespaces,
    level: Level,
    available: impl Fn(&str) -> bool,
) -> Result<NamespacePlan, NamespaceError> {
    let on = [
        wanted.user,
        wanted.mount,
        wanted.pid,
        wanted.net,
        wanted.ipc,
        wanted.uts,
        wanted.cgroup,
    ];
    let mut out = NamespacePlan {
        flags: 0,
        unshared: Vec::new(),
        dropped: Vec::new(),
    };
    for ((flag, name, proc_name), on) in ALL.into_iter().zip(on) {
        if !on {
            continue;
        }
        if available(proc_name) {
            out.flags |= flag_bits(flag);
            out.unshared.push(name);
        } else if level == Level::Required {
            return Err(NamespaceError { name, proc_name });
        } else {
            out.dropped.push(name);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_ON: Namespaces = Namespaces {
        user: true,
        mount: true,
        pid: true,
        net: true,
        ipc: true,
        uts: true,
        cgroup: true,
    };

    #[test]
    fn all_namespaces_when_available() {
        let p = plan_with(&ALL_ON, Level::Required, |_| true).unwrap();
        assert_eq!(
            p.unshared,
            ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"]
        );
        assert!(p.has(libc::CLONE_NEWCGROUP));
    }

    #[test]
    fn missing_namespace_refuses_or_is_recorded() {
        let err = plan_with(&ALL_ON, Level::Required, |n| n != "cgroup").unwrap_err();
        assert!(
            err.to_string().contains("requires a cgroup namespace"),
            "{err}"
        );
        let p = plan_with(&ALL_ON, Level::BestEffort, |n| n != "cgroup").unwrap();
        assert_eq!(p.dropped, ["cgroup"]);
        assert!(!p.has(libc::CLONE_NEWCGROUP));
    }

    #[test]
    fn namespaces_turned_off_are_not_unshared() {
        let wanted = Namespaces {
            net: false,
            ..ALL_ON
        };
        let p = plan_with(&wanted, Level::Required, |_| true).unwrap();
        assert!(!p.has(libc::CLONE_NEWNET));
        assert!(p.dropped.is_empty());
    }
}
