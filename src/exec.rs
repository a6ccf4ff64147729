//! `plugjail exec` (placeholder while it is being written).

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

pub struct ExecOptions {
    pub profile: PathBuf,
    pub report: Option<PathBuf>,
    pub status_fd: Option<RawFd>,
    pub command: Vec<OsString>,
}

pub fn run(_opts: ExecOptions) -> u8 {
    unimplemented!("exec is being written")
}
