//! The watch page: one shared page in which the stub marks each call into the plugin, so
//! the supervisor can enforce `limits.call_time` and `limits.idle_time` without a syscall
//! per call (the supervisor's side is `plugjail::plugin_mode::watch`).
//!
//! The stub maps the page once at start-up and keeps one counter in it, `seq`: it adds one
//! just before calling into the plugin (odd: a call is in flight) and one right after
//! (even: idle). Two plain memory stores per call. The plugin shares the stub's address
//! space and can write the page: what it says is a figure, never evidence.

use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Size of the shared mapping.
pub const PAGE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("watch page ({syscall}): {source}")]
    Sys {
        syscall: &'static str,
        source: io::Error,
    },
}

impl WatchError {
    /// `syscall` failed; the reason is the calling thread's errno.
    pub fn last(syscall: &'static str) -> WatchError {
        WatchError::Sys {
            syscall,
            source: io::Error::last_os_error(),
        }
    }
}

/// A shared mapping of the page (read-only for the supervisor, writable for the stub).
#[derive(Debug)]
pub struct Page(NonNull<AtomicU64>);

// SAFETY: the mapping is plain shared memory accessed only through an AtomicU64.
unsafe impl Send for Page {}
// SAFETY: as above; atomics make concurrent access defined.
unsafe impl Sync for Page {}

impl Page {
    /// Maps the page of `fd` with protection `prot`.
    pub fn map(fd: RawFd, prot: libc::c_int) -> Result<Page, WatchError> {
        // SAFETY: a fresh shared mapping of PAGE bytes of a memfd at least that long (sealed
        // against shrinking on the supervisor side); the kernel picks the address.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), PAGE, prot, libc::MAP_SHARED, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(WatchError::last("mmap"));
        }
        NonNull::new(p.cast())
            .map(Page)
            .ok_or_else(|| WatchError::last("mmap"))
    }

    /// The call counter.
    pub fn seq(&self) -> &AtomicU64 {
        // SAFETY: the mapping is page-aligned, PAGE bytes, alive as long as `self`.
        unsafe { self.0.as_ref() }
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mmap returned; nothing refers to it after.
        unsafe { libc::munmap(self.0.as_ptr().cast(), PAGE) };
    }
}

/// The stub's side: the page mapped writable.
#[derive(Debug)]
pub struct StubPage(Page);

impl StubPage {
    /// Maps the page from `fd` (the stub closes `fd` afterwards).
    pub fn map(fd: RawFd) -> Result<StubPage, WatchError> {
        Page::map(fd, libc::PROT_READ | libc::PROT_WRITE).map(StubPage)
    }

    /// A call into the plugin starts (seq becomes odd).
    #[inline]
    pub fn begin(&self) {
        let seq = self.0.seq();
        seq.store(seq.load(Ordering::Relaxed) | 1, Ordering::Release);
    }

    /// The call returned (seq becomes the next even number).
    #[inline]
    pub fn end(&self) {
        let seq = self.0.seq();
        seq.store(
            (seq.load(Ordering::Relaxed) | 1).wrapping_add(1),
            Ordering::Release,
        );
    }
}
