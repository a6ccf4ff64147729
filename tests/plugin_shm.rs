//! Shared-memory calls (docs/protocol.md, "Shared-memory calls") through the real jail,
//! as root and rootless: the same answers as the pipe for many sizes, LOG frames and
//! ERRORs as on the pipe, scrubbed inputs, a profile that cannot serve the region refused,
//! and a hostile plugin (tests/plugins/shm_attack.cpp) that attacks the host through the
//! region: rewriting its layout header, forging lengths, ids and types, playing with the
//! futex words, never answering and writing after it answered. Each ends in a named
//! verdict within its deadline, and what the host holds stays as it was validated.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Mode, TempDir, expect, extend_profile, jail_modes, plugin, session_opts, spawn};
use plugjail::session::{ShmOptions, Transport};
use plugjail::{CallError, Session, SessionOptions};

/// The default profile, plus read access to /proc so the test plugin can find the region
/// in its own address space (/proc/self/maps).
fn maps_profile(dir: &TempDir) -> PathBuf {
    extend_profile(dir, "shm", "default", "landlock:\n  read: [/proc]\n")
}

fn shm_opts(mode: Mode, profile: &Path, so: &Path, shm: ShmOptions) -> SessionOptions {
    let mut o = session_opts(mode, profile, so);
    o.shm = Some(shm);
    o.call_timeout = Some(Duration::from_secs(5));
    o
}

/// A shared-memory session of the attack plugin that found the region.
fn attack_session(mode: Mode, profile: &Path, shm: ShmOptions, timeout: Duration) -> Session {
    let mut o = shm_opts(mode, profile, &plugin("shm_attack"), shm);
    o.call_timeout = Some(timeout);
    let mut s = spawn(&o);
    s.hello().expect("hello");
    assert_eq!(s.transport(), Transport::SharedMemory, "[{}]", mode.name());
    assert_eq!(
        s.call("found", b"").expect("found"),
        b"yes",
        "[{}]",
        mode.name()
    );
    s
}

/// A byte pattern that differs per length (the low byte is the point).
#[allow(clippy::cast_possible_truncation)]
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| ((i * 31 + n) % 251) as u8).collect()
}

#[test]
fn shared_memory_answers_equal_the_pipes_for_many_sizes() {
    let so = plugin("shm_attack");
    let dir = TempDir::new("shm-sizes", 0o755);
    let profile = maps_profile(&dir);
    let sizes = [
        0,
        1,
        15,
        16,
        17,
        255,
        1000,
        4095,
        4096,
        4097,
        65536,
        (1 << 20) - 5,
    ];
    for mode in jail_modes() {
        let what = mode.name();
        let lines = Arc::new(Mutex::new(Vec::<(u32, Vec<u8>)>::new()));
        let mut o = shm_opts(mode, &profile, &so, ShmOptions::default());
        let sink = lines.clone();
        o.on_log = Some(Arc::new(move |level, text| {
            sink.lock().unwrap().push((level, text.to_vec()))
        }));
        let mut shm = spawn(&o);
        let mut pipe = spawn(&session_opts(mode, &profile, &so));
        shm.hello().expect("hello");
        pipe.hello().expect("hello");
        assert_eq!(shm.transport(), Transport::SharedMemory, "[{what}]");
        assert_eq!(pipe.transport(), Transport::Pipe, "[{what}]");
        for &n in &sizes {
            let input = pattern(n);
            let a = shm
                .call("echo", &input)
                .unwrap_or_else(|e| panic!("[{what}] {n}: {e}"));
            let b = pipe.call("echo", &input).expect("pipe echo");
            assert!(a == input && a == b, "[{what}] echo of {n} bytes differs");
        }
        // One byte more than the arena: refused before it is sent, the session goes on.
        let over = pattern(1 << 20);
        match shm.call("echo", &over[..(1 << 20) - 4]) {
            Err(e @ CallError::InputTooLarge { .. }) => assert!(e.session_goes_on()),
            other => panic!("[{what}] too large: {other:?}"),
        }
        // LOG frames arrive before the call returns, in order.
        assert_eq!(shm.call("log", &[5]).expect("log"), [5]);
        let got: Vec<Vec<u8>> = lines.lock().unwrap().iter().map(|l| l.1.clone()).collect();
        let want: Vec<Vec<u8>> = (0..5).map(|i| format!("line {i}").into_bytes()).collect();
        assert_eq!(got, want, "[{what}]");
        // ERRORs as on the pipe: the session goes on.
        match shm.call("fail", b"") {
            Err(CallError::Failed {
                status, message, ..
            }) => assert_eq!((status, message.as_str()), (7, "refused"), "[{what}]"),
            other => panic!("[{what}] fail: {other:?}"),
        }
        match shm.call("big", b"2000000") {
            Err(CallError::Failed { kind, .. }) => {
                assert_eq!(kind.name(), "output_too_large", "[{what}]")
            }
            other => panic!("[{what}] big: {other:?}"),
        }
        assert_eq!(shm.call("big", b"1000000").expect("big").len(), 1_000_000);
        assert_eq!(
            shm.call("echo", b"still here").expect("echo"),
            b"still here"
        );
        let v = shm.close();
        expect(&v, "ok", what);
        // Every answered call counts (RESULT or ERROR); the refused input never left.
        assert_eq!(v.calls, sizes.len() as u64 + 5, "[{what}]");
        expect(&pipe.close(), "ok", what);
    }
}

