//! The init's half of plugin mode's serve phase (docs/architecture.md, "The serve phase").
//!
//! The stub never holds its channel while the plugin loads. The init keeps the two channel
//! descriptors and hands them over through the handshake socket when the stub asks for
//! them with `recvmsg` — the *switch*. With the serve gate in force (the jail traces, see
//! `seccomp/gate.rs`), that `recvmsg` stops in the init before it runs, and from then on
//! the jail is serving: a syscall the gate stops gets the profile's default action instead
//! of being let through. Nothing the plugin does in the stub's address space can move the
//! switch, skip it, or get the channel without it: the init decides, from outside.
//!
//! A gate stop is only trusted while the stopped thread carries no filter but the jail's
//! (its `Seccomp_filters` count): a filter the plugin stacked itself could otherwise answer
//! with the gate's data and have the init let a syscall through that the load filter
//! refuses.
//!
//! Runs in the init (child side): raw syscalls on the stack, no allocation.

use std::os::fd::RawFd;

use super::init::Violation;
use super::plan::Handover;
use super::sys;
use crate::seccomp::bpf::AUDIT_ARCH_NATIVE;
use crate::seccomp::{SeccompPhase, TraceData};

/// What a syscall the serve gate stops gets once the jail serves: the profile's default
/// action, carried out by the init.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateAction {
    /// Named violation; the jail ends (`kill_process`).
    Kill,
    /// The syscall fails with this errno and does not run (`errno`).
    Errno(i32),
    /// The syscall does not run (ENOSYS) and the caller gets SIGSYS (`trap`).
    Trap,
}

/// What the init does with a tracee in a seccomp stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Let the syscall run.
    Continue,
    /// Skip it: it returns `ret`; deliver `signal` (0: none).
    Skip { ret: i64, signal: i32 },
    /// A violation: record it and end the jail.
    Refuse(Violation),
    /// The channel could not be sent (errno): end the jail.
    HandoverFailed(i32),
}

/// The init's switch state.
pub struct Switch<'a> {
    handover: &'a Handover,
    /// The init's end of the handshake socket until the channel is sent, then -1.
    sock: RawFd,
    /// The gate is installed in the jail (the init traces it).
    gated: bool,
    /// Load until the stub switches with the gate in force; then serve.
    phase: SeccompPhase,
    /// How many filters the init itself carries (inherited from outside plugjail); a jail
    /// thread carries these plus at most the gate and the load filter.
    own_filters: Option<u32>,
}

