//! The jail against hostile programs, for real on this kernel.
//!
//! Each test runs `tests/hostile/attack.c` (one program, the attack named by argv[1])
//! under `plugjail exec` with the shipped profiles, as root and rootless, and checks that
//! the attack fails the way the profile says it must — killed by seccomp (SIGSYS), or
//! refused by another layer with a specific errno — and, where the attack aims at the
//! host, that the host is untouched afterwards.
//!
//! Profiles: `default` and `strict` show seccomp stopping a syscall; `ci-tests` allows
//! more syscalls (sockets, prctl, exec), so the mount namespace, Landlock, the PID and
//! network namespaces and the capability drop are what stop things there. Some tests
//! write their own profile that `extends:` a shipped one to open one door (a syscall, a
//! bind, a port) and show that the next layer still holds.
//!
//! `controls_attacks_work_outside_the_jail` runs the same programs directly on the host
//! and expects them to succeed: proof that these tests can fail.

mod common;

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use common::{
    Exec, Failures, Lang, Mode, Run, TempDir, build, extend_profile, jail_modes, plugjail, probe,
    profile_for, shipped_profile, skip, unique,
};

/// The shipped profiles every attack runs under.
const SHIPPED: [&str; 3] = ["default", "strict", "ci-tests"];

/// Bytes in this process that a jailed `process_vm_readv` tries to read.
static SECRET: [u8; 24] = *b"plugjail-host-secret-042";

fn attack() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("attack", Lang::C, &["tests/hostile/attack.c"], &[]))
}

fn wellbehaved() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        build(
            "wellbehaved",
            Lang::Cxx,
            &["tests/hostile/wellbehaved.cpp"],
            &["-pthread"],
        )
    })
}

/// Runs `attack ARGS...` under `profile` in `mode`.
fn jail(mode: Mode, profile: &Path, args: &[&str]) -> Run {
    Exec::new(mode, profile).cmd([attack()]).cmd(args).run()
}

fn label(profile: &str, args: &[&str]) -> String {
    format!("`attack {}` under {profile}", args.join(" "))
}

/// Runs an attack under every shipped profile in every mode and expects a seccomp
/// violation naming `syscall`.
fn killed_by_seccomp_everywhere(syscall: &str, args: &[&str]) {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = jail(mode, &profile_for(mode, profile), args);
            failures.check(
                &label(profile, args),
                &run,
                run.check_seccomp_violation(syscall),
            );
        }
    }
    failures.finish();
}

/// A host process (`sleep`) running as the same user as the jail in `mode`, so only the
/// jail — not ordinary permissions — keeps the jailed program from it. Killed (by pid)
/// on drop.
struct HostProcess(Child);

impl HostProcess {
    fn start(mode: Mode) -> HostProcess {
        let child = mode
            .command("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep");
        HostProcess(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The jail runs programs at all

/// Fail closed: strict.yaml requires its limits, which an ordinary user cannot get
/// without a delegated cgroup, so plugjail refuses to run rather than run weaker.
#[test]
fn strict_limits_are_refused_rootless_without_a_cgroup() {
    let modes = jail_modes();
    if !modes.contains(&Mode::Rootless) {
        return;
    }
    // What the rootless user can write, as plugjail itself sees it.
    let doctor = Mode::Rootless
        .command(plugjail())
        .args(["doctor", "--json"])
        .output()
        .expect("run doctor");
    let caps: serde_json::Value = serde_json::from_slice(&doctor.stdout).expect("doctor json");
    if caps["cgroups"]["writable"]
        .as_array()
        .is_some_and(|w| !w.is_empty())
    {
        println!("skip: the rootless user has a writable cgroup here, so strict.yaml may run");
        return;
    }
    let run = jail(Mode::Rootless, &shipped_profile("strict"), &["hello"]);
    assert_eq!(run.code(), Some(125), "{}", run.describe());
    assert_eq!(run.outcome(), Some("setup_failed"), "{}", run.describe());
    assert_eq!(run.field("step").and_then(|s| s.as_str()), Some("cgroup"));
    let msg = run
        .field("message")
        .and_then(|m| m.as_str())
        .unwrap_or_default();
    assert!(
        msg.contains("limits (required) cannot be enforced"),
        "{msg}"
    );
    assert!(
        msg.contains("best_effort"),
        "the message says how to run anyway: {msg}"
    );
}

#[test]
fn a_plain_program_runs_under_every_shipped_profile() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = jail(mode, &profile_for(mode, profile), &["hello"]);
            let check = run.check_safe().and_then(|()| {
                if !run.stdout.contains("hello from the jail") {
                    return Err("stdout did not pass through".into());
                }
                match run.field("wall_time_ms") {
                    Some(v) if v.is_u64() => {}
                    _ => return Err("report has no numeric `wall_time_ms`".into()),
                }
                check_enforced(&run)
            });
            failures.check(&label(profile, &["hello"]), &run, check);
            // The program's own exit status passes through (2: usage error).
            let run = jail(mode, &profile_for(mode, profile), &["no-such-attack"]);
            failures.check(
                &label(profile, &["no-such-attack"]),
                &run,
                run.check_exited(2),
            );
        }
    }
    failures.finish();
}

/// The verdict says what was enforced: every namespace, Landlock in full, a kill_process
/// seccomp filter, and whether plugjail ran rootless.
fn check_enforced(run: &Run) -> Result<(), String> {
    let enforced = run.field("enforced").ok_or("report has no `enforced`")?;
    let namespaces: Vec<&str> = enforced["namespaces"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    for ns in ["user", "mount", "pid", "net", "ipc", "uts", "cgroup"] {
        if !namespaces.contains(&ns) {
            return Err(format!("enforced.namespaces lacks `{ns}`: {namespaces:?}"));
        }
    }
    if enforced["landlock"]["status"] != "full" {
        return Err("enforced.landlock.status is not `full`".into());
    }
    if enforced["seccomp"]["default_action"] != "kill_process" {
        return Err("enforced.seccomp.default_action is not `kill_process`".into());
    }
    if enforced["rootless"] != (run.mode == Mode::Rootless) {
        return Err(format!(
            "enforced.rootless is not {}",
            run.mode == Mode::Rootless
        ));
    }
    Ok(())
}

/// plugjail's own failures have their own exit statuses and outcomes: 127 not found,
/// 126 cannot execute (text, a FIFO with no writer, a device: refused at once, never
/// waited on or read), 125 the jail could not be set up (here: an invalid profile).
#[test]
fn failures_before_the_program_runs_have_their_own_statuses() {
    let modes = jail_modes();
    let dir = TempDir::new("exec-failures", 0o755);
    let text = dir.write("not-a-program.txt", "just text\n", 0o755);
    let bad_profile = dir.write(
        "bad.yaml",
        "version: 1\nfilesystem: {read_only: relative/path}\n",
        0o644,
    );
    // Nobody ever writes to it: opening it for reading must not wait for a writer.
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mkfifo only creates the node.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o777) }, 0, "mkfifo");
    common::chmod(&fifo, 0o777);
    let mut failures = Failures::default();
    for &mode in &modes {
        let default = shipped_profile("default");
        let cases: [(&Path, &Path, i32, &str); 5] = [
            (
                &default,
                Path::new("/nonexistent/plugjail-program"),
                127,
                "not_found",
            ),
            (&default, &text, 126, "cannot_execute"),
            (&default, &fifo, 126, "cannot_execute"),
            (&default, Path::new("/dev/zero"), 126, "cannot_execute"),
            (&bad_profile, attack(), 125, "setup_failed"),
        ];
        for (profile, program, status, outcome) in cases {
            let run = Exec::new(mode, profile)
                .cmd([program])
                .cmd(["hello"])
                .timeout(std::time::Duration::from_secs(10))
                .run();
            let check = if run.code() != Some(status) {
                Err(format!("exit status {:?}, expected {status}", run.code()))
            } else if run.outcome() != Some(outcome) {
                Err(format!("report outcome is not `{outcome}`"))
            } else if run.stdout.contains("hello from the jail") {
                Err("the program ran".into())
            } else {
                Ok(())
            };
            failures.check(
                &format!("{} under {}", program.display(), profile.display()),
                &run,
                check,
            );
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Syscalls no shipped profile allows: seccomp kills the program

#[test]
fn mount_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("mount", &["mount"]);
}

#[test]
fn umount2_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("umount2", &["umount2"]);
}

