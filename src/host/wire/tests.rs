//! The codec: round trips, every malformed case, random bytes; and the frame source over
//! a real pipe.

use std::io::Write;
use std::os::fd::OwnedFd;

use proptest::prelude::*;

use super::codec::*;
use super::source::{End, Source};

fn header(len: u32, kind: u16, flags: u16, id: u64) -> [u8; HEADER_LEN] {
    let mut b = [0u8; HEADER_LEN];
    b[0..4].copy_from_slice(&len.to_le_bytes());
    b[4..6].copy_from_slice(&kind.to_le_bytes());
    b[6..8].copy_from_slice(&flags.to_le_bytes());
    b[8..16].copy_from_slice(&id.to_le_bytes());
    b
}

/// Decodes a whole frame as the server does.
fn decode(frame: &[u8]) -> Result<Request<'_>, BadFrame> {
    let head: [u8; HEADER_LEN] = frame[..HEADER_LEN].try_into().expect("header");
    let h = decode_header(&head).expect("header decodes");
    assert_eq!(h.len as usize, frame.len() - HEADER_LEN, "length field");
    decode_request(&h, &frame[HEADER_LEN..])
}

fn raw(kind: FrameType, id: u64, body: &[u8]) -> Vec<u8> {
    encode(kind, id, body).expect("encode")
}

fn call_body(plugin: &[u8], method: &[u8], input: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for name in [plugin, method] {
        b.extend_from_slice(&u16::try_from(name.len()).expect("short").to_le_bytes());
        b.extend_from_slice(name);
    }
    b.extend_from_slice(input);
    b
}

fn control_body(op: u8, plugin: &[u8], rest: &[u8]) -> Vec<u8> {
    let mut b = vec![op];
    b.extend_from_slice(&u16::try_from(plugin.len()).expect("short").to_le_bytes());
    b.extend_from_slice(plugin);
    b.extend_from_slice(rest);
    b
}

