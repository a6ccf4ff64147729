//! The C client, include/plugjail/host.h, and the C example built on it
//! (examples/host/host.c): the programs in tests/c_client/ are compiled with
//! `cc -std=c11 -Wall -Wextra -Wpedantic -Werror` (some also as C++17) and run against the
//! real plugjail and stub, root and rootless (uid 65534 via setpriv), with the test
//! plugins of tests/plugins. Each program checks what it can see itself and exits 0 when
//! every check passed; this file checks the rest (what reached stdout, timing from
//! outside, the escaping against `plugjail::text`).
//!
//! The programs find plugjail through `PLUGJAIL` (set here), except where a case is about
//! finding it. Everything built goes under cargo's test scratch directory.

mod common;

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{
    Mode, TempDir, chmod, default_profile, extend_profile, jail_modes, manifest_dir, plugin,
    plugin_with, plugjail, target_tmp, unique,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lang {
    C,
    Cxx,
}

/// Compiles `source` (relative to the crate root) into a program uid 65534 can run, once
/// per content of the source, the headers and the flags. Warnings are errors.
fn build(name: &str, lang: Lang, source: &str, extra: &[&str]) -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let root = manifest_dir();
    let (compiler, std): (&str, &[&str]) = match lang {
        Lang::C => ("cc", &["-std=c11"]),
        Lang::Cxx => ("c++", &["-std=c++17", "-x", "c++"]),
    };
    let mut flags: Vec<String> = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-O1", "-g"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    flags.extend(extra.iter().map(|s| s.to_string()));
    let mut key = format!("{compiler} {std:?} {flags:?}");
    for f in [
        source,
        "include/plugjail/host.h",
        "include/plugjail.h",
        "tests/c_client/check.h",
    ] {
        let text = std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("read {f}: {e}"));
        key.push_str(&String::from_utf8_lossy(&text));
    }
    let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let dir = target_tmp().join("plugjail-c-client");
    std::fs::create_dir_all(&dir).expect("mkdir build dir");
    chmod(&dir, 0o755);
    let out = dir.join(format!("{name}-{hash:016x}"));
    if out.exists() {
        return out;
    }
    let tmp = dir.join(unique(&format!(".{name}")));
    let result = Command::new(compiler)
        .args(std)
        .args(&flags)
        .arg("-I")
        .arg(root.join("include"))
        .arg("-o")
        .arg(&tmp)
        .arg(root.join(source))
        .arg("-pthread")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        result.status.success(),
        "{compiler} {std:?} {flags:?} {source}: {}\n{}",
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    chmod(&tmp, 0o755);
    std::fs::rename(&tmp, &out).expect("rename program");
    out
}

/// `-fsanitize=address,undefined` when this compiler has it (and its programs run here).
fn sanitizers() -> &'static [&'static str] {
    static FLAGS: OnceLock<Vec<&'static str>> = OnceLock::new();
    FLAGS.get_or_init(|| {
        let flags = vec!["-fsanitize=address,undefined", "-fno-omit-frame-pointer"];
        let dir = TempDir::new("sanitize-probe", 0o755);
        let src = dir.write("probe.c", "int main(void) { return 0; }\n", 0o644);
        let exe = dir.join("probe");
        let ok = Command::new("cc")
            .args(&flags)
            .arg("-o")
            .arg(&exe)
            .arg(&src)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(&exe).status().is_ok_and(|s| s.success());
        if ok {
            flags
        } else {
            eprintln!("note: no AddressSanitizer here; the parser tests run without it");
            vec![]
        }
    })
}

/// What a test program did.
struct Ran {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
    elapsed: Duration,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "status {:?} after {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code,
            self.elapsed,
            String::from_utf8_lossy(&self.stdout),
            self.stderr
        )
    }

    fn assert_ok(&self, what: &str) {
        assert_eq!(self.code, Some(0), "{what}: {}", self.describe());
    }
}

/// Runs `prog` with `args` (as `mode`'s user when given, else as we are), killing it after
/// 120 s. `env` entries with `None` are removed.
fn run(
    mode: Option<Mode>,
    prog: &Path,
    args: &[OsString],
    env: &[(&str, Option<OsString>)],
) -> Ran {
    let mut cmd = match mode {
        Some(m) => m.command(prog),
        None => Command::new(prog),
    };
    cmd.args(args)
        .env("PLUGJAIL", plugjail())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("run {}: {e}", prog.display()));
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
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break child.wait().expect("wait killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Ran {
        code: status.code(),
        stdout: reader.join().unwrap_or_default(),
        stderr: String::from_utf8_lossy(&err_reader.join().unwrap_or_default()).into_owned(),
        elapsed,
    }
}

