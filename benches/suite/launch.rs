//! Starting one plugin session under each runner, and the raw-pipe floor.
//!
//! Every runner gets the same stub binary, the same plugin (sealed in a memfd, as plugjail
//! does it) and the same channel (two pipes, sized as `Channel` sizes them); only what
//! wraps the stub differs: nothing (the floor), `unshare`, `bwrap`, or plugjail's jail.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use plugjail::plugin_file;
use plugjail::profile::Plugin;
use plugjail::protocol::Channel;
use plugjail::protocol::channel::size_pipe;
use plugjail::protocol::consts::HEADER_LEN;
use plugjail::{Session, SessionOptions};

use super::BenchError;

/// Channel descriptor numbers in the stub (what the jail would place).
const CHANNEL_IN: RawFd = 3;
const CHANNEL_OUT: RawFd = 4;
const PLUGIN_FD: RawFd = 5;

pub const TIMEOUT: Duration = Duration::from_secs(20);

/// What wraps the stub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// Plain fork+exec of the stub: no isolation at all.
    Floor,
    /// The unjailed stub with the profile's serve-phase seccomp filter (a diagnostic: the
    /// cost of the filter alone on each call).
    Filtered,
    /// `unshare -Urpmnif` of the stub.
    Unshare,
    /// `bwrap --unshare-all` of the stub with a read-only root like the default profile's.
    Bwrap,
    /// plugjail with the default profile.
    Plugjail,
}

impl Runner {
    pub fn name(self) -> &'static str {
        match self {
            Runner::Floor => "floor",
            Runner::Filtered => "floor_seccomp",
            Runner::Unshare => "unshare",
            Runner::Bwrap => "bwrap",
            Runner::Plugjail => "plugjail",
        }
    }
}

/// Everything a launch needs, prepared once.
#[derive(Debug)]
pub struct Env {
    pub stub: PathBuf,
    pub plugjail: PathBuf,
    pub plugin: PathBuf,
    pub profile: PathBuf,
    /// The profile's max_message: the stub's cap and what the pipes are sized for.
    pub cap: u32,
    /// The default profile's serve-phase filter, for [`Runner::Filtered`].
    pub serve_filter: Vec<libc::sock_filter>,
}

/// A running session: the runner's process and the host end of the channel, or a
/// plugjail [`Session`] (which runs `plugjail serve` and owns its channel).
#[derive(Debug)]
pub enum Live {
    Stub {
        runner: Runner,
        child: Child,
        chan: Channel,
    },
    Plugjail {
        session: Session,
        /// `plugjail serve`, found among our children right after the spawn.
        supervisor: Option<i32>,
    },
}

impl Live {
    pub fn runner(&self) -> Runner {
        match self {
            Live::Stub { runner, .. } => *runner,
            Live::Plugjail { .. } => Runner::Plugjail,
        }
    }

    /// The runner's own process: the stub itself, unshare, bwrap, or `plugjail serve`.
    pub fn runner_pid(&self) -> Option<i32> {
        match self {
            Live::Stub { child, .. } => i32::try_from(child.id()).ok(),
            Live::Plugjail { supervisor, .. } => *supervisor,
        }
    }

    /// The process that serves the channel: the runner's deepest descendant (the plugin
    /// forks nothing), e.g. plugjail serve → the jail's init → the stub.
    pub fn stub_pid(&self) -> Option<i32> {
        deepest(self.runner_pid()?)
    }

