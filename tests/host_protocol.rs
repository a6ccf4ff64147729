//! `plugjail host`, the multi-plugin host protocol (docs/host-protocol.md), against the
//! real binary: calls, cancel, control, events, hostile frames, the stop, and the
//! `--listen` socket with its peer check.

#[path = "host_protocol/client.rs"]
mod client;
mod common;
#[path = "host_protocol/peer.rs"]
mod peer;

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

use client::{Frames, Server, call, cancel, config, shutdown};
use common::{NOBODY, TempDir, plugin, probe, skip};
use plugjail::host::wire::codec::{FrameType, MAX_PAYLOAD, Op, Request, UpgradeTo, encode_request};

fn hello_config(dir: &TempDir) -> std::path::PathBuf {
    config(
        dir,
        &[("hello", &plugin("hello"), "{warm: 1, max: 1, queue: 4}")],
    )
}

fn control(id: u64, op: Op, plugin: &str) -> Vec<u8> {
    encode_request(&Request::Control {
        id,
        op,
        plugin,
        upgrade: None,
    })
    .expect("encode CONTROL")
}

/// A header with any fields, and a body.
fn raw(len: u32, kind: u16, flags: u16, id: u64, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&len.to_le_bytes());
    b.extend_from_slice(&kind.to_le_bytes());
    b.extend_from_slice(&flags.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(body);
    b
}

fn assert_clean_exit(ended: &client::Ended, what: &str) {
    assert_eq!(
        ended.status.code(),
        Some(0),
        "{what}: {:?}\n{}",
        ended.status,
        ended.stderr
    );
}

#[test]
fn a_call_to_hello_returns_hello_world_and_events_arrive() {
    let dir = TempDir::new("host-hello", 0o755);
    let mut s = Server::start(&hello_config(&dir));
    let hello = s.frames.hello();
    assert_eq!(hello["plugins"][0]["id"], "hello", "{hello}");
    s.send(&call(1, "hello", "greet", b"world"));
    let f = s.frames.next();
    assert!(f.is(FrameType::Result), "{}", f.describe());
    assert_eq!(f.id, 1);
    assert_eq!(f.body, b"hello, world");
    // A second call on the same connection, binary input.
    s.send(&call(2, "hello", "echo", &[0, 0xff, 0x80]));
    let f = s.frames.next();
    assert_eq!((f.kind, f.id), (FrameType::Result as u16, 2));
    assert_eq!(f.body, [0, 0xff, 0x80]);
    // A plugin's error: kind plugin_error, its text under plugin_message only.
    s.send(&call(3, "hello", "fail", b""));
    let f = s.frames.next();
    assert_eq!(f.error_kind(), "plugin_error", "{}", f.describe());
    let v = f.json();
    assert_eq!(v["plugin_message"], "asked to fail", "{v}");
    assert_eq!(v["status"], 7, "{v}");
    assert!(
        !v["message"]
            .as_str()
            .unwrap_or("")
            .contains("asked to fail")
    );

    s.send(&shutdown());
    let rest = s.frames.rest();
    assert!(
        rest.is_empty(),
        "{:?}",
        rest.iter().map(|f| f.describe()).collect::<Vec<_>>()
    );
    let events = std::mem::take(&mut s.frames.events);
    let ended = s.wait();
    assert_clean_exit(&ended, "after SHUTDOWN");
    let of = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert!(
        of("jail_ended") >= 1,
        "the jail's end is an event: {events:#?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e["plugin"] == "hello" && e["seq"].is_u64()),
        "{events:#?}"
    );
}

#[test]
fn an_unknown_plugin_is_named_as_such_and_the_end_of_input_stops_the_host() {
    let dir = TempDir::new("host-unknown", 0o755);
    let mut s = Server::start(&hello_config(&dir));
    s.frames.hello();
    s.send(&call(5, "nope", "greet", b"x"));
    let f = s.frames.next();
    assert_eq!(f.id, 5);
    assert_eq!(f.error_kind(), "unknown_plugin", "{}", f.describe());
    assert_eq!(f.json()["plugin"], "nope");
    s.close_input();
    assert!(s.frames.rest().is_empty());
    assert_clean_exit(&s.wait(), "after the end of stdin");
}

