//! The region between two mappings of one memfd (as host and stub map it), in one process:
//! a call's round trip, the futex handoff across mappings, and the host's checks.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::host::Waited;
use super::region::{Layout, off};
use super::stub::Next;
use super::{HostRing, ShmOptions, StubRing};
use crate::ProtocolError;
use crate::consts::FrameType;
use crate::frame::encode_header;

fn pair(spin: Duration) -> (HostRing, StubRing) {
    let opts = ShmOptions {
        spin,
        arena: 64 << 10,
        scrub_inputs: true,
    };
    let (host, fd) = HostRing::create(&opts).expect("create");
    // SAFETY: F_GET_SEALS takes no pointer.
    let seals = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) };
    assert_eq!(
        seals & (libc::F_SEAL_SHRINK | libc::F_SEAL_GROW),
        libc::F_SEAL_SHRINK | libc::F_SEAL_GROW
    );
    // SAFETY: a sealed memfd cannot shrink: ftruncate must fail.
    assert_ne!(unsafe { libc::ftruncate(fd.as_raw_fd(), 0) }, 0);
    let stub = StubRing::map(fd.as_raw_fd()).expect("stub map");
    (host, stub)
}

#[test]
fn a_call_crosses_both_ways_and_sleeping_sides_are_woken() {
    for spin in [Duration::ZERO, Duration::from_micros(50)] {
        let (mut host, mut stub) = pair(spin);
        let server = std::thread::spawn(move || {
            for _ in 0..50 {
                let Next::Request(seq) = (loop {
                    if let n @ Next::Request(_) = stub.wait() {
                        break n;
                    }
                }) else {
                    unreachable!()
                };
                let h = crate::frame::decode_header(&stub.header(), 1 << 20).expect("header");
                let mut input = vec![0u8; h.len as usize];
                stub.read_payload(0, &mut input).expect("payload");
                let mut frame = encode_header(FrameType::Result, h.len, h.id).to_vec();
                frame.extend_from_slice(&input);
                stub.respond(seq, &frame, 0).expect("respond");
            }
        });
        for id in 1..=50u64 {
            let input = vec![u8::try_from(id).unwrap(); usize::try_from(id * 100).unwrap()];
            let head = encode_header(FrameType::Call, u32::try_from(input.len()).unwrap(), id);
            let seq = host.send(&head, &input).expect("send");
            if id % 10 == 0 {
                // Let the stub fall asleep first: the wake-up path.
                std::thread::sleep(Duration::from_millis(5));
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            let w = host.wait(seq, deadline, || Ok::<(), ()>(()));
            assert_eq!(w, Ok(Waited::Answered));
            let (h, frames) = host.take_answer(1 << 20).expect("answer");
            assert_eq!((h.kind, h.id, frames), (FrameType::Result, id, 0));
            assert_eq!(host.answer(h.len as usize), input);
            host.scrub();
        }
        server.join().expect("stub thread");
    }
}

#[test]
fn no_answer_ends_at_the_deadline_and_forged_headers_are_refused() {
    let (mut host, mut stub) = pair(Duration::from_micros(10));
    let head = encode_header(FrameType::Call, 0, 1);
    let seq = host.send(&head, &[]).expect("send");
    let t = Instant::now();
    let mut between = 0;
    let w = host.wait(seq, t + Duration::from_millis(100), || {
        between += 1;
        Ok::<(), ()>(())
    });
    assert_eq!(w, Ok(Waited::TimedOut));
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    assert!(
        between >= 2,
        "the pipe is looked at between slices: {between}"
    );
    // A length past the area (and the cap) is refused before anything is copied (written
    // here through the stub's mapping, as a plugin in the stub's address space could).
    let forged = encode_header(FrameType::Result, u32::MAX - 15, 1);
    stub.respond(seq, &forged, 0).expect("publish");
    assert!(matches!(
        host.take_answer(u32::MAX),
        Err(ProtocolError::TooLarge { cap, .. }) if cap == 64 << 10
    ));
    let unknown = [0xffu8; 16];
    stub.respond(seq, &unknown, 0).expect("publish");
    assert!(matches!(
        host.take_answer(1 << 20),
        Err(ProtocolError::UnknownType { .. })
    ));
}

#[test]
fn layouts_that_leave_the_region_are_refused() {
    let l = Layout::new(4096, 10).expect("layout");
    let good = l.encode();
    assert_eq!(Layout::decode(&good, l.len).expect("decode"), l);
    let mut bad = good;
    bad[off::RESP_LEN..off::RESP_LEN + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(Layout::decode(&bad, l.len).is_err());
    let mut bad = good;
    bad[off::REQ..off::REQ + 8].copy_from_slice(&(l.resp as u64).to_le_bytes());
    assert!(Layout::decode(&bad, l.len).is_err(), "overlapping areas");
    let mut bad = good;
    bad[0] = b'X';
    assert!(Layout::decode(&bad, l.len).is_err());
    assert!(
        Layout::decode(&good, l.len - 1).is_err(),
        "shorter than it says"
    );
}