#[test]
fn pivot_root_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("pivot_root", &["pivot_root"]);
}

#[test]
fn unshare_newuser_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("unshare", &["unshare_user"]);
}

#[test]
fn setns_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("setns", &["setns"]);
}

#[test]
fn bpf_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("bpf", &["bpf"]);
}

#[test]
fn keyctl_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("keyctl", &["keyctl"]);
}

#[test]
fn perf_event_open_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("perf_event_open", &["perf_event_open"]);
}

#[test]
fn userfaultfd_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("userfaultfd", &["userfaultfd"]);
}

#[test]
fn io_uring_setup_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("io_uring_setup", &["io_uring_setup"]);
}

#[test]
fn kexec_load_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("kexec_load", &["kexec_load"]);
}

#[test]
fn init_module_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("init_module", &["init_module"]);
}

#[test]
fn capset_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("capset", &["capset"]);
}

#[test]
fn sethostname_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("sethostname", &["sethostname"]);
}

#[test]
fn open_by_handle_at_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("open_by_handle_at", &["open_by_handle_at"]);
}

#[test]
fn chroot_is_killed_by_seccomp() {
    killed_by_seccomp_everywhere("chroot", &["chroot"]);
}

/// default and strict allow no exec: the program cannot start another host program.
#[test]
fn exec_of_a_host_program_is_killed_where_the_profile_allows_no_exec() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            let args = ["exec", "/usr/bin/echo"];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("execve"),
            );
        }
    }
    failures.finish();
}

/// plugjail's seccomp filter lets exactly one `execveat(N, "", .., AT_EMPTY_PATH)` through
/// to start the program from its memfd. The program must not be able to reuse that rule
/// by opening another executable at descriptor N: under profiles without exec, every N
/// must still be killed.
#[test]
fn the_jails_own_exec_rule_cannot_be_reused() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            for n in 3..=16 {
                let n = n.to_string();
                let args = ["exec_fd", &n, "/usr/bin/echo"];
                let run = jail(mode, &profile_for(mode, profile), &args);
                let check = run.check_seccomp_violation("execveat").and_then(|()| {
                    if run.stdout.contains("escaped-exec") {
                        Err("/usr/bin/echo ran".into())
                    } else {
                        Ok(())
                    }
                });
                failures.check(&label(profile, &args), &run, check);
            }
        }
    }
    failures.finish();
}

#[test]
fn ptrace_attach_to_a_host_process_is_killed_by_seccomp() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut target = HostProcess::start(mode);
        let pid = target.pid().to_string();
        for profile in SHIPPED {
            let args = ["ptrace_attach", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("ptrace"),
            );
        }
        if !target.alive() {
            failures.fail(format!("[{}] the host sleep died", mode.name()));
        }
    }
    failures.finish();
}

#[test]
fn process_vm_readv_of_the_host_is_killed_by_seccomp() {
    let pid = std::process::id().to_string();
    let addr = format!("{:#x}", SECRET.as_ptr() as usize);
    let len = SECRET.len().to_string();
    killed_by_seccomp_everywhere("process_vm_readv", &["process_vm_readv", &pid, &addr, &len]);
}

/// `clone` is allowed for threads, and `clone3` hides its flags behind a pointer: neither
/// may create a user namespace (which would hand the program every capability inside it).
/// strict allows neither (a named violation); default and ci-tests allow `clone`, which the
/// jail's user.max_user_namespaces = 0 refuses with ENOSPC, and `clone3`, which the traced
/// filter answers with ENOSYS (its flags could hide CLONE_UNTRACED).
#[test]
fn clone_into_a_new_user_namespace_fails() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            for (attack, syscall, errno) in [
                ("clone_newuser", "clone", "ENOSPC"),
                ("clone3_newuser", "clone3", "ENOSYS"),
            ] {
                let run = jail(mode, &profile_for(mode, profile), &[attack]);
                let check = if profile == "strict" {
                    run.check_seccomp_violation(syscall)
                } else {
                    run.check_denied(&[errno])
                };
                failures.check(&label(profile, &[attack]), &run, check);
            }
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// The same syscalls with seccomp opened up: the other layers still refuse

/// ci-tests plus the dangerous syscalls, so that the capability drop, the PID namespace
/// and the missing controlling terminal are what must stop them.
fn profile_without_seccomp_guard(dir: &TempDir) -> PathBuf {
    extend_profile(
        dir,
        "ci-tests-open-seccomp",
        "ci-tests",
        r#"
seccomp:
  load:
    allow:
      - syscalls: [mount, umount2, pivot_root, ptrace, process_vm_readv, capset, sethostname]
        comment: test only, to reach the layers behind seccomp
      - syscalls: [ioctl]
        args: [{ index: 1, op: eq, value: 0x5412 }]
        comment: TIOCSTI, test only
"#,
    )
}

/// What TIOCSTI fails with for a process without CAP_SYS_ADMIN that is not on its
/// controlling terminal.
fn tiocsti_errno() -> &'static str {
    match fs::read_to_string("/proc/sys/dev/tty/legacy_tiocsti") {
        Ok(v) if v.trim() == "0" => "EIO",
        _ => "EPERM",
    }
}

