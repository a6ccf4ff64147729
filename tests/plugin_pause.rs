//! Pausing and resuming a plugin session, and pinning it to CPUs, through the real jail as
//! root and rootless: as root on this machine (cgroup v1 hybrid) the jail is frozen in a
//! v1 freezer cgroup; rootless here there is no cgroup, and the jail's processes are
//! stopped with SIGSTOP instead (docs/limits.md, "Pausing a jail").
//!
//! The spin plugin (tests/plugins/spin.cpp) burns CPU time, forks a spinning child, counts
//! and reports its CPU affinity. The jail's CPU time is read from outside
//! (tests/common/jail_view.rs): the cgroup's figure when the jail has one, else
//! utime + stime of its processes.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::{
    Mode, call_frame, cgroups_of, default_profile, expect, jail_cpu, jail_modes, jail_processes,
    next_frame, plugin, raw_serve_control, session_opts, spawn, status_verdict, thread_states,
};
use plugjail::session::PauseError;
use plugjail::{Session, SessionVerdict};

/// A pausable session of the spin plugin, HELLO done.
fn pausable(mode: Mode) -> Session {
    let mut opts = session_opts(mode, &default_profile(), &plugin("spin"));
    opts.pausable = true;
    let mut s = spawn(&opts);
    s.hello().expect("hello");
    s
}

/// Closes `s` and checks that nothing of it is left: no process, no cgroup.
fn close_and_check_gone(s: Session, what: &str) -> SessionVerdict {
    let pid = s.serve_pid().expect("serve pid");
    let t = Instant::now();
    let v = s.close();
    let took = t.elapsed();
    assert_gone(pid, what);
    assert!(took < Duration::from_secs(5), "{what}: close took {took:?}");
    v
}

fn assert_gone(serve: u32, what: &str) {
    let procs = jail_processes(serve);
    assert!(procs.is_empty(), "{what}: processes left: {procs:?}");
    let cgroups = cgroups_of(serve);
    assert!(cgroups.is_empty(), "{what}: cgroups left: {cgroups:?}");
}

/// The parent pid of `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The jail's CPU time grown over `span`, in microseconds.
fn cpu_over(serve: u32, span: Duration) -> (u64, &'static str) {
    let (before, _) = jail_cpu(serve);
    std::thread::sleep(span);
    let (after, source) = jail_cpu(serve);
    (after.saturating_sub(before), source)
}

#[test]
fn a_paused_session_uses_no_cpu_and_its_call_completes_after_resume() {
    for mode in jail_modes() {
        let what = mode.name();
        let mut s = pausable(mode);
        let serve = s.serve_pid().expect("serve pid");
        // A second process in the jail, spinning until the end: a pause must catch it too.
        let child = s.call("fork", b"").expect("fork");
        assert!(
            String::from_utf8_lossy(&child).parse::<u32>().is_ok(),
            "{child:?}"
        );
        let handle = s.pause_handle().expect("a pausable session has a handle");
        // 600 ms of the calling thread's CPU time, another thread spinning meanwhile.
        let caller = std::thread::spawn(move || {
            let out = s.call("spin", b"600 1");
            (s, out)
        });
        std::thread::sleep(Duration::from_millis(300));
        let (running, source) = cpu_over(serve, Duration::from_millis(200));
        let t = Instant::now();
        handle.pause().expect("pause");
        let latency = t.elapsed();
        // Idempotent: pausing again succeeds at once and changes nothing.
        handle.pause().expect("pause again");
        let jail = jail_processes(serve);
        let states: Vec<(u32, Vec<char>)> = jail.iter().map(|&p| (p, thread_states(p))).collect();
        let (paused, _) = cpu_over(serve, Duration::from_millis(300));
        handle.resume().expect("resume");
        handle.resume().expect("resume again");
        let (resumed, _) = cpu_over(serve, Duration::from_millis(200));
        let (mut s, out) = caller.join().expect("caller thread");
        eprintln!(
            "[{what}] pause took {latency:?}; jail CPU ({source}): {running} us in 200 ms \
             running, {paused} us in 300 ms paused, {resumed} us in 200 ms resumed; \
             processes and thread states while paused: {states:?}"
        );
        assert_eq!(out.expect("spin").as_slice(), b"spun 600", "[{what}]");
        assert!(
            running >= 20_000,
            "[{what}] only {running} us of CPU in 200 ms running"
        );
        // The /proc figure counts whole clock ticks: allow one per process.
        let slack = if source.starts_with("cgroup") {
            2_000
        } else {
            10_000 * jail.len() as u64
        };
        assert!(
            paused <= slack,
            "[{what}] {paused} us of CPU while paused ({source})"
        );
        if !source.starts_with("cgroup") {
            // Stopped with SIGSTOP: every thread of the jail but its init (serve's child)
            // in a job-control or ptrace stop.
            for (pid, threads) in states.iter().filter(|(p, _)| parent_of(*p) != Some(serve)) {
                assert!(
                    threads.iter().all(|c| matches!(c, 'T' | 't')),
                    "[{what}] process {pid} not stopped: {threads:?}"
                );
            }
        }
        assert!(
            resumed >= 20_000,
            "[{what}] only {resumed} us of CPU once resumed"
        );
        assert!(
            latency < Duration::from_secs(2),
            "[{what}] pause took {latency:?}"
        );
        // The session goes on.
        assert_eq!(s.call("count", b"").expect("count"), b"1");
        let v = close_and_check_gone(s, what);
        expect(&v, "ok", what);
    }
}