    /// One call; `check` judges the output where it lies (no copy: `Channel::call` and
    /// `Session::call_ref` both lend it from their read buffer).
    pub fn call(
        &mut self,
        method: &str,
        input: &[u8],
        check: impl FnOnce(&[u8]) -> bool,
    ) -> Result<(), BenchError> {
        let runner = self.runner().name();
        let ok = match self {
            Live::Stub { chan, .. } => check(
                chan.call(method, input, TIMEOUT)
                    .map_err(|source| BenchError::Channel { runner, source })?,
            ),
            Live::Plugjail { session, .. } => check(
                session
                    .call_ref_with_timeout(method, input, TIMEOUT)
                    .map_err(|source| BenchError::Call { source })?,
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(BenchError::Wrong {
                runner,
                what: "call result",
            })
        }
    }

    /// Ends the session as a host would (SHUTDOWN) and reaps the runner.
    pub fn finish(self) -> Result<(), BenchError> {
        match self {
            Live::Stub {
                chan, mut child, ..
            } => {
                chan.shutdown();
                let status = child.wait().map_err(|source| BenchError::Io {
                    what: "waitpid on a runner",
                    source,
                })?;
                if !status.success() {
                    return Err(BenchError::Exit {
                        what: "a runner after SHUTDOWN",
                        status: status.to_string(),
                    });
                }
            }
            Live::Plugjail { session, .. } => {
                let v = session.close();
                if v.outcome != "ok" {
                    return Err(BenchError::Verdict {
                        outcome: v.outcome,
                        message: v.message.unwrap_or_default(),
                    });
                }
            }
        }
        Ok(())
    }
}

pub fn pipe() -> Result<(OwnedFd, OwnedFd), BenchError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(BenchError::Io {
            what: "pipe2",
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((r, w))
}

/// Starts a session under `runner` and completes the HELLO handshake.
pub fn start(env: &Env, runner: Runner) -> Result<Live, BenchError> {
    if runner == Runner::Plugjail {
        return start_plugjail(env);
    }
    let (to_stub_r, to_stub_w) = pipe()?;
    let (from_stub_r, from_stub_w) = pipe()?;
    let mut cmd = stub_command(env, runner, &to_stub_r, &from_stub_w)?;
    let child = cmd.spawn().map_err(|source| BenchError::Spawn {
        program: runner.name(),
        source,
    })?;
    drop(cmd); // closes the memfds the pre_exec hook held
    drop((to_stub_r, from_stub_w));
    let channel_error = |source| BenchError::Channel {
        runner: runner.name(),
        source,
    };
    let mut chan =
        Channel::new(from_stub_r, to_stub_w, u64::from(env.cap)).map_err(channel_error)?;
    chan.handshake(TIMEOUT).map_err(channel_error)?;
    Ok(Live::Stub {
        runner,
        child,
        chan,
    })
}

/// plugjail through its Rust host API: `Session::spawn` runs `plugjail serve` with the
/// default profile; `hello` waits for the jailed stub's HELLO.
fn start_plugjail(env: &Env) -> Result<Live, BenchError> {
    start_session(env, &env.profile, &env.plugin, None)
}

/// A plugjail session of `plugin` under `profile`, through shared memory when `shm` says
/// so (benches/suite/shm.rs).
pub fn start_session(
    env: &Env,
    profile: &Path,
    plugin: &Path,
    shm: Option<plugjail::session::ShmOptions>,
) -> Result<Live, BenchError> {
    let opts = SessionOptions {
        profile: profile.to_path_buf(),
        plugin: plugin.to_path_buf(),
        plugjail: Some(env.plugjail.clone()),
        call_timeout: Some(TIMEOUT),
        handshake_timeout: Some(TIMEOUT),
        shm,
        ..SessionOptions::default()
    };
    let mut session = Session::spawn(&opts).map_err(|source| BenchError::Session { source })?;
    let supervisor = children(std::process::id() as i32)
        .into_iter()
        .find(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == env.plugjail)
        });
    if let Err(e) = session.hello() {
        let v = session.close();
        return Err(BenchError::Verdict {
            outcome: v.outcome,
            message: format!("{e}; {}", v.message.unwrap_or_default()),
        });
    }
    Ok(Live::Plugjail {
        session,
        supervisor,
    })
}

