//! The region: a sealed memfd of a fixed layout (docs/protocol.md, "Layout"), and raw,
//! bounds-checked access to a mapping of it. No reference to the region's bytes is ever
//! formed: the other process may write them at any time, so they are only reached through
//! atomics (the control words) and copies into private memory.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use crate::consts::HEADER_LEN;

/// The first eight bytes of a region.
pub const MAGIC: [u8; 8] = *b"PJSHM\0v1";
/// The layout's version (offset 8).
pub const VERSION: u32 = 1;
/// Areas start on page boundaries.
pub const PAGE: usize = 4096;

/// Offsets of the header's fields and of the control words.
pub mod off {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 8;
    pub const SPIN_US: usize = 12;
    pub const LEN: usize = 16;
    pub const REQ: usize = 24;
    pub const REQ_LEN: usize = 32;
    pub const RESP: usize = 40;
    pub const RESP_LEN: usize = 48;
    /// The stub's spin budget in loop iterations, calibrated by the host (so the stub
    /// needs no clock).
    pub const SPIN_ITERS: usize = 56;
    /// Futex word: the latest request's number (host).
    pub const REQ_SEQ: usize = 64;
    /// 1 while the stub sleeps on REQ_SEQ (stub).
    pub const STUB_WAITING: usize = 68;
    /// The CPU the host last ran on, plus one (0: unknown) (host).
    pub const HOST_CPU: usize = 72;
    /// Futex word: the request last answered (stub).
    pub const RESP_SEQ: usize = 128;
    /// 1 while the host sleeps on RESP_SEQ (host).
    pub const HOST_WAITING: usize = 132;
    /// Frames the stub wrote to the pipe since HELLO (stub).
    pub const PIPE_FRAMES: usize = 136;
    /// The CPU the stub last ran on, plus one (0: unknown) (stub).
    pub const STUB_CPU: usize = 144;
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("shared-memory region ({syscall}): {source}")]
    Sys {
        syscall: &'static str,
        source: io::Error,
    },
    #[error("shared-memory region: {what}")]
    Layout { what: &'static str },
}

impl ShmError {
    fn last(syscall: &'static str) -> ShmError {
        ShmError::Sys {
            syscall,
            source: io::Error::last_os_error(),
        }
    }
}

/// Where the areas are, and the stub's spin budget: the header's contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub spin_us: u32,
    pub spin_iters: u64,
    pub len: usize,
    pub req: usize,
    pub req_len: usize,
    pub resp: usize,
    pub resp_len: usize,
}

fn round_up(n: usize) -> Option<usize> {
    n.checked_add(PAGE - 1).map(|n| n / PAGE * PAGE)
}

impl Layout {
    /// A layout whose areas each hold a frame of `arena` payload bytes.
    pub fn new(arena: usize, spin_us: u32) -> Result<Layout, ShmError> {
        let too_big = ShmError::Layout {
            what: "the arena is too large",
        };
        let area = arena.checked_add(HEADER_LEN).ok_or(ShmError::Layout {
            what: "the arena is too large",
        })?;
        // A frame's length is a u32.
        if u32::try_from(arena).is_err() {
            return Err(too_big);
        }
        let resp = round_up(area)
            .and_then(|a| a.checked_add(PAGE))
            .ok_or(ShmError::Layout {
                what: "the arena is too large",
            })?;
        let len = round_up(area)
            .and_then(|a| a.checked_add(resp))
            .ok_or(too_big)?;
        let spin_us = spin_us.min(super::MAX_SPIN_US);
        Ok(Layout {
            spin_us,
            spin_iters: super::host::spin_iters(spin_us),
            len,
            req: PAGE,
            req_len: area,
            resp,
            resp_len: area,
        })
    }

