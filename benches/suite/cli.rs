//! CLI cold start: what users run. From spawning a command until the first byte of the
//! plugin's result arrives on its stdout (a pipe), for one `greet` call of the `hello`
//! plugin under the default profile: an unjailed C host (`floor call`), that host under
//! `unshare` and `bwrap`, `plugjail call`, and `plugjail exec` of that host. Measured as
//! the bench's own user (root) and as uid 65534 (rootless), interleaved round by round.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::BenchError;
use super::build::Built;
use super::launch::{TIMEOUT, bwrap_args, pipe};

/// The JSON section, also the prefix of this section's `unavailable` keys.
pub const SECTION: &str = "cli_cold_start_ms";

const METHOD: &str = "greet";
const INPUT: &str = "bench";
const OUTPUT: &[u8] = b"hello, bench";

/// The rootless mode's user and group (`nobody`/`nogroup` on Debian).
const NOBODY: u32 = 65534;

/// Whose the commands are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The bench's own user (root, when run as scripts/bench.sh asks).
    Root,
    /// uid and gid 65534 with no supplementary groups, switched to in the forked child
    /// before exec (std's `Command::uid`/`gid`: `setgroups(0)`, `setgid`, `setuid`, the
    /// credentials `setpriv --reuid=65534 --regid=65534 --clear-groups` gives, without
    /// setpriv's own exec in the timed part).
    Rootless,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Rootless => "rootless",
        }
    }
}

pub const MODES: [Mode; 2] = [Mode::Root, Mode::Rootless];

/// What runs the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contender {
    /// `floor call hello.so greet bench`: dlopen, init, one call, the result on stdout.
    Host,
    /// `unshare -Urpmnif --` of that host.
    Unshare,
    /// bwrap of that host, with the root of the session bench's bwrap and the host's
    /// directory bound read-only.
    Bwrap,
    /// `plugjail call --profile profiles/default.yaml --plugin hello.so --method greet
    /// --input -`, the input on stdin.
    PlugjailCall,
    /// `plugjail exec --profile exec.yaml -- floor call hello.so greet bench`.
    PlugjailExec,
}

impl Contender {
    pub fn name(self) -> &'static str {
        match self {
            Contender::Host => "host",
            Contender::Unshare => "unshare",
            Contender::Bwrap => "bwrap",
            Contender::PlugjailCall => "plugjail_call",
            Contender::PlugjailExec => "plugjail_exec",
        }
    }
}

pub const CONTENDERS: [Contender; 5] = [
    Contender::Host,
    Contender::Unshare,
    Contender::Bwrap,
    Contender::PlugjailCall,
    Contender::PlugjailExec,
];

/// Samples (ns) per (mode, contender) name.
pub type Samples = BTreeMap<(&'static str, &'static str), Vec<f64>>;

/// The files the commands use, in one directory every user may read and search.
#[derive(Debug)]
pub struct CliEnv {
    plugjail: PathBuf,
    /// profiles/default.yaml, for `plugjail call`.
    profile: PathBuf,
    dir: PathBuf,
    floor: PathBuf,
    plugin: PathBuf,
    /// The profile `plugjail exec` runs the host under (see [`exec_profile`]).
    exec_profile: PathBuf,
}

/// Copies the floor program and the plugin into `out/cli` (mode 0755, so that uid 65534
/// can read them; every directory above must be searchable too, or the rootless mode is
/// left out with plugjail's or the loader's error) and writes the `exec` profile there.
pub fn prepare(
    built: &Built,
    plugjail: &Path,
    profile: &Path,
    out: &Path,
) -> Result<CliEnv, BenchError> {
    let io = |what| move |source| BenchError::Io { what, source };
    let dir = out.join("cli");
    std::fs::create_dir_all(&dir).map_err(io("creating the CLI bench directory"))?;
    let mode = |path: &Path, bits| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits))
            .map_err(io("setting the CLI bench files' modes"))
    };
    mode(&dir, 0o755)?;
    let floor = dir.join("floor");
    let plugin = dir.join("hello.so");
    for (from, to) in [(&built.floor, &floor), (&built.plugin, &plugin)] {
        std::fs::copy(from, to).map_err(io("copying into the CLI bench directory"))?;
        mode(to, 0o755)?;
    }
    let exec_profile = dir.join("exec.yaml");
    std::fs::write(&exec_profile, exec_profile_text(profile, &dir))
        .map_err(io("writing the exec profile"))?;
    mode(&exec_profile, 0o644)?;
    // Each user's own cache directory ($XDG_CACHE_HOME; the environment is cleared), as a
    // user with a home has one: plugjail keeps its parsed profiles there.
    for (name, uid) in [("cache-root", None), ("cache-nobody", Some(NOBODY))] {
        let cache = dir.join(name);
        std::fs::create_dir_all(&cache).map_err(io("creating a cache directory"))?;
        mode(&cache, 0o700)?;
        std::os::unix::fs::chown(&cache, uid, uid)
            .map_err(io("handing a cache directory to its user"))?;
    }
    Ok(CliEnv {
        plugjail: plugjail.to_path_buf(),
        profile: profile.to_path_buf(),
        dir,
        floor,
        plugin,
        exec_profile,
    })
}

