//! plugjail-stub run directly, without the jail: the test harness plays both the jail (it
//! places the descriptors, sets no_new_privs and installs the profile's load-phase filter
//! before exec'ing the stub, as the jail sequence does) and the host (a `Channel` over
//! pipes, given with `--channel`). Plugins are C++ sources in tests/plugins/ and
//! examples/plugins/, built here. The serve phase is the jail's (its init switches it), so
//! it is tested through the real jail in tests/plugin_serve_phase.rs.

use std::collections::HashMap;
use std::ffi::{CString, c_char};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugjail::plugin_file;
use plugjail::profile::{self, Plugin, Profile};
use plugjail::protocol::consts::{exit_code, log_level};
use plugjail::protocol::{Channel, ChannelError, ErrorKind, ProtocolError};
use plugjail::seccomp::{SeccompPhase, SeccompProgram, compile};

/// The stub is its own crate's binary, built next to plugjail (scripts/test.sh builds both).
fn stub_exe() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_plugjail")).with_file_name("plugjail-stub")
}
const TIMEOUT: Duration = Duration::from_secs(20);

/// Where the stub finds each descriptor (the hostile channel_writer plugin relies on 4).
const CHANNEL_IN: RawFd = 3;
const CHANNEL_OUT: RawFd = 4;
const PLUGIN_FD: RawFd = 5;
const OUTPUT_FD: RawFd = 7;
/// The stub executable, for the one execveat the load filter allows.
const EXE_FD: RawFd = 200;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds `name`.cpp from tests/plugins or examples/plugins once per test process.
fn plugin(name: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    let built = built.get_or_insert_with(HashMap::new);
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let src = [
        root().join("tests/plugins"),
        root().join("examples/plugins"),
    ]
    .iter()
    .map(|d| d.join(format!("{name}.cpp")))
    .find(|p| p.exists())
    .unwrap_or_else(|| panic!("no source for plugin {name}"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-stub");
    std::fs::create_dir_all(&dir).expect("mkdir plugin dir");
    let out = dir.join(format!("{name}-{}.so", std::process::id()));
    let status = Command::new("c++")
        .args(["-std=c++17", "-O1", "-shared", "-fPIC", "-I"])
        .arg(root().join("include"))
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .status()
        .expect("run c++");
    assert!(status.success(), "building {name}: {status}");
    built.insert(name.to_string(), out.clone());
    out
}

fn shipped(name: &str) -> Profile {
    let path = root().join("profiles").join(format!("{name}.yaml"));
    profile::load(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()))
}

/// What a session is started with.
struct Setup<'a> {
    plugin: &'a str,
    /// The profile whose filters apply.
    profile: &'a str,
    /// Install the load-phase filter before exec (as the jail does).
    load: bool,
    /// Plugin stdout/stderr through a pipe the stub forwards (else the stub's default).
    output: bool,
    cap: u32,
    env: Vec<(&'static str, String)>,
}

impl<'a> Setup<'a> {
    fn new(plugin: &'a str, profile: &'a str) -> Setup<'a> {
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

#[derive(Default)]
struct Logs {
    bytes: [usize; 5],
    lines: Vec<(u32, String)>,
}

struct Session {
    child: Child,
    chan: Channel,
    logs: Arc<Mutex<Logs>>,
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
    fn start(s: &Setup) -> Session {
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

    fn hello(&mut self) -> Result<(), ChannelError> {
        self.chan.handshake(TIMEOUT).map(|_| ())
    }

    fn call(&mut self, method: &str, input: &[u8]) -> Result<Vec<u8>, ChannelError> {
        self.chan.call(method, input, TIMEOUT).map(<[u8]>::to_vec)
    }

    /// Waits for the stub to end (killing it, by pid, after the timeout).
    fn wait(mut self) -> ExitStatus {
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
    fn shutdown(self) -> ExitStatus {
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

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dummy_channel() -> Channel {
    let (r, w) = pipe();
    Channel::new(r, w, 4096).expect("dummy")
}

#[test]
fn hello_round_trip_under_the_strict_filters() {
    let mut s = Session::start(&Setup::new("hello", "strict"));
    s.hello().expect("handshake");
    let h = s.chan.hello().expect("hello").clone();
    assert_eq!((h.name.as_str(), h.version.as_str()), ("hello", "1.0.0"));
    assert_eq!(h.methods, ["greet", "echo", "fail"]);
    assert_eq!(s.call("greet", b"world").expect("greet"), b"hello, world");
    match s.call("fail", b"") {
        Err(ChannelError::Remote {
            kind: ErrorKind::Plugin,
            status: 7,
            message,
        }) => assert_eq!(message, "asked to fail"),
        other => panic!("fail: {other:?}"),
    }
    match s.call("nope", b"") {
        Err(ChannelError::Remote {
            kind: ErrorKind::UnknownMethod,
            ..
        }) => {}
        other => panic!("unknown method: {other:?}"),
    }
    assert_eq!(s.call("echo", b"still here").expect("echo"), b"still here");
    let lines = s.logs.lock().unwrap().lines.clone();
    assert!(
        lines.contains(&(log_level::INFO, "hello plugin ready".to_string())),
        "{lines:?}"
    );
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn ten_thousand_sequential_calls_return_checked_results() {
    let mut setup = Setup::new("hello", "strict");
    setup.cap = 64 << 10;
    let mut s = Session::start(&setup);
    s.hello().expect("handshake");
    for i in 0..10_000u32 {
        let input = format!("caller {i}");
        let out = s
            .chan
            .call("greet", input.as_bytes(), TIMEOUT)
            .expect("greet");
        assert_eq!(out, format!("hello, {input}").as_bytes(), "call {i}");
    }
    // The largest input that fits, echoed back; one byte more is refused on the host side
    // and the session goes on.
    let big = vec![0xa5u8; (64 << 10) - 1 - "echo".len()];
    assert_eq!(s.call("echo", &big).expect("big echo"), big);
    let too_big = vec![0u8; big.len() + 1];
    assert!(matches!(
        s.call("echo", &too_big),
        Err(ChannelError::InputTooLarge { .. })
    ));
    // Output over the cap: "hello, " + a maximal input is one byte too long.
    let long_name = vec![b'n'; (64 << 10) - 1 - "greet".len()];
    match s.call("greet", &long_name) {
        Err(ChannelError::Remote {
            kind: ErrorKind::OutputTooLarge,
            ..
        }) => {}
        other => panic!("oversized output: {other:?}"),
    }
    assert_eq!(s.call("greet", b"again").expect("after"), b"hello, again");
    assert!(s.chan.read_capacity() <= 64 << 10);
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn plugin_crashes_kill_the_stub_with_their_signal_and_the_next_session_works() {
    for (method, signal) in [
        ("segv", libc::SIGSEGV),
        ("abort", libc::SIGABRT),
        ("throw", libc::SIGABRT),
    ] {
        let mut s = Session::start(&Setup::new("crash", "default"));
        s.hello().expect("handshake");
        match s.call(method, b"") {
            Err(ChannelError::Closed) => {}
            other => panic!("{method}: {other:?}"),
        }
        assert_eq!(s.wait().signal(), Some(signal), "{method}");
    }
    let mut s = Session::start(&Setup::new("hello", "default"));
    s.hello().expect("handshake after crashes");
    assert_eq!(
        s.call("greet", b"survivor").expect("greet"),
        b"hello, survivor"
    );
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn bytes_written_to_the_channel_by_the_plugin_are_protocol_violations() {
    let cap = 64 << 10;
    type Check = fn(&ProtocolError) -> bool;
    let cases: [(&str, Check); 5] = [
        ("garbage", |e| {
            matches!(e, ProtocolError::UnknownType { .. })
        }),
        ("huge_length", |e| {
            matches!(e, ProtocolError::TooLarge { len: u32::MAX, .. })
        }),
        ("half_frame", |e| {
            matches!(e, ProtocolError::Truncated { got: 26, want: 116 })
        }),
        ("second_hello", |e| {
            matches!(e, ProtocolError::Unexpected { frame: "HELLO", .. })
        }),
        ("wrong_id", |e| {
            matches!(
                e,
                ProtocolError::WrongId {
                    got: 999,
                    want: 1,
                    ..
                }
            )
        }),
    ];
    for (method, expected) in cases {
        let mut setup = Setup::new("channel_writer", "default");
        setup.cap = cap;
        let mut s = Session::start(&setup);
        s.hello().expect("handshake");
        match s.call(method, b"") {
            Err(ChannelError::Protocol(e)) => assert!(expected(&e), "{method}: {e}"),
            other => panic!("{method}: {other:?}"),
        }
        assert!(
            s.chan.read_capacity() <= cap as usize,
            "{method}: read buffer grew to {}",
            s.chan.read_capacity()
        );
        // The channel refuses to go on once the stream is out of step.
        assert!(matches!(s.call(method, b""), Err(ChannelError::Broken)));
        s.kill();
    }
}

#[test]
fn wrong_abi_version_is_refused_before_init_or_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("ran");
    let mut setup = Setup::new("wrong_abi", "strict");
    setup.env.push((
        "PLUGJAIL_TEST_MARKER",
        marker.to_string_lossy().into_owned(),
    ));
    let mut s = Session::start(&setup);
    match s.hello() {
        Err(ChannelError::Startup {
            kind: ErrorKind::AbiMismatch,
            message,
            ..
        }) => assert!(message.contains("ABI version 999"), "{message}"),
        other => panic!("wrong ABI: {other:?}"),
    }
    assert_eq!(s.wait().code(), Some(exit_code::ABI_MISMATCH));
    assert!(!marker.exists(), "the plugin's init or call ran");
}

#[test]
fn forbidden_syscall_in_a_constructor_is_killed_by_the_load_filter() {
    let mut s = Session::start(&Setup::new("ctor_socket", "default"));
    assert!(matches!(s.hello(), Err(ChannelError::Closed)));
    assert_eq!(s.wait().signal(), Some(libc::SIGSYS));
}

#[test]
fn a_noisy_plugin_cannot_flood_the_host() {
    for output in [true, false] {
        let mut setup = Setup::new("noisy", "default");
        setup.output = output;
        let mut s = Session::start(&setup);
        s.hello().expect("handshake");
        assert_eq!(s.call("flood", b"").expect("flood"), b"done");
        assert_eq!(s.call("flood", b"").expect("flood again"), b"done");
        let logs = s.logs.lock().unwrap();
        let total: usize = logs.bytes.iter().sum();
        // Two calls: each at most the log budget plus the output budget, plus notes.
        let bound = 2
            * (plugjail::protocol::consts::LOG_BUDGET + plugjail::protocol::consts::OUTPUT_BUDGET)
            + (64 << 10);
        assert!(total <= bound, "output={output}: {total} bytes of LOG");
        assert!(logs.bytes[log_level::DEBUG as usize] > 0);
        if output {
            // 16 MiB were written; what did not fit in the non-blocking pipe was refused
            // to the plugin (EAGAIN), the rest forwarded within the budget.
            let out = logs.bytes[log_level::OUTPUT as usize];
            // Written during both calls (init printed one short line), so forwarded after
            // each: the stub learns of it from its SIGURG notification, and more than one
            // call's budget arrives only if the second call's output was noticed too.
            assert!(
                out > plugjail::protocol::consts::OUTPUT_BUDGET + 4096,
                "stdout of both calls forwarded: {out} bytes"
            );
            assert!(
                out <= 3 * plugjail::protocol::consts::OUTPUT_BUDGET,
                "{out} bytes of output"
            );
        } else {
            assert_eq!(logs.bytes[log_level::OUTPUT as usize], 0);
        }
        assert!(
            logs.lines
                .iter()
                .any(|(_, l)| l.contains("plugin log dropped"))
        );
        drop(logs);
        assert!(s.chan.read_capacity() <= 1 << 20);
        assert_eq!(s.shutdown().code(), Some(exit_code::OK));
    }
}

#[test]
fn a_plugin_outside_the_allowlist_never_reaches_the_stub() {
    let so = plugin("hello");
    let e = plugin_file::load(
        &so,
        &Plugin {
            sha256: vec!["0".repeat(64)],
        },
    )
    .unwrap_err();
    assert!(e.is_rejection(), "{e}");
}

#[test]
fn csv2json_converts_and_reports_errors_under_the_strict_filters() {
    let mut s = Session::start(&Setup::new("csv2json", "strict"));
    s.hello().expect("handshake");
    let csv = b"name,quote\r\nada,\"says \"\"hi\"\", twice\"\nbob,\"two\nlines\"\n";
    let json = s.call("convert", csv).expect("convert");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(
        v,
        serde_json::json!([
            {"name": "ada", "quote": "says \"hi\", twice"},
            {"name": "bob", "quote": "two\nlines"},
        ])
    );
    assert_eq!(
        s.call("validate", csv).expect("validate"),
        br#"{"rows":2,"columns":2}"#
    );
    for (bad, says) in [
        (&b"a,b\n1,2,3\n"[..], "line 2: 3 fields, the header has 2"),
        (b"a,a\n", "a column name appears twice"),
        (b"a\n\"open\n", "a quoted field is never closed"),
        (b"a\n\xff\n", "not UTF-8"),
        (b"", "no header row"),
    ] {
        match s.call("convert", bad) {
            Err(ChannelError::Remote {
                kind: ErrorKind::Plugin,
                message,
                ..
            }) => assert!(message.contains(says), "{message:?} lacks {says:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // A big document, streamed out in chunks, stays correct.
    let mut big = b"id,text\n".to_vec();
    for i in 0..20_000 {
        big.extend_from_slice(format!("{i},\"row {i}, with a comma\"\n").as_bytes());
    }
    let json = s.call("convert", &big).expect("big convert");
    let v: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(20_000));
    assert_eq!(v[19_999]["text"], "row 19999, with a comma");
    assert_eq!(s.shutdown().code(), Some(exit_code::OK));
}

#[test]
fn a_hanging_call_ends_at_the_host_deadline() {
    let mut s = Session::start(&Setup::new("crash", "default"));
    s.hello().expect("handshake");
    let t = Instant::now();
    match s.chan.call("hang", b"", Duration::from_millis(300)) {
        Err(ChannelError::Timeout { .. }) => {}
        other => panic!("hang: {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(matches!(s.call("segv", b""), Err(ChannelError::Broken)));
    s.kill();
}