#[test]
fn behind_seccomp_the_other_layers_still_refuse() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let profile = profile_without_seccomp_guard(&dir);
    let test_pid = std::process::id().to_string();
    let addr = format!("{:#x}", SECRET.as_ptr() as usize);
    let len = SECRET.len().to_string();
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut target = HostProcess::start(mode);
        let sleep_pid = target.pid().to_string();
        let cases: [(&[&str], &[&str]); 9] = [
            // The jail's init (PID 1, outside the program's Landlock domain) holds the
            // pipes to the supervisor: out of reach too.
            (&["ptrace_attach", "1"], &["EPERM"]),
            (&["process_vm_readv", "1", &addr, &len], &["EPERM"]),
            (&["mount"], &["EPERM"]),
            (&["umount2"], &["EPERM"]),
            (&["pivot_root"], &["EPERM"]),
            (&["capset"], &["EPERM"]),
            (&["sethostname"], &["EPERM"]),
            // The PID namespace hides host processes entirely.
            (&["ptrace_attach", &sleep_pid], &["ESRCH"]),
            (&["process_vm_readv", &test_pid, &addr, &len], &["ESRCH"]),
        ];
        for (args, errnos) in cases {
            let run = jail(mode, &profile, args);
            failures.check(
                &label("ci-tests + those syscalls", args),
                &run,
                run.check_denied(errnos),
            );
            if run.stdout.contains("plugjail-host-secret") {
                failures.fail(format!(
                    "[{}] `attack {}`: the program's output holds bytes of the test \
                     process's memory (plugjail-host-secret...)",
                    mode.name(),
                    args.join(" ")
                ));
            }
        }
        if !target.alive() {
            failures.fail(format!("[{}] the host sleep died", mode.name()));
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Terminal injection

/// A pseudo-terminal: the jailed program gets the slave as stdin.
struct Pty {
    master: OwnedFd,
    slave: OwnedFd,
}

impl Pty {
    fn open() -> Pty {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes two fds into the given ints; name, termios and winsize
        // may be null.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: openpty succeeded, so both are fresh fds that nothing else owns.
        let (master, slave) =
            unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
        // Non-canonical with echo: an injected byte is readable on the slave at once
        // (FIONREAD) and its echo shows up on the master.
        // SAFETY: termios is plain data, filled by tcgetattr before use.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            assert_eq!(libc::tcgetattr(slave.as_raw_fd(), &mut t), 0);
            t.c_lflag &= !libc::ICANON;
            t.c_lflag |= libc::ECHO;
            assert_eq!(libc::tcsetattr(slave.as_raw_fd(), libc::TCSANOW, &t), 0);
        }
        Pty { master, slave }
    }

    fn slave_stdin(&self) -> Stdio {
        Stdio::from(self.slave.try_clone().expect("dup pty slave"))
    }

    /// What an injection left behind: bytes echoed to the master, bytes queued for the
    /// slave's reader.
    fn injected(&self) -> (Vec<u8>, i32) {
        let mut pfd = libc::pollfd {
            fd: self.master.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut echoed = vec![];
        // SAFETY: one valid pollfd; 200 ms lets the pty's echo work run.
        if unsafe { libc::poll(&mut pfd, 1, 200) } == 1 {
            let mut buf = [0u8; 64];
            // SAFETY: reading into a local buffer of the given size.
            let n = unsafe { libc::read(self.master.as_raw_fd(), buf.as_mut_ptr().cast(), 64) };
            if n > 0 {
                echoed.extend_from_slice(&buf[..n as usize]);
            }
        }
        let mut queued: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        unsafe { libc::ioctl(self.slave.as_raw_fd(), libc::FIONREAD, &mut queued) };
        (echoed, queued)
    }
}

#[test]
fn tiocsti_injects_nothing_into_the_terminal() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let open = profile_without_seccomp_guard(&dir);
    let mut failures = Failures::default();
    for &mode in &modes {
        let mut cases: Vec<(String, PathBuf, bool)> = SHIPPED
            .iter()
            .map(|p| (p.to_string(), profile_for(mode, p), true))
            .collect();
        cases.push(("ci-tests + TIOCSTI".into(), open.clone(), false));
        for (name, profile, by_seccomp) in cases {
            let pty = Pty::open();
            let run = Exec::new(mode, &profile)
                .cmd([attack()])
                .cmd(["tiocsti"])
                .stdin(pty.slave_stdin())
                .run();
            let check = if by_seccomp {
                run.check_seccomp_violation("ioctl")
            } else {
                run.check_denied(&[tiocsti_errno()])
            };
            failures.check(&label(&name, &["tiocsti"]), &run, check);
            let (echoed, queued) = pty.injected();
            if echoed.contains(&b'x') || queued != 0 {
                failures.fail(format!(
                    "[{}] tiocsti under {name}: the terminal got input (echo {echoed:?}, {queued} bytes queued)",
                    mode.name()
                ));
            }
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Files: reading secrets, writing the host

#[test]
fn host_secrets_are_not_visible() {
    let modes = jail_modes();
    let home = TempDir::outside_profiles("home", 0o755);
    let secret = home.write("secret.txt", "the caller's secret\n", 0o644);
    let tmp_home = TempDir::in_system_tmp("home", 0o755);
    let tmp_secret = tmp_home.write("secret.txt", "a secret in host /tmp\n", 0o644);
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let profile_path = profile_for(mode, profile);
            for path in [Path::new("/etc/shadow"), &secret, &tmp_secret] {
                let args = ["read", path.to_str().unwrap()];
                let run = jail(mode, &profile_path, &args);
                let check = run.check_denied_at(&profile_path, path, &["ENOENT"]);
                failures.check(&label(profile, &args), &run, check);
            }
        }
    }
    failures.finish();
}

/// Bound into the jail but not in Landlock's read list: Landlock refuses (as root, the
/// mapped uid would otherwise pass the DAC check on /etc/shadow).
#[test]
fn bound_paths_outside_landlock_read_are_refused() {
    let modes = jail_modes();
    let home = TempDir::outside_profiles("home", 0o755);
    let secret = home.write("secret.txt", "the caller's secret\n", 0o644);
    let dir = TempDir::new("profiles", 0o755);
    let profile = extend_profile(
        &dir,
        "ci-tests-bind-etc",
        "ci-tests",
        &format!(
            "filesystem:\n  read_only: [/etc, {}]\n",
            home.path().display()
        ),
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        for path in [Path::new("/etc/shadow"), Path::new("/etc/passwd"), &secret] {
            let args = ["read", path.to_str().unwrap()];
            let run = jail(mode, &profile, &args);
            failures.check(
                &label("ci-tests + bind /etc and home", &args),
                &run,
                run.check_denied_at(&profile, path, &["EACCES"]),
            );
        }
    }
    failures.finish();
}

/// A directory on the host with one file in it, to attack and then inspect.
struct Victim {
    dir: TempDir,
    existing: PathBuf,
}

const ORIGINAL: &str = "original contents\n";

impl Victim {
    fn new(dir: TempDir) -> Victim {
        // World-writable, so plain permissions would let uid 65534 in: only the jail stops it.
        dir.chmod(0o777);
        let existing = dir.write("existing.txt", ORIGINAL, 0o666);
        Victim { dir, existing }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The directory still holds exactly the original file, unchanged.
    fn check(&self, failures: &mut Failures, what: &str) {
        let contents = fs::read_to_string(&self.existing).unwrap_or_default();
        if contents != ORIGINAL {
            failures.fail(format!(
                "{what}: {} on the host changed: it holds {contents:?}",
                self.existing.display()
            ));
        }
        let names: Vec<String> = fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if names != ["existing.txt"] {
            failures.fail(format!(
                "{what}: {} on the host now holds {names:?}, not just existing.txt",
                self.dir.path().display()
            ));
        }
    }
}

/// Removes a host path an attack should not have created, reporting it if it exists.
fn check_absent(failures: &mut Failures, path: &Path) {
    if path.symlink_metadata().is_ok() {
        failures.fail(format!(
            "{} was created on the host by a jailed program",
            path.display()
        ));
        let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
    }
}

#[test]
fn writes_outside_the_allowed_paths_fail_and_the_host_is_unchanged() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    let victims = [
        // Where no profile mounts or grants anything.
        Victim::new(TempDir::outside_profiles("victim", 0o777)),
        // In host /tmp: the jail's /tmp must be its own.
        Victim::new(TempDir::in_system_tmp("victim", 0o777)),
    ];
    for &mode in &modes {
        for profile in SHIPPED {
            let usr = PathBuf::from(format!("/usr/{}", unique("plugjail-hostile")));
            let root = PathBuf::from(format!("/{}", unique("plugjail-hostile")));
            let mut cases: Vec<(Vec<String>, &[&str])> = vec![];
            for v in &victims {
                cases.push((vec!["write".into(), v.path("existing.txt")], &["ENOENT"]));
                cases.push((vec!["create".into(), v.path("new.txt")], &["ENOENT"]));
            }
            // /usr is a read-only bind: the mount refuses before Landlock is asked.
            cases.push((vec!["create".into(), usr.display().to_string()], &["EROFS"]));
            // The jail's root is the jail's own; whether it is read-only or Landlock
            // refuses, nothing may be created there.
            cases.push((
                vec!["create".into(), root.display().to_string()],
                &["EROFS", "EACCES"],
            ));
            if profile != "strict" {
                // strict does not allow mkdir at all (seccomp).
                let dir = format!("{}-dir", root.display());
                cases.push((vec!["mkdir".into(), dir], &["EROFS", "EACCES"]));
            }
            let profile_path = profile_for(mode, profile);
            for (args, errnos) in &cases {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, &profile_path, &args);
                let check = run.check_denied_at(&profile_path, Path::new(args[1]), errnos);
                failures.check(&label(profile, &args), &run, check);
            }
            check_absent(&mut failures, &usr);
            check_absent(&mut failures, &root);
            check_absent(&mut failures, Path::new(&format!("{}-dir", root.display())));
            for v in &victims {
                v.check(&mut failures, &format!("[{}] under {profile}", mode.name()));
            }
        }
    }
    failures.finish();
}

