//! The child side of the jail: one linear sequence of syscalls.
//!
//! This runs right after `clone3` in a copy of the supervisor's address space. The
//! supervisor was single-threaded, so no lock is held, but the heap belongs to a process
//! that no longer exists here: nothing below allocates, formats or panics on purpose. Every
//! input was prepared by [`super::plan::build`]. A failing step writes a fixed-size
//! (step, errno, item) record to the close-on-exec error pipe and `_exit`s; a successful
//! `execveat` closes that pipe, which the supervisor reads as success.
//!
//! The sequence ([`sequence`]) makes every syscall through [`ChildSys`]: [`Kernel`] makes
//! the real ones, and the unit tests (`child/tests.rs`) a recording double that checks the
//! order of the steps without root. The sequence never ends the process itself: it returns
//! an [`Ending`] (a failed step, a vanished supervisor, or the init's side of the fork),
//! and [`run`] carries that out (error record and `_exit`, or the init's loop). Exec is
//! the one ending that never returns to [`run`].
//!
//! The numbered comments match docs/architecture.md one to one. The seam ([`ChildSys`] and
//! its implementation for [`Kernel`]) is in `child/seam.rs`.

mod seam;

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_PRIVATE, MS_REC};

use super::init;
use super::plan::{FsOp, Plan, ROOT_TMPFS};
use super::step::{Failure, Step};
use super::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

pub(crate) use seam::ChildSys;

/// Exit status of a child whose setup failed (the record, not this, is what counts).
const SETUP_FAILED: libc::c_int = 125;
/// `item` when a failure is not about a particular plan entry.
const NO_ITEM: u32 = u32::MAX;

/// The descriptors the child works with, all created by the supervisor before `clone3`.
#[derive(Debug)]
pub struct ChildFds {
    /// Read end of the sync pipe: one byte when the id maps are written; EOF when the
    /// supervisor is gone.
    pub sync_r: RawFd,
    /// Write end of the error pipe (close-on-exec).
    pub err_w: RawFd,
    /// Write end of the status pipe: the init reports the target's wait status here.
    pub status_w: RawFd,
    /// The sealed memfd holding the program (close-on-exec).
    pub memfd: RawFd,
    /// Descriptor ranges to close (everything but stdio, the placed descriptors and the
    /// three above).
    pub close: Vec<(u32, u32)>,
    /// cgroup v1: the jail cgroup's `tasks` file in every hierarchy, open for writing
    /// (step 19b; close-on-exec). Empty otherwise.
    pub join_cgroup: Vec<RawFd>,
}

/// The real syscalls (`sys.rs`, and the handshake in `init.rs`; its [`ChildSys`] methods are
/// in `child/seam.rs`). Its field is private: only [`run`] makes one, so these methods only
/// run where `run`'s contract holds.
pub(crate) struct Kernel(());

/// How [`sequence`] ends when it does not exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A step failed: report (step, errno, item) on the error pipe and leave.
    Failed(Step, i32, u32),
    /// The supervisor is gone (end of file on the sync pipe): leave quietly.
    SupervisorGone,
    /// The parent side of step 26's fork: this process is the jail's init, for the target
    /// `target`, with its end `sock` of the handshake socket; `trace`: trace the target.
    Init {
        target: libc::pid_t,
        sock: RawFd,
        trace: bool,
    },
}

/// Runs the jail sequence; never returns.
///
/// # Safety
/// Only in the child that `clone3` (without a new stack) just made of a single-threaded
/// process, with `plan` and `fds` prepared before the clone: the sequence makes raw
/// syscalls only (no allocation, no locks) on a copy of the parent's memory, and forks the
/// target off with [`sys::fork_raw`].
pub unsafe fn run(plan: &Plan, fds: &ChildFds) -> ! {
    match sequence(&mut Kernel(()), plan, fds) {
        Ending::Failed(step, errno, item) => {
            sys::write_all(fds.err_w, &Failure::encode(step, errno, item));
            sys::exit(SETUP_FAILED)
        }
        Ending::SupervisorGone => sys::exit(SETUP_FAILED),
        Ending::Init {
            target,
            sock,
            trace,
        } => init::run(target, fds, sock, trace, plan.handover.as_ref()),
    }
}

