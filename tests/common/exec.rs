//! Running `plugjail exec`: [`Exec`] prepares one invocation (mode, profile, report,
//! inherited descriptors, ignored signals, a ptrace-denying filter, a timeout) and runs it
//! into a [`Run`].

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Mode, Run, TempDir, plugjail};

/// One `plugjail exec` invocation being prepared.
pub struct Exec {
    mode: Mode,
    args: Vec<OsString>,
    command: Vec<OsString>,
    stdin: Option<Stdio>,
    fds: Vec<(OwnedFd, RawFd)>,
    report: bool,
    timeout: Duration,
    deny_ptrace: bool,
    ignore_signals: Vec<libc::c_int>,
}

impl Exec {
    /// `plugjail exec --profile PROFILE --report FILE -- ...` in `mode`.
    pub fn new(mode: Mode, profile: &Path) -> Exec {
        Exec {
            mode,
            args: vec!["--profile".into(), profile.into()],
            command: vec![],
            stdin: None,
            fds: vec![],
            report: true,
            timeout: Duration::from_secs(30),
            deny_ptrace: false,
            ignore_signals: vec![],
        }
    }

    /// The jailed command and its arguments.
    pub fn cmd<I, S>(mut self, command: I) -> Exec
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command
            .extend(command.into_iter().map(|s| s.as_ref().to_owned()));
        self
    }

    /// An extra plugjail option (before `--`).
    pub fn option(mut self, arg: impl AsRef<OsStr>) -> Exec {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn stdin(mut self, stdin: Stdio) -> Exec {
        self.stdin = Some(stdin);
        self
    }

    /// Makes `fd` appear as descriptor `target` (without close-on-exec) in plugjail.
    pub fn inherit_fd(mut self, fd: OwnedFd, target: RawFd) -> Exec {
        assert!(target > 2, "stdio is set with stdin()/captured");
        self.fds.push((fd, target));
        self
    }

    /// No `--report` option.
    pub fn without_report(mut self) -> Exec {
        self.report = false;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Exec {
        self.timeout = timeout;
        self
    }

    /// Runs plugjail under a seccomp filter that fails every `ptrace` with EPERM, as a
    /// container runtime's filter may: the jail cannot trace, so it must fall back.
    pub fn deny_ptrace(mut self) -> Exec {
        self.deny_ptrace = true;
        self
    }

    /// Starts plugjail with `signals` ignored, as a caller such as `nohup` or a shell's
    /// `trap '' SIG` may: ignored dispositions survive exec, so plugjail inherits them
    /// (through `setpriv` too, when rootless).
    pub fn ignore_signals(mut self, signals: &[libc::c_int]) -> Exec {
        self.ignore_signals.extend_from_slice(signals);
        self
    }

    pub fn run(self) -> Run {
        let report_dir = TempDir::in_system_tmp("report", 0o777);
        let report_path = report_dir.join("verdict.json");
        let mut cmd = self.mode.command(plugjail());
        cmd.arg("exec").args(&self.args);
        if self.report {
            cmd.arg("--report").arg(&report_path);
        }
        cmd.arg("--").args(&self.command);
        cmd.stdin(self.stdin.unwrap_or_else(Stdio::null))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let moves: Vec<(RawFd, RawFd)> = self
            .fds
            .iter()
            .map(|(fd, t)| (fd.as_raw_fd(), *t))
            .collect();
        assert!(moves.len() <= MAX_FDS, "at most {MAX_FDS} inherited fds");
        if !moves.is_empty() {
            // SAFETY: the hook runs in the child between fork and exec of this
            // multi-threaded test process: `move_fds` only calls fcntl and dup2
            // (async-signal-safe) and allocates nothing (the vector was made before).
            unsafe { cmd.pre_exec(move || move_fds(&moves)) };
        }
        if self.deny_ptrace {
            deny_ptrace(&mut cmd);
        }
        if !self.ignore_signals.is_empty() {
            let signals = self.ignore_signals.clone();
            // SAFETY: the hook runs in the child between fork and exec (after std has reset
            // the signal mask and SIGPIPE): `ignore_signals` only calls signal(2) with
            // SIG_IGN (async-signal-safe), over a vector allocated before the fork.
            unsafe { cmd.pre_exec(move || ignore_signals(&signals)) };
        }
        let description = format!("{:?}", cmd);
        let start = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {description}: {e}"));
        drop(self.fds);
        let (status, stdout, stderr, timed_out) = wait_with_timeout(child, self.timeout);
        let elapsed = start.elapsed();
        let report_text = fs::read_to_string(&report_path).ok();
        let report = report_text
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok());
        Run {
            mode: self.mode,
            description,
            status,
            stdout,
            stderr,
            report_text,
            report,
            timed_out,
            elapsed,
        }
    }
}