/// A read-only bind stays read-only even where Landlock would allow writing, and a
/// read-write bind is not writable where Landlock does not allow it.
#[test]
fn each_layer_alone_keeps_a_bound_directory_unchanged() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let mut failures = Failures::default();
    for &mode in &modes {
        let ro = Victim::new(TempDir::outside_profiles("victim-ro", 0o777));
        let rw = Victim::new(TempDir::outside_profiles("victim-rw", 0o777));
        let ro_profile = extend_profile(
            &dir,
            &unique("ro-bind-landlock-write"),
            "ci-tests",
            &format!(
                "filesystem:\n  read_only: [{d}]\nlandlock:\n  read: [{d}]\n  write: [{d}]\n",
                d = ro.dir.path().display()
            ),
        );
        let rw_profile = extend_profile(
            &dir,
            &unique("rw-bind-no-landlock-write"),
            "ci-tests",
            &format!(
                "filesystem:\n  read_write: [{d}]\nlandlock:\n  read: [{d}]\n",
                d = rw.dir.path().display()
            ),
        );
        for (victim, profile, name, errno) in [
            (&ro, &ro_profile, "read-only bind, Landlock write", "EROFS"),
            (
                &rw,
                &rw_profile,
                "read-write bind, no Landlock write",
                "EACCES",
            ),
        ] {
            for args in [
                ["write".to_string(), victim.path("existing.txt")],
                ["create".to_string(), victim.path("new.txt")],
                ["mkdir".to_string(), victim.path("newdir")],
            ] {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, profile, &args);
                let check = run.check_denied_at(profile, Path::new(args[1]), &[errno]);
                failures.check(&label(name, &args), &run, check);
            }
            // Reading is allowed in both: the bind really is there.
            let args = ["read", &victim.path("existing.txt")];
            let run = jail(mode, profile, &args);
            let check = match run.result() {
                Some(r) if r.starts_with("escaped") && run.stdout.contains("original contents") => {
                    Ok(())
                }
                _ => Err(
                    "the bound file could not be read, so the write checks prove nothing".into(),
                ),
            };
            failures.check(&label(name, &args), &run, check);
            victim.check(&mut failures, &format!("[{}] {name}", mode.name()));
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Processes

#[test]
fn proc_shows_only_the_jail() {
    let modes = jail_modes();
    let test_pid = std::process::id().to_string();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["proc_pids", &test_pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            let check = if profile == "ci-tests" {
                // ci-tests lets Landlock read /proc: the listing must work and show only
                // the jail's few processes.
                run.check_safe().and_then(|()| {
                    let pids: Vec<u64> = run
                        .stdout
                        .lines()
                        .find_map(|l| l.strip_prefix("pids "))
                        .unwrap_or("")
                        .split_whitespace()
                        .filter_map(|p| p.parse().ok())
                        .collect();
                    if pids.is_empty() || pids.len() > 4 || pids.iter().any(|&p| p > 16) {
                        return Err(format!("/proc lists {pids:?}: not a fresh PID namespace"));
                    }
                    Ok(())
                })
            } else {
                // Landlock does not grant /proc in default and strict.
                run.check_denied(&["EACCES", "ENOENT"])
            };
            failures.check(&label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// The jail's init (PID 1) stays outside the program's Landlock domain: the program can
/// neither signal it nor read its memory or environment through /proc.
#[test]
fn the_jails_init_is_out_of_reach() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["kill_pid", "1"];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_denied(&["EPERM"]));
        }
        let ci = shipped_profile("ci-tests");
        for args in [["read", "/proc/1/environ"], ["open_write", "/proc/1/mem"]] {
            let run = jail(mode, &ci, &args);
            failures.check(
                &label("ci-tests", &args),
                &run,
                run.check_denied(&["EACCES"]),
            );
        }
    }
    failures.finish();
}

#[test]
fn kill_cannot_reach_host_processes() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut target = HostProcess::start(mode);
            let pid = target.pid().to_string();
            let args = ["kill_pid", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_denied(&["ESRCH"]));
            // The program refuses kill(-1) unless the host pid is invisible, so a broken
            // jail cannot take the machine down with it.
            let args = ["kill_all", &pid];
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(&label(profile, &args), &run, run.check_safe());
            if !target.alive() {
                failures.fail(format!(
                    "[{}] under {profile}: the host sleep was killed",
                    mode.name()
                ));
            }
        }
    }
    failures.finish();
}

