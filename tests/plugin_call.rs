//! Plugin mode doing its job, through the real jail as root and rootless: round trips through
//! `plugjail call` and the Rust `Session` with the example plugins (hello, csv2json), the
//! plugin's own ERROR answers, and ten thousand calls in one session. Every verdict is
//! checked, not just the exit status. The shared helpers are in tests/common/plugins.rs.

mod common;

use std::time::{Duration, Instant};

use common::{
    Mode, call, call_with, default_profile, expect, jail_modes, plugin, session_opts, spawn,
};
use plugjail::CallError;

#[test]
fn hello_round_trip_through_plugjail_call() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "greet", Some(b"world"));
        assert_eq!(c.code, Some(0), "{}", c.describe());
        assert_eq!(c.stdout, b"hello, world", "{}", c.describe());
        assert_eq!(c.outcome(), "ok", "{}", c.describe());
        assert_eq!(c.report["calls"], 1, "{}", c.describe());
        assert_eq!(
            c.report["plugin"]["bytes"],
            std::fs::metadata(&so).unwrap().len()
        );
        assert!(
            c.stderr.contains("plugin[info]: hello plugin ready"),
            "{}",
            c.describe()
        );
        // An ERROR answer is the plugin's, not the jail's: exit 1, outcome ok.
        let f = call(mode, &default_profile(), &so, "fail", None);
        assert_eq!(f.code, Some(1), "{}", f.describe());
        assert_eq!(f.outcome(), "ok", "{}", f.describe());
        assert_eq!(f.report["call_error"]["kind"], "plugin", "{}", f.describe());
        assert_eq!(f.report["call_error"]["status"], 7, "{}", f.describe());
        assert_eq!(f.report["call_error"]["message"], "asked to fail");
        let u = call(mode, &default_profile(), &so, "nope", None);
        assert_eq!(u.code, Some(1), "{}", u.describe());
        assert_eq!(u.report["call_error"]["kind"], "unknown_method");
    }
}

#[test]
fn csv2json_through_plugjail_call() {
    let so = plugin("csv2json");
    for mode in jail_modes() {
        let csv = b"name,lang\nada,\"C++, mostly\"\n";
        let c = call(mode, &default_profile(), &so, "convert", Some(csv));
        assert_eq!(c.code, Some(0), "{}", c.describe());
        let json: serde_json::Value = serde_json::from_slice(&c.stdout).expect("JSON");
        assert_eq!(
            json,
            serde_json::json!([{"name": "ada", "lang": "C++, mostly"}])
        );
    }
}

#[test]
fn hello_round_trip_through_a_session() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let mut s = spawn(&session_opts(mode, &default_profile(), &so));
        let h = s.hello().expect("hello").clone();
        assert_eq!((h.name.as_str(), h.version.as_str()), ("hello", "1.0.0"));
        assert_eq!(h.methods, ["greet", "echo", "fail"]);
        assert_eq!(s.call("greet", b"rust").expect("greet"), b"hello, rust");
        match s.call("fail", b"") {
            Err(CallError::Failed {
                status: 7, message, ..
            }) => assert_eq!(message, "asked to fail"),
            other => panic!("[{}] fail: {other:?}", mode.name()),
        }
        assert_eq!(s.call("echo", b"still here").expect("echo"), b"still here");
        // The profile's call_time (30s in the default profile) is the deadline.
        assert_eq!(s.call_timeout(), Duration::from_secs(30));
        let v = s.close();
        expect(&v, "ok", mode.name());
        assert_eq!(v.calls, 3);
        assert_eq!(v.json["enforced"]["rootless"], mode == Mode::Rootless);
    }
}

