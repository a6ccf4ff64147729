//! Feeds arbitrary bytes, in arbitrary chunk sizes, to the frame reader and every payload
//! parser, as the host side reads what a hostile plugin writes. Properties: no panic, and
//! the reader never reserves more than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plugjail_protocol::FrameReader;
use plugjail_protocol::payload::{CallPayload, ErrorPayload, Hello, LogPayload, check_shutdown};

fuzz_target!(|data: &[u8]| {
    // The first bytes choose the cap and the chunking; the rest is the stream.
    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let cap = u32::from_le_bytes([*a, *b, 0, 0]);
    let chunk = usize::from(*c).max(1);
    let mut at = 0;
    let mut read = |buf: &mut [u8]| {
        let n = buf.len().min(chunk).min(rest.len() - at);
        buf[..n].copy_from_slice(&rest[at..at + n]);
        at += n;
        Ok(n)
    };
    let mut reader = FrameReader::new(cap);
    while let Ok(f) = reader.read(&mut read) {
        assert!(f.payload.len() <= cap as usize);
        let _ = Hello::parse(f.payload);
        let _ = CallPayload::parse(f.payload);
        let _ = ErrorPayload::parse(f.payload);
        let _ = LogPayload::parse(f.payload);
        let _ = check_shutdown(f.payload);
    }
    assert!(reader.capacity() <= cap as usize);
});