fn os(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    args.iter().map(|a| a.as_ref().to_os_string()).collect()
}

fn calls() -> PathBuf {
    build("calls", Lang::C, "tests/c_client/calls.c", &[])
}

/// `calls CASE PROFILE PLUGIN` in every jail mode.
fn calls_case(case: &str, so: &Path) {
    let prog = calls();
    for mode in jail_modes() {
        let r = run(
            Some(mode),
            &prog,
            &os(&[&case, &default_profile(), &so]),
            &[],
        );
        r.assert_ok(&format!("[{}] calls {case}", mode.name()));
    }
}

#[test]
fn both_headers_compile_together_as_c11_and_as_cxx() {
    for (lang, name) in [(Lang::C, "headers"), (Lang::Cxx, "headers-cxx")] {
        let prog = build(name, lang, "tests/c_client/headers.c", &[]);
        run(None, &prog, &[], &[]).assert_ok(name);
    }
}

#[test]
fn a_call_returns_its_result_and_the_session_its_verdict() {
    calls_case("result", &plugin("hello"));
}

#[test]
fn the_client_built_as_cxx_runs_the_same_calls() {
    let prog = build("calls-cxx", Lang::Cxx, "tests/c_client/calls.c", &[]);
    for mode in jail_modes() {
        for (case, so) in [("result", plugin("hello")), ("crash", plugin("crash"))] {
            let r = run(
                Some(mode),
                &prog,
                &os(&[&case, &default_profile(), &so]),
                &[],
            );
            r.assert_ok(&format!("[{}] calls (C++) {case}", mode.name()));
        }
    }
}

#[test]
fn plugjail_is_found_at_an_explicit_path_before_the_environment() {
    let prog = calls();
    let so = plugin("hello");
    for mode in jail_modes() {
        let r = run(
            Some(mode),
            &prog,
            &os(&[&"explicit", &default_profile(), &so, &plugjail()]),
            &[("PLUGJAIL", Some("/nonexistent/plugjail".into()))],
        );
        r.assert_ok(&format!("[{}] explicit path", mode.name()));
    }
}

#[test]
fn a_plugin_error_is_an_answer_and_the_session_goes_on() {
    calls_case("error", &plugin("hello"));
}

#[test]
fn an_input_above_the_frame_cap_is_refused_unsent() {
    calls_case("large", &plugin("hello"));
}

#[test]
fn a_crash_ends_the_session_with_a_signaled_verdict() {
    calls_case("crash", &plugin("crash"));
}

#[test]
fn a_missed_deadline_is_a_host_timeout_with_its_limit() {
    calls_case("deadline", &plugin("crash"));
}

#[test]
fn a_plugin_that_does_not_start_says_why() {
    calls_case("startup", &plugin("init_fails"));
}

#[test]
fn a_stuck_start_and_a_stuck_shutdown_are_bounded() {
    calls_case("stuck_start", &plugin_with("stuck", &["-DSTUCK_INIT"]));
    calls_case("stuck_close", &plugin_with("stuck", &["-DSTUCK_SHUTDOWN"]));
}

#[test]
fn cancel_from_another_thread_ends_a_hung_call_at_once() {
    let prog = build("cancel", Lang::C, "tests/c_client/cancel.c", &[]);
    let crash = plugin("crash");
    let stuck = plugin_with("stuck", &["-DSTUCK_SHUTDOWN"]);
    for mode in jail_modes() {
        for (case, so) in [("call", &crash), ("signal", &crash), ("close", &stuck)] {
            let r = run(
                Some(mode),
                &prog,
                &os(&[&case, &default_profile(), so]),
                &[],
            );
            r.assert_ok(&format!("[{}] cancel {case}", mode.name()));
        }
    }
}

#[test]
fn sixteen_mib_through_a_log_flood_without_deadlock() {
    let prog = build("big", Lang::C, "tests/c_client/big.c", &[]);
    let so = plugin("c_echo_flood");
    // 16 MiB of input plus the method name: a cap above the default profile's 16M.
    let dir = TempDir::new("c-client-big", 0o755);
    let profile = extend_profile(&dir, "big", "default", "limits:\n  max_message: 17M\n");
    for mode in jail_modes() {
        let r = run(Some(mode), &prog, &os(&[&profile, &so]), &[]);
        r.assert_ok(&format!("[{}] big", mode.name()));
        assert!(
            r.elapsed < Duration::from_secs(30),
            "[{}] {}",
            mode.name(),
            r.describe()
        );
    }
}

