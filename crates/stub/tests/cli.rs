//! The stub's binary from the command line: what a launcher sees before any descriptor is
//! involved. (Plugin sessions through the stub are tested from the supervisor's crate:
//! tests/plugin_stub.rs without the jail, tests/plugin_*.rs through it.)

use std::process::Command;

const STUB: &str = env!("CARGO_BIN_EXE_plugjail-stub");

#[test]
fn version_and_bad_command_lines() {
    let out = Command::new(STUB)
        .arg("--version")
        .output()
        .expect("run stub");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        concat!("plugjail-stub ", env!("CARGO_PKG_VERSION"), "\n")
    );

    let out = Command::new(STUB)
        .arg("--bogus")
        .output()
        .expect("run stub");
    // 64: the stub's exit code for a bad command line (docs/protocol.md).
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown argument \"--bogus\""), "{err}");
}
