//! Delivering the verdict: the summary line on stderr, the JSON to `--report FILE` and
//! to the status fd.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Outcome, Verdict};

/// `-q/--quiet`: no summary line for a run that ended normally.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Set once by `main` from `-q/--quiet`.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

impl Verdict {
    /// Delivers the verdict: the summary line on stderr, the JSON to the report file and
    /// the status fd. Returns a description of each delivery that failed.
    pub fn deliver(
        &self,
        report: Option<&mut ReportFile>,
        status_fd: Option<BorrowedFd<'_>>,
    ) -> Vec<String> {
        // Quiet leaves out the line for a normal end only (the program exited, the plugin
        // session ended and its call, if any, was answered): a failure of the jail, a
        // violation or a failed call is always said.
        let normal = match self.outcome {
            Outcome::Exited => true,
            Outcome::Ok => self.call_error.is_none(),
            _ => false,
        };
        if !(normal && QUIET.load(Ordering::Relaxed)) {
            eprintln!("plugjail: {self}");
        }
        let json = self.to_json() + "\n";
        let mut errors = Vec::new();
        if let Some(r) = report
            && let Err(e) = r.file.write_all(json.as_bytes())
        {
            errors.push(format!(
                "cannot write the report to {}: {e}",
                r.path.display()
            ));
        }
        if let Some(fd) = status_fd.as_ref().map(AsRawFd::as_raw_fd) {
            // SAFETY: `fd` is borrowed, so it stays open for this call; ManuallyDrop keeps
            // the File from closing it, since it belongs to whoever lent it.
            let mut file = std::mem::ManuallyDrop::new(unsafe { std::fs::File::from_raw_fd(fd) });
            if let Err(e) = file.write_all(json.as_bytes()) {
                errors.push(format!("cannot write the verdict to fd {fd}: {e}"));
            }
        }
        errors
    }
}

/// `--report FILE`, opened before anything else is done, so that a report that cannot be
/// written is a setup failure and never a run without a verdict. The file is created (or
/// truncated: no verdict of an earlier run stays behind) and written once, at the end.
#[derive(Debug)]
pub struct ReportFile {
    path: PathBuf,
    file: File,
}

impl ReportFile {
    /// Creates or truncates `path` for writing (close-on-exec: the jail never gets it).
    pub fn create(path: &Path) -> io::Result<ReportFile> {
        let file = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(ReportFile {
            path: path.to_path_buf(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}
