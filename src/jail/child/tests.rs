//! The child's step order, checked without root: [`sequence`] runs against a recording
//! [`ChildSys`] that makes no syscall, never forks and never execs, over a few plans (exec
//! with every namespace, rootless, no mount namespace, plugin mode with its hand-over), and
//! the tests compare what it recorded with the order docs/architecture.md promises.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::*;
use crate::jail::handover::GateAction;
use crate::jail::idmap;
use crate::jail::namespaces::NamespacePlan;
use crate::jail::plan::{CStringArray, FsStep, Gate, Handover, PlacedFd};
use crate::landlock::ApplyFailure;
use crate::profile::{Profile, load_str};
use crate::seccomp::{self, SeccompPhase};

mod recorder;

use recorder::{CGROUP_TASKS, ERR, INIT_SOCK, MEMFD, Recorder, STATUS, SYNC};

// ---------------------------------------------------------------------------------------
// Plans

fn profile(extra: &str) -> Profile {
    let text = format!("version: 1\nlandlock:\n  compat: best_effort\n{extra}");
    load_str(Path::new("test.yaml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn c(text: &str) -> CString {
    CString::new(text).unwrap()
}

fn dev_null() -> OwnedFd {
    File::open("/dev/null").unwrap().into()
}

fn fs_step(op: FsOp) -> FsStep {
    FsStep {
        op,
        about: PathBuf::from("/"),
    }
}

/// One of each filesystem operation, in the order fs_ops would put them.
fn small_tree() -> Vec<FsStep> {
    vec![
        fs_step(FsOp::Mkdir(c("/newroot/usr"))),
        fs_step(FsOp::Bind {
            src: c("/oldroot/usr"),
            dst: c("/newroot/usr"),
            attrs: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        }),
        fs_step(FsOp::Symlink {
            target: c("usr/lib"),
            path: c("/newroot/lib"),
        }),
        fs_step(FsOp::Touch(c("/newroot/etc/ld.so.cache"))),
        fs_step(FsOp::Mkdir(c("/newroot/tmp"))),
        fs_step(FsOp::Tmpfs {
            dst: c("/newroot/tmp"),
            flags: MS_NOSUID | MS_NODEV,
            data: c("size=1m"),
        }),
        fs_step(FsOp::Mkdir(c("/newroot/proc"))),
        fs_step(FsOp::Proc {
            dst: c("/newroot/proc"),
            data: c("subset=pid"),
        }),
        fs_step(FsOp::Seal(c("/newroot/dev"))),
    ]
}

/// Index of the /proc mount in [`small_tree`].
const PROC_ITEM: u32 = 7;

/// Who runs plugjail, and with which namespaces.
#[derive(Clone, Copy, PartialEq)]
enum Caller {
    /// Root, every namespace.
    Root,
    /// An ordinary user, every namespace (a user namespace of its own).
    Rootless,
    /// An ordinary user without a user (and so without a mount) namespace.
    NoNamespaces,
}

/// An `exec` plan for `caller`: a kill_process load filter (traced variant), Landlock, and
/// with namespaces the small tree, a hostname, loopback and the cgroup namespace.
fn exec_plan(caller: Caller) -> Plan {
    let p = profile("");
    let namespaced = caller != Caller::NoNamespaces;
    let euid = if caller == Caller::Root { 0 } else { 1000 };
    let flags = if namespaced {
        (libc::CLONE_NEWUSER
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWCGROUP) as u64
    } else {
        0
    };
    // The filter's exec rule names a descriptor number; which one does not matter here.
    let seccomp = seccomp::compile(&p.seccomp, SeccompPhase::Load, Some(65536)).unwrap();
    assert!(seccomp.has_traced_variant(), "kill_process is traced");
    Plan {
        namespaces: NamespacePlan {
            flags,
            unshared: vec![],
            dropped: vec![],
        },
        ids: idmap::plan(euid, euid, namespaced),
        fs: namespaced.then(small_tree),
        missing: vec![],
        hostname: namespaced.then(|| c("jail")),
        loopback: namespaced,
        rlimits: vec![(libc::RLIMIT_NOFILE, 64), (libc::RLIMIT_CORE, 0)],
        argv: CStringArray::new(vec![c("prog"), c("arg")]),
        env: CStringArray::new(vec![c("PATH=/usr/bin")]),
        target: crate::jail::target::open(std::ffi::OsStr::new("/usr/bin/true")).unwrap(),
        fds: vec![],
        handover: None,
        seccomp: Some(seccomp),
        landlock: Some(crate::landlock::prepare(&p.landlock).unwrap()),
        no_nested_userns: namespaced,
        drop_caps: euid == 0 || namespaced,
        cgroup_namespace: namespaced,
        rootless: euid != 0,
    }
}

/// Plugin mode's descriptors (stdio from the output pipe, the channel at 3 and 4, the
/// plugin at 5, ...), the hand-over of the channel through the socket at 6, and the serve
/// gate (`required`: refuse to run without it).
fn plugin_plan(required: bool) -> Plan {
    let mut plan = exec_plan(Caller::Root);
    for target in [0, 1, 2, 3, 4, 5, 7, 8] {
        plan.fds.push(PlacedFd {
            source: dev_null(),
            target,
        });
    }
    let p = profile("seccomp:\n  serve:\n    allow:\n      - syscalls: [read, write]\n");
    plan.handover = Some(Handover {
        fds: [3, 4],
        socket: 6,
        gate: Some(Gate {
            program: seccomp::compile_gate(&p.seccomp, 6).unwrap(),
            action: GateAction::Kill,
            required,
        }),
    });
    plan
}

fn child_fds() -> ChildFds {
    ChildFds {
        sync_r: SYNC,
        err_w: ERR,
        status_w: STATUS,
        memfd: MEMFD,
        close: vec![(3, 99), (104, u32::MAX)],
        join_cgroup: vec![CGROUP_TASKS],
    }
}

/// Runs the sequence over `plan` with `rec`; returns how it ended and what it called.
fn record(plan: &Plan, rec: Recorder) -> (Ending, Vec<String>) {
    let mut rec = rec.naming_sources(plan);
    let ending = sequence(&mut rec, plan, &child_fds());
    (ending, rec.calls)
}

fn lines(list: &[&str]) -> Vec<String> {
    list.iter().map(|l| l.to_string()).collect()
}

// ---------------------------------------------------------------------------------------
// What the sequence looks like

/// Steps 1-19c of a plan with every namespace: everything up to the capability drop.
fn namespaced_setup(set_ids: &str) -> Vec<String> {
    lines(&[
        "prctl PR_SET_PDEATHSIG 0x9",
        "read_byte sync",
        "reset_signals",
        "prctl PR_SET_SECUREBITS 0xef",
        set_ids,
        "prctl PR_SET_PDEATHSIG 0x9",
        "pipe_hung_up sync",
        "write_file /proc/sys/user/max_user_namespaces 0",
        "mount - / -",
        "mount tmpfs /tmp tmpfs",
        "mkdir /tmp/newroot",
        "mkdir /tmp/oldroot",
        "pivot_root /tmp /tmp/oldroot",
        "chdir /",
        "mount tmpfs /newroot tmpfs",
        "mkdir /newroot/usr",
        "mount /oldroot/usr /newroot/usr -",
        "mount_setattr /newroot/usr recursive",
        "symlink /newroot/lib -> usr/lib",
        "touch /newroot/etc/ld.so.cache",
        "mkdir /newroot/tmp",
        "mount tmpfs /newroot/tmp tmpfs",
        "mkdir /newroot/proc",
        "mount proc /newroot/proc proc",
        "mount_setattr /newroot/dev",
        "chdir /newroot",
        "pivot_root . .",
        "umount_detach .",
        "mount_setattr /",
        "chdir /",
        "sethostname jail",
        "loopback_up",
        "setrlimit NOFILE 64",
        "setrlimit CORE 0",
        "join_cgroup tasks",
        "close tasks",
        "unshare CLONE_NEWCGROUP",
        "drop_bounding_set",
        "prctl PR_CAP_AMBIENT 0x4",
        "capset_empty",
        "setsid",
        "prctl PR_SET_NO_NEW_PRIVS 0x1",
    ])
}

/// Steps 24c-29 of an exec plan, traced.
fn exec_tail() -> Vec<String> {
    lines(&[
        "read_byte sync",
        "close_range 3 99",
        "close_range 104 4294967295",
        "handshake_pair",
        "fork",
        "close init_sock",
        "await_tracer target_sock trace=true",
        "close target_sock",
        "landlock",
        "install_filter_for Load traced=true",
        "execveat memfd [prog,arg] [PATH=/usr/bin]",
    ])
}

/// Position of the first line starting with `prefix`.
fn find(calls: &[String], prefix: &str) -> usize {
    calls
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in {calls:#?}"))
}

/// `a` comes before `b` (their first occurrences).
fn before(calls: &[String], a: &str, b: &str) {
    assert!(
        find(calls, a) < find(calls, b),
        "`{a}` must come before `{b}`:\n{calls:#?}"
    );
}

/// What docs/architecture.md promises of every sequence that reaches exec.
fn check_promises(calls: &[String]) {
    before(calls, "prctl PR_SET_PDEATHSIG", "read_byte sync");
    if calls.iter().any(|l| l.starts_with("umount_detach")) {
        before(calls, "mount proc", "umount_detach");
        before(calls, "pivot_root /tmp", "mount proc");
    }
    if let Some(i) = calls.iter().position(|l| l.starts_with("set_ids")) {
        let rearm = calls
            .iter()
            .rposition(|l| l.starts_with("prctl PR_SET_PDEATHSIG"))
            .unwrap();
        assert!(i < rearm, "the death signal is re-armed after set_ids");
    }
    before(calls, "capset_empty", "prctl PR_SET_NO_NEW_PRIVS");
    before(calls, "prctl PR_SET_NO_NEW_PRIVS", "close_range");
    before(calls, "close_range", "fork");
    before(calls, "fork", "await_tracer");
    before(calls, "await_tracer", "landlock");
    before(calls, "prctl PR_SET_NO_NEW_PRIVS", "landlock");
    before(calls, "landlock", "install_filter");
    if calls.iter().any(|l| l.starts_with("install_filter Serve")) {
        before(calls, "install_filter Serve", "install_filter_for Load");
    }
    assert!(
        calls.last().is_some_and(|l| l.starts_with("execveat")),
        "exec is last: {calls:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// The tests

#[test]
fn exec_with_every_namespace_runs_the_documented_order() {
    let plan = exec_plan(Caller::Root);
    let (ending, calls) = record(&plan, Recorder::new());
    let mut expected = namespaced_setup("set_ids 1000 1000 clear_groups");
    expected.extend(exec_tail());
    check_promises(&calls);
    assert_eq!(calls, expected);
    // Only a failed exec returns.
    assert_eq!(ending, Ending::Failed(Step::Exec, 0, NO_ITEM));
}

#[test]
fn rootless_exec_keeps_its_groups_and_the_order() {
    let plan = exec_plan(Caller::Rootless);
    let (ending, calls) = record(&plan, Recorder::new());
    let mut expected = namespaced_setup("set_ids 1000 1000");
    expected.extend(exec_tail());
    check_promises(&calls);
    assert_eq!(calls, expected);
    assert_eq!(ending, Ending::Failed(Step::Exec, 0, NO_ITEM));
}

#[test]
fn without_namespaces_nothing_is_mounted_and_no_capability_is_touched_but_dropped() {
    let plan = exec_plan(Caller::NoNamespaces);
    let (ending, calls) = record(&plan, Recorder::new());
    let mut expected = lines(&[
        "prctl PR_SET_PDEATHSIG 0x9",
        "read_byte sync",
        "reset_signals",
        "prctl PR_SET_PDEATHSIG 0x9",
        "pipe_hung_up sync",
        "setrlimit NOFILE 64",
        "setrlimit CORE 0",
        "join_cgroup tasks",
        "close tasks",
        "capset_empty",
        "setsid",
        "prctl PR_SET_NO_NEW_PRIVS 0x1",
    ]);
    expected.extend(exec_tail());
    check_promises(&calls);
    assert_eq!(calls, expected);
    assert_eq!(ending, Ending::Failed(Step::Exec, 0, NO_ITEM));
}

#[test]
fn untraced_the_plain_load_filter_is_installed() {
    let plan = exec_plan(Caller::Root);
    let mut rec = Recorder::new();
    rec.traced = false;
    let (_, calls) = record(&plan, rec);
    check_promises(&calls);
    let tail = &calls[calls.len() - 3..];
    assert_eq!(
        tail,
        lines(&[
            "landlock",
            "install_filter_for Load traced=false",
            "execveat memfd [prog,arg] [PATH=/usr/bin]",
        ])
    );
}

/// Plugin mode: the descriptors are placed after no_new_privs and before everything else
/// is closed; the target gives the channel up and keeps the handshake socket at 6; the
/// gate goes in before the load filter.
#[test]
fn plugin_mode_places_hands_over_and_installs_the_gate_first() {
    let plan = plugin_plan(true);
    let (ending, calls) = record(&plan, Recorder::new());
    let mut expected = namespaced_setup("set_ids 1000 1000 clear_groups");
    expected.extend(lines(&[
        "dup2 src@0 0",
        "dup2 src@1 1",
        "dup2 src@2 2",
        "dup2 src@3 3",
        "dup2 src@4 4",
        "dup2 src@5 5",
        "dup2 src@7 7",
        "dup2 src@8 8",
        "read_byte sync",
        "close_range 3 99",
        "close_range 104 4294967295",
        "handshake_pair",
        "fork",
        "close init_sock",
        "await_tracer target_sock trace=true",
        "close 3",
        "close 4",
        "place_inheritable target_sock 6",
        "landlock",
        "install_filter Serve",
        "install_filter_for Load traced=true",
        "execveat memfd [prog,arg] [PATH=/usr/bin]",
    ]));
    check_promises(&calls);
    assert_eq!(calls, expected);
    assert_eq!(ending, Ending::Failed(Step::Exec, 0, NO_ITEM));
}

/// Without tracing there is no gate: `required` refuses right after the hand-over set-up
/// (before Landlock and seccomp); `best_effort` goes on with the plain load filter only.
#[test]
fn plugin_mode_without_tracing_refuses_or_runs_without_the_gate() {
    let mut rec = Recorder::new();
    rec.traced = false;
    let (ending, calls) = record(&plugin_plan(true), rec);
    assert_eq!(
        ending,
        Ending::Failed(Step::ServeGate, libc::EPERM, NO_ITEM)
    );
    assert_eq!(
        calls.last().map(String::as_str),
        Some("place_inheritable target_sock 6")
    );

    let mut rec = Recorder::new();
    rec.traced = false;
    let (ending, calls) = record(&plugin_plan(false), rec);
    check_promises(&calls);
    assert!(!calls.iter().any(|l| l.starts_with("install_filter Serve")));
    assert!(calls.contains(&"install_filter_for Load traced=false".to_string()));
    assert_eq!(ending, Ending::Failed(Step::Exec, 0, NO_ITEM));
}

/// The fork's parent side is the init: it closes the target's end of the handshake and
/// every placed descriptor but the channel it hands over, then returns to become the init
/// (it never waits for a tracer, installs a filter or execs).
#[test]
fn the_init_side_of_the_fork_keeps_only_the_channel() {
    let mut rec = Recorder::new();
    rec.fork = 42;
    let (ending, calls) = record(&plugin_plan(true), rec);
    let fork = find(&calls, "fork");
    assert_eq!(
        calls[fork + 1..],
        lines(&[
            "close target_sock",
            "close 0",
            "close 1",
            "close 2",
            "close 5",
            "close 7",
            "close 8",
        ])
    );
    assert_eq!(
        ending,
        Ending::Init {
            target: 42,
            sock: INIT_SOCK,
            trace: true,
        }
    );

    // exec: nothing placed, so only the handshake end goes.
    let mut rec = Recorder::new();
    rec.fork = 42;
    let (ending, calls) = record(&exec_plan(Caller::Root), rec);
    assert_eq!(calls.last().map(String::as_str), Some("close target_sock"));
    assert!(matches!(ending, Ending::Init { trace: true, .. }));
}

/// A failing step ends the sequence at once with its (step, errno, item) record.
#[test]
fn a_failing_step_ends_the_sequence_with_its_record() {
    let plan = exec_plan(Caller::Root);
    let cases: [(&str, Step, u32); 7] = [
        ("prctl PR_SET_PDEATHSIG", Step::ParentDeathSignal, NO_ITEM),
        ("mount tmpfs /tmp", Step::MountBase, NO_ITEM),
        ("mount proc", Step::MountProc, PROC_ITEM),
        ("mount_setattr /newroot/usr", Step::BindHarden, 1),
        ("umount_detach", Step::DetachOldRoot, NO_ITEM),
        ("fork", Step::ForkTarget, NO_ITEM),
        ("install_filter_for", Step::Seccomp, NO_ITEM),
    ];
    for (prefix, step, item) in cases {
        let mut rec = Recorder::new();
        rec.fail = Some((prefix, libc::EPERM));
        let (ending, calls) = record(&plan, rec);
        assert_eq!(ending, Ending::Failed(step, libc::EPERM, item), "{prefix}");
        assert!(
            calls.last().is_some_and(|l| l.starts_with(prefix)),
            "nothing runs after the failed `{prefix}`: {calls:#?}"
        );
    }
    // Landlock names the rule that failed.
    let mut rec = Recorder::new();
    rec.landlock_failure = Some(ApplyFailure {
        call: "landlock_add_rule",
        rule: Some(2),
        errno: Errno::EACCES,
    });
    let (ending, calls) = record(&plan, rec);
    assert_eq!(ending, Ending::Failed(Step::Landlock, libc::EACCES, 2));
    assert_eq!(calls.last().map(String::as_str), Some("landlock"));
}

/// A supervisor that is gone (end of file at either wait, or a hang-up after the ids
/// changed) ends the sequence quietly, with no record.
#[test]
fn a_vanished_supervisor_ends_the_sequence_quietly() {
    let plan = exec_plan(Caller::Root);
    let mut rec = Recorder::new();
    rec.sync_eof_at = Some(1);
    let (ending, calls) = record(&plan, rec);
    assert_eq!(ending, Ending::SupervisorGone);
    assert_eq!(
        calls,
        lines(&["prctl PR_SET_PDEATHSIG 0x9", "read_byte sync"])
    );

    let mut rec = Recorder::new();
    rec.hung_up = true;
    let (ending, calls) = record(&plan, rec);
    assert_eq!(ending, Ending::SupervisorGone);
    assert_eq!(calls.last().map(String::as_str), Some("pipe_hung_up sync"));

    let mut rec = Recorder::new();
    rec.sync_eof_at = Some(2);
    let (ending, calls) = record(&plan, rec);
    assert_eq!(ending, Ending::SupervisorGone);
    assert_eq!(
        calls[calls.len() - 2..],
        lines(&["prctl PR_SET_NO_NEW_PRIVS 0x1", "read_byte sync"]),
        "the second wait is the program's (24c), before the target exists"
    );
}

/// A refused cgroup join (v1, step 19b) is a named failure, before the capability drop and
/// long before the target exists.
#[test]
fn a_refused_cgroup_join_fails_the_step() {
    let plan = exec_plan(Caller::Root);
    let mut rec = Recorder::new();
    rec.fail = Some(("join_cgroup", libc::EACCES));
    let (ending, calls) = record(&plan, rec);
    assert_eq!(
        ending,
        Ending::Failed(Step::JoinCgroup, libc::EACCES, NO_ITEM)
    );
    assert_eq!(calls.last().map(String::as_str), Some("join_cgroup tasks"));
    assert!(!calls.iter().any(|l| l.starts_with("fork")));
}
