//! The child's step order, checked without root: [`sequence`] runs against a recording
//! [`ChildSys`] that makes no syscall, never forks and never execs, over a few plans (exec
//! with every namespace, rootless, no mount namespace, plugin mode with its hand-over), and
//! the tests compare what it recorded with the order docs/architecture.md promises.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use super::*;
use crate::jail::handover::GateAction;
use crate::jail::idmap;
use crate::jail::namespaces::NamespacePlan;
use crate::jail::plan::{FsStep, Gate, Handover, PlacedFd};
use crate::jail::target::Target;
use crate::profile::{Profile, load_str};
use crate::seccomp::{self, SeccompPhase};

/// The descriptors of the plan's [`ChildFds`]: numbers only, which the recorder never uses.
/// Negative, so that no name stands for a jail descriptor number (0-63) or a placed
/// descriptor's source (a real /dev/null of the test process).
const SYNC: RawFd = -10;
const ERR: RawFd = -11;
const STATUS: RawFd = -12;
const MEMFD: RawFd = -13;
/// What the recorder's `handshake_pair` returns: (init's end, target's end).
const INIT_SOCK: RawFd = -20;
const TARGET_SOCK: RawFd = -21;

/// A [`ChildSys`] that records each call as a line of text and answers as told.
struct Recorder {
    calls: Vec<String>,
    /// Names for the plan's fixed descriptor numbers in the lines ("sync", "memfd", ...).
    names: Vec<(RawFd, &'static str)>,
    /// Names for the placed descriptors' sources ("src@3": copied to 3), which are real
    /// descriptors of the test process: named only where a source is expected (`dup2`),
    /// since their numbers may equal the jail's own small ones.
    sources: Vec<(RawFd, String)>,
    /// What `fork` returns: 0 follows the target, a pid the init.
    fork: libc::pid_t,
    /// The init's answer at the tracing handshake.
    traced: bool,
    /// The `read_byte` calls on the sync pipe (1: id maps, 2: cgroup) that see end of file.
    sync_eof_at: Option<usize>,
    /// Whether the sync pipe has hung up when step 6 looks.
    hung_up: bool,
    /// The first call whose line starts with this fails with this errno.
    fail: Option<(&'static str, i32)>,
    /// Landlock's failure, if it is to fail.
    landlock_failure: Option<ApplyFailure>,
    reads: usize,
}

impl Recorder {
    fn new() -> Recorder {
        let names = [
            (SYNC, "sync"),
            (ERR, "err"),
            (STATUS, "status"),
            (MEMFD, "memfd"),
            (INIT_SOCK, "init_sock"),
            (TARGET_SOCK, "target_sock"),
        ];
        Recorder {
            calls: Vec::new(),
            names: names.to_vec(),
            sources: Vec::new(),
            fork: 0,
            traced: true,
            sync_eof_at: None,
            hung_up: false,
            fail: None,
            landlock_failure: None,
            reads: 0,
        }
    }

    /// Names the placed descriptors' sources of `plan` ("src@TARGET").
    fn naming_sources(mut self, plan: &Plan) -> Recorder {
        for p in &plan.fds {
            self.sources
                .push((p.source.as_raw_fd(), format!("src@{}", p.target)));
        }
        self
    }

    fn fd(&self, fd: RawFd) -> String {
        self.names
            .iter()
            .find(|(n, _)| *n == fd)
            .map_or_else(|| fd.to_string(), |(_, name)| name.to_string())
    }

    fn source(&self, fd: RawFd) -> String {
        self.sources
            .iter()
            .find(|(n, _)| *n == fd)
            .map_or_else(|| fd.to_string(), |(_, name)| name.clone())
    }

    /// Records `line`; fails it if it is the call told to fail.
    fn rec(&mut self, line: String) -> Result<(), i32> {
        let fails = self.fail.filter(|(prefix, _)| line.starts_with(prefix));
        self.calls.push(line);
        match fails {
            Some((_, errno)) => {
                self.fail = None;
                Err(errno)
            }
            None => Ok(()),
        }
    }
}

fn s(c: &CStr) -> &str {
    c.to_str().unwrap()
}

fn opt(c: Option<&CStr>) -> &str {
    c.map_or("-", s)
}

impl ChildSys for Recorder {
    fn prctl(&mut self, option: c_int, arg2: c_ulong) -> Result<(), i32> {
        let name = match option {
            libc::PR_SET_PDEATHSIG => "PR_SET_PDEATHSIG",
            libc::PR_SET_SECUREBITS => "PR_SET_SECUREBITS",
            libc::PR_CAP_AMBIENT => "PR_CAP_AMBIENT",
            libc::PR_SET_NO_NEW_PRIVS => "PR_SET_NO_NEW_PRIVS",
            other => panic!("unexpected prctl option {other}"),
        };
        self.rec(format!("prctl {name} {arg2:#x}"))
    }
    fn read_byte(&mut self, fd: RawFd) -> Result<bool, i32> {
        self.reads += 1;
        let line = format!("read_byte {}", self.fd(fd));
        self.rec(line)?;
        Ok(self.sync_eof_at != Some(self.reads))
    }
    fn pipe_hung_up(&mut self, fd: RawFd) -> bool {
        let line = format!("pipe_hung_up {}", self.fd(fd));
        let _ = self.rec(line);
        self.hung_up
    }
    fn reset_signals(&mut self) -> Result<(), i32> {
        self.rec("reset_signals".into())
    }
    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> Result<(), i32> {
        let groups = if clear_groups { " clear_groups" } else { "" };
        self.rec(format!("set_ids {uid} {gid}{groups}"))
    }
    fn write_file(&mut self, path: &CStr, bytes: &[u8]) -> Result<(), i32> {
        let text = String::from_utf8_lossy(bytes);
        self.rec(format!("write_file {} {text}", s(path)))
    }
    fn mount(
        &mut self,
        src: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        _flags: c_ulong,
        _data: Option<&CStr>,
    ) -> Result<(), i32> {
        self.rec(format!("mount {} {} {}", opt(src), s(target), opt(fstype)))
    }
    fn mount_setattr(&mut self, target: &CStr, _attr_set: u64, recursive: bool) -> Result<(), i32> {
        let rec = if recursive { " recursive" } else { "" };
        self.rec(format!("mount_setattr {}{rec}", s(target)))
    }
    fn mkdir(&mut self, path: &CStr, _mode: libc::mode_t) -> Result<(), i32> {
        self.rec(format!("mkdir {}", s(path)))
    }
    fn symlink(&mut self, target: &CStr, path: &CStr) -> Result<(), i32> {
        self.rec(format!("symlink {} -> {}", s(path), s(target)))
    }
    fn touch(&mut self, path: &CStr) -> Result<(), i32> {
        self.rec(format!("touch {}", s(path)))
    }
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
        self.rec(format!("pivot_root {} {}", s(new_root), s(put_old)))
    }
    fn chdir(&mut self, path: &CStr) -> Result<(), i32> {
        self.rec(format!("chdir {}", s(path)))
    }
    fn umount_detach(&mut self, target: &CStr) -> Result<(), i32> {
        self.rec(format!("umount_detach {}", s(target)))
    }
    fn sethostname(&mut self, name: &CStr) -> Result<(), i32> {
        self.rec(format!("sethostname {}", s(name)))
    }
    fn loopback_up(&mut self) -> Result<(), i32> {
        self.rec("loopback_up".into())
    }
    fn setrlimit(&mut self, resource: u32, value: u64) -> Result<(), i32> {
        let name = match resource {
            libc::RLIMIT_NOFILE => "NOFILE",
            libc::RLIMIT_FSIZE => "FSIZE",
            libc::RLIMIT_CPU => "CPU",
            libc::RLIMIT_CORE => "CORE",
            other => panic!("unexpected rlimit {other}"),
        };
        self.rec(format!("setrlimit {name} {value}"))
    }
    fn unshare(&mut self, flags: c_int) -> Result<(), i32> {
        assert_eq!(flags, libc::CLONE_NEWCGROUP, "only the cgroup namespace");
        self.rec("unshare CLONE_NEWCGROUP".into())
    }
    fn drop_bounding_set(&mut self) -> Result<(), i32> {
        self.rec("drop_bounding_set".into())
    }
    fn capset_empty(&mut self) -> Result<(), i32> {
        self.rec("capset_empty".into())
    }
    fn setsid(&mut self) -> Result<(), i32> {
        self.rec("setsid".into())
    }
    fn dup2(&mut self, old: RawFd, new: RawFd) -> Result<(), i32> {
        let line = format!("dup2 {} {new}", self.source(old));
        self.rec(line)
    }
    fn close_range(&mut self, first: u32, last: u32) -> Result<(), i32> {
        self.rec(format!("close_range {first} {last}"))
    }
    fn close(&mut self, fd: RawFd) {
        let line = format!("close {}", self.fd(fd));
        let _ = self.rec(line);
    }
    fn place_inheritable(&mut self, fd: RawFd, slot: RawFd) -> Result<(), i32> {
        let line = format!("place_inheritable {} {slot}", self.fd(fd));
        self.rec(line)
    }
    fn handshake_pair(&mut self) -> Result<(RawFd, RawFd), i32> {
        self.rec("handshake_pair".into())?;
        Ok((INIT_SOCK, TARGET_SOCK))
    }
    fn fork(&mut self) -> Result<libc::pid_t, i32> {
        self.rec("fork".into())?;
        Ok(self.fork)
    }
    fn await_tracer(&mut self, sock: RawFd, trace: bool) -> Result<bool, i32> {
        let line = format!("await_tracer {} trace={trace}", self.fd(sock));
        self.rec(line)?;
        Ok(trace && self.traced)
    }
    fn landlock(&mut self, _plan: &LandlockPlan) -> Result<(), ApplyFailure> {
        self.calls.push("landlock".into());
        match self.landlock_failure {
            Some(f) => Err(f),
            None => Ok(()),
        }
    }
    fn install_filter(&mut self, program: &SeccompProgram) -> Result<(), Errno> {
        let line = format!("install_filter {:?}", program.phase());
        self.rec(line).map_err(Errno::from_raw)
    }
    fn install_filter_for(&mut self, program: &SeccompProgram, traced: bool) -> Result<(), Errno> {
        let line = format!("install_filter_for {:?} traced={traced}", program.phase());
        self.rec(line).map_err(Errno::from_raw)
    }
    fn execveat(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> i32 {
        let words = |a: &CStringArray| {
            a.strings()
                .iter()
                .map(|c| s(c).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let line = format!(
            "execveat {} [{}] [{}]",
            self.fd(fd),
            words(argv),
            words(env)
        );
        let _ = self.rec(line);
        // Only a failed exec returns; this one "failed" with 0 (no real errno).
        0
    }
}

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
        target: Target {
            path: PathBuf::from("/usr/bin/true"),
            memfd: dev_null(),
        },
        fds: vec![],
        handover: None,
        seccomp: Some(seccomp),
        landlock: Some(crate::landlock_rules::prepare(&p.landlock).unwrap()),
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
        "read_byte sync",
        "unshare CLONE_NEWCGROUP",
        "drop_bounding_set",
        "prctl PR_CAP_AMBIENT 0x4",
        "capset_empty",
        "setsid",
        "prctl PR_SET_NO_NEW_PRIVS 0x1",
    ])
}

/// Steps 25-29 of an exec plan, traced.
fn exec_tail() -> Vec<String> {
    lines(&[
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
        "read_byte sync",
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
        lines(&["setrlimit CORE 0", "read_byte sync"]),
        "the second wait is the cgroup's (19b)"
    );
}