#[test]
fn pausing_a_session_that_is_not_pausable_is_a_typed_error() {
    let Some(&mode) = jail_modes().first() else {
        return;
    };
    let opts = session_opts(mode, &default_profile(), &plugin("spin"));
    let mut s = spawn(&opts);
    s.hello().expect("hello");
    assert!(matches!(s.pause(), Err(PauseError::NotPausable)));
    assert!(matches!(s.resume(), Err(PauseError::NotPausable)));
    assert!(matches!(s.pause_handle(), Err(PauseError::NotPausable)));
    assert_eq!(s.call("count", b"").expect("count"), b"1");
    expect(&s.close(), "ok", "not pausable");
}

#[test]
fn resuming_a_running_session_is_harmless() {
    for mode in jail_modes() {
        let mut s = pausable(mode);
        s.resume().expect("resume while running");
        assert_eq!(s.call("count", b"").expect("count"), b"1");
        s.pause().expect("pause");
        s.resume().expect("resume");
        s.resume().expect("resume again");
        assert_eq!(s.call("count", b"").expect("count"), b"2");
        expect(&s.close(), "ok", mode.name());
    }
}

/// Closing a paused session resumes it first (serve resumes the jail when the control
/// socket closes): the plugin sees SHUTDOWN, the verdict is `ok`, nothing is left.
/// Dropping one ends the jail like dropping any session; a handle outliving its session
/// says the session ended.
#[test]
fn closing_or_dropping_a_paused_session_ends_it_and_leaves_nothing() {
    for mode in jail_modes() {
        let what = format!("[{}] close", mode.name());
        let mut s = pausable(mode);
        s.call("fork", b"").expect("fork");
        let handle = s.pause_handle().expect("handle");
        s.pause().expect("pause");
        let v = close_and_check_gone(s, &what);
        expect(&v, "ok", &what);
        assert!(matches!(handle.pause(), Err(PauseError::Ended)), "{what}");
        assert!(matches!(handle.resume(), Err(PauseError::Ended)), "{what}");

        let what = format!("[{}] drop", mode.name());
        let mut s = pausable(mode);
        s.call("fork", b"").expect("fork");
        s.pause().expect("pause");
        let serve = s.serve_pid().expect("serve pid");
        let handle = s.pause_handle().expect("handle");
        let t = Instant::now();
        drop(s);
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{what}: {:?}",
            t.elapsed()
        );
        assert_gone(serve, &what);
        assert!(matches!(handle.resume(), Err(PauseError::Ended)), "{what}");
    }
}

/// A paused call still meets its deadline: pausing stops no clock.
#[test]
fn paused_time_counts_against_the_call_deadline() {
    let Some(&mode) = jail_modes().first() else {
        return;
    };
    let mut opts = session_opts(mode, &default_profile(), &plugin("spin"));
    opts.pausable = true;
    opts.call_timeout = Some(Duration::from_millis(800));
    let mut s = spawn(&opts);
    s.hello().expect("hello");
    let handle = s.pause_handle().expect("handle");
    let caller = std::thread::spawn(move || {
        let out = s.call("spin", b"200");
        (s, out)
    });
    std::thread::sleep(Duration::from_millis(50));
    handle.pause().expect("pause");
    let (s, out) = caller.join().expect("caller");
    assert!(
        matches!(out, Err(plugjail::CallError::Timeout { .. })),
        "{out:?}"
    );
    let serve = s.serve_pid().expect("pid");
    let v = s.close();
    expect(&v, "timeout", "a paused call past its deadline");
    assert_gone(serve, "timed out while paused");
}