#[test]
fn the_header_is_the_plugin_protocols_layout() {
    let f = raw(FrameType::Call, 0x0102_0304_0506_0708, b"abc");
    assert_eq!(
        f[..HEADER_LEN],
        [3, 0, 0, 0, 0x02, 0x01, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    let h = decode_header(&f[..HEADER_LEN].try_into().expect("16")).expect("decode");
    assert_eq!(
        h,
        Header {
            len: 3,
            kind: 0x102,
            id: 0x0102_0304_0506_0708
        }
    );
}

#[test]
fn every_type_number_round_trips_and_echoes_the_plugin_protocol() {
    for n in 0..=u16::MAX {
        if let Some(t) = FrameType::from_u16(n) {
            assert_eq!(t as u16, n);
            assert!(!t.name().is_empty());
        }
    }
    assert_eq!(FrameType::Hello as u16 & 0xff, 1);
    assert_eq!(FrameType::Call as u16 & 0xff, 2);
    assert_eq!(FrameType::Result as u16 & 0xff, 3);
    assert_eq!(FrameType::Error as u16 & 0xff, 4);
    assert_eq!(FrameType::Shutdown as u16 & 0xff, 6);
}

#[test]
fn headers_that_put_the_reader_out_of_step_are_refused() {
    let bad_flags = decode_header(&header(0, FrameType::Call as u16, 1, 1));
    assert_eq!(bad_flags, Err(HeaderError::Flags { flags: 1 }));
    let huge = decode_header(&header(u32::MAX, FrameType::Call as u16, 0, 1));
    assert_eq!(huge, Err(HeaderError::TooLarge { len: u32::MAX }));
    let over = decode_header(&header(MAX_PAYLOAD + 1, 0x102, 0, 1));
    assert_eq!(
        over,
        Err(HeaderError::TooLarge {
            len: MAX_PAYLOAD + 1
        })
    );
    // The cap itself is allowed, and the type is not the header's business.
    assert!(decode_header(&header(MAX_PAYLOAD, 0x102, 0, 1)).is_ok());
    assert!(decode_header(&header(0, 0xbeef, 0, 1)).is_ok());
}

#[test]
fn payloads_above_the_cap_are_not_encoded() {
    let big = vec![0u8; MAX_PAYLOAD as usize + 1];
    assert_eq!(
        encode(FrameType::Result, 1, &big),
        Err(TooLarge { len: big.len() })
    );
    let at_cap = vec![0u8; MAX_PAYLOAD as usize];
    assert_eq!(
        encode(FrameType::Result, 1, &at_cap).map(|f| f.len()),
        Ok(HEADER_LEN + at_cap.len())
    );
}

#[test]
fn requests_round_trip() {
    let upgrade = UpgradeTo {
        plugin: "/opt/p/new.so".into(),
        profile: Some("/etc/p.yaml".into()),
    };
    let cases = [
        Request::Call {
            id: 1,
            plugin: "hello",
            method: "greet",
            input: b"world",
        },
        Request::Call {
            id: u64::MAX,
            plugin: "ünï",
            method: "m",
            input: &[0, 0xff, 0x80],
        },
        Request::Call {
            id: 7,
            plugin: "",
            method: "",
            input: b"",
        },
        Request::Cancel { id: 9 },
        Request::Shutdown,
        Request::Control {
            id: 3,
            op: Op::Status,
            plugin: "",
            upgrade: None,
        },
        Request::Control {
            id: 4,
            op: Op::Upgrade,
            plugin: "hello",
            upgrade: Some(upgrade),
        },
        Request::Control {
            id: 5,
            op: Op::Upgrade,
            plugin: "hello",
            upgrade: Some(UpgradeTo {
                plugin: "new.so".into(),
                profile: None,
            }),
        },
    ];
    for req in &cases {
        let frame = encode_request(req).expect("encode");
        assert_eq!(decode(&frame).as_ref(), Ok(req), "{req:?}");
    }
    for op in [Op::Pause, Op::Resume, Op::Release, Op::Status] {
        let req = Request::Control {
            id: 2,
            op,
            plugin: "p",
            upgrade: None,
        };
        let frame = encode_request(&req).expect("encode");
        assert_eq!(decode(&frame), Ok(req));
        assert_eq!(Op::from_u8(op as u8), Some(op));
    }
}

#[test]
fn the_call_example_of_the_spec_is_exact() {
    let frame = encode_request(&Request::Call {
        id: 1,
        plugin: "hello",
        method: "greet",
        input: b"world",
    })
    .expect("encode");
    let hex: Vec<String> = frame.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex.join(" "),
        "13 00 00 00 02 01 00 00 01 00 00 00 00 00 00 00 \
         05 00 68 65 6c 6c 6f 05 00 67 72 65 65 74 77 6f 72 6c 64"
    );
}

#[test]
fn names_longer_than_a_u16_length_are_not_encoded() {
    let long = "x".repeat(65536);
    let req = Request::Call {
        id: 1,
        plugin: &long,
        method: "m",
        input: b"",
    };
    assert_eq!(encode_request(&req), Err(EncodeError::Name { len: 65536 }));
}

#[test]
fn frames_of_the_wrong_type_are_refused() {
    let f = raw(FrameType::Call, 1, b"");
    let mut unknown = f.clone();
    unknown[4..6].copy_from_slice(&0x0002u16.to_le_bytes());
    assert_eq!(decode(&unknown), Err(BadFrame::UnknownType { kind: 2 }));
    for kind in [
        FrameType::Hello,
        FrameType::Result,
        FrameType::Error,
        FrameType::Event,
        FrameType::Done,
    ] {
        assert_eq!(
            decode(&raw(kind, 1, b"{}")),
            Err(BadFrame::NotARequest { kind })
        );
    }
}

#[test]
fn id_zero_is_refused_for_calls_cancels_and_controls() {
    let call = raw(FrameType::Call, 0, &call_body(b"p", b"m", b""));
    assert_eq!(
        decode(&call),
        Err(BadFrame::ZeroId {
            kind: FrameType::Call
        })
    );
    let cancel = raw(FrameType::Cancel, 0, b"");
    assert_eq!(
        decode(&cancel),
        Err(BadFrame::ZeroId {
            kind: FrameType::Cancel
        })
    );
    let control = raw(FrameType::Control, 0, &control_body(4, b"", b""));
    assert_eq!(
        decode(&control),
        Err(BadFrame::ZeroId {
            kind: FrameType::Control
        })
    );
    // SHUTDOWN's id does not matter.
    assert_eq!(
        decode(&raw(FrameType::Shutdown, 0, b"")),
        Ok(Request::Shutdown)
    );
}

#[test]
fn every_truncation_of_a_call_body_is_refused() {
    let body = call_body(b"hello", b"greet", b"");
    // Every cut that ends inside the two names (a cut after them is an empty input).
    for cut in 0..body.len() {
        let frame = raw(FrameType::Call, 1, &body[..cut]);
        let got = decode(&frame);
        assert!(
            matches!(
                got,
                Err(BadFrame::Truncated {
                    kind: FrameType::Call,
                    ..
                })
            ),
            "cut {cut}: {got:?}"
        );
    }
    // A length that claims more than the body holds.
    let mut lying = body.clone();
    lying[0..2].copy_from_slice(&u16::MAX.to_le_bytes());
    assert!(matches!(
        decode(&raw(FrameType::Call, 1, &lying)),
        Err(BadFrame::Truncated {
            field: "plugin id",
            ..
        })
    ));
}

#[test]
fn ids_and_methods_must_be_utf8() {
    let bad_plugin = call_body(b"\xff\xfe", b"m", b"");
    assert_eq!(
        decode(&raw(FrameType::Call, 1, &bad_plugin)),
        Err(BadFrame::Utf8 {
            kind: FrameType::Call,
            field: "plugin id"
        })
    );
    let bad_method = call_body(b"p", b"gr\xc3", b"");
    assert_eq!(
        decode(&raw(FrameType::Call, 1, &bad_method)),
        Err(BadFrame::Utf8 {
            kind: FrameType::Call,
            field: "method"
        })
    );
    let bad_control = control_body(1, b"\x80", b"");
    assert_eq!(
        decode(&raw(FrameType::Control, 1, &bad_control)),
        Err(BadFrame::Utf8 {
            kind: FrameType::Control,
            field: "plugin id"
        })
    );
    // The input is bytes: anything goes.
    let ok = call_body(b"p", b"m", b"\xff\x00");
    assert!(decode(&raw(FrameType::Call, 1, &ok)).is_ok());
}

#[test]
fn bodies_that_must_be_empty_are() {
    assert_eq!(
        decode(&raw(FrameType::Cancel, 1, b"x")),
        Err(BadFrame::Trailing {
            kind: FrameType::Cancel,
            len: 1
        })
    );
    assert_eq!(
        decode(&raw(FrameType::Shutdown, 0, b"xy")),
        Err(BadFrame::Trailing {
            kind: FrameType::Shutdown,
            len: 2
        })
    );
    assert_eq!(
        decode(&raw(FrameType::Control, 1, &control_body(1, b"p", b"!"))),
        Err(BadFrame::Trailing {
            kind: FrameType::Control,
            len: 1
        })
    );
}

#[test]
fn malformed_controls_are_refused() {
    let ctl = |body: &[u8]| decode(&raw(FrameType::Control, 1, body)).map(|_| ());
    assert_eq!(
        ctl(b""),
        Err(BadFrame::Truncated {
            kind: FrameType::Control,
            field: "operation"
        })
    );
    for op in [0u8, 6, 0xff] {
        assert_eq!(
            ctl(&control_body(op, b"p", b"")),
            Err(BadFrame::UnknownOp { op })
        );
    }
    assert!(matches!(
        ctl(&[1, 5]),
        Err(BadFrame::Truncated {
            field: "plugin id",
            ..
        })
    ));
    for op in [Op::Pause, Op::Resume, Op::Release, Op::Upgrade] {
        assert_eq!(
            ctl(&control_body(op as u8, b"", b"")),
            Err(BadFrame::NoPlugin { op })
        );
    }
    for json in [
        &b""[..],
        b"{",
        b"[]",
        b"{}",
        b"{\"plugin\": 5}",
        b"{\"plugin\": \"a.so\", \"extra\": 1}",
        b"{\"plugin\": \"a.so\"} trailing",
    ] {
        let got = ctl(&control_body(5, b"p", json));
        assert!(
            matches!(got, Err(BadFrame::Upgrade { .. })),
            "{:?}: {got:?}",
            String::from_utf8_lossy(json)
        );
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut head = [0u8; HEADER_LEN];
        let n = bytes.len().min(HEADER_LEN);
        head[..n].copy_from_slice(&bytes[..n]);
        if let Ok(h) = decode_header(&head) {
            prop_assert!(h.len <= MAX_PAYLOAD);
            let body = &bytes[n..];
            let _ = decode_request(&h, body);
        }
    }

    #[test]
    fn random_bodies_of_each_request_type_never_panic(
        kind in prop_oneof![Just(0x102u16), Just(0x106), Just(0x107), Just(0x108)],
        id in any::<u64>(),
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let h = Header { len: u32::try_from(body.len()).unwrap_or(u32::MAX), kind, id };
        if let Ok(req) = decode_request(&h, &body) {
            // What decodes re-encodes to the same bytes (but JSON, which may be spelled
            // many ways).
            if !matches!(req, Request::Control { op: Op::Upgrade, .. }) {
                let frame = encode_request(&req).expect("encode");
                prop_assert_eq!(&frame[HEADER_LEN..], &body[..]);
            }
        }
    }

    #[test]
    fn calls_round_trip(
        id in 1..u64::MAX,
        plugin in "[a-z0-9_-]{0,64}",
        method in "\\PC{0,40}",
        input in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let req = Request::Call { id, plugin: &plugin, method: &method, input: &input };
        let frame = encode_request(&req).expect("encode");
        prop_assert_eq!(decode(&frame), Ok(req));
    }
}

// The source, over a pipe.

fn pipe() -> (OwnedFd, std::fs::File) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe");
    (r, std::fs::File::from(w))
}

