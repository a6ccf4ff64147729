//! The lean Rust client from outside the workspace: a new cargo project that depends on
//! `crates/client` alone builds without the CLI, YAML or seccomp crates, and the README's
//! Rust snippet, copied from README.md as written, runs against the real plugjail.

mod common;

use std::process::Command;

use common::{manifest_dir, plugjail, target_tmp};

/// The README's Rust snippet (the ```rust block that uses plugjail_client).
fn readme_snippet() -> String {
    let readme = std::fs::read_to_string(manifest_dir().join("README.md")).expect("README");
    readme
        .split("```rust\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .find(|code| code.contains("plugjail_client"))
        .expect("a Rust snippet using plugjail_client in the README")
        .to_owned()
}

#[test]
fn a_host_outside_the_workspace_runs_the_readme_snippet_with_the_client_alone() {
    let dir = target_tmp().join("plugjail-rust-client-host");
    std::fs::create_dir_all(dir.join("src")).expect("mkdir");
    let manifest = format!(
        "[package]\nname = \"readme-host\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\n\
         [dependencies]\nplugjail-client = {{ path = \"{}\" }}\n\n[workspace]\n",
        manifest_dir().join("crates/client").display()
    );
    std::fs::write(dir.join("Cargo.toml"), manifest).expect("Cargo.toml");
    std::fs::write(dir.join("src/main.rs"), readme_snippet()).expect("main.rs");
    // Its own target directory: the workspace's may be locked by the cargo running us.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let tree = Command::new(&cargo)
        .args(["tree", "--offline", "--prefix", "none", "--edges", "normal"])
        .current_dir(&dir)
        .output()
        .expect("cargo tree");
    let tree = String::from_utf8_lossy(&tree.stdout);
    for heavy in [
        "serde-saphyr",
        "clap",
        "seccompiler",
        "landlock",
        "nix",
        "plugjail v",
    ] {
        assert!(!tree.contains(heavy), "the client pulls {heavy}:\n{tree}");
    }
    let built = Command::new(&cargo)
        .args(["build", "--offline", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .status()
        .expect("cargo build");
    assert!(built.success(), "the README host does not build");
    // Run where the snippet's relative paths hold (a copy of the checkout's layout, so
    // nothing is written into the source tree), finding plugjail through $PLUGJAIL as an
    // installed host would through PATH.
    let run = dir.join("run");
    std::fs::create_dir_all(run.join("profiles")).expect("mkdir");
    std::fs::create_dir_all(run.join("examples/plugins")).expect("mkdir");
    std::fs::copy(
        manifest_dir().join("profiles/default.yaml"),
        run.join("profiles/default.yaml"),
    )
    .expect("copy the profile");
    std::fs::copy(
        common::plugin("hello"),
        run.join("examples/plugins/hello.so"),
    )
    .expect("copy the plugin");
    let out = Command::new(dir.join("target/debug/readme-host"))
        .current_dir(&run)
        .env("PLUGJAIL", plugjail())
        .output()
        .expect("run the README host");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("ok after 1 calls"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