/// The default profile plus what `floor call` needs: its directory (the floor program and
/// the plugin) bound read-only, readable, and executable. Execute is needed for the
/// plugin, not the program: plugjail opens the program on the host and executes it from
/// that descriptor, but `dlopen` maps the plugin's code executable, which a mount outside
/// Landlock's `execute` list (mounted `noexec`) refuses.
fn exec_profile_text(base: &Path, dir: &Path) -> String {
    // A JSON string is a YAML double-quoted scalar: any path comes out quoted right.
    let quote = |p: &Path| serde_json::Value::from(p.to_string_lossy()).to_string();
    let (base, dir) = (quote(base), quote(dir));
    format!(
        "# Written by the plugjail bench (benches/suite/cli.rs, docs/performance.md).\n\
         version: 1\n\
         extends: {base}\n\
         description: \"the default profile, plus the bench's floor host and plugin\"\n\
         filesystem:\n  read_only: [{dir}]\n\
         landlock:\n  read: [{dir}]\n  execute: [{dir}]\n"
    )
}

impl CliEnv {
    fn command(&self, mode: Mode, contender: Contender) -> Command {
        let os = |s: &str| OsString::from(s);
        let host: Vec<OsString> = vec![
            self.floor.clone().into(),
            os("call"),
            self.plugin.clone().into(),
            os(METHOD),
            os(INPUT),
        ];
        let argv: Vec<OsString> = match contender {
            Contender::Host => host,
            Contender::Unshare => ["unshare", "-Urpmnif", "--"]
                .into_iter()
                .map(os)
                .chain(host)
                .collect(),
            Contender::Bwrap => {
                let dir = self.dir.to_string_lossy();
                bwrap_args(&[(&self.dir, &dir)])
                    .into_iter()
                    .map(OsString::from)
                    .chain(host)
                    .collect()
            }
            Contender::PlugjailCall => vec![
                self.plugjail.clone().into(),
                os("call"),
                os("--profile"),
                self.profile.clone().into(),
                os("--plugin"),
                self.plugin.clone().into(),
                os("--method"),
                os(METHOD),
                os("--input"),
                os("-"),
            ],
            Contender::PlugjailExec => [
                self.plugjail.clone().into(),
                os("exec"),
                os("--profile"),
                self.exec_profile.clone().into(),
                os("--"),
            ]
            .into_iter()
            .chain(host)
            .collect(),
        };
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).env_clear().current_dir(&self.dir);
        let cache = match mode {
            Mode::Root => "cache-root",
            Mode::Rootless => {
                cmd.uid(NOBODY).gid(NOBODY);
                "cache-nobody"
            }
        };
        cmd.env("XDG_CACHE_HOME", self.dir.join(cache));
        cmd
    }

    /// One cold start: the time from spawning the command to the first byte of the result
    /// on its stdout. The rest of the output, the exit and the checks are not timed.
    pub fn once(&self, mode: Mode, contender: Contender) -> Result<f64, BenchError> {
        let io = |what| move |source| BenchError::Io { what, source };
        // The input is ready before the clock starts: `plugjail call` reads it from a pipe
        // that already holds it; the host takes it as an argument.
        let stdin = if contender == Contender::PlugjailCall {
            let (r, w) = pipe()?;
            File::from(w)
                .write_all(INPUT.as_bytes())
                .map_err(io("writing plugjail call's input"))?;
            Stdio::from(r)
        } else {
            Stdio::null()
        };
        let (out_r, out_w) = pipe()?;
        let mut cmd = self.command(mode, contender);
        cmd.stdin(stdin)
            .stdout(Stdio::from(out_w))
            .stderr(Stdio::piped());
        let t0 = Instant::now();
        let mut child = cmd.spawn().map_err(|source| BenchError::Spawn {
            program: contender.name(),
            source,
        })?;
        drop(cmd); // our copy of the stdout pipe's write end: EOF when the command exits
        let mut stdout = File::from(out_r);
        let mut out = Vec::with_capacity(64);
        let first = read_some(&mut stdout, &mut out, t0 + TIMEOUT);
        let ns = t0.elapsed().as_nanos() as f64;
        let mut rest = first;
        while matches!(rest, Ok(n) if n > 0) {
            rest = read_some(&mut stdout, &mut out, t0 + TIMEOUT);
        }
        let failed = |what: String| BenchError::Cli {
            who: format!("{} as {}", contender.name(), mode.name()),
            what,
        };
        if let Err(e) = rest {
            let _ = child.kill();
            let _ = child.wait();
            return Err(failed(format!("reading its stdout: {e}")));
        }
        let status = child.wait().map_err(io("waitpid on a CLI command"))?;
        if status.success() && out == OUTPUT {
            Ok(ns)
        } else {
            Err(failed(format!(
                "{status}, stdout {:?}; stderr: {}",
                String::from_utf8_lossy(&out),
                stderr_tail(&mut child)
            )))
        }
    }
}