#[test]
fn control_requests_answer_done_or_a_typed_error() {
    let dir = TempDir::new("host-control", 0o755);
    let mut s = Server::start(&hello_config(&dir));
    s.frames.hello();
    s.send(&control(10, Op::Status, ""));
    let f = s.frames.next();
    assert!(f.is(FrameType::Done), "{}", f.describe());
    assert_eq!(f.id, 10);
    assert_eq!(f.json()["op"], "status");
    assert_eq!(f.json()["plugins"][0]["id"], "hello");
    s.send(&control(11, Op::Status, "nope"));
    assert_eq!(s.frames.next().error_kind(), "unknown_plugin");
    s.send(&control(12, Op::Pause, "nope"));
    assert_eq!(s.frames.next().error_kind(), "unknown_plugin");
    s.wait_idle("hello", 1);
    // Release is for failed or quarantined plugins: a running one is a typed refusal.
    s.send(&control(13, Op::Release, "hello"));
    let f = s.frames.next();
    assert_eq!(f.error_kind(), "invalid_transition", "{}", f.describe());
    assert_eq!(f.json()["state"], "running");

    // An upgrade to the same build activates; one to a build whose init fails is rolled
    // back, its reason marked as the plugin's, and the old build serves on.
    let upgrade = |id, so: &std::path::Path| {
        encode_request(&Request::Control {
            id,
            op: Op::Upgrade,
            plugin: "hello",
            upgrade: Some(UpgradeTo {
                plugin: so.to_path_buf(),
                profile: None,
            }),
        })
        .expect("encode upgrade")
    };
    s.send(&upgrade(14, &plugin("hello")));
    let f = s.frames.next();
    assert!(f.is(FrameType::Done), "{}", f.describe());
    assert_eq!(
        f.json(),
        serde_json::json!({"op": "upgrade", "plugin": "hello"})
    );
    s.frames.wait_event("hello", "activated");
    s.send(&upgrade(15, &plugin("init_fails")));
    let f = s.frames.next();
    assert_eq!(f.error_kind(), "rolled_back", "{}", f.describe());
    assert!(f.json()["plugin_message"].is_string(), "{}", f.describe());
    s.send(&call(16, "hello", "greet", b"old build"));
    assert_eq!(s.frames.next().body, b"hello, old build");

    // A call to a paused plugin waits (`when_paused: wait`) and answers after resume.
    s.send(&control(17, Op::Pause, "hello"));
    let f = s.frames.next();
    assert!(f.is(FrameType::Done), "{}", f.describe());
    assert_eq!(
        f.json(),
        serde_json::json!({"op": "pause", "plugin": "hello"})
    );
    s.send(&call(18, "hello", "greet", b"b"));
    s.frames.expect_silence(Duration::from_millis(300));
    s.send(&control(19, Op::Resume, "hello"));
    let mut got: Vec<(u64, u16)> = (0..2)
        .map(|_| s.frames.next())
        .map(|f| (f.id, f.kind))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [(18, FrameType::Result as u16), (19, FrameType::Done as u16)]
    );
    // Resuming a plugin that is not paused is a typed refusal.
    s.send(&control(20, Op::Resume, "hello"));
    assert_eq!(s.frames.next().error_kind(), "invalid_transition");
    s.send(&shutdown());
    s.frames.rest();
    assert_clean_exit(&s.wait(), "after SHUTDOWN");
}

