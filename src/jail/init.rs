//! The jail's init: PID 1 of the jail's PID namespace, forked off by the child at step 26.
//!
//! It reaps every process of the jail and reports how the target ended. Under
//! `default_action: kill_process` it is also the tracer of every process in the jail: the
//! target's filter then says `SECCOMP_RET_TRACE` instead of `SECCOMP_RET_KILL_PROCESS`, so
//! a refused syscall stops its caller in a seccomp stop; the init reads the syscall number
//! and architecture, reports them, and ends the jail. The syscall never runs: a tracee
//! killed in a seccomp stop skips it, and the init never resumes one. Tracing costs nothing
//! per allowed syscall (no syscall stops), only a stop per clone, fork and signal.
//!
//! Like the rest of the child (see `child.rs`) it runs on a copy of the supervisor's
//! address space: raw syscalls on the stack only, no allocation.

use std::os::fd::RawFd;

use super::child::ChildFds;
use super::handover::{Decision, Switch};
use super::plan::Handover;
use super::sys;
use crate::seccomp::SeccompPhase;

/// Exit status of an init that could not do its job (the record, not this, is what counts).
const INIT_FAILED: libc::c_int = 125;

// ptrace(2) requests and options (linux/ptrace.h), as the raw syscall takes them.
const PTRACE_CONT: libc::c_long = 7;
const PTRACE_SEIZE: libc::c_long = 0x4206;
const PTRACE_LISTEN: libc::c_long = 0x4208;
const PTRACE_GET_SYSCALL_INFO: libc::c_long = 0x420e;
const PTRACE_O_TRACEFORK: libc::c_ulong = 0x02;
const PTRACE_O_TRACEVFORK: libc::c_ulong = 0x04;
const PTRACE_O_TRACECLONE: libc::c_ulong = 0x08;
const PTRACE_O_TRACESECCOMP: libc::c_ulong = 0x80;
const PTRACE_O_EXITKILL: libc::c_ulong = 0x10_0000;
const PTRACE_EVENT_SECCOMP: i32 = 7;
const PTRACE_EVENT_STOP: i32 = 128;
const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

/// Every new thread and process is traced from its first instruction (so none can meet
/// `RET_TRACE` untraced, which would only give it ENOSYS); seccomp stops are reported; and
/// should the init ever die, the kernel kills every tracee.
const OPTIONS: libc::c_ulong = PTRACE_O_TRACESECCOMP
    | PTRACE_O_EXITKILL
    | PTRACE_O_TRACECLONE
    | PTRACE_O_TRACEFORK
    | PTRACE_O_TRACEVFORK;

/// The handshake bytes: the target says it is ready to be traced; the init answers whether
/// it traces it.
const READY: u8 = b'R';
const TRACED: u8 = b'T';
const NOT_TRACED: u8 = b'K';

/// How refused syscalls are named in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// Not asked for: no seccomp filter, or a default action other than `kill_process`.
    NotWanted,
    /// The init traces every process of the jail and names the refused syscall.
    Ptrace,
    /// Tracing was wanted but `PTRACE_SEIZE` failed with this errno (Yama, an LSM, a
    /// seccomp filter around plugjail itself): the plain `kill_process` filter is in force
    /// instead, and a kill cannot say which syscall it was.
    Refused(i32),
}

/// A syscall a traced filter refused, as the init read it at the seccomp stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Violation {
    /// The syscall number as the caller passed it (`None` if it could not be read).
    pub nr: Option<u32>,
    /// `AUDIT_ARCH_*` of the syscall table it was made through.
    pub arch: u32,
    /// `SECCOMP_RET_DATA` of the filter's verdict: which check refused it
    /// ([`crate::seccomp::TraceData`]); 0 when the stop did not come from plugjail's own
    /// filters (a filter the program installed itself answered).
    pub data: u32,
    /// The phase the jail was in: plugin mode's serve phase begins at the stub's switch
    /// (`handover.rs`); everything else, and all of `exec`, is the load phase.
    pub phase: SeccompPhase,
    /// The six argument registers as the caller set them.
    pub args: [u64; 6],
}

/// What the init reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// The target ended with this wait status.
    Ended(i32),
    /// A process of the jail made a refused syscall; the init ended the jail.
    Violation(Violation),
    /// Plugin mode: the channel could not be handed to the stub at its switch (this errno
    /// from `sendmsg`: the stub's end of the socket was closed or replaced, which only the
    /// plugin's code does); the init ended the jail.
    HandoverFailed(i32),
}