#[test]
fn a_rewritten_layout_header_changes_nothing_for_the_host() {
    let dir = TempDir::new("shm-layout", 0o755);
    let profile = maps_profile(&dir);
    for mode in jail_modes() {
        let mut s = attack_session(
            mode,
            &profile,
            ShmOptions::default(),
            Duration::from_secs(5),
        );
        assert_eq!(s.call("rewrite_layout", b"abc").expect("rewrite"), b"abc");
        for i in 0..200usize {
            let input = pattern(i * 37);
            assert_eq!(
                s.call("echo", &input).expect("echo"),
                input,
                "[{}]",
                mode.name()
            );
        }
        expect(&s.close(), "ok", mode.name());
    }
}

#[test]
fn forged_answers_are_protocol_violations() {
    let dir = TempDir::new("shm-forged", 0o755);
    let profile = maps_profile(&dir);
    let cases = [
        ("forge_length", "exceeds"),
        ("forge_id", "for call"),
        ("forge_type", "unknown frame type"),
    ];
    for mode in jail_modes() {
        for (method, says) in cases {
            let what = format!("[{}] {method}", mode.name());
            let mut s = attack_session(
                mode,
                &profile,
                ShmOptions::default(),
                Duration::from_secs(5),
            );
            let t = Instant::now();
            match s.call(method, b"") {
                Err(CallError::Protocol(p)) => assert!(p.to_string().contains(says), "{what}: {p}"),
                other => panic!("{what}: {other:?}"),
            }
            assert!(
                t.elapsed() < Duration::from_secs(2),
                "{what}: {:?}",
                t.elapsed()
            );
            assert!(
                matches!(s.call("echo", b""), Err(CallError::Ended)),
                "{what}"
            );
            let v = s.close();
            expect(&v, "protocol_violation", &what);
            assert!(
                v.message.as_deref().unwrap_or("").contains(says),
                "{what}: {:#}",
                v.json
            );
        }
    }
}

#[test]
fn a_plugin_that_plays_with_the_futex_or_never_answers_times_out() {
    let dir = TempDir::new("shm-futex", 0o755);
    let profile = maps_profile(&dir);
    let deadline = Duration::from_millis(500);
    for mode in jail_modes() {
        for method in ["futex_spin", "never"] {
            let what = format!("[{}] {method}", mode.name());
            let mut s = attack_session(mode, &profile, ShmOptions::default(), deadline);
            let t = Instant::now();
            match s.call(method, b"") {
                Err(CallError::Timeout { after }) => assert_eq!(after, deadline, "{what}"),
                other => panic!("{what}: {other:?}"),
            }
            let took = t.elapsed();
            assert!(took >= deadline && took < deadline * 3, "{what}: {took:?}");
            let v = s.close();
            expect(&v, "timeout", &what);
            assert_eq!(
                v.timeout_kind.as_deref(),
                Some("host"),
                "{what}: {:#}",
                v.json
            );
        }
    }
}

#[test]
fn writes_after_the_answer_do_not_change_what_the_host_holds() {
    let dir = TempDir::new("shm-after", 0o755);
    let profile = maps_profile(&dir);
    for mode in jail_modes() {
        let what = mode.name();
        let mut s = attack_session(
            mode,
            &profile,
            ShmOptions::default(),
            Duration::from_secs(5),
        );
        let first = s.call("keep_writing", b"").expect("keep_writing");
        let held = first.clone();
        // The plugin now scribbles over the response area while these are answered: each
        // answer is either one whose validated header said 3 bytes, or a violation.
        let mut violation = None;
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(1500) {
            match s.call("echo", b"xyz") {
                Ok(out) => assert_eq!(out.len(), 3, "[{what}]"),
                Err(CallError::Protocol(p)) => {
                    violation = Some(p);
                    break;
                }
                Err(e) => panic!("[{what}] {e:?}"),
            }
        }
        assert_eq!(first, b"answer");
        assert_eq!(first, held);
        let v = s.close();
        let outcome = if violation.is_some() {
            "protocol_violation"
        } else {
            "ok"
        };
        expect(&v, outcome, what);
    }
}