fn sigdisp() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("sigdisp", Lang::C, &["tests/hostile/sigdisp.c"], &[]))
}

/// Signals the caller ignores do not reach the jailed program: every signal 1..=64
/// (SIGRTMAX included) starts with SIG_DFL and none is blocked, though plugjail was
/// started with SIGPIPE, SIGUSR1, SIGRTMIN and SIGRTMAX ignored (as `nohup` or a shell's
/// `trap '' SIG` leave them) and ignored dispositions survive exec. The same program
/// started the same way on the host reports them: the test can fail.
#[test]
fn signal_dispositions_start_at_their_defaults() {
    let modes = jail_modes();
    let ignored = [
        libc::SIGPIPE,
        libc::SIGUSR1,
        libc::SIGRTMIN(),
        libc::SIGRTMAX(),
    ];
    let mut failures = Failures::default();
    let mut host = Command::new(sigdisp());
    // SAFETY: the closure runs in the forked child before exec and only calls signal(2)
    // with SIG_IGN (async-signal-safe) over an array on the parent's copied stack.
    unsafe {
        host.pre_exec(move || {
            for sig in ignored {
                libc::signal(sig, libc::SIG_IGN);
            }
            Ok(())
        });
    }
    let host = host.output().expect("run sigdisp on the host");
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    // At least these four: the test harness may itself have inherited other ignored
    // signals (cargo starts it with 32 ignored, glibc's cancellation signal).
    let missing: Vec<_> = ignored
        .iter()
        .filter(|sig| !host.lines().any(|l| l == format!("sig {sig}: ignored")))
        .collect();
    if !missing.is_empty() || !host.contains("result: inherited") {
        failures.fail(format!(
            "control: sigdisp started on the host with {ignored:?} ignored does not report \
             {missing:?} as ignored, so the jailed runs prove nothing:\n{host}"
        ));
    }
    for &mode in &modes {
        for profile in SHIPPED {
            let run = Exec::new(mode, &profile_for(mode, profile))
                .cmd([sigdisp()])
                .ignore_signals(&ignored)
                .run();
            failures.check(
                &format!("`sigdisp` started with {ignored:?} ignored, under {profile}"),
                &run,
                run.check_safe(),
            );
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Network

#[test]
fn tcp_to_a_host_loopback_listener_fails() {
    let modes = jail_modes();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback listener");
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = TempDir::new("profiles", 0o755);
    // Landlock allows this port: the network namespace alone must keep the host away.
    let open_port = extend_profile(
        &dir,
        "ci-tests-port",
        "ci-tests",
        &format!("landlock:\n  tcp_connect: [{port}]\n"),
    );
    let args = ["tcp_connect", &port.to_string()].map(String::from);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            // No socket syscalls at all.
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("socket"),
            );
        }
        // Landlock's tcp_connect list does not name the port.
        let run = jail(mode, &shipped_profile("ci-tests"), &args);
        failures.check(
            &label("ci-tests", &args),
            &run,
            run.check_denied(&["EACCES"]),
        );
        // The jail's loopback is its own: nothing listens there.
        let run = jail(mode, &open_port, &args);
        failures.check(
            &label("ci-tests + Landlock port", &args),
            &run,
            run.check_denied(&["ECONNREFUSED"]),
        );
    }
    if let Ok((_, peer)) = listener.accept() {
        failures.fail(format!(
            "the host listener accepted a connection from {peer}"
        ));
    }
    failures.finish();
}

#[test]
fn a_host_abstract_unix_socket_is_unreachable() {
    let modes = jail_modes();
    let name = unique("plugjail-test-abstract");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).expect("bind an abstract socket");
    listener.set_nonblocking(true).unwrap();
    let dir = TempDir::new("profiles", 0o755);
    // Sharing the host's network namespace: Landlock's abstract-socket scope alone must
    // refuse.
    let shared_net = extend_profile(
        &dir,
        "ci-tests-host-net",
        "ci-tests",
        "namespaces:\n  net: false\n",
    );
    let args = ["abstract_connect", name.as_str()];
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "strict"] {
            let run = jail(mode, &profile_for(mode, profile), &args);
            failures.check(
                &label(profile, &args),
                &run,
                run.check_seccomp_violation("socket"),
            );
        }
        // Abstract names live in the network namespace: the jail's has none of the host's.
        let run = jail(mode, &shipped_profile("ci-tests"), &args);
        failures.check(
            &label("ci-tests", &args),
            &run,
            run.check_denied(&["ECONNREFUSED"]),
        );
        let run = jail(mode, &shared_net, &args);
        failures.check(
            &label("ci-tests without net namespace", &args),
            &run,
            run.check_denied(&["EPERM"]),
        );
    }
    if listener.accept().is_ok() {
        failures.fail("the host abstract socket accepted a connection".into());
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Capabilities and privilege

#[test]
fn no_capability_can_be_regained() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        let ci = shipped_profile("ci-tests");
        // Every capability set empty, no_new_privs set, a seccomp filter in force.
        let run = jail(mode, &ci, &["status"]);
        let check = run.check_safe().and_then(|()| {
            if run.stdout.lines().any(|l| l == "status: Seccomp:\t2") {
                Ok(())
            } else {
                Err("/proc/self/status does not show seccomp filter mode (Seccomp: 2)".into())
            }
        });
        failures.check(&label("ci-tests", &["status"]), &run, check);
        // prctl is allowed in ci-tests: raising an ambient capability needs it permitted.
        let run = jail(mode, &ci, &["ambient_raise"]);
        failures.check(
            &label("ci-tests", &["ambient_raise"]),
            &run,
            run.check_denied(&["EPERM"]),
        );
        for profile in ["default", "strict"] {
            let run = jail(mode, &profile_for(mode, profile), &["ambient_raise"]);
            failures.check(
                &label(profile, &["ambient_raise"]),
                &run,
                run.check_seccomp_violation("prctl"),
            );
        }
    }
    failures.finish();
}

/// Every mount in the jail is nosuid, and nodev except the device nodes themselves; and
/// the jail sees no mount the profile does not name.
#[test]
fn mounts_are_nosuid_nodev_and_only_what_the_profile_names() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    let named = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/tmp"];
    for &mode in &modes {
        let run = jail(mode, &shipped_profile("ci-tests"), &["mounts"]);
        let check = run.check_safe().and_then(|()| {
            let mut problems = vec![];
            for line in run.stdout.lines().filter_map(|l| l.strip_prefix("mount: ")) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(point), Some(opts)) = (fields.get(1), fields.get(3)) else {
                    problems.push(format!("unparsable mount line {line:?}"));
                    continue;
                };
                let opts: Vec<&str> = opts.split(',').collect();
                let device = point.starts_with("/dev/");
                if !opts.contains(&"nosuid") {
                    problems.push(format!("{point} is not nosuid"));
                }
                if !device && *point != "/dev" && !opts.contains(&"nodev") {
                    problems.push(format!("{point} is not nodev"));
                }
                let allowed = *point == "/"
                    || *point == "/proc"
                    || point.starts_with("/proc/")
                    || *point == "/dev"
                    || device
                    || named.contains(point);
                if !allowed {
                    problems.push(format!(
                        "{point} is mounted but the profile does not name it"
                    ));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        });
        failures.check(&label("ci-tests", &["mounts"]), &run, check);
    }
    failures.finish();
}

