//! Controls: the attacks of the jail tests, run directly on the host, succeed. So the
//! jail tests can fail: when they pass, it is the jail that refused.

mod common;

use std::fs;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::{Failures, Mode, Pty, SECRET, TempDir, attack, probe, skip, unique};

// ---------------------------------------------------------------------------------------
// Controls: the same attacks outside the jail succeed, so the tests above can fail

/// Runs `attack ARGS` directly on the host as root.
fn on_host(args: &[&str], stdin: Stdio, setsid_tty: bool) -> std::process::Output {
    let mut cmd = Command::new(attack());
    cmd.args(args).stdin(stdin);
    if setsid_tty {
        // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
        // test process: `take_terminal` makes two async-signal-safe syscalls and
        // allocates nothing.
        unsafe { cmd.pre_exec(take_terminal) };
    }
    cmd.output().expect("run attack on the host")
}

/// The body of a `pre_exec` hook: a new session, with stdin as its controlling terminal.
fn take_terminal() -> std::io::Result<()> {
    // SAFETY: no arguments; it only changes this child's session.
    if unsafe { libc::setsid() } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: TIOCSCTTY takes an integer (0: do not steal), no memory.
    if unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The body of a `pre_exec` hook: `fd` survives the exec.
fn keep_across_exec(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: F_SETFD with 0 (no FD_CLOEXEC) takes an integer, no memory.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    Ok(())
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
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `keep_across_exec` makes one async-signal-safe fcntl and allocates
    // nothing; `leaked` stays open in the parent until the child has run.
    unsafe { cmd.pre_exec(move || keep_across_exec(leaked_raw)) };
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
