//! `plugjail serve` and deadlines, through the real jail as root and rootless: raw
//! `plugjail serve` spoken to frame by frame with the verdict on `--status-fd`, the C host
//! example against it, the profile's call_time and idle_time, and the host's own deadline
//! (a `Session`'s, or SIGUSR1 sent to `plugjail serve`).

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::{
    TempDir, call_frame, default_profile, expect, extend_profile, jail_modes, next_frame, plugin,
    plugjail, raw_serve, session_opts, spawn, status_verdict,
};
use plugjail::CallError;

#[test]
fn a_session_ends_a_call_at_its_own_deadline_and_says_so() {
    let so = plugin("crash");
    for mode in jail_modes() {
        let mut opts = session_opts(mode, &default_profile(), &so);
        // Shorter than the profile's call_time (30 s): the host's own deadline acts.
        opts.call_timeout = Some(Duration::from_millis(300));
        let mut s = spawn(&opts);
        s.hello().expect("hello");
        let t = Instant::now();
        match s.call("hang", b"") {
            Err(CallError::Timeout { after }) => assert_eq!(after, Duration::from_millis(300)),
            other => panic!("[{}] hang: {other:?}", mode.name()),
        }
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert!(matches!(s.call("segv", b""), Err(CallError::Ended)));
        let v = s.close();
        expect(&v, "timeout", "host deadline");
        // The host's deadline, not the profile's call_time: kind `host`, with its limit.
        assert_eq!(v.timeout_kind.as_deref(), Some("host"), "{:#}", v.json);
        assert_eq!(v.json["timeout"]["limit_ms"], 300);
        assert_eq!(v.message.as_deref(), Some("host deadline 300ms"));
        assert!(v.json.get("signal").is_none_or(|s| s["name"] == "SIGKILL"));
    }
}

/// `plugjail serve` itself says when the host ended the session at its own deadline:
/// the host sends SIGUSR1 (with sigqueue, the deadline in ms as the value; with kill,
/// no deadline) and the verdict on the status fd is `timeout`, kind `host`, exit 5.
#[test]
fn a_host_deadline_signalled_to_serve_is_a_host_timeout() {
    let so = plugin("crash");
    for mode in jail_modes() {
        for queued in [true, false] {
            let what = format!("[{}] queued={queued}", mode.name());
            let (mut child, status) = raw_serve(mode, &default_profile(), &so);
            let mut out = child.stdout.take().expect("stdout");
            let mut inp = child.stdin.take().expect("stdin");
            assert_eq!(next_frame(&mut out).expect("HELLO").0, 1, "{what}");
            inp.write_all(&call_frame(1, "hang", b"")).expect("CALL");
            std::thread::sleep(Duration::from_millis(200));
            let pid = child.id() as i32;
            let sent = Instant::now();
            let rc = if queued {
                let value = libc::sigval {
                    sival_ptr: std::ptr::without_provenance_mut(250),
                };
                // SAFETY: our own child, not yet reaped; sigqueue copies the value.
                unsafe { libc::sigqueue(pid, libc::SIGUSR1, value) }
            } else {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGUSR1) }
            };
            assert_eq!(rc, 0, "{what}: {}", std::io::Error::last_os_error());
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest);
            let exit = child.wait().expect("wait serve");
            let v = status_verdict(status);
            assert!(sent.elapsed() < Duration::from_secs(5), "{what}");
            assert_eq!(exit.code(), Some(5), "{what}: {v:#}");
            assert_eq!(v["outcome"], "timeout", "{what}: {v:#}");
            assert_eq!(v["timeout"]["kind"], "host", "{what}: {v:#}");
            if queued {
                assert_eq!(v["timeout"]["limit_ms"], 250, "{what}: {v:#}");
                assert_eq!(v["message"], "host deadline 250ms", "{v:#}");
            } else {
                assert!(v["timeout"].get("limit_ms").is_none(), "{what}: {v:#}");
                assert_eq!(v["message"], "host deadline", "{v:#}");
            }
        }
    }
}

/// A `Session` whose deadline is the profile's call_time reports the profile's limit
/// (kind `call`), whoever noticed first.
#[test]
fn a_session_at_the_profiles_call_time_reports_kind_call() {
    let so = plugin("crash");
    let dir = TempDir::new("calltime-session", 0o755);
    let profile = extend_profile(&dir, "ct", "default", "limits:\n  call_time: 700ms\n");
    for mode in jail_modes() {
        let mut s = spawn(&session_opts(mode, &profile, &so));
        s.hello().expect("hello");
        assert_eq!(s.call_timeout(), Duration::from_millis(700));
        assert!(matches!(
            s.call("hang", b""),
            Err(CallError::Timeout { .. } | CallError::Ended)
        ));
        let v = s.close();
        expect(&v, "timeout", mode.name());
        assert_eq!(v.timeout_kind.as_deref(), Some("call"), "{:#}", v.json);
        assert_eq!(v.json["timeout"]["limit_ms"], 700, "{:#}", v.json);
    }
}

