//! Futex calls on a word of a shared mapping (not `FUTEX_PRIVATE_FLAG`: the two ends are
//! different processes).

use std::sync::atomic::AtomicU32;
use std::time::Duration;

/// How a wait ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Woken, or the word no longer held the value (EAGAIN), or a signal (EINTR): look
    /// again.
    Maybe,
    /// The timeout passed.
    TimedOut,
    /// The call failed otherwise (errno): the caller falls back to its own timing.
    Failed(i32),
}

/// Sleeps while `word` holds `expected`, at most `timeout`.
pub fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Woken {
    let ts = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(timeout.subsec_nanos().cast_signed()),
    };
    // SAFETY: FUTEX_WAIT reads the aligned u32 at `word` (alive for the call: a reference)
    // and the timespec on this stack; no memory is written.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &raw const ts,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Woken::Maybe;
    }
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EAGAIN | libc::EINTR) => Woken::Maybe,
        Some(libc::ETIMEDOUT) => Woken::TimedOut,
        Some(e) => Woken::Failed(e),
        None => Woken::Failed(libc::EIO),
    }
}

/// Wakes one waiter on `word`.
pub fn wake(word: &AtomicU32) {
    // SAFETY: FUTEX_WAKE only uses the address as a key; the reference keeps it mapped.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            1u32,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        )
    };
}
