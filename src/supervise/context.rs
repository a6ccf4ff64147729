//! What every run shares before and after the jail: the profile path and command its
//! verdict carries, when it started, and the verdict's way out (status fd, report file,
//! stderr). Checks that can fail before a jail exists end here as `setup_failed`.

use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::time::Instant;

use crate::profile::{self, Profile};
use crate::verdict::{Outcome, ReportFile, Verdict};

/// What every mode's verdict carries (profile path, the command shown) and when the run
/// started. Shared by `exec`, `serve` and `call`.
pub(crate) struct Context<'a> {
    pub profile_path: &'a Path,
    pub command: &'a [String],
    pub started: Instant,
}

impl<'a> Context<'a> {
    pub fn new(profile_path: &'a Path, command: &'a [String]) -> Context<'a> {
        Context {
            profile_path,
            command,
            started: Instant::now(),
        }
    }

    /// A verdict for a run that never started.
    pub fn failed(
        &self,
        outcome: Outcome,
        step: &str,
        errno: Option<i32>,
        message: String,
    ) -> Verdict {
        Verdict::failed(
            outcome,
            self.profile_path,
            self.command,
            step,
            errno,
            message,
        )
    }

    /// A verdict can only be delivered on an open status fd: check it first.
    pub fn check_status_fd(&self, fd: Option<RawFd>) -> Result<(), Box<Verdict>> {
        match fd {
            Some(fd) if !fd_is_open(fd) => {
                let msg = format!("--status-fd {fd} is not an open file descriptor");
                Err(Box::new(self.failed(
                    Outcome::SetupFailed,
                    "status_fd",
                    Some(libc::EBADF),
                    msg,
                )))
            }
            _ => Ok(()),
        }
    }

    /// Opens `--report FILE` now (created or truncated), before the jail exists: a report
    /// that cannot be written is a setup failure like a bad status fd, not a run whose
    /// verdict is lost at the end.
    pub fn open_report(&self, path: Option<&Path>) -> Result<Option<ReportFile>, Box<Verdict>> {
        let Some(path) = path else {
            return Ok(None);
        };
        ReportFile::create(path).map(Some).map_err(|e| {
            let msg = format!(
                "--report {}: cannot open it for writing: {e}",
                path.display()
            );
            Box::new(self.failed(Outcome::SetupFailed, "report", e.raw_os_error(), msg))
        })
    }

    /// Loads the profile; every problem goes to stderr, the verdict says which file.
    pub fn load_profile(&self) -> Result<Profile, Box<Verdict>> {
        profile::load(self.profile_path).map_err(|errors| {
            eprint!("{errors}");
            let msg = format!("the profile {} is not valid", self.profile_path.display());
            Box::new(self.failed(Outcome::SetupFailed, "profile", None, msg))
        })
    }

    /// Stamps the wall time, delivers the verdict (stderr line, report file, status fd)
    /// and returns plugjail's exit status.
    pub fn deliver(
        &self,
        mut verdict: Verdict,
        report: Option<&mut ReportFile>,
        status_fd: Option<RawFd>,
    ) -> u8 {
        verdict.wall_time_ms =
            u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status_fd = status_fd.filter(|fd| fd_is_open(*fd)).map(|fd| {
            // SAFETY: `--status-fd` names a descriptor plugjail inherited for its verdict:
            // open (checked just above), and plugjail never closes it, so it stays open
            // while borrowed here.
            unsafe { BorrowedFd::borrow_raw(fd) }
        });
        for problem in verdict.deliver(report, status_fd) {
            eprintln!("plugjail: {problem}");
        }
        verdict.exit_status
    }
}

fn fd_is_open(fd: RawFd) -> bool {
    // SAFETY: F_GETFD only queries the descriptor table.
    fd >= 0 && unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0
}
