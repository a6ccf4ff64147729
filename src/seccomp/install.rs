//! Concern: putting a compiled program in force from the single-threaded child after
//! clone — no allocation, one `seccomp(2)` call, a raw errno — and what a compiled program
//! tells the verdict about itself.

use nix::errno::Errno;

use super::{SeccompPhase, SeccompProgram};

impl SeccompProgram {
    /// Installs the filter on the calling thread. Child-safe: no allocation; needs
    /// no_new_privs already set by the caller. Returns the errno on failure.
    pub fn install(&self) -> Result<(), Errno> {
        install(&self.filter)
    }

    /// Installs the traced variant when there is one and `traced` says the calling process
    /// is already traced with `PTRACE_O_TRACESECCOMP` (and its clone options) by a tracer
    /// that kills on every seccomp stop; the plain filter otherwise. Child-safe like
    /// [`install`](Self::install).
    pub fn install_for(&self, traced: bool) -> Result<(), Errno> {
        match &self.traced {
            Some(filter) if traced => install(filter),
            _ => install(&self.filter),
        }
    }

    /// Whether this program has a traced variant (`default_action: kill_process`), i.e.
    /// whether a tracer can name the syscalls it refuses.
    pub fn has_traced_variant(&self) -> bool {
        self.traced.is_some()
    }

    /// The traced variant's instructions (see [`install_for`](Self::install_for)), e.g. for
    /// the in-jail stub to stack a later phase that its tracer names too.
    pub fn bpf_traced(&self) -> Option<&[libc::sock_filter]> {
        self.traced.as_deref()
    }

    pub fn instructions(&self) -> usize {
        self.filter.len()
    }

    /// The BPF instructions, e.g. to hand a later phase to the in-jail stub.
    pub fn bpf(&self) -> &[libc::sock_filter] {
        &self.filter
    }

    pub fn phase(&self) -> SeccompPhase {
        self.phase
    }

    /// How many distinct syscalls the filter lets through (some only with conditions).
    pub fn allowed_syscalls(&self) -> usize {
        self.allowed
    }

    /// Names the profile allows that this architecture does not have (legitimately skipped).
    pub fn absent(&self) -> &[String] {
        &self.absent
    }
}

/// Installs `filter` on the calling thread (see [`SeccompProgram::install`]). No flags:
/// the jail's child is single-threaded, so there are no other threads to synchronise.
fn install(filter: &[libc::sock_filter]) -> Result<(), Errno> {
    install_with_flags(filter, 0).map(drop)
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, flags, filter)`, allocation-free. Returns the
/// syscall's non-negative result (with `SECCOMP_FILTER_FLAG_TSYNC`, the id of a thread
/// that could not be synchronised, else 0). `filter` must hold at most 4096 instructions.
pub fn install_with_flags(filter: &[libc::sock_filter], flags: u32) -> Result<libc::c_long, Errno> {
    // The kernel refuses more than 4096 instructions with EINVAL; so does this.
    let len = libc::c_ushort::try_from(filter.len()).map_err(|_| Errno::EINVAL)?;
    let prog = libc::sock_fprog {
        len,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `filter`, which outlives the call; the kernel copies the
    // instructions and never writes through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 { Err(Errno::last()) } else { Ok(ret) }
}
