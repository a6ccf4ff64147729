//! The C++ host client (include/plugjail/host.hpp) through its out-of-tree example project:
//! examples/cpp-host is configured and built with cmake once per test process (into
//! cargo's test scratch directory, reused by later runs), and its ctest tests run against
//! this build's plugjail and test plugins, as root and rootless (ctest itself as uid 65534
//! under `setpriv` when the tests run as root, so the client spawns and signals
//! `plugjail serve` as an ordinary user). The paths reach the tests through the
//! environment (examples/cpp-host/tests/check.hpp). Without cmake the tests skip, which
//! `PLUGJAIL_TEST_STRICT=1` turns into a failure.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{
    Lang, Mode, build, jail_modes, manifest_dir, plugin, plugjail, profile_for, skip, target_tmp,
};

/// Whether `program --version` runs.
fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn output_text(o: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Makes `path` and everything below it readable (and directories searchable) by
/// everyone, and with `writable` also writable: ctest run as uid 65534 reads the build
/// and writes its logs under `Testing/`.
fn open_up(path: &Path, writable: bool) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.file_type().is_symlink() {
        return;
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut add = if meta.is_dir() || mode & 0o100 != 0 {
        0o555
    } else {
        0o444
    };
    if writable {
        add |= 0o222;
    }
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | add));
    if meta.is_dir()
        && let Ok(entries) = std::fs::read_dir(path)
    {
        for e in entries.flatten() {
            open_up(&e.path(), writable);
        }
    }
}

/// Configures and builds examples/cpp-host with `compiler` and `cxx_flags` into
/// `target/tmp/NAME` (only `targets`, when given); the build directory, or cmake's output
/// when it failed.
fn build_project(
    name: &str,
    compiler: Option<&str>,
    cxx_flags: &str,
    targets: &[&str],
) -> Result<PathBuf, String> {
    let dir = target_tmp().join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let mut configure = Command::new("cmake");
    configure
        .arg("-S")
        .arg(manifest_dir().join("examples/cpp-host"))
        .arg("-B")
        .arg(&dir)
        // This checkout's header, never an installed plugjail's.
        .arg("-DCMAKE_DISABLE_FIND_PACKAGE_plugjail=ON")
        .arg(format!(
            "-DPLUGJAIL_INCLUDE_DIR={}",
            manifest_dir().join("include").display()
        ))
        .arg("-DPLUGJAIL_WERROR=ON");
    if let Some(cxx) = compiler {
        configure.arg(format!("-DCMAKE_CXX_COMPILER={cxx}"));
    }
    configure.arg(format!("-DCMAKE_CXX_FLAGS={cxx_flags}"));
    let out = configure
        .output()
        .map_err(|e| format!("cannot run cmake: {e}"))?;
    if !out.status.success() {
        return Err(format!("cmake (configure) failed: {}", output_text(&out)));
    }
    let jobs = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut build = Command::new("cmake");
    build
        .arg("--build")
        .arg(&dir)
        .arg("--parallel")
        .arg(jobs.to_string());
    if !targets.is_empty() {
        build.arg("--target").args(targets);
    }
    let out = build
        .output()
        .map_err(|e| format!("cannot run cmake --build: {e}"))?;
    if !out.status.success() {
        return Err(format!("cmake --build failed: {}", output_text(&out)));
    }
    open_up(&dir, false);
    Ok(dir)
}

/// tests/c_client/fake_serve.c: a `plugjail serve` that breaks the protocol on purpose
/// (examples/cpp-host/tests/protocol.cpp), built once per test process.
fn fake_serve() -> &'static Path {
    static FAKE: OnceLock<PathBuf> = OnceLock::new();
    FAKE.get_or_init(|| build("fake_serve", Lang::C, &["tests/c_client/fake_serve.c"], &[]))
}

/// examples/cpp-host built with the default compiler (g++ here), once per test process.
fn built() -> &'static Result<PathBuf, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT.get_or_init(|| build_project("cpp-client", None, "", &[]))
}

/// The environment the project's tests read their paths from (tests/check.hpp).
fn test_env(cmd: &mut Command, mode: Option<Mode>) {
    let profile_mode = mode.unwrap_or(Mode::Rootless);
    cmd.env("PLUGJAIL", plugjail())
        .env(
            "PLUGJAIL_TEST_PROFILE",
            profile_for(profile_mode, "default"),
        )
        .env("PLUGJAIL_TEST_HELLO", plugin("hello"))
        .env("PLUGJAIL_TEST_CRASH", plugin("crash"))
        .env("PLUGJAIL_TEST_ECHO_NOISY", plugin("echo_noisy"))
        .env("PLUGJAIL_TEST_TERMINAL", plugin("terminal"))
        .env("PLUGJAIL_TEST_INIT_FAILS", plugin("init_fails"))
        .env("PLUGJAIL_TEST_FAKE_SERVE", fake_serve())
        .env("PLUGJAIL_TEST_SHM_ATTACK", plugin("shm_attack"))
        .env("PLUGJAIL_TEST_SHM_PROFILE", shm_profile(profile_mode));
}

