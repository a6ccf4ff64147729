//! The plan: everything the child needs, computed and allocated in the parent.
//!
//! After `clone` the child walks this structure and makes syscalls with the strings and
//! numbers it holds; it never formats, parses, or allocates. Building the plan is where
//! host paths are inspected (symlinks recreated, files vs directories) and where every
//! error can still be reported richly.
//!
//! This file holds the plan's types and [`build`]; the root filesystem's operations are
//! built in `plan/rootfs.rs`.

mod rootfs;

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use super::handover::GateAction;
use super::idmap::{self, IdPlan};
use super::namespaces::{self, NamespacePlan};
use super::target::Target;
use super::template::{self, TemplateError};
use crate::landlock::{self, LandlockError, LandlockPlan};
use crate::profile::{Level, Profile};
use crate::seccomp::{self, SeccompError, SeccompPhase, SeccompProgram};
use rootfs::fs_ops;

/// Where the new root is assembled, and where the host root is reachable meanwhile, after
/// the child has pivoted into its private base tmpfs (see `child.rs`).
pub const NEW_ROOT: &str = "/newroot";
pub const OLD_ROOT: &str = "/oldroot";
/// Size of the jail's root tmpfs: it only holds empty directories, symlinks and mount points.
pub const ROOT_TMPFS: &CStr = c"size=1m,nr_inodes=4096,mode=0755";

/// One filesystem operation in the child, with absolute paths under [`NEW_ROOT`] /
/// [`OLD_ROOT`].
#[derive(Debug)]
pub enum FsOp {
    Mkdir(CString),
    Symlink {
        target: CString,
        path: CString,
    },
    /// An empty file to bind a file onto.
    Touch(CString),
    /// `MS_BIND|MS_REC`, then `mount_setattr(AT_RECURSIVE)` adding `attrs`.
    Bind {
        src: CString,
        dst: CString,
        attrs: u64,
    },
    Tmpfs {
        dst: CString,
        flags: libc::c_ulong,
        data: CString,
    },
    Proc {
        dst: CString,
        data: CString,
    },
    /// Make a mount we populated read-only (non-recursive: what is mounted on it keeps
    /// its own flags).
    Seal(CString),
}

/// An operation and the jail path it is about (for error messages).
#[derive(Debug)]
pub struct FsStep {
    pub op: FsOp,
    pub about: PathBuf,
}

/// A NULL-terminated array of C strings (argv, envp) that stays valid as long as it lives.
pub struct CStringArray {
    strings: Vec<CString>,
    ptrs: Vec<*const libc::c_char>,
}

impl CStringArray {
    pub fn new(strings: Vec<CString>) -> CStringArray {
        let mut ptrs: Vec<_> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        CStringArray { strings, ptrs }
    }

    pub fn as_ptr(&self) -> *const *const libc::c_char {
        self.ptrs.as_ptr()
    }

    pub fn strings(&self) -> &[CString] {
        &self.strings
    }
}

impl std::fmt::Debug for CStringArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.strings).finish()
    }
}