#[test]
fn hostile_text_reaches_stdout_escaped() {
    let prog = build("hostile", Lang::C, "tests/c_client/hostile.c", &[]);
    let so = plugin("terminal");
    for mode in jail_modes() {
        let r = run(Some(mode), &prog, &os(&[&default_profile(), &so]), &[]);
        let what = format!("[{}] hostile", mode.name());
        r.assert_ok(&what);
        for (byte, name) in [(0x1b, "ESC"), (0x07, "BEL"), (b'\r', "CR"), (0, "NUL")] {
            assert!(
                !r.stdout.contains(&byte),
                "{what}: raw {name}: {}",
                r.describe()
            );
        }
        let text = std::str::from_utf8(&r.stdout)
            .unwrap_or_else(|e| panic!("{what}: stdout is not UTF-8 ({e}): {}", r.describe()));
        let raw = text.chars().find(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        });
        assert_eq!(raw, None, "{what}: {}", r.describe());
        for shown in [
            r"plugin[info]: title\x1b]0;pwned by plugin\x07 clipboard\x1b]52;",
            r"plugin[warn]: ",
            r"plugin[error]: first line\nplugjail: session ended cleanly",
            r"plugin[output]: ",
            r"plugin[fail]: title\x1b]0;pwned by plugin\x07",
            r"c1csi\u{9b}2J bidi[\u{202e}exe.txt\u{202c}] nul[\x00]",
            r"bad-utf8[\xff\xfe\xc3]\rplugjail: ",
            "host: verdict ok",
        ] {
            assert!(
                text.contains(shown),
                "{what}: no {shown:?}: {}",
                r.describe()
            );
        }
        // Every line is the plugin's (marked) or the host's own: none can pass for
        // plugjail's summary.
        for line in text.lines() {
            assert!(
                line.starts_with("plugin[") || line.starts_with("host: ") || line == "hostile: ok",
                "{what}: unmarked line {line:?}"
            );
        }
    }
}

#[test]
fn plugjail_not_found_says_where_it_looked() {
    let prog = build("not_found", Lang::C, "tests/c_client/not_found.c", &[]);
    let empty = TempDir::new("c-client-nopath", 0o755);
    let path: OsString = format!("{}:/nonexistent/bin", empty.path().display()).into();
    let r = run(
        None,
        &prog,
        &os(&[&"path"]),
        &[("PLUGJAIL", None), ("PATH", Some(path))],
    );
    r.assert_ok("not found on PATH");
    let text = String::from_utf8_lossy(&r.stdout);
    assert!(
        text.contains(&format!("{}/plugjail", empty.path().display()))
            && text.contains("/nonexistent/bin/plugjail"),
        "{}",
        r.describe()
    );
    run(
        None,
        &prog,
        &os(&[&"env"]),
        &[("PLUGJAIL", Some("/nonexistent/by-env/plugjail".into()))],
    )
    .assert_ok("$PLUGJAIL pointing nowhere");
    run(None, &prog, &os(&[&"explicit"]), &[]).assert_ok("an explicit path pointing nowhere");
}

#[test]
fn the_client_refuses_protocol_violations_and_survives_sigpipe() {
    let fake = build("fake_serve", Lang::C, "tests/c_client/fake_serve.c", &[]);
    let prog = build(
        "protocol",
        Lang::C,
        "tests/c_client/protocol.c",
        sanitizers(),
    );
    run(None, &prog, &os(&[&fake]), &[]).assert_ok("protocol");
}

#[test]
fn the_verdict_parser_and_the_escaping_hold_up() {
    let prog = build("units", Lang::C, "tests/c_client/units.c", sanitizers());
    run(None, &prog, &[], &[]).assert_ok("units");
    let cxx = build("units-cxx", Lang::Cxx, "tests/c_client/units.c", &[]);
    run(None, &cxx, &[], &[]).assert_ok("units (C++)");
}

/// plugjail_sanitize is `plugjail::text`'s escaping (crates/protocol/src/text.rs), byte
/// for byte: the C program escapes random texts, and Rust must say the same.
#[test]
fn the_c_escaping_matches_plugjails_own() {
    let prog = build("units", Lang::C, "tests/c_client/units.c", sanitizers());
    let r = run(None, &prog, &os(&[&"corpus", &"5000"]), &[]);
    r.assert_ok("corpus");
    let text = String::from_utf8(r.stdout.clone()).expect("escaped text is UTF-8");
    common::assert_escapes_like_plugjail(&text, 5000);
}