#[test]
fn a_spinning_call_is_ended_at_call_time_even_by_a_host_that_just_waits() {
    let so = plugin("crash");
    let dir = TempDir::new("calltime", 0o755);
    let profile = extend_profile(&dir, "ct", "default", "limits:\n  call_time: 1s\n");
    for mode in jail_modes() {
        let (mut child, status) = raw_serve(mode, &profile, &so);
        let mut out = child.stdout.take().expect("stdout");
        let mut inp = child.stdin.take().expect("stdin");
        let (kind, _) = next_frame(&mut out).expect("HELLO");
        assert_eq!(kind, 1, "the first frame is HELLO");
        inp.write_all(&call_frame(1, "hang", b"")).expect("CALL");
        let sent = Instant::now();
        // The naive host: no deadline of its own, it reads until end of file.
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        let ended = sent.elapsed();
        let exit = child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(v["outcome"], "timeout", "[{}] {v:#}", mode.name());
        assert_eq!(v["timeout"]["kind"], "call", "{v:#}");
        assert_eq!(v["timeout"]["limit_ms"], 1000, "{v:#}");
        assert_eq!(exit.code(), Some(5));
        // The supervisor looks every 250 ms: the call ends between 1 s and ~1.25 s.
        assert!(
            ended >= Duration::from_millis(990) && ended < Duration::from_millis(2000),
            "[{}] ended after {ended:?}",
            mode.name()
        );
        eprintln!(
            "[{}] call_time 1s: the jail ended {ended:?} after the CALL",
            mode.name()
        );
    }
}

#[test]
fn an_idle_session_is_ended_at_idle_time() {
    let so = plugin("hello");
    let dir = TempDir::new("idle", 0o755);
    let profile = extend_profile(&dir, "idle", "default", "limits:\n  idle_time: 500ms\n");
    for mode in jail_modes() {
        let (mut child, status) = raw_serve(mode, &profile, &so);
        let mut out = child.stdout.take().expect("stdout");
        let inp = child.stdin.take().expect("stdin");
        assert_eq!(next_frame(&mut out).expect("HELLO").0, 1);
        let t = Instant::now();
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        let waited = t.elapsed();
        drop(inp);
        child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(v["outcome"], "timeout", "[{}] {v:#}", mode.name());
        assert_eq!(v["timeout"]["kind"], "idle", "{v:#}");
        assert!(
            waited < Duration::from_secs(2),
            "[{}] {waited:?}",
            mode.name()
        );
    }
}

#[test]
fn serve_delivers_the_verdict_on_the_status_fd() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let (mut child, status) = raw_serve(mode, &default_profile(), &so);
        let mut out = child.stdout.take().expect("stdout");
        let mut inp = child.stdin.take().expect("stdin");
        assert_eq!(next_frame(&mut out).expect("HELLO").0, 1);
        inp.write_all(&call_frame(7, "greet", b"fd")).expect("CALL");
        let (kind, payload) = next_frame(&mut out).expect("reply");
        assert_eq!((kind, payload.as_slice()), (3, &b"hello, fd"[..]));
        // The host closing the channel between calls ends the session cleanly.
        drop(inp);
        let exit = child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(v["outcome"], "ok", "[{}] {v:#}", mode.name());
        assert_eq!(v["calls"], 1, "{v:#}");
        assert_eq!(exit.code(), Some(0));
    }
}

#[test]
fn the_c_host_example_runs_against_plugjail_serve() {
    let Some(&mode) = jail_modes().first() else {
        return;
    };
    let host = common::build("c-host", common::Lang::C, &["examples/host/host.c"], &[]);
    let so = plugin("hello");
    let dir = TempDir::new("chost", 0o755);
    let input = dir.write("in.txt", "from C", 0o644);
    let out = mode
        .command(&host)
        .arg("greet")
        .arg(&input)
        .arg("--")
        .arg(plugjail())
        .args(["serve", "--profile"])
        .arg(default_profile())
        .arg("--plugin")
        .arg(&so)
        .output()
        .expect("run the C host");
    assert!(
        out.status.success(),
        "{:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, b"hello, from C");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("session ended cleanly after 1 call"), "{err}");
}

/// The first frame of a serve session is plugjail's SESSION, with the profile's frame cap
/// and deadlines, written before the jail exists; a SESSION frame from the plugin's side
/// later on is a protocol violation the host refuses.
#[test]
fn the_first_frame_is_plugjails_session_with_the_profiles_limits() {
    let so = plugin("hello");
    let dir = TempDir::new("session", 0o755);
    let profile = extend_profile(
        &dir,
        "session",
        "default",
        "limits:\n  max_message: 64K\n  call_time: 7s\n  idle_time: 9s\n",
    );
    for mode in jail_modes() {
        let (mut child, status) = raw_serve(mode, &profile, &so);
        let mut out = child.stdout.take().expect("stdout");
        let (kind, payload) = common::read_frame(&mut out).expect("a first frame");
        assert_eq!(kind, 7, "[{}] the first frame is SESSION", mode.name());
        let info = plugjail::protocol::SessionInfo::parse(&payload).expect("SESSION parses");
        assert_eq!(info.max_message, 64 * 1024);
        assert_eq!((info.call_time_ms, info.idle_time_ms), (7000, 9000));
        drop(child.stdin.take());
        let _ = child.wait();
        assert_eq!(status_verdict(status)["outcome"], "ok");
    }
    // A Session learns its deadline from it, without reading the profile.
    if let Some(&mode) = jail_modes().first() {
        let mut s = spawn(&session_opts(mode, &profile, &so));
        s.hello().expect("hello");
        assert_eq!(s.call_timeout(), Duration::from_secs(7));
        expect(&s.close(), "ok", "");
    }
}