#[test]
fn the_source_reads_frames_whole_and_in_pieces() {
    let (stop, _stop_w) = pipe();
    let (r, mut w) = pipe();
    let small = raw(FrameType::Cancel, 5, b"");
    let big_input = vec![7u8; 200_000];
    let big = encode_request(&Request::Call {
        id: 6,
        plugin: "p",
        method: "m",
        input: &big_input,
    })
    .expect("encode");
    let writer = std::thread::spawn(move || {
        w.write_all(&small).expect("write");
        // In odd pieces, across the header.
        for chunk in big.chunks(7001) {
            w.write_all(chunk).expect("write");
        }
        w.write_all(&small[..10]).expect("write");
    });
    let mut src = Source::new(r, stop_fd(&stop));
    let (h, body) = src.next().expect("small");
    assert_eq!((h.kind, h.id, body.len()), (0x107, 5, 0));
    let (h, body) = src.next().expect("big");
    assert_eq!((h.kind, h.id), (0x102, 6));
    assert_eq!(
        decode_request(&h, &body),
        Ok(Request::Call {
            id: 6,
            plugin: "p",
            method: "m",
            input: &big_input
        })
    );
    writer.join().expect("writer");
    assert!(matches!(
        src.next(),
        Err(End::Truncated { got: 10, want: 16 })
    ));
}

