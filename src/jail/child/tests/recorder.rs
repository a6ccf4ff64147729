//! The recording [`ChildSys`] of the step-order tests: each call becomes a line of text
//! ("mount tmpfs /tmp tmpfs", "dup2 src@3 3", ...), nothing reaches the kernel, `fork`
//! returns the branch a test follows, and exec returns instead of replacing the process.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, RawFd};

use libc::{c_int, c_ulong};
use nix::errno::Errno;

use super::super::{ChildSys, Plan};
use crate::jail::plan::CStringArray;
use crate::landlock::{ApplyFailure, LandlockPlan};
use crate::seccomp::SeccompProgram;

/// The descriptors of the plan's `ChildFds`: numbers only, which the recorder never uses.
/// Negative, so that no name stands for a jail descriptor number (0-63) or a placed
/// descriptor's source (a real /dev/null of the test process).
pub(super) const SYNC: RawFd = -10;
pub(super) const ERR: RawFd = -11;
pub(super) const STATUS: RawFd = -12;
pub(super) const MEMFD: RawFd = -13;
pub(super) const CGROUP_TASKS: RawFd = -14;
/// What the recorder's `handshake_pair` returns: (init's end, target's end).
pub(super) const INIT_SOCK: RawFd = -20;
pub(super) const TARGET_SOCK: RawFd = -21;

/// A [`ChildSys`] that records each call as a line of text and answers as told.
pub(super) struct Recorder {
    pub(super) calls: Vec<String>,
    /// Names for the plan's fixed descriptor numbers in the lines ("sync", "memfd", ...).
    names: Vec<(RawFd, &'static str)>,
    /// Names for the placed descriptors' sources ("src@3": copied to 3), which are real
    /// descriptors of the test process: named only where a source is expected (`dup2`),
    /// since their numbers may equal the jail's own small ones.
    sources: Vec<(RawFd, String)>,
    /// What `fork` returns: 0 follows the target, a pid the init.
    pub(super) fork: libc::pid_t,
    /// The init's answer at the tracing handshake.
    pub(super) traced: bool,
    /// The `read_byte` call on the sync pipe (1: id maps, 2: the program) that sees end of
    /// file.
    pub(super) sync_eof_at: Option<usize>,
    /// Whether the sync pipe has hung up when step 6 looks.
    pub(super) hung_up: bool,
    /// The first call whose line starts with this fails with this errno.
    pub(super) fail: Option<(&'static str, i32)>,
    /// Landlock's failure, if it is to fail.
    pub(super) landlock_failure: Option<ApplyFailure>,
    reads: usize,
}

impl Recorder {
    pub(super) fn new() -> Recorder {
        let names = [
            (SYNC, "sync"),
            (ERR, "err"),
            (STATUS, "status"),
            (MEMFD, "memfd"),
            (CGROUP_TASKS, "tasks"),
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
    pub(super) fn naming_sources(mut self, plan: &Plan) -> Recorder {
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
    fn join_cgroup(&mut self, fd: RawFd) -> Result<(), i32> {
        let line = format!("join_cgroup {}", self.fd(fd));
        self.rec(line)
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