/// A setuid-root executable, bound and executable in the jail, runs without privilege.
#[test]
fn a_setuid_binary_grants_no_privilege() {
    let modes = jail_modes();
    if !probe::is_root() {
        skip("creating a setuid-root file needs root");
        return;
    }
    let dir = TempDir::new("setuid", 0o755);
    let suid = dir.join("attack-suid");
    fs::copy(attack(), &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let profiles = TempDir::new("profiles", 0o755);
    let profile = extend_profile(
        &profiles,
        "ci-tests-setuid",
        "ci-tests",
        &format!(
            "filesystem:\n  read_only: [{d}]\nlandlock:\n  read: [{d}]\n  execute: [{d}]\n",
            d = dir.path().display()
        ),
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        let args = ["exec_setuid", suid.to_str().unwrap()];
        let run = jail(mode, &profile, &args);
        // Either the exec is refused (a noexec mount) or the program runs with the euid
        // it had before.
        let check = run.check_safe().or_else(|safe| {
            run.check_denied(&["EACCES"])
                .map_err(|d| format!("{safe}; or: {d}"))
        });
        failures.check(&label("ci-tests + setuid dir", &args), &run, check);
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Kernel and cgroup knobs

#[test]
fn proc_sys_and_cgroupfs_are_not_writable() {
    let modes = jail_modes();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = unique("plugjail-hostile");
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut cases: Vec<(Vec<String>, &[&str])> = vec![
                // /proc is mounted with subset=pid: /proc/sys and the other global knobs
                // do not exist in the jail at all.
                (
                    vec!["rewrite".into(), "/proc/sys/kernel/hostname".into()],
                    &["ENOENT"],
                ),
                (
                    vec!["open_write".into(), "/proc/sysrq-trigger".into()],
                    &["ENOENT"],
                ),
                // No profile names /sys: it is not there.
                (
                    vec!["open_write".into(), "/sys/fs/cgroup/cgroup.procs".into()],
                    &["ENOENT"],
                ),
                (
                    vec![
                        "open_write".into(),
                        "/sys/fs/cgroup/memory/cgroup.procs".into(),
                    ],
                    &["ENOENT"],
                ),
            ];
            if profile != "strict" {
                cases.push((
                    vec!["mkdir".into(), format!("/sys/fs/cgroup/{name}")],
                    &["ENOENT"],
                ));
                cases.push((
                    vec!["mkdir".into(), format!("/sys/fs/cgroup/memory/{name}")],
                    &["ENOENT"],
                ));
            }
            for (args, errnos) in &cases {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, &profile_for(mode, profile), &args);
                failures.check(&label(profile, &args), &run, run.check_denied(errnos));
            }
        }
    }
    if fs::read_to_string("/proc/sys/kernel/hostname").unwrap() != hostname {
        failures.fail("the host's hostname changed".into());
    }
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.filter_map(Result::ok) {
            check_absent(&mut failures, &e.path().join(&name));
        }
    }
    check_absent(&mut failures, &Path::new("/sys/fs/cgroup").join(&name));
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Descriptors and executables

#[test]
fn no_descriptor_beyond_stdio_reaches_the_jail() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut runs = vec![("fd_scan", profile)];
            if profile == "ci-tests" {
                runs.push(("proc_fd", profile));
            }
            for (attack_name, profile) in runs {
                // A leaked host directory (the classic openat("..") escape) at fd 7, and
                // plugjail's own status pipe at fd 9.
                let leaked: OwnedFd = fs::File::open(common::target_tmp()).unwrap().into();
                let (status_read, status_write) = pipe();
                let run = Exec::new(mode, &profile_for(mode, profile))
                    .option("--status-fd")
                    .option("9")
                    .inherit_fd(leaked, 7)
                    .inherit_fd(status_write, 9)
                    .cmd([attack()])
                    .cmd([attack_name])
                    .run();
                failures.check(&label(profile, &[attack_name]), &run, run.check_safe());
                let mut verdict = String::new();
                let _ = fs::File::from(status_read).read_to_string(&mut verdict);
                let parsed: Option<serde_json::Value> = serde_json::from_str(verdict.trim()).ok();
                let outcome = parsed
                    .as_ref()
                    .and_then(|v| v.get("outcome")?.as_str().map(String::from));
                if outcome.as_deref() != Some("exited") {
                    failures.fail(format!(
                        "[{}] {attack_name} under {profile}: --status-fd 9 did not carry an `exited` verdict: {verdict:?}",
                        mode.name()
                    ));
                }
            }
        }
    }
    failures.finish();
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two fds into the array.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: pipe2 succeeded; both fds are new and owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

