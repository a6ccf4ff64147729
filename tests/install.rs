//! The installed layout (scripts/install.sh, docs/install.md), used the way its users use
//! it: `PREFIX/bin/plugjail call` from a directory outside the checkout, under the installed
//! default profile, with its stub found in `PREFIX/libexec/plugjail/`; a plugin built with
//! the flags `pkg-config` gives; a CMake project that finds the package with
//! `find_package(plugjail CONFIG)` and builds a plugin and hosts against it.
//!
//! Each test installs the binaries cargo already built (target/debug: plugjail,
//! plugjail-stub and plugjail-gendocs, from `cargo build --bins`) into its own prefix under
//! cargo's test scratch directory; nothing is rebuilt in release. Without `pkg-config` or
//! `cmake` those tests skip (failing under `PLUGJAIL_TEST_STRICT=1`): Debian packages
//! `pkgconf` and `cmake`.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{Mode, TempDir, jail_modes, manifest_dir, plugin, plugjail, skip, text};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What one command did.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn describe(&self) -> String {
        format!(
            "{}\n  stdout: {}\n  stderr: {}",
            self.status,
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }
}

/// Runs `cmd` with `input` on stdin, killing it (by pid) after two minutes.
fn run(cmd: &mut Command, input: &[u8]) -> Ran {
    let what = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let out = drain(Box::new(child.stdout.take().expect("stdout")));
    let err = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after 120 s (killed)");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    Ran {
        status,
        stdout: text(&out.join().unwrap_or_default()),
        stderr: text(&err.join().unwrap_or_default()),
    }
}

/// Runs `cmd` and fails the test unless it exits 0.
fn run_ok(cmd: &mut Command) -> Ran {
    let what = format!("{cmd:?}");
    let ran = run(cmd, b"");
    assert!(ran.status.success(), "{what}: {}", ran.describe());
    ran
}

/// The directory cargo built plugjail in, which must also hold the stub and the man page
/// generator (`cargo build --bins`; scripts/test.sh runs it before the tests).
fn built_bins() -> &'static Path {
    let dir = plugjail().parent().expect("plugjail's directory");
    for b in ["plugjail-stub", "plugjail-gendocs"] {
        assert!(
            dir.join(b).is_file(),
            "{} is missing: run `cargo build --bins` before these tests",
            dir.join(b).display()
        );
    }
    dir
}

/// An installed plugjail: its own prefix under the system temp directory (not the
/// checkout's, which may hold a space that the tests' own splitting of pkg-config's output
/// and CMake's FindPkgConfig would cut), removed on drop.
struct Installed {
    _dir: TempDir,
    prefix: PathBuf,
}

impl Installed {
    fn path(&self, rel: &str) -> PathBuf {
        self.prefix.join(rel)
    }

    fn plugjail(&self) -> PathBuf {
        self.path("bin/plugjail")
    }

    fn default_profile(&self) -> PathBuf {
        self.path("share/plugjail/profiles/default.yaml")
    }
}

/// scripts/install.sh --prefix (a fresh directory) --bindir-from target/debug, plus
/// `extra` arguments.
fn install(extra: &[&str]) -> Installed {
    let dir = TempDir::in_system_tmp("install", 0o755);
    let prefix = dir.join("prefix");
    run_ok(
        Command::new(manifest_dir().join("scripts/install.sh"))
            .arg("--prefix")
            .arg(&prefix)
            .arg("--bindir-from")
            .arg(built_bins())
            .args(extra)
            // From elsewhere: the script must not depend on the caller's directory.
            .current_dir("/"),
    );
    Installed { _dir: dir, prefix }
}

