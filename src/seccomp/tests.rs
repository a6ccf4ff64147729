//! Concern: the seccomp tests — what installed filters do in a forked child (default
//! actions, argument conditions, the runner's exec, x32 and i386, stacking, the traced
//! variant without a tracer), what compiling reports, and the differential test of every
//! program against the reference forms (`differential.rs`).

use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};

use nix::errno::Errno;

use super::bpf::X32_SYSCALL_BIT;
use super::*;
use crate::profile::{ArgCondition, CmpOp, Phase, Rule};

mod compiled;
mod differential;
pub(crate) mod interp;
mod reference;

/// How a forked test child ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
}

/// Ends the child if `f` panics, so a failing child never runs the rest of the test
/// harness in the forked copy of the test process.
struct ExitOnUnwind;

impl Drop for ExitOnUnwind {
    fn drop(&mut self) {
        // SAFETY: _exit ends the forked child at once; nothing of it is shared.
        unsafe { libc::_exit(101) }
    }
}

/// Forks; the child runs `f` and `_exit`s with its result. `f` must only make raw
/// syscalls: the test process has other threads, so the child may not allocate.
pub(crate) fn run_in_child(f: impl FnOnce() -> i32) -> Exit {
    // SAFETY: the child only runs `f` (raw syscalls, no allocation, see above) and then
    // `_exit`s, which is what POSIX allows after fork in a multi-threaded process.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", Errno::last());
    if pid == 0 {
        let guard = ExitOnUnwind;
        let code = f();
        std::mem::forget(guard);
        // SAFETY: ends the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) }
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child forked above; `status` is a valid out pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        assert_eq!(Errno::last(), Errno::EINTR, "waitpid");
    }
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else {
        Exit::Signal(libc::WTERMSIG(status))
    }
}

/// Sets no_new_privs in the calling (child) process: required to install a filter or
/// restrict with Landlock without CAP_SYS_ADMIN.
pub(crate) fn no_new_privs() -> bool {
    // SAFETY: prctl with integer arguments only; affects the calling process alone.
    unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 }
}

/// `errno` of the last failed call in the child, without allocating.
pub(crate) fn errno() -> i32 {
    Errno::last_raw()
}

pub(crate) fn rule(names: &[&str], args: &[ArgCondition]) -> Rule {
    Rule {
        syscalls: names.iter().map(|s| s.to_string()).collect(),
        args: args.to_vec(),
        comment: None,
    }
}

pub(crate) fn profile(action: Action, errno: i32, allow: Vec<Rule>) -> Seccomp {
    Seccomp {
        default_action: action,
        errno,
        load: Phase { allow },
        serve: Phase { allow: Vec::new() },
    }
}

fn arg(index: u8, op: CmpOp, value: u64) -> ArgCondition {
    arg_mask(index, op, value, None)
}

pub(crate) fn arg_mask(index: u8, op: CmpOp, value: u64, mask: Option<u64>) -> ArgCondition {
    ArgCondition {
        index,
        op,
        value,
        mask,
    }
}

/// The generic ioctl numbers, shared by x86_64 and aarch64.
const TCGETS: u64 = 0x5401;
const FIONREAD: u64 = 0x541B;

/// An errno no syscall in these tests returns by itself, so seeing it proves the filter.
const FILTER_ERRNO: i32 = libc::ENOTRECOVERABLE;

fn load(seccomp: &Seccomp, exec_fd: Option<RawFd>) -> SeccompProgram {
    compile(seccomp, SeccompPhase::Load, exec_fd).expect("compile")
}

/// What a syscall the profile does not allow meets, per default action. `getpid` is
/// allowed, `getppid` is not.
#[test]
fn default_actions_answer_a_forbidden_syscall() {
    // (action, how the child ends: 0 = getppid failed with the profile's errno, 1 = it ran)
    let cases = [
        (Action::KillProcess, Exit::Signal(libc::SIGSYS)),
        (Action::Trap, Exit::Signal(libc::SIGSYS)),
        (Action::Errno, Exit::Code(0)),
        (Action::Log, Exit::Code(1)),
    ];
    for (action, want) in cases {
        let p = profile(
            action,
            FILTER_ERRNO,
            vec![rule(&["exit_group", "getpid"], &[])],
        );
        let prog = load(&p, None);
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            // SAFETY: getpid/getppid take no arguments and touch no memory.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 3;
            }
            // SAFETY: as above; kill_process and trap end the process here.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            match r {
                -1 if errno() == FILTER_ERRNO => 0,
                r if r > 0 => 1,
                _ => 4,
            }
        });
        assert_eq!(end, want, "{action:?}");
    }
}

