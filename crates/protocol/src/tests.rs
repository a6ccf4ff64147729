//! Codec tests: round trips, every malformed header, and properties over arbitrary bytes.

use std::io;

use proptest::prelude::*;

use super::ProtocolError;
use super::consts::{ErrorKind, FrameType, HEADER_LEN};
use super::frame::{FrameReader, FrameWriter, ReadError, decode_header, encode_header};
use super::payload::{self, CallPayload, ErrorPayload, Hello, LogPayload};

/// A `read(2)`-like source over a byte slice, handing out at most `chunk` bytes a time.
fn source(bytes: &[u8], chunk: usize) -> impl FnMut(&mut [u8]) -> io::Result<usize> + '_ {
    let mut at = 0;
    move |buf: &mut [u8]| {
        let n = buf.len().min(chunk.max(1)).min(bytes.len() - at);
        buf[..n].copy_from_slice(&bytes[at..at + n]);
        at += n;
        Ok(n)
    }
}

fn frame(kind: FrameType, id: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = encode_header(kind, u32::try_from(payload.len()).unwrap(), id).to_vec();
    v.extend_from_slice(payload);
    v
}

#[test]
fn header_round_trip() {
    let b = encode_header(FrameType::Result, 42, 7);
    let h = decode_header(&b, 100).unwrap();
    assert_eq!((h.kind, h.len, h.id), (FrameType::Result, 42, 7));
}

#[test]
fn four_gib_length_is_refused_before_any_allocation() {
    let mut b = encode_header(FrameType::Result, u32::MAX, 1).to_vec();
    b.extend_from_slice(b"tail");
    let mut r = FrameReader::new(1 << 20);
    let e = r.read(source(&b, 4096)).unwrap_err();
    assert!(matches!(
        e,
        ReadError::Protocol(ProtocolError::TooLarge { len: u32::MAX, .. })
    ));
    assert_eq!(r.capacity(), 0, "nothing reserved for a refused frame");
}

#[test]
fn bad_type_flags_and_truncation_are_typed_errors() {
    let mut b = encode_header(FrameType::Log, 0, 0);
    b[4] = 99;
    assert_eq!(
        decode_header(&b, 10),
        Err(ProtocolError::UnknownType { kind: 99 })
    );
    let mut b = encode_header(FrameType::Log, 0, 0);
    b[6] = 1;
    assert_eq!(
        decode_header(&b, 10),
        Err(ProtocolError::Flags { flags: 1 })
    );

    let whole = frame(FrameType::Result, 1, b"0123456789");
    let mut r = FrameReader::new(64);
    let e = r.read(source(&whole[..HEADER_LEN + 4], 3)).unwrap_err();
    assert!(matches!(
        e,
        ReadError::Protocol(ProtocolError::Truncated { got: 20, want: 26 })
    ));
    let e = r.read(source(&whole[..5], 3)).unwrap_err();
    assert!(matches!(
        e,
        ReadError::Protocol(ProtocolError::Truncated { got: 5, want: 16 })
    ));
    assert!(matches!(
        r.read(source(&[], 1)).unwrap_err(),
        ReadError::Eof
    ));
}

/// A small frame costs one read; frames that arrived together need no further read; a
/// big payload is read straight into the payload buffer.
#[test]
fn read_ahead_saves_reads() {
    let mut bytes = frame(FrameType::Log, 1, b"first");
    bytes.extend(frame(FrameType::Result, 1, b"second"));
    let big = vec![7u8; 3 * super::frame::READ_AHEAD];
    bytes.extend(frame(FrameType::Result, 2, &big));
    let mut src = source(&bytes, usize::MAX);
    let mut reads = Vec::new();
    let mut counted = |b: &mut [u8]| {
        let n = src(b)?;
        reads.push((b.len(), n));
        Ok(n)
    };
    let mut r = FrameReader::new(1 << 20);
    assert_eq!(r.read(&mut counted).unwrap().payload, b"first");
    assert_eq!(r.read(&mut counted).unwrap().payload, b"second");
    assert_eq!(r.read(&mut counted).unwrap().payload, &big[..]);
    assert!(matches!(r.read(&mut counted), Err(ReadError::Eof)));
    // One read for both small frames and the start of the big one, one for the rest of
    // the big payload (asked for exactly what is missing), one for the end of input.
    assert_eq!(reads.len(), 3, "{reads:?}");
    let first = reads[0].1;
    assert_eq!(reads[1].0, bytes.len() - first);
    assert_eq!(r.capacity(), big.len());
}