#[test]
fn scrubbed_inputs_are_gone_from_the_region_after_the_call() {
    let dir = TempDir::new("shm-scrub", 0o755);
    let profile = maps_profile(&dir);
    for mode in jail_modes() {
        for scrub in [false, true] {
            let shm = ShmOptions {
                scrub_inputs: scrub,
                ..ShmOptions::default()
            };
            let mut s = attack_session(mode, &profile, shm, Duration::from_secs(5));
            let secret = [b'S'; 64];
            assert_eq!(s.call("echo", &secret).expect("echo"), secret);
            let left = s.call("peek", b"").expect("peek");
            let want = if scrub { [0u8; 64] } else { secret };
            assert_eq!(left, want, "[{}] scrub={scrub}", mode.name());
            expect(&s.close(), "ok", mode.name());
        }
    }
}

#[test]
fn a_crash_in_a_shared_memory_call_is_noticed_without_waiting_for_the_deadline() {
    let so = plugin("crash");
    for mode in jail_modes() {
        let mut s = spawn(&shm_opts(
            mode,
            &common::default_profile(),
            &so,
            ShmOptions::default(),
        ));
        s.hello().expect("hello");
        assert_eq!(s.transport(), Transport::SharedMemory);
        assert_eq!(s.call("noop", b"").expect("noop"), b"");
        let t = Instant::now();
        assert!(matches!(s.call("segv", b""), Err(CallError::Ended)));
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        let v = s.close();
        expect(&v, "signaled", mode.name());
        assert_eq!(v.signal, Some(libc::SIGSEGV), "{:#}", v.json);
    }
}

#[test]
fn a_profile_without_futex_is_refused_before_the_jail_exists() {
    let so = plugin("crash");
    let dir = TempDir::new("shm-nofutex", 0o755);
    let strict = std::fs::read_to_string(common::manifest_dir().join("profiles/strict.yaml"))
        .expect("strict.yaml");
    let (load, serve) = strict.split_once("  serve:").expect("a serve section");
    let text = format!("{load}  serve:{}", serve.replacen("futex, ", "", 1));
    assert!(text.matches("futex").count() == strict.matches("futex").count() - 1);
    let profile = dir.write("nofutex.yaml", text, 0o644);
    for mode in jail_modes() {
        let mut s = spawn(&shm_opts(mode, &profile, &so, ShmOptions::default()));
        assert!(s.hello().is_err(), "[{}]", mode.name());
        let v = s.close();
        expect(&v, "setup_failed", mode.name());
        assert_eq!(v.json["step"], "shm", "{:#}", v.json);
        assert!(
            v.message.as_deref().unwrap_or("").contains("futex"),
            "{:#}",
            v.json
        );
    }
}

/// `plugjail serve --shm-fd` refuses, before any jail exists, a descriptor that is the
/// channel, or one that is not a memfd sealed against resizing (here: its stderr pipe).
#[test]
fn serve_refuses_a_region_that_is_the_channel_or_not_sealed() {
    let so = plugin("crash");
    for mode in jail_modes() {
        for (fd, says) in [("0", "must differ"), ("2", "not a memfd sealed")] {
            let extra = ["--shm-fd".into(), fd.into()];
            let (mut child, status) =
                common::raw_serve_with(mode, &common::default_profile(), &so, &extra);
            drop(child.stdin.take());
            let exit = child.wait().expect("wait serve");
            let v = common::status_verdict(status);
            assert_eq!(exit.code(), Some(125), "[{}] {fd}: {v:#}", mode.name());
            assert_eq!(v["outcome"], "setup_failed", "{v:#}");
            assert_eq!(v["step"], "shm", "{v:#}");
            assert!(v["message"].as_str().unwrap_or("").contains(says), "{v:#}");
        }
    }
}

/// Under the strict profile (serve phase: read, write, futex and memory only) a session
/// sleeps and wakes on both sides, and idles past the stub's one-second look at the pipe,
/// without a syscall the profile refuses: the verdict is `ok`, not a seccomp violation.
#[test]
fn the_strict_profile_serves_shared_memory_calls_asleep_and_awake() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let profile = common::profile_for(mode, "strict");
        let mut s = spawn(&shm_opts(mode, &profile, &so, ShmOptions::default()));
        s.hello().expect("hello");
        for i in 0..300u32 {
            let input = i.to_le_bytes();
            assert_eq!(s.call("echo", &input).expect("echo"), input);
            if i % 100 == 99 {
                // Both ends asleep on the futex; the stub looks at the pipe once a second.
                std::thread::sleep(Duration::from_millis(1200));
            }
        }
        let v = s.close();
        expect(&v, "ok", mode.name());
        assert_eq!(v.calls, 300);
    }
}
