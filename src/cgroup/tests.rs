//! Plans computed against fake cgroup trees in a temp dir: which steps, in which order,
//! with which values, and what is refused or dropped. No cgroup is touched here
//! (tests/cgroup.rs does the real thing).

use std::path::PathBuf;

use super::*;
use crate::probe::cgroup::{OwnCgroup, V1Hierarchy, V2Cgroup, V2Hierarchy};
use crate::profile::IoLimits;

const MIB: u64 = 1 << 20;

struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let top =
            std::env::temp_dir().join(format!("plugjail-cg-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&top).unwrap();
        Tree(top)
    }

    /// A v2-looking cgroup directory with the files delegation is judged by.
    fn v2_cgroup(&self, rel: &str) -> PathBuf {
        let dir = self.0.join(rel.trim_start_matches('/'));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cgroup.controllers"), "cpu io memory pids\n").unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), "memory\n").unwrap();
        std::fs::write(dir.join("cgroup.procs"), "").unwrap();
        dir
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn limits() -> Limits {
    Limits {
        memory: Some(64 * MIB),
        cpu: Some(0.5),
        pids: Some(16),
        max_message: MIB,
        ..Limits::default()
    }
}

fn v2_caps(tree: &Tree, own_path: &str) -> Cgroups {
    let dir = tree.v2_cgroup(own_path);
    let own = V2Cgroup {
        path: own_path.to_owned(),
        dir,
        is_root: own_path == "/",
        owner_uid: None,
        controllers: vec![],
        subtree_control: vec![],
        writable: true,
        procs_writable: true,
        subtree_control_writable: true,
        delegated: true,
    };
    Cgroups {
        mode: CgroupMode::V2,
        own: vec![OwnCgroup {
            hierarchy: 0,
            controllers: vec![],
            path: own_path.to_owned(),
        }],
        v2: Some(V2Hierarchy {
            mount: tree.0.clone(),
            own_path: own_path.to_owned(),
            own: Some(own),
            parent: None,
            usable_controllers: vec![],
            error: None,
        }),
        v1: vec![],
        writable: Controller::ALL.to_vec(),
        swap_accounting: Some(true),
        host_swap: false,
        error: None,
        mounts: Vec::new(),
    }
}

fn write(path: PathBuf, value: &str) -> Step {
    Step::Write {
        path,
        value: value.to_owned(),
    }
}

#[test]
fn v2_plan_moves_the_supervisor_enables_controllers_and_writes_limits() {
    let tree = Tree::new("v2");
    let caps = v2_caps(&tree, "/app");
    let plan = prepare(&limits(), &[], Level::Required, &caps).unwrap();
    let base = tree.0.join("app");
    let leaf = base.join(&plan.name);
    let enable = |c: &str| Step::Enable {
        file: base.join("cgroup.subtree_control"),
        value: format!("+{c}"),
    };
    assert_eq!(plan.backend, Backend::V2);
    assert_eq!(
        plan.steps,
        [
            Step::MoveSelf {
                leaf: base.join(format!("plugjail-{}-sup", std::process::id()))
            },
            // memory is enabled already (the fake subtree_control says so)
            enable("cpu"),
            enable("pids"),
            Step::Mkdir { path: leaf.clone() },
            write(leaf.join("memory.max"), "67108864"),
            write(leaf.join("memory.swap.max"), "0"),
            write(leaf.join("memory.oom.group"), "1"),
            write(leaf.join("cpu.max"), "50000 100000"),
            write(leaf.join("pids.max"), "16"),
        ],
        "{}",
        plan.describe_steps()
    );
    assert_eq!(
        plan.controllers,
        [Controller::Memory, Controller::Cpu, Controller::Pids]
    );
    assert!(plan.dropped.is_empty());
    assert_eq!(
        plan.rlimits.get(libc::RLIMIT_AS),
        None,
        "memory is a cgroup's"
    );
    assert!(
        plan.name
            .starts_with(&format!("plugjail-{}-", std::process::id()))
    );
}

#[test]
fn v2_second_jail_of_a_supervisor_stays_put() {
    let tree = Tree::new("v2sup");
    tree.v2_cgroup("/app");
    let sup = format!("/app/plugjail-{}-sup", std::process::id());
    let caps = v2_caps(&tree, &sup);
    let plan = prepare(&limits(), &[], Level::Required, &caps).unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::MoveSelf { .. })),
        "{}",
        plan.describe_steps()
    );
    assert_eq!(plan.dirs[0].path, tree.0.join("app").join(&plan.name));
}

