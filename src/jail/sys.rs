//! Thin wrappers over the raw syscalls the child makes.
//!
//! Each takes pointers prepared by the parent (C strings from the plan, stack structs) and
//! returns the raw errno on failure. Nothing here allocates, takes a lock or touches
//! thread-local state beyond `errno`, so every function is safe to call in the child after
//! `clone` (see `child.rs`).

use std::ffi::CStr;
use std::os::fd::RawFd;

use libc::{c_int, c_long, c_ulong};

/// The errno of the last failed libc call.
fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

/// Turns a libc return value (negative on failure) into `Result`.
fn check(ret: c_long) -> Result<c_long, i32> {
    if ret < 0 { Err(errno()) } else { Ok(ret) }
}

/// [`check`] for a syscall whose result is an `int` (a pid, a descriptor). The kernel
/// never returns more; if it did, EOVERFLOW says so instead of a truncated number.
fn check_int(ret: c_long) -> Result<c_int, i32> {
    check(ret).and_then(|n| c_int::try_from(n).map_err(|_| libc::EOVERFLOW))
}

/// Attributes for `mount_setattr(2)` (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
pub const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
pub const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;

/// `struct mount_attr` from linux/mount.h (size version 0).
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `struct clone_args` from linux/sched.h, the first three size versions (88 bytes).
#[repr(C)]
#[derive(Default)]
pub struct CloneArgs {
    pub flags: u64,
    pub pidfd: u64,
    pub child_tid: u64,
    pub parent_tid: u64,
    pub exit_signal: u64,
    pub stack: u64,
    pub stack_size: u64,
    pub tls: u64,
    pub set_tid: u64,
    pub set_tid_size: u64,
    pub cgroup: u64,
}

/// `clone3(2)` without a new stack: fork semantics (the child continues on a copy of the
/// parent's stack). Returns 0 in the child and the child's pid in the parent.
///
/// # Safety
/// The caller must be single-threaded, and the child must restrict itself to
/// async-signal-safe work (raw syscalls, no allocation) until it execs or exits.
pub unsafe fn clone3(args: &mut CloneArgs) -> Result<libc::pid_t, i32> {
    // SAFETY: `args` is a valid, initialised clone_args of the size passed; the caller
    // guarantees the fork-like semantics are sound (single-threaded, child does raw syscalls).
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    check_int(ret)
}

/// `unshare(2)`.
pub fn unshare(flags: c_int) -> Result<(), i32> {
    // SAFETY: unshare takes no pointers.
    check(unsafe { libc::unshare(flags) } as libc::c_long).map(drop)
}

/// A plain `fork` through the raw `clone` syscall, bypassing glibc's atfork handlers
/// (which may lock and allocate).
///
/// # Safety
/// The calling process must be single-threaded, and both processes must make only raw
/// syscalls (no allocation, no locks, no stdio) until they exec or `_exit`: the copy may
/// hold any lock the parent held, and no atfork handler ran to release it.
pub unsafe fn fork_raw() -> Result<libc::pid_t, i32> {
    // SAFETY: clone with only SIGCHLD and no stack duplicates the process like fork(2);
    // the caller guarantees what happens afterwards (see above).
    let ret = unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD as c_ulong, 0, 0, 0, 0) };
    check_int(ret)
}

pub fn mount(
    src: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: c_ulong,
    data: Option<&CStr>,
) -> Result<(), i32> {
    let p = |s: Option<&CStr>| s.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let ret = unsafe { libc::mount(p(src), target.as_ptr(), p(fstype), flags, p(data).cast()) };
    check(ret.into()).map(drop)
}

/// Adds mount attributes (never removes any: flags the kernel locked on a mount from a
/// more privileged namespace stay as they are, which a plain remount would have to repeat).
pub fn mount_setattr(target: &CStr, attr_set: u64, recursive: bool) -> Result<(), i32> {
    let attr = MountAttr {
        attr_set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    let flags: c_ulong = if recursive {
        libc::AT_RECURSIVE as c_ulong
    } else {
        0
    };
    // SAFETY: `target` is NUL-terminated and `attr` is a valid mount_attr of the given size.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            target.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    check(ret).map(drop)
}

pub fn umount_detach(target: &CStr) -> Result<(), i32> {
    // SAFETY: `target` is NUL-terminated.
    check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) }.into()).map(drop)
}

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> Result<(), i32> {
    // SAFETY: both arguments are NUL-terminated strings.
    let ret = unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) };
    check(ret).map(drop)
}