/// Everything the child does, decided.
#[derive(Debug)]
pub struct Plan {
    pub namespaces: NamespacePlan,
    pub ids: IdPlan,
    /// Filesystem operations; `None` without a mount namespace.
    pub fs: Option<Vec<FsStep>>,
    /// Profile paths that do not exist on this host and were therefore not bound.
    pub missing: Vec<PathBuf>,
    pub hostname: Option<CString>,
    pub loopback: bool,
    /// (resource, value) pairs; soft and hard limit alike.
    pub rlimits: Vec<(u32, u64)>,
    pub argv: CStringArray,
    pub env: CStringArray,
    pub target: Target,
    /// Descriptors the program starts with besides stdio (plugin mode: the channel, the
    /// plugin's memfd, ...), placed by the child just before it closes everything else.
    pub fds: Vec<PlacedFd>,
    /// Plugin mode: the channel the init hands over at the stub's switch, and the serve
    /// gate (child steps 26 and 26c, `handover.rs`).
    pub handover: Option<Handover>,
    pub seccomp: Option<SeccompProgram>,
    pub landlock: Option<LandlockPlan>,
    /// Forbid user namespaces inside the jail's own (only when it has one: the setting is
    /// per user namespace, and without one it would be the host's).
    pub no_nested_userns: bool,
    /// Whether the child holds capabilities to drop (own user namespace, or root).
    pub drop_caps: bool,
    /// Create the cgroup namespace in the child once it is in the jail's cgroup, rather
    /// than at clone (where a v1 child is still in the supervisor's cgroup).
    pub cgroup_namespace: bool,
    pub rootless: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Namespaces(#[from] namespaces::NamespaceError),
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("cannot inspect host path {path}: {source}")]
    HostPath { path: PathBuf, source: io::Error },
    #[error("path {path} has a `..` component or is not absolute")]
    BadPath { path: PathBuf },
    #[error("{what} contains a NUL byte")]
    Nul { what: &'static str },
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
    #[error(transparent)]
    Landlock(#[from] LandlockError),
    #[error("seccomp is required by the profile but this kernel has no seccomp filters")]
    SeccompUnavailable,
    #[error(transparent)]
    Target(super::target::TargetError),
    #[error("descriptor {target} cannot be handed to the jail: {reason}")]
    PlaceFd { target: RawFd, reason: &'static str },
    #[error("cannot copy descriptor {fd} for the jail (fcntl F_DUPFD_CLOEXEC): {source}")]
    DupFd { fd: RawFd, source: io::Error },
}

/// Plugin mode's channel handover (see `jail/handover.rs`).
#[derive(Debug)]
pub struct Handover {
    /// Placed descriptors (their numbers in the jail) that only the init keeps: it sends
    /// them to the program at the switch. The program never holds them before.
    pub fds: [RawFd; 2],
    /// Where the program keeps its end of the socket they come through.
    pub socket: RawFd,
    /// The serve gate; `None` when there is no serve phase to enforce (no seccomp, a
    /// serve phase equal to the load phase, or `default_action: log`).
    pub gate: Option<Gate>,
}

/// The serve gate (`seccomp/gate.rs`): installed before the load filter when the init
/// traces the jail, its refusals decided by the init.
#[derive(Debug)]
pub struct Gate {
    pub program: SeccompProgram,
    /// What a syscall the serve phase does not allow gets once the stub has switched.
    pub action: GateAction,
    /// Refuse to run when the init cannot trace (`enforcement.seccomp: required`).
    pub required: bool,
}

/// The highest descriptor number a placed fd may have in the jail. Sources are copied
/// above it, as are the child's own pipes, so placing one descriptor never overwrites
/// another's source or a pipe the child still needs (see [`Plan::place_fd`]).
pub const MAX_PLACED_FD: RawFd = 63;

/// A descriptor the program inherits at a fixed number.
#[derive(Debug)]
pub struct PlacedFd {
    /// A close-on-exec copy numbered above [`MAX_PLACED_FD`], owned by the plan.
    pub source: OwnedFd,
    /// Its number in the program (`dup2` leaves it without close-on-exec).
    pub target: RawFd,
}

impl Plan {
    /// Hands `fd` to the program as descriptor `target` (0..=[`MAX_PLACED_FD`], each
    /// number at most once, below the program's open-files limit). A copy is taken now, so
    /// the caller may close `fd` once the jail is started.
    pub fn place_fd(&mut self, fd: BorrowedFd<'_>, target: RawFd) -> Result<(), PlanError> {
        let refuse = |reason| Err(PlanError::PlaceFd { target, reason });
        if !(0..=MAX_PLACED_FD).contains(&target) {
            return refuse("jail descriptor numbers go from 0 to 63");
        }
        if self.fds.iter().any(|p| p.target == target) {
            return refuse("the number is given twice");
        }
        let limit = self
            .rlimits
            .iter()
            .find(|(r, _)| *r == libc::RLIMIT_NOFILE)
            .map_or(u64::MAX, |(_, v)| *v);
        if u64::from(target.cast_unsigned()) >= limit {
            return refuse("the number is not below the profile's open_files limit");
        }
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor the caller lends us; no pointers.
        let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, MAX_PLACED_FD + 1) };
        if copy < 0 {
            return Err(PlanError::DupFd {
                fd: fd.as_raw_fd(),
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
        let source = unsafe { OwnedFd::from_raw_fd(copy) };
        self.fds.push(PlacedFd { source, target });
        Ok(())
    }

    /// Closes the plan's copies of the placed descriptors (call once the jail has
    /// started): the supervisor must not keep, say, a channel's write end open, or the
    /// host would never see end of file when the program dies.
    pub fn release_fds(&mut self) {
        self.fds.clear();
    }
}

/// Builds the plan for running `target` with `command` (argv) under `profile`.
pub fn build(
    profile: &Profile,
    mut target: Target,
    command: &[OsString],
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<Plan, PlanError> {
    let namespaces = namespaces::plan(&profile.namespaces, profile.enforcement.namespaces)?;
    let euid = nix::unistd::geteuid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let ids = idmap::plan(euid, egid, namespaces.has(libc::CLONE_NEWUSER));
    let (fs, missing) = if namespaces.has(libc::CLONE_NEWNS) {
        let tpl = match &profile.filesystem.rootfs_template {
            Some(dir) => template::read_dir(dir)?,
            None => template::builtin(),
        };
        let (ops, missing) = fs_ops(profile, &tpl, namespaces.has(libc::CLONE_NEWPID))?;
        (Some(ops), missing)
    } else {
        (None, Vec::new())
    };
    let open_files = open_files_limit(profile);
    // The one exec the filter allows is of this descriptor number: put it where the
    // program's own descriptors can never reach (see Target::place_at_or_above).
    target
        .place_at_or_above(RawFd::try_from(open_files).unwrap_or(RawFd::MAX))
        .map_err(PlanError::Target)?;
    let seccomp = if crate::probe::seccomp_filter().is_ok() {
        let fd = target.memfd.as_raw_fd();
        Some(seccomp::compile(
            &profile.seccomp,
            SeccompPhase::Load,
            Some(fd),
        )?)
    } else if profile.enforcement.seccomp == Level::Required {
        return Err(PlanError::SeccompUnavailable);
    } else {
        None
    };
    let landlock = Some(landlock::prepare(&profile.landlock)?);
    let hostname = namespaces
        .has(libc::CLONE_NEWUTS)
        .then(|| cstring(profile.hostname.as_bytes(), "hostname"))
        .transpose()?;
    let argv = command
        .iter()
        .map(|a| cstring(a.as_bytes(), "an argument"))
        .collect::<Result<_, _>>()?;
    Ok(Plan {
        loopback: namespaces.has(libc::CLONE_NEWNET)
            && profile.network == crate::profile::Network::Loopback,
        drop_caps: euid == 0 || namespaces.has(libc::CLONE_NEWUSER),
        no_nested_userns: namespaces.has(libc::CLONE_NEWUSER),
        cgroup_namespace: namespaces.has(libc::CLONE_NEWCGROUP),
        namespaces,
        ids,
        fs,
        missing,
        hostname,
        rlimits: rlimits(profile, open_files),
        argv: CStringArray::new(argv),
        env: CStringArray::new(environment(profile, env)?),
        target,
        fds: Vec::new(),
        handover: None,
        seccomp,
        landlock,
        rootless: euid != 0,
    })
}

fn cstring(bytes: &[u8], what: &'static str) -> Result<CString, PlanError> {
    CString::new(bytes).map_err(|_| PlanError::Nul { what })
}

fn path_cstring(prefix: &str, path: &Path) -> Result<CString, PlanError> {
    let mut bytes = prefix.as_bytes().to_vec();
    bytes.extend_from_slice(path.as_os_str().as_bytes());
    cstring(&bytes, "a path")
}

/// The environment: `pass` names copied from plugjail's own environment when set there,
/// then `set` (which wins). Nothing else reaches the jail.
pub fn environment(
    profile: &Profile,
    get: impl Fn(&str) -> Option<OsString>,
) -> Result<Vec<CString>, PlanError> {
    let mut vars: BTreeMap<&str, OsString> = BTreeMap::new();
    for name in &profile.environment.pass {
        if let Some(value) = get(name) {
            vars.insert(name, value);
        }
    }
    for (name, value) in &profile.environment.set {
        vars.insert(name, OsString::from(value));
    }
    vars.into_iter()
        .map(|(name, value)| {
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(b'=');
            bytes.extend_from_slice(&value.into_vec());
            cstring(&bytes, "an environment variable")
        })
        .collect()
}

/// Open files for the program when the profile sets no limit.
const DEFAULT_OPEN_FILES: u64 = 65536;

/// The program's RLIMIT_NOFILE (soft and hard): the profile's `open_files`, or
/// [`DEFAULT_OPEN_FILES`]; always below the current hard limit, so that plugjail itself can
/// hold a descriptor at that number (the memfd).
fn open_files_limit(profile: &Profile) -> u64 {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(libc::RLIM_INFINITY);
    let wanted = profile
        .limits
        .open_files
        .map_or(DEFAULT_OPEN_FILES, u64::from);
    wanted.min(hard.saturating_sub(1)).min(i32::MAX as u64)
}

/// Limits applied with setrlimit: never above the current hard limit (raising it needs
/// privilege the child does not have), and no core dumps.
fn rlimits(profile: &Profile, open_files: u64) -> Vec<(u32, u64)> {
    let limits = &profile.limits;
    let wanted = [
        (libc::RLIMIT_NOFILE, Some(open_files)),
        (libc::RLIMIT_FSIZE, limits.file_size),
        (
            libc::RLIMIT_CPU,
            limits
                .cpu_time
                .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0)),
        ),
        (libc::RLIMIT_CORE, Some(0)),
    ];
    wanted
        .into_iter()
        .filter_map(|(res, v)| v.map(|v| (res, v)))
        .map(|(res, v)| {
            let hard = nix::sys::resource::getrlimit(resource_of(res))
                .map(|(_, hard)| hard)
                .unwrap_or(libc::RLIM_INFINITY);
            (res, v.min(hard))
        })
        .collect()
}

fn resource_of(res: u32) -> nix::sys::resource::Resource {
    use nix::sys::resource::Resource;
    match res {
        libc::RLIMIT_NOFILE => Resource::RLIMIT_NOFILE,
        libc::RLIMIT_FSIZE => Resource::RLIMIT_FSIZE,
        libc::RLIMIT_CPU => Resource::RLIMIT_CPU,
        _ => Resource::RLIMIT_CORE,
    }
}

fn check_path(path: &Path) -> Result<(), PlanError> {
    let ok = path.is_absolute() && !path.components().any(|c| c == Component::ParentDir);
    if ok {
        Ok(())
    } else {
        Err(PlanError::BadPath {
            path: path.to_path_buf(),
        })
    }
}

/// Which fds the child keeps: the three standard streams and `keep`; returns the ranges to
/// close (inclusive), at most `keep.len() + 1` of them.
pub fn close_ranges(keep: &[RawFd]) -> Vec<(u32, u32)> {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    keep.sort_unstable();
    keep.dedup();
    let mut ranges = Vec::new();
    let mut next = 3u32;
    for fd in keep {
        if fd > next {
            ranges.push((next, fd - 1));
        }
        next = fd + 1;
    }
    ranges.push((next, u32::MAX));
    ranges
}

#[cfg(test)]
mod tests;