#[test]
fn v2_io_lines_per_device() {
    let tree = Tree::new("v2io");
    let caps = v2_caps(&tree, "/app");
    let l = Limits {
        io: IoLimits {
            write_bps: Some(MIB),
            read_iops: Some(50),
            ..IoLimits::default()
        },
        ..limits()
    };
    // The temp dir may be on tmpfs (no device): then there is nothing to throttle and
    // nothing is dropped either.
    let plan = prepare(&l, std::slice::from_ref(&tree.0), Level::Required, &caps).unwrap();
    assert!(plan.dropped.is_empty());
    let io_lines: Vec<&str> = plan
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Write { path, value } if path.ends_with("io.max") => Some(value.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(io_lines.len(), plan.io_devices.len());
    for (line, dev) in io_lines.iter().zip(&plan.io_devices) {
        assert_eq!(*line, format!("{} wbps=1048576 riops=50", dev.id()));
    }
}

#[test]
fn v2_root_cgroup_is_never_a_base() {
    let tree = Tree::new("v2root");
    let caps = v2_caps(&tree, "/");
    let err = prepare(&limits(), &[], Level::Required, &caps).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("root cgroup"), "{msg}");
    assert!(
        msg.contains("memory 64M") && msg.contains("pids 16"),
        "{msg}"
    );

    let plan = prepare(&limits(), &[], Level::BestEffort, &caps).unwrap();
    assert_eq!(plan.backend, Backend::None);
    assert!(plan.steps.is_empty() && plan.dirs.is_empty());
    let what: Vec<&str> = plan.dropped.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(what, ["memory 64M", "cpu 0.5 cores", "pids 16"]);
    assert_eq!(plan.rlimits.get(libc::RLIMIT_AS), Some(64 * MIB));
    assert!(plan.dropped.iter().all(|d| d.why.contains("root cgroup")));
}

fn v1_caps(tree: &Tree, writable: &[Controller]) -> Cgroups {
    let hier = |c: Controller| {
        let dir = tree.0.join(c.v1_name());
        std::fs::create_dir_all(&dir).unwrap();
        let ok = writable.contains(&c);
        V1Hierarchy {
            controller: c.v1_name(),
            mount: Some(dir.clone()),
            own_path: Some("/".into()),
            dir: Some(dir),
            own_is_root: true,
            owner_uid: None,
            writable: ok,
            error: (!ok).then(|| crate::probe::Failure {
                call: "access".into(),
                message: "EACCES".into(),
                errno: None,
            }),
        }
    };
    Cgroups {
        mode: CgroupMode::V1Hybrid,
        own: vec![],
        v2: None,
        v1: [
            Controller::Memory,
            Controller::Cpu,
            Controller::Pids,
            Controller::Io,
        ]
        .into_iter()
        .map(hier)
        .collect(),
        writable: writable.to_vec(),
        swap_accounting: Some(true),
        host_swap: true,
        error: None,
        mounts: Vec::new(),
    }
}

fn dir_of(plan: &CgroupPlan, h: &str) -> PathBuf {
    plan.dirs
        .iter()
        .find(|d| d.hierarchy == h)
        .unwrap()
        .path
        .clone()
}

