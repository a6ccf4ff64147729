//! Plugin mode: `plugjail-stub` in the jail, hosting one plugin, the host on the channel.
//!
//! The stub runs exactly like `plugjail exec`'s program — copied into a sealed memfd above
//! the jail's open-files limit, exec'd as the last step of the jail sequence — with the
//! descriptors it needs placed at fixed numbers (`Plan::place_fd`):
//!
//! | jail fd | what |
//! |---|---|
//! | 0 | the plugin's memfd again (stdin reads end of file) |
//! | 1, 2 | write end of the output pipe: the plugin's stdout/stderr, forwarded as LOG |
//! | 3, 4 | the channel (frames from the host, frames to the host): held by the jail's init only, and sent to the stub when it asks (the switch, `jail/handover.rs`) |
//! | 5 | the verified plugin, a sealed memfd (dlopened as /proc/self/fd/5) |
//! | 6 | the stub's end of the socket the channel arrives through |
//! | 7 | read end of the output pipe |
//! | 8 | the watch page (`watch`) |
//! | 9 | the host's shared-memory region, with `serve --shm-fd` ([`shm`]) |
//!
//! The serve phase is the jail's serve gate (`seccomp/gate.rs`), installed before the stub
//! exists and switched by the init: the stub itself installs nothing.
//!
//! - `watch`: the shared page behind `limits.call_time` and `limits.idle_time`;
//! - [`serve`]: `plugjail serve`, the helper host applications spawn;
//! - [`call`]: `plugjail call`, one call from a shell or CI;
//! - [`control`]: serve's `--control-fd`, pausing and resuming the jail;
//! - [`cpus`]: serve's `--cpus`, pinning the jail to CPUs;
//! - `outcome`: the plugin-mode reading of a run (stub exit codes, exit statuses).

pub mod call;
pub mod control;
pub mod cpus;
pub(crate) mod outcome;
pub mod serve;
pub mod shm;
pub(crate) mod watch;

use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::jail::{self, GateAction, Plan, PlanError, TargetError};
use crate::plugin_file::{self, PluginFileError};
use crate::profile::{Action, Level, Profile};
use crate::seccomp::{self, SeccompError};
use watch::{WatchError, Watcher};

/// The channel's numbers in the jail's init, which hands them to the stub at its switch.
const JAIL_CHANNEL_IN: i32 = 3;
const JAIL_CHANNEL_OUT: i32 = 4;
const JAIL_PLUGIN: i32 = 5;
/// The stub's end of the handshake socket: `recvmsg` on it is the switch.
const JAIL_SWITCH: i32 = 6;
const JAIL_OUTPUT: i32 = 7;
const JAIL_WATCH: i32 = 8;
const JAIL_SHM: i32 = crate::protocol::shm::JAIL_FD;

/// The stub's file name, looked up next to the running plugjail, then in the installed
/// layout's libexec directory ([`stub_candidates`]).
const STUB_NAME: &str = "plugjail-stub";

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "plugjail-stub is missing: looked for {looked}; it is built next to the plugjail \
         executable (cargo build --bins) and installed in PREFIX/libexec/plugjail \
         (docs/install.md)"
    )]
    StubMissing { looked: String },
    #[error("cannot locate the running plugjail executable: {source}")]
    CurrentExe { source: std::io::Error },
    #[error(transparent)]
    Stub(TargetError),
    #[error(transparent)]
    Plugin(#[from] PluginFileError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error("the serve phase: {0}")]
    ServeFilter(SeccompError),
    #[error(transparent)]
    Watch(#[from] WatchError),
    #[error("pipe2 for the plugin's output: {source}")]
    Pipe { source: std::io::Error },
}

impl PrepareError {
    /// The verdict's step name.
    pub fn step(&self) -> &'static str {
        match self {
            PrepareError::StubMissing { .. }
            | PrepareError::CurrentExe { .. }
            | PrepareError::Stub(_) => "open_stub",
            PrepareError::Plugin(_) => "open_plugin",
            PrepareError::Plan(_) => "plan",
            PrepareError::ServeFilter(_) => "serve_filter",
            PrepareError::Watch(_) => "watch_page",
            PrepareError::Pipe { .. } => "pipe",
        }
    }

    /// True when the plugin itself is refused (`plugin_rejected`), not the setup.
    pub fn is_rejection(&self) -> bool {
        matches!(self, PrepareError::Plugin(e) if e.is_rejection())
    }
}