/// Reads what is there (waiting until `deadline` for something) and appends it to `out`;
/// 0 at end of file.
fn read_some(f: &mut File, out: &mut Vec<u8>, deadline: Instant) -> std::io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if !readable(f.as_fd(), left)? {
        return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
    }
    let mut buf = [0u8; 256];
    loop {
        match f.read(&mut buf) {
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `fd` is readable (or at end of file); false after `timeout`.
fn readable(fd: BorrowedFd, timeout: Duration) -> std::io::Result<bool> {
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `pfd` is one valid pollfd for the call's length of 1; `fd` is borrowed
        // open for the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        match n {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// The last lines of a finished command's stderr, for the reason it failed.
fn stderr_tail(child: &mut Child) -> String {
    let mut text = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// What works here, and why the rest does not.
#[derive(Debug, Default)]
pub struct Probed {
    pub usable: Vec<(Mode, Contender)>,
    /// (`cli_cold_start_ms.MODE[.CONTENDER]`, the reason)
    pub unavailable: Vec<(String, String)>,
}

/// Runs every (mode, contender) once (untimed).
pub fn probe(env: &CliEnv) -> Probed {
    let mut usable = Vec::new();
    let mut unavailable = Vec::new();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    for mode in MODES {
        if mode == Mode::Rootless && !root {
            unavailable.push((
                format!("{SECTION}.{}", mode.name()),
                format!("not root: cannot switch to uid {NOBODY}"),
            ));
            continue;
        }
        for contender in CONTENDERS {
            match env.once(mode, contender) {
                Ok(_) => usable.push((mode, contender)),
                Err(e) => unavailable.push((
                    format!("{SECTION}.{}.{}", mode.name(), contender.name()),
                    e.to_string(),
                )),
            }
        }
    }
    Probed {
        usable,
        unavailable,
    }
}

/// `warmup` untimed rounds, then `reps` rounds; each round runs every (mode, contender)
/// once, so root and rootless runs interleave, in an order shuffled round by round (a
/// fixed seed: the same orders every run). Not merely rotated: on cgroup v1 a jail's
/// cgroup attach is cheap right after another one (no RCU grace period to wait for), so a
/// fixed sequence would hand that to whichever plugjail command always follows the other.
pub fn run(
    env: &CliEnv,
    usable: &[(Mode, Contender)],
    warmup: usize,
    reps: usize,
) -> Result<Samples, BenchError> {
    let mut samples = Samples::new();
    let mut order = usable.to_vec();
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for round in 0..warmup + reps {
        shuffle(&mut order, &mut rng);
        for &(mode, contender) in &order {
            let ns = env.once(mode, contender)?;
            if round >= warmup {
                samples
                    .entry((mode.name(), contender.name()))
                    .or_default()
                    .push(ns);
            }
        }
    }
    Ok(samples)
}

/// Fisher-Yates with xorshift64 (the modulo bias is immaterial for ten items).
fn shuffle<T>(items: &mut [T], state: &mut u64) {
    for i in (1..items.len()).rev() {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let bound = u64::try_from(i + 1).unwrap_or(u64::MAX);
        let j = usize::try_from(*state % bound).unwrap_or(0);
        items.swap(i, j);
    }
}