#[test]
fn ten_thousand_sequential_calls_in_one_session() {
    let so = plugin("hello");
    let Some(&mode) = jail_modes().first() else {
        return;
    };
    let mut s = spawn(&session_opts(mode, &default_profile(), &so));
    s.hello().expect("hello");
    let start = Instant::now();
    for i in 0..10_000u32 {
        let input = format!("caller {i}");
        let out = s.call("greet", input.as_bytes()).expect("greet");
        assert_eq!(out, format!("hello, {input}").as_bytes(), "call {i}");
    }
    let took = start.elapsed();
    eprintln!(
        "10000 calls through the jail in {took:?} ({:.1} us per call)",
        took.as_secs_f64() * 1e6 / 10_000.0
    );
    let v = s.close();
    expect(&v, "ok", "10000 calls");
    assert_eq!(v.calls, 10_000);
    // The supervisor's own count (from the watch page) agrees.
    assert!(v.json["calls"] == 10_000);
}

/// `PLUGJAIL_TIMING=1` prints one line of setup-step times for profiling (docs/
/// performance.md, "Where the time goes"): every step of a call, in order, with times that
/// never go back; without the variable, no such line.
#[test]
fn timing_marks_every_setup_step_in_order_when_asked() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let c = call_with(
            mode,
            &default_profile(),
            &so,
            "greet",
            Some(b"x"),
            Duration::from_secs(60),
            |cmd| {
                cmd.env("PLUGJAIL_TIMING", "1");
            },
        );
        let what = c.describe();
        assert_eq!(c.code, Some(0), "{what}");
        let line = c
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("plugjail: timing (ms since main): "))
            .unwrap_or_else(|| panic!("no timing line: {what}"));
        let steps: Vec<(&str, f64)> = line
            .split(", ")
            .map(|s| {
                let (name, ms) = s.rsplit_once(' ').expect("name and time");
                (name, ms.parse().expect("milliseconds"))
            })
            .collect();
        let names: Vec<&str> = steps.iter().map(|s| s.0).collect();
        let expected = [
            "cli",
            "report",
            "profile",
            "plugin",
            "stub",
            "plan",
            "gate",
            "cgroup_probe",
            "cgroup",
            "clone",
            "maps",
            "program",
            "cgroup_reap",
        ];
        assert_eq!(&names[..expected.len()], expected, "{what}");
        // Then the rest. `exec` is marked by the supervising thread when the setup pipe
        // closes, `hello` and `result` by the thread that talks to the stub: on a loaded
        // machine the second may run first.
        let rest: Vec<&str> = names[expected.len()..]
            .iter()
            .copied()
            .filter(|n| *n != "exec")
            .collect();
        assert_eq!(rest, ["hello", "result", "ended"], "{what}");
        let at = |step: &str| names.iter().position(|n| *n == step);
        assert!(at("exec").is_some() && at("exec") < at("ended"), "{what}");
        assert!(steps.windows(2).all(|w| w[0].1 <= w[1].1), "{what}");

        let quiet = call(mode, &default_profile(), &so, "greet", Some(b"x"));
        assert!(!quiet.stderr.contains("timing"), "{}", quiet.describe());
    }
}

/// `-q` drops the summary line of an answered call, never that of a failed one.
#[test]
fn quiet_call_still_says_a_failed_call() {
    let so = plugin("hello");
    for mode in jail_modes() {
        let quiet = |cmd: &mut std::process::Command| {
            cmd.arg("-q");
        };
        let c = call_with(
            mode,
            &default_profile(),
            &so,
            "greet",
            Some(b"world"),
            Duration::from_secs(60),
            quiet,
        );
        assert_eq!(c.code, Some(0), "{}", c.describe());
        assert_eq!(c.stdout, b"hello, world", "{}", c.describe());
        assert!(!c.stderr.contains("plugjail: "), "{}", c.describe());
        // The plugin's own log lines are its output, not the summary: they stay.
        assert!(c.stderr.contains("plugin[info]: "), "{}", c.describe());
        let u = call_with(
            mode,
            &default_profile(),
            &so,
            "nope",
            None,
            Duration::from_secs(60),
            quiet,
        );
        assert_eq!(u.code, Some(1), "{}", u.describe());
        assert!(
            u.stderr.contains("plugjail: ") && u.stderr.contains("unknown_method"),
            "{}",
            u.describe()
        );
    }
}