/// What was verified about the plugin, for the verdict.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PluginInfo {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
}

/// A plugin jail ready to start.
#[derive(Debug)]
pub struct PluginJail {
    pub plan: Plan,
    pub watcher: Watcher,
    pub plugin: PluginInfo,
    /// The serve gate, for the verdict (reported only if it was in force).
    pub serve_filter: Option<crate::verdict::SeccompReport>,
    /// The stub that was copied into the memfd.
    pub stub: PathBuf,
}

/// The allow rule added to the profile's load phase when the jail runs the stub, so the
/// stub can ask for its channel: exactly `recvmsg(socket, ..)`. The jail's serve gate stops
/// that call for the init, which decides the switch; a plugin making it early only starts
/// its serve phase early.
pub fn load_phase_rules(socket: i32) -> Vec<crate::profile::Rule> {
    use crate::profile::{ArgCondition, CmpOp, Rule};
    let eq = |index, value| ArgCondition {
        index,
        op: CmpOp::Eq,
        value,
        mask: None,
    };
    vec![Rule {
        syscalls: vec!["recvmsg".to_string()],
        args: vec![eq(0, u64::from(socket.unsigned_abs()))],
        comment: Some("plugjail-stub asks for its channel (the switch)".to_string()),
    }]
}

/// The serve gate for `profile`, when it has a serve phase to enforce: seccomp in the plan,
/// a serve phase narrower than the load phase, and a default action that refuses (`log`
/// refuses nothing, in either phase).
fn serve_gate(profile: &Profile, plan: &Plan) -> Result<Option<jail::Gate>, PrepareError> {
    let s = &profile.seccomp;
    let action = match s.default_action {
        _ if plan.seccomp.is_none() || s.serve == s.load => return Ok(None),
        Action::Log => return Ok(None),
        Action::KillProcess => GateAction::Kill,
        Action::Errno => GateAction::Errno(s.errno.abs()),
        Action::Trap => GateAction::Trap,
    };
    Ok(Some(jail::Gate {
        program: seccomp::compile_gate(s, JAIL_SWITCH).map_err(PrepareError::ServeFilter)?,
        action,
        required: profile.enforcement.seccomp == Level::Required,
    }))
}

/// Where plugjail looks for its stub, in order, given the directory of the running
/// executable: next to it (a cargo build: target/debug/), then the installed layout's
/// `../libexec/plugjail/` (PREFIX/bin/plugjail → PREFIX/libexec/plugjail/plugjail-stub;
/// docs/install.md). The executable's path is the kernel's (/proc/self/exe), with
/// symlinks resolved, so a symlink to an installed plugjail still finds its own stub.
fn stub_candidates(exe_dir: &Path) -> [PathBuf; 2] {
    let prefix = exe_dir.parent().unwrap_or(exe_dir);
    [
        exe_dir.join(STUB_NAME),
        prefix.join("libexec/plugjail").join(STUB_NAME),
    ]
}

