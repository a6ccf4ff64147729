//! The host's end of a region: write a request, wait for the answer (spin, then sleep on
//! the futex in bounded slices), copy the answer out once and validate the copy.

use std::os::fd::OwnedFd;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::futex::{self, Woken};
use super::region::{self, Layout, Region, ShmError, off};
use crate::ProtocolError;
use crate::consts::HEADER_LEN;
use crate::frame::{Header, decode_header};

/// The smallest arena: an ERROR frame's payload always fits.
pub const MIN_ARENA: usize = 8 << 10;

/// What a host asks of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShmOptions {
    /// How long each end spins for the other before it sleeps on the futex (the stub:
    /// after each answer, for the next call; the host: for the answer). At most 1 s.
    pub spin: Duration,
    /// The largest payload per direction (a CALL's method and input; a RESULT's output);
    /// at least [`MIN_ARENA`].
    pub arena: usize,
    /// Zero the request area after every call, so a call's input is not readable in the
    /// region once the call has returned.
    pub scrub_inputs: bool,
}

impl Default for ShmOptions {
    fn default() -> ShmOptions {
        ShmOptions {
            spin: Duration::from_micros(50),
            arena: 1 << 20,
            scrub_inputs: false,
        }
    }
}

/// The spin loop both ends run: one load of the word per iteration.
#[inline]
fn spin_once(word: &AtomicU32) -> u32 {
    std::hint::spin_loop();
    word.load(Ordering::Acquire)
}

/// Iterations of the spin loop (one load of the word each) in `us` microseconds on this
/// machine: measured once per process, so the stub can spin for a time without reading a
/// clock.
pub fn spin_iters(us: u32) -> u64 {
    static PER_MS: OnceLock<u64> = OnceLock::new();
    let per_ms = *PER_MS.get_or_init(|| {
        let word = AtomicU32::new(0);
        let n = 200_000u64;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(spin_once(&word));
        }
        let ns = t.elapsed().as_nanos().max(1);
        u64::try_from(u128::from(n) * 1_000_000 / ns).unwrap_or(u64::MAX)
    });
    per_ms.saturating_mul(u64::from(us)) / 1000
}

/// How a wait for an answer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Answered,
    TimedOut,
}

/// The host's mapping of a region and its state.
#[derive(Debug)]
pub struct HostRing {
    region: Region,
    layout: Layout,
    spin: Duration,
    scrub: bool,
    /// The latest request's number.
    seq: u32,
    /// Bytes the latest request occupies (for scrubbing).
    written: usize,
    /// The latest answer's payload, copied out of the region.
    out: Vec<u8>,
}