/// The default profile (as `mode` runs it) plus read access to /proc, where the hostile
/// shm_attack plugin finds the shared-memory region.
fn shm_profile(mode: Mode) -> PathBuf {
    let text = format!(
        "version: 1\nextends: {}\nlandlock:\n  read: [/proc]\n",
        profile_for(mode, "default").display()
    );
    common::shared_profile(&format!("shm-{}.yaml", mode.name()), &text)
}

/// Runs the project's ctest tests matching `regex` in `mode` (None: as the test process
/// itself, without a jail mode); ctest's output when a test failed.
fn ctest(dir: &Path, mode: Option<Mode>, regex: &str) -> Result<String, String> {
    let testing = dir.join("Testing");
    let _ = std::fs::create_dir_all(&testing);
    open_up(&testing, true);
    let mut cmd = match mode {
        Some(m) => m.command("ctest"),
        None => Command::new("ctest"),
    };
    cmd.current_dir(dir)
        .args(["--output-on-failure", "--no-tests=error", "-R", regex]);
    test_env(&mut cmd, mode);
    let out = cmd.output().map_err(|e| format!("cannot run ctest: {e}"))?;
    let text = output_text(&out);
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn cpp_host_tests_pass_as_root_and_rootless() {
    if !have("cmake") || !have("ctest") {
        skip("cmake is not installed: the C++ client's example project is not built");
        return;
    }
    let dir = match built() {
        Ok(d) => d,
        Err(e) => panic!("building examples/cpp-host:\n{e}"),
    };
    let modes = jail_modes();
    let mut failures = Vec::new();
    if modes.is_empty() {
        // No jail here: the tests that need none still run.
        if let Err(out) = ctest(dir, None, "^(unit|not_found|protocol)$") {
            failures.push(format!("[no jail] ctest failed:\n{out}"));
        }
    }
    for mode in modes {
        match ctest(dir, Some(mode), ".") {
            Ok(out) => {
                let summary = out.lines().find(|l| l.contains("tests passed"));
                eprintln!("[{}] {}", mode.name(), summary.unwrap_or("ctest passed"));
            }
            Err(out) => failures.push(format!("[{}] ctest failed:\n{out}", mode.name())),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The header and the project compile warning-free under clang++ too (-Wall -Wextra
/// -Wpedantic -Werror), when clang++ is installed; nothing is run.
#[test]
fn cpp_host_builds_warning_free_with_clang() {
    if !have("cmake") {
        skip("cmake is not installed: the C++ client's example project is not built");
        return;
    }
    if !have("clang++") {
        eprintln!("clang++ is not installed: the clang build is not checked (g++ is)");
        return;
    }
    if let Err(e) = build_project("cpp-client-clang", Some("clang++"), "", &[]) {
        panic!("building examples/cpp-host with clang++:\n{e}");
    }
}

/// host.hpp's escape() is `plugjail::text`'s escaping (crates/protocol/src/text.rs), byte
/// for byte: the unit test program escapes random texts, and Rust must say the same.
#[test]
fn cpp_escaping_matches_plugjails_own() {
    if !have("cmake") {
        skip("cmake is not installed: the C++ client's example project is not built");
        return;
    }
    let dir = match built() {
        Ok(d) => d,
        Err(e) => panic!("building examples/cpp-host:\n{e}"),
    };
    let out = Command::new(dir.join("test_unit"))
        .args(["corpus", "5000"])
        .output()
        .expect("run test_unit corpus");
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8(out.stdout).expect("escaped text is UTF-8");
    common::assert_escapes_like_plugjail(&text, 5000);
}

/// The parsers (JSON, verdict, frames: `unit`, `protocol`) and a few live sessions
/// (`result`, `cancel`, `big_payload`) built with AddressSanitizer and UBSan, when this
/// compiler has them: malformed input is an error, never a memory error.
#[test]
fn cpp_client_holds_up_under_sanitizers() {
    if !have("cmake") {
        skip("cmake is not installed: the C++ client's example project is not built");
        return;
    }
    let flags = "-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer";
    let probe = target_tmp().join("cpp-client-asan-probe");
    let probe_ok = Command::new("c++")
        .args(flags.split(' '))
        .args(["-x", "c++", "-o"])
        .arg(&probe)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(b"int main() { return 0; }\n")?;
            c.wait()
        })
        .is_ok_and(|s| s.success())
        && Command::new(&probe).status().is_ok_and(|s| s.success());
    if !probe_ok {
        eprintln!("no AddressSanitizer for c++ here: the sanitizer build is not checked");
        return;
    }
    let tests = ["unit", "protocol", "result", "cancel", "big_payload"];
    let targets: Vec<String> = tests.iter().map(|t| format!("test_{t}")).collect();
    let targets: Vec<&str> = targets.iter().map(String::as_str).collect();
    let dir = match build_project("cpp-client-asan", None, flags, &targets) {
        Ok(d) => d,
        Err(e) => panic!("building examples/cpp-host with sanitizers:\n{e}"),
    };
    // As the test process itself: root here when the tests run as root.
    let mode = jail_modes().first().copied();
    let mut failures = Vec::new();
    for t in tests {
        if mode.is_none() && !matches!(t, "unit" | "protocol") {
            continue;
        }
        let mut cmd = Command::new(dir.join(format!("test_{t}")));
        test_env(&mut cmd, mode);
        let out = cmd.output().expect("run a sanitizer test");
        if !out.status.success() {
            failures.push(format!("{t}: {}", output_text(&out)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// examples/cpp-host built against an installed plugjail (scripts/install.sh into a prefix
/// under cargo's scratch directory, with the binaries cargo built): once through
/// `find_package(plugjail CONFIG)`, once through pkg-config (`plugjail-host`, the CMake
/// package disabled). Each build's tests then find `plugjail` on PATH (PREFIX/bin), as a
/// host application would, and run under the installed default profile.
#[test]
fn cpp_host_builds_against_an_installed_prefix() {
    if !have("cmake") {
        skip("cmake is not installed: the C++ client's example project is not built");
        return;
    }
    let bins = plugjail().parent().expect("plugjail's directory");
    assert!(
        bins.join("plugjail-stub").is_file(),
        "{} is missing: run `cargo build --bins` before these tests",
        bins.join("plugjail-stub").display()
    );
    // The prefix goes outside the checkout: CMake's FindPkgConfig splits an include path
    // with a space (the checkout may be "/tmp/ci clone"), whatever escaping pkg-config
    // gives it (docs/install.md). find_package has no such limit.
    let root = common::TempDir::in_system_tmp("cpp-prefix", 0o755);
    let prefix = root.join("prefix");
    let out = Command::new(manifest_dir().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(&prefix)
        .arg("--bindir-from")
        .arg(bins)
        .arg("--no-docs")
        .current_dir("/")
        .output()
        .expect("run scripts/install.sh");
    assert!(out.status.success(), "install.sh: {}", output_text(&out));
    let mut ways = vec![(
        "find-package",
        format!("-DCMAKE_PREFIX_PATH={}", prefix.display()),
        None,
        "plugjail::host from",
    )];
    if have("pkg-config") {
        ways.push((
            "pkg-config",
            "-DCMAKE_DISABLE_FIND_PACKAGE_plugjail=ON".to_string(),
            Some(prefix.join("lib/pkgconfig")),
            "from pkg-config",
        ));
    } else {
        skip("pkg-config is not installed: examples/cpp-host is not built through it");
    }
    let mode = jail_modes().first().copied();
    let path = format!(
        "{}:{}",
        prefix.join("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for (name, arg, pkg_config_path, says) in ways {
        let dir = root.join(name);
        let mut configure = Command::new("cmake");
        configure
            .arg("-S")
            .arg(manifest_dir().join("examples/cpp-host"))
            .arg("-B")
            .arg(&dir)
            .arg(&arg);
        if let Some(p) = &pkg_config_path {
            configure.env("PKG_CONFIG_PATH", p);
        }
        let out = configure.output().expect("run cmake");
        let text = output_text(&out);
        assert!(out.status.success(), "[{name}] configure: {text}");
        assert!(text.contains(says), "[{name}] not {says:?}: {text}");
        let out = Command::new("cmake")
            .arg("--build")
            .arg(&dir)
            .args(["--target", "test_result", "test_not_found", "cpp-host"])
            .output()
            .expect("run cmake --build");
        assert!(
            out.status.success(),
            "[{name}] build: {}",
            output_text(&out)
        );
        open_up(root.path(), false);
        let testing = dir.join("Testing");
        let _ = std::fs::create_dir_all(&testing);
        open_up(&testing, true);
        let regex = if mode.is_some() {
            "^(result|not_found)$"
        } else {
            "^not_found$"
        };
        let mut cmd = match mode {
            Some(m) => m.command("ctest"),
            None => Command::new("ctest"),
        };
        let out = cmd
            .current_dir(&dir)
            .args(["--output-on-failure", "--no-tests=error", "-R", regex])
            .env_remove("PLUGJAIL")
            .env("PATH", &path)
            .env(
                "PLUGJAIL_TEST_PROFILE",
                prefix.join("share/plugjail/profiles/default.yaml"),
            )
            .env("PLUGJAIL_TEST_HELLO", plugin("hello"))
            .output()
            .expect("run ctest");
        assert!(
            out.status.success(),
            "[{name}] ctest: {}",
            output_text(&out)
        );
    }
}