pub fn chdir(path: &CStr) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::chdir(path.as_ptr()) }.into()).map(drop)
}

/// `mkdir`, where an existing entry counts as success (mount points may already exist,
/// for example inside a read-only bind).
pub fn mkdir(path: &CStr, mode: libc::mode_t) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated.
    match check(unsafe { libc::mkdir(path.as_ptr(), mode) }.into()) {
        Err(libc::EEXIST) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `symlink`, where an existing entry counts as success.
pub fn symlink(target: &CStr, path: &CStr) -> Result<(), i32> {
    // SAFETY: both are NUL-terminated.
    match check(unsafe { libc::symlink(target.as_ptr(), path.as_ptr()) }.into()) {
        Err(libc::EEXIST) | Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates an empty regular file to bind a file onto, unless something is already there
/// (for example inside a read-only bind, where creating would fail).
pub fn touch(path: &CStr) -> Result<(), i32> {
    // SAFETY: all-zero is a valid `stat` (integers only).
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `st` is a live, writable stat on the stack.
    let found = unsafe {
        libc::fstatat(
            libc::AT_FDCWD,
            path.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if found == 0 {
        return Ok(());
    }
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: `path` is NUL-terminated; the fd is closed right below.
    let fd = check_int(unsafe { libc::open(path.as_ptr(), flags, 0o444) }.into())?;
    // SAFETY: opened just above, owned by nothing else.
    unsafe { close(fd) };
    Ok(())
}

/// Closes `fd`.
///
/// # Safety
/// The caller owns `fd`, and nothing that believes it owns the number (an `OwnedFd`, a
/// `File`) will use or close it afterwards. In the jail's child that holds for every number
/// it closes: the plan's `OwnedFd`s there are never dropped (the child execs or `_exit`s).
pub unsafe fn close(fd: RawFd) {
    // SAFETY: close only takes a number; errors (EINTR after close) are irrelevant. The
    // caller vouches for ownership (see above).
    unsafe { libc::close(fd) };
}

/// Puts a copy of `old` at `new` (closing what was there); the copy is not close-on-exec.
///
/// # Safety
/// As for [`close`], for whatever descriptor was at `new`.
pub unsafe fn dup2(old: RawFd, new: RawFd) -> Result<(), i32> {
    // SAFETY: dup2 only manipulates the descriptor table; the caller owns `new`'s old
    // descriptor, which this closes.
    check(unsafe { libc::dup2(old, new) }.into()).map(drop)
}

/// Moves `fd` to number `slot`, inherited across exec (no close-on-exec), and closes the
/// original. `dup2` onto itself would keep close-on-exec, hence the special case.
///
/// # Safety
/// As for [`close`], for `fd` and for whatever was at `slot`.
pub unsafe fn place_inheritable(fd: RawFd, slot: RawFd) -> Result<(), i32> {
    if fd == slot {
        // SAFETY: F_SETFD with 0 clears FD_CLOEXEC; no memory is passed.
        return check(unsafe { libc::fcntl(fd, libc::F_SETFD, 0) }.into()).map(drop);
    }
    // SAFETY: the caller owns both numbers (see above).
    unsafe { dup2(fd, slot) }?;
    // SAFETY: as above.
    unsafe { close(fd) };
    Ok(())
}

/// Closes every fd in `first..=last`.
///
/// # Safety
/// As for [`close`], for every descriptor in the range.
pub unsafe fn close_range(first: u32, last: u32) -> Result<(), i32> {
    // SAFETY: close_range only closes descriptors; the caller owns them all.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) }).map(drop)
}

/// The prctl options [`prctl`] makes. Each reads its arguments as integers, never as a
/// pointer the kernel could write through.
const INTEGER_PRCTLS: [c_int; 6] = [
    libc::PR_SET_PDEATHSIG,
    libc::PR_SET_DUMPABLE,
    libc::PR_SET_SECUREBITS,
    libc::PR_SET_NO_NEW_PRIVS,
    libc::PR_CAPBSET_DROP,
    libc::PR_CAP_AMBIENT,
];

/// `prctl(option, arg2, 0, 0, 0)` for an option of [`INTEGER_PRCTLS`]; any other option
/// is refused with EINVAL (its `arg2` might be a pointer).
pub fn prctl(option: c_int, arg2: c_ulong) -> Result<(), i32> {
    if !INTEGER_PRCTLS.contains(&option) {
        return Err(libc::EINVAL);
    }
    // SAFETY: `option` takes integer arguments only (checked above), so the kernel reads
    // `arg2` and the zeros as numbers and touches no memory of ours.
    check(unsafe { libc::prctl(option, arg2, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) }.into())
        .map(drop)
}

pub fn sethostname(name: &CStr) -> Result<(), i32> {
    let bytes = name.to_bytes();
    // SAFETY: the pointer and length describe `name`'s bytes.
    check(unsafe { libc::sethostname(bytes.as_ptr().cast(), bytes.len()) }.into()).map(drop)
}

/// Writes `0` (the calling thread) into the cgroup v1 `tasks` file open as `fd`.
pub fn join_cgroup(fd: RawFd) -> Result<(), i32> {
    loop {
        // SAFETY: writes one byte from a static string.
        let ret = unsafe { libc::write(fd, b"0".as_ptr().cast(), 1) };
        match check(ret as c_long) {
            Ok(_) => return Ok(()),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

pub fn setrlimit(resource: u32, value: u64) -> Result<(), i32> {
    let mut lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // RLIMIT_CPU: SIGXCPU at the limit tells the verdict why the program died; the hard
    // limit a second later (SIGKILL) ends one that ignores SIGXCPU. Never above the
    // current hard limit, which only privilege could raise.
    if resource == libc::RLIMIT_CPU {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `cur` is a valid out pointer on the stack.
        check(unsafe { libc::getrlimit(resource as _, &mut cur) }.into())?;
        lim.rlim_max = value.saturating_add(1).min(cur.rlim_max);
    }
    // SAFETY: `lim` is a valid rlimit on the stack.
    check(unsafe { libc::setrlimit(resource as _, &lim) }.into()).map(drop)
}

/// Sets real, effective and saved ids through the raw syscalls: glibc's wrappers would
/// broadcast the change to other threads with signals and locks.
pub fn set_ids(uid: u32, gid: u32, clear_groups: bool) -> Result<(), i32> {
    if clear_groups {
        // SAFETY: setgroups with size 0 reads no memory.
        check(unsafe { libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<u32>()) })?;
    }
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })?;
    // SAFETY: integer arguments only.
    check(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) }).map(drop)
}

/// `struct __user_cap_header_struct` from linux/capability.h.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

/// `struct __user_cap_data_struct`; version 3 uses two, for capabilities 0–31 and 32–63.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The calling thread's capability header (pid 0), version 3.
fn cap_header() -> CapHeader {
    CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    }
}

/// Empties the effective, permitted and inheritable capability sets.
pub fn capset_empty() -> Result<(), i32> {
    let mut header = cap_header();
    let data = [CapData::default(); 2];
    // SAFETY: version 3 capset reads one header and two data structs, both on the stack.
    check(unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) }).map(drop)
}

