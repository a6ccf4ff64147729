//! plugjail-stub: the program the jail execs last. It hosts one plugin and answers the
//! host's calls over the channel (docs/protocol.md).
//!
//! The sequence, all inside the jail's load-phase seccomp filter:
//! 1. parse the descriptor numbers (args); ignore SIGPIPE so a vanished host is an EPIPE
//!    and a clean exit, not a signal the verdict would blame on the plugin;
//! 2. size the channel pipes; point stdio somewhere bounded (see [`stdio`]);
//! 3. dlopen the plugin from its memfd, check ABI version, struct size and description;
//! 4. run init(); forward what it printed;
//! 5. stack the serve-phase filter on every thread and verify it (see [`filter`]);
//! 6. send HELLO, then serve CALLs until SHUTDOWN or the host closes the channel.
//!
//! A failure in 3–5 is reported as an ERROR frame with call id 0 and a distinct exit code
//! (`protocol::consts::exit_code`); the plugin's call() never runs. A crash of the plugin
//! kills the stub with the signal: that is the `signaled` verdict, as intended.
//!
//! The binary skips Rust's runtime start-up (`#![no_main]`): it polls fds 0–2, which the
//! strict profile's load phase does not allow.

pub mod args;
pub mod filter;
pub mod plugin;
mod serve;
pub mod sink;

use std::ffi::{CStr, c_char, c_int};
use std::os::fd::RawFd;

use crate::protocol::consts::{ErrorKind, HEADER_LEN, exit_code};
use crate::protocol::frame::FrameWriter;
use crate::protocol::payload;

use args::Command;

/// The C `main` of plugjail-stub.
///
/// # Safety
/// `argv` must hold `argc` valid NUL-terminated strings, as the kernel provides.
pub unsafe fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    let argv: Vec<&CStr> = (1..argc.max(1) as usize)
        // SAFETY: the caller guarantees argc valid strings in argv.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) })
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
    let frame = cap as usize + HEADER_LEN;
    crate::protocol::channel::size_pipe(a.channel_in, frame);
    crate::protocol::channel::size_pipe(a.channel_out, frame);
    sink::init(a.channel_out, cap);
    stdio(a);
    // Mapped before the plugin exists, and the descriptor closed: the plugin never holds
    // it (it could only reach the mapping, see plugin_mode::watch).
    let watch = match a.watch_fd.map(crate::plugin_mode::watch::StubPage::map) {
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

    let plugin = match plugin::load(a.plugin_fd) {
        Ok(p) => p,
        Err(e) => {
            let (kind, code) = match e {
                plugin::LoadError::Abi { .. } => (ErrorKind::AbiMismatch, exit_code::ABI_MISMATCH),
                _ => (ErrorKind::LoadFailed, exit_code::LOAD_FAILED),
            };
            return startup_failure(a, kind, 0, &e.to_string(), code);
        }
    };
    close(a.plugin_fd);

    let mut out_buf = [0u8; 4096];
    let max_output = u64::from(cap);
    if let Some(init) = plugin.desc.init {
        sink::begin(0);
        // SAFETY: init as the ABI defines it; the table lives as long as the process.
        let status = unsafe { init(plugin::host_table(max_output)) };
        sink::end();
        if let Some(fd) = a.output_fd {
            sink::drain_output(fd, &mut out_buf);
        }
        if status != 0 {
            let msg = format!("init of plugin {} returned {status}", plugin.name);
            return startup_failure(
                a,
                ErrorKind::InitFailed,
                status,
                &msg,
                exit_code::INIT_FAILED,
            );
        }
    }

    if let Some(fd) = a.serve_filter_fd {
        let installed = filter::read(fd).and_then(|f| f.install());
        close(fd);
        if let Err(e) = installed {
            return startup_failure(
                a,
                ErrorKind::FilterFailed,
                0,
                &e.to_string(),
                exit_code::FILTER_FAILED,
            );
        }
    }

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
    serve::serve(a, &plugin, out_buf, watch.as_ref())
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
            // SAFETY: integer fcntl calls on descriptors the launcher gave us.
            unsafe {
                let fl = libc::fcntl(f, libc::F_GETFL);
                if fl >= 0 {
                    libc::fcntl(f, libc::F_SETFL, fl | libc::O_NONBLOCK);
                }
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

/// The allow rules the supervisor must add to the profile's load phase when it runs the
/// stub (plugin mode), so the stub can stack the serve filter: exactly
/// `seccomp(SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, _)`. Filters only ever
/// tighten, so this cannot loosen anything; a plugin that uses it during load can at most
/// add restrictions, and a faked success is caught by the stub's probe (see [`filter`]).
pub fn load_phase_rules() -> Vec<crate::profile::Rule> {
    use crate::profile::{ArgCondition, CmpOp, Rule};
    let eq = |index, value| ArgCondition {
        index,
        op: CmpOp::Eq,
        value,
        mask: None,
    };
    vec![Rule {
        syscalls: vec!["seccomp".to_string()],
        args: vec![
            eq(0, u64::from(libc::SECCOMP_SET_MODE_FILTER)),
            eq(1, 1), // SECCOMP_FILTER_FLAG_TSYNC
        ],
        comment: Some("plugjail-stub stacks the serve-phase filter".to_string()),
    }]
}
