//! plugjail-stub: the program the jail execs last. It hosts one plugin and answers the
//! host's calls over the channel (docs/protocol.md).
//!
//! The sequence, all inside the jail's load-phase seccomp filter:
//! 1. parse the descriptor numbers (args); ignore SIGPIPE so a vanished host is an EPIPE
//!    and a clean exit, not a signal the verdict would blame on the plugin;
//! 2. point stdio somewhere bounded (see `stdio`); map the watch page;
//! 3. dlopen the plugin from its memfd, check ABI version, struct size and description;
//! 4. run init();
//! 5. the switch: ask for the channel (`recvmsg` on the channel socket). The jail's init
//!    answers it, and from that moment the jail is in the serve phase, enforced by the
//!    init and the jail's serve gate, not by anything in this process (docs/architecture.md,
//!    "The serve phase"). Whatever the plugin did in 3–4 cannot move this: without the
//!    switch there is no channel, and no host ever talks to a plugin still loading;
//! 6. forward what init printed, send HELLO (or the load failure as ERROR), then serve
//!    CALLs until SHUTDOWN or the host closes the channel.
//!
//! A failure in 3–4 is reported after the switch as an ERROR frame with call id 0 and a
//! distinct exit code (`protocol::consts::exit_code`); the plugin's call() never runs. A
//! crash of the plugin kills the stub with the signal: that is the `signaled` verdict, as
//! intended.
//!
//! The binary skips Rust's runtime start-up (`#![no_main]`): it polls fds 0–2, which the
//! strict profile's load phase does not allow.

mod args;
pub(crate) mod plugin;
mod serve;
mod serve_shm;
pub mod sink;

use std::ffi::{CStr, c_char, c_int};
use std::os::fd::RawFd;

use plugjail_protocol::consts::{ErrorKind, exit_code};
use plugjail_protocol::frame::FrameWriter;
use plugjail_protocol::payload;

use args::{Channel, Command};

/// The C `main` of plugjail-stub.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as the kernel provides.
pub unsafe fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let argc = usize::try_from(argc).unwrap_or(0);
    let argv: Vec<&CStr> = (1..argc)
        .map(|i| {
            // SAFETY: i < argc, and the caller guarantees argv has argc entries.
            let slot = unsafe { argv.add(i) };
            // SAFETY: `slot` is one of those entries, initialised by the kernel.
            let arg = unsafe { *slot };
            // SAFETY: the caller guarantees every entry is a NUL-terminated string, which
            // the kernel keeps for the life of the process.
            unsafe { CStr::from_ptr(arg) }
        })
        .collect();
    let args = match args::parse(argv) {
        Ok(Command::Version) => {
            let v = concat!("plugjail-stub ", env!("CARGO_PKG_VERSION"), "\n");
            write_fd(1, v.as_bytes());
            return exit_code::OK;
        }
        Ok(Command::Serve(a)) => a,
        Err(e) => {
            write_fd(2, format!("plugjail-stub: {e}\n").as_bytes());
            return exit_code::USAGE;
        }
    };
    run(&args)
}

fn run(a: &args::Args) -> c_int {
    // SAFETY: setting a signal disposition to SIG_IGN has no memory effects.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let cap = a.max_message;
    sink::init(cap);
    if let Channel::Fds { output, .. } = a.channel {
        let _ = sink::connect(output);
    }
    stdio(a);
    // Mapped before the plugin exists, and the descriptor closed: the plugin never holds
    // it (it could only reach the mapping, see plugin_mode::watch).
    let watch = match a.watch_fd.map(plugjail_protocol::watch::StubPage::map) {
        None => None,
        Some(Ok(page)) => Some(page),
        Some(Err(e)) => {
            write_fd(2, format!("plugjail-stub: {e}\n").as_bytes());
            return exit_code::USAGE;
        }
    };
    if let Some(fd) = a.watch_fd {
        close(fd);
    }
    // The shared-memory region likewise: mapped now, its descriptor closed, so the plugin
    // holds a mapping of it at most, never the file (docs/protocol.md).
    let ring = match a.shm_fd.map(plugjail_protocol::shm::StubRing::map) {
        None => None,
        Some(Ok(ring)) => Some(ring),
        Some(Err(e)) => {
            write_fd(2, format!("plugjail-stub: {e}\n").as_bytes());
            return exit_code::USAGE;
        }
    };
    if let Some(fd) = a.shm_fd {
        close(fd);
    }

    let loaded = load_and_init(a, u64::from(cap));

    // The switch: from here on the jail serves (when the init enforces it).
    let channel_in = match a.channel {
        Channel::Fds { input, .. } => input,
        Channel::Socket(socket) => match receive_channel(socket) {
            Ok((input, output)) => {
                if sink::connect(output).is_err() {
                    return exit_code::CHANNEL;
                }
                input
            }
            Err(_) => return exit_code::CHANNEL,
        },
    };
    let mut out_buf = [0u8; 4096];
    if let Some(fd) = a.output_fd {
        sink::drain_output(fd, &mut out_buf);
    }
    let plugin = match loaded {
        Ok(p) => p,
        Err(f) => return startup_failure(a, f.kind, f.status, &f.message, f.code),
    };

    let mut w = FrameWriter::new(cap);
    let hello = payload::write_hello(
        &mut w,
        plugin.name,
        plugin.version,
        plugin.listed.iter().copied(),
    );
    if hello.is_err() {
        let msg = "the plugin's name, version and methods do not fit in max_message";
        return startup_failure(a, ErrorKind::AbiMismatch, 0, msg, exit_code::ABI_MISMATCH);
    }
    if sink::send(w.finish()).is_err() {
        return exit_code::CHANNEL;
    }
    match ring {
        Some(ring) => serve_shm::serve(a, channel_in, &plugin, out_buf, watch.as_ref(), ring),
        None => serve::serve(a, channel_in, &plugin, out_buf, watch.as_ref()),
    }
}