/// The stub run directly, or under `unshare` or `bwrap`, with the descriptors in place.
fn stub_command(
    env: &Env,
    runner: Runner,
    to_stub_r: &OwnedFd,
    from_stub_w: &OwnedFd,
) -> Result<Command, BenchError> {
    let plugin = plugin_file::load(&env.plugin, &Plugin { sha256: vec![] })
        .map_err(|source| BenchError::Plugin { source })?;
    // The filtered floor: the serve phase's filter installed before exec (as in the jail,
    // where the gate is installed before the stub starts), with no jail around it.
    let filter = (runner == Runner::Filtered).then(|| env.serve_filter.clone());
    let stub_args = |exe: &str| {
        vec![
            exe.to_string(),
            "--channel".into(),
            format!("{CHANNEL_IN},{CHANNEL_OUT}"),
            "--plugin-fd".into(),
            PLUGIN_FD.to_string(),
            "--max-message".into(),
            env.cap.to_string(),
        ]
    };
    let stub = env.stub.to_string_lossy().into_owned();
    let argv: Vec<String> = match runner {
        Runner::Floor | Runner::Filtered => stub_args(&stub),
        Runner::Unshare => ["unshare", "-Urpmnif", "--"]
            .into_iter()
            .map(String::from)
            .chain(stub_args(&stub))
            .collect(),
        Runner::Bwrap => bwrap_args(&[(&env.stub, BWRAP_STUB)])
            .into_iter()
            .chain(stub_args(BWRAP_STUB))
            .collect(),
        Runner::Plugjail => unreachable!("plugjail has its own command"),
    };
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).env_clear().stdin(Stdio::null());
    let moves = vec![
        (to_stub_r.as_raw_fd(), CHANNEL_IN),
        (from_stub_w.as_raw_fd(), CHANNEL_OUT),
        (plugin.memfd.as_raw_fd(), PLUGIN_FD),
    ];
    // The closure owns the memfd, so it stays open until the command is dropped.
    let keep = plugin.memfd;
    // SAFETY: the hook runs in the child between fork and exec (this process may have
    // other threads): `stub_hook` makes only raw syscalls (fcntl, dup2, prctl, seccomp) on
    // descriptors and data prepared before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let _ = &keep;
            stub_hook(&moves, filter.as_deref())
        });
    }
    Ok(cmd)
}

/// Where bwrap's root shows the stub.
const BWRAP_STUB: &str = "/plugjail-stub";