/// `PREFIX/bin/plugjail call … --method greet` with "world" as input, run as `mode` from a
/// fresh directory outside the checkout; returns the run and the verdict.
fn call_installed(inst: &Installed, mode: Mode, so: &Path) -> (Ran, serde_json::Value) {
    let cwd = TempDir::in_system_tmp("install-cwd", 0o777);
    let mut cmd = mode.command(inst.plugjail());
    cmd.arg("call")
        .arg("--profile")
        .arg(inst.default_profile())
        .arg("--plugin")
        .arg(so)
        .args([
            "--method",
            "greet",
            "--input",
            "-",
            "--report",
            "verdict.json",
        ])
        .current_dir(cwd.path());
    let ran = run(&mut cmd, b"world");
    let report = fs::read_to_string(cwd.join("verdict.json")).unwrap_or_default();
    let verdict = serde_json::from_str(&report).unwrap_or(serde_json::Value::Null);
    (ran, verdict)
}

/// Asserts that `so` answered "hello, world" through the installed plugjail.
fn assert_greets(inst: &Installed, mode: Mode, so: &Path) {
    let (ran, verdict) = call_installed(inst, mode, so);
    assert!(
        ran.status.success() && ran.stdout == "hello, world" && verdict["outcome"] == "ok",
        "[{}] {} with the installed plugjail: {}\n  verdict: {verdict}",
        mode.name(),
        so.display(),
        ran.describe()
    );
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn the_layout_is_as_documented() {
    let inst = install(&[]);
    let executables = ["bin/plugjail", "libexec/plugjail/plugjail-stub"];
    let mut files = vec![
        "include/plugjail.h",
        "lib/pkgconfig/plugjail.pc",
        "lib/pkgconfig/plugjail-host.pc",
        "lib/cmake/plugjail/plugjailConfig.cmake",
        "lib/cmake/plugjail/plugjailConfigVersion.cmake",
        "share/plugjail/schema/profile.schema.json",
        "share/plugjail/schema/host.schema.json",
        "share/man/man1/plugjail.1.gz",
        "share/man/man1/plugjail-call.1.gz",
        "share/man/man1/plugjail-serve.1.gz",
        "share/bash-completion/completions/plugjail",
        "share/zsh/site-functions/_plugjail",
        "share/fish/vendor_completions.d/plugjail.fish",
        "share/doc/plugjail/README.md",
        "share/doc/plugjail/install.md",
        "share/plugjail/installed-files",
    ];
    let mut shipped: Vec<String> = vec![];
    for dir in ["profiles", "include/plugjail"] {
        let Ok(entries) = fs::read_dir(manifest_dir().join(dir)) else {
            continue; // include/plugjail/ may not exist yet
        };
        for e in entries {
            let name = e.expect("read_dir").file_name();
            let name = name.to_string_lossy();
            // What install.sh installs from there: profiles, and C/C++ headers (*.h*).
            match dir {
                "profiles" if name.ends_with(".yaml") => {
                    shipped.push(format!("share/plugjail/profiles/{name}"));
                }
                "include/plugjail" if name.contains(".h") => {
                    shipped.push(format!("include/plugjail/{name}"));
                }
                _ => {}
            }
        }
    }
    files.extend(shipped.iter().map(String::as_str));
    let mut missing = vec![];
    for f in executables.iter().chain(&files) {
        let p = inst.path(f);
        let want = if executables.contains(f) {
            0o755
        } else {
            0o644
        };
        if !p.is_file() || fs::metadata(&p).map(|m| m.len()).unwrap_or(0) == 0 {
            missing.push(format!("{f}: missing or empty"));
        } else if mode_of(&p) != want {
            missing.push(format!("{f}: mode {:o}, not {want:o}", mode_of(&p)));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
    // The stub is not next to plugjail: the call tests prove the libexec lookup.
    assert!(!inst.path("bin/plugjail-stub").exists());
    // Directories readable by everyone (rootless runs read them as uid 65534).
    for d in [
        "bin",
        "libexec/plugjail",
        "share/plugjail/profiles",
        "include",
    ] {
        assert_eq!(mode_of(&inst.path(d)), 0o755, "{d}");
    }
    // The manifest lists every file there is, and nothing else.
    let listed: Vec<String> = fs::read_to_string(inst.path("share/plugjail/installed-files"))
        .expect("manifest")
        .lines()
        .map(String::from)
        .collect();
    let mut present = vec![];
    walk(&inst.prefix, &mut present);
    let mut expected: Vec<String> = present.iter().map(|p| p.display().to_string()).collect();
    let mut listed_sorted = listed.clone();
    expected.sort();
    listed_sorted.sort();
    assert_eq!(listed_sorted, expected, "installed-files against the tree");
    // The version the packages state is the binary's.
    let v = run_ok(Command::new(inst.plugjail()).arg("--version"));
    assert_eq!(v.stdout.trim(), format!("plugjail {VERSION}"));
    let pc = fs::read_to_string(inst.path("lib/pkgconfig/plugjail.pc")).expect("pc");
    assert!(
        pc.contains(&format!("prefix={}\n", inst.prefix.display())),
        "{pc}"
    );
    assert!(pc.contains(&format!("Version: {VERSION}\n")), "{pc}");
    // plugjail.1 says where the installed pieces are.
    let man = run_ok(
        Command::new("gzip")
            .arg("-dc")
            .arg(inst.path("share/man/man1/plugjail.1.gz")),
    );
    let stub = format!("{}/libexec/plugjail/plugjail-stub", inst.prefix.display());
    assert!(
        man.stdout.contains(&stub.replace('-', "\\-")),
        "{}",
        man.stdout
    );
    // The shipped profiles are valid where they are installed (audit.yaml extends
    // default.yaml by a relative path).
    let profiles: Vec<PathBuf> = shipped
        .iter()
        .filter(|s| s.starts_with("share/plugjail/profiles/"))
        .map(|s| inst.path(s))
        .collect();
    run_ok(Command::new(inst.plugjail()).arg("check").args(&profiles));
}

/// Every file under `dir`, as full paths.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let p = e.expect("read_dir").path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn the_installed_plugjail_calls_a_plugin_with_the_stub_from_libexec() {
    let modes = jail_modes();
    if modes.is_empty() {
        return;
    }
    let inst = install(&["--no-docs"]);
    let hello = plugin("hello");
    for mode in modes {
        assert_greets(&inst, mode, &hello);
    }
}

#[test]
fn without_a_stub_the_error_says_where_plugjail_looked() {
    let inst = install(&["--no-docs"]);
    fs::remove_file(inst.path("libexec/plugjail/plugjail-stub")).expect("remove the stub");
    let (ran, verdict) = call_installed(&inst, Mode::Rootless, &plugin("hello"));
    let next_to = format!("{}/bin/plugjail-stub", inst.prefix.display());
    let libexec = format!("{}/libexec/plugjail/plugjail-stub", inst.prefix.display());
    assert!(
        ran.status.code() == Some(125)
            && ran.stderr.contains(&next_to)
            && ran.stderr.contains(&libexec)
            && verdict["outcome"] == "setup_failed",
        "{}\n  verdict: {verdict}",
        ran.describe()
    );
}

#[test]
fn uninstall_removes_every_installed_file() {
    let inst = install(&[]);
    run_ok(
        Command::new(manifest_dir().join("scripts/install.sh"))
            .arg("--uninstall")
            .arg("--prefix")
            .arg(&inst.prefix),
    );
    let mut left = vec![];
    walk(&inst.prefix, &mut left);
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn destdir_stages_files_for_the_final_prefix() {
    let stage = TempDir::new("install-stage", 0o755);
    run_ok(
        Command::new(manifest_dir().join("scripts/install.sh"))
            .args(["--prefix", "/opt/plugjail", "--no-docs", "--bindir-from"])
            .arg(built_bins())
            .env("DESTDIR", stage.path()),
    );
    let root = stage.join("opt/plugjail");
    assert!(root.join("bin/plugjail").is_file());
    assert!(root.join("libexec/plugjail/plugjail-stub").is_file());
    let pc = fs::read_to_string(root.join("lib/pkgconfig/plugjail.pc")).expect("pc");
    assert!(pc.contains("prefix=/opt/plugjail\n"), "{pc}");
    let manifest = fs::read_to_string(root.join("share/plugjail/installed-files")).expect("list");
    assert!(
        manifest.lines().all(|l| l.starts_with("/opt/plugjail/")),
        "{manifest}"
    );
}

/// True if `tool --version` runs; otherwise skips with the package to install.
fn have(tool: &str, package: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        skip(&format!(
            "{tool} is not installed (Debian package {package})"
        ));
    }
    found
}

#[test]
fn pkg_config_gives_the_flags_to_build_a_plugin() {
    if !have("pkg-config", "pkgconf") {
        return;
    }
    let inst = install(&["--no-docs"]);
    let pc = |args: &[&str]| {
        run_ok(
            Command::new("pkg-config")
                .args(args)
                .env("PKG_CONFIG_PATH", inst.path("lib/pkgconfig")),
        )
        .stdout
        .trim()
        .to_string()
    };
    let include = format!("-I{}", inst.path("include").display());
    assert_eq!(pc(&["--cflags", "plugjail"]), format!("{include} -fPIC"));
    assert_eq!(pc(&["--modversion", "plugjail"]), VERSION);
    assert_eq!(pc(&["--modversion", "plugjail-host"]), VERSION);
    assert_eq!(
        pc(&["--variable=profilesdir", "plugjail"]),
        inst.path("share/plugjail/profiles").display().to_string()
    );
    assert_eq!(
        pc(&["--variable=plugjail", "plugjail-host"]),
        inst.plugjail().display().to_string()
    );
    let host = pc(&["--cflags", "--libs", "plugjail-host"]);
    assert!(
        host.contains(&include) && host.contains("-pthread"),
        "{host}"
    );
    // A plugin built outside the checkout with exactly those flags, called by the
    // installed plugjail.
    let Some(&mode) = jail_modes().first() else {
        return;
    };
    let dir = TempDir::in_system_tmp("install-pc", 0o755);
    fs::copy(
        manifest_dir().join("examples/plugins/hello.cpp"),
        dir.join("hello.cpp"),
    )
    .expect("copy hello.cpp");
    let so = dir.join("hello.so");
    let cflags = pc(&["--cflags", "plugjail"]);
    run_ok(
        Command::new("c++")
            .args(["-std=c++17", "-shared", "-o"])
            .arg(&so)
            .arg(dir.join("hello.cpp"))
            .args(cflags.split_whitespace())
            .current_dir(dir.path()),
    );
    common::chmod(&so, 0o644);
    assert_greets(&inst, mode, &so);
}

#[test]
fn cmake_find_package_builds_a_plugin_and_hosts() {
    if !have("cmake", "cmake") {
        return;
    }
    let inst = install(&["--no-docs"]);
    let dir = TempDir::in_system_tmp("install-cmake", 0o755);
    let src = dir.subdir("src", 0o755);
    fs::copy(
        manifest_dir().join("examples/plugins/hello.cpp"),
        src.join("hello.cpp"),
    )
    .expect("copy hello.cpp");
    // The hosts include every installed header (whatever host clients exist) and start a
    // thread: plugjail::host must give the include directory and Threads.
    let mut c_includes = String::from("#include <plugjail.h>\n");
    let mut cxx_includes = c_includes.clone();
    if let Ok(entries) = fs::read_dir(inst.path("include/plugjail")) {
        let mut names: Vec<String> = entries
            .map(|e| {
                e.expect("read_dir")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        for n in names {
            let line = format!("#include <plugjail/{n}>\n");
            if n.ends_with(".h") {
                c_includes.push_str(&line);
            }
            cxx_includes.push_str(&line);
        }
    }
    fs::write(
        src.join("host.c"),
        format!(
            "{c_includes}#include <pthread.h>\n\
             static void *run(void *arg) {{ return arg; }}\n\
             int main(void) {{\n\
             \x20   pthread_t t;\n\
             \x20   if (pthread_create(&t, 0, run, 0) != 0) return 1;\n\
             \x20   pthread_join(t, 0);\n\
             \x20   return PLUGJAIL_ABI_VERSION == 1u ? 0 : 2;\n\
             }}\n"
        ),
    )
    .expect("host.c");
    fs::write(
        src.join("host.cpp"),
        format!(
            "{cxx_includes}#include <thread>\n\
             int main() {{ std::thread t([] {{}}); t.join(); return 0; }}\n"
        ),
    )
    .expect("host.cpp");
    let major_minor: String = VERSION.split('.').take(2).collect::<Vec<_>>().join(".");
    fs::write(
        src.join("CMakeLists.txt"),
        format!(
            r#"cmake_minimum_required(VERSION 3.16)
project(plugjail_consumer C CXX)
find_package(plugjail {major_minor} CONFIG REQUIRED)

# A plugin: the helper, a plain MODULE library, and one from an object library (which
# needs plugjail::plugin's position-independent code).
plugjail_add_plugin(hello hello.cpp)
add_library(hello_module MODULE hello.cpp)
target_link_libraries(hello_module PRIVATE plugjail::plugin)
add_library(hello_objects OBJECT hello.cpp)
target_link_libraries(hello_objects PRIVATE plugjail::plugin)
add_library(hello_from_objects MODULE $<TARGET_OBJECTS:hello_objects>)

add_executable(host_c host.c)
target_link_libraries(host_c PRIVATE plugjail::host)
add_executable(host_cxx host.cpp)
target_link_libraries(host_cxx PRIVATE plugjail::host)
set_target_properties(host_cxx PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)

get_target_property(exe plugjail::plugjail IMPORTED_LOCATION)
file(WRITE "${{CMAKE_BINARY_DIR}}/found.txt"
  "${{plugjail_VERSION}}\n${{plugjail_EXECUTABLE}}\n${{plugjail_STUB}}\n${{plugjail_PROFILES_DIR}}\n${{plugjail_INCLUDE_DIR}}\n${{exe}}\n")
"#
        ),
    )
    .expect("CMakeLists.txt");
    let build = dir.join("build");
    run_ok(
        Command::new("cmake")
            .arg("-S")
            .arg(&src)
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", inst.prefix.display()))
            .current_dir(dir.path()),
    );
    run_ok(Command::new("cmake").arg("--build").arg(&build).arg("-j2"));
    let found = fs::read_to_string(build.join("found.txt")).expect("found.txt");
    let p = |rel: &str| inst.path(rel).display().to_string();
    assert_eq!(
        found.lines().collect::<Vec<_>>(),
        [
            VERSION.to_string(),
            p("bin/plugjail"),
            p("libexec/plugjail/plugjail-stub"),
            p("share/plugjail/profiles"),
            p("include"),
            p("bin/plugjail"),
        ],
        "the package's variables"
    );
    run_ok(&mut Command::new(build.join("host_c")));
    run_ok(&mut Command::new(build.join("host_cxx")));
    for so in ["hello.so", "libhello_module.so", "libhello_from_objects.so"] {
        assert!(build.join(so).is_file(), "{so} was not built");
        common::chmod(&build.join(so), 0o644);
    }
    if let Some(&mode) = jail_modes().first() {
        assert_greets(&inst, mode, &build.join("hello.so"));
    }

    // The version check, and a project without C or C++ (no plugjail::host, no error).
    let versions = dir.subdir("versions", 0o755);
    fs::write(
        versions.join("CMakeLists.txt"),
        format!(
            r#"cmake_minimum_required(VERSION 3.19)
project(plugjail_versions NONE)
find_package(plugjail 99.0 CONFIG QUIET)
if(plugjail_FOUND)
  message(FATAL_ERROR "plugjail 99.0 accepted ${{plugjail_VERSION}}")
endif()
find_package(plugjail {major_minor}...99 CONFIG REQUIRED)
if(NOT TARGET plugjail::plugin OR TARGET plugjail::host)
  message(FATAL_ERROR "plugjail::plugin must exist, plugjail::host must not (no C/C++)")
endif()
"#
        ),
    )
    .expect("CMakeLists.txt");
    run_ok(
        Command::new("cmake")
            .arg("-S")
            .arg(&versions)
            .arg("-B")
            .arg(versions.join("build"))
            .arg(format!("-DCMAKE_PREFIX_PATH={}", inst.prefix.display())),
    );
}
