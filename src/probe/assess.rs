//! A profile against the probed machine: what each mechanism would enforce here, and
//! whether the run would go ahead (every `required` mechanism fully enforced).
//!
//! `doctor --profile` prints this; the jail can call [`assess`] before building anything
//! and refuse with the same reasons.

use serde::Serialize;

use super::{Capabilities, CgroupMode, Check, Controller};
use crate::profile::units::{format_duration, format_size};
use crate::profile::{Action, Level, Profile};

/// How far one thing the profile asks for would be enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Enforce {
    Yes,
    /// Something weaker stands in (memory by RLIMIT_AS instead of a memory cgroup).
    Degraded,
    No,
}

/// One thing the profile asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub what: String,
    pub enforce: Enforce,
    /// The mechanism that enforces it, or why nothing does.
    pub how: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mechanism {
    /// `namespaces`, `landlock`, `seccomp` or `limits`.
    pub name: &'static str,
    pub level: Level,
    pub items: Vec<Item>,
}

impl Mechanism {
    /// The items this machine would not fully enforce.
    pub fn shortfall(&self) -> impl Iterator<Item = &Item> {
        self.items.iter().filter(|i| i.enforce != Enforce::Yes)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Run,
    RunLosing,
    Refused,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub mechanisms: Vec<Mechanism>,
    pub outcome: Outcome,
    /// `best_effort` items that would be dropped or weakened.
    pub lost: Vec<String>,
    /// `required` items this machine cannot enforce.
    pub refused: Vec<String>,
    /// "would run", "would run, losing: ..." or "would be refused: ...".
    pub summary: String,
}

pub fn assess(profile: &Profile, caps: &Capabilities) -> Assessment {
    let mechanisms = vec![
        Mechanism {
            name: "namespaces",
            level: profile.enforcement.namespaces,
            items: namespaces(profile, caps),
        },
        Mechanism {
            name: "landlock",
            // A probe the kernel refused (not ENOSYS/EOPNOTSUPP: Landlock is there, but
            // something forbids asking) makes the jail refuse whatever the level
            // (`landlock::rules::kernel_abi`); say the same here.
            level: if landlock_probe_refused(caps) {
                Level::Required
            } else {
                profile.landlock.compat
            },
            items: landlock(profile, caps),
        },
        Mechanism {
            name: "seccomp",
            level: profile.enforcement.seccomp,
            items: seccomp(profile, caps),
        },
        Mechanism {
            name: "limits",
            level: profile.enforcement.limits,
            items: limits(profile, caps),
        },
    ];
    let (mut lost, mut refused) = (Vec::new(), Vec::new());
    for m in &mechanisms {
        let short: Vec<String> = m.shortfall().map(|i| i.what.clone()).collect();
        if short.is_empty() {
            continue;
        }
        let line = format!("{}: {}", m.name, short.join(", "));
        match m.level {
            Level::Required => refused.push(line),
            Level::BestEffort => lost.push(line),
        }
    }
    let (outcome, summary) = if !refused.is_empty() {
        (
            Outcome::Refused,
            format!("would be refused: {}", refused.join("; ")),
        )
    } else if !lost.is_empty() {
        (
            Outcome::RunLosing,
            format!("would run, losing: {}", lost.join("; ")),
        )
    } else {
        (Outcome::Run, "would run".to_owned())
    };
    Assessment {
        mechanisms,
        outcome,
        lost,
        refused,
        summary,
    }
}

fn item(what: impl Into<String>, enforce: Enforce, how: impl Into<String>) -> Item {
    Item {
        what: what.into(),
        enforce,
        how: how.into(),
    }
}

fn from_check(what: &str, check: &Check, how: &str) -> Item {
    match &check.error {
        None if check.ok => item(what, Enforce::Yes, how),
        error => item(
            what,
            Enforce::No,
            error
                .as_ref()
                .map_or("failed".to_owned(), |f| f.message.clone()),
        ),
    }
}

fn namespaces(profile: &Profile, caps: &Capabilities) -> Vec<Item> {
    let ns = &profile.namespaces;
    let probe = &caps.user_namespaces;
    let mut items = Vec::new();
    if ns.user {
        let check = if probe.works {
            Check::ok()
        } else if !probe.user.ok {
            probe.user.clone()
        } else {
            probe.maps.clone()
        };
        items.push(from_check(
            "user namespace",
            &check,
            "unshare(CLONE_NEWUSER) and uid/gid maps work",
        ));
    }
    let others = [
        (ns.mount, "mount namespace", &probe.mount),
        (ns.pid, "pid namespace", &probe.pid),
        (ns.net, "network namespace", &probe.net),
        (ns.ipc, "ipc namespace", &probe.ipc),
        (ns.uts, "uts namespace", &probe.uts),
        (ns.cgroup, "cgroup namespace", &probe.cgroup),
    ];
    for (wanted, what, check) in others.into_iter().filter(|(w, _, _)| *w) {
        items.push(match (ns.user, wanted) {
            (true, _) => from_check(what, check, "inside the user namespace"),
            (false, _) if caps.privileges.cap_sys_admin => item(
                what,
                Enforce::Yes,
                "CAP_SYS_ADMIN, without a user namespace",
            ),
            (false, _) => item(
                what,
                Enforce::No,
                "needs CAP_SYS_ADMIN when the profile turns the user namespace off",
            ),
        });
    }
    items
}

/// Whether the Landlock probe failed for another reason than Landlock being absent.
fn landlock_probe_refused(caps: &Capabilities) -> bool {
    caps.landlock
        .error
        .as_ref()
        .is_some_and(|f| !matches!(f.errno.as_deref(), Some("ENOSYS" | "EOPNOTSUPP")))
}

fn landlock(profile: &Profile, caps: &Capabilities) -> Vec<Item> {
    let l = &profile.landlock;
    let abi = caps.landlock.abi;
    let need = |what: String, needed: u32| {
        if abi >= needed {
            item(what, Enforce::Yes, format!("ABI {abi} >= {needed}"))
        } else {
            let why = caps
                .landlock
                .error
                .as_ref()
                .map(|f| format!(" ({})", f.errno.as_deref().unwrap_or(&f.message)))
                .unwrap_or_default();
            item(
                what,
                Enforce::No,
                format!("needs ABI {needed}; kernel has {abi}{why}"),
            )
        }
    };
    // The same list landlock::prepare fails closed on.
    let ports = |p: &[u16]| p.iter().map(u16::to_string).collect::<Vec<_>>().join(",");
    let tcp_detail = match (l.tcp_bind.is_empty(), l.tcp_connect.is_empty()) {
        (true, true) => "; no TCP bind or connect allowed".to_owned(),
        _ => format!(
            "; bind [{}], connect [{}]",
            ports(&l.tcp_bind),
            ports(&l.tcp_connect)
        ),
    };
    let mut items = Vec::new();
    if landlock_probe_refused(caps) {
        // The jail asks the same question first and stops there, whatever the profile.
        let how = caps
            .landlock
            .error
            .as_ref()
            .map_or(String::new(), |f| f.message.clone());
        items.push(item("the Landlock ABI probe".to_owned(), Enforce::No, how));
    }
    items.extend(
        crate::landlock::requirements(l)
            .into_iter()
            .map(|(needed, what)| {
                let mut it = need(what, needed);
                if needed == 4 {
                    it.how += &tcp_detail;
                }
                it
            }),
    );
    items
}

fn seccomp(profile: &Profile, caps: &Capabilities) -> Vec<Item> {
    let s = &caps.seccomp;
    let filter = if !s.available {
        let why = s
            .error
            .as_ref()
            .map_or("unavailable", |f| f.message.as_str());
        item("seccomp filter", Enforce::No, why)
    } else if caps.no_new_privs.supported || caps.privileges.cap_sys_admin {
        item(
            "seccomp filter",
            Enforce::Yes,
            "filter mode, after no_new_privs",
        )
    } else {
        item(
            "seccomp filter",
            Enforce::No,
            "no_new_privs is unsupported and CAP_SYS_ADMIN is missing",
        )
    };
    let action = match profile.seccomp.default_action {
        Action::KillProcess => "kill_process",
        Action::Trap => "trap",
        Action::Errno => "errno",
        Action::Log => "log",
    };
    let what = format!("default action {action}");
    let default = if s.actions.iter().any(|a| a == action) {
        item(
            what,
            Enforce::Yes,
            "listed in the kernel's available actions",
        )
    } else {
        item(
            what,
            Enforce::No,
            "not among the kernel's available actions",
        )
    };
    vec![filter, default]
}

fn limits(profile: &Profile, caps: &Capabilities) -> Vec<Item> {
    let l = &profile.limits;
    let cg = &caps.cgroups;
    let has = |c: Controller| cg.writable.contains(&c);
    let via = |c: Controller| {
        let name = match cg.mode {
            CgroupMode::V1Hybrid => c.v1_name(),
            _ => c.name(),
        };
        format!("{} cgroup ({})", name, cg.mode.name())
    };
    let missing = |c: Controller| {
        let name = match cg.mode {
            CgroupMode::V1Hybrid => c.v1_name(),
            _ => c.name(),
        };
        format!("no writable {name} cgroup (mode {})", cg.mode.name())
    };
    let mut items = Vec::new();
    if let Some(m) = l.memory {
        let what = format!("memory {}", format_size(m));
        items.push(if has(Controller::Memory) {
            item(what, Enforce::Yes, via(Controller::Memory))
        } else {
            item(
                what,
                Enforce::Degraded,
                format!(
                    "{}; RLIMIT_AS instead (caps each process's address space, no oom verdict)",
                    missing(Controller::Memory)
                ),
            )
        });
    }
    if let Some(s) = l.swap {
        let what = format!("swap {}", format_size(s));
        items.push(match (has(Controller::Memory), cg.swap_accounting) {
            (true, Some(true)) => item(what, Enforce::Yes, via(Controller::Memory)),
            _ if !cg.host_swap => item(what, Enforce::Yes, "no swap is active on this host"),
            (true, _) => item(what, Enforce::No, "swap accounting is off in the kernel"),
            (false, _) => item(what, Enforce::No, missing(Controller::Memory)),
        });
    }
    let cgroup_only = |items: &mut Vec<Item>, what: String, c: Controller, without: &str| {
        items.push(if has(c) {
            item(what, Enforce::Yes, via(c))
        } else {
            item(what, Enforce::No, format!("{}; {without}", missing(c)))
        });
    };
    if let Some(cpu) = l.cpu {
        let what = format!("cpu {cpu} core{}", if cpu == 1.0 { "" } else { "s" });
        cgroup_only(
            &mut items,
            what,
            Controller::Cpu,
            "no rlimit can share a core",
        );
    }
    if !l.io.is_empty() {
        let what = "io bandwidth/iops".to_owned();
        cgroup_only(&mut items, what, Controller::Io, "no rlimit throttles io");
    }
    if let Some(p) = l.pids {
        let what = format!("pids {p}");
        let without = "RLIMIT_NPROC counts all of the user's processes, not the jail's";
        cgroup_only(&mut items, what, Controller::Pids, without);
    }
    let always = [
        (
            l.open_files.map(|n| format!("open files {n}")),
            "RLIMIT_NOFILE",
        ),
        (
            l.file_size.map(|n| format!("file size {}", format_size(n))),
            "RLIMIT_FSIZE",
        ),
        (
            l.cpu_time
                .map(|d| format!("cpu time {}", format_duration(d))),
            "RLIMIT_CPU",
        ),
        (
            l.wall_time
                .map(|d| format!("wall time {}", format_duration(d))),
            "supervisor deadline",
        ),
        (
            l.call_time
                .map(|d| format!("call time {}", format_duration(d))),
            "supervisor deadline",
        ),
        (
            l.idle_time
                .map(|d| format!("idle time {}", format_duration(d))),
            "supervisor deadline",
        ),
        (
            Some(format!("max message {}", format_size(l.max_message))),
            "protocol framing",
        ),
    ];
    for (what, how) in always {
        if let Some(what) = what {
            items.push(item(what, Enforce::Yes, how));
        }
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{Failure, Landlock, landlock};

    fn shipped(name: &str) -> Profile {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("profiles")
            .join(name);
        crate::profile::load(&path).unwrap()
    }

    /// This machine as probed, then changed to look like a weaker one.
    fn machine(change: impl FnOnce(&mut Capabilities)) -> Capabilities {
        let mut caps = Capabilities::probe();
        caps.user_namespaces.works = true;
        for c in [
            &mut caps.user_namespaces.user,
            &mut caps.user_namespaces.maps,
        ] {
            *c = Check::ok();
        }
        caps.landlock = landlock();
        caps.landlock.abi = 7;
        caps.seccomp.available = true;
        caps.seccomp.actions = ["kill_process", "trap", "errno", "log", "allow"]
            .map(String::from)
            .to_vec();
        caps.cgroups.writable = Controller::ALL.to_vec();
        caps.cgroups.swap_accounting = Some(true);
        change(&mut caps);
        caps
    }

    #[test]
    fn a_capable_machine_runs_every_shipped_profile() {
        let caps = machine(|_| {});
        for name in ["default.yaml", "strict.yaml", "ci-tests.yaml", "audit.yaml"] {
            let a = assess(&shipped(name), &caps);
            assert_eq!(a.outcome, Outcome::Run, "{name}: {}", a.summary);
            assert_eq!(a.summary, "would run");
        }
    }

    #[test]
    fn an_old_landlock_refuses_a_required_scope() {
        let caps = machine(|c| {
            c.landlock = Landlock {
                abi: 2,
                features: vec!["fs", "fs_refer"],
                error: None,
            }
        });
        let a = assess(&shipped("default.yaml"), &caps);
        assert_eq!(a.outcome, Outcome::Refused);
        assert_eq!(
            a.refused,
            [
                "landlock: truncation control, TCP port rules, device ioctl control, \
              scope abstract_unix_socket, scope signal"
            ]
        );
        assert!(
            a.summary
                .starts_with("would be refused: landlock: truncation control")
        );
    }

    #[test]
    fn a_refused_landlock_probe_refuses_even_best_effort_like_the_jail() {
        let failed = |errno: &str| Landlock {
            abi: 0,
            features: vec![],
            error: Some(Failure {
                call: "landlock_create_ruleset".to_owned(),
                errno: Some(errno.to_owned()),
                message: format!("landlock_create_ruleset: {errno}"),
            }),
        };
        let lenient = shipped("audit.yaml");
        let mut best_effort = lenient.clone();
        best_effort.landlock.compat = Level::BestEffort;
        // Absent Landlock: best_effort runs without it.
        let caps = machine(|c| c.landlock = failed("ENOSYS"));
        assert_ne!(assess(&best_effort, &caps).outcome, Outcome::Refused);
        // A refused probe: the jail refuses (landlock::rules::kernel_abi), so does doctor.
        let caps = machine(|c| c.landlock = failed("EPERM"));
        let a = assess(&best_effort, &caps);
        assert_eq!(a.outcome, Outcome::Refused, "{}", a.summary);
        assert!(
            a.summary
                .starts_with("would be refused: landlock: the Landlock ABI probe"),
            "{}",
            a.summary
        );
        let landlock = a.mechanisms.iter().find(|m| m.name == "landlock").unwrap();
        assert!(
            landlock.items[0].how.contains("EPERM"),
            "{:?}",
            landlock.items
        );
    }

    #[test]
    fn no_cgroups_loses_best_effort_limits_and_refuses_required_ones() {
        let caps = machine(|c| {
            c.cgroups.writable.clear();
            c.cgroups.host_swap = true;
        });
        let a = assess(&shipped("default.yaml"), &caps);
        assert_eq!(a.outcome, Outcome::RunLosing);
        assert_eq!(
            a.summary,
            "would run, losing: limits: memory 512M, swap 0, cpu 1 core, pids 64"
        );
        let limits = a.mechanisms.iter().find(|m| m.name == "limits").unwrap();
        assert_eq!(limits.items[0].enforce, Enforce::Degraded);
        assert!(limits.items[0].how.contains("RLIMIT_AS"));

        let strict = assess(&shipped("strict.yaml"), &caps);
        assert_eq!(strict.outcome, Outcome::Refused);
        assert!(strict.lost.is_empty());
    }

    #[test]
    fn missing_user_namespaces_and_seccomp_actions_are_named() {
        let caps = machine(|c| {
            c.user_namespaces.works = false;
            c.user_namespaces.user = Check::failed(Failure {
                call: "unshare(CLONE_NEWUSER)".into(),
                errno: Some("EPERM".into()),
                message: "unshare(CLONE_NEWUSER) failed: EPERM".into(),
            });
            c.seccomp.actions.retain(|a| a != "log");
        });
        let a = assess(&shipped("audit.yaml"), &caps);
        assert_eq!(a.outcome, Outcome::Refused);
        assert!(
            a.refused[0].starts_with("namespaces: user namespace"),
            "{a:?}"
        );
        assert_eq!(a.lost, ["seccomp: default action log"]);
        let ns = &a.mechanisms[0].items[0];
        assert_eq!(ns.how, "unshare(CLONE_NEWUSER) failed: EPERM");
    }
}