#[test]
fn payloads_round_trip() {
    let mut w = FrameWriter::new(4096);
    payload::write_hello(&mut w, "csv", "1.0", ["convert", "validate"].into_iter()).unwrap();
    let bytes = w.finish().to_vec();
    let mut r = FrameReader::new(4096);
    let f = r.read(source(&bytes, 7)).unwrap();
    assert_eq!(f.kind, FrameType::Hello);
    let h = Hello::parse(f.payload).unwrap();
    assert_eq!(h.name, "csv");
    assert_eq!(h.methods, ["convert", "validate"]);

    payload::write_call(&mut w, 9, "convert", b"a,b\n1,2\n").unwrap();
    let bytes = w.finish().to_vec();
    let f = r.read(source(&bytes, 1000)).unwrap();
    let c = CallPayload::parse(f.payload).unwrap();
    assert_eq!(
        (f.id, c.method, c.input),
        (9, "convert", &b"a,b\n1,2\n"[..])
    );

    payload::write_error(&mut w, 9, ErrorKind::Plugin, -3, "bad row").unwrap();
    let bytes = w.finish().to_vec();
    let f = r.read(source(&bytes, 1000)).unwrap();
    let e = ErrorPayload::parse(f.payload).unwrap();
    assert_eq!(
        (e.kind, e.status, e.message),
        (ErrorKind::Plugin, -3, "bad row")
    );

    payload::write_log(&mut w, 0, 2, b"careful").unwrap();
    let bytes = w.finish().to_vec();
    let f = r.read(source(&bytes, 1000)).unwrap();
    let l = LogPayload::parse(f.payload).unwrap();
    assert_eq!((l.level, l.text), (2, &b"careful"[..]));
}

#[test]
fn malformed_payloads_are_refused() {
    assert!(Hello::parse(b"").is_err());
    // A method count far above what the bytes could hold: refused, nothing huge reserved.
    let mut p = 1u32.to_le_bytes().to_vec();
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(b"\x01a\x01b\xff\xff");
    assert!(Hello::parse(&p).is_err());
    // Duplicate method.
    let mut p = 1u32.to_le_bytes().to_vec();
    p.extend_from_slice(&1u32.to_le_bytes());
    p.extend_from_slice(b"\x01a\x01b\x02\x00\x01m\x01m");
    assert!(Hello::parse(&p).is_err());
    // Control character in a name.
    assert!(CallPayload::parse(b"\x02a\n").is_err());
    assert!(CallPayload::parse(b"\x00").is_err());
    assert!(ErrorPayload::parse(&[99, 0, 0, 0, 0, 0, 0, 0]).is_err());
    assert!(ErrorPayload::parse(&[1, 0, 0, 0, 0, 0, 0, 0, 0xff]).is_err());
    assert!(LogPayload::parse(&[5, 0, 0, 0]).is_err());
    assert!(payload::check_shutdown(b"x").is_err());
}

#[test]
fn writer_refuses_past_the_cap_and_buffers_stay_bounded() {
    let mut w = FrameWriter::new(10);
    w.begin(FrameType::Result, 1);
    w.push(b"0123456789").unwrap();
    assert!(w.push(b"x").is_err());
    assert_eq!(w.finish().len(), HEADER_LEN + 10);

    let cap = 1000;
    let mut r = FrameReader::new(cap);
    for len in [10usize, 999, 1000, 3, 700] {
        let bytes = frame(FrameType::Result, 1, &vec![7u8; len]);
        let f = r.read(source(&bytes, 333)).unwrap();
        assert_eq!(f.payload.len(), len);
        assert!(r.capacity() <= cap as usize);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any byte sequence, in any chunking: frames or a clean error, never a panic, and the
    /// buffer never reserves more than the cap.
    #[test]
    fn any_bytes_decode_cleanly(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..64,
        cap in 0u32..1024,
    ) {
        let mut r = FrameReader::new(cap);
        let mut src = source(&bytes, chunk);
        for _ in 0..bytes.len() + 1 {
            match r.read(&mut src) {
                Ok(f) => {
                    prop_assert!(f.payload.len() <= cap as usize);
                    // Payload parsers must not panic either.
                    let _ = Hello::parse(f.payload);
                    let _ = CallPayload::parse(f.payload);
                    let _ = ErrorPayload::parse(f.payload);
                    let _ = LogPayload::parse(f.payload);
                }
                Err(_) => break,
            }
            prop_assert!(r.capacity() <= cap as usize);
        }
        prop_assert!(r.capacity() <= cap as usize);
    }

    /// Headers with a valid type decode iff flags are 0 and the length fits.
    #[test]
    fn header_checks(len in any::<u32>(), kind in 0u16..10, flags in any::<u16>(), id in any::<u64>(), cap in any::<u32>()) {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&len.to_le_bytes());
        b[4..6].copy_from_slice(&kind.to_le_bytes());
        b[6..8].copy_from_slice(&flags.to_le_bytes());
        b[8..16].copy_from_slice(&id.to_le_bytes());
        let ok = (1..=6).contains(&kind) && flags == 0 && len <= cap;
        prop_assert_eq!(decode_header(&b, cap).is_ok(), ok);
    }

    /// Whatever the method and input, a CALL survives encode → decode.
    #[test]
    fn call_round_trip(method in "[a-z_]{1,40}", input in proptest::collection::vec(any::<u8>(), 0..512), id in 1u64..) {
        let mut w = FrameWriter::new(4096);
        payload::write_call(&mut w, id, &method, &input).unwrap();
        let bytes = w.finish().to_vec();
        let mut r = FrameReader::new(4096);
        let f = r.read(source(&bytes, 5)).unwrap();
        let c = CallPayload::parse(f.payload).unwrap();
        prop_assert_eq!(f.id, id);
        prop_assert_eq!(c.method, method.as_str());
        prop_assert_eq!(c.input, &input[..]);
    }
}