#[test]
fn hostile_frames_each_get_an_error_and_the_server_carries_on() {
    let dir = TempDir::new("host-hostile", 0o755);
    let cfg = config(
        &dir,
        &[
            ("hello", &plugin("hello"), "{warm: 1, max: 1, queue: 4}"),
            ("crash", &plugin("crash"), "{warm: 1, max: 1, queue: 4}"),
        ],
    );
    let mut s = Server::start(&cfg);
    s.frames.hello();
    let mut lying = Vec::new();
    lying.extend_from_slice(&100u16.to_le_bytes());
    lying.extend_from_slice(b"hello");
    let mut bad_utf8 = Vec::new();
    bad_utf8.extend_from_slice(&2u16.to_le_bytes());
    bad_utf8.extend_from_slice(b"\xff\xfe");
    bad_utf8.extend_from_slice(&1u16.to_le_bytes());
    bad_utf8.extend_from_slice(b"m");
    let cases: Vec<(&str, Vec<u8>, u64)> = vec![
        ("unknown type", raw(3, 0x0777, 0, 41, b"abc"), 41),
        ("a plugin-protocol CALL", raw(0, 2, 0, 42, b""), 42),
        ("a RESULT from the client", raw(1, 0x103, 0, 43, b"x"), 43),
        ("call id 0", call(0, "hello", "greet", b"x"), 0),
        ("truncated body", raw(7, 0x102, 0, 44, &lying), 44),
        ("invalid UTF-8 id", raw(7, 0x102, 0, 45, &bad_utf8), 45),
        ("unknown op", raw(3, 0x108, 0, 46, &[9, 0, 0]), 46),
        ("empty CONTROL", raw(0, 0x108, 0, 47, b""), 47),
        ("CANCEL with a body", raw(2, 0x107, 0, 48, b"zz"), 48),
        ("SHUTDOWN with a body", raw(1, 0x106, 0, 0, b"!"), 0),
    ];
    for (what, frame, id) in &cases {
        assert!(s.send(frame), "{what}: the server stopped reading");
        let f = s.frames.next();
        assert_eq!(f.error_kind(), "bad_frame", "{what}: {}", f.describe());
        assert_eq!(f.id, *id, "{what}");
        assert!(f.json()["message"].as_str().is_some_and(|m| !m.is_empty()));
    }

    // A duplicate id while the first call runs: refused, the first undisturbed.
    s.send(&call(7, "crash", "hang", b""));
    s.frames.expect_silence(Duration::from_millis(300));
    s.send(&call(7, "hello", "greet", b"dup"));
    let f = s.frames.next();
    assert_eq!(
        (f.id, f.error_kind()),
        (7, "duplicate_id".into()),
        "{}",
        f.describe()
    );
    // The other plugin still serves meanwhile.
    s.send(&call(8, "hello", "greet", b"still here"));
    let f = s.frames.next();
    assert_eq!(f.body, b"hello, still here", "{}", f.describe());
    // Cancelling the first: its one answer.
    s.send(&cancel(7));
    let f = s.frames.next();
    assert_eq!(
        (f.id, f.error_kind()),
        (7, "cancelled".into()),
        "{}",
        f.describe()
    );
    // Cancelling an id not in flight is ignored.
    s.send(&cancel(7));
    s.send(&call(9, "hello", "greet", b"end"));
    let f = s.frames.next();
    assert_eq!(
        (f.id, f.body.as_slice()),
        (9, &b"hello, end"[..]),
        "{}",
        f.describe()
    );

    s.send(&shutdown());
    s.frames.rest();
    assert_clean_exit(&s.wait(), "after the hostile frames");
}

/// Headers after which the stream cannot be trusted to be in step: one ERROR
/// `bad_frame`, the connection closes, and (on stdin/stdout) the host stops cleanly.
#[test]
fn a_header_out_of_step_gets_one_error_and_closes_the_connection() {
    let dir = TempDir::new("host-outofstep", 0o755);
    let cfg = hello_config(&dir);
    let garbage: Vec<u8> = (0..64u32)
        .map(|i| u8::try_from(i.wrapping_mul(167) % 251).expect("byte"))
        .collect();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flags not zero", raw(0, 0x106, 1, 0, b"")),
        (
            "length above the cap",
            raw(MAX_PAYLOAD + 1, 0x102, 0, 1, b""),
        ),
        ("length 4 GiB", raw(u32::MAX, 0x102, 0, 1, b"")),
        ("half a header", raw(0, 0x102, 0, 1, b"")[..9].to_vec()),
        ("a body cut short", raw(1000, 0x102, 0, 1, b"short")),
        ("garbage", garbage),
    ];
    for (what, bytes) in cases {
        let mut s = Server::start(&cfg);
        s.frames.hello();
        s.send(&bytes);
        // Cut-short frames are only known as such at the end of the input.
        s.close_input();
        let rest = s.frames.rest();
        let errors: Vec<_> = rest
            .iter()
            .filter(|f| f.is(FrameType::Error))
            .map(|f| f.json())
            .collect();
        assert!(
            errors.iter().any(|e| e["kind"] == "bad_frame"),
            "{what}: {:?}",
            rest.iter().map(|f| f.describe()).collect::<Vec<_>>()
        );
        let ended = s.wait();
        assert_clean_exit(&ended, what);
    }
}