#[test]
fn v1_plan_one_child_per_hierarchy() {
    let tree = Tree::new("v1");
    let caps = v1_caps(&tree, &Controller::ALL);
    let l = Limits {
        swap: Some(16 * MIB),
        ..limits()
    };
    let plan = prepare(&l, &[], Level::Required, &caps).unwrap();
    assert_eq!(plan.backend, Backend::V1Hybrid);
    let (mem, cpu, pids) = (
        dir_of(&plan, "memory"),
        dir_of(&plan, "cpu"),
        dir_of(&plan, "pids"),
    );
    assert_eq!(mem, tree.0.join("memory").join(&plan.name));
    assert_eq!(
        plan.steps,
        [
            Step::Mkdir { path: mem.clone() },
            write(mem.join("memory.limit_in_bytes"), "67108864"),
            write(mem.join("memory.memsw.limit_in_bytes"), "83886080"),
            Step::Mkdir { path: cpu.clone() },
            write(cpu.join("cpu.cfs_period_us"), "100000"),
            write(cpu.join("cpu.cfs_quota_us"), "50000"),
            Step::Mkdir { path: pids.clone() },
            write(pids.join("pids.max"), "16"),
        ],
        "{}",
        plan.describe_steps()
    );
}

#[test]
fn v1_freezer_is_added_only_when_asked_and_once() {
    let tree = Tree::new("v1freezer");
    let mut caps = v1_caps(&tree, &Controller::ALL);
    let plan = prepare(&limits(), &[], Level::Required, &caps).unwrap();
    assert!(plan.dirs.iter().all(|d| d.hierarchy != "freezer"));
    // No freezer hierarchy mounted: nothing to add (the session falls back to signals).
    let mut without = plan.clone();
    without.add_freezer(&caps);
    assert_eq!(without.dirs, plan.dirs);
    // A freezer hierarchy with our own cgroup at its root: a child beside the others.
    let base = tree.0.join("freezer");
    std::fs::create_dir_all(&base).unwrap();
    caps.own.push(crate::probe::cgroup::OwnCgroup {
        hierarchy: 6,
        controllers: vec!["freezer".into()],
        path: "/".into(),
    });
    caps.mounts.push(
        crate::probe::cgroup::parse::mountinfo_line(&format!(
            "30 25 0:26 / {} rw - cgroup cgroup rw,freezer",
            base.display()
        ))
        .unwrap(),
    );
    let mut with = plan.clone();
    with.add_freezer(&caps);
    with.add_freezer(&caps);
    let freezer = dir_of(&with, "freezer");
    assert_eq!(freezer, base.join(&plan.name));
    assert_eq!(with.dirs.len(), plan.dirs.len() + 1, "added once");
    assert_eq!(
        with.steps.last(),
        Some(&Step::Mkdir { path: freezer }),
        "{}",
        with.describe_steps()
    );
    assert_eq!(with.backend, Backend::V1Hybrid);
    // v2 leaves need nothing added: cgroup.freeze is in every leaf.
    let v2tree = Tree::new("v2freezer");
    let v2 = v2_caps(&v2tree, "/app");
    let plan = prepare(&limits(), &[], Level::Required, &v2).unwrap();
    let mut with = plan.clone();
    with.add_freezer(&v2);
    assert_eq!(with.steps, plan.steps);
}

#[test]
fn v1_missing_hierarchies_refuse_or_drop() {
    let tree = Tree::new("v1miss");
    let caps = v1_caps(&tree, &[Controller::Memory]);
    let err = prepare(&limits(), &[], Level::Required, &caps).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Refused { items, .. } if items.len() == 2),
        "{err}"
    );
    let plan = prepare(&limits(), &[], Level::BestEffort, &caps).unwrap();
    assert_eq!(plan.backend, Backend::V1Hybrid);
    assert_eq!(plan.controllers, [Controller::Memory]);
    let what: Vec<&str> = plan.dropped.iter().map(|d| d.what.as_str()).collect();
    assert_eq!(what, ["cpu 0.5 cores", "pids 16"]);
    assert!(
        plan.dropped[1]
            .instead
            .as_deref()
            .unwrap()
            .starts_with("RLIMIT_NPROC")
    );
    assert_eq!(
        plan.rlimits.get(libc::RLIMIT_NPROC).map(|v| v.min(16)),
        Some(16)
    );
}