impl<'a> Switch<'a> {
    /// Starts the switch after the handshake. `traced`: the init traces the target, so
    /// the gate (if the plan has one) is installed and the channel waits for the switch;
    /// otherwise the channel is sent at once (the serve phase is then not enforced, which
    /// the verdict says, or the target refuses to go on when the gate is required).
    pub fn start(handover: &'a Handover, sock: RawFd, traced: bool) -> Result<Switch<'a>, i32> {
        let gated = traced && handover.gate.is_some();
        let mut s = Switch {
            handover,
            sock,
            gated,
            phase: SeccompPhase::Load,
            own_filters: gated.then(|| filter_count(c"/proc/self/status")).flatten(),
        };
        if !s.gated {
            s.send()?;
        }
        Ok(s)
    }

    /// Sends the channel and closes every descriptor of the handover.
    fn send(&mut self) -> Result<(), i32> {
        let sent = crate::protocol::switch::send_channel(self.sock, self.handover.fds);
        for fd in self.handover.fds {
            // SAFETY: the init's placed copies of the channel: its own, used by nothing
            // after this send.
            unsafe { sys::close(fd) };
        }
        // SAFETY: the init's end of the handshake socket, used by nothing after this.
        unsafe { sys::close(self.sock) };
        self.sock = -1;
        sent
    }

    /// Decides a seccomp stop of `pid`, read as `stop` (phase still `Load`).
    pub fn decide(&mut self, pid: libc::pid_t, stop: Violation) -> Decision {
        let data = TraceData::from_u32(stop.data);
        let gated = matches!(data, Some(TraceData::Gate | TraceData::Switch));
        let Some(gate) = self.handover.gate.as_ref().filter(|_| gated && self.gated) else {
            return Decision::Refuse(self.violation(stop));
        };
        if self.phase == SeccompPhase::Serve {
            return match gate.action {
                GateAction::Kill => Decision::Refuse(self.violation(stop)),
                GateAction::Errno(errno) => Decision::Skip {
                    ret: -i64::from(errno),
                    signal: 0,
                },
                GateAction::Trap => Decision::Skip {
                    ret: -i64::from(libc::ENOSYS),
                    signal: libc::SIGSYS,
                },
            };
        }
        // Loading: the gate's answer is only ours if the thread has no other filter.
        let ours = matches!(
            (self.own_filters, thread_filters(pid)),
            (Some(own), Some(now)) if now <= own + 2
        );
        if !ours {
            return Decision::Refuse(Violation { data: 0, ..stop });
        }
        if data != Some(TraceData::Switch) {
            return Decision::Continue;
        }
        // The switch must be exactly the recvmsg the gate matched (a forged answer
        // could have stopped anything).
        // The gate compares the low half of the first argument (the kernel reads an int
        // fd), and so does this: the upper half is cut on purpose.
        #[allow(clippy::cast_possible_truncation)]
        let fd_arg = stop.args[0] as u32;
        if stop.nr.map(i64::from) != Some(libc::SYS_recvmsg)
            || stop.arch != AUDIT_ARCH_NATIVE
            || u32::try_from(self.handover.socket) != Ok(fd_arg)
        {
            return Decision::Refuse(Violation { data: 0, ..stop });
        }
        self.phase = SeccompPhase::Serve;
        match self.send() {
            Ok(()) => Decision::Continue,
            Err(errno) => Decision::HandoverFailed(errno),
        }
    }

    /// `stop` as a violation of the phase the jail is in; the gate's own data values
    /// only count while the gate is in force (else a filter of the program's gave them).
    fn violation(&self, stop: Violation) -> Violation {
        let forged = !self.gated
            && matches!(
                TraceData::from_u32(stop.data),
                Some(TraceData::Gate | TraceData::Switch)
            );
        Violation {
            phase: self.phase,
            data: if forged { 0 } else { stop.data },
            ..stop
        }
    }
}

/// `Seccomp_filters` of `/proc/TID/status`: how many filters thread `tid` carries.
fn thread_filters(tid: libc::pid_t) -> Option<u32> {
    // "/proc/" + up to 10 digits + "/status" + NUL.
    let mut path = [0u8; 32];
    let mut len = 0;
    for b in b"/proc/" {
        path[len] = *b;
        len += 1;
    }
    let mut digits = [0u8; 10];
    let mut n = u32::try_from(tid).ok()?;
    let mut d = 0;
    loop {
        digits[d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in (0..d).rev() {
        path[len] = digits[i];
        len += 1;
    }
    for b in b"/status" {
        path[len] = *b;
        len += 1;
    }
    let path = std::ffi::CStr::from_bytes_until_nul(&path[..=len]).ok()?;
    filter_count(path)
}

/// Reads the `Seccomp_filters:` line of a status file (None if it cannot be read: then
/// nothing is trusted).
fn filter_count(path: &std::ffi::CStr) -> Option<u32> {
    let mut buf = [0u8; 8192];
    // SAFETY: `path` is NUL-terminated; the flags take no further arguments.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    let mut len = 0;
    while len < buf.len() {
        let room = &mut buf[len..];
        // SAFETY: `room` is a writable slice of the stack buffer.
        let n = unsafe { libc::read(fd, room.as_mut_ptr().cast(), room.len()) };
        match usize::try_from(n) {
            Ok(0) => break,
            Ok(n) => len += n,
            // Negative: failed (errno).
            Err(_) if errno() == libc::EINTR => {}
            Err(_) => break,
        }
    }
    // SAFETY: opened by this function, owned by nothing else.
    unsafe { sys::close(fd) };
    parse_filter_count(&buf[..len])
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

fn parse_filter_count(status: &[u8]) -> Option<u32> {
    const KEY: &[u8] = b"\nSeccomp_filters:";
    let at = status.windows(KEY.len()).position(|w| w == KEY)? + KEY.len();
    let mut value: Option<u32> = None;
    for &b in status[at..]
        .iter()
        .skip_while(|b| **b == b' ' || **b == b'\t')
    {
        if !b.is_ascii_digit() {
            break;
        }
        value = Some(
            value
                .unwrap_or(0)
                .checked_mul(10)?
                .checked_add(u32::from(b - b'0'))?,
        );
    }
    value
}

/// Makes a tracee stopped at a seccomp stop skip its syscall, which then returns `ret`.
#[cfg(target_arch = "x86_64")]
pub fn skip_syscall(pid: libc::pid_t, ret: i64) -> Result<(), i32> {
    // SAFETY: all-zero is a valid user_regs_struct (plain integers).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETREGS writes one user_regs_struct into `regs`.
    if unsafe { libc::ptrace(libc::PTRACE_GETREGS, pid, 0, &mut regs) } < 0 {
        return Err(errno());
    }
    // The syscall number -1 skips the syscall; rax is what it returns.
    regs.orig_rax = u64::MAX;
    // The register holds the return value's bits (a negative errno as two's complement).
    regs.rax = ret.cast_unsigned();
    // SAFETY: PTRACE_SETREGS reads one user_regs_struct from `regs`.
    if unsafe { libc::ptrace(libc::PTRACE_SETREGS, pid, 0, &regs) } < 0 {
        return Err(errno());
    }
    Ok(())
}

/// Makes a tracee stopped at a seccomp stop skip its syscall, which then returns `ret`.
#[cfg(target_arch = "aarch64")]
pub fn skip_syscall(pid: libc::pid_t, ret: i64) -> Result<(), i32> {
    const NT_PRSTATUS: libc::c_long = 1;
    const NT_ARM_SYSTEM_CALL: libc::c_long = 0x404;
    let regset = |request, set: libc::c_long, data: *mut libc::c_void, len: usize| {
        let mut iov = libc::iovec {
            iov_base: data,
            iov_len: len,
        };
        // SAFETY: the regset requests read or write at most `len` bytes at `data`, which
        // the caller points at a live value of that size.
        let r = unsafe { libc::ptrace(request, pid, set, &mut iov) };
        if r < 0 { Err(errno()) } else { Ok(()) }
    };
    // The syscall number -1 skips the syscall; x0 is what it returns.
    let mut nr: libc::c_int = -1;
    regset(
        libc::PTRACE_SETREGSET,
        NT_ARM_SYSTEM_CALL,
        (&mut nr as *mut libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>(),
    )?;
    // SAFETY: all-zero is a valid user_regs_struct (plain integers).
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::user_regs_struct>();
    let p = (&mut regs as *mut libc::user_regs_struct).cast();
    regset(libc::PTRACE_GETREGSET, NT_PRSTATUS, p, size)?;
    // The register holds the return value's bits (a negative errno as two's complement).
    regs.regs[0] = ret.cast_unsigned();
    regset(libc::PTRACE_SETREGSET, NT_PRSTATUS, p, size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_count_is_read_from_a_status_file() {
        let status = b"Name:\tx\nSeccomp:\t2\nSeccomp_filters:\t3\nSpeculation_Store_Bypass:\tx\n";
        assert_eq!(parse_filter_count(status), Some(3));
        assert_eq!(parse_filter_count(b"Name:\tx\nSeccomp:\t0\n"), None);
        assert_eq!(parse_filter_count(b"\nSeccomp_filters:\tx\n"), None);
        assert_eq!(
            parse_filter_count(b"\nSeccomp_filters:\t99999999999\n"),
            None
        );
        // This process, as the init reads its own.
        assert!(filter_count(c"/proc/self/status").is_some());
        assert_eq!(
            thread_filters(std::process::id() as i32),
            filter_count(c"/proc/self/status")
        );
    }
}
