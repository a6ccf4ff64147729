//! The profile subcommands: `check`, `explain`, `schema`.

use std::path::Path;
use std::process::ExitCode;

pub fn check(_profiles: &[std::path::PathBuf]) -> ExitCode {
    unimplemented!()
}
pub fn explain(_profile: &Path, _json: bool) -> ExitCode {
    unimplemented!()
}
pub fn schema() -> ExitCode {
    unimplemented!()
}