/// The control socket byte by byte (docs/protocol.md): `P` and `R`, one reply each
/// (status, errno, text); anything else is refused; closing the socket resumes the jail.
#[test]
fn the_control_socket_speaks_its_protocol() {
    for mode in jail_modes() {
        let what = mode.name();
        let (mut child, status, control) =
            raw_serve_control(mode, &default_profile(), &plugin("spin"));
        let mut out = child.stdout.take().expect("stdout");
        let mut inp = child.stdin.take().expect("stdin");
        assert_eq!(next_frame(&mut out).expect("HELLO").0, 1, "[{what}]");
        let ask = |cmd: &[u8]| -> (u8, i32, String) {
            let fd = control.as_raw_fd();
            // SAFETY: sending the bytes of a live slice on our socket.
            let n = unsafe { libc::send(fd, cmd.as_ptr().cast(), cmd.len(), 0) };
            assert_eq!(n, cmd.len() as isize);
            let mut buf = [0u8; 4096];
            // SAFETY: `buf` is writable for its length.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            let n = usize::try_from(n).expect("a reply");
            assert!(n >= 5, "[{what}] short reply {:?}", &buf[..n]);
            let errno = i32::from_le_bytes(buf[1..5].try_into().unwrap());
            (
                buf[0],
                errno,
                String::from_utf8(buf[5..n].to_vec()).expect("UTF-8"),
            )
        };
        let held = if mode == Mode::Root {
            "cgroup_v1"
        } else {
            "signals"
        };
        let (st, errno, text) = ask(b"P");
        assert_eq!(st, 0, "[{what}] {text}");
        assert_eq!(errno, 0);
        eprintln!("[{what}] paused: {text}");
        if plugjail::probe::cgroup_mode() == plugjail::probe::CgroupMode::V1Hybrid {
            assert_eq!(text, held, "[{what}]");
        }
        assert_eq!(ask(b"P").0, 0, "[{what}] pause again");
        let (st, _, text) = ask(b"X");
        assert_eq!(st, 4, "[{what}] {text}");
        let (st, _, text) = ask(b"PR");
        assert_eq!(st, 4, "[{what}] {text}");
        assert_eq!(ask(b"R").0, 0, "[{what}] resume");
        assert_eq!(
            ask(b"R"),
            (0, 0, "running".to_owned()),
            "[{what}] resume again"
        );
        assert_eq!(ask(b"P").0, 0, "[{what}] pause");
        // While paused, a call waits; closing the control socket resumes the jail.
        inp.write_all(&call_frame(1, "count", b"")).expect("CALL");
        std::thread::sleep(Duration::from_millis(200));
        drop::<OwnedFd>(control);
        let (kind, payload) = next_frame(&mut out).expect("RESULT after the resume");
        assert_eq!((kind, payload.as_slice()), (3, &b"1"[..]), "[{what}]");
        drop(inp);
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        let exit = child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(v["outcome"], "ok", "[{what}] {v:#}");
        assert_eq!(exit.code(), Some(0), "[{what}]");
    }
}

/// The CPUs this test may run on.
fn our_cpus() -> Vec<usize> {
    // SAFETY: all-zero is an empty cpu_set_t; sched_getaffinity fills it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out pointer of the size given.
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) };
    assert_eq!(rc, 0, "sched_getaffinity");
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: CPU_ISSET only reads the set; every index is below CPU_SETSIZE.
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

#[test]
fn a_pinned_session_runs_only_on_its_cpus() {
    let ours = our_cpus();
    let last = *ours.last().expect("at least one CPU");
    for mode in jail_modes() {
        for cpus in [vec![ours[0]], vec![last]] {
            let what = format!("[{}] pinned to {cpus:?}", mode.name());
            let mut opts = session_opts(mode, &default_profile(), &plugin("spin"));
            opts.cpus = cpus.clone();
            let mut s = spawn(&opts);
            s.hello().expect("hello");
            let want = format!("{0};{0}", cpus[0]);
            for _ in 0..3 {
                let out = s.call("cpus", b"").expect("cpus");
                assert_eq!(String::from_utf8_lossy(&out), want, "{what}");
            }
            expect(&s.close(), "ok", &what);
        }
        // A CPU plugjail may not run on is refused before the jail is built.
        let mut opts = session_opts(mode, &default_profile(), &plugin("spin"));
        opts.cpus = vec![libc::CPU_SETSIZE as usize - 1];
        let mut s = spawn(&opts);
        assert!(s.hello().is_err());
        let v = s.close();
        expect(&v, "setup_failed", "an unavailable CPU");
        assert_eq!(v.json["step"], "cpus", "{:#}", v.json);
        let msg = v.message.clone().unwrap_or_default();
        assert!(msg.contains("CPU 1023") && msg.contains("allowed"), "{msg}");
    }
}
