//! The seam between the child sequence and the kernel: [`ChildSys`], one method per
//! syscall the sequence makes, and its real implementation for [`Kernel`] (the wrappers in
//! `jail/sys.rs`). The unit tests implement it with a recorder (`child/tests/recorder.rs`).

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_ulong};
use nix::errno::Errno;

use super::Kernel;
use crate::jail::init;
use crate::jail::plan::CStringArray;
use crate::jail::sys;
use crate::landlock::{ApplyFailure, LandlockPlan};
use crate::seccomp::SeccompProgram;

/// Every syscall the child sequence makes, one method each, with the arguments and the
/// result (`Err(errno)`) of the wrappers in `sys.rs`. [`Kernel`] makes them; a test double
/// records them. Implementations used after `clone` must keep the child's rules: no
/// allocation, no locks, raw syscalls only.
///
/// What never returns is not here: exiting and the init's loop are [`run`](super::run)'s,
/// after the sequence has returned its [`Ending`](super::Ending); and a successful exec does not return from
/// [`ChildSys::execveat`] (a double returns an errno instead, so the sequence ends there as
/// a failed exec).
pub(crate) trait ChildSys {
    fn prctl(&mut self, option: c_int, arg2: c_ulong) -> Result<(), i32>;
    /// One byte from `fd`; `Ok(false)` on end of file.
    fn read_byte(&mut self, fd: RawFd) -> Result<bool, i32>;
    /// Whether the writer of the pipe `fd` is gone (without blocking).
    fn pipe_hung_up(&mut self, fd: RawFd) -> bool;
    fn reset_signals(&mut self) -> Result<(), i32>;
    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> Result<(), i32>;
    fn write_file(&mut self, path: &CStr, bytes: &[u8]) -> Result<(), i32>;
    fn mount(
        &mut self,
        src: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), i32>;
    fn mount_setattr(&mut self, target: &CStr, attr_set: u64, recursive: bool) -> Result<(), i32>;
    fn mkdir(&mut self, path: &CStr, mode: libc::mode_t) -> Result<(), i32>;
    fn symlink(&mut self, target: &CStr, path: &CStr) -> Result<(), i32>;
    fn touch(&mut self, path: &CStr) -> Result<(), i32>;
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), i32>;
    fn chdir(&mut self, path: &CStr) -> Result<(), i32>;
    fn umount_detach(&mut self, target: &CStr) -> Result<(), i32>;
    fn sethostname(&mut self, name: &CStr) -> Result<(), i32>;
    fn loopback_up(&mut self) -> Result<(), i32>;
    fn setrlimit(&mut self, resource: u32, value: u64) -> Result<(), i32>;
    /// Moves the calling thread into the cgroup whose v1 `tasks` file `fd` is.
    fn join_cgroup(&mut self, fd: RawFd) -> Result<(), i32>;
    fn unshare(&mut self, flags: c_int) -> Result<(), i32>;
    fn drop_bounding_set(&mut self) -> Result<(), i32>;
    fn capset_empty(&mut self) -> Result<(), i32>;
    fn setsid(&mut self) -> Result<(), i32>;
    fn dup2(&mut self, old: RawFd, new: RawFd) -> Result<(), i32>;
    fn close_range(&mut self, first: u32, last: u32) -> Result<(), i32>;
    fn close(&mut self, fd: RawFd);
    fn place_inheritable(&mut self, fd: RawFd, slot: RawFd) -> Result<(), i32>;
    /// The init/target handshake socket pair (`init::handshake_pair`).
    fn handshake_pair(&mut self) -> Result<(RawFd, RawFd), i32>;
    /// Fork: 0 in the child (the target), the child's pid in the parent (the init). A
    /// double does not fork; it returns the branch the test wants to follow.
    fn fork(&mut self) -> Result<libc::pid_t, i32>;
    /// The target's half of the tracing handshake (`init::await_tracer`): whether the
    /// init now traces it.
    fn await_tracer(&mut self, sock: RawFd, trace: bool) -> Result<bool, i32>;
    /// Landlock's `restrict_self` with the plan's rules.
    fn landlock(&mut self, plan: &LandlockPlan) -> Result<(), ApplyFailure>;
    /// Installs `program` as it is (the serve gate).
    fn install_filter(&mut self, program: &SeccompProgram) -> Result<(), Errno>;
    /// Installs the load filter, its traced variant when `traced`.
    fn install_filter_for(&mut self, program: &SeccompProgram, traced: bool) -> Result<(), Errno>;
    /// `execveat(fd, "", argv, env, AT_EMPTY_PATH)`: returns only on failure, with the
    /// errno.
    fn execveat(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> i32;
}

