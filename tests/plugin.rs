//! Plugin mode through the real jail: `plugjail call`, `plugjail serve` and the Rust
//! `Session`, as root and rootless, with the example plugins and the hostile ones in
//! tests/plugins/. Every verdict is checked, not just the exit status.

mod common;

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{Mode, TempDir, extend_profile, jail_modes, manifest_dir, plugjail, target_tmp};
use plugjail::{CallError, Session, SessionOptions, SessionVerdict};

/// Builds a plugin from tests/plugins or examples/plugins once per test process, into a
/// directory uid 65534 can read.
fn plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = ["tests/plugins", "examples/plugins"]
        .iter()
        .map(|d| manifest_dir().join(d).join(format!("{name}.cpp")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no source for plugin {name}"));
    let dir = target_tmp().join("plugjail-test-plugins");
    std::fs::create_dir_all(&dir).expect("mkdir plugin dir");
    common::chmod(&dir, 0o755);
    // Named after the source's contents: rebuilt only when it changes, never piling up.
    let text = std::fs::read(&src).expect("read plugin source");
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let out = dir.join(format!("{name}-{hash:016x}.so"));
    if out.exists() {
        built.insert(name.to_string(), out.clone());
        return out;
    }
    // Built under a private name, then renamed: other test binaries may build it too.
    let tmp = dir.join(common::unique(&format!(".{name}")));
    let status = Command::new("c++")
        .args(["-std=c++17", "-O1", "-shared", "-fPIC", "-I"])
        .arg(manifest_dir().join("include"))
        .arg("-o")
        .arg(&tmp)
        .arg(&src)
        .status()
        .expect("run c++");
    assert!(status.success(), "building {name}: {status}");
    common::chmod(&tmp, 0o644);
    std::fs::rename(&tmp, &out).expect("rename plugin");
    built.insert(name.to_string(), out.clone());
    out
}

fn default_profile() -> PathBuf {
    common::shipped_profile("default")
}

/// What one `plugjail call` did.
struct Called {
    mode: Mode,
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    report: serde_json::Value,
    elapsed: Duration,
    timed_out: bool,
}

impl Called {
    fn outcome(&self) -> &str {
        self.report["outcome"].as_str().unwrap_or("<none>")
    }

    fn describe(&self) -> String {
        format!(
            "[{}] status {:?} after {:?}{}\n  stdout: {}\n  stderr: {}\n  report: {}",
            self.mode.name(),
            self.code,
            self.elapsed,
            if self.timed_out {
                " (timed out: killed by the test)"
            } else {
                ""
            },
            String::from_utf8_lossy(&self.stdout),
            self.stderr.trim_end(),
            self.report
        )
    }
}

/// Runs `plugjail call` in `mode`, killing it (by pid) after 60 s.
fn call(mode: Mode, profile: &Path, so: &Path, method: &str, input: Option<&[u8]>) -> Called {
    call_with(
        mode,
        profile,
        so,
        method,
        input,
        Duration::from_secs(60),
        |_| {},
    )
}

/// [`call`], killing plugjail (by pid) after `timeout`.
fn call_within(
    mode: Mode,
    profile: &Path,
    so: &Path,
    method: &str,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Called {
    call_with(mode, profile, so, method, input, timeout, |_| {})
}

/// [`call_within`] with a change to the command (e.g. [`common::deny_ptrace`]).
fn call_with(
    mode: Mode,
    profile: &Path,
    so: &Path,
    method: &str,
    input: Option<&[u8]>,
    timeout: Duration,
    adjust: impl FnOnce(&mut Command),
) -> Called {
    let dir = TempDir::in_system_tmp("call", 0o777);
    let report = dir.join("verdict.json");
    let mut cmd = mode.command(plugjail());
    cmd.arg("call")
        .arg("--profile")
        .arg(profile)
        .arg("--plugin")
        .arg(so)
        .arg("--method")
        .arg(method)
        .arg("--report")
        .arg(&report);
    if input.is_some() {
        cmd.args(["--input", "-"]);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    adjust(&mut cmd);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn plugjail call");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.unwrap_or_default().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = start + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            timed_out = true;
            let _ = child.kill();
            break child.wait().expect("wait killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned();
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Called {
        mode,
        code: status.code(),
        stdout,
        stderr,
        report,
        elapsed,
        timed_out,
    }
}

/// Session options for `mode`: rootless sessions run `plugjail serve` through a small
/// wrapper script that drops to uid 65534 (setpriv keeps the inherited descriptors).
fn session_opts(mode: Mode, profile: &Path, so: &Path) -> SessionOptions {
    SessionOptions {
        profile: profile.to_path_buf(),
        plugin: so.to_path_buf(),
        plugjail: Some(plugjail_for(mode)),
        ..SessionOptions::default()
    }
}

fn plugjail_for(mode: Mode) -> PathBuf {
    if mode == Mode::Root || !common::probe::is_root() {
        return plugjail().to_path_buf();
    }
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    WRAPPER
        .get_or_init(|| {
            let dir = target_tmp().join("plugjail-test-wrappers");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("plugjail-as-nobody");
            let tmp = dir.join(common::unique(".wrapper"));
            // Single-quoted: the checkout's path may hold spaces or other shell syntax.
            let quoted = plugjail().display().to_string().replace('\'', r"'\''");
            let script = format!(
                "#!/bin/sh\nexec setpriv --reuid={n} --regid={n} --clear-groups -- '{quoted}' \"$@\"\n",
                n = common::NOBODY
            );
            std::fs::write(&tmp, script).expect("write wrapper");
            common::chmod(&tmp, 0o755);
            std::fs::rename(&tmp, &path).expect("rename wrapper");
            path
        })
        .clone()
}

fn spawn(opts: &SessionOptions) -> Session {
    Session::spawn(opts).unwrap_or_else(|e| panic!("spawn session: {e}"))
}

fn expect(v: &SessionVerdict, outcome: &str, what: &str) {
    assert_eq!(v.outcome, outcome, "{what}: {:#}", v.json);
}

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
fn a_session_with_a_plugin_outside_the_allowlist_reports_the_rejection() {
    let so = plugin("hello");
    let dir = TempDir::new("allow-session", 0o755);
    let pin = format!("plugin:\n  sha256: [{}]\n", "cd".repeat(32));
    let profile = extend_profile(&dir, "allow", "default", &pin);
    for mode in jail_modes() {
        let mut s = spawn(&session_opts(mode, &profile, &so));
        assert!(
            matches!(s.hello(), Err(CallError::Ended)),
            "[{}]",
            mode.name()
        );
        let v = s.close();
        expect(&v, "plugin_rejected", "allowlist via Session");
        let msg = v.message.unwrap_or_default();
        assert!(
            msg.contains("is not in the profile's plugin.sha256 allowlist"),
            "{msg}"
        );
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

#[test]
fn crashes_are_signaled_and_the_next_session_works() {
    let crash = plugin("crash");
    let hello = plugin("hello");
    for mode in jail_modes() {
        for (method, signal) in [
            ("segv", libc::SIGSEGV),
            ("abort", libc::SIGABRT),
            ("throw", libc::SIGABRT),
        ] {
            let mut s = spawn(&session_opts(mode, &default_profile(), &crash));
            s.hello().expect("hello");
            match s.call(method, b"") {
                Err(CallError::Ended) => {}
                other => panic!("[{}] {method}: {other:?}", mode.name()),
            }
            let v = s.close();
            expect(&v, "signaled", method);
            assert_eq!(v.signal, Some(signal), "{method}: {:#}", v.json);
            assert_eq!(v.json["exit_status"], 128 + signal);
        }
        let mut s = spawn(&session_opts(mode, &default_profile(), &hello));
        assert_eq!(
            s.call("greet", b"survivor").expect("greet"),
            b"hello, survivor"
        );
        expect(&s.close(), "ok", "after the crashes");
    }
}

#[test]
fn bytes_the_plugin_writes_to_the_channel_are_protocol_violations() {
    let so = plugin("channel_writer");
    let cap = 1 << 20;
    let dir = TempDir::new("proto", 0o755);
    // A 1 MiB frame cap: whatever the plugin claims, the host reserves no more.
    let profile = extend_profile(&dir, "cap", "default", "limits:\n  max_message: 1M\n");
    for mode in jail_modes() {
        for (method, says) in [
            ("garbage", "unknown frame type"),
            (
                "huge_length",
                "4294967295 bytes exceeds the maximum message size",
            ),
            ("half_frame", "channel closed after 26 of the 116 bytes"),
        ] {
            let mut s = spawn(&session_opts(mode, &profile, &so));
            s.hello().expect("hello");
            match s.call(method, b"") {
                Err(CallError::Protocol(e)) => assert!(e.to_string().contains(says), "{e}"),
                other => panic!("[{}] {method}: {other:?}", mode.name()),
            }
            assert!(
                s.peak_buffer() <= cap,
                "{method}: host buffer {}",
                s.peak_buffer()
            );
            let v = s.close();
            expect(&v, "protocol_violation", method);
            assert!(
                v.message.as_deref().unwrap_or("").contains(says),
                "{:#}",
                v.json
            );
            // The same through `plugjail call`: plugjail itself is the host there.
            let c = call(mode, &profile, &so, method, None);
            assert_eq!(c.code, Some(4), "{}", c.describe());
            assert_eq!(c.outcome(), "protocol_violation", "{}", c.describe());
            assert!(
                c.report["resources"]["max_rss_bytes"].as_u64().unwrap_or(0) < 64 << 20,
                "{}",
                c.describe()
            );
        }
    }
}

#[test]
fn a_forbidden_syscall_in_a_constructor_is_stopped_by_the_load_filter() {
    let so = plugin("ctor_socket");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "run", None);
        assert_eq!(c.code, Some(8), "{}", c.describe());
        assert_eq!(c.outcome(), "seccomp_violation", "{}", c.describe());
        // Named by the jail's init when it could trace the jail.
        if c.report["enforced"]["seccomp"]["naming"] == "ptrace" {
            assert_eq!(c.report["syscall"]["name"], "socket", "{}", c.describe());
        }
        assert_eq!(c.report["calls"], 0);
    }
}

#[test]
fn execve_during_a_call_is_stopped_by_the_serve_filter() {
    let so = plugin("escape");
    for mode in jail_modes() {
        // mkdir is allowed while loading (default.yaml), so naming it proves the serve
        // filter is stacked, and is the traced variant (jail step 26c).
        for (method, syscalls) in [("shell", &["execve"][..]), ("mkdir", &["mkdir", "mkdirat"])] {
            let c = call(mode, &default_profile(), &so, method, None);
            assert_eq!(c.code, Some(8), "{method}: {}", c.describe());
            assert_eq!(c.outcome(), "seccomp_violation", "{}", c.describe());
            let name = c.report["syscall"]["name"].as_str().unwrap_or_default();
            assert!(syscalls.contains(&name), "{method}: {}", c.describe());
            assert_eq!(c.report["syscall"]["phase"], "serve", "{}", c.describe());
            assert_eq!(c.report["enforced"]["seccomp_serve"]["naming"], "ptrace");
        }
    }
}

/// Attacks on the serve phase from the plugin's own code, which runs in the stub's address
/// space before serving (tests/plugins/serve_attack.cpp). Each must end in a named
/// violation when call() makes a load-only syscall, or be refused before serving. The
/// first three and `replace_fd` let `mkdir` run while serving against a stub that read and
/// installed its own serve filter (the design before the jail's serve gate); `own_filter`
/// is the gate's own weak point, a forged gate answer, and is refused by the filter count.
#[test]
#[cfg(target_arch = "x86_64")]
fn the_serve_phase_holds_against_the_plugins_own_code() {
    let so = plugin("serve_attack");
    let dir = TempDir::new("serve-attack", 0o755);
    let attacks = [
        "patch_read",
        "syscall_text",
        "syscall_got",
        "replace_fd",
        "thread_race",
        "own_filter",
    ];
    for mode in jail_modes() {
        for attack in attacks {
            // own_filter needs seccomp() while loading to stack its filter at all.
            let extra = if attack == "own_filter" {
                "seccomp:\n  load:\n    allow:\n      - syscalls: [seccomp]\n"
            } else {
                ""
            };
            let body = format!("environment:\n  set: {{ PLUGJAIL_ATTACK: {attack} }}\n{extra}");
            let profile = extend_profile(&dir, attack, "default", &body);
            let c = call(mode, &profile, &so, "mkdir", None);
            let what = format!("{attack}: {}", c.describe());
            let syscall = &c.report["syscall"];
            match attack {
                // The stub's end of the channel socket was replaced: the init cannot hand
                // the channel over, and nothing is served.
                "replace_fd" => {
                    assert_eq!(c.outcome(), "protocol_violation", "{what}");
                    assert_eq!(c.report["step"], "serve_switch", "{what}");
                    assert_eq!(c.report["calls"], 0, "{what}");
                    assert_eq!(c.code, Some(4), "{what}");
                }
                // The forged gate answer is not believed: socket() stays refused.
                "own_filter" => {
                    assert_eq!(c.outcome(), "seccomp_violation", "{what}");
                    assert_eq!(syscall["name"], "socket", "{what}");
                    assert_eq!(syscall["phase"], "load", "{what}");
                    let msg = c.report["message"].as_str().unwrap_or_default();
                    assert!(msg.contains("installed itself"), "{what}");
                }
                _ => {
                    assert_eq!(c.outcome(), "seccomp_violation", "{what}");
                    assert_eq!(c.code, Some(8), "{what}");
                    assert_eq!(syscall["phase"], "serve", "{what}");
                    let name = syscall["name"].as_str().unwrap_or_default();
                    let expected: &[&str] = if attack == "thread_race" {
                        &["umask", "mkdir", "mkdirat"]
                    } else {
                        &["mkdir", "mkdirat"]
                    };
                    assert!(expected.contains(&name), "{what}");
                    assert_eq!(c.report["enforced"]["seccomp_serve"]["phase"], "serve");
                }
            }
            assert!(c.stdout.is_empty(), "no RESULT may arrive: {what}");
        }
    }
}

/// A load-only syscall during a call names the serve phase, the key that would allow it,
/// and for an argument-conditioned syscall the argument that decided (ioctl FIONBIO: the
/// default profile allows only TCGETS and FIONREAD).
#[test]
fn a_serve_phase_refusal_names_the_phase_the_arguments_and_the_key() {
    let so = plugin("escape");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "fionbio", None);
        let what = c.describe();
        assert_eq!(c.outcome(), "seccomp_violation", "{what}");
        let syscall = &c.report["syscall"];
        assert_eq!(syscall["name"], "ioctl", "{what}");
        assert_eq!(syscall["phase"], "serve", "{what}");
        assert_eq!(syscall["args"][0]["index"], 1, "{what}");
        assert_eq!(syscall["args"][0]["value"], "0x5421", "{what}");
        assert_eq!(syscall["args"][0]["constant"], "FIONBIO", "{what}");
        let msg = c.report["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("seccomp.load.allow and seccomp.serve.allow")
                && msg.contains("value: 0x5421"),
            "{what}"
        );
        assert!(
            c.stderr
                .contains("arg 1 = 0x5421 FIONBIO in the serve phase"),
            "{what}"
        );
    }
}

/// The serve gate carries out `errno` and `trap` itself once serving: a load-only syscall
/// during a call fails (errno, the session goes on) or raises SIGSYS (trap), and does not
/// run; while loading, the same syscall runs.
#[test]
fn the_serve_gate_applies_errno_and_trap_like_the_kernel() {
    let so = plugin("serve_attack");
    let dir = TempDir::new("gate-actions", 0o755);
    for mode in jail_modes() {
        let errno = extend_profile(
            &dir,
            "errno",
            "default",
            "seccomp:\n  default_action: errno\n",
        );
        let c = call(mode, &errno, &so, "mkdir", None);
        let what = c.describe();
        // mkdir failed without running (status 2), and the jail was not ended for it.
        assert_eq!(c.outcome(), "ok", "{what}");
        assert_eq!(c.report["call_error"]["status"], 2, "{what}");
        assert_eq!(c.code, Some(1), "{what}");
        assert_eq!(
            c.report["enforced"]["seccomp_serve"]["default_action"],
            "errno"
        );

        let trap = extend_profile(
            &dir,
            "trap",
            "default",
            "seccomp:\n  default_action: trap\n",
        );
        let c = call(mode, &trap, &so, "mkdir", None);
        let what = c.describe();
        // No handler: SIGSYS ends the stub (reported as a seccomp violation, unnamed).
        assert_eq!(c.code, Some(8), "{what}");
        assert!(c.stdout.is_empty(), "{what}");
    }
}

/// Without ptrace the serve gate cannot work: `required` seccomp refuses plugin mode,
/// `best_effort` runs the session under the load phase and says so.
#[test]
fn without_ptrace_the_serve_phase_is_refused_or_reported_missing() {
    let so = plugin("hello");
    let dir = TempDir::new("no-ptrace", 0o755);
    let lenient = extend_profile(
        &dir,
        "lenient",
        "default",
        "enforcement:\n  seccomp: best_effort\n",
    );
    for mode in jail_modes() {
        let c = call_with(
            mode,
            &default_profile(),
            &so,
            "greet",
            None,
            Duration::from_secs(60),
            common::deny_ptrace,
        );
        let what = c.describe();
        assert_eq!(c.code, Some(125), "{what}");
        assert_eq!(c.report["step"], "serve_gate", "{what}");

        let c = call_with(
            mode,
            &lenient,
            &so,
            "greet",
            Some(b"x"),
            Duration::from_secs(60),
            common::deny_ptrace,
        );
        let what = c.describe();
        assert_eq!((c.code, c.outcome()), (Some(0), "ok"), "{what}");
        assert_eq!(c.stdout, b"hello, x", "{what}");
        let enforced = &c.report["enforced"];
        assert!(enforced.get("seccomp_serve").is_none(), "{what}");
        assert!(enforced["seccomp_serve_skipped"].is_string(), "{what}");
    }
}

#[test]
fn a_wrong_abi_is_rejected_and_the_plugin_never_runs() {
    let so = plugin("wrong_abi");
    for mode in jail_modes() {
        // A directory the jail may write to, and the marker the plugin would leave there
        // from init() or call().
        let dir = TempDir::new("abi", 0o777);
        let marker = dir.join("ran");
        let body = format!(
            "filesystem:\n  read_write: [{d}]\nlandlock:\n  read: [{d}]\n  write: [{d}]\n\
             environment:\n  set: {{ PLUGJAIL_TEST_MARKER: {m} }}\n",
            d = dir.path().display(),
            m = marker.display()
        );
        let profile = extend_profile(&dir, "marker", "default", &body);
        let c = call(mode, &profile, &so, "run", None);
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert_eq!(c.report["plugin_failure"]["stage"], "abi");
        let msg = c.report["plugin_failure"]["message"].as_str().unwrap_or("");
        assert!(msg.contains("ABI version 999"), "{}", c.describe());
        assert!(!marker.exists(), "the plugin's init or call ran");
        let mut s = spawn(&session_opts(mode, &profile, &so));
        assert!(matches!(s.hello(), Err(CallError::Startup { .. })));
        let v = s.close();
        expect(&v, "plugin_rejected", "wrong ABI via Session");
        assert_eq!(v.json["plugin_failure"]["stage"], "abi", "{:#}", v.json);
        assert!(!marker.exists(), "the plugin's init or call ran");
    }
}

#[test]
fn a_plugin_outside_the_allowlist_is_rejected_before_anything_runs() {
    let so = plugin("hello");
    let dir = TempDir::new("allow", 0o755);
    let other = "ab".repeat(32);
    let profile = extend_profile(
        &dir,
        "allow",
        "default",
        &format!("plugin:\n  sha256: [{other}]\n"),
    );
    for mode in jail_modes() {
        let c = call(mode, &profile, &so, "greet", Some(b"x"));
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert_eq!(c.report["step"], "open_plugin");
        assert!(c.stdout.is_empty());
        // Nothing ran: no jail was built, so nothing was enforced or measured.
        assert!(c.report.get("enforced").is_none(), "{}", c.describe());
        assert!(c.report.get("resources").is_none(), "{}", c.describe());
    }
}

/// A `--plugin` that is not a regular file is refused at once, before any deadline exists:
/// a FIFO nobody writes to (opening it for reading used to wait for a writer forever), a
/// device that never ends, a directory.
#[test]
fn a_plugin_that_is_not_a_regular_file_is_refused_without_blocking() {
    let dir = TempDir::new("not-regular", 0o755);
    let fifo = dir.join("plugin.so");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o666) }, 0, "mkfifo");
    common::chmod(&fifo, 0o666);
    let cases = [
        (fifo.as_path(), "a FIFO"),
        (Path::new("/dev/zero"), "a character device"),
        (dir.path(), "a directory"),
    ];
    for mode in jail_modes() {
        for (so, kind) in cases {
            let c = call_within(
                mode,
                &default_profile(),
                so,
                "greet",
                Some(b"x"),
                Duration::from_secs(10),
            );
            let what = format!("--plugin {} ({kind})", so.display());
            assert!(!c.timed_out, "{what} blocked plugjail:\n{}", c.describe());
            assert_eq!(c.code, Some(3), "{what}:\n{}", c.describe());
            assert_eq!(c.outcome(), "plugin_rejected", "{what}:\n{}", c.describe());
            assert_eq!(c.report["step"], "open_plugin", "{what}");
            let message = format!("is {kind}, not a regular file");
            assert!(
                c.report["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(&message)),
                "{what}: the verdict's message does not say `{message}`:\n{}",
                c.describe()
            );
            assert!(c.report.get("enforced").is_none(), "{}", c.describe());
        }
    }
}

