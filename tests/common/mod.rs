//! Shared helpers for plugjail's integration tests.
//!
//! - [`build`]: compile C/C++ test programs once per source digest into a directory that
//!   an unprivileged user can read and execute;
//! - [`TempDir`]: a temporary directory removed on drop, with a chosen mode;
//! - [`outside_profiles`] and [`grants_covering`]: where host files a jailed program must
//!   not reach go, and why a path is reachable under a profile;
//! - [`Exec`]: run `plugjail exec` as root or rootless (uid/gid 65534 via `setpriv`),
//!   with a report file, a timeout, extra inherited descriptors, and the result parsed;
//! - [`probe`] and [`skip`]: kernel feature probes, and skipping with a printed reason that
//!   turns into a failure under `PLUGJAIL_TEST_STRICT=1`.
//!
//! Each test file uses some of these, so unused items are expected.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The unprivileged user rootless runs use.
pub const NOBODY: u32 = 65534;

/// The plugjail binary cargo built for these tests.
pub fn plugjail() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_plugjail"))
}

/// The crate's root directory (for `profiles/`, `tests/hostile/`).
pub fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The profile a test runs in `mode`: the shipped one, except that a profile requiring
/// limits (strict.yaml) cannot run rootless on a host without a delegated cgroup: plugjail
/// refuses it (fail closed; `strict_limits_are_refused_rootless_without_a_cgroup` checks
/// that). Rootless tests then use the same profile with `enforcement.limits: best_effort`,
/// written once under [`target_tmp`].
pub fn profile_for(mode: Mode, name: &str) -> PathBuf {
    let shipped = shipped_profile(name);
    let text = fs::read_to_string(&shipped).expect("read shipped profile");
    if mode == Mode::Root || !text.contains("limits: required") {
        return shipped;
    }
    let dir = target_tmp().join("plugjail-test-profiles");
    let _ = fs::create_dir_all(&dir);
    chmod(&dir, 0o755);
    let path = dir.join(format!("{name}-limits-best-effort.yaml"));
    let body = format!(
        "version: 1\nextends: {}\nenforcement:\n  limits: best_effort\n",
        shipped.display()
    );
    // Written under a unique name, then renamed: tests run in parallel threads.
    let tmp = dir.join(unique(name));
    fs::write(&tmp, body).expect("write test profile");
    chmod(&tmp, 0o644);
    fs::rename(&tmp, &path).expect("rename test profile");
    path
}

/// A shipped profile by name, e.g. `shipped_profile("default")`.
pub fn shipped_profile(name: &str) -> PathBuf {
    manifest_dir().join("profiles").join(format!("{name}.yaml"))
}

// ---------------------------------------------------------------------------------------
// Skipping

/// True when `PLUGJAIL_TEST_STRICT=1`: every skip is a failure (CI).
pub fn strict() -> bool {
    std::env::var_os("PLUGJAIL_TEST_STRICT").is_some_and(|v| v == "1")
}

/// Skips (prints the reason) or, under `PLUGJAIL_TEST_STRICT=1`, fails the current test.
/// The caller returns right after.
pub fn skip(reason: &str) {
    if strict() {
        panic!("PLUGJAIL_TEST_STRICT=1 and a test would skip: {reason}");
    }
    eprintln!("SKIP: {reason}");
}

// ---------------------------------------------------------------------------------------
// Temporary directories

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name for this process: `tag-pid-counter`.
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{tag}-{}-{n}", std::process::id())
}

/// cargo's scratch directory for integration tests (`target/tmp`), made searchable by
/// uid 65534, for what tests build and bind on purpose (programs, profiles, inputs). It
/// lies wherever the checkout does, possibly beneath a path a profile grants (`/tmp`):
/// host files the jail must not reach go to [`outside_profiles`] instead.
pub fn target_tmp() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
        chmod(&dir, 0o755);
        dir
    })
}