#[test]
fn v1_swap_alone_cannot_be_limited() {
    let tree = Tree::new("v1swap");
    let caps = v1_caps(&tree, &Controller::ALL);
    let l = Limits {
        memory: None,
        swap: Some(MIB),
        ..limits()
    };
    let err = prepare(&l, &[], Level::Required, &caps).unwrap_err();
    assert!(err.to_string().contains("swap 1M"), "{err}");
}

#[test]
fn a_failed_create_removes_what_it_made() {
    // The fake hierarchy has no interface files: the first write fails after the mkdir.
    let tree = Tree::new("v1roll");
    let caps = v1_caps(&tree, &Controller::ALL);
    let plan = prepare(&limits(), &[], Level::Required, &caps).unwrap();
    let err = plan.create().unwrap_err();
    assert!(matches!(err, CgroupError::Write { .. }), "{err}");
    for d in &plan.dirs {
        assert!(!d.path.exists(), "{} left behind", d.path.display());
    }
}

#[test]
fn cpu_quotas() {
    assert_eq!(cpu_quota_us(0.2), 20_000);
    assert_eq!(cpu_quota_us(2.0), 200_000);
    assert_eq!(cpu_quota_us(0.001), 1000, "the kernel's minimum");
}

#[test]
fn no_cgroups_at_all() {
    let caps = Cgroups {
        mode: CgroupMode::None,
        own: vec![],
        v2: None,
        v1: vec![],
        writable: vec![],
        swap_accounting: None,
        host_swap: false,
        error: None,
        mounts: Vec::new(),
    };
    let plan = prepare(&limits(), &[], Level::BestEffort, &caps).unwrap();
    assert_eq!(plan.backend, Backend::None);
    let cg = plan.create().unwrap();
    assert!(cg.dir_fd().is_none());
    assert!(cg.join_fds().unwrap().is_empty());
    cg.kill_all().unwrap();
    let report = cg.report();
    assert_eq!(report.backend, Backend::None);
    assert!(!report.oom() && !report.pids_limit());
    assert_eq!(
        serde_json::to_value(&report).unwrap()["dropped"][0]["what"],
        "memory 64M"
    );
}

#[test]
fn v2_shared_own_cgroup_puts_jails_beside_it() {
    // The launcher (pid 1 here) shares our cgroup: controllers cannot be enabled in it, so
    // the jail leaves go beneath the delegated parent, and nobody moves.
    let tree = Tree::new("v2crowd");
    tree.v2_cgroup("/svc");
    let caps = v2_caps(&tree, "/svc/app");
    std::fs::write(tree.0.join("svc/app/cgroup.procs"), "1\n").unwrap();
    let plan = prepare(&limits(), &[], Level::Required, &caps).unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::MoveSelf { .. })),
        "{}",
        plan.describe_steps()
    );
    assert_eq!(plan.dirs[0].path, tree.0.join("svc").join(&plan.name));
    assert!(bases(&caps).contains(&tree.0.join("svc")));

    // Beneath the root there is no parent to use: refused, saying why.
    let caps = v2_caps(&tree, "/solo");
    std::fs::write(tree.0.join("solo/cgroup.procs"), "1\n").unwrap();
    let err = prepare(&limits(), &[], Level::Required, &caps).unwrap_err();
    assert!(err.to_string().contains("other processes"), "{err}");
}

#[test]
fn swap_without_host_swap_holds_anyway() {
    let caps = Cgroups {
        mode: CgroupMode::None,
        own: vec![],
        v2: None,
        v1: vec![],
        writable: vec![],
        swap_accounting: None,
        host_swap: false,
        error: None,
        mounts: Vec::new(),
    };
    let l = Limits {
        memory: None,
        swap: Some(0),
        cpu: None,
        pids: None,
        ..limits()
    };
    let plan = prepare(&l, &[], Level::Required, &caps).unwrap();
    assert!(plan.dropped.is_empty(), "{:?}", plan.dropped);
    let err = prepare(
        &l,
        &[],
        Level::Required,
        &Cgroups {
            host_swap: true,
            ..caps
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("swap 0"), "{err}");
}