/// A plugin over the size cap is refused by its size (fstat), before a byte is read: a
/// sparse file of cap + 1 bytes, watched with inotify, is opened but never read.
#[test]
fn an_oversized_plugin_is_refused_without_being_read() {
    let dir = TempDir::new("oversized", 0o755);
    let so = dir.join("big.so");
    let f = std::fs::File::create(&so).expect("create");
    f.set_len(plugjail::plugin_file::MAX_PLUGIN_BYTES + 1)
        .expect("ftruncate");
    drop(f);
    common::chmod(&so, 0o644);
    for mode in jail_modes() {
        // SAFETY: inotify_init1 takes flags only; the result is checked and owned below.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(
            fd >= 0,
            "inotify_init1: {}",
            std::io::Error::last_os_error()
        );
        // SAFETY: inotify_init1 just returned this descriptor and nothing else owns it.
        let inotify = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_path = std::ffi::CString::new(so.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a valid inotify descriptor and a NUL-terminated path.
        let wd = unsafe {
            libc::inotify_add_watch(
                inotify.as_raw_fd(),
                c_path.as_ptr(),
                libc::IN_OPEN | libc::IN_ACCESS,
            )
        };
        assert!(
            wd >= 0,
            "inotify_add_watch: {}",
            std::io::Error::last_os_error()
        );
        let c = call_within(
            mode,
            &default_profile(),
            &so,
            "greet",
            Some(b"x"),
            Duration::from_secs(30),
        );
        assert_eq!(c.code, Some(3), "{}", c.describe());
        assert_eq!(c.outcome(), "plugin_rejected", "{}", c.describe());
        assert!(
            c.report["message"]
                .as_str()
                .is_some_and(|m| m.contains("the plugin is larger than")),
            "{}",
            c.describe()
        );
        let mut events = 0u32;
        let mut buf = [0u8; 4096];
        loop {
            // SAFETY: reads into a buffer of the given length that we own.
            let n = unsafe { libc::read(inotify.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            let n = match usize::try_from(n) {
                Ok(n) if n > 0 => n,
                _ => break,
            };
            let mut at = 0;
            while at < n {
                // SAFETY: the kernel wrote whole inotify_event records; read_unaligned copes
                // with the byte buffer's alignment.
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                events |= ev.mask;
                at += std::mem::size_of::<libc::inotify_event>() + ev.len as usize;
            }
        }
        assert!(
            events & libc::IN_OPEN != 0,
            "[{}] inotify saw no open of {}, so it cannot tell whether it was read",
            mode.name(),
            so.display()
        );
        assert!(
            events & libc::IN_ACCESS == 0,
            "[{}] plugjail read {} (inotify IN_ACCESS) although fstat gives a size over the cap",
            mode.name(),
            so.display()
        );
    }
}

#[test]
fn a_noisy_plugin_cannot_flood_the_host() {
    let so = plugin("noisy");
    for mode in jail_modes() {
        let c = call(mode, &default_profile(), &so, "flood", None);
        assert_eq!(c.code, Some(0), "{}", c.describe());
        assert_eq!(c.stdout, b"done");
        // 16 MiB were written to stdout, stderr and the log; the host got the budgets.
        let bound =
            plugjail::protocol::consts::LOG_BUDGET + 3 * plugjail::protocol::consts::OUTPUT_BUDGET;
        assert!(
            c.stderr.len() < bound + (64 << 10),
            "{} bytes on stderr",
            c.stderr.len()
        );
        // Each kind of loss is said once: the log beyond its budget, and the output the
        // full pipe refused (the plugin's writes failed, so only that it happened is known).
        let tail = &c.stderr[c.stderr.len().saturating_sub(500)..];
        assert_eq!(
            c.stderr.matches("bytes of plugin log dropped").count(),
            1,
            "{tail}"
        );
        let output_notes = c.stderr.matches("plugin stdout/stderr: ").count();
        assert_eq!(output_notes, 1, "{tail}");
        assert!(c.stderr.contains("the pipe was full"), "{tail}");
    }
}

/// Starts `plugjail serve` on stdin/stdout with `--status-fd 3`; returns the child, the
/// status pipe's read end.
fn raw_serve(mode: Mode, profile: &Path, so: &Path) -> (std::process::Child, OwnedFd) {
    raw_serve_with(mode, profile, so, &[])
}

/// [`raw_serve`] with more options.
fn raw_serve_with(
    mode: Mode,
    profile: &Path,
    so: &Path,
    extra: &[OsString],
) -> (std::process::Child, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: room for two descriptors.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    let mut cmd = mode.command(plugjail());
    let args: Vec<OsString> = vec![
        "serve".into(),
        "--profile".into(),
        profile.into(),
        "--plugin".into(),
        so.into(),
        "--status-fd".into(),
        "3".into(),
    ];
    cmd.args(&args)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let src = w.as_raw_fd();
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `status_fd_at_3` makes one dup2 (async-signal-safe) and allocates
    // nothing.
    unsafe { cmd.pre_exec(move || status_fd_at_3(src)) };
    let child = cmd.spawn().expect("spawn plugjail serve");
    drop(w);
    (child, r)
}

/// The body of [`raw_serve_with`]'s `pre_exec` hook: `src` becomes descriptor 3.
fn status_fd_at_3(src: RawFd) -> std::io::Result<()> {
    // SAFETY: no memory passed. `src` is open here (the child's table is a copy of the
    // parent's, which holds `w` until spawn returns); whatever this child had at 3 is
    // replaced, and it execs next.
    if unsafe { libc::dup2(src, 3) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The next frame that is not a LOG.
fn next_frame(r: &mut impl Read) -> Option<(u16, Vec<u8>)> {
    loop {
        let f = read_frame(r)?;
        if f.0 != 5 {
            return Some(f);
        }
    }
}

fn read_frame(r: &mut impl Read) -> Option<(u16, Vec<u8>)> {
    let mut h = [0u8; 16];
    r.read_exact(&mut h).ok()?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
    let kind = u16::from_le_bytes([h[4], h[5]]);
    let mut p = vec![0; len];
    r.read_exact(&mut p).ok()?;
    Some((kind, p))
}

fn call_frame(id: u64, method: &str, input: &[u8]) -> Vec<u8> {
    let mut payload = vec![u8::try_from(method.len()).expect("a method name of at most 255 bytes")];
    payload.extend_from_slice(method.as_bytes());
    payload.extend_from_slice(input);
    let mut f = u32::try_from(payload.len()).unwrap().to_le_bytes().to_vec();
    f.extend_from_slice(&2u16.to_le_bytes());
    f.extend_from_slice(&0u16.to_le_bytes());
    f.extend_from_slice(&id.to_le_bytes());
    f.extend_from_slice(&payload);
    f
}

fn status_verdict(r: OwnedFd) -> serde_json::Value {
    let mut text = String::new();
    let _ = std::fs::File::from(r).read_to_string(&mut text);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("status fd: {e}: {text:?}"))
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

#[test]
fn call_and_serve_refuse_a_report_they_cannot_write_before_the_jail_is_built() {
    let so = plugin("hello");
    let dir = TempDir::new("report", 0o755);
    let missing = dir.join("missing/verdict.json");
    let said = "could not set up the jail (step report, ENOENT): --report";
    for mode in jail_modes() {
        let out = mode
            .command(plugjail())
            .arg("call")
            .arg("--profile")
            .arg(default_profile())
            .arg("--plugin")
            .arg(&so)
            .args(["--method", "greet", "--report"])
            .arg(&missing)
            .stdin(Stdio::null())
            .output()
            .expect("run plugjail call");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(125), "[{}] {err}", mode.name());
        assert!(out.stdout.is_empty(), "[{}] the call ran", mode.name());
        assert!(err.contains(said), "[{}] {err}", mode.name());

        let report: Vec<OsString> = vec!["--report".into(), missing.clone().into()];
        let (mut child, status) = raw_serve_with(mode, &default_profile(), &so, &report);
        let mut out = child.stdout.take().expect("stdout");
        let mut frames = Vec::new();
        let _ = out.read_to_end(&mut frames);
        let exit = child.wait().expect("wait serve");
        let v = status_verdict(status);
        assert_eq!(exit.code(), Some(125), "[{}] {v:#}", mode.name());
        assert!(
            frames.is_empty(),
            "[{}] the plugin was started",
            mode.name()
        );
        assert_eq!(v["outcome"], "setup_failed", "{v:#}");
        assert_eq!(v["step"], "report", "{v:#}");
        assert_eq!(v["errno"]["name"], "ENOENT", "{v:#}");
        assert!(v.get("enforced").is_none(), "a jail was built: {v:#}");
    }
}

/// A plugin that cannot start through its own fault is `plugin_failed` (exit status 10),
/// never `setup_failed` (125, which CI systems retry as infrastructure): through
/// `plugjail call` and the `Session` (both read the stub's ERROR frame and add its words
/// as `plugin_failure.message`), and through `plugjail serve` alone (the stage from the
/// stub's exit code).
#[test]
fn a_plugin_that_cannot_start_is_its_own_failure_not_the_jails() {
    // (plugin, stage, stage from the exit code alone, init()'s status, the stub's words)
    let cases = [
        (
            "missing_symbol",
            "load",
            "load",
            None,
            "undefined symbol: plugjail_test_symbol_nobody_defines",
        ),
        (
            "no_entry",
            "entry",
            "load",
            None,
            "does not export plugjail_plugin_v1",
        ),
        ("init_fails", "init", "init", Some(3i64), "returned 3"),
    ];
    for mode in jail_modes() {
        for (name, stage, exit_stage, status, says) in cases {
            let so = plugin(name);
            let what = format!("[{}] {name}", mode.name());

            let c = call(mode, &default_profile(), &so, "run", None);
            assert_eq!(c.code, Some(10), "{what}: {}", c.describe());
            assert_eq!(c.outcome(), "plugin_failed", "{}", c.describe());
            let failure = &c.report["plugin_failure"];
            assert_eq!(failure["stage"], stage, "{}", c.describe());
            assert_eq!(failure["status"].as_i64(), status, "{}", c.describe());
            let words = failure["message"].as_str().unwrap_or_default();
            assert!(words.contains(says), "{what}: {}", c.describe());
            assert!(c.stdout.is_empty(), "{}", c.describe());
            // The summary line is plugjail's own words; the stub's stay in the JSON.
            let line = c
                .stderr
                .lines()
                .find(|l| l.starts_with(&format!("plugjail: plugin failed to start ({stage})")))
                .unwrap_or_else(|| panic!("{what}: no summary line: {}", c.describe()));
            assert!(!line.contains(words), "{what}: {line}");
            assert!(
                !line.contains("plugjail_test_symbol_nobody_defines"),
                "{what}: {line}"
            );
            if let Some(n) = status {
                assert!(line.contains(&format!("init() returned {n}")), "{line}");
            }

            let (mut child, status_r) = raw_serve(mode, &default_profile(), &so);
            let mut out = child.stdout.take().expect("stdout");
            let (kind, payload) = next_frame(&mut out).expect("a startup ERROR");
            assert_eq!(kind, 4, "{what}: the first frame is ERROR");
            assert!(String::from_utf8_lossy(&payload).contains(says), "{what}");
            let mut rest = Vec::new();
            let _ = out.read_to_end(&mut rest);
            drop(child.stdin.take());
            let exit = child.wait().expect("wait serve");
            let v = status_verdict(status_r);
            assert_eq!(exit.code(), Some(10), "{what}: {v:#}");
            assert_eq!(v["outcome"], "plugin_failed", "{what}: {v:#}");
            assert_eq!(v["exit_status"], 10, "{v:#}");
            assert_eq!(v["plugin_failure"]["stage"], exit_stage, "{what}: {v:#}");
            // plugjail serve does not read the channel: the words are the host's to read.
            assert!(v["plugin_failure"].get("message").is_none(), "{v:#}");

            let mut s = spawn(&session_opts(mode, &default_profile(), &so));
            match s.hello() {
                Err(CallError::Startup {
                    status: got,
                    message,
                    ..
                }) => {
                    assert_eq!(i64::from(got), status.unwrap_or(0), "{what}");
                    assert!(message.contains(says), "{what}: {message}");
                }
                other => panic!("{what}: hello: {other:?}"),
            }
            let v = s.close();
            expect(&v, "plugin_failed", &what);
            assert_eq!(v.json["plugin_failure"]["stage"], stage, "{:#}", v.json);
            let words = v.json["plugin_failure"]["message"].as_str().unwrap_or("");
            assert!(words.contains(says), "{what}: {:#}", v.json);
        }
    }
}