/// The calling thread's effective capability set, bit `n` for capability `n`.
pub fn capget_effective() -> Result<u64, i32> {
    let mut header = cap_header();
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 capget writes two data structs, both on the stack, and may write
    // the header's version; both pointers are live for the call.
    check(unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) })?;
    Ok(u64::from(data[1].effective) << 32 | u64::from(data[0].effective))
}

pub fn setsid() -> Result<(), i32> {
    // SAFETY: no arguments.
    check(unsafe { libc::setsid() }.into()).map(drop)
}

/// Reads exactly one byte; `Ok(false)` on end of file.
pub fn read_byte(fd: RawFd) -> Result<bool, i32> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a stack variable.
        let ret = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        match check(ret as c_long) {
            Ok(n) => return Ok(n == 1),
            Err(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Whether the other end of a pipe we read from has been closed (without blocking).
pub fn pipe_hung_up(fd: RawFd) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on the stack, zero timeout.
    let ret = unsafe { libc::poll(&mut pfd, 1, 0) };
    ret < 0 || pfd.revents & (libc::POLLHUP | libc::POLLERR) != 0
}

/// Writes a small fixed-size record in one `write` (atomic for pipes below PIPE_BUF).
pub fn write_all(fd: RawFd, bytes: &[u8]) {
    loop {
        // SAFETY: the pointer and length describe `bytes`.
        let ret = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if ret >= 0 || errno() != libc::EINTR {
            return;
        }
    }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`; only returns on failure.
///
/// # Safety
/// `argv` and `envp` must be NULL-terminated arrays of pointers to NUL-terminated strings
/// that stay alive for the call.
pub unsafe fn execveat_fd(
    fd: RawFd,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> i32 {
    // SAFETY: the empty path is a static C string; argv/envp validity is the caller's
    // contract.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        )
    };
    errno()
}

pub fn exit(code: c_int) -> ! {
    // SAFETY: _exit ends the process without running atexit handlers or flushing stdio
    // buffers that belong to the parent's copy of the address space.
    unsafe { libc::_exit(code) }
}

/// SECBIT_NOROOT, SECBIT_NO_SETUID_FIXUP, SECBIT_NO_CAP_AMBIENT_RAISE, each with its lock,
/// plus SECBIT_KEEP_CAPS_LOCKED (keep-caps itself stays off).
pub const SECUREBITS_LOCKED_DOWN: c_ulong = 0b1110_1111;

/// Drops every capability from the bounding set (up to the kernel's last one: EINVAL).
pub fn drop_bounding_set() -> Result<(), i32> {
    for cap in 0..64 {
        match prctl(libc::PR_CAPBSET_DROP, cap) {
            Ok(()) => {}
            Err(libc::EINVAL) if cap > 0 => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `struct ifreq` with the `ifr_flags` member of the union (40 bytes on 64-bit Linux).
#[repr(C)]
struct IfreqFlags {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// `IFF_UP | IFF_RUNNING` (0x41) as `ifr_flags` holds it.
// The kernel's ifr_flags is a short and both flags are in its low byte: nothing is cut.
#[allow(clippy::cast_possible_truncation)]
const IFF_UP_RUNNING: libc::c_short = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;

/// Brings the loopback interface of the current network namespace up.
pub fn loopback_up() -> Result<(), i32> {
    // SAFETY: plain socket creation; the fd is closed below on every path.
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(errno());
    }
    let mut req = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    req.name[..2].copy_from_slice(b"lo");
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of a valid ifreq.
    let mut ret = unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req as *mut IfreqFlags) };
    if ret == 0 {
        req.flags |= IFF_UP_RUNNING;
        // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
        ret = unsafe { libc::ioctl(sock, libc::SIOCSIFFLAGS, &req as *const IfreqFlags) };
    }
    let result = if ret < 0 { Err(errno()) } else { Ok(()) };
    // SAFETY: the socket was made by this function, owned by nothing else.
    unsafe { close(sock) };
    result
}

/// `sizeof(sigset_t)` in the kernel's ABI (`_NSIG / 8`), which the rt_sig* syscalls insist on.
const KERNEL_SIGSET_BYTES: usize = 8;

/// Every signal back to its default action, and nothing blocked.
///
/// All of 1..=SIGRTMAX (64 on Linux), through the raw syscall: glibc's `signal` and
/// `sigaction` refuse the two realtime signals it reserves for itself (32 and 33) with
/// EINVAL, and an ignored disposition of those survives exec like any other (cargo, for
/// one, starts its children with them ignored).
pub fn reset_signals() -> Result<(), i32> {
    // The kernel's `struct sigaction` with every field zero: SIG_DFL, no flags, no restorer,
    // an empty mask. Four words cover the layout of every architecture.
    let default_action: [c_ulong; 4] = [0; 4];
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the new action points to a zeroed kernel sigaction that outlives the
        // call (SIG_DFL runs no handler code); the old action is not requested; the size is
        // the kernel's sigset_t.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                default_action.as_ptr(),
                std::ptr::null_mut::<c_ulong>(),
                KERNEL_SIGSET_BYTES,
            )
        };
        check(ret)?;
    }
    // SAFETY: all-zero is a valid sigset_t (an array of integers).
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t on the stack; sigemptyset only writes to it.
    unsafe { libc::sigemptyset(&mut set) };
    // SAFETY: `set` is a valid, initialised sigset_t; the old mask is not requested.
    let ret = unsafe { libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut()) };
    check(ret.into()).map(drop)
}

/// Writes `bytes` to an existing file (a sysctl) in one `write`.
pub fn write_file(path: &CStr, bytes: &[u8]) -> Result<(), i32> {
    // SAFETY: `path` is NUL-terminated; the fd is closed below on every path.
    let fd =
        check_int(unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) }.into())?;
    // SAFETY: the pointer and length describe `bytes`.
    let ret = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
    let result = if ret < 0 { Err(errno()) } else { Ok(()) };
    // SAFETY: opened just above, owned by nothing else.
    unsafe { close(fd) };
    result
}