fn stop_fd(fd: &OwnedFd) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    fd.as_fd()
}

#[test]
fn the_source_refuses_a_huge_claim_before_reading_on() {
    let (stop, _stop_w) = pipe();
    let (r, mut w) = pipe();
    w.write_all(&header(u32::MAX, 0x102, 0, 1)).expect("write");
    let mut src = Source::new(r, stop_fd(&stop));
    assert!(matches!(
        src.next(),
        Err(End::Header(HeaderError::TooLarge { .. }))
    ));
}

#[test]
fn the_source_reports_a_payload_cut_short_and_a_clean_end() {
    let (stop, _stop_w) = pipe();
    let (r, mut w) = pipe();
    // Claims the cap, sends three bytes, closes.
    w.write_all(&header(MAX_PAYLOAD, 0x102, 0, 1))
        .expect("write");
    w.write_all(b"abc").expect("write");
    drop(w);
    let mut src = Source::new(r, stop_fd(&stop));
    match src.next() {
        Err(End::Truncated { got, want }) => {
            assert_eq!(got, HEADER_LEN + 3);
            assert_eq!(want, HEADER_LEN + MAX_PAYLOAD as usize);
        }
        other => panic!("{other:?}"),
    }
    let (stop, _stop_w) = pipe();
    let (r, w) = pipe();
    drop(w);
    let mut src = Source::new(r, stop_fd(&stop));
    assert!(matches!(src.next(), Err(End::Eof)));
}

#[test]
fn the_source_stops_when_the_stop_descriptor_is_readable() {
    let (stop, mut stop_w) = pipe();
    let (r, mut w) = pipe();
    let mut src = Source::new(r, stop_fd(&stop));
    stop_w.write_all(&[1]).expect("write");
    assert!(matches!(src.next(), Err(End::Stopped)));
    // Even with input waiting.
    w.write_all(&raw(FrameType::Shutdown, 0, b""))
        .expect("write");
    assert!(matches!(src.next(), Err(End::Stopped)));
}
