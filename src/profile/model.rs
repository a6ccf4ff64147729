//! The validated profile: plain typed values, no YAML.
//!
//! Everything here has already been checked (absolute paths, known syscalls, consistent
//! limits). Kernel code takes a `Profile` and never sees the text it came from.
//! `Serialize` writes the profile back in the same format the reader accepts, which is
//! what `plugjail explain --json` prints and what its round-trip tests re-read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// The effective policy for one run, after `extends:` has been merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub namespaces: Namespaces,
    pub hostname: String,
    pub filesystem: Filesystem,
    pub landlock: Landlock,
    pub seccomp: Seccomp,
    pub limits: Limits,
    pub network: Network,
    pub environment: Environment,
    pub plugin: Plugin,
    pub enforcement: Enforcement,
}

/// Which namespaces the jail gets. All default to on; turning one off is a visible,
/// deliberate choice in the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Namespaces {
    pub user: bool,
    pub mount: bool,
    pub pid: bool,
    pub net: bool,
    pub ipc: bool,
    pub uts: bool,
    pub cgroup: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filesystem {
    /// Directory copied (as empty dirs and symlinks) into the jail's fresh tmpfs root.
    /// `None` means the rootfs template shipped with plugjail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rootfs_template: Option<PathBuf>,
    /// Host paths bound read-only at the same path inside the jail.
    pub read_only: Vec<PathBuf>,
    /// Host paths bound read-write at the same path inside the jail.
    pub read_write: Vec<PathBuf>,
    pub tmpfs: Vec<Tmpfs>,
    pub devices: Vec<Device>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tmpfs {
    pub path: PathBuf,
    /// Bytes.
    #[serde(serialize_with = "ser::size_plain")]
    pub size: u64,
}

/// The fixed set of device nodes a jail may have; none of them reaches host state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Null,
    Zero,
    Full,
    Random,
    Urandom,
    Tty,
}

impl Device {
    pub const ALL: [Device; 6] = [
        Device::Null,
        Device::Zero,
        Device::Full,
        Device::Random,
        Device::Urandom,
        Device::Tty,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Device::Null => "null",
            Device::Zero => "zero",
            Device::Full => "full",
            Device::Random => "random",
            Device::Urandom => "urandom",
            Device::Tty => "tty",
        }
    }
}

/// Required or best effort: what to do when the kernel cannot give a protection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Refuse to run.
    Required,
    /// Run, and say in the verdict what was not enforced.
    BestEffort,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Required => "required",
            Level::BestEffort => "best_effort",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Landlock {
    pub compat: Level,
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub execute: Vec<PathBuf>,
    pub tcp_bind: Vec<u16>,
    pub tcp_connect: Vec<u16>,
    pub scopes: Vec<Scope>,
}

/// Landlock IPC scopes (ABI 6): deny reaching outside the jail's Landlock domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    AbstractUnixSocket,
    Signal,
}

impl Scope {
    pub const ALL: [Scope; 2] = [Scope::AbstractUnixSocket, Scope::Signal];