/// A temporary directory, removed (recursively) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// A new directory under [`target_tmp`] with `mode` (e.g. 0o755 so uid 65534 can read
    /// what is in it, 0o777 so it can also write there).
    pub fn new(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(target_tmp(), tag, mode)
    }

    /// A new directory under [`outside_profiles`], for host files the jail must not reach.
    pub fn outside_profiles(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(outside_profiles(), tag, mode)
    }

    /// A new directory under the system temp dir (`/tmp`).
    pub fn in_system_tmp(tag: &str, mode: u32) -> TempDir {
        TempDir::new_in(&std::env::temp_dir(), tag, mode)
    }

    pub fn new_in(base: &Path, tag: &str, mode: u32) -> TempDir {
        let path = base.join(unique(&format!("plugjail-test-{tag}")));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let dir = TempDir { path };
        dir.chmod(mode);
        dir
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.path.join(name)
    }

    pub fn chmod(&self, mode: u32) {
        chmod(&self.path, mode);
    }

    /// Writes a file in the directory with `mode` and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>, mode: u32) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chmod(&path, mode);
        path
    }

    /// A subdirectory with `mode`.
    pub fn subdir(&self, name: &str, mode: u32) -> PathBuf {
        let path = self.join(name);
        fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        chmod(&path, mode);
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            eprintln!("warning: cannot remove {}: {e}", self.path.display());
        }
    }
}

// ---------------------------------------------------------------------------------------
// Host files the jail must not reach

/// Where tests put host files a jailed program must neither read nor change (victims,
/// secrets): `/var/tmp`, which no shipped profile mounts or grants to Landlock, wherever
/// the checkout is. Not [`target_tmp`]: with the checkout under `/tmp` (or `/usr/src`), a
/// profile's grant on `/tmp` (or `/usr`) covers the target directory, and a test would
/// measure what the profile allows instead of what the jail refuses. Checked once against
/// the shipped profiles' grants.
pub fn outside_profiles() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new("/var/tmp");
        let dir = base.canonicalize().unwrap_or_else(|e| {
            panic!(
                "{}: {e} (the jail tests keep host files the jail must not reach there)",
                base.display()
            )
        });
        let profiles = fs::read_dir(manifest_dir().join("profiles"))
            .expect("read profiles/")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"));
        for profile in profiles {
            if let Some(why) = grants_covering(&profile, &dir) {
                panic!(
                    "{} cannot hold the tests' host-only files: it is covered by {why}",
                    dir.display()
                );
            }
        }
        dir
    })
}

/// Why `path` can be reachable in a jail under `profile`, in words: the profile's mounts
/// and Landlock rules that cover it ("/tmp (a tmpfs, Landlock read) in PROFILE"), or None
/// when none does. For failure messages: a test that finds a host path reachable says why.
pub fn grants_covering(profile: &Path, path: &Path) -> Option<String> {
    let p = match plugjail::profile::load(profile) {
        Ok(p) => p,
        Err(e) => return Some(format!("(cannot load {} to say: {e})", profile.display())),
    };
    let fs = &p.filesystem;
    let every_jail = [PathBuf::from("/proc"), PathBuf::from("/dev")];
    let devices = fs
        .devices
        .iter()
        .map(|d| PathBuf::from(format!("/dev/{}", d.name())));
    let kinds: [(&str, Vec<PathBuf>); 8] = [
        ("mounted in every jail", every_jail.to_vec()),
        ("bound read-only", fs.read_only.clone()),
        ("bound read-write", fs.read_write.clone()),
        ("a tmpfs", fs.tmpfs.iter().map(|t| t.path.clone()).collect()),
        ("a device node", devices.collect()),
        ("Landlock read", p.landlock.read.clone()),
        ("Landlock write", p.landlock.write.clone()),
        ("Landlock execute", p.landlock.execute.clone()),
    ];
    // Each covering path once, with everything the profile does there.
    let mut covering: Vec<(PathBuf, Vec<&str>)> = vec![];
    for (what, paths) in &kinds {
        for g in paths.iter().filter(|g| path.starts_with(g)) {
            match covering.iter_mut().find(|(q, _)| q == g) {
                Some((_, whats)) => whats.push(what),
                None => covering.push((g.clone(), vec![what])),
            }
        }
    }
    if covering.is_empty() {
        return None;
    }
    let list: Vec<String> = covering
        .iter()
        .map(|(g, whats)| format!("{} ({})", g.display(), whats.join(", ")))
        .collect();
    Some(format!("{} in {}", list.join(" and "), profile.display()))
}

pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

// ---------------------------------------------------------------------------------------
// Building C/C++ test programs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    C,
    Cxx,
}