/// At most this many descriptors are placed in one run.
const MAX_FDS: usize = 16;

/// The body of a `pre_exec` hook: puts each `(source, target)` descriptor at its target
/// number, inheritable. Async-signal-safe, no allocation.
fn move_fds(moves: &[(RawFd, RawFd)]) -> io::Result<()> {
    // First move every source out of the way (a source may sit on another move's target
    // number), close-on-exec so the copies vanish at exec...
    let mut temps = [-1; MAX_FDS];
    for (i, &(src, _)) in moves.iter().enumerate() {
        // SAFETY: integer fcntl, no memory passed. `src` is open here: the child's
        // descriptor table is a copy of the parent's, where `Exec::fds` owned it at the
        // fork.
        temps[i] = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 1000) };
        if temps[i] < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // ...then place each on its target, which dup2 leaves inheritable.
    for (i, &(_, dst)) in moves.iter().enumerate() {
        // SAFETY: no memory passed; it replaces whatever this child had at `dst`, and the
        // child execs next, so nothing here uses that descriptor again.
        if unsafe { libc::dup2(temps[i], dst) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The body of a `pre_exec` hook: ignores `signals`. Async-signal-safe, no allocation.
fn ignore_signals(signals: &[libc::c_int]) -> io::Result<()> {
    for &sig in signals {
        // SAFETY: SIG_IGN installs no handler code; it only changes this child's
        // disposition of `sig`.
        if unsafe { libc::signal(sig, libc::SIG_IGN) } == libc::SIG_ERR {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Runs `cmd` under a seccomp filter that fails `ptrace` with EPERM, as Yama or an LSM
/// would: the jail's init cannot trace.
pub fn deny_ptrace(cmd: &mut Command) {
    // Built before fork: the hook only makes two syscalls.
    let filter = deny_ptrace_filter();
    // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
    // test process: `install_filter` only calls prctl and seccomp (async-signal-safe) and
    // allocates nothing.
    unsafe { cmd.pre_exec(move || install_filter(&filter)) };
}

/// The body of [`deny_ptrace`]'s hook: no_new_privs, then `filter`.
fn install_filter(filter: &[libc::sock_filter]) -> io::Result<()> {
    let prog = libc::sock_fprog {
        len: u16::try_from(filter.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?,
        filter: filter.as_ptr().cast_mut(),
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `prog` points at `filter`'s instructions, alive for the call; the kernel
    // copies them and writes nothing.
    if unsafe { libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const _) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `ptrace` fails with EPERM, everything else is allowed (no arch check: a test filter
/// for this machine's own syscalls only).
fn deny_ptrace_filter() -> [libc::sock_filter; 4] {
    // BPF opcodes are 16 bits (libc spells them as u32).
    let op = |code: u32| u16::try_from(code).unwrap();
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: op(code),
        jt: 0,
        jf: 0,
        k,
    };
    [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: op(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K),
            jt: 0,
            jf: 1,
            k: u32::try_from(libc::SYS_ptrace).unwrap(),
        },
        stmt(
            libc::BPF_RET | libc::BPF_K,
            libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
    ]
}

/// Waits for `child`, killing it (by its pid, which we own) after `timeout`.
fn wait_with_timeout(mut child: Child, timeout: Duration) -> (ExitStatus, String, String, bool) {
    let mut out = child.stdout.take().expect("stdout piped");
    let mut err = child.stderr.take().expect("stderr piped");
    let out_thread = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = out.read_to_end(&mut v);
        v
    });
    let err_thread = std::thread::spawn(move || {
        let mut v = vec![];
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait for plugjail") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                timed_out = true;
                let _ = child.kill();
                break child.wait().expect("wait for killed plugjail");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    // A jailed grandchild that outlives plugjail would keep the pipes open; the run then
    // counts as timed out instead of hanging the test.
    let join = |t: std::thread::JoinHandle<Vec<u8>>| {
        let limit = Instant::now() + Duration::from_secs(5);
        while !t.is_finished() && Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(5));
        }
        if t.is_finished() {
            String::from_utf8_lossy(&t.join().unwrap_or_default()).into_owned()
        } else {
            "<still open after plugjail exited: a jailed process outlived it>".to_string()
        }
    };
    (status, join(out_thread), join(err_thread), timed_out)
}