/// The init's record on the status pipe: what happened and how syscalls were named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    pub report: Report,
    pub naming: Naming,
}

/// Size of [`Record`] on the pipe: eight native-endian 32-bit words (kind, wait status or
/// errno, syscall number, arch, filter data, naming, seize errno, phase), then the six
/// 64-bit arguments. Well below `PIPE_BUF`, so it is written at once.
pub const RECORD_LEN: usize = 8 * 4 + 6 * 8;

const KIND_ENDED: u32 = 1;
const KIND_VIOLATION: u32 = 2;
const KIND_VIOLATION_UNREAD: u32 = 3;
const KIND_HANDOVER_FAILED: u32 = 4;

// The signed words (wait status, errnos) travel as their bits: `cast_unsigned` in
// `encode`, `cast_signed` back in `decode`.
impl Record {
    pub fn encode(&self) -> [u8; RECORD_LEN] {
        let mut w = [0u32; 8];
        let mut args = [0u64; 6];
        match self.report {
            Report::Ended(status) => {
                w[0] = KIND_ENDED;
                w[1] = status.cast_unsigned();
            }
            Report::HandoverFailed(errno) => {
                w[0] = KIND_HANDOVER_FAILED;
                w[1] = errno.cast_unsigned();
            }
            Report::Violation(v) => {
                w[0] = if v.nr.is_some() {
                    KIND_VIOLATION
                } else {
                    KIND_VIOLATION_UNREAD
                };
                w[2] = v.nr.unwrap_or(0);
                w[3] = v.arch;
                w[4] = v.data;
                w[7] = match v.phase {
                    SeccompPhase::Load => 1,
                    SeccompPhase::Serve => 2,
                };
                args = v.args;
            }
        }
        (w[5], w[6]) = match self.naming {
            Naming::NotWanted => (0, 0),
            Naming::Ptrace => (1, 0),
            Naming::Refused(errno) => (2, errno.cast_unsigned()),
        };
        let mut out = [0u8; RECORD_LEN];
        let (words, rest) = out.split_at_mut(32);
        for (chunk, word) in words.chunks_exact_mut(4).zip(w) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        for (chunk, arg) in rest.chunks_exact_mut(8).zip(args) {
            chunk.copy_from_slice(&arg.to_ne_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8; RECORD_LEN]) -> Option<Record> {
        let (words, rest) = bytes.split_at(32);
        let mut w = [0u32; 8];
        for (word, chunk) in w.iter_mut().zip(words.chunks_exact(4)) {
            *word = u32::from_ne_bytes(chunk.try_into().ok()?);
        }
        let mut args = [0u64; 6];
        for (arg, chunk) in args.iter_mut().zip(rest.chunks_exact(8)) {
            *arg = u64::from_ne_bytes(chunk.try_into().ok()?);
        }
        let naming = match w[5] {
            0 => Naming::NotWanted,
            1 => Naming::Ptrace,
            2 => Naming::Refused(w[6].cast_signed()),
            _ => return None,
        };
        let phase = if w[7] == 2 {
            SeccompPhase::Serve
        } else {
            SeccompPhase::Load
        };
        let violation = |nr| {
            Report::Violation(Violation {
                nr,
                arch: w[3],
                data: w[4],
                phase,
                args,
            })
        };
        let report = match w[0] {
            KIND_ENDED => Report::Ended(w[1].cast_signed()),
            KIND_HANDOVER_FAILED => Report::HandoverFailed(w[1].cast_signed()),
            KIND_VIOLATION => violation(Some(w[2])),
            KIND_VIOLATION_UNREAD => violation(None),
            _ => return None,
        };
        Some(Record { report, naming })
    }
}

/// The target's half of the handshake (step 26b): become traceable, tell the init, and
/// learn whether it now traces us. Until the answer comes the target has no filter and
/// has not run a single instruction of the program, so there is nothing to race: the init
/// seizes a process that is blocked in `read`.
///
/// Returns whether the target is traced; `Err(errno)` if the init is gone or the socket
/// failed.
pub fn await_tracer(sock: RawFd, trace: bool) -> Result<bool, i32> {
    if trace {
        // Changing ids at step 5 made us non-dumpable, and ptrace refuses to attach to a
        // non-dumpable process without CAP_SYS_PTRACE, which the init no longer has. The
        // program becomes dumpable at exec anyway (a plain exec resets it).
        sys::prctl(libc::PR_SET_DUMPABLE, 1)?;
    }
    sys::write_all(sock, &[READY]);
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into a stack variable.
        let n = unsafe { libc::read(sock, (&mut byte as *mut u8).cast(), 1) };
        match n {
            1 => return Ok(byte == TRACED),
            0 => return Err(libc::EPIPE),
            _ if errno() == libc::EINTR => continue,
            _ => return Err(errno()),
        }
    }
}

