//! Shared helpers for plugjail's integration tests, one file per concern:
//!
//! - `build.rs`: compile C/C++ test programs once per source digest into a directory that
//!   an unprivileged user can read and execute ([`build`]);
//! - `tempdir.rs`: [`TempDir`], a temporary directory removed on drop, with a chosen mode,
//!   and unique names;
//! - `outside.rs`: where host files a jailed program must not reach go
//!   ([`outside_profiles`]), and why a path is reachable under a profile
//!   ([`grants_covering`]);
//! - `profiles.rs`: the shipped profiles, their rootless variants, and test profiles that
//!   extend one;
//! - `modes.rs`: who runs plugjail ([`Mode`]: root, or rootless as uid/gid 65534 via
//!   `setpriv`) and which modes this machine supports ([`jail_modes`]);
//! - `exec.rs`: [`Exec`], one `plugjail exec` with a report file, a timeout and extra
//!   inherited descriptors; `run.rs`: the [`Run`] it returns, parsed;
//! - `cli.rs`: the subcommands that build no jail ([`cli`]: `check`, `schema`, …);
//! - `check.rs`: checks on a [`Run`], and [`Failures`], which collects a test's failed
//!   checks under labels;
//! - `hostile.rs`: the hostile program `attack` and what the jail tests share around it;
//! - `plugins.rs`: plugin mode from the host's side: the test plugins built by name
//!   ([`plugin`]), `plugjail call` ([`call`]) and `Session`s ([`session_opts`]);
//!   `serve.rs`: raw `plugjail serve`, frames and the status fd ([`raw_serve`]);
//! - `jail_view.rs`: a session's jail seen from outside by its serve pid: processes, CPU
//!   time, cgroups ([`jail_processes`], [`jail_cpu`], [`cgroups_of`]);
//! - `cgroup_harness.rs` (used as a module, `common::cgroup_harness::…`): tests/cgroup.rs's
//!   jail cgroups on the host's backend and the forked child it adds to one;
//! - `stub_harness.rs` (used as a module, `common::stub_harness::…`): tests/plugin_stub.rs's
//!   plugjail-stub without the jail, the test playing both the jail and the host;
//! - `probe.rs` and `skip.rs`: kernel feature probes, and skipping with a printed reason
//!   that turns into a failure under `PLUGJAIL_TEST_STRICT=1`.
//!
//! Each test file is its own crate and uses some of these, so unused items are expected
//! (the `allow` below covers every submodule).
#![allow(dead_code)]

mod build;
pub mod cgroup_harness;
mod check;
mod cli;
mod exec;
mod hostile;
mod jail_view;
mod modes;
mod outside;
mod plugins;
pub mod probe;
mod profiles;
mod run;
mod serve;
mod skip;
pub mod stub_harness;
mod tempdir;

use std::path::Path;

// Re-exported flat, as `common::Exec` etc.; each test crate uses some of them.
#[allow(unused_imports)]
pub use build::{Lang, build};
#[allow(unused_imports)]
pub use check::Failures;
#[allow(unused_imports)]
pub use cli::{cli, text, write_file};
#[allow(unused_imports)]
pub use exec::{Exec, deny_ptrace};
#[allow(unused_imports)]
pub use hostile::{HostProcess, Pty, SECRET, SHIPPED, attack, jail, label, naming};
#[allow(unused_imports)]
pub use jail_view::{cgroups_of, jail_cpu, jail_processes, thread_states};
#[allow(unused_imports)]
pub use modes::{Mode, jail_modes};
#[allow(unused_imports)]
pub use outside::{grants_covering, outside_profiles};
#[allow(unused_imports)]
pub use plugins::{
    Called, call, call_with, call_within, default_profile, expect, plugin, plugin_with,
    plugjail_for, session_opts, spawn,
};
#[allow(unused_imports)]
pub use profiles::{extend_profile, profile_for, shared_profile, shipped_profile};
#[allow(unused_imports)]
pub use run::Run;
#[allow(unused_imports)]
pub use serve::{
    call_frame, next_frame, raw_serve, raw_serve_control, raw_serve_with, read_frame,
    status_verdict,
};
#[allow(unused_imports)]
pub use skip::{skip, strict};
#[allow(unused_imports)]
pub use tempdir::{TempDir, chmod, target_tmp, unique};

/// The unprivileged user rootless runs use.
pub const NOBODY: u32 = 65534;

/// The plugjail binary cargo built for these tests.
/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { std::os::fd::OwnedFd::from_raw_fd(fds[1]) };
    (r, w)
}

pub fn plugjail() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_plugjail"))
}

/// The crate's root directory (for `profiles/`, `tests/hostile/`).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Checks a client's escaping corpus against `plugjail::text`, byte for byte: `count` lines
/// of `HEX<TAB>ESCAPED<TAB>QUOTED` (the random input in hex, the client's `escape` of it,
/// and its quoted form without the outer quotes), as tests/c_client/units.c and the C++
/// `test_unit corpus` print them.
pub fn assert_escapes_like_plugjail(text: &str, count: usize) {
    let mut n = 0;
    for line in text.lines() {
        let mut parts = line.split('\t');
        let (hex, esc, quoted) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
            .collect();
        assert_eq!(esc, plugjail::text::escape(&bytes), "input {bytes:?}");
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let q = plugjail::text::Quoted(s).to_string();
            assert_eq!(quoted, &q[1..q.len() - 1], "quoted input {s:?}");
        }
        n += 1;
    }
    assert_eq!(n, count);
}