impl ChildSys for Kernel {
    #[inline]
    fn prctl(&mut self, option: c_int, arg2: c_ulong) -> Result<(), i32> {
        sys::prctl(option, arg2)
    }
    #[inline]
    fn read_byte(&mut self, fd: RawFd) -> Result<bool, i32> {
        sys::read_byte(fd)
    }
    #[inline]
    fn pipe_hung_up(&mut self, fd: RawFd) -> bool {
        sys::pipe_hung_up(fd)
    }
    #[inline]
    fn reset_signals(&mut self) -> Result<(), i32> {
        sys::reset_signals()
    }
    #[inline]
    fn set_ids(&mut self, uid: u32, gid: u32, clear_groups: bool) -> Result<(), i32> {
        sys::set_ids(uid, gid, clear_groups)
    }
    #[inline]
    fn write_file(&mut self, path: &CStr, bytes: &[u8]) -> Result<(), i32> {
        sys::write_file(path, bytes)
    }
    #[inline]
    fn mount(
        &mut self,
        src: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: c_ulong,
        data: Option<&CStr>,
    ) -> Result<(), i32> {
        sys::mount(src, target, fstype, flags, data)
    }
    #[inline]
    fn mount_setattr(&mut self, target: &CStr, attr_set: u64, recursive: bool) -> Result<(), i32> {
        sys::mount_setattr(target, attr_set, recursive)
    }
    #[inline]
    fn mkdir(&mut self, path: &CStr, mode: libc::mode_t) -> Result<(), i32> {
        sys::mkdir(path, mode)
    }
    #[inline]
    fn symlink(&mut self, target: &CStr, path: &CStr) -> Result<(), i32> {
        sys::symlink(target, path)
    }
    #[inline]
    fn touch(&mut self, path: &CStr) -> Result<(), i32> {
        sys::touch(path)
    }
    #[inline]
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
        sys::pivot_root(new_root, put_old)
    }
    #[inline]
    fn chdir(&mut self, path: &CStr) -> Result<(), i32> {
        sys::chdir(path)
    }
    #[inline]
    fn umount_detach(&mut self, target: &CStr) -> Result<(), i32> {
        sys::umount_detach(target)
    }
    #[inline]
    fn sethostname(&mut self, name: &CStr) -> Result<(), i32> {
        sys::sethostname(name)
    }
    #[inline]
    fn loopback_up(&mut self) -> Result<(), i32> {
        sys::loopback_up()
    }
    #[inline]
    fn setrlimit(&mut self, resource: u32, value: u64) -> Result<(), i32> {
        sys::setrlimit(resource, value)
    }
    #[inline]
    fn join_cgroup(&mut self, fd: RawFd) -> Result<(), i32> {
        sys::join_cgroup(fd)
    }
    #[inline]
    fn unshare(&mut self, flags: c_int) -> Result<(), i32> {
        sys::unshare(flags)
    }
    #[inline]
    fn drop_bounding_set(&mut self) -> Result<(), i32> {
        sys::drop_bounding_set()
    }
    #[inline]
    fn capset_empty(&mut self) -> Result<(), i32> {
        sys::capset_empty()
    }
    #[inline]
    fn setsid(&mut self) -> Result<(), i32> {
        sys::setsid()
    }
    #[inline]
    fn dup2(&mut self, old: RawFd, new: RawFd) -> Result<(), i32> {
        // SAFETY: the child owns every number the sequence names (its pipes, the plan's
        // placed descriptors and their sources); the plan's OwnedFds are never dropped here,
        // the child execs or `_exit`s.
        unsafe { sys::dup2(old, new) }
    }
    #[inline]
    fn close_range(&mut self, first: u32, last: u32) -> Result<(), i32> {
        // SAFETY: as for `dup2` above.
        unsafe { sys::close_range(first, last) }
    }
    #[inline]
    fn close(&mut self, fd: RawFd) {
        // SAFETY: as for `dup2` above.
        unsafe { sys::close(fd) }
    }
    #[inline]
    fn place_inheritable(&mut self, fd: RawFd, slot: RawFd) -> Result<(), i32> {
        // SAFETY: as for `dup2` above.
        unsafe { sys::place_inheritable(fd, slot) }
    }
    #[inline]
    fn handshake_pair(&mut self) -> Result<(RawFd, RawFd), i32> {
        init::handshake_pair()
    }
    #[inline]
    fn fork(&mut self) -> Result<libc::pid_t, i32> {
        // SAFETY: a `Kernel` only exists inside `run`, whose caller guarantees the child
        // clone3 just made: one thread. Both sides of this fork continue the sequence,
        // which makes only raw syscalls on the plan (the target until it execs, the init
        // in `init::run`).
        unsafe { sys::fork_raw() }
    }
    #[inline]
    fn await_tracer(&mut self, sock: RawFd, trace: bool) -> Result<bool, i32> {
        init::await_tracer(sock, trace)
    }
    #[inline]
    fn landlock(&mut self, plan: &LandlockPlan) -> Result<(), ApplyFailure> {
        plan.apply_detailed()
    }
    #[inline]
    fn install_filter(&mut self, program: &SeccompProgram) -> Result<(), Errno> {
        program.install()
    }
    #[inline]
    fn install_filter_for(&mut self, program: &SeccompProgram, traced: bool) -> Result<(), Errno> {
        program.install_for(traced)
    }
    #[inline]
    fn execveat(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> i32 {
        // SAFETY: a CStringArray is a NULL-terminated array of pointers to C strings it
        // owns; both arrays are borrowed from the plan, which lives until this process
        // execs or exits.
        unsafe { sys::execveat_fd(fd, argv.as_ptr(), env.as_ptr()) }
    }
}
