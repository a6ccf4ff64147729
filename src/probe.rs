//! What this kernel and this user can enforce, found by trying, never by parsing versions.
//!
//! Every probe is cheap (the slowest forks one short-lived child) and leaves nothing behind:
//! no cgroup, mount or file is created outside the probe child's own throw-away namespaces.
//! [`Capabilities::probe`] gathers all of them for `plugjail doctor`; the small functions
//! ([`landlock_abi`], [`seccomp`], [`userns`], [`cgroup_mode`], [`cgroups`]...) let the
//! jail and cgroup code check one mechanism at start-up and fail closed.
//! Each kernel feature is probed here and nowhere else, so doctor and the jail read the same
//! answer: the Landlock ABI ([`landlock_abi_errno`]) and seccomp filters ([`seccomp_filter`])
//! decide both what doctor prints and what the jail plan enforces.
//! [`assess`] says, for a profile, what would be enforced here and whether it would run.

mod assess;
pub mod cgroup;
mod landlock;
mod ns;
mod seccomp;

use std::path::PathBuf;

use nix::errno::Errno;
use serde::Serialize;

pub use assess::{Assessment, Enforce, Item, Mechanism, Outcome, assess};
pub use cgroup::{CgroupMode, Cgroups, Controller, cgroup_mode, cgroups};
pub use landlock::{LANDLOCK_FEATURES, Landlock, landlock, landlock_abi, landlock_abi_errno};
pub use ns::{Namespaces, userns};
pub use seccomp::{
    NoNewPrivs, Privileges, Seccomp, no_new_privs, privileges, seccomp, seccomp_filter,
};

/// Everything `plugjail doctor` reports, as plain data.
#[derive(Debug, Clone, Serialize)]
pub struct Capabilities {
    /// The architecture plugjail was built for (the seccomp filter's arch).
    pub arch: &'static str,
    pub privileges: Privileges,
    pub user_namespaces: Namespaces,
    pub landlock: Landlock,
    pub seccomp: Seccomp,
    pub no_new_privs: NoNewPrivs,
    pub cgroups: Cgroups,
}

impl Capabilities {
    /// Runs every probe. Safe to call from a multi-threaded process: the user-namespace
    /// child only makes raw syscalls between fork and `_exit`.
    pub fn probe() -> Capabilities {
        Capabilities {
            arch: std::env::consts::ARCH,
            privileges: privileges(),
            user_namespaces: userns(),
            landlock: landlock(),
            seccomp: seccomp(),
            no_new_privs: no_new_privs(),
            cgroups: cgroups(),
        }
    }
}

/// Why a probe failed; kept whole inside the facts it explains.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{syscall} failed: {errno}")]
    Syscall { syscall: &'static str, errno: Errno },
    #[error("{step} in the user-namespace probe child failed: {errno}")]
    Child { step: &'static str, errno: Errno },
    #[error("not tried: {blocker} failed first")]
    NotTried { blocker: &'static str },
    #[error("the user-namespace probe child died before reporting ({status})")]
    ChildDied { status: String },
    #[error("{path} is not writable: {errno}")]
    NotWritable { path: PathBuf, errno: Errno },
    #[error("{path}: no {controller} hierarchy is mounted")]
    NotMounted {
        path: PathBuf,
        controller: &'static str,
    },
    #[error("own cgroup {cgroup} is outside the mounted part of the hierarchy at {mount}")]
    Unreachable { cgroup: String, mount: PathBuf },
}

/// A failed probe step in the report: the call, the errno name and the full message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// The call or step that failed (`unshare(CLONE_NEWUSER)`, `access`, ...).
    pub call: String,
    /// `EPERM`, `ENOSYS`... when an errno is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
    pub message: String,
}

impl From<&Error> for Failure {
    fn from(e: &Error) -> Failure {
        let (call, errno) = match e {
            Error::Read { source, .. } => (
                "read".to_owned(),
                source.raw_os_error().map(Errno::from_raw),
            ),
            Error::Syscall { syscall, errno } => ((*syscall).to_owned(), Some(*errno)),
            Error::Child { step, errno } => ((*step).to_owned(), Some(*errno)),
            Error::NotTried { blocker } => ((*blocker).to_owned(), None),
            Error::ChildDied { .. } => ("fork".to_owned(), None),
            Error::NotWritable { errno, .. } => ("access".to_owned(), Some(*errno)),
            Error::NotMounted { .. } => ("mountinfo".to_owned(), None),
            Error::Unreachable { .. } => ("mountinfo".to_owned(), None),
        };
        Failure {
            call,
            errno: errno.map(|e| format!("{e:?}")),
            message: e.to_string(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::from(&e)
    }
}

/// One yes/no fact with the reason when it is no.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

impl Check {
    pub fn ok() -> Check {
        Check {
            ok: true,
            error: None,
        }
    }

    pub fn failed(e: impl Into<Failure>) -> Check {
        Check {
            ok: false,
            error: Some(e.into()),
        }
    }

    pub fn from_result<T>(r: Result<T, Error>) -> Check {
        match r {
            Ok(_) => Check::ok(),
            Err(e) => Check::failed(e),
        }
    }
}

/// Reads a small kernel file whole, trimmed; `None` when it does not exist.
fn read_trimmed(path: &str) -> Result<Option<String>, Error> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.into(),
            source,
        }),
    }
}

/// Skips a test that needs a kernel feature this machine lacks; a failure when
/// `PLUGJAIL_TEST_STRICT=1` (CI), where every feature must be there.
#[cfg(test)]
pub(crate) fn skip(reason: &str) {
    assert!(
        std::env::var_os("PLUGJAIL_TEST_STRICT").is_none_or(|v| v != "1"),
        "PLUGJAIL_TEST_STRICT=1 but a test would skip: {reason}"
    );
    eprintln!("skipped: {reason}");
}