/// A connected pair of close-on-exec stream sockets for the handshake.
pub fn handshake_pair() -> Result<(RawFd, RawFd), i32> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: socketpair writes two descriptors into the array on the stack.
    let ret = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if ret < 0 {
        Err(errno())
    } else {
        Ok((fds[0], fds[1]))
    }
}

/// The jail's init; never returns. `sock` is the init's end of the handshake; `trace`
/// says whether to trace the target (the plan's filter has a traced variant, or plugin
/// mode's serve gate needs the init's decisions); `handover` is plugin mode's channel
/// handover and gate.
pub fn run(
    target: libc::pid_t,
    fds: &ChildFds,
    sock: RawFd,
    trace: bool,
    handover: Option<&Handover>,
) -> ! {
    // Only the target reports setup failures from here on, and only it execs the memfd.
    // SAFETY: the init is the jail's child process, which owns these numbers and never
    // drops an OwnedFd (it `_exit`s); nothing in it uses them after this.
    unsafe { sys::close(fds.err_w) };
    // SAFETY: as above.
    unsafe { sys::close(fds.memfd) };
    // Not dumpable: the target (same uid) cannot open /proc/1/mem or ptrace the init.
    let _ = sys::prctl(libc::PR_SET_DUMPABLE, 0);

    let (naming, gone) = handshake(target, sock, trace);
    // Plugin mode keeps the socket: the stub's channel goes through it (at once when the
    // serve gate is not in force, else at the stub's switch). A target that is already
    // gone (killed from outside before the handshake) gets nothing: its ending is
    // reported below, not blamed on a handover it never asked for.
    let mut switch = match handover {
        Some(_) if gone => {
            // SAFETY: the init's end of the handshake socket, done with.
            unsafe { sys::close(sock) };
            None
        }
        // Sent at once when there is no gate: the target has not exec'd the stub yet, so
        // no plugin code can have closed its end; a failed send means it died.
        Some(h) => Switch::start(h, sock, naming == Naming::Ptrace).ok(),
        None => {
            // SAFETY: the init's end of the handshake socket, done with (exec mode).
            unsafe { sys::close(sock) };
            None
        }
    };

    loop {
        let (pid, status) = match wait_all() {
            Ok(r) => r,
            Err(_) => sys::exit(INIT_FAILED),
        };
        if libc::WIFEXITED(status) || libc::WIFSIGNALED(status) {
            if pid == target {
                report(fds, Report::Ended(status), naming);
                sys::exit(0);
            }
            continue;
        }
        if !libc::WIFSTOPPED(status) {
            continue;
        }
        // Only tracees stop visibly (no WUNTRACED): decide how to let this one go on.
        let sig = libc::WSTOPSIG(status);
        match status >> 16 {
            // The tracee is stopped before the syscall runs. Either the serve gate lets
            // it go on (or makes it fail), or it is refused: record it, then kill —
            // SIGKILL skips the syscall, and the init's exit takes the whole PID namespace
            // with it.
            PTRACE_EVENT_SECCOMP => {
                // Killed while stopped (from outside the jail): its death is reported
                // when it is reaped, not read as a syscall it never finished asking for.
                let Some(stop) = seccomp_stop(pid) else {
                    continue;
                };
                let decision = match switch.as_mut() {
                    Some(s) => s.decide(pid, stop),
                    None => Decision::Refuse(Violation {
                        data: own_data(stop.data),
                        ..stop
                    }),
                };
                match decision {
                    Decision::Continue => {
                        let _ = restart(PTRACE_CONT, pid, 0);
                    }
                    Decision::Skip { ret, signal } => {
                        if super::handover::skip_syscall(pid, ret).is_err() {
                            let v = Violation {
                                phase: SeccompPhase::Serve,
                                ..stop
                            };
                            end_jail(fds, pid, Report::Violation(v), naming);
                        }
                        // A signal given to PTRACE_CONT at an event stop is not
                        // delivered; queued to the thread, it is, when the call returns.
                        if signal != 0 {
                            // SAFETY: tkill takes no pointers; `pid` is our stopped tracee.
                            unsafe { libc::syscall(libc::SYS_tkill, pid, signal) };
                        }
                        let _ = restart(PTRACE_CONT, pid, 0);
                    }
                    Decision::Refuse(v) => end_jail(fds, pid, Report::Violation(v), naming),
                    Decision::HandoverFailed(errno) => {
                        end_jail(fds, pid, Report::HandoverFailed(errno), naming)
                    }
                }
            }
            // A group stop (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU took effect): stay stopped
            // like an untraced process until SIGCONT, without holding it in a ptrace stop.
            PTRACE_EVENT_STOP if is_stop_signal(sig) => {
                if restart(PTRACE_LISTEN, pid, 0).is_err() {
                    let _ = restart(PTRACE_CONT, pid, 0);
                }
            }
            // Signal-delivery stop: deliver the signal, as if nobody were tracing.
            0 => {
                let _ = restart(PTRACE_CONT, pid, sig);
            }
            // Clone, fork and vfork events, a new tracee's first stop, the stop after
            // SIGCONT ends a listened group stop: nothing to deliver.
            _ => {
                let _ = restart(PTRACE_CONT, pid, 0);
            }
        }
    }
}

