//! `plugjail doctor` (placeholder while it is being written).

use std::path::Path;
use std::process::ExitCode;

pub fn run(_profile: Option<&Path>, _json: bool) -> ExitCode {
    unimplemented!("doctor is being written")
}