/// The jail sequence through `os`: returns only when it does not exec (see [`Ending`]).
pub(crate) fn sequence<S: ChildSys>(os: &mut S, plan: &Plan, fds: &ChildFds) -> Ending {
    macro_rules! step {
        ($step:expr, $call:expr) => {
            if let Err(errno) = $call {
                return Ending::Failed($step, errno, NO_ITEM);
            }
        };
    }

    // 1. Parent death signal: if the supervisor dies from here on, the kernel kills us
    //    (and, as PID 1 of the new PID namespace, everything in the jail with us).
    step!(
        Step::ParentDeathSignal,
        os.prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
    );

    // 2. Wait for the id maps: block until the supervisor has written uid_map/gid_map and
    //    sends one byte. EOF means it died before that (possibly before step 1 armed the
    //    death signal): leave quietly.
    match os.read_byte(fds.sync_r) {
        Ok(true) => {}
        Ok(false) => return Ending::SupervisorGone,
        Err(errno) => return Ending::Failed(Step::WaitForMaps, errno, NO_ITEM),
    }

    // 3. Default signal dispositions and an empty signal mask: an ignored signal survives
    //    exec, and plugjail (like every Rust program) ignores SIGPIPE, as may whoever
    //    started it (nohup); the program must start as if exec'd by a plain shell.
    step!(Step::ResetSignals, os.reset_signals());

    // 4. Securebits, locked: uid 0 never regains capabilities on exec, changing ids keeps
    //    capabilities (so step 5 can switch to the jail's ids before mounting, and the
    //    capabilities go in step 22, explicitly), ambient capabilities cannot be raised.
    //    Needs CAP_SETPCAP, which the child has in its own user namespace (or as root); an
    //    ordinary caller without a user namespace has no capabilities to drop.
    if plan.drop_caps {
        step!(
            Step::Securebits,
            os.prctl(libc::PR_SET_SECUREBITS, sys::SECUREBITS_LOCKED_DOWN)
        );
    }

    // 5. Become the jail's unprivileged uid/gid (1000 inside) now, before mounting: a
    //    jail started by root runs as nobody on the host, and filesystems refuse to be
    //    mounted by an id the namespace does not map. Root also drops its supplementary
    //    groups here.
    if let Some((uid, gid)) = plan.ids.switch_to {
        step!(Step::SetIds, os.set_ids(uid, gid, plan.ids.clear_groups));
    }

    // 6. Changing ids cleared the parent death signal: arm it again, then make sure the
    //    supervisor did not die in between (its end of the sync pipe would be closed).
    step!(
        Step::RearmParentDeathSignal,
        os.prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong)
    );
    if os.pipe_hung_up(fds.sync_r) {
        return Ending::SupervisorGone;
    }

    // 7. No nested user namespaces: a user namespace needs no privilege to create, and
    //    inside one the jail would be "root" again with the kernel's whole namespaced
    //    attack surface in reach. The limit is per user namespace, and writing our own
    //    needs CAP_SYS_RESOURCE in it, which we still have; the sysctl file resolves to
    //    the writer's user namespace even through the host's /proc.
    if plan.no_nested_userns {
        step!(
            Step::NoNestedUserNamespaces,
            os.write_file(c"/proc/sys/user/max_user_namespaces", b"0")
        );
    }

    if let Some(ops) = &plan.fs {
        // 8. Make every mount private, recursively, so nothing we mount propagates back
        //    to the host and no host mount event propagates in.
        step!(
            Step::MakeRootPrivate,
            os.mount(None, c"/", None, MS_REC | MS_PRIVATE, None)
        );

        // 9. A tiny private tmpfs as a base: it will hold the new root (/newroot) and the
        //    host root (/oldroot) side by side, so bind sources are always reachable as
        //    /oldroot/PATH, even paths the new mounts would otherwise cover (like /tmp).
        step!(
            Step::MountBase,
            os.mount(
                Some(c"tmpfs"),
                c"/tmp",
                Some(c"tmpfs"),
                MS_NOSUID | MS_NODEV | MS_NOEXEC,
                Some(c"size=64k,nr_inodes=16,mode=0700"),
            )
        );
        step!(Step::MountBase, os.mkdir(c"/tmp/newroot", 0o700));
        step!(Step::MountBase, os.mkdir(c"/tmp/oldroot", 0o700));

        // 10. Pivot into the base: the host root moves to /oldroot.
        step!(Step::PivotToBase, os.pivot_root(c"/tmp", c"/tmp/oldroot"));
        step!(Step::PivotToBase, os.chdir(c"/"));

        // 11. The jail's root: a small tmpfs, nosuid and nodev.
        step!(
            Step::MountNewRoot,
            os.mount(
                Some(c"tmpfs"),
                c"/newroot",
                Some(c"tmpfs"),
                MS_NOSUID | MS_NODEV,
                Some(ROOT_TMPFS),
            )
        );

        // 12. Build the tree, in the plan's order (parents before children): the rootfs
        //    template's directories and symlinks, then the profile's read-only and
        //    read-write binds (host symlinks recreated as symlinks), sized tmpfs mounts,
        //    /dev (a tmpfs with the allowed device nodes bound in), and /proc for the new
        //    PID namespace, mounted now because a user namespace may only mount proc while
        //    a full proc is still visible (the host's, under /oldroot). Last, /dev is made
        //    read-only (its device binds keep their own flags).
        for (i, s) in ops.iter().enumerate() {
            let item = u32::try_from(i).unwrap_or(NO_ITEM);
            let result = match &s.op {
                FsOp::Mkdir(path) => os.mkdir(path, 0o755).map_err(|e| (Step::Mkdir, e)),
                FsOp::Symlink { target, path } => {
                    os.symlink(target, path).map_err(|e| (Step::Symlink, e))
                }
                FsOp::Touch(path) => os.touch(path).map_err(|e| (Step::MountPoint, e)),
                FsOp::Bind { src, dst, attrs } => bind(os, src, dst, *attrs),
                FsOp::Tmpfs { dst, flags, data } => os
                    .mount(Some(c"tmpfs"), dst, Some(c"tmpfs"), *flags, Some(data))
                    .map_err(|e| (Step::MountTmpfs, e)),
                FsOp::Proc { dst, data } => os
                    .mount(
                        Some(c"proc"),
                        dst,
                        Some(c"proc"),
                        MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        Some(data),
                    )
                    .map_err(|e| (Step::MountProc, e)),
                FsOp::Seal(dst) => os
                    .mount_setattr(
                        dst,
                        MOUNT_ATTR_RDONLY
                            | MOUNT_ATTR_NOSUID
                            | MOUNT_ATTR_NODEV
                            | MOUNT_ATTR_NOEXEC,
                        false,
                    )
                    .map_err(|e| (Step::SealMount, e)),
            };
            if let Err((step, errno)) = result {
                return Ending::Failed(step, errno, item);
            }
        }

        // 13. Enter the new root: pivot_root(".", ".") stacks the base (with the host root
        //    under it) on top of the new root...
        step!(Step::PivotRoot, os.chdir(c"/newroot"));
        step!(Step::PivotRoot, os.pivot_root(c".", c"."));

        // 14. ...and detaching it drops every path to the host's tree at once.
        step!(Step::DetachOldRoot, os.umount_detach(c"."));

        // 15. The root itself becomes read-only (and noexec: it only holds directories,
        //     symlinks and mount points).
        step!(
            Step::RemountRootReadOnly,
            os.mount_setattr(
                c"/",
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                false,
            )
        );

        // 16. Start in /.
        step!(Step::Chdir, os.chdir(c"/"));
    }

    // 17. Hostname, in the jail's own UTS namespace.
    if let Some(name) = &plan.hostname {
        step!(Step::Hostname, os.sethostname(name));
    }

    // 18. Loopback up, in the jail's own network namespace (network: loopback).
    if plan.loopback {
        step!(Step::Loopback, os.loopback_up());
    }

    // 19. Resource limits (lowered only; no core dumps).
    for &(resource, value) in &plan.rlimits {
        step!(Step::Rlimits, os.setrlimit(resource, value));
    }

    // 19b. Join the jail's cgroup (v1; v2 cloned us into it): write `0` ("this thread")
    //      into its `tasks` file in every hierarchy, through descriptors the supervisor
    //      opened. We are single-threaded, so that moves the whole process, and a thread
    //      moving itself takes no global lock (the supervisor writing our pid to
    //      cgroup.procs would wait for an RCU grace period, milliseconds). Only this setup
    //      code (ours) ran outside the cgroup: the target is forked in step 26. It comes
    //      before the capability drop because step 19c needs CAP_SYS_ADMIN.
    for &fd in &fds.join_cgroup {
        if let Err(errno) = os.join_cgroup(fd) {
            return Ending::Failed(Step::JoinCgroup, errno, NO_ITEM);
        }
        os.close(fd);
    }

    // 19c. The cgroup namespace, now that we are in the jail's cgroup (v1 cannot clone
    //      into a cgroup): rooted there, the jail sees its own cgroup as `/` and nothing
    //      of the host's cgroup tree or the supervisor's name.
    if plan.cgroup_namespace {
        step!(Step::CgroupNamespace, os.unshare(libc::CLONE_NEWCGROUP));
    }

    if plan.drop_caps {
        // 20. Empty the capability bounding set: no exec can ever grant a capability.
        step!(Step::DropBounding, os.drop_bounding_set());

        // 21. Clear ambient capabilities.
        step!(
            Step::ClearAmbient,
            os.prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong
            )
        );
    }

    // 22. Drop every capability: effective, permitted, inheritable.
    step!(Step::DropCapabilities, os.capset_empty());

    // 23. A new session: no controlling terminal, so TIOCSTI cannot push input into the
    //     caller's terminal and the jail receives no terminal signals.
    step!(Step::NewSession, os.setsid());

    // 24. no_new_privs: exec can never add privilege (setuid bits, file capabilities); it
    //     is also what lets an unprivileged process install Landlock and seccomp.
    step!(Step::NoNewPrivs, os.prctl(libc::PR_SET_NO_NEW_PRIVS, 1));

    // 24b. Put the descriptors the program inherits (plugin mode: channel, plugin memfd,
    //      serve filter, ...) at their fixed numbers. Every source sits above the highest
    //      target, as do the child's own pipes, so no copy overwrites anything still needed.
    for placed in &plan.fds {
        let source = std::os::fd::AsRawFd::as_raw_fd(&placed.source);
        step!(Step::PlaceFds, os.dup2(source, placed.target));
    }

    // 24c. Wait for the program: the second byte on the sync pipe, sent once the supervisor
    //      has copied it into its memfd and sealed it (it did so while steps 3-24 ran).
    //      EOF: the supervisor died or gave up; leave.
    match os.read_byte(fds.sync_r) {
        Ok(true) => {}
        Ok(false) => return Ending::SupervisorGone,
        Err(errno) => return Ending::Failed(Step::WaitForProgram, errno, NO_ITEM),
    }

    // 25. Close every descriptor except stdin/stdout/stderr, the placed ones, the error
    //     and status pipes and the program's memfd (the last three are close-on-exec).
    for &(first, last) in &fds.close {
        step!(Step::CloseFds, os.close_range(first, last));
    }

    // 26. Fork the target. This process stays behind as the jail's init (PID 1 of the new
    //     PID namespace, `init.rs`): it reaps orphans, reports how the target ended, and
    //     its exit ends every process left in the jail. Under `kill_process`, and for
    //     plugin mode's serve gate, it also traces every process of the jail. In plugin
    //     mode it keeps the channel (`handover.rs`) until the stub asks for it.
    let gate = plan.handover.as_ref().and_then(|h| h.gate.as_ref());
    let trace = gate.is_some()
        || plan
            .seccomp
            .as_ref()
            .is_some_and(|s| s.has_traced_variant());
    let (init_sock, target_sock) = match os.handshake_pair() {
        Ok(pair) => pair,
        Err(errno) => return Ending::Failed(Step::ForkTarget, errno, NO_ITEM),
    };
    match os.fork() {
        Err(errno) => return Ending::Failed(Step::ForkTarget, errno, NO_ITEM),
        Ok(0) => os.close(init_sock),
        Ok(target) => {
            os.close(target_sock);
            // The init needs none of the program's placed descriptors but the channel it
            // hands over; anything else kept here would only delay the host's end of file.
            let kept = plan.handover.as_ref().map_or(&[][..], |h| &h.fds[..]);
            for placed in plan.fds.iter().filter(|p| !kept.contains(&p.target)) {
                os.close(placed.target);
            }
            return Ending::Init {
                target,
                sock: init_sock,
                trace,
            };
        }
    }

    // 26b. Wait for the tracer: tell the init we are ready to be seized (traceable), and
    //      learn whether it now traces us. Nothing of the program runs before that, so no
    //      process of the jail ever exists untraced when tracing works.
    let traced = match os.await_tracer(target_sock, trace) {
        Ok(traced) => traced,
        Err(errno) => return Ending::Failed(Step::WaitForTracer, errno, NO_ITEM),
    };

    // 26c. Plugin mode: the channel is the init's until the stub's switch, so the target
    //      drops its copies and keeps its end of the handshake socket at the number the
    //      stub asks through. The serve gate needs the init's tracing: without it, refuse
    //      when the profile requires seccomp, or go on without a serve phase (the verdict
    //      then claims none).
    match &plan.handover {
        Some(h) => {
            for fd in h.fds {
                os.close(fd);
            }
            step!(Step::ServeGate, os.place_inheritable(target_sock, h.socket));
            if h.gate.as_ref().is_some_and(|g| g.required) && !traced {
                return Ending::Failed(Step::ServeGate, libc::EPERM, NO_ITEM);
            }
        }
        None => os.close(target_sock),
    }

    // 27. Landlock (target only; the init stays outside its domain, so the target can
    //     neither ptrace nor signal it).
    if let Some(landlock) = &plan.landlock
        && let Err(f) = os.landlock(landlock)
    {
        let item = f
            .rule
            .and_then(|r| u32::try_from(r).ok())
            .unwrap_or(NO_ITEM);
        return Ending::Failed(Step::Landlock, f.errno as i32, item);
    }

    // 28. Seccomp, as late as possible: from here only the profile's syscalls (and exactly
    //     one execveat of the memfd) are allowed. Traced, the filter's kills are traces
    //     that the init turns into a named kill; untraced, they are plain kills. Plugin
    //     mode's serve gate goes first, so that the load filter's refusals outrank it
    //     (`seccomp/gate.rs`).
    if let Some(gate) = gate
        && traced
    {
        step!(
            Step::Seccomp,
            os.install_filter(&gate.program).map_err(|e| e as i32)
        );
    }
    if let Some(seccomp) = &plan.seccomp {
        step!(
            Step::Seccomp,
            os.install_filter_for(seccomp, traced).map_err(|e| e as i32)
        );
    }

    // 29. Exec the program from its sealed memfd; on success the error pipe closes.
    let errno = os.execveat(fds.memfd, &plan.argv, &plan.env);
    Ending::Failed(Step::Exec, errno, NO_ITEM)
}

/// Bind `src` onto `dst` with its submounts, then add `attrs` to the whole tree. Adding
/// attributes with mount_setattr keeps whatever the kernel locked on the source mounts.
fn bind<S: ChildSys>(os: &mut S, src: &CStr, dst: &CStr, attrs: u64) -> Result<(), (Step, i32)> {
    os.mount(Some(src), dst, None, MS_BIND | MS_REC, None)
        .map_err(|e| (Step::Bind, e))?;
    os.mount_setattr(dst, attrs, true)
        .map_err(|e| (Step::BindHarden, e))
}

#[cfg(test)]
mod tests;