/// Why the traced variant is only installed under a tracer: without one, the kernel
/// answers `RET_TRACE` with ENOSYS and the program goes on.
#[test]
fn traced_variant_without_a_tracer_is_only_enosys() {
    let p = profile(
        Action::KillProcess,
        libc::EPERM,
        vec![rule(&["exit_group", "clone3"], &[])],
    );
    let prog = load(&p, None);
    let end = run_in_child(|| {
        if !no_new_privs() || prog.install_for(true).is_err() {
            return 2;
        }
        // SAFETY: getppid takes no arguments.
        if unsafe { libc::syscall(libc::SYS_getppid) } != -1 || errno() != libc::ENOSYS {
            return 3;
        }
        // SAFETY: clone3 with a null pointer never reads memory here: the filter
        // answers before the kernel looks at the arguments.
        let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0) };
        if r != -1 || errno() != libc::ENOSYS {
            return 4;
        }
        0
    });
    assert_eq!(end, Exit::Code(0));
    // install_for(false) is the plain kill.
    let end = run_in_child(|| {
        if !no_new_privs() || prog.install_for(false).is_err() {
            return 2;
        }
        // SAFETY: getppid takes no arguments; the filter kills here.
        unsafe { libc::syscall(libc::SYS_getppid) };
        3
    });
    assert_eq!(end, Exit::Signal(libc::SIGSYS));
}

/// FIONREAD with a byte count; the filter answers with FILTER_ERRNO.
fn ioctl(fd: RawFd, request: u64) -> Result<(), i32> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is larger than both `struct termios` and `int`, the only things
    // these requests write.
    let r = unsafe { libc::syscall(libc::SYS_ioctl, fd, request, buf.as_mut_ptr()) };
    if r == 0 { Ok(()) } else { Err(errno()) }
}

/// An ioctl request and what it gets.
type Request = (u64, Result<(), i32>);

/// Argument conditions on `ioctl(pipe, request)`: each case allows `ioctl` under one
/// condition on the request, and lists what requests then get.
#[test]
fn arg_conditions_decide_on_the_bits_the_kernel_reads() {
    let masked = arg_mask(1, CmpOp::MaskedEq, 0x5400, Some(0xffff_ff00));
    let cases: [(ArgCondition, &[Request]); 3] = [
        (
            arg(1, CmpOp::Eq, TCGETS),
            &[
                (TCGETS, Err(libc::ENOTTY)),
                (FIONREAD, Err(FILTER_ERRNO)),
                // The kernel reads `cmd` as 32 bits: garbage above them is still TCGETS
                // to it, and the filter compares the same 32 bits.
                (TCGETS | 1 << 32, Err(libc::ENOTTY)),
            ],
        ),
        (
            arg(1, CmpOp::Ne, FIONREAD),
            &[
                // A 64-bit comparison would see "not FIONREAD" here while the kernel ran
                // FIONREAD (and succeeded on the pipe).
                (FIONREAD | 1 << 32, Err(FILTER_ERRNO)),
                (TCGETS, Err(libc::ENOTTY)),
            ],
        ),
        (
            masked,
            &[
                (TCGETS, Err(libc::ENOTTY)),
                (FIONREAD, Ok(())),
                (TCGETS | 1 << 32, Err(libc::ENOTTY)),
                (TCGETS | 0x8000_0000, Err(FILTER_ERRNO)),
            ],
        ),
    ];
    for (condition, requests) in cases {
        let p = profile(
            Action::Errno,
            FILTER_ERRNO,
            vec![rule(&["exit_group"], &[]), rule(&["ioctl"], &[condition])],
        );
        let prog = load(&p, None);
        let (r, _w) = nix::unistd::pipe().expect("pipe");
        let fd = r.as_raw_fd();
        let end = run_in_child(|| {
            if !no_new_privs() || prog.install().is_err() {
                return 2;
            }
            for (i, (request, want)) in requests.iter().enumerate() {
                if ioctl(fd, *request) != *want {
                    return 3 + i32::try_from(i).unwrap_or(i32::MAX - 3);
                }
            }
            0
        });
        assert_eq!(end, Exit::Code(0), "{condition:?}");
    }
}

/// What `execveat` needs, prepared before fork.
struct ExecArgs {
    _strings: Vec<CString>,
    argv: Vec<*const libc::c_char>,
    envp: [*const libc::c_char; 1],
    empty: CString,
}

impl ExecArgs {
    fn new(argv0: &str) -> ExecArgs {
        let strings = vec![CString::new(argv0).expect("argv0")];
        let argv = vec![strings[0].as_ptr(), std::ptr::null()];
        ExecArgs {
            _strings: strings,
            argv,
            envp: [std::ptr::null()],
            empty: CString::default(),
        }
    }

    /// Returns the errno; on success the process image is gone.
    pub(crate) fn execveat(&self, fd: RawFd, flags: libc::c_int) -> i32 {
        // SAFETY: every pointer refers to NUL-terminated strings / NULL-terminated
        // arrays owned by `self`, alive for the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                self.empty.as_ptr(),
                self.argv.as_ptr(),
                self.envp.as_ptr(),
                flags,
            )
        };
        errno()
    }
}