    pub fn name(self) -> &'static str {
        match self {
            Scope::AbstractUnixSocket => "abstract_unix_socket",
            Scope::Signal => "signal",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Seccomp {
    /// What happens on a syscall no rule allows.
    pub default_action: Action,
    /// The errno returned when `default_action` is `errno` (written back only then).
    pub errno: i32,
    /// The filter in force while the plugin is dlopened and initialised (and, for
    /// `plugjail exec`, for the whole program).
    pub load: Phase,
    /// The filter stacked on top once the plugin is initialised; filters only tighten.
    pub serve: Phase,
}

impl Serialize for Seccomp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Seccomp", 4)?;
        st.serialize_field("default_action", &self.default_action)?;
        if self.default_action == Action::Errno {
            let name = crate::profile::units::errno_name(self.errno).unwrap_or("EPERM");
            st.serialize_field("errno", name)?;
        }
        st.serialize_field("load", &self.load)?;
        st.serialize_field("serve", &self.serve)?;
        st.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Kill the whole process (the verdict names the syscall).
    KillProcess,
    /// Deliver SIGSYS, which the plugin may catch.
    Trap,
    /// Fail the syscall with the profile's `errno`.
    Errno,
    /// Allow, but log to the kernel audit log: for writing a new profile.
    Log,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub allow: Vec<Rule>,
}

/// One allow rule: these syscalls (names and `@groups` already checked), optionally only
/// when all argument conditions hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub syscalls: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgCondition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgCondition {
    /// Argument index, 0..=5.
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    /// For `masked_eq`: `(arg & mask) == value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mask: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}

impl CmpOp {
    pub const ALL: [CmpOp; 7] = [
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::MaskedEq,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::MaskedEq => "masked_eq",
        }
    }
}

/// Resource limits. `None` means "no limit set by this profile".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Limits {
    /// Bytes of memory (cgroup memory.max; address-space rlimit without cgroups).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser::size")]
    pub memory: Option<u64>,
    /// Bytes of swap.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser::size")]
    pub swap: Option<u64>,
    /// CPU share in cores (0.5 = half of one core).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<f64>,
    pub io: IoLimits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_files: Option<u32>,
    /// Largest file the jail may write, in bytes (RLIMIT_FSIZE).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser::size")]
    pub file_size: Option<u64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::duration"
    )]
    pub wall_time: Option<Duration>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::duration"
    )]
    pub cpu_time: Option<Duration>,
    /// Longest a single plugin call may take.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::duration"
    )]
    pub call_time: Option<Duration>,
    /// Longest a session may sit with no call in flight.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser::duration"
    )]
    pub idle_time: Option<Duration>,
    /// Largest protocol frame either side may send, in bytes.
    #[serde(serialize_with = "ser::size_plain")]
    pub max_message: u64,
}

/// Default largest protocol frame: big enough for real payloads, small enough that a
/// hostile length prefix cannot make the host allocate much.
pub const DEFAULT_MAX_MESSAGE: u64 = 16 << 20;

impl Default for Limits {
    /// No limit from the profile, and the default frame cap.
    fn default() -> Limits {
        Limits {
            memory: None,
            swap: None,
            cpu: None,
            io: IoLimits::default(),
            pids: None,
            open_files: None,
            file_size: None,
            wall_time: None,
            cpu_time: None,
            call_time: None,
            idle_time: None,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct IoLimits {
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser::size")]
    pub read_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "ser::size")]
    pub write_bps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_iops: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_iops: Option<u64>,
}

impl IoLimits {
    pub fn is_empty(&self) -> bool {
        *self == IoLimits::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// An empty network namespace: not even loopback is up.
    None,
    /// A private loopback interface, up; nothing reaches the host's network.
    Loopback,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Variable names passed through from plugjail's own environment when set there.
    pub pass: Vec<String>,
    /// Variables set to fixed values (after `pass`, so they win).
    pub set: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plugin {
    /// Lowercase hex SHA-256 digests; when non-empty, a plugin whose bytes match none of
    /// them is rejected before anything runs.
    pub sha256: Vec<String>,
}

/// What to do when the kernel cannot enforce a mechanism. Landlock's level is
/// `landlock.compat`, beside its rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Enforcement {
    pub namespaces: Level,
    pub seccomp: Level,
    pub limits: Level,
}

/// Serializers that write values back in the profile's own units.
mod ser {
    use std::time::Duration;

    use serde::Serializer;

    pub fn size<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(bytes) => size_plain(bytes, s),
            None => s.serialize_none(),
        }
    }

    pub fn size_plain<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::profile::units::format_size(*v))
    }

    pub fn duration<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_str(&crate::profile::units::format_duration(*d)),
            None => s.serialize_none(),
        }
    }
}