/// The connection stops reading after a bad header, without waiting for the input to end.
#[test]
fn a_bad_header_ends_the_connection_even_with_input_open() {
    let dir = TempDir::new("host-badheader", 0o755);
    let mut s = Server::start(&hello_config(&dir));
    s.frames.hello();
    s.send(&raw(u32::MAX, 0x102, 0, 1, b""));
    let f = s.frames.next();
    assert_eq!((f.id, f.error_kind()), (0, "bad_frame".into()));
    assert!(s.frames.rest().is_empty());
    assert_clean_exit(&s.wait(), "after a bad header");
}

#[test]
fn cancel_ends_a_hanging_call_while_another_pool_member_answers() {
    let dir = TempDir::new("host-cancel", 0o755);
    let cfg = config(
        &dir,
        &[("crash", &plugin("crash"), "{warm: 2, max: 2, queue: 4}")],
    );
    let mut s = Server::start(&cfg);
    s.frames.hello();
    s.wait_idle("crash", 2);
    s.send(&call(1, "crash", "hang", b""));
    s.frames.expect_silence(Duration::from_millis(300));
    // The other jail of the pool answers while the first hangs.
    s.send(&call(2, "crash", "noop", b""));
    let f = s.frames.next();
    assert!(f.is(FrameType::Result) && f.id == 2, "{}", f.describe());
    s.send(&cancel(1));
    let f = s.frames.next();
    assert_eq!(
        (f.id, f.error_kind()),
        (1, "cancelled".into()),
        "{}",
        f.describe()
    );
    // The pool recovers: another call answers.
    s.send(&call(3, "crash", "noop", b""));
    let f = s.frames.next();
    assert!(f.is(FrameType::Result) && f.id == 3, "{}", f.describe());
    s.send(&shutdown());
    s.frames.rest();
    assert_clean_exit(&s.wait(), "after the cancel");
}

#[test]
fn requests_beyond_the_in_flight_limit_are_busy() {
    let dir = TempDir::new("host-busy", 0o755);
    let cfg = config(
        &dir,
        &[("crash", &plugin("crash"), "{warm: 1, max: 1, queue: 0}")],
    );
    let mut s = Server::start(&cfg);
    s.frames.hello();
    s.wait_idle("crash", 1);
    s.send(&call(1, "crash", "hang", b""));
    s.frames.expect_silence(Duration::from_millis(200));
    // Calls in flight are limited to pool.max + pool.queue = 1; controls apart.
    s.send(&control(3, Op::Status, "crash"));
    let f = s.frames.next();
    assert!(f.is(FrameType::Done) && f.id == 3, "{}", f.describe());
    assert_eq!(f.json()["plugins"][0]["busy"], 1);
    s.send(&call(2, "crash", "noop", b"x"));
    let f = s.frames.next();
    assert_eq!(
        (f.id, f.error_kind()),
        (2, "busy".into()),
        "{}",
        f.describe()
    );
    s.send(&cancel(1));
    assert_eq!(s.frames.next().error_kind(), "cancelled");
    s.send(&shutdown());
    s.frames.rest();
    assert_clean_exit(&s.wait(), "after busy");
}

