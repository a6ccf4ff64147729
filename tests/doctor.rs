//! `plugjail doctor`, run as a user would run it: as root, and as uid 65534 via setpriv.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

const NOBODY: &str = "65534";

fn plugjail() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_plugjail"))
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("profiles")
        .join(name)
}

/// Skips with a printed reason; under `PLUGJAIL_TEST_STRICT=1` (CI) a skip is a failure.
fn skip(reason: &str) {
    assert!(
        std::env::var_os("PLUGJAIL_TEST_STRICT").is_none_or(|v| v != "1"),
        "PLUGJAIL_TEST_STRICT=1 but a test would skip: {reason}"
    );
    eprintln!("skipped: {reason}");
}

/// A world-readable temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("plugjail-doctor-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn doctor(args: &[&str]) -> Output {
    Command::new(plugjail())
        .arg("doctor")
        .args(args)
        .output()
        .expect("plugjail runs")
}

/// Runs doctor as uid/gid 65534, from `dir` (which must be world-readable). `None` (after
/// a skip) when this test process cannot switch users.
fn doctor_as_nobody(dir: &TempDir, args: &[&str]) -> Option<Output> {
    if !nix_is_root() {
        skip("running doctor as uid 65534 needs root");
        return None;
    }
    let as_nobody = |bin: &Path| {
        let mut cmd = Command::new("setpriv");
        cmd.args(["--reuid", NOBODY, "--regid", NOBODY, "--clear-groups"])
            .arg(bin)
            .current_dir(&dir.0);
        cmd
    };
    let mut bin = plugjail().to_path_buf();
    // The target directory may not be reachable by uid 65534; run a copy then.
    match as_nobody(&bin).arg("--version").output() {
        Ok(o) if o.status.success() => {}
        Ok(_) => {
            let copy = dir.0.join("plugjail");
            std::fs::copy(&bin, &copy).unwrap();
            bin = copy;
        }
        Err(e) => {
            skip(&format!("setpriv cannot be run: {e}"));
            return None;
        }
    }
    Some(
        as_nobody(&bin)
            .arg("doctor")
            .args(args)
            .output()
            .expect("setpriv runs"),
    )
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
    })
}

fn json(out: &Output) -> Value {
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("doctor --json prints one JSON object")
}