/// Why the plugin could not be started: reported after the switch.
struct StartupFailure {
    kind: ErrorKind,
    status: i32,
    message: String,
    code: c_int,
}

/// Steps 3 and 4: dlopen, checks, init().
fn load_and_init(a: &args::Args, max_output: u64) -> Result<plugin::Plugin, StartupFailure> {
    let plugin = plugin::load(a.plugin_fd).map_err(|e| {
        let (kind, code) = match e {
            plugin::LoadError::Abi { .. } => (ErrorKind::AbiMismatch, exit_code::ABI_MISMATCH),
            _ => (ErrorKind::LoadFailed, exit_code::LOAD_FAILED),
        };
        StartupFailure {
            kind,
            status: 0,
            message: e.to_string(),
            code,
        }
    })?;
    close(a.plugin_fd);
    if let Some(init) = plugin.desc.init {
        sink::begin(0);
        // SAFETY: init as the ABI defines it; the table lives as long as the process.
        let status = unsafe { init(plugin::host_table(max_output)) };
        sink::end();
        if status != 0 {
            return Err(StartupFailure {
                kind: ErrorKind::InitFailed,
                status,
                message: format!("init of plugin {} returned {status}", plugin.name),
                code: exit_code::INIT_FAILED,
            });
        }
    }
    Ok(plugin)
}

/// The switch: one `recvmsg` on the channel socket, answered by the jail's init with the
/// channel's two descriptors (in, out). The socket is closed afterwards.
fn receive_channel(socket: RawFd) -> Result<(RawFd, RawFd), i32> {
    let received = plugjail_protocol::switch::receive_channel(socket);
    close(socket);
    received
}

/// ERROR with call id 0, then the exit code (the caller returns it).
fn startup_failure(a: &args::Args, kind: ErrorKind, status: i32, msg: &str, code: c_int) -> c_int {
    let mut w = FrameWriter::new(a.max_message);
    if payload::write_error(&mut w, 0, kind, status, msg).is_ok() {
        let _ = sink::send(w.finish());
    }
    code
}

/// Points stdio somewhere bounded before the plugin runs. With `--output-fd`, fd 1 and 2
/// are already the write end of a pipe the stub drains into LOG frames: make it
/// non-blocking so a plugin that writes more than the pipe holds loses the excess instead
/// of stalling. Without it, fd 0, 1 and 2 become the sealed plugin memfd: reads see end of
/// file, writes fail with EPERM (write seal), nothing is kept anywhere.
fn stdio(a: &args::Args) {
    if let Some(fd) = a.output_fd {
        for f in [1, fd] {
            // SAFETY: integer fcntl on a descriptor the launcher gave us; no memory.
            let fl = unsafe { libc::fcntl(f, libc::F_GETFL) };
            if fl >= 0 {
                // SAFETY: as above.
                unsafe { libc::fcntl(f, libc::F_SETFL, fl | libc::O_NONBLOCK) };
            }
        }
        sink::notify_output(fd);
        // SAFETY: dup3 onto stdin; the memfd is ours (see below for why).
        unsafe { libc::dup3(a.plugin_fd, 0, 0) };
    } else {
        for target in 0..=2 {
            // SAFETY: dup3 onto our own stdio slots; the memfd stays valid.
            unsafe { libc::dup3(a.plugin_fd, target, 0) };
        }
    }
    // The duplicates share one file offset: at the end, reads on fd 0 return EOF.
    // SAFETY: lseek on our own descriptor.
    unsafe { libc::lseek(0, 0, libc::SEEK_END) };
}

fn close(fd: RawFd) {
    // SAFETY: closing a descriptor the launcher handed to us and we no longer use.
    unsafe { libc::close(fd) };
}

fn write_fd(fd: RawFd, bytes: &[u8]) {
    // SAFETY: valid slice; a failed diagnostic write is ignored.
    unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
}
