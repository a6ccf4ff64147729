//! Host configurations as a user meets them: `plugjail check` tells them apart from
//! profiles and reports their errors (and those of the profiles they name) as
//! FILE:LINE:COL with the line and a caret; `plugjail schema --host`; the shipped example.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{cli, manifest_dir, shipped_profile, text, write_file};

/// A directory with a stand-in plugin file (check only needs it to exist) and a host
/// configuration naming it and the shipped default profile, plus `extra` lines.
fn host_dir(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "plugin.so", "");
    let profile = shipped_profile("default");
    let body = format!(
        "version: 1\nplugins:\n  - id: hello\n    plugin: plugin.so\n    profile: {}\n{extra}",
        profile.display()
    );
    let host = write_file(dir.path(), "host.yaml", &body);
    (dir, host)
}

#[test]
fn check_accepts_a_valid_host_configuration_beside_a_profile() {
    let (_dir, host) = host_dir("    pool: {warm: 1, max: 2}\n    call_time: 2s\n");
    let host = host.to_str().unwrap();
    let out = cli(&["check", host, "profiles/default.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        format!("{host}: ok\nprofiles/default.yaml: ok\n")
    );
}

#[test]
fn check_reports_every_host_configuration_error_with_a_caret() {
    let (_dir, host) = host_dir("    pool: {warm: 3, max: 2}\n    when_paused: later\n");
    let out = cli(&["check", host.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let h = host.display();
    assert!(
        err.contains(&format!(
            "{h}:6:18: error: pool.warm (3) is more than pool.max (2)\n \
             6 |     pool: {{warm: 3, max: 2}}\n   |                  ^\n"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{h}:7:18: error: `later` is not one of wait, fail"
        )),
        "{err}"
    );
    assert!(err.contains(&format!("{h}: 2 errors")), "{err}");
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn a_missing_plugin_file_is_named_at_the_plugin_value() {
    let (dir, host) = host_dir("");
    std::fs::remove_file(dir.path().join("plugin.so")).unwrap();
    let out = cli(&["check", host.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let missing = dir.path().join("plugin.so");
    assert!(
        err.contains(&format!(
            "{}:4:13: error: plugin file `{}` does not exist",
            host.display(),
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn a_broken_profile_is_reported_in_the_profile_file() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "plugin.so", "");
    let profile = write_file(
        dir.path(),
        "bad.yaml",
        "version: 1\nlimits:\n  memory: 64Q\n",
    );
    let host = write_file(
        dir.path(),
        "host.yaml",
        "version: 1\nplugins:\n  - id: a\n    plugin: plugin.so\n    profile: bad.yaml\n",
    );
    let out = cli(&["check", host.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:5:14: error: profile `{}` does not load: 1 error, shown below",
            host.display(),
            profile.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:3:11: error: `64Q` has an unknown size unit `Q`\n 3 |   memory: 64Q\n   |           ^\n",
            profile.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}: 2 errors", host.display())),
        "{err}"
    );
}

#[test]
fn schema_host_is_json_that_lists_plugins() {
    let out = cli(&["schema", "--host"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    assert_eq!(
        schema["required"],
        serde_json::json!(["version", "plugins"])
    );
    let plugin = &schema["properties"]["plugins"]["items"]["properties"];
    for key in ["id", "plugin", "profile", "pool", "restart", "health"] {
        assert!(plugin.get(key).is_some(), "no `{key}` in {plugin}");
    }
    // The profile's schema is still the default.
    let out = cli(&["schema"]);
    let profile: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(profile["properties"].get("seccomp").is_some());
}

/// The shipped example names the example plugins, which are built, not committed: build
/// them as its README says, then it must check clean.
#[test]
fn the_example_host_configuration_is_valid() {
    let make = Command::new("make")
        .args(["-C", "examples/plugins"])
        .current_dir(manifest_dir())
        .output()
        .expect("run make");
    assert!(make.status.success(), "make: {}", text(&make.stderr));
    let out = cli(&["check", "examples/host/host.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "examples/host/host.yaml: ok\n");
}