#[test]
fn the_program_and_the_supervisor_cannot_be_opened_for_writing() {
    let modes = jail_modes();
    let supervisor = plugjail().to_str().unwrap();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let cases: [(&str, &[&str]); 3] = [
                ("/proc/self/exe", &["ETXTBSY", "EACCES", "EPERM", "EROFS"]),
                (
                    "/proc/1/exe",
                    &["ETXTBSY", "EACCES", "EPERM", "EROFS", "ENOENT"],
                ),
                // The supervisor's host path is not in the jail.
                (supervisor, &["ENOENT"]),
            ];
            for (path, errnos) in cases {
                let args = ["open_write", path];
                let run = jail(mode, &profile_for(mode, profile), &args);
                failures.check(&label(profile, &args), &run, run.check_denied(errnos));
            }
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// A well-behaved program

#[test]
fn a_well_behaved_program_reads_its_input_and_writes_its_output() {
    let modes = jail_modes();
    let input_text = "pear two words\napple one\nfig three small words\n";
    let profiles = TempDir::new("profiles", 0o755);
    let mut failures = Failures::default();
    for &mode in &modes {
        let input = TempDir::new("input", 0o755);
        let in_file = input.write("input.txt", input_text, 0o644);
        let output = TempDir::new("output", 0o777);
        let profile = extend_profile(
            &profiles,
            &unique("default-io"),
            "default",
            &format!(
                "filesystem:\n  read_only: [{i}]\n  read_write: [{o}]\nlandlock:\n  read: [{i}, {o}]\n  write: [{o}]\n",
                i = input.path().display(),
                o = output.path().display()
            ),
        );
        // C, with a scratch file in the jail's /tmp.
        let out_c = output.join("reversed.txt");
        let args = [
            "transform",
            in_file.to_str().unwrap(),
            out_c.to_str().unwrap(),
            "/tmp/scratch",
        ];
        let run = jail(mode, &profile, &args);
        failures.check(
            &label("default + in/out binds", &args),
            &run,
            run.check_safe(),
        );
        let reversed: String = input_text.chars().rev().collect();
        let expected = format!("lines=3\n{reversed}");
        match fs::read_to_string(&out_c) {
            Ok(text) if text == expected => {}
            other => failures.fail(format!(
                "[{}] C output: {other:?}, expected {expected:?}",
                mode.name()
            )),
        }
        // C++: libstdc++, a thread, an exception.
        let out_cxx = output.join("sorted.txt");
        let run = Exec::new(mode, &profile)
            .cmd([wellbehaved(), in_file.as_path(), out_cxx.as_path()])
            .run();
        failures.check(
            "wellbehaved (C++) under default + in/out binds",
            &run,
            run.check_safe(),
        );
        let expected = "words=9\napple one\nfig three small words\npear two words\n";
        match fs::read_to_string(&out_cxx) {
            Ok(text) if text == expected => {}
            other => failures.fail(format!(
                "[{}] C++ output: {other:?}, expected {expected:?}",
                mode.name()
            )),
        }
        if fs::read_to_string(&in_file).unwrap() != input_text {
            failures.fail(format!("[{}] the input file changed", mode.name()));
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Controls: the same attacks outside the jail succeed, so the tests above can fail

/// Runs `attack ARGS` directly on the host as root.
fn on_host(args: &[&str], stdin: Stdio, setsid_tty: bool) -> std::process::Output {
    let mut cmd = Command::new(attack());
    cmd.args(args).stdin(stdin);
    if setsid_tty {
        // SAFETY: setsid and ioctl are async-signal-safe raw syscalls; nothing allocates.
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.output().expect("run attack on the host")
}

#[test]
fn controls_attacks_work_outside_the_jail() {
    if !probe::is_root() {
        skip("the host controls run as root");
        return;
    }
    let mut failures = Failures::default();
    let mut expect_escape = |what: &str, out: &std::process::Output, extra: &str| {
        let stdout = String::from_utf8_lossy(&out.stdout);
        if out.status.code() != Some(1)
            || !stdout.contains("result: escaped")
            || !stdout.contains(extra)
        {
            failures.fail(format!(
                "control {what}: on the host, outside any jail, the attempt should work \
                 (exit 1, `result: escaped`{}), but it ended with {:?}; the jailed \
                 runs of it prove nothing until it does\n{stdout}",
                if extra.is_empty() {
                    String::new()
                } else {
                    format!(" and `{extra}`")
                },
                out.status
            ));
        }
    };
    let home = TempDir::new("home", 0o755);
    let secret = home.write("secret.txt", "the caller's secret\n", 0o644);
    let out = on_host(&["read", secret.to_str().unwrap()], Stdio::null(), false);
    expect_escape("read home secret", &out, "the caller's secret");

    let pid = std::process::id().to_string();
    let out = on_host(&["proc_pids", &pid], Stdio::null(), false);
    expect_escape("proc_pids", &out, "");

    let addr = format!("{:#x}", SECRET.as_ptr() as usize);
    let out = on_host(
        &["process_vm_readv", &pid, &addr, "24"],
        Stdio::null(),
        false,
    );
    expect_escape("process_vm_readv", &out, "plugjail-host-secret-042");

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = on_host(&["tcp_connect", &port], Stdio::null(), false);
    expect_escape("tcp_connect", &out, "");
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept().is_ok();

    let name = unique("plugjail-test-abstract");
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let unix = UnixListener::bind_addr(&addr).unwrap();
    let out = on_host(&["abstract_connect", &name], Stdio::null(), false);
    expect_escape("abstract_connect", &out, "");

    let pty = Pty::open();
    let out = on_host(&["tiocsti"], pty.slave_stdin(), true);
    expect_escape("tiocsti", &out, "");
    let (echoed, queued) = pty.injected();

    let leaked: OwnedFd = fs::File::open(common::target_tmp()).unwrap().into();
    let leaked_raw = leaked.as_raw_fd();
    let mut cmd = Command::new(attack());
    cmd.arg("fd_scan");
    // SAFETY: fcntl is an async-signal-safe raw syscall.
    unsafe {
        cmd.pre_exec(move || {
            libc::fcntl(leaked_raw, libc::F_SETFD, 0);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    drop(leaked);
    expect_escape("fd_scan with a leaked fd", &out, "");

    let dir = TempDir::new("setuid", 0o755);
    let suid = dir.join("attack-suid");
    fs::copy(attack(), &suid).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let out = Mode::Rootless
        .command(attack())
        .args(["exec_setuid", suid.to_str().unwrap()])
        .output()
        .unwrap();
    expect_escape("exec of a setuid-root binary as 65534", &out, "euid=0");

    if !accepted {
        failures.fail("control tcp_connect: the listener saw no connection".into());
    }
    unix.set_nonblocking(true).unwrap();
    if unix.accept().is_err() {
        failures.fail("control abstract_connect: the listener saw no connection".into());
    }
    if !echoed.contains(&b'x') || queued == 0 {
        failures.fail(format!(
            "control tiocsti: no injection seen (echo {echoed:?}, {queued} queued)"
        ));
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Naming the refused syscall (seccomp_violation)

fn naming() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        build(
            "naming",
            Lang::C,
            &["tests/hostile/naming.c"],
            &["-pthread"],
        )
    })
}

/// Runs `naming ARGS...` under `profile` in `mode`.
fn naming_run(mode: Mode, profile: &Path, args: &[&str]) -> Run {
    Exec::new(mode, profile).cmd([naming()]).cmd(args).run()
}

fn naming_label(profile: &str, args: &[&str]) -> String {
    format!("`naming {}` under {profile}", args.join(" "))
}

/// The issue's own example: `ptrace` under a kill_process profile names `ptrace`, with
/// its x86_64 number, root and rootless.
#[test]
fn ptrace_is_a_named_seccomp_violation() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = naming_run(mode, &profile_for(mode, profile), &["ptrace"]);
            #[cfg(target_arch = "x86_64")]
            let check = run.check_seccomp_number(Some("ptrace"), 101);
            #[cfg(not(target_arch = "x86_64"))]
            let check = run.check_seccomp_violation("ptrace");
            failures.check(&naming_label(profile, &["ptrace"]), &run, check);
        }
    }
    failures.finish();
}

/// A number that is no syscall (999), or beyond every table (just below the x32 bit), is
/// still refused, and reported by number with a null name.
#[test]
fn an_unknown_syscall_number_is_reported_by_number() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            for (arg, nr) in [("nr999", 999), ("nr_huge", 0x3fff_ffff)] {
                let run = naming_run(mode, &profile_for(mode, profile), &[arg]);
                let check = run.check_seccomp_number(None, nr).and_then(|()| {
                    let name = run.report.as_ref().and_then(|r| r.pointer("/syscall/name"));
                    match name {
                        Some(serde_json::Value::Null) => Ok(()),
                        other => Err(format!("syscall.name is {other:?}, expected null")),
                    }
                });
                failures.check(&naming_label(profile, &[arg]), &run, check);
            }
        }
    }
    failures.finish();
}

/// Every thread is traced from its first instruction: a refused syscall in a second
/// thread is named like one in the main thread. strict allows no threads at all.
#[test]
fn a_refused_syscall_in_a_second_thread_is_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for (profile, syscall) in [
            ("default", "ptrace"),
            ("ci-tests", "ptrace"),
            ("strict", "clone3"),
        ] {
            let args = ["thread_ptrace"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation(syscall);
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// Every child is traced from its first instruction: a refused syscall in a forked child
/// is named, and ends the whole jail (the parent never reports). ci-tests allows fork and
/// wait; strict allows no clone.
#[test]
fn a_refused_syscall_in_a_forked_child_is_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for (profile, syscall) in [("ci-tests", "ptrace"), ("strict", "clone")] {
            let args = ["fork_ptrace"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation(syscall);
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// `clone(CLONE_UNTRACED)` would start a process the init does not trace, for which the
/// filter's trace action means only ENOSYS: it is refused, named, and says why.
#[test]
fn an_untraced_clone_is_refused_and_named() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let args = ["untraced_clone"];
            let run = naming_run(mode, &profile_for(mode, profile), &args);
            let check = run.check_seccomp_violation("clone").and_then(|()| {
                let message = run.field("message").and_then(|m| m.as_str());
                if message.is_some_and(|m| m.contains("CLONE_UNTRACED")) {
                    Ok(())
                } else {
                    Err(format!(
                        "message {message:?} does not mention CLONE_UNTRACED"
                    ))
                }
            });
            failures.check(&naming_label(profile, &args), &run, check);
        }
    }
    failures.finish();
}

/// Where the profile allows clone3, the traced filter answers it with ENOSYS (its flags
/// are out of the filter's reach), and threads still work: the C library falls back to
/// clone.
#[test]
fn clone3_is_enosys_and_threads_still_work() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in ["default", "ci-tests"] {
            let path = profile_for(mode, profile);
            let run = naming_run(mode, &path, &["clone3"]);
            failures.check(
                &naming_label(profile, &["clone3"]),
                &run,
                run.check_denied(&["ENOSYS"]),
            );
            let run = naming_run(mode, &path, &["threads"]);
            failures.check(&naming_label(profile, &["threads"]), &run, run.check_safe());
        }
    }
    failures.finish();
}