    /// The header bytes (the first 64 of the region).
    pub fn encode(&self) -> [u8; 64] {
        let mut h = [0u8; 64];
        h[off::MAGIC..off::MAGIC + 8].copy_from_slice(&MAGIC);
        h[off::VERSION..off::VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        h[off::SPIN_US..off::SPIN_US + 4].copy_from_slice(&self.spin_us.to_le_bytes());
        for (at, v) in [
            (off::LEN, self.len),
            (off::REQ, self.req),
            (off::REQ_LEN, self.req_len),
            (off::RESP, self.resp),
            (off::RESP_LEN, self.resp_len),
        ] {
            h[at..at + 8].copy_from_slice(&(v as u64).to_le_bytes());
        }
        h[off::SPIN_ITERS..off::SPIN_ITERS + 8].copy_from_slice(&self.spin_iters.to_le_bytes());
        h
    }

    /// Reads a header (the stub's side: written by the host, checked anyway so that a
    /// launcher's mistake cannot send the stub outside its mapping).
    pub fn decode(h: &[u8; 64], mapped: usize) -> Result<Layout, ShmError> {
        let bad = |what| ShmError::Layout { what };
        if h[off::MAGIC..off::MAGIC + 8] != MAGIC {
            return Err(bad("no plugjail region (wrong magic)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[at..at + 8]);
            usize::try_from(u64::from_le_bytes(b)).unwrap_or(usize::MAX)
        };
        if u32_at(off::VERSION) != VERSION {
            return Err(bad("unknown layout version"));
        }
        let l = Layout {
            spin_us: u32_at(off::SPIN_US).min(super::MAX_SPIN_US),
            spin_iters: u64_at(off::SPIN_ITERS) as u64,
            len: u64_at(off::LEN),
            req: u64_at(off::REQ),
            req_len: u64_at(off::REQ_LEN),
            resp: u64_at(off::RESP),
            resp_len: u64_at(off::RESP_LEN),
        };
        let within = |at: usize, len: usize| at.checked_add(len).is_some_and(|end| end <= l.len);
        if l.len > mapped && mapped != 0 {
            return Err(bad("the region is shorter than its header says"));
        }
        if l.req < PAGE || l.resp < PAGE || !within(l.req, l.req_len) || !within(l.resp, l.resp_len)
        {
            return Err(bad("an area lies outside the region"));
        }
        if l.req_len < HEADER_LEN || l.resp_len < HEADER_LEN {
            return Err(bad("an area is smaller than a frame header"));
        }
        let overlap = l.req < l.resp + l.resp_len && l.resp < l.req + l.req_len;
        if overlap {
            return Err(bad("the areas overlap"));
        }
        Ok(l)
    }

    /// The largest payload the request area takes.
    pub fn request_payload(&self) -> usize {
        self.req_len - HEADER_LEN
    }

    /// The largest payload the response area takes.
    pub fn response_payload(&self) -> usize {
        self.resp_len - HEADER_LEN
    }
}

/// The CPU this thread runs on, plus one (0: unknown): read through rseq or the vDSO by
/// glibc, without a syscall on x86_64. Spinning only pays when the other side runs on
/// another CPU; on the same CPU it keeps the other side from running at all.
pub fn this_cpu() -> u32 {
    // SAFETY: no arguments; returns a CPU number or -1.
    let cpu = unsafe { libc::sched_getcpu() };
    u32::try_from(cpu).map_or(0, |c| c.wrapping_add(1))
}

/// A shared mapping of a whole region.
#[derive(Debug)]
pub struct Region {
    base: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is reached only through atomics and raw copies, which are defined
// for memory other threads (or processes) write.
unsafe impl Send for Region {}
// SAFETY: as above.
unsafe impl Sync for Region {}

impl Region {
    /// Maps `len` bytes of `fd`, shared, read and write.
    pub fn map(fd: RawFd, len: usize) -> Result<Region, ShmError> {
        // SAFETY: a fresh shared mapping chosen by the kernel; nothing else is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ShmError::last("mmap"));
        }
        let base = NonNull::new(p.cast()).ok_or(ShmError::Layout {
            what: "mmap returned address 0",
        })?;
        Ok(Region { base, len })
    }

    /// The stub's side: maps the region of `fd` after reading its header from a first,
    /// one-page mapping. The caller closes `fd`.
    pub fn map_described(fd: RawFd) -> Result<(Region, Layout), ShmError> {
        let first = Region::map(fd, PAGE)?;
        let mut h = [0u8; 64];
        first.read(0, &mut h)?;
        drop(first);
        let layout = Layout::decode(&h, 0)?;
        let region = Region::map(fd, layout.len)?;
        Ok((region, layout))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The address `at` bytes into the mapping (callers check the bounds first; the
    /// arithmetic itself cannot fault).
    fn addr(&self, at: usize) -> *mut u8 {
        self.base.as_ptr().wrapping_add(at)
    }

    fn check(&self, at: usize, n: usize) -> Result<(), ShmError> {
        match at.checked_add(n) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(ShmError::Layout {
                what: "an access past the end of the region",
            }),
        }
    }

    /// The 32-bit control word at `at` (a multiple of 4 within the first page).
    pub fn word(&self, at: usize) -> &AtomicU32 {
        assert!(
            at.is_multiple_of(4) && at + 4 <= PAGE.min(self.len),
            "control word {at}"
        );
        // SAFETY: in bounds and aligned (asserted; the mapping is page-aligned) for the
        // life of `self`; an atomic may be written by others concurrently.
        unsafe { &*self.addr(at).cast::<AtomicU32>() }
    }

    /// The 64-bit control word at `at` (a multiple of 8 within the first page).
    pub fn word64(&self, at: usize) -> &AtomicU64 {
        assert!(
            at.is_multiple_of(8) && at + 8 <= PAGE.min(self.len),
            "control word {at}"
        );
        // SAFETY: as in `word`.
        unsafe { &*self.addr(at).cast::<AtomicU64>() }
    }

    /// Copies `dst.len()` bytes at `at` out of the region, once.
    pub fn read(&self, at: usize, dst: &mut [u8]) -> Result<(), ShmError> {
        self.check(at, dst.len())?;
        // SAFETY: the source lies within the mapping (checked) and the destination is
        // our own buffer; they cannot overlap. The source may change while it is copied
        // (the other process writes it): each byte is read once into private memory and
        // only the copy is used, so a change can only make the copy arbitrary bytes,
        // which every caller validates.
        unsafe {
            std::ptr::copy_nonoverlapping(self.addr(at), dst.as_mut_ptr(), dst.len());
        }
        Ok(())
    }

    /// Copies `src` into the region at `at`.
    pub fn write(&self, at: usize, src: &[u8]) -> Result<(), ShmError> {
        self.check(at, src.len())?;
        // SAFETY: the destination lies within the mapping (checked), the source is our own
        // memory; they cannot overlap. Concurrent writes by the other side only make the
        // bytes there arbitrary, which the reader validates.
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.addr(at), src.len());
        }
        Ok(())
    }

    /// Zeroes `n` bytes at `at`.
    pub fn zero(&self, at: usize, n: usize) -> Result<(), ShmError> {
        self.check(at, n)?;
        // SAFETY: within the mapping (checked).
        unsafe { std::ptr::write_bytes(self.addr(at), 0, n) };
        Ok(())
    }

    /// A raw pointer to `n` bytes at `at`, for handing to C code that knows the memory
    /// is shared (the stub passes the input to the plugin in place).
    pub fn raw(&self, at: usize, n: usize) -> Result<*const u8, ShmError> {
        self.check(at, n)?;
        Ok(self.addr(at))
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what mmap returned; no reference into it outlives
        // `self` (words are borrowed from `self`).
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The host's side: a new memfd for `layout`, sized, mapped, its header written, and
/// sealed against shrinking, growing and further sealing, so that neither side can
/// truncate it under the other's mapping. Returns the descriptor (for the stub) and the
/// host's mapping.
pub fn create(layout: &Layout) -> Result<(OwnedFd, Region), ShmError> {
    // SAFETY: a NUL-terminated name and flags; returns a new descriptor or -1.
    let fd = unsafe {
        libc::memfd_create(
            c"plugjail-shm".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(ShmError::last("memfd_create"));
    }
    // SAFETY: just created, owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let len = libc::off_t::try_from(layout.len).map_err(|_| ShmError::Layout {
        what: "the region is too large",
    })?;
    // SAFETY: integer arguments on our own descriptor.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), len) } != 0 {
        return Err(ShmError::last("ftruncate"));
    }
    let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
    // SAFETY: integer fcntl on our own descriptor.
    if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(ShmError::last("fcntl(F_ADD_SEALS)"));
    }
    let region = Region::map(fd.as_raw_fd(), layout.len)?;
    region.write(0, &layout.encode())?;
    Ok((fd, region))
}