/// Writes `report`, kills `pid` (a stopped tracee or the target), and exits: the PID
/// namespace ends with the init.
fn end_jail(fds: &ChildFds, pid: libc::pid_t, what: Report, naming: Naming) -> ! {
    report(fds, what, naming);
    // SAFETY: kill takes no pointers; `pid` is a process of the jail.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    sys::exit(0)
}

/// The data of a stop outside plugin mode: the gate's values there can only come from a
/// filter the program installed itself, which the verdict says as data 0.
fn own_data(data: u32) -> u32 {
    use crate::seccomp::TraceData;
    match TraceData::from_u32(data) {
        Some(TraceData::Gate | TraceData::Switch) | None => 0,
        Some(_) => data,
    }
}

/// Seizes the target if asked to and tells it whether it is traced. Also says whether the
/// target is gone (its end of the socket closed before it said it was traceable, or it
/// vanished before the seize): it was killed from outside, and its ending is all there is
/// to report.
fn handshake(target: libc::pid_t, sock: RawFd, trace: bool) -> (Naming, bool) {
    // The target says when it is traceable; EOF means it died (its end closes): report
    // whatever happens through the wait loop.
    let mut byte = 0u8;
    let said = loop {
        // SAFETY: reads at most one byte into a stack variable.
        let n = unsafe { libc::read(sock, (&mut byte as *mut u8).cast(), 1) };
        if n >= 0 || errno() != libc::EINTR {
            break n == 1;
        }
    };
    if !said {
        return (Naming::NotWanted, true);
    }
    let naming = if !trace {
        Naming::NotWanted
    } else {
        // SAFETY: PTRACE_SEIZE takes the options as `data` and no pointers.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_ptrace,
                PTRACE_SEIZE,
                target,
                0 as libc::c_ulong,
                OPTIONS,
            )
        };
        match (ret, errno()) {
            (0, _) => Naming::Ptrace,
            // The kernel refuses to attach to a process that is exiting (EPERM) or gone
            // (ESRCH): not a refusal of tracing, a jail killed from outside.
            _ if exited(target) => return (Naming::NotWanted, true),
            (_, e) => Naming::Refused(e),
        }
    };
    let answer = if naming == Naming::Ptrace {
        TRACED
    } else {
        NOT_TRACED
    };
    sys::write_all(sock, &[answer]);
    (naming, false)
}

/// Whether the target has ended (without reaping it: the wait loop reports it).
fn exited(target: libc::pid_t) -> bool {
    // SAFETY: all-zero is a valid siginfo_t.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`; WNOWAIT leaves the child waitable.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            target.cast_unsigned(),
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    // SAFETY: waitid filled `info` (si_pid stays 0 when no child had changed state).
    r == 0 && unsafe { info.si_pid() } == target
}

fn report(fds: &ChildFds, report: Report, naming: Naming) {
    sys::write_all(fds.status_w, &Record { report, naming }.encode());
}