/// The stop answers every call in flight (`shutting_down`) and ends every jail.
#[test]
fn shutdown_and_signals_answer_calls_in_flight_and_exit_zero() {
    let dir = TempDir::new("host-stop", 0o755);
    let cfg = config(
        &dir,
        &[("crash", &plugin("crash"), "{warm: 1, max: 1, queue: 4}")],
    );
    for how in ["SHUTDOWN", "SIGTERM", "SIGINT"] {
        let mut s = Server::start(&cfg);
        s.frames.hello();
        s.wait_idle("crash", 1);
        s.send(&call(1, "crash", "hang", b""));
        s.frames.expect_silence(Duration::from_millis(300));
        // Waits for the only jail, which hangs.
        s.send(&call(2, "crash", "noop", b"queued"));
        s.frames.expect_silence(Duration::from_millis(200));
        match how {
            "SHUTDOWN" => assert!(s.send(&shutdown())),
            signal => {
                let sig = if signal == "SIGTERM" {
                    libc::SIGTERM
                } else {
                    libc::SIGINT
                };
                // SAFETY: our own child, alive (it holds our pipes).
                assert_eq!(unsafe { libc::kill(s.pid(), sig) }, 0);
            }
        }
        let rest = s.frames.rest();
        let mut answered: Vec<(u64, String)> =
            rest.iter().map(|f| (f.id, f.error_kind())).collect();
        answered.sort();
        assert_eq!(
            answered,
            [(1, "shutting_down".into()), (2, "shutting_down".into())],
            "{how}"
        );
        assert!(
            s.frames.events_of("crash", "jail_ended") >= 1,
            "{how}: {:#?}",
            s.frames.events
        );
        let ended = s.wait();
        assert_clean_exit(&ended, how);
        assert!(ended.stderr.contains("stopping"), "{how}: {}", ended.stderr);
    }
}

#[test]
fn an_invalid_configuration_exits_2_and_a_missing_one_too() {
    let dir = TempDir::new("host-badcfg", 0o755);
    let cfg = dir.write("host.yaml", "version: 1\nplugins: 5\n", 0o644);
    let s = Server::start(&cfg);
    let ended = s.wait();
    assert_eq!(ended.status.code(), Some(2), "{}", ended.stderr);
    let s = Server::start(&dir.join("absent.yaml"));
    assert_eq!(s.wait().status.code(), Some(2));
}

#[test]
fn the_listen_socket_is_0600_serves_its_user_and_is_removed_at_exit() {
    let dir = TempDir::new("host-listen", 0o755);
    let cfg = hello_config(&dir);
    let path = dir.join("host.sock");
    let mut s = Server::start_with(&cfg, &["--listen", path.to_str().expect("utf-8")]);
    let meta = wait_for_socket(&path);
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let mut conn = std::os::unix::net::UnixStream::connect(&path).expect("connect");
    let mut frames = Frames::new(conn.try_clone().expect("clone"));
    frames.hello();
    use std::io::Write;
    conn.write_all(&call(1, "hello", "greet", b"socket"))
        .expect("write");
    let f = frames.next();
    assert_eq!(f.body, b"hello, socket", "{}", f.describe());
    // A second connection at the same time.
    let conn2 = std::os::unix::net::UnixStream::connect(&path).expect("connect 2");
    let mut frames2 = Frames::new(conn2.try_clone().expect("clone"));
    frames2.hello();
    // Closing a connection leaves the host serving the others.
    drop(conn2);
    conn.write_all(&call(2, "hello", "greet", b"again"))
        .expect("write");
    assert_eq!(frames.next().body, b"hello, again");

    // SAFETY: our own child.
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGTERM) }, 0);
    assert!(frames.rest().is_empty());
    s.close_input();
    assert_clean_exit(&s.wait(), "listen, SIGTERM");
    assert!(!path.exists(), "the socket was not removed");
}

#[test]
fn the_listen_path_must_not_be_anything_but_a_socket() {
    let dir = TempDir::new("host-listen-file", 0o755);
    let cfg = hello_config(&dir);
    let path = dir.write("not-a-socket", "precious", 0o644);
    let s = Server::start_with(&cfg, &["--listen", path.to_str().expect("utf-8")]);
    let ended = s.wait();
    assert_eq!(ended.status.code(), Some(125), "{}", ended.stderr);
    assert!(ended.stderr.contains("not a socket"), "{}", ended.stderr);
    assert_eq!(std::fs::read(&path).expect("still there"), b"precious");
}

