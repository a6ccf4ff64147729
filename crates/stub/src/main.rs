//! plugjail-stub: runs inside the jail and hosts one plugin (see the `plugjail_stub` library).
//!
//! `#![no_main]`: Rust's runtime start-up polls fds 0–2 and sets up signal stacks, which
//! the strictest load-phase filter may not allow; the stub needs none of it.
#![no_main]

use std::ffi::{c_char, c_int};

/// The process entry, called by the C runtime.
#[unsafe(no_mangle)]
extern "C" fn main(argc: c_int, argv: *const *const c_char) -> c_int {
    // SAFETY: the C runtime passes the kernel's argc/argv.
    let code = unsafe { plugjail_stub::main(argc, argv) };
    // _exit: no atexit handlers or C++ static destructors of the plugin run after the
    // session, so nothing it does at exit can break the filter or delay the end.
    // SAFETY: ends the process.
    unsafe { libc::_exit(code) }
}
