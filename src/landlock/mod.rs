//! Landlock: what the jail's target may read, write and execute, which TCP ports it may
//! bind and connect to, and which scopes (abstract unix sockets, signals) cut it off from
//! the rest of the machine.
//!
//! Like every mechanism, two halves:
//! - [`prepare`] (`rules.rs`, parent): takes the kernel's ABI from the one probe of it
//!   (`probe::landlock_abi_errno`, which `plugjail doctor` reports too) and decides
//!   everything: the handled access rights (all the ABI knows, so whatever is not granted is
//!   denied), each path's rights, the ports, the scopes, and — with `compat: required` —
//!   refuses a profile this kernel cannot fully enforce. It may allocate; its errors are rich.
//! - [`LandlockPlan::apply`] (`apply.rs`, child): runs after pivot_root and opens the paths
//!   there (several, like /tmp, exist only inside the jail), so it only makes raw syscalls on
//!   data prepared by [`prepare`], allocates nothing and returns a raw errno.
//!
//! The access-right bits come from the `landlock` crate, so rights of ABIs newer than this
//! code (the crate knows them) are handled, hence denied, without a change here.
//!
//! This file holds the public API (the plan, its report for the verdict, the errors) and the
//! kernel's structures both halves share.

mod apply;
mod rules;
#[cfg(test)]
mod tests;

use std::ffi::{CStr, CString};
use std::path::PathBuf;

use nix::errno::Errno;
use serde::Serialize;

pub use rules::{prepare, requirements};

/// What the kernel enforced; part of the run's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct LandlockReport {
    /// The kernel's Landlock ABI (0 = unavailable).
    pub abi: u32,
    /// "full" | "partial" | "not_enforced".
    pub status: &'static str,
    /// What the kernel could not enforce (best_effort only).
    pub dropped: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LandlockError {
    #[error(
        "landlock is required but this kernel (landlock abi {abi}) cannot enforce: {}; \
         set landlock.compat: best_effort to run without it",
        missing.join("; ")
    )]
    Unenforceable { abi: u32, missing: Vec<String> },
    #[error("cannot probe the landlock abi: landlock_create_ruleset: {errno}")]
    Probe { errno: Errno },
    #[error("landlock path {path} is not absolute")]
    RelativePath { path: PathBuf },
    #[error("landlock path {path} contains a nul byte")]
    NulInPath { path: PathBuf },
}

/// Which call failed in the child, for the jail's (step, errno) record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApplyFailure {
    pub call: &'static str,
    /// Index of the path rule being added, see [`LandlockPlan::rule_path`].
    pub rule: Option<usize>,
    pub errno: Errno,
}

/// `struct landlock_ruleset_attr` (ABI 6 layout; older kernels get a shorter prefix).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// `struct landlock_net_port_attr`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct NetPortAttr {
    allowed_access: u64,
    port: u64,
}

#[derive(Debug)]
struct PathRule {
    path: CString,
    access: u64,
}

/// Everything the child needs, decided and allocated in the parent.
#[derive(Debug)]
pub struct LandlockPlan {
    report: LandlockReport,
    /// False when the kernel has no Landlock (best_effort): apply does nothing.
    enforce: bool,
    attr: RulesetAttr,
    attr_size: usize,
    paths: Vec<PathRule>,
    /// The rights the kernel accepts on a non-directory (directory-only rights on a file
    /// rule are EINVAL).
    file_access: u64,
    ports: Vec<NetPortAttr>,
}

impl LandlockPlan {
    pub fn report(&self) -> &LandlockReport {
        &self.report
    }

    /// The path of rule `i` (as named in an [`ApplyFailure`]).
    pub fn rule_path(&self, i: usize) -> Option<&CStr> {
        self.paths.get(i).map(|r| r.path.as_c_str())
    }
}