/// A root like the default profile's: /usr and the loader cache read-only, /lib and
/// /lib64 as on the host (symlinks into /usr on merged-/usr systems), /proc, a minimal
/// /dev, a private /tmp; every namespace bwrap offers. Each (host path, place) of `binds`
/// is added read-only; the command follows the returned arguments.
pub fn bwrap_args(binds: &[(&Path, &str)]) -> Vec<String> {
    let mut a: Vec<String> = ["bwrap", "--unshare-all", "--die-with-parent"]
        .into_iter()
        .map(String::from)
        .collect();
    let mut push = |v: &[&str]| a.extend(v.iter().map(|s| s.to_string()));
    push(&["--ro-bind", "/usr", "/usr"]);
    for dir in ["/lib", "/lib64", "/bin"] {
        match std::fs::read_link(dir) {
            Ok(target) => push(&["--symlink", &target.to_string_lossy(), dir]),
            Err(_) if Path::new(dir).is_dir() => push(&["--ro-bind", dir, dir]),
            Err(_) => {}
        }
    }
    if Path::new("/etc/ld.so.cache").exists() {
        push(&["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]);
    }
    push(&["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    for (path, place) in binds {
        push(&["--ro-bind", &path.to_string_lossy(), place]);
    }
    push(&["--"]);
    a
}

/// Moves each (source, target) descriptor into place in a forked child, in two passes so
/// that no target overwrites a source still needed. Raw syscalls only.
/// The body of [`stub_command`]'s `pre_exec` hook: the descriptors in place, then
/// no_new_privs and the filter (if any). Async-signal-safe, no allocation.
fn stub_hook(
    moves: &[(RawFd, RawFd)],
    filter: Option<&[libc::sock_filter]>,
) -> std::io::Result<()> {
    place_fds(moves)?;
    // The serve filter needs no_new_privs (the jail sets it too).
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(f) = filter {
        let len = libc::c_ushort::try_from(f.len())
            .map_err(|_| std::io::Error::from_raw_os_error(libc::E2BIG))?;
        let prog = libc::sock_fprog {
            len,
            filter: f.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `f`'s `len` instructions, alive for the call; the
        // kernel copies them and writes nothing.
        if unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &prog) } != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn place_fds(moves: &[(RawFd, RawFd)]) -> std::io::Result<()> {
    let mut tmp = [0; 8];
    for (i, &(src, _)) in moves.iter().enumerate() {
        // SAFETY: fcntl on a descriptor this process holds.
        tmp[i] = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 100) };
        if tmp[i] < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (i, &(_, dst)) in moves.iter().enumerate() {
        // SAFETY: dup2 of a descriptor we hold onto a number we own in this child; the
        // result has no close-on-exec flag, so it survives the exec.
        if unsafe { libc::dup2(tmp[i], dst) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The deepest descendant of `pid` (`pid` itself if it has no child): for a runner whose
/// plugin forks nothing, the stub, e.g. plugjail serve → the jail's init → the stub.
pub fn deepest(pid: i32) -> Option<i32> {
    let mut best = None;
    let mut stack = vec![(pid, 0usize)];
    while let Some((pid, depth)) = stack.pop() {
        if best.is_none_or(|(_, d)| depth > d) {
            best = Some((pid, depth));
        }
        stack.extend(children(pid).into_iter().map(|c| (c, depth + 1)));
    }
    best.map(|(pid, _)| pid)
}

/// Every descendant of `pid`, not `pid` itself.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut stack = children(pid);
    while let Some(c) = stack.pop() {
        stack.extend(children(c));
        all.push(c);
    }
    all
}

/// Children of every thread of `pid` (a child belongs to the thread that forked it; when
/// that thread ends, to another thread of the process).
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|s| s.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Peak resident set (VmHWM) of a live process, in bytes.
pub fn peak_rss(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The raw-pipe floor: a plain `floor echo SIZE` process at the far end of two pipes sized
/// as `Channel` sizes them; a call is one write and one read of `size` bytes.
#[derive(Debug)]
pub struct Echo {
    child: Child,
    to: File,
    from: File,
    buf: Vec<u8>,
}

impl Echo {
    pub fn start(floor: &Path, size: usize, cap: u32) -> Result<Echo, BenchError> {
        let (to_r, to_w) = pipe()?;
        let (from_r, from_w) = pipe()?;
        let want = cap as usize + HEADER_LEN;
        for fd in [to_w.as_raw_fd(), from_r.as_raw_fd()] {
            size_pipe(fd, want);
        }
        let child = Command::new(floor)
            .args(["echo", &size.to_string()])
            .env_clear()
            .stdin(Stdio::from(to_r))
            .stdout(Stdio::from(from_w))
            .spawn()
            .map_err(|source| BenchError::Spawn {
                program: "floor echo",
                source,
            })?;
        Ok(Echo {
            child,
            to: File::from(to_w),
            from: File::from(from_r),
            buf: vec![0; size],
        })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn call(&mut self, msg: &[u8]) -> Result<(), BenchError> {
        let io = |source| BenchError::Io {
            what: "raw pipe ping-pong",
            source,
        };
        self.to.write_all(msg).map_err(io)?;
        self.from.read_exact(&mut self.buf).map_err(io)
    }

    pub fn finish(self) -> Result<(), BenchError> {
        let Echo { mut child, to, .. } = self;
        drop(to);
        let status = child.wait().map_err(|source| BenchError::Io {
            what: "waitpid on floor echo",
            source,
        })?;
        if status.success() {
            Ok(())
        } else {
            Err(BenchError::Exit {
                what: "floor echo",
                status: status.to_string(),
            })
        }
    }
}
