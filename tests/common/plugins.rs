//! Plugin mode from the host's side, shared by the `tests/plugin_*.rs` files: building the
//! test plugins by name ([`plugin`]), one `plugjail call` ([`call`], [`Called`]), and Rust
//! `Session`s as root or rootless ([`session_opts`], [`spawn`], [`expect`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use plugjail::{Session, SessionOptions, SessionVerdict};

use super::{
    Mode, NOBODY, TempDir, chmod, manifest_dir, plugjail, probe, shipped_profile, target_tmp,
    unique,
};

/// Builds a plugin from tests/plugins or examples/plugins once per test process, into a
/// directory uid 65534 can read.
pub fn plugin(name: &str) -> PathBuf {
    plugin_with(name, &[])
}

/// [`plugin`] built with extra compiler arguments (`-DNAME`), cached per name and flags.
pub fn plugin_with(name: &str, flags: &[&str]) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let key = std::iter::once(name)
        .chain(flags.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(&key) {
        return p.clone();
    }
    let src = ["tests/plugins", "examples/plugins"]
        .iter()
        .map(|d| manifest_dir().join(d).join(format!("{name}.cpp")))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("no source for plugin {name}"));
    let dir = target_tmp().join("plugjail-test-plugins");
    std::fs::create_dir_all(&dir).expect("mkdir plugin dir");
    chmod(&dir, 0o755);
    // Named after the source's contents and the flags: rebuilt only when they change,
    // never piling up.
    let mut text = std::fs::read(&src).expect("read plugin source");
    text.extend_from_slice(key.as_bytes());
    let hash = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let out = dir.join(format!("{name}-{hash:016x}.so"));
    if !out.exists() {
        // Built under a private name, then renamed: other test binaries may build it too.
        let tmp = dir.join(unique(&format!(".{name}")));
        let status = Command::new("c++")
            .args(["-std=c++17", "-O1", "-shared", "-fPIC", "-I"])
            .arg(manifest_dir().join("include"))
            .args(flags)
            .arg("-o")
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("run c++");
        assert!(status.success(), "building {name} {flags:?}: {status}");
        chmod(&tmp, 0o644);
        std::fs::rename(&tmp, &out).expect("rename plugin");
    }
    built.insert(key, out.clone());
    out
}

/// profiles/default.yaml, the profile most plugin tests run under.
pub fn default_profile() -> PathBuf {
    shipped_profile("default")
}

/// What one `plugjail call` did.
pub struct Called {
    pub mode: Mode,
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    /// stderr, lossy UTF-8 (for searching and messages).
    pub stderr: String,
    /// stderr as the bytes plugjail wrote (for checks that no raw byte got through).
    pub stderr_bytes: Vec<u8>,
    pub report: serde_json::Value,
    pub elapsed: Duration,
    pub timed_out: bool,
}

impl Called {
    pub fn outcome(&self) -> &str {
        self.report["outcome"].as_str().unwrap_or("<none>")
    }

    pub fn describe(&self) -> String {
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
pub fn call(mode: Mode, profile: &Path, so: &Path, method: &str, input: Option<&[u8]>) -> Called {
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
pub fn call_within(
    mode: Mode,
    profile: &Path,
    so: &Path,
    method: &str,
    input: Option<&[u8]>,
    timeout: Duration,
) -> Called {
    call_with(mode, profile, so, method, input, timeout, |_| {})
}

/// [`call_within`] with a change to the command (e.g. [`deny_ptrace`](super::deny_ptrace)).
pub fn call_with(
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
    let stderr_bytes = err_reader.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&stderr_bytes).into_owned();
    let report = std::fs::read_to_string(&report)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    Called {
        mode,
        code: status.code(),
        stdout,
        stderr,
        stderr_bytes,
        report,
        elapsed,
        timed_out,
    }
}

/// Session options for `mode`: rootless sessions run `plugjail serve` through a small
/// wrapper script that drops to uid 65534 (setpriv keeps the inherited descriptors).
pub fn session_opts(mode: Mode, profile: &Path, so: &Path) -> SessionOptions {
    SessionOptions {
        profile: profile.to_path_buf(),
        plugin: so.to_path_buf(),
        plugjail: Some(plugjail_for(mode)),
        ..SessionOptions::default()
    }
}

pub fn plugjail_for(mode: Mode) -> PathBuf {
    if mode == Mode::Root || !probe::is_root() {
        return plugjail().to_path_buf();
    }
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    WRAPPER
        .get_or_init(|| {
            let dir = target_tmp().join("plugjail-test-wrappers");
            let _ = std::fs::create_dir_all(&dir);
            let path = dir.join("plugjail-as-nobody");
            let tmp = dir.join(unique(".wrapper"));
            // Single-quoted: the checkout's path may hold spaces or other shell syntax.
            let quoted = plugjail().display().to_string().replace('\'', r"'\''");
            let script = format!(
                "#!/bin/sh\nexec setpriv --reuid={n} --regid={n} --clear-groups -- '{quoted}' \"$@\"\n",
                n = NOBODY
            );
            std::fs::write(&tmp, script).expect("write wrapper");
            chmod(&tmp, 0o755);
            std::fs::rename(&tmp, &path).expect("rename wrapper");
            path
        })
        .clone()
}

pub fn spawn(opts: &SessionOptions) -> Session {
    Session::spawn(opts).unwrap_or_else(|e| panic!("spawn session: {e}"))
}

pub fn expect(v: &SessionVerdict, outcome: &str, what: &str) {
    assert_eq!(v.outcome, outcome, "{what}: {:#}", v.json);
}