/// Compiles `sources` (paths relative to the crate root, or absolute) into an executable
/// named `name` and returns its path. The output lives in cargo's per-target test scratch
/// directory under a name derived from the sources' contents and flags, so repeated builds
/// are free, and it is world-readable and executable (rootless runs exec it as uid 65534).
/// Call it through a `OnceLock` to build once per test binary.
pub fn build(name: &str, lang: Lang, sources: &[&str], flags: &[&str]) -> PathBuf {
    let (compiler, std) = match lang {
        Lang::C => ("cc", "-std=gnu11"),
        Lang::Cxx => ("c++", "-std=gnu++17"),
    };
    let paths: Vec<PathBuf> = sources.iter().map(|s| manifest_dir().join(s)).collect();
    let mut key = format!("{compiler} {std} {flags:?}");
    for p in &paths {
        let text = fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        key.push_str(&String::from_utf8_lossy(&text));
    }
    let dir = target_tmp().join("plugjail-test-programs");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", dir.display()));
    // Every directory on the way must be searchable by 65534.
    chmod(&dir, 0o755);
    let out = dir.join(format!("{name}-{:016x}", fnv1a(key.as_bytes())));
    if out.exists() {
        return out;
    }
    // Build under a private name, then rename: other test binaries may build the same
    // program at the same moment.
    let tmp = dir.join(unique(&format!(".{name}")));
    let status = Command::new(compiler)
        .arg(std)
        .args(["-O1", "-g", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&tmp)
        .args(&paths)
        .args(flags)
        .status()
        .unwrap_or_else(|e| panic!("cannot run {compiler}: {e}"));
    assert!(
        status.success(),
        "{compiler} failed to build {name}: {status}"
    );
    chmod(&tmp, 0o755);
    fs::rename(&tmp, &out).unwrap_or_else(|e| panic!("rename to {}: {e}", out.display()));
    out
}

/// A small stable hash for build cache names (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------------------
// Kernel feature probes

pub mod probe {
    use super::*;

    pub fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    /// The Landlock ABI version the kernel offers, or `None` without Landlock.
    pub fn landlock_abi() -> Option<i64> {
        const LANDLOCK_CREATE_RULESET_VERSION: libc::c_ulong = 1;
        static ABI: OnceLock<Option<i64>> = OnceLock::new();
        *ABI.get_or_init(|| {
            // SAFETY: with a null attribute pointer, size 0 and the VERSION flag the kernel
            // only returns the ABI version; no memory is read and no fd is created.
            let v = unsafe {
                libc::syscall(
                    libc::SYS_landlock_create_ruleset,
                    std::ptr::null::<u8>(),
                    0usize,
                    LANDLOCK_CREATE_RULESET_VERSION,
                )
            };
            (v > 0).then_some(v)
        })
    }

    /// Whether seccomp filters with `kill_process` are available.
    pub fn seccomp() -> bool {
        fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
            .is_ok_and(|s| s.split_whitespace().any(|a| a == "kill_process"))
    }

    /// Whether a process running as `uid` (or as ourselves with `None`) can create a user
    /// namespace. Probed for real in a child, since sysctls, LSMs and containers all have
    /// a say.
    pub fn user_namespaces(uid: Option<u32>) -> Result<(), String> {
        let mut cmd = Command::new("/bin/true");
        // SAFETY: the closure runs in the forked child before exec and only makes raw
        // syscalls (setgroups, setresgid, setresuid, unshare), which are async-signal-safe;
        // it allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(id) = uid
                    && (libc::setgroups(0, std::ptr::null()) != 0
                        || libc::setresgid(id, id, id) != 0
                        || libc::setresuid(id, id, id) != 0)
                {
                    return Err(io::Error::last_os_error());
                }
                if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        match cmd.status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("/bin/true in a new user namespace exited with {s}")),
            Err(e) => Err(format!("cannot create a user namespace: {e}")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Running plugjail

/// Who runs plugjail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As root (only when the tests run as root).
    Root,
    /// As an ordinary user: uid/gid 65534 via `setpriv` when the tests run as root, else
    /// the user running the tests.
    Rootless,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Rootless => "rootless",
        }
    }

    /// The host uid a process started in this mode runs as.
    pub fn uid(self) -> u32 {
        match self {
            Mode::Root => 0,
            Mode::Rootless if probe::is_root() => NOBODY,
            // SAFETY: getuid has no preconditions and cannot fail.
            Mode::Rootless => unsafe { libc::getuid() },
        }
    }

    /// A command for `program` that runs as this mode's user.
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        if self == Mode::Rootless && probe::is_root() {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

/// The modes a jail test can run in on this machine. Prints (or, under strict, fails on)
/// the reason for each mode that is missing; an empty list means the caller returns.
pub fn jail_modes() -> Vec<Mode> {
    static MODES: OnceLock<(Vec<Mode>, Vec<String>)> = OnceLock::new();
    let (modes, reasons) = MODES.get_or_init(|| {
        let mut modes = vec![];
        let mut reasons = vec![];
        if !probe::seccomp() {
            reasons.push("seccomp kill_process is not available".to_string());
        }
        match probe::landlock_abi() {
            // The shipped profiles require IPC scopes (ABI 6).
            Some(abi) if abi >= 6 => {}
            Some(abi) => reasons.push(format!("Landlock ABI {abi} < 6 (IPC scopes)")),
            None => reasons.push("Landlock is not enabled in this kernel".to_string()),
        }
        if !reasons.is_empty() {
            return (modes, reasons);
        }
        if probe::is_root() {
            match probe::user_namespaces(None) {
                Ok(()) => modes.push(Mode::Root),
                Err(e) => reasons.push(format!("root: {e}")),
            }
        } else {
            reasons.push("tests do not run as root: root-mode jail tests skipped".to_string());
        }
        let uid = probe::is_root().then_some(NOBODY);
        match probe::user_namespaces(uid) {
            Ok(()) => modes.push(Mode::Rootless),
            Err(e) => reasons.push(format!("rootless: {e}")),
        }
        (modes, reasons)
    });
    for r in reasons {
        skip(r);
    }
    modes.clone()
}

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
        const MAX_FDS: usize = 16;
        assert!(moves.len() <= MAX_FDS, "at most {MAX_FDS} inherited fds");
        if !moves.is_empty() {
            // SAFETY: the closure runs in the forked child before exec and only calls fcntl
            // and dup2, which are async-signal-safe, on a fixed-size local array (no
            // allocation); the source fds stay open in the parent (owned by `self.fds`)
            // until after spawn returns.
            unsafe {
                cmd.pre_exec(move || {
                    // First move every source out of the way (a source may sit on another
                    // move's target number), close-on-exec so the copies vanish at exec...
                    let mut temps = [-1; MAX_FDS];
                    for (i, &(src, _)) in moves.iter().enumerate() {
                        temps[i] = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 1000);
                        if temps[i] < 0 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    // ...then place each on its target, which dup2 leaves inheritable.
                    for (i, &(_, dst)) in moves.iter().enumerate() {
                        if libc::dup2(temps[i], dst) < 0 {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
        }
        if self.deny_ptrace {
            deny_ptrace(&mut cmd);
        }
        if !self.ignore_signals.is_empty() {
            let signals = self.ignore_signals.clone();
            // SAFETY: the closure runs in the forked child before exec (after std has reset
            // the signal mask and SIGPIPE) and only calls signal(2) with SIG_IGN, which is
            // async-signal-safe, over a vector allocated before the fork.
            unsafe {
                cmd.pre_exec(move || {
                    for &sig in &signals {
                        if libc::signal(sig, libc::SIG_IGN) == libc::SIG_ERR {
                            return Err(io::Error::last_os_error());
                        }
                    }
                    Ok(())
                });
            }
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

/// Runs `cmd` under a seccomp filter that fails `ptrace` with EPERM, as Yama or an LSM
/// would: the jail's init cannot trace.
pub fn deny_ptrace(cmd: &mut Command) {
    // Built before fork: the closure below only makes two syscalls.
    let filter = deny_ptrace_filter();
    // SAFETY: the closure runs in the forked child before exec and only calls prctl and
    // seccomp (async-signal-safe) with a program that lives in the parent's copied memory
    // for the whole call.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr().cast_mut(),
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_seccomp, 1, 0, &prog as *const _) != 0
            {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `ptrace` fails with EPERM, everything else is allowed (no arch check: a test filter
/// for this machine's own syscalls only).
fn deny_ptrace_filter() -> [libc::sock_filter; 4] {
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    [
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        libc::sock_filter {
            code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
            jt: 0,
            jf: 1,
            k: libc::SYS_ptrace as u32,
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

/// What one `plugjail exec` did.
pub struct Run {
    pub mode: Mode,
    pub description: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub report_text: Option<String>,
    pub report: Option<serde_json::Value>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

impl Run {
    /// plugjail's exit code (None if plugjail itself died of a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The text after the last `result: ` line the hostile program printed.
    pub fn result(&self) -> Option<&str> {
        self.stdout
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("result: "))
    }

    /// A report field, as a string or number.
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.report.as_ref()?.get(name)
    }

    pub fn outcome(&self) -> Option<&str> {
        self.field("outcome")?.as_str()
    }

    /// Everything about the run, for assertion messages.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "  mode: {}", self.mode.name());
        let _ = writeln!(s, "  command: {}", self.description);
        let _ = writeln!(
            s,
            "  status: {:?}{}{} after {:?}",
            self.status.code(),
            self.status.signal().map_or(String::new(), |n| format!(
                " (plugjail killed by signal {n})"
            )),
            if self.timed_out { " TIMED OUT" } else { "" },
            self.elapsed
        );
        let _ = writeln!(s, "  stdout: {}", indent(&self.stdout));
        let _ = writeln!(s, "  stderr: {}", indent(&self.stderr));
        let _ = writeln!(
            s,
            "  report: {}",
            indent(self.report_text.as_deref().unwrap_or("<none>"))
        );
        s
    }

    /// Checks that the jailed program exited normally with `code`, in the exit status and
    /// in the report.
    pub fn check_exited(&self, code: i32) -> Result<(), String> {
        if self.timed_out {
            return Err("timed out".into());
        }
        if self.code() != Some(code) {
            return Err(format!("exit status {:?}, expected {code}", self.code()));
        }
        self.check_report("exited", "exit_code", code)
    }

    /// Checks that the seccomp filter refused `syscall` under `kill_process` and the
    /// jail named it: exit status 159 (128 + SIGSYS, as for the kernel's own kill), a
    /// `seccomp_violation` verdict naming the syscall, its number on this architecture and
    /// the architecture, named through ptrace — before the program printed a result.
    pub fn check_seccomp_violation(&self, syscall: &str) -> Result<(), String> {
        let arch = plugjail::sysnames::Arch::native();
        let Some(number) = plugjail::sysnames::number(arch, syscall) else {
            return Err(format!("{syscall} is not a syscall on {arch}"));
        };
        self.check_seccomp_number(Some(syscall), number)
    }

    /// [`Run::check_seccomp_violation`] by number: `name` is None for a number that is in
    /// no syscall table (the verdict's name is null then).
    pub fn check_seccomp_number(&self, name: Option<&str>, number: u32) -> Result<(), String> {
        if self.timed_out {
            return Err("timed out".into());
        }
        if let Some(r) = self.result() {
            return Err(format!(
                "the program was not killed by seccomp; it reported `{r}`"
            ));
        }
        let sigsys = libc::SIGSYS;
        if self.code() != Some(128 + sigsys) {
            return Err(format!(
                "exit status {:?}, expected {} (128 + SIGSYS)",
                self.code(),
                128 + sigsys
            ));
        }
        let Some(report) = &self.report else {
            return Err("no JSON report was written".into());
        };
        if self.outcome() != Some("seccomp_violation") {
            return Err("report outcome is not `seccomp_violation`".into());
        }
        let arch = plugjail::sysnames::Arch::native().name();
        // `exec` has one phase, the load phase; `args` is checked where a test wants it.
        let expected =
            serde_json::json!({"name": name, "number": number, "arch": arch, "phase": "load"});
        let syscall = report.get("syscall").cloned().unwrap_or_default();
        let got: serde_json::Map<_, _> = ["name", "number", "arch", "phase"]
            .iter()
            .filter_map(|k| Some((k.to_string(), syscall.get(*k)?.clone())))
            .collect();
        if serde_json::Value::Object(got) != expected {
            return Err(format!("report `syscall` is not {expected}"));
        }
        if report.get("signal").is_some() || report.get("exit_code").is_some() {
            return Err("a seccomp_violation report has a signal or exit code".into());
        }
        let naming = report.pointer("/enforced/seccomp/naming");
        if naming.and_then(|n| n.as_str()) != Some("ptrace") {
            return Err(format!(
                "enforced.seccomp.naming is {naming:?}, not \"ptrace\""
            ));
        }
        let line = match name {
            Some(n) => format!("plugjail: seccomp violation: {n} ({number}, {arch})"),
            None => format!("plugjail: seccomp violation: syscall {number} ({arch})"),
        };
        if !self.stderr.lines().any(|l| l.starts_with(&line)) {
            return Err(format!("stderr has no line starting with `{line}`"));
        }
        Ok(())
    }

    fn check_report(&self, outcome: &str, key: &str, value: i32) -> Result<(), String> {
        let Some(report) = &self.report else {
            return Err("no JSON report was written".into());
        };
        if report.get("outcome").and_then(|v| v.as_str()) != Some(outcome) {
            return Err(format!("report outcome is not `{outcome}`"));
        }
        // A number, or a named number such as `{"number": 31, "name": "SIGSYS"}`.
        let number = report
            .get(key)
            .and_then(|v| v.as_i64().or_else(|| v.get("number")?.as_i64()));
        if number != Some(i64::from(value)) {
            return Err(format!("report `{key}` is not {value}"));
        }
        Ok(())
    }

    /// Checks that the program exited 0 after printing `result: denied E` with `E` one of
    /// `errnos`.
    pub fn check_denied(&self, errnos: &[&str]) -> Result<(), String> {
        let result = self.result().unwrap_or("<no result line>");
        let got = result.strip_prefix("denied ");
        if !got.is_some_and(|e| errnos.contains(&e)) {
            return Err(format!(
                "expected `denied` with one of {errnos:?}, got `{result}`"
            ));
        }
        self.check_exited(0)
    }

    /// [`Run::check_denied`] for an attempt on the host path `path` under `profile`: when
    /// the attempt worked, the error says which path was reachable and which of the
    /// profile's mounts and Landlock rules cover it.
    pub fn check_denied_at(
        &self,
        profile: &Path,
        path: &Path,
        errnos: &[&str],
    ) -> Result<(), String> {
        self.check_denied(errnos).map_err(|e| {
            if self.result().is_some_and(|r| r.starts_with("escaped")) {
                let why = match grants_covering(profile, path) {
                    Some(grants) => format!("the profile covers it: {grants}"),
                    None => format!(
                        "no mount or Landlock rule of {} covers it",
                        profile.display()
                    ),
                };
                format!(
                    "{} was reachable in the jail; {why}\n  ({e})",
                    path.display()
                )
            } else {
                e
            }
        })
    }

    /// Checks that the program exited 0 after printing `result: safe ...`.
    pub fn check_safe(&self) -> Result<(), String> {
        let result = self.result().unwrap_or("<no result line>");
        if !result.starts_with("safe") {
            return Err(format!("expected `safe`, got `{result}`"));
        }
        self.check_exited(0)
    }
}

fn indent(text: &str) -> String {
    let t = text.trim_end();
    if t.contains('\n') {
        format!("\n    {}", t.replace('\n', "\n    "))
    } else {
        t.to_string()
    }
}

/// Collects failures of one test across modes and profiles, so a single run shows every
/// broken combination; panics at the end if there were any.
#[derive(Default)]
pub struct Failures(Vec<String>);

impl Failures {
    /// Records `check`'s error with a label and the run's details.
    /// With `PLUGJAIL_TEST_VERBOSE=1`, every checked run is printed (run the tests with
    /// `--nocapture` to see why a passing test passes).
    pub fn check(&mut self, label: &str, run: &Run, check: Result<(), String>) {
        if std::env::var_os("PLUGJAIL_TEST_VERBOSE").is_some_and(|v| v == "1") {
            let verdict = match (run.outcome(), run.code()) {
                (Some(o), Some(c)) => format!("{o}, status {c}"),
                (o, c) => format!("{o:?}, status {c:?}"),
            };
            eprintln!(
                "{} {label} [{}]: {verdict}; {}",
                if check.is_ok() { "ok  " } else { "FAIL" },
                run.mode.name(),
                run.result().unwrap_or("<no result line>"),
            );
        }
        if let Err(e) = check {
            self.0.push(format!(
                "{label} [{}]: {e}\n{}",
                run.mode.name(),
                run.describe()
            ));
        }
    }

    /// Records a failure that is not about one run's output (a host check).
    pub fn fail(&mut self, message: String) {
        self.0.push(message);
    }

    pub fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} failure(s):\n\n{}",
            self.0.len(),
            self.0.join("\n")
        );
    }
}

/// Writes a test profile that `extends:` a shipped profile and adds `body` (YAML).
pub fn extend_profile(dir: &TempDir, name: &str, base: &str, body: &str) -> PathBuf {
    let text = format!(
        "version: 1\nextends: {}\n{body}",
        shipped_profile(base).display()
    );
    dir.write(&format!("{name}.yaml"), text, 0o644)
}