fn is_stop_signal(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// `struct ptrace_syscall_info` (linux/ptrace.h) with the `seccomp` member of the union.
#[repr(C)]
struct SyscallInfo {
    op: u8,
    _pad: [u8; 3],
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    nr: u64,
    args: [u64; 6],
    ret_data: u32,
    _pad2: u32,
}

/// The syscall a tracee in a seccomp stop is making, as a violation of the load phase
/// (the serve gate corrects the phase); None when the tracee is gone (ESRCH: it was killed
/// while stopped).
fn seccomp_stop(pid: libc::pid_t) -> Option<Violation> {
    let mut info = SyscallInfo {
        op: 0,
        _pad: [0; 3],
        arch: 0,
        instruction_pointer: 0,
        stack_pointer: 0,
        nr: 0,
        args: [0; 6],
        ret_data: 0,
        _pad2: 0,
    };
    // SAFETY: the kernel writes at most `size_of::<SyscallInfo>()` bytes into `info`.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_ptrace,
            PTRACE_GET_SYSCALL_INFO,
            pid,
            std::mem::size_of::<SyscallInfo>(),
            &mut info as *mut SyscallInfo,
        )
    };
    if ret < 0 && errno() == libc::ESRCH {
        return None;
    }
    if ret <= 0 || info.op != PTRACE_SYSCALL_INFO_SECCOMP {
        return Some(Violation {
            nr: None,
            arch: 0,
            data: 0,
            phase: SeccompPhase::Load,
            args: [0; 6],
        });
    }
    // Syscall numbers are 32-bit in every table: seccomp_data.nr is an int, which the
    // kernel widens into this u64 field. Keeping the low half gives it back.
    #[allow(clippy::cast_possible_truncation)]
    let nr = info.nr as u32;
    Some(Violation {
        nr: Some(nr),
        arch: info.arch,
        data: info.ret_data,
        phase: SeccompPhase::Load,
        args: info.args,
    })
}

/// `ptrace(request, pid, 0, sig)` for the restarting requests.
fn restart(request: libc::c_long, pid: libc::pid_t, sig: i32) -> Result<(), i32> {
    let sig = libc::c_ulong::try_from(sig).map_err(|_| libc::EINVAL)?;
    // SAFETY: PTRACE_CONT / PTRACE_LISTEN take a signal number as `data` and no pointers.
    let ret = unsafe { libc::syscall(libc::SYS_ptrace, request, pid, 0 as libc::c_ulong, sig) };
    if ret < 0 { Err(errno()) } else { Ok(()) }
}

/// `wait4(-1, __WALL)`: any child or tracee, whatever its exit signal (threads and
/// `clone` children with no SIGCHLD included); returns its pid and wait status.
fn wait_all() -> Result<(libc::pid_t, libc::c_int), i32> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: `status` is a valid out pointer; no rusage is requested.
        let ret = unsafe { libc::wait4(-1, &mut status, libc::__WALL, std::ptr::null_mut()) };
        if ret >= 0 {
            return Ok((ret, status));
        }
        if errno() != libc::EINTR {
            return Err(errno());
        }
    }
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let records = [
            Record {
                report: Report::Ended(libc::SIGSYS),
                naming: Naming::Refused(libc::EPERM),
            },
            Record {
                report: Report::Ended(3 << 8),
                naming: Naming::NotWanted,
            },
            Record {
                report: Report::Violation(Violation {
                    nr: Some(101),
                    arch: 0xc000_003e,
                    data: 1,
                    phase: SeccompPhase::Serve,
                    args: [1, 2, 3, u64::MAX, 5, 0x5421],
                }),
                naming: Naming::Ptrace,
            },
            Record {
                report: Report::Violation(Violation {
                    nr: None,
                    arch: 0,
                    data: 0,
                    phase: SeccompPhase::Load,
                    args: [0; 6],
                }),
                naming: Naming::Ptrace,
            },
            Record {
                report: Report::HandoverFailed(libc::EPIPE),
                naming: Naming::Ptrace,
            },
        ];
        for r in records {
            assert_eq!(Record::decode(&r.encode()), Some(r));
        }
        assert_eq!(Record::decode(&[0xff; RECORD_LEN]), None);
    }

    #[test]
    fn syscall_info_has_the_kernel_layout() {
        // 24 bytes of header, then nr, six args and ret_data, padded to 8.
        assert_eq!(std::mem::size_of::<SyscallInfo>(), 88);
        assert_eq!(std::mem::offset_of!(SyscallInfo, nr), 24);
        assert_eq!(std::mem::offset_of!(SyscallInfo, ret_data), 80);
    }
}