/// A socket nobody listens on (a server that died) is replaced; one with a live server
/// behind it is not.
#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = TempDir::new("host-listen-stale", 0o755);
    let cfg = hello_config(&dir);
    let path = dir.join("host.sock");
    let live = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    let s = Server::start_with(&cfg, &["--listen", path.to_str().expect("utf-8")]);
    let ended = s.wait();
    assert_eq!(ended.status.code(), Some(125), "{}", ended.stderr);
    assert!(ended.stderr.contains("another server"), "{}", ended.stderr);
    assert!(path.exists(), "the live socket was removed");
    // Closed: the file stays, nobody listens.
    drop(live);
    let mut s = Server::start_with(&cfg, &["--listen", path.to_str().expect("utf-8")]);
    let deadline = std::time::Instant::now() + client::PATIENCE;
    let conn = loop {
        if let Ok(c) = std::os::unix::net::UnixStream::connect(&path) {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "never listened");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut frames = Frames::new(conn);
    frames.hello();
    let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGTERM) }, 0);
    s.close_input();
    assert_clean_exit(&s.wait(), "stale socket replaced, SIGTERM");
}

/// Another user is refused with `forbidden` even when the socket's mode would let it in
/// (the test widens it: SO_PEERCRED is the second gate, behind the file mode).
#[test]
fn a_connection_from_another_uid_is_forbidden() {
    if !probe::is_root() {
        skip("connecting as another uid needs root (setresuid in a forked child)");
        return;
    }
    let dir = TempDir::new("host-forbidden", 0o755);
    let cfg = hello_config(&dir);
    let path = dir.join("host.sock");
    let mut s = Server::start_with(&cfg, &["--listen", path.to_str().expect("utf-8")]);
    wait_for_socket(&path);
    // With the mode as created, the other user cannot even connect.
    assert_eq!(
        peer::connect_as(NOBODY, &path),
        Err(3),
        "0600 let uid 65534 connect"
    );
    common::chmod(&path, 0o666);
    let got = peer::connect_as(NOBODY, &path).expect("connect as 65534");
    let mut frames = Frames::new(std::io::Cursor::new(got));
    let f = frames.next();
    assert_eq!(
        (f.id, f.error_kind()),
        (0, "forbidden".into()),
        "{}",
        f.describe()
    );
    assert!(
        frames.rest().is_empty(),
        "a forbidden peer gets nothing but the ERROR"
    );
    // SAFETY: our own child.
    assert_eq!(unsafe { libc::kill(s.pid(), libc::SIGTERM) }, 0);
    s.close_input();
    assert_clean_exit(&s.wait(), "forbidden, SIGTERM");
}

fn wait_for_socket(path: &std::path::Path) -> std::fs::Metadata {
    let deadline = std::time::Instant::now() + client::PATIENCE;
    loop {
        if let Ok(m) = std::fs::symlink_metadata(path) {
            return m;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no socket at {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Frames with sound headers and random types, ids and bodies: each is answered or
/// ignored, none stops the server, and a real call still answers after them.
#[test]
fn random_frames_never_crash_the_server() {
    let dir = TempDir::new("host-random", 0o755);
    let mut s = Server::start(&hello_config(&dir));
    s.frames.hello();
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut stream = Vec::new();
    for _ in 0..500 {
        let r = next();
        let kind = match r % 4 {
            0 => u16::try_from(r >> 48).expect("u16"),
            _ => 0x101 + u16::try_from((r >> 8) % 9).expect("small"),
        };
        // SHUTDOWN would end the test early.
        let kind = if kind == FrameType::Shutdown as u16 {
            0x102
        } else {
            kind
        };
        let len = usize::try_from(next() % 48).expect("small");
        let body: Vec<u8> = (0..len).map(|_| next().to_le_bytes()[0]).collect();
        let id = next() % 64;
        stream.extend_from_slice(&raw(u32::try_from(len).expect("small"), kind, 0, id, &body));
    }
    assert!(s.send(&stream), "the server stopped reading");
    s.send(&call(u64::MAX, "hello", "greet", b"survivor"));
    loop {
        let f = s.frames.next();
        assert!(
            FrameType::from_u16(f.kind).is_some(),
            "unknown reply type: {}",
            f.describe()
        );
        if f.id == u64::MAX {
            assert_eq!(f.body, b"hello, survivor", "{}", f.describe());
            break;
        }
    }
    s.send(&shutdown());
    s.frames.rest();
    assert_clean_exit(&s.wait(), "after random frames");
}