impl HostRing {
    /// Creates a sealed region for `opts`; returns the host's end and the descriptor to
    /// give `plugjail serve --shm-fd`.
    pub fn create(opts: &ShmOptions) -> Result<(HostRing, OwnedFd), ShmError> {
        let spin_us = u32::try_from(opts.spin.as_micros()).unwrap_or(u32::MAX);
        // Room for any ERROR frame (8 bytes and a message of up to 4096).
        let layout = Layout::new(opts.arena.max(MIN_ARENA), spin_us)?;
        let (fd, region) = region::create(&layout)?;
        let ring = HostRing {
            region,
            layout,
            spin: opts
                .spin
                .min(Duration::from_micros(u64::from(super::MAX_SPIN_US))),
            scrub: opts.scrub_inputs,
            seq: 0,
            written: 0,
            out: Vec::new(),
        };
        Ok((ring, fd))
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The largest CALL payload (method and input) the request area takes.
    pub fn request_payload(&self) -> usize {
        self.layout.request_payload()
    }

    /// Bytes reserved for answers so far (at most the response area).
    pub fn out_capacity(&self) -> usize {
        self.out.capacity()
    }

    /// Writes a frame (`head` then `tail`) into the request area and announces it; wakes
    /// the stub only if it said it sleeps. Returns the request's number.
    pub fn send(&mut self, head: &[u8], tail: &[u8]) -> Result<u32, ShmError> {
        let total = head.len().saturating_add(tail.len());
        if total > self.layout.req_len {
            return Err(ShmError::Layout {
                what: "a frame larger than the request area",
            });
        }
        self.region.write(self.layout.req, head)?;
        self.region.write(self.layout.req + head.len(), tail)?;
        self.written = total;
        self.region
            .word(off::HOST_CPU)
            .store(region::this_cpu(), Ordering::Relaxed);
        self.seq = self.seq.wrapping_add(1);
        let word = self.region.word(off::REQ_SEQ);
        word.store(self.seq, Ordering::SeqCst);
        if self.region.word(off::STUB_WAITING).load(Ordering::SeqCst) != 0 {
            futex::wake(word);
        }
        Ok(self.seq)
    }

    /// Waits until the stub says it answered request `seq`, or until `deadline`. Spins
    /// for the spin budget first, then sleeps on the futex in slices of at most
    /// [`super::HOST_SLICE`]; `between` runs after every slice that timed out (and after
    /// every eighth early wake-up, so a plugin that keeps waking the host cannot keep it
    /// from running): the caller reads the pipe there, and its error ends the wait.
    pub fn wait<E>(
        &mut self,
        seq: u32,
        deadline: Instant,
        mut between: impl FnMut() -> Result<(), E>,
    ) -> Result<Waited, E> {
        let resp = self.region.word(off::RESP_SEQ);
        // No spinning when the stub last ran on this CPU: it could not run meanwhile. (The
        // word is the plugin's to forge; a lie costs at most one spin budget.)
        let stub_cpu = self.region.word(off::STUB_CPU).load(Ordering::Relaxed);
        let spin = if stub_cpu != 0 && stub_cpu == region::this_cpu() {
            Duration::ZERO
        } else {
            self.spin
        };
        let spin_until = Instant::now() + spin;
        let mut i = 0u32;
        while !spin.is_zero() && resp.load(Ordering::Acquire) != seq {
            i = i.wrapping_add(1);
            if i.is_multiple_of(64) && Instant::now() >= spin_until {
                break;
            }
            if spin_once(resp) == seq {
                return Ok(Waited::Answered);
            }
        }
        if resp.load(Ordering::Acquire) == seq {
            return Ok(Waited::Answered);
        }
        let waiting = self.region.word(off::HOST_WAITING);
        let mut early = 0u32;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Waited::TimedOut);
            }
            waiting.store(1, Ordering::SeqCst);
            let seen = resp.load(Ordering::SeqCst);
            if seen == seq {
                waiting.store(0, Ordering::Relaxed);
                return Ok(Waited::Answered);
            }
            let woken = futex::wait(resp, seen, super::HOST_SLICE.min(deadline - now));
            waiting.store(0, Ordering::Relaxed);
            if resp.load(Ordering::Acquire) == seq {
                return Ok(Waited::Answered);
            }
            match woken {
                Woken::Maybe => {
                    early = early.wrapping_add(1);
                    if early.is_multiple_of(8) {
                        between()?;
                    }
                }
                Woken::TimedOut => between()?,
                Woken::Failed(_) => {
                    // No futex (refused, say): keep the deadline with short sleeps.
                    std::thread::sleep(Duration::from_micros(200));
                    between()?;
                }
            }
        }
    }

    /// Copies the answer's header out of the response area once and decodes it against
    /// `cap` (and the area's size), then copies its payload into the host's own buffer.
    /// Returns the header and the stub's `pipe_frames`. Nothing is read from the region
    /// twice.
    pub fn take_answer(&mut self, cap: u32) -> Result<(Header, u64), ProtocolError> {
        let frames = self.region.word64(off::PIPE_FRAMES).load(Ordering::Acquire);
        let mut head = [0u8; HEADER_LEN];
        let torn = ProtocolError::Payload {
            frame: "shared-memory answer",
            what: "outside the response area",
        };
        self.region
            .read(self.layout.resp, &mut head)
            .map_err(|_| torn.clone())?;
        let area = u32::try_from(self.layout.response_payload()).unwrap_or(u32::MAX);
        let h = decode_header(&head, cap.min(area))?;
        let len = h.len as usize;
        if self.out.len() < len {
            self.out.reserve_exact(len - self.out.len());
            self.out.resize(len, 0);
        }
        self.region
            .read(self.layout.resp + HEADER_LEN, &mut self.out[..len])
            .map_err(|_| torn)?;
        Ok((h, frames))
    }

    /// The payload [`HostRing::take_answer`] copied, given its length.
    pub fn answer(&self, len: usize) -> &[u8] {
        &self.out[..len.min(self.out.len())]
    }

    /// Zeroes the request area's bytes of the latest request, if the options ask for it.
    pub fn scrub(&mut self) {
        if self.scrub && self.written > 0 {
            let _ = self.region.zero(self.layout.req, self.written);
            self.written = 0;
        }
    }

    /// Sends SHUTDOWN (best effort; the caller closes the pipe afterwards).
    pub fn shutdown(&mut self) {
        let frame = crate::frame::encode_header(crate::consts::FrameType::Shutdown, 0, 0);
        let _ = self.send(&frame, &[]);
    }
}