/// A fake stub on a real pipe pair, in a thread: the host's side of the channel.
fn fake_stub(serve: impl FnOnce(std::fs::File, std::fs::File) + Send + 'static) -> super::Channel {
    use std::os::fd::{FromRawFd, OwnedFd};
    let pipe = || {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills two descriptors that nothing else owns.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: pipe2 just made fds[0]; this is its only owner.
        let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
        // SAFETY: likewise fds[1].
        let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        (r, w)
    };
    let (to_stub_r, to_stub_w) = pipe();
    let (from_stub_r, from_stub_w) = pipe();
    std::thread::spawn(move || serve(to_stub_r.into(), from_stub_w.into()));
    super::Channel::new(from_stub_r, to_stub_w, 1 << 16).unwrap()
}

/// The host reads before it polls; a stub that never stops sending LOG frames still
/// cannot hold a call past its deadline.
#[test]
fn endless_log_frames_end_in_a_timeout() {
    use std::io::Write;
    let mut chan = fake_stub(|_input, mut out| {
        let mut w = FrameWriter::new(1 << 16);
        payload::write_hello(&mut w, "p", "1", ["m"].into_iter()).unwrap();
        out.write_all(w.finish()).unwrap();
        payload::write_log(&mut w, 1, 1, b"again").unwrap();
        let log = w.finish().to_vec();
        while out.write_all(&log).is_ok() {}
    });
    chan.handshake(std::time::Duration::from_secs(5)).unwrap();
    let started = std::time::Instant::now();
    let e = chan
        .call("m", b"x", std::time::Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(e, super::ChannelError::Timeout { .. }), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// A call's input goes out after the header and method (writev), whole, even when it is
/// larger than the pipe holds at once; the reply comes back through the read-ahead.
#[test]
fn large_input_and_small_reply_round_trip() {
    use std::io::{Read, Write};
    let mut chan = fake_stub(|mut input, mut out| {
        let mut w = FrameWriter::new(1 << 16);
        payload::write_hello(&mut w, "p", "1", ["m"].into_iter()).unwrap();
        out.write_all(w.finish()).unwrap();
        let mut r = FrameReader::new(1 << 16);
        let mut src = |b: &mut [u8]| input.read(b);
        let f = r.read(&mut src).unwrap();
        let call = CallPayload::parse(f.payload).unwrap();
        let sum: u64 = call.input.iter().map(|&b| u64::from(b)).sum();
        w.begin(FrameType::Result, f.id);
        w.push(&sum.to_le_bytes()).unwrap();
        out.write_all(w.finish()).unwrap();
    });
    chan.handshake(std::time::Duration::from_secs(5)).unwrap();
    let input: Vec<u8> = (0..60_000u32).map(|i| (i % 251) as u8).collect();
    let want: u64 = input.iter().map(|&b| u64::from(b)).sum();
    let out = chan
        .call("m", &input, std::time::Duration::from_secs(5))
        .unwrap();
    assert_eq!(out, want.to_le_bytes());
    assert_eq!(chan.last_output(), want.to_le_bytes());
    let too_big = vec![0u8; 1 << 16];
    assert!(matches!(
        chan.call("m", &too_big, std::time::Duration::from_secs(1)),
        Err(super::ChannelError::InputTooLarge { .. })
    ));
}

#[test]
fn names_shown_to_people_hold_no_control_or_bidi_characters() {
    assert_eq!(payload::check_name(b"csv2json"), Some("csv2json"));
    assert_eq!(
        payload::check_name("caf\u{e9} 1.0".as_bytes()),
        Some("caf\u{e9} 1.0")
    );
    for bad in [
        "a\u{1b}]0;x\u{7}",
        "a\rb",
        "txt\u{202e}exe",
        "a\u{2066}b",
        "a\u{2028}b",
        "",
    ] {
        assert_eq!(payload::check_name(bad.as_bytes()), None, "{bad:?}");
    }
    assert_eq!(payload::check_name(b"\xff"), None);
}
