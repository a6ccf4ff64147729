//! tests/plugin_stub.rs's harness: plugjail-stub run directly, without the jail, with the
//! test playing the jail (descriptors, no_new_privs, the profile's load filter, then exec)
//! and the host (a `Channel` over pipes). [`Session::start`] starts one stub for a
//! [`Setup`].

use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugjail::plugin_file;
use plugjail::profile::{self, Plugin, Profile};
use plugjail::protocol::consts::log_level;
use plugjail::protocol::{Channel, ChannelError};
use plugjail::seccomp::{SeccompPhase, SeccompProgram, compile};

use super::{manifest_dir, plugin};

/// The stub is its own crate's binary, built next to plugjail (scripts/test.sh builds both).
fn stub_exe() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_plugjail")).with_file_name("plugjail-stub")
}
/// How long the harness waits for the stub: a handshake, a call, its exit.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Where the stub finds each descriptor (the hostile channel_writer plugin relies on 4).
const CHANNEL_IN: RawFd = 3;
const CHANNEL_OUT: RawFd = 4;
const PLUGIN_FD: RawFd = 5;
const OUTPUT_FD: RawFd = 7;
/// The stub executable, for the one execveat the load filter allows.
const EXE_FD: RawFd = 200;

fn shipped(name: &str) -> Profile {
    let path = manifest_dir().join("profiles").join(format!("{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// What a session is started with.
pub struct Setup<'a> {
    pub plugin: &'a str,
    /// The profile whose filters apply.
    pub profile: &'a str,
    /// Install the load-phase filter before exec (as the jail does).
    pub load: bool,
    /// Plugin stdout/stderr through a pipe the stub forwards (else the stub's default).
    pub output: bool,
    pub cap: u32,
    pub env: Vec<(&'static str, String)>,
}

impl<'a> Setup<'a> {
    pub fn new(plugin: &'a str, profile: &'a str) -> Setup<'a> {
        Setup {
            plugin,
            profile,
            load: true,
            output: true,
            cap: 1 << 20,
            env: Vec::new(),
        }
    }
}

/// What the stub sent as LOG frames: bytes per level, and the first lines (every WARN).
#[derive(Default)]
pub struct Logs {
    pub bytes: [usize; 5],
    pub lines: Vec<(u32, String)>,
}

/// One stub started by the harness, and the host's end of its channel.
pub struct Session {
    child: Child,
    pub chan: Channel,
    pub logs: Arc<Mutex<Logs>>,
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2");
    // SAFETY: pipe2 just created fds[0]; this is its only owner.
    let r = unsafe { OwnedFd::from_raw_fd(fds[0]) };
    // SAFETY: likewise fds[1].
    let w = unsafe { OwnedFd::from_raw_fd(fds[1]) };
    (r, w)
}

/// The exec arguments, prepared before fork (the pre_exec hook may not allocate).
struct ExecArgs {
    _strings: Vec<CString>,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
}
// SAFETY: the pointers refer to `_strings`, owned by the same value and never mutated.
unsafe impl Send for ExecArgs {}
// SAFETY: as above; only read.
unsafe impl Sync for ExecArgs {}

/// The body of [`Session::start`]'s `pre_exec` hook: the descriptors in place,
/// no_new_privs, and with a load filter, that filter and the exec of the stub (as the
/// jail does: the filter allows exactly that exec). Raw syscalls only, no allocation.
fn stub_hook(
    moves: &[(RawFd, RawFd)],
    load: Option<&SeccompProgram>,
    exec: &ExecArgs,
) -> std::io::Result<()> {
    let mut tmp = [0; 8];
    // Two passes, so that no target number overwrites a source still needed.
    for (i, &(src, _)) in moves.iter().enumerate() {
        // SAFETY: integer fcntl, no memory passed. `src` is open here: the child's
        // descriptor table is a copy of the parent's, which holds every source until
        // spawn returns.
        tmp[i] = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 500) };
        if tmp[i] < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    for (i, &(_, dst)) in moves.iter().enumerate() {
        // SAFETY: no memory passed; it replaces whatever this child had at `dst`, and the
        // child execs next, so nothing here uses that descriptor again.
        if unsafe { libc::dup2(tmp[i], dst) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: PR_SET_NO_NEW_PRIVS takes integers only; no memory is passed.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if let Some(load) = load {
        load.install()
            .map_err(|e| std::io::Error::from_raw_os_error(e as i32))?;
        // SAFETY: `exec.argv` and `exec.envp` are NULL-terminated arrays of pointers into
        // `exec`'s own C strings, all alive for the call; the path is a static C string.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                EXE_FD,
                c"".as_ptr(),
                exec.argv.as_ptr(),
                exec.envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl Session {
    pub fn start(s: &Setup) -> Session {
        let prof = shipped(s.profile);
        let so = plugin(s.plugin);
        let verified = plugin_file::load(&so, &Plugin { sha256: vec![] }).expect("load plugin");
        let (to_stub_r, to_stub_w) = pipe();
        let (from_stub_r, from_stub_w) = pipe();
        let (out_r, out_w) = pipe();
        // With --channel the stub needs nothing beyond the profile's load phase.
        let load: Option<SeccompProgram> = s.load.then(|| {
            compile(&prof.seccomp, SeccompPhase::Load, Some(EXE_FD)).expect("load filter")
        });
        let exe = std::fs::File::open(stub_exe()).expect("open stub");

        let mut args = vec![
            "--channel".to_string(),
            format!("{CHANNEL_IN},{CHANNEL_OUT}"),
            "--plugin-fd".into(),
            PLUGIN_FD.to_string(),
            "--max-message".into(),
            s.cap.to_string(),
        ];
        if s.output {
            args.extend(["--output-fd".into(), OUTPUT_FD.to_string()]);
        }
        let mut strings: Vec<CString> = std::iter::once("plugjail-stub".to_string())
            .chain(args.iter().cloned())
            .map(|a| CString::new(a).expect("arg"))
            .collect();
        let argc = strings.len();
        strings.extend(
            s.env
                .iter()
                .map(|(k, v)| CString::new(format!("{k}={v}")).expect("env")),
        );
        let mut argv: Vec<*const c_char> = strings[..argc].iter().map(|c| c.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const c_char> = strings[argc..].iter().map(|c| c.as_ptr()).collect();
        envp.push(std::ptr::null());
        let exec = ExecArgs {
            _strings: strings,
            argv,
            envp,
        };

        // (source in this process, number in the stub)
        let mut moves = vec![
            (to_stub_r.as_raw_fd(), CHANNEL_IN),
            (from_stub_w.as_raw_fd(), CHANNEL_OUT),
            (verified.memfd.as_raw_fd(), PLUGIN_FD),
            (exe.as_raw_fd(), EXE_FD),
        ];
        if s.output {
            moves.extend([
                (out_r.as_raw_fd(), OUTPUT_FD),
                (out_w.as_raw_fd(), 1),
                (out_w.as_raw_fd(), 2),
            ]);
        }
        let mut cmd = Command::new(stub_exe());
        cmd.args(&args)
            .env_clear()
            .envs(s.env.iter().map(|(k, v)| (k, v)));
        // SAFETY: the hook runs in the child between fork and exec of this multi-threaded
        // test process: `stub_hook` makes only raw syscalls (fcntl, dup2, prctl, seccomp,
        // execveat) on data prepared before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                // Capture the whole ExecArgs (Send), not just its pointer fields.
                let exec = &exec;
                stub_hook(&moves, load.as_ref(), exec)
            });
        }
        let child = cmd.spawn().expect("spawn stub");
        drop((to_stub_r, from_stub_w, out_r, out_w, verified, exe));
        let mut chan = Channel::new(from_stub_r, to_stub_w, u64::from(s.cap)).expect("channel");
        let logs = Arc::new(Mutex::new(Logs::default()));
        let sink = logs.clone();
        chan.set_log_handler(Box::new(move |level, text| {
            let mut l = sink.lock().unwrap();
            l.bytes[level as usize] += text.len();
            // Keep the stub's notes (WARN) and the first few of everything else.
            if level == log_level::WARN || l.lines.len() < 20 {
                l.lines
                    .push((level, String::from_utf8_lossy(text).into_owned()));
            }
        }));
        Session { child, chan, logs }
    }

    pub fn hello(&mut self) -> Result<(), ChannelError> {
        self.chan.handshake(TIMEOUT).map(|_| ())
    }

    pub fn call(&mut self, method: &str, input: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.chan.call(method, input, TIMEOUT).map(<[u8]>::to_vec)
    }

    /// Waits for the stub to end (killing it, by pid, after the timeout).
    pub fn wait(mut self) -> ExitStatus {
        drop(self.chan);
        let end = Instant::now() + TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().expect("wait") {
                return st;
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!("stub did not exit: {:?}", self.child.wait());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Sends SHUTDOWN and returns the exit status.
    pub fn shutdown(self) -> ExitStatus {
        let Session {
            child, chan, logs, ..
        } = self;
        chan.shutdown();
        let s = Session {
            child,
            chan: dummy_channel(),
            logs,
        };
        s.wait()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dummy_channel() -> Channel {
    let (r, w) = pipe();
    Channel::new(r, w, 4096).expect("dummy")
}