pub(crate) fn true_binary() -> Option<std::path::PathBuf> {
    ["/usr/bin/true", "/bin/true"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn exec_fd_rule_allows_execveat_of_that_fd_only() {
    let Some(bin) = true_binary() else {
        panic!("no /usr/bin/true to exec");
    };
    let target = std::fs::File::open(&bin).expect("open true");
    let other = std::fs::File::open(&bin).expect("open true again");
    let (fd, other_fd) = (target.as_raw_fd(), other.as_raw_fd());
    // What the dynamic loader and `true` itself need once exec'd under the filter.
    let base = rule(
        &[
            "@basic-io",
            "@memory",
            "@file-read",
            "@process-info",
            "@signals",
            "@threads",
            "@time",
        ],
        &[],
    );
    let p = profile(Action::Errno, FILTER_ERRNO, vec![base]);
    let prog = load(&p, Some(fd));
    let args = ExecArgs::new("true");
    let path = CString::new(bin.as_os_str().as_encoded_bytes()).expect("path");
    let end = run_in_child(|| {
        if !no_new_privs() || prog.install().is_err() {
            return 2;
        }
        if args.execveat(other_fd, libc::AT_EMPTY_PATH) != FILTER_ERRNO {
            return 3;
        }
        let nofollow = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW;
        if args.execveat(fd, nofollow) != FILTER_ERRNO {
            return 4;
        }
        // SAFETY: NUL-terminated path and NULL-terminated argv/envp owned by the parent
        // frame, alive for the call.
        unsafe { libc::execve(path.as_ptr(), args.argv.as_ptr(), args.envp.as_ptr()) };
        if errno() != FILTER_ERRNO {
            return 5;
        }
        args.execveat(fd, libc::AT_EMPTY_PATH);
        6
    });
    // `true` ran under the filter and exited 0.
    assert_eq!(end, Exit::Code(0));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x32_syscalls_are_killed_even_when_the_default_is_errno() {
    let p = profile(
        Action::Errno,
        FILTER_ERRNO,
        vec![rule(&["exit_group", "getpid"], &[])],
    );
    let prog = load(&p, None);
    let end = run_in_child(|| {
        if !no_new_privs() || prog.install().is_err() {
            return 2;
        }
        // SAFETY: x32 getpid takes no arguments; the filter kills before it runs.
        unsafe { libc::syscall(libc::SYS_getpid | X32_SYSCALL_BIT as libc::c_long) };
        3
    });
    assert_eq!(end, Exit::Signal(libc::SIGSYS));
}

#[cfg(target_arch = "x86_64")]
#[test]
fn i386_syscalls_are_killed_by_the_arch_check() {
    let p = profile(Action::Log, libc::EPERM, vec![rule(&["exit_group"], &[])]);
    let prog = load(&p, None);
    let end = run_in_child(|| {
        if !no_new_privs() || prog.install().is_err() {
            return 2;
        }
        let mut nr: u32 = 20; // getpid in the i386 table
        // SAFETY: `int 0x80` enters the kernel's i386 syscall path with getpid, which
        // takes no arguments; the filter kills the process before it runs.
        unsafe { std::arch::asm!("int 0x80", inout("eax") nr, options(nostack)) };
        let _ = nr;
        3
    });
    match end {
        Exit::Signal(libc::SIGSYS) => {}
        // The kernel was booted without ia32 emulation: no i386 syscalls to filter.
        Exit::Signal(libc::SIGSEGV) => eprintln!("skip: ia32 emulation is off"),
        other => panic!("i386 getpid was not killed: {other:?}"),
    }
}

#[test]
fn serve_filter_stacks_on_load_and_only_tightens() {
    let mut p = profile(
        Action::Errno,
        FILTER_ERRNO,
        vec![rule(&["exit_group", "getppid"], &[])],
    );
    p.serve.allow = vec![rule(&["exit_group", "getpid"], &[])];
    let without = load(&p, None);
    // Installing the second filter is itself a syscall the first must allow.
    let extras = Extras {
        allow_stacking: true,
        ..Extras::default()
    };
    let load_prog = compile_with(&p, SeccompPhase::Load, extras).expect("load");
    let serve = compile(&p, SeccompPhase::Serve, None).expect("serve");
    let end = run_in_child(|| {
        if !no_new_privs() || load_prog.install().is_err() || serve.install().is_err() {
            return 2;
        }
        // SAFETY: getppid/getpid take no arguments.
        if unsafe { libc::syscall(libc::SYS_getppid) } != -1 || errno() != FILTER_ERRNO {
            return 3;
        }
        // Allowed by serve but never by load: the stricter filter wins.
        // SAFETY: as above.
        if unsafe { libc::syscall(libc::SYS_getpid) } != -1 || errno() != FILTER_ERRNO {
            return 4;
        }
        0
    });
    assert_eq!(end, Exit::Code(0));
    let end = run_in_child(|| {
        if !no_new_privs() || without.install().is_err() {
            return 2;
        }
        match serve.install() {
            Err(e) if e as i32 == FILTER_ERRNO => 0,
            _ => 3,
        }
    });
    assert_eq!(end, Exit::Code(0), "stacking without allow_stacking");
}
