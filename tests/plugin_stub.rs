//! plugjail-stub run directly, without the jail: the test harness plays both the jail (it
//! places the descriptors, sets no_new_privs and installs the profile's load-phase filter
//! before exec'ing the stub, as the jail sequence does) and the host (a `Channel` over
//! pipes, given with `--channel`). Plugins are C++ sources in tests/plugins/ and
//! examples/plugins/, built by tests/common/plugins.rs; the harness is
//! tests/common/stub_harness.rs. The serve phase is the jail's (its init switches it), so
//! it is tested through the real jail in tests/plugin_serve_phase.rs.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use common::plugin;
use common::stub_harness::{Session, Setup, TIMEOUT};
use plugjail::plugin_file;
use plugjail::profile::Plugin;
use plugjail::protocol::consts::{exit_code, log_level};
use plugjail::protocol::{ChannelError, ErrorKind, ProtocolError};

#[test]
fn hello_round_trip_under_the_strict_filters() {
    let mut s = Session::start(&Setup::new("hello", "strict"));
    s.hello().expect("handshake");
    let h = s.chan.hello().expect("hello").clone();
    assert_eq!((h.name.as_str(), h.version.as_str()), ("hello", "1.0.0"));
    assert_eq!(h.methods, ["greet", "echo", "fail"]);
    assert_eq!(s.call("greet", b"world").expect("greet"), b"hello, world");
    match s.call("fail", b"") {
        Err(ChannelError::Remote {
            kind: ErrorKind::Plugin,
            status: 7,
            message,
        }) => assert_eq!(message, "asked to fail"),
        other => panic!("fail: {other:?}"),
    }
    match s.call("nope", b"") {
        Err(ChannelError::Remote {
            kind: ErrorKind::UnknownMethod,
            ..
        }) => {}
        other => panic!("unknown method: {other:?}"),
    }
    assert_eq!(s.call("echo", b"still here").expect("echo"), b"still here");
    let lines = s.logs.lock().unwrap().lines.clone();
    assert!(
        lines.contains(&(log_level::INFO, "hello plugin ready".to_string())),
        "{lines:?}"
    );
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn ten_thousand_sequential_calls_return_checked_results() {
    let mut setup = Setup::new("hello", "strict");
    setup.cap = 64 << 10;
    let mut s = Session::start(&setup);
    s.hello().expect("handshake");
    for i in 0..10_000u32 {
        let input = format!("caller {i}");
        let out = s
            .chan
            .call("greet", input.as_bytes(), TIMEOUT)
            .expect("greet");
        assert_eq!(out, format!("hello, {input}").as_bytes(), "call {i}");
    }
    // The largest input that fits, echoed back; one byte more is refused on the host side
    // and the session goes on.
    let big = vec![0xa5u8; (64 << 10) - 1 - "echo".len()];
    assert_eq!(s.call("echo", &big).expect("big echo"), big);
    let too_big = vec![0u8; big.len() + 1];
    assert!(matches!(
        s.call("echo", &too_big),
        Err(ChannelError::InputTooLarge { .. })
    ));
    // Output over the cap: "hello, " + a maximal input is one byte too long.
    let long_name = vec![b'n'; (64 << 10) - 1 - "greet".len()];
    match s.call("greet", &long_name) {
        Err(ChannelError::Remote {
            kind: ErrorKind::OutputTooLarge,
            ..
        }) => {}
        other => panic!("oversized output: {other:?}"),
    }
    assert_eq!(s.call("greet", b"again").expect("after"), b"hello, again");
    assert!(s.chan.read_capacity() <= 64 << 10);
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn plugin_crashes_kill_the_stub_with_their_signal_and_the_next_session_works() {
    for (method, signal) in [
        ("segv", libc::SIGSEGV),
        ("abort", libc::SIGABRT),
        ("throw", libc::SIGABRT),
    ] {
        let mut s = Session::start(&Setup::new("crash", "default"));
        s.hello().expect("handshake");
        match s.call(method, b"") {
            Err(ChannelError::Closed) => {}
            other => panic!("{method}: {other:?}"),
        }
        assert_eq!(s.wait().signal(), Some(signal), "{method}");
    }
    let mut s = Session::start(&Setup::new("hello", "default"));
    s.hello().expect("handshake after crashes");
    assert_eq!(
        s.call("greet", b"survivor").expect("greet"),
        b"hello, survivor"
    );
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn bytes_written_to_the_channel_by_the_plugin_are_protocol_violations() {
    let cap = 64 << 10;
    type Check = fn(&ProtocolError) -> bool;
    let cases: [(&str, Check); 5] = [
        ("garbage", |e| {
            matches!(e, ProtocolError::UnknownType { .. })
        }),
        ("huge_length", |e| {
            matches!(e, ProtocolError::TooLarge { len: u32::MAX, .. })
        }),
        ("half_frame", |e| {
            matches!(e, ProtocolError::Truncated { got: 26, want: 116 })
        }),
        ("second_hello", |e| {
            matches!(e, ProtocolError::Unexpected { frame: "HELLO", .. })
        }),
        ("wrong_id", |e| {
            matches!(
                e,
                ProtocolError::WrongId {
                    got: 999,
                    want: 1,
                    ..
                }
            )
        }),
    ];
    for (method, expected) in cases {
        let mut setup = Setup::new("channel_writer", "default");
        setup.cap = cap;
        let mut s = Session::start(&setup);
        s.hello().expect("handshake");
        match s.call(method, b"") {
            Err(ChannelError::Protocol(e)) => assert!(expected(&e), "{method}: {e}"),
            other => panic!("{method}: {other:?}"),
        }
        assert!(
            s.chan.read_capacity() <= cap as usize,
            "{method}: read buffer grew to {}",
            s.chan.read_capacity()
        );
        // The channel refuses to go on once the stream is out of step.
        assert!(matches!(s.call(method, b""), Err(ChannelError::Broken)));
        s.kill();
    }
}

#[test]
fn wrong_abi_version_is_refused_before_init_or_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let mut setup = Setup::new("wrong_abi", "strict");
    setup.env.push((
        "PLUGJAIL_TEST_MARKER",
        marker.to_string_lossy().into_owned(),
    ));
    let mut s = Session::start(&setup);
    match s.hello() {
        Err(ChannelError::Startup {
            kind: ErrorKind::AbiMismatch,
            message,
            ..
        }) => assert!(message.contains("ABI version 999"), "{message}"),
        other => panic!("wrong ABI: {other:?}"),
    }
    assert_eq!(s.wait().code(), Some(exit_code::ABI_MISMATCH));
    assert!(!marker.exists(), "the plugin's init or call ran");
}

#[test]
fn forbidden_syscall_in_a_constructor_is_killed_by_the_load_filter() {
    let mut s = Session::start(&Setup::new("ctor_socket", "default"));
    assert!(matches!(s.hello(), Err(ChannelError::Closed)));
    assert_eq!(s.wait().signal(), Some(libc::SIGSYS));
}

#[test]
fn a_noisy_plugin_cannot_flood_the_host() {
    for output in [true, false] {
        let mut setup = Setup::new("noisy", "default");
        setup.output = output;
        let mut s = Session::start(&setup);
        s.hello().expect("handshake");
        assert_eq!(s.call("flood", b"").expect("flood"), b"done");
        assert_eq!(s.call("flood", b"").expect("flood again"), b"done");
        let logs = s.logs.lock().unwrap();
        let total: usize = logs.bytes.iter().sum();
        // Two calls: each at most the log budget plus the output budget, plus notes.
        let bound = 2
            * (plugjail::protocol::consts::LOG_BUDGET + plugjail::protocol::consts::OUTPUT_BUDGET)
            + (64 << 10);
        assert!(total <= bound, "output={output}: {total} bytes of LOG");
        assert!(logs.bytes[log_level::DEBUG as usize] > 0);
        if output {
            // 16 MiB were written; what did not fit in the non-blocking pipe was refused
            // to the plugin (EAGAIN), the rest forwarded within the budget.
            let out = logs.bytes[log_level::OUTPUT as usize];
            // Written during both calls (init printed one short line), so forwarded after
            // each: the stub learns of it from its SIGURG notification, and more than one
            // call's budget arrives only if the second call's output was noticed too.
            assert!(
                out > plugjail::protocol::consts::OUTPUT_BUDGET + 4096,
                "stdout of both calls forwarded: {out} bytes"
            );
            assert!(
                out <= 3 * plugjail::protocol::consts::OUTPUT_BUDGET,
                "{out} bytes of output"
            );
        } else {
            assert_eq!(logs.bytes[log_level::OUTPUT as usize], 0);
        }
        assert!(
            logs.lines
                .iter()
                .any(|(_, l)| l.contains("plugin log dropped"))
        );
        drop(logs);
        assert!(s.chan.read_capacity() <= 1 << 20);
        assert_eq!(s.shutdown().code(), Some(exit_code::OK));
    }
}

#[test]
fn a_plugin_outside_the_allowlist_never_reaches_the_stub() {
    let so = plugin("hello");
    let e = plugin_file::load(
        &so,
        &Plugin {
            sha256: vec!["0".repeat(64)],
        },
    )
    .unwrap_err();
    assert!(e.is_rejection(), "{e}");
}

#[test]
fn csv2json_converts_and_reports_errors_under_the_strict_filters() {
    let mut s = Session::start(&Setup::new("csv2json", "strict"));
    s.hello().expect("handshake");
    let csv = b"name,quote\r\nada,\"says \"\"hi\"\", twice\"\nbob,\"two\nlines\"\n";
    let json = s.call("convert", csv).expect("convert");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "ada", "quote": "says \"hi\", twice"},
            {"name": "bob", "quote": "two\nlines"},
        ])
    );
    assert_eq!(
        s.call("validate", csv).expect("validate"),
        br#"{"rows":2,"columns":2}"#
    );
    for (bad, says) in [
        (&b"a,b\n1,2,3\n"[..], "line 2: 3 fields, the header has 2"),
        (b"a,a\n", "a column name appears twice"),
        (b"a\n\"open\n", "a quoted field is never closed"),
        (b"a\n\xff\n", "not UTF-8"),
        (b"", "no header row"),
    ] {
        match s.call("convert", bad) {
            Err(ChannelError::Remote {
                kind: ErrorKind::Plugin,
                message,
                ..
            }) => assert!(message.contains(says), "{message:?} lacks {says:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // A big document, streamed out in chunks, stays correct.
    let mut big = b"id,text\n".to_vec();
    for i in 0..20_000 {
        big.extend_from_slice(format!("{i},\"row {i}, with a comma\"\n").as_bytes());
    }
    let json = s.call("convert", &big).expect("big convert");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(20_000));
    assert_eq!(v[19_999]["text"], "row 19999, with a comma");
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn a_hanging_call_ends_at_the_host_deadline() {
    let mut s = Session::start(&Setup::new("crash", "default"));
    s.hello().expect("handshake");
    let t = Instant::now();
    match s.chan.call("hang", b"", Duration::from_millis(300)) {
        Err(ChannelError::Timeout { .. }) => {}
        other => panic!("hang: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(matches!(s.call("segv", b""), Err(ChannelError::Broken)));
    s.kill();
}
