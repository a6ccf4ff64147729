//! The stub's end of a region: wait for the next request (spin, then sleep on the futex
//! for at most [`super::STUB_SLICE`]), read it, publish an answer.
//!
//! The stub trusts the host, but not the plugin, which shares its address space and can
//! write the region too: what the stub reads it copies first (header, method name) and
//! bounds-checks, so a plugin scribbling on the request only confuses its own calls.

use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

use super::futex::{self, Woken};
use super::region::{self, Layout, Region, ShmError, off};
use crate::consts::HEADER_LEN;

/// What a wait brought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Request number `.0` is in the request area.
    Request(u32),
    /// Nothing within the sleep slice: time to check that the host is still there.
    Idle,
}

#[derive(Debug)]
pub struct StubRing {
    region: Region,
    layout: Layout,
    /// The request last taken.
    last: u32,
}

impl StubRing {
    /// Maps the region of `fd` (the caller closes `fd` afterwards).
    pub fn map(fd: RawFd) -> Result<StubRing, ShmError> {
        let (region, layout) = Region::map_described(fd)?;
        Ok(StubRing {
            region,
            layout,
            last: 0,
        })
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Waits for a request number other than the last one taken.
    pub fn wait(&mut self) -> Next {
        let req = self.region.word(off::REQ_SEQ);
        // No spinning when the host last ran on this CPU (it could not run meanwhile).
        let host_cpu = self.region.word(off::HOST_CPU).load(Ordering::Relaxed);
        let budget = if host_cpu != 0 && host_cpu == region::this_cpu() {
            0
        } else {
            self.layout.spin_iters
        };
        let mut n = 0u64;
        loop {
            let s = req.load(Ordering::Acquire);
            if s != self.last {
                self.last = s;
                return Next::Request(s);
            }
            if n >= budget {
                break;
            }
            n += 1;
            std::hint::spin_loop();
        }
        let waiting = self.region.word(off::STUB_WAITING);
        loop {
            waiting.store(1, Ordering::SeqCst);
            let s = req.load(Ordering::SeqCst);
            if s != self.last {
                waiting.store(0, Ordering::Relaxed);
                self.last = s;
                return Next::Request(s);
            }
            let woken = futex::wait(req, s, super::STUB_SLICE);
            waiting.store(0, Ordering::Relaxed);
            if !matches!(woken, Woken::Maybe) {
                return Next::Idle;
            }
        }
    }

    /// A copy of the request's frame header.
    pub fn header(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        // The request area is at least a header long (checked when mapped).
        let _ = self.region.read(self.layout.req, &mut h);
        h
    }

    /// Copies payload bytes `at..at + dst.len()` of the request.
    pub fn read_payload(&self, at: usize, dst: &mut [u8]) -> Result<(), ShmError> {
        let at = at.checked_add(HEADER_LEN).ok_or(ShmError::Layout {
            what: "a read past the request area",
        })?;
        if at.saturating_add(dst.len()) > self.layout.req_len {
            return Err(ShmError::Layout {
                what: "a read past the request area",
            });
        }
        self.region.read(self.layout.req + at, dst)
    }

    /// The address of payload bytes `at..at + n` of the request, for the plugin's call.
    pub fn payload_ptr(&self, at: usize, n: usize) -> Result<*const u8, ShmError> {
        let at = at.checked_add(HEADER_LEN).ok_or(ShmError::Layout {
            what: "a read past the request area",
        })?;
        if at.saturating_add(n) > self.layout.req_len {
            return Err(ShmError::Layout {
                what: "a read past the request area",
            });
        }
        self.region.raw(self.layout.req + at, n)
    }

    /// The address of the response area's first payload byte: the stub writes a call's
    /// output there directly ([`StubRing::response_payload`] bytes are writable), then
    /// publishes just the header with [`StubRing::respond`].
    pub fn response_payload_ptr(&self) -> Result<*mut u8, ShmError> {
        let n = self.response_payload();
        self.region
            .raw(self.layout.resp + HEADER_LEN, n)
            .map(<*const u8>::cast_mut)
    }

    /// The largest payload an answer may have.
    pub fn response_payload(&self) -> usize {
        self.layout.response_payload()
    }

    /// Publishes `frame` as the answer to request `seq`; `pipe_frames` is how many frames
    /// the stub has written to the pipe since HELLO. Wakes the host only if it sleeps.
    pub fn respond(&mut self, seq: u32, frame: &[u8], pipe_frames: u64) -> Result<(), ShmError> {
        if frame.len() > self.layout.resp_len {
            return Err(ShmError::Layout {
                what: "an answer larger than the response area",
            });
        }
        self.region.write(self.layout.resp, frame)?;
        self.region
            .word(off::STUB_CPU)
            .store(region::this_cpu(), Ordering::Relaxed);
        self.region
            .word64(off::PIPE_FRAMES)
            .store(pipe_frames, Ordering::Release);
        let word = self.region.word(off::RESP_SEQ);
        word.store(seq, Ordering::SeqCst);
        if self.region.word(off::HOST_WAITING).load(Ordering::SeqCst) != 0 {
            futex::wake(word);
        }
        Ok(())
    }
}