#[test]
fn the_c_example_builds_as_c_and_cxx_and_runs_in_both_forms() {
    let so = plugin("hello");
    let dir = TempDir::new("c-client-example", 0o755);
    let input = dir.write("in.txt", "from C", 0o644);
    for (lang, name) in [(Lang::C, "host"), (Lang::Cxx, "host-cxx")] {
        let host = build(name, lang, "examples/host/host.c", &[]);
        for mode in jail_modes() {
            let what = format!("[{}] {name}", mode.name());
            // PROFILE PLUGIN METHOD INPUT, plugjail from $PLUGJAIL
            let r = run(
                Some(mode),
                &host,
                &os(&[&default_profile(), &so, &"greet", &input]),
                &[],
            );
            r.assert_ok(&what);
            assert_eq!(r.stdout, b"hello, from C", "{what}: {}", r.describe());
            for line in [
                "plugin[info]: hello plugin ready",
                "host: plugin hello 1.0.0, 3 methods",
                "host: verdict ok (plugjail exit status 0, 1 call)",
            ] {
                assert!(
                    r.stderr.contains(line),
                    "{what}: no {line:?}: {}",
                    r.describe()
                );
            }
            // The earlier command line: METHOD INPUT -- PLUGJAIL serve OPTIONS
            let r = run(
                Some(mode),
                &host,
                &os(&[
                    &"greet",
                    &input,
                    &"--",
                    &plugjail(),
                    &"serve",
                    &"--profile",
                    &default_profile(),
                    &"--plugin",
                    &so,
                ]),
                &[("PLUGJAIL", None)],
            );
            r.assert_ok(&format!("{what} (the earlier form)"));
            assert_eq!(r.stdout, b"hello, from C", "{what}: {}", r.describe());
            assert!(r.stderr.contains("session ended cleanly after 1 call"));
            // The plugin's ERROR: exit status 1, its message escaped.
            let r = run(
                Some(mode),
                &host,
                &os(&[&"-q", &default_profile(), &so, &"fail", &input]),
                &[],
            );
            assert_eq!(r.code, Some(1), "{what}: {}", r.describe());
            assert!(
                r.stderr.contains("plugin[fail]: asked to fail")
                    && !r.stderr.contains("plugjail: session"),
                "{what}: {}",
                r.describe()
            );
        }
        // No plugjail anywhere: a clear error, exit status 2.
        let empty = TempDir::new("c-client-example-nopath", 0o755);
        let r = run(
            None,
            &host,
            &os(&[&default_profile(), &so, &"greet", &input]),
            &[
                ("PLUGJAIL", None),
                ("PATH", Some(empty.path().as_os_str().to_owned())),
            ],
        );
        assert_eq!(r.code, Some(2), "{name}: {}", r.describe());
        assert!(
            r.stderr.contains("cannot find the plugjail executable")
                && r.stderr
                    .contains(&format!("looked at {}/plugjail", empty.path().display()))
                && r.stderr.contains("-j PLUGJAIL"),
            "{name}: {}",
            r.describe()
        );
    }
}

/// Shared-memory calls through the C client, as C and as C++, against the hostile
/// shm_attack plugin; and the header without _GNU_SOURCE, which falls back to the pipe.
#[test]
fn shared_memory_calls_hold_against_a_hostile_plugin() {
    let dir = TempDir::new("c-client-shm", 0o755);
    // The test plugin finds the region through /proc/self/maps.
    let profile = extend_profile(&dir, "shm", "default", "landlock:\n  read: [/proc]\n");
    let so = plugin("shm_attack");
    let progs = [
        ("C", build("shm", Lang::C, "tests/c_client/shm.c", &[])),
        ("C++", build("shm", Lang::Cxx, "tests/c_client/shm.c", &[])),
        (
            "pipe-only",
            build("shm", Lang::C, "tests/c_client/shm.c", &["-DPIPE_ONLY"]),
        ),
    ];
    for mode in jail_modes() {
        for (what, prog) in &progs {
            let r = run(Some(mode), prog, &os(&[&profile, &so]), &[]);
            r.assert_ok(&format!("[{}] shm {what}", mode.name()));
        }
    }
}