fn text(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[test]
fn json_has_every_fact_with_plausible_values() {
    let out = doctor(&["--json"]);
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    for key in [
        "version",
        "arch",
        "privileges",
        "user_namespaces",
        "landlock",
        "seccomp",
        "no_new_privs",
        "cgroups",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v:#}");
    }
    assert!(v.get("profile").is_none());
    assert!(v["user_namespaces"]["works"].is_boolean());
    assert!(v["user_namespaces"]["mount"]["ok"].is_boolean());
    assert!(v["no_new_privs"]["supported"].is_boolean());

    let abi = v["landlock"]["abi"].as_u64().unwrap();
    if abi == 0 {
        skip(&format!(
            "Landlock is not available: {}",
            v["landlock"]["error"]
        ));
    } else {
        let features = v["landlock"]["features"].as_array().unwrap();
        assert_eq!(features[0], "fs");
        assert!(features.len() as u64 <= abi);
    }

    let actions = v["seccomp"]["actions"].as_array().unwrap();
    assert!(actions.iter().any(|a| a == "kill_process"), "{actions:?}");
    assert_eq!(v["seccomp"]["available"], true);

    let mode = v["cgroups"]["mode"].as_str().unwrap();
    assert!(["v2", "v1_hybrid", "none"].contains(&mode), "{mode}");
    if mode == "v1_hybrid" {
        let v1 = v["cgroups"]["v1"].as_array().unwrap();
        let names: Vec<&str> = v1
            .iter()
            .map(|h| h["controller"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["memory", "cpu", "pids", "blkio"]);
    }
    let own = v["cgroups"]["own"].as_array().unwrap();
    assert!(!own.is_empty() || mode == "none");
}

#[test]
fn text_is_one_aligned_fact_per_line_without_colour_when_piped() {
    let out = doctor(&[]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out);
    assert!(!t.contains('\x1b'), "colour codes in piped output:\n{t}");
    for section in [
        "privileges",
        "user namespaces",
        "landlock",
        "seccomp",
        "cgroups",
    ] {
        assert!(
            t.lines().any(|l| l == section),
            "no {section} section:\n{t}"
        );
    }
    let mode = t
        .lines()
        .find(|l| l.trim_start().starts_with("mode "))
        .unwrap();
    assert!(mode.ends_with("v2") || mode.ends_with("v1_hybrid") || mode.ends_with("none"));
    assert_aligned(&t);
}

/// Fact lines put their mark in one column.
fn assert_aligned(t: &str) {
    for line in t.lines().filter(|l| l.starts_with("  ")) {
        let mark = line.chars().nth(31).unwrap();
        assert!(" ✓✗~".contains(mark), "misaligned: {line:?}");
    }
}

#[test]
fn the_default_profile_is_assessed() {
    let path = shipped("default.yaml");
    let out = doctor(&["--profile", path.to_str().unwrap()]);
    let t = text(&out);
    let last = t.lines().last().unwrap();
    assert!(
        last.starts_with("would run") || last.starts_with("would be refused: "),
        "{t}"
    );
    assert_aligned(&t);
    let code = if last.starts_with("would run") { 0 } else { 1 };
    assert_eq!(out.status.code(), Some(code), "{t}");
    for section in [
        "namespaces (required)",
        "landlock (required)",
        "limits (best_effort)",
    ] {
        assert!(t.lines().any(|l| l == section), "no {section}:\n{t}");
    }

    let v = json(&doctor(&["--profile", path.to_str().unwrap(), "--json"]));
    let p = &v["profile"];
    assert_eq!(p["path"], path.to_str().unwrap());
    assert!(["run", "run_losing", "refused"].contains(&p["outcome"].as_str().unwrap()));
    assert_eq!(p["summary"], last);
    let names: Vec<&str> = p["mechanisms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["namespaces", "landlock", "seccomp", "limits"]);
}

#[test]
fn as_root_on_v1_hybrid_the_own_cgroups_are_writable() {
    if !nix_is_root() {
        skip("needs root");
        return;
    }
    let v = json(&doctor(&["--json"]));
    if v["cgroups"]["mode"] != "v1_hybrid" {
        skip("this host is not cgroup v1 hybrid");
        return;
    }
    for h in v["cgroups"]["v1"].as_array().unwrap() {
        assert_eq!(h["writable"], true, "{h:#}");
    }
    assert_eq!(
        v["cgroups"]["writable"],
        serde_json::json!(["memory", "cpu", "io", "pids"])
    );
    let t = text(&doctor(&[]));
    // A plugin host pauses through the freezer hierarchy it can write here.
    let pause = t
        .lines()
        .find(|l| l.contains("pause (plugin host)"))
        .unwrap();
    assert!(pause.contains("cgroup v1 freezer"), "{pause}");
}

#[test]
fn as_nobody_cgroups_are_not_writable_and_doctor_still_succeeds() {
    let dir = TempDir::new();
    let Some(out) = doctor_as_nobody(&dir, &["--json"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0));
    let v = json(&out);
    assert_eq!(v["privileges"]["uid"], 65534);
    assert_eq!(v["privileges"]["root"], false);
    assert_eq!(v["cgroups"]["writable"], serde_json::json!([]), "{v:#}");
    for h in v["cgroups"]["v1"].as_array().unwrap() {
        assert_eq!(h["writable"], false, "{h:#}");
        assert_eq!(h["error"]["errno"], "EACCES", "{h:#}");
    }

    let out = doctor_as_nobody(&dir, &[]).unwrap();
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out);
    let usable = t
        .lines()
        .find(|l| l.contains("usable for jail limits"))
        .unwrap();
    assert!(usable.contains("✗ none"), "{usable}");
    let pause = t
        .lines()
        .find(|l| l.contains("pause (plugin host)"))
        .unwrap();
    assert!(pause.contains("SIGSTOP"), "{pause}");
}

#[test]
fn required_limits_without_cgroup_access_are_refused_as_nobody() {
    let dir = TempDir::new();
    let profile = dir.0.join("needs-limits.yaml");
    let strict = shipped("strict.yaml");
    std::fs::write(
        &profile,
        format!(
            "version: 1\nextends: {}\nenforcement:\n  limits: required\n",
            strict.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&profile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let arg = profile.to_str().unwrap();

    let Some(out) = doctor_as_nobody(&dir, &["--profile", arg]) else {
        return;
    };
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let last = t.lines().last().unwrap();
    assert!(last.starts_with("would be refused: limits: "), "{t}");
    assert!(last.contains("pids 4"), "{last}");

    let out = doctor_as_nobody(&dir, &["--profile", arg, "--json"]).unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json(&out);
    assert_eq!(v["profile"]["outcome"], "refused");
    let limits = &v["profile"]["mechanisms"][3];
    assert_eq!(limits["level"], "required");
    let memory = &limits["items"][0];
    assert_eq!(memory["enforce"], "degraded", "{memory:#}");
}

#[test]
fn an_invalid_profile_exits_2_with_located_errors() {
    let dir = TempDir::new();
    let profile = dir.0.join("bad.yaml");
    std::fs::write(&profile, "version: 1\nlimits:\n  memroy: 1G\n").unwrap();
    let out = doctor(&["--profile", profile.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}:3:3: error:", profile.display())),
        "{err}"
    );

    let out = doctor(&["--profile", "/nonexistent/plugjail.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}