/// The first of [`stub_candidates`] that is a file.
fn stub_path() -> Result<PathBuf, PrepareError> {
    let exe = std::env::current_exe().map_err(|source| PrepareError::CurrentExe { source })?;
    let candidates = stub_candidates(exe.parent().unwrap_or(Path::new("/")));
    match candidates.iter().find(|p| p.is_file()) {
        Some(p) => Ok(p.clone()),
        None => Err(PrepareError::StubMissing {
            looked: candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" and "),
        }),
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), PrepareError> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(PrepareError::Pipe {
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    Ok((r, w))
}

/// Verifies the plugin, opens the stub, and plans the jail around them with the channel
/// (`channel_in`: frames from the host; `channel_out`: frames to the host) and, for
/// shared-memory calls, the host's region (`shm`).
pub fn prepare(
    profile: &Profile,
    plugin: &Path,
    channel_in: BorrowedFd<'_>,
    channel_out: BorrowedFd<'_>,
    shm: Option<BorrowedFd<'_>>,
) -> Result<PluginJail, PrepareError> {
    // The plugin first: a refused plugin means nothing else is even looked at.
    let verified = plugin_file::load(plugin, &profile.plugin)?;
    crate::timing::mark("plugin");
    let stub = stub_path()?;
    let target = jail::target::open(stub.as_os_str()).map_err(PrepareError::Stub)?;
    crate::timing::mark("stub");
    // The load phase must let the stub ask for its channel (the switch).
    let mut load_profile = profile.clone();
    load_profile
        .seccomp
        .load
        .allow
        .extend(load_phase_rules(JAIL_SWITCH));
    let max_message = u32::try_from(profile.limits.max_message).unwrap_or(u32::MAX);
    let mut argv: Vec<OsString> = vec![
        STUB_NAME.into(),
        "--channel-socket".into(),
        JAIL_SWITCH.to_string().into(),
        "--plugin-fd".into(),
        JAIL_PLUGIN.to_string().into(),
        "--output-fd".into(),
        JAIL_OUTPUT.to_string().into(),
        "--watch-fd".into(),
        JAIL_WATCH.to_string().into(),
        "--max-message".into(),
        max_message.to_string().into(),
    ];
    if shm.is_some() {
        argv.extend(["--shm-fd".into(), JAIL_SHM.to_string().into()]);
    }
    let mut plan = jail::build(&load_profile, target, &[], |n| std::env::var_os(n))?;
    crate::timing::mark("plan");
    let gate = serve_gate(profile, &plan)?;
    crate::timing::mark("gate");
    // Naming is known once the jail ran; outcome.rs reports the gate only if it was in force.
    let serve_filter = gate.as_ref().map(|g| {
        crate::supervise::seccomp_report(&g.program, profile.seccomp.default_action, "ptrace")
    });
    plan.handover = Some(jail::Handover {
        fds: [JAIL_CHANNEL_IN, JAIL_CHANNEL_OUT],
        socket: JAIL_SWITCH,
        gate,
    });
    plan.argv = jail::plan::CStringArray::new(
        argv.iter()
            .map(|a| std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(a.as_os_str())))
            .collect::<Result<_, _>>()
            .map_err(|_| PlanError::Nul {
                what: "an argument",
            })?,
    );
    // The stub used to size these itself; the pipes are the same objects on both sides.
    let frame = max_message as usize + crate::protocol::consts::HEADER_LEN;
    for fd in [&channel_in, &channel_out] {
        crate::protocol::channel::size_pipe(fd.as_raw_fd(), frame);
    }
    let watcher = Watcher::new(profile.limits.call_time, profile.limits.idle_time)?;
    let (out_r, out_w) = pipe()?;
    let memfd = verified.memfd.as_fd();
    let places: [(BorrowedFd<'_>, i32); 8] = [
        (memfd, 0),
        (out_w.as_fd(), 1),
        (out_w.as_fd(), 2),
        (channel_in, JAIL_CHANNEL_IN),
        (channel_out, JAIL_CHANNEL_OUT),
        (memfd, JAIL_PLUGIN),
        (out_r.as_fd(), JAIL_OUTPUT),
        (watcher.memfd().as_fd(), JAIL_WATCH),
    ];
    for (fd, target) in places.into_iter().chain(shm.map(|fd| (fd, JAIL_SHM))) {
        plan.place_fd(fd, target)?;
    }
    Ok(PluginJail {
        plan,
        watcher,
        plugin: PluginInfo {
            path: plugin.to_path_buf(),
            sha256: verified.sha256,
            bytes: verified.len,
        },
        serve_filter,
        stub,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_is_looked_for_next_to_the_executable_then_in_libexec() {
        assert_eq!(
            stub_candidates(Path::new("/opt/pj/bin")),
            [
                PathBuf::from("/opt/pj/bin/plugjail-stub"),
                PathBuf::from("/opt/pj/libexec/plugjail/plugjail-stub"),
            ]
        );
        // An executable in / has no parent directory to go up to.
        assert_eq!(
            stub_candidates(Path::new("/"))[1],
            PathBuf::from("/libexec/plugjail/plugjail-stub")
        );
    }
}