/// The tracer is invisible to a program that uses signals heavily: SIGUSR1 to itself in a
/// loop (each handled), ignored SIGUSR2, queued realtime signals, SIGCHLD from children
/// reaped with their exit codes, and a child that stops itself and is continued. The
/// result line is the same on the host, traced (ci-tests) and untraced (ci-tests with
/// `errno` as default action, which plugjail does not trace).
#[test]
fn signals_children_and_job_control_behave_as_untraced() {
    let modes = jail_modes();
    let args = ["signals", "2000"];
    let host = Command::new(naming())
        .args(args)
        .output()
        .expect("run naming on the host");
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    let expected = "result: usr1=2000 rt=8 sum=15 stopped=1 code=7 chld=1";
    assert_eq!(host.trim_end(), expected, "on the host");
    let dir = TempDir::new("profiles", 0o755);
    let untraced = extend_profile(
        &dir,
        "ci-tests-errno",
        "ci-tests",
        "seccomp:\n  default_action: errno\n",
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        for (name, profile, naming) in [
            ("ci-tests", shipped_profile("ci-tests"), "ptrace"),
            ("ci-tests with errno", untraced.clone(), "none"),
        ] {
            let run = naming_run(mode, &profile, &args);
            let check = run.check_exited(0).and_then(|()| {
                let got = run.report.as_ref().and_then(|r| {
                    r.pointer("/enforced/seccomp/naming")
                        .and_then(|n| n.as_str())
                });
                if run.result().map(|r| format!("result: {r}")).as_deref() != Some(expected) {
                    Err(format!("expected `{expected}`"))
                } else if got != Some(naming) {
                    Err(format!("enforced.seccomp.naming is {got:?}, not {naming}"))
                } else {
                    Ok(())
                }
            });
            failures.check(&naming_label(name, &args), &run, check);
        }
    }
    failures.finish();
}

/// abort() under a traced profile still ends in SIGABRT (the signal is delivered, not
/// swallowed by the tracer), not in a seccomp violation.
#[test]
fn abort_is_still_signaled_sigabrt() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = naming_run(mode, &profile_for(mode, profile), &["abort"]);
            let check = if run.code() != Some(128 + libc::SIGABRT) {
                Err(format!("exit status {:?}, expected 134", run.code()))
            } else if run.outcome() != Some("signaled") {
                Err("report outcome is not `signaled`".into())
            } else if run.report.as_ref().and_then(|r| r.pointer("/signal/name"))
                != Some(&serde_json::json!("SIGABRT"))
            {
                Err("report signal is not SIGABRT".into())
            } else {
                Ok(())
            };
            failures.check(&naming_label(profile, &["abort"]), &run, check);
        }
    }
    failures.finish();
}

/// Where ptrace is refused (here: a seccomp filter around plugjail, as a container may
/// have), the jail falls back to the plain kill_process filter — never weaker — and the
/// verdict says the syscall is not known and why.
#[test]
fn without_ptrace_the_kill_is_a_seccomp_violation_without_a_name() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let run = Exec::new(mode, &profile_for(mode, profile))
                .cmd([naming()])
                .cmd(["ptrace"])
                .deny_ptrace()
                .run();
            let report = run.report.clone().unwrap_or_default();
            let check = if run.result().is_some() {
                Err("the program survived the refused syscall".to_string())
            } else if run.code() != Some(128 + libc::SIGSYS) {
                Err(format!("exit status {:?}, expected 159", run.code()))
            } else if run.outcome() != Some("seccomp_violation") {
                Err("report outcome is not `seccomp_violation`".into())
            } else if report.get("syscall")
                != Some(&serde_json::json!({"name": null, "number": null, "arch": null}))
            {
                Err("syscall is not all null".into())
            } else if report.pointer("/enforced/seccomp/naming") != Some(&"none".into()) {
                Err("enforced.seccomp.naming is not \"none\"".into())
            } else if !report["message"]
                .as_str()
                .is_some_and(|m| m.contains("EPERM"))
            {
                Err("the message does not say ptrace was refused with EPERM".into())
            } else if !run
                .stderr
                .contains("plugjail: seccomp violation: an unknown syscall (ptrace was refused")
            {
                Err("no human line for the unknown syscall".into())
            } else {
                Ok(())
            };
            failures.check(&naming_label(profile, &["ptrace"]), &run, check);
        }
    }
    failures.finish();
}
