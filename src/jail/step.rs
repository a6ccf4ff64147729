//! The steps of the jail sequence, and the fixed-size record a failing step sends back.
//!
//! The numbering is internal (child and parent are the same binary); the names are what
//! verdicts and docs/architecture.md use.

/// One step of the child's sequence (`child.rs`), in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Step {
    ParentDeathSignal = 1,
    WaitForMaps,
    ResetSignals,
    Securebits,
    SetIds,
    RearmParentDeathSignal,
    NoNestedUserNamespaces,
    MakeRootPrivate,
    MountBase,
    PivotToBase,
    MountNewRoot,
    Mkdir,
    Symlink,
    MountPoint,
    Bind,
    BindHarden,
    MountTmpfs,
    MountProc,
    SealMount,
    PivotRoot,
    DetachOldRoot,
    RemountRootReadOnly,
    Chdir,
    Hostname,
    Loopback,
    Rlimits,
    JoinCgroup,
    CgroupNamespace,
    DropBounding,
    ClearAmbient,
    DropCapabilities,
    NewSession,
    NoNewPrivs,
    PlaceFds,
    WaitForProgram,
    CloseFds,
    ForkTarget,
    WaitForTracer,
    ServeGate,
    Landlock,
    Seccomp,
    Exec,
}

impl Step {
    pub const ALL: [Step; 42] = [
        Step::ParentDeathSignal,
        Step::WaitForMaps,
        Step::ResetSignals,
        Step::Securebits,
        Step::SetIds,
        Step::RearmParentDeathSignal,
        Step::NoNestedUserNamespaces,
        Step::MakeRootPrivate,
        Step::MountBase,
        Step::PivotToBase,
        Step::MountNewRoot,
        Step::Mkdir,
        Step::Symlink,
        Step::MountPoint,
        Step::Bind,
        Step::BindHarden,
        Step::MountTmpfs,
        Step::MountProc,
        Step::SealMount,
        Step::PivotRoot,
        Step::DetachOldRoot,
        Step::RemountRootReadOnly,
        Step::Chdir,
        Step::Hostname,
        Step::Loopback,
        Step::Rlimits,
        Step::JoinCgroup,
        Step::CgroupNamespace,
        Step::DropBounding,
        Step::ClearAmbient,
        Step::DropCapabilities,
        Step::NewSession,
        Step::NoNewPrivs,
        Step::PlaceFds,
        Step::WaitForProgram,
        Step::CloseFds,
        Step::ForkTarget,
        Step::WaitForTracer,
        Step::ServeGate,
        Step::Landlock,
        Step::Seccomp,
        Step::Exec,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Step::ParentDeathSignal => "parent_death_signal",
            Step::WaitForMaps => "wait_for_maps",
            Step::CgroupNamespace => "cgroup_namespace",
            Step::JoinCgroup => "join_cgroup",
            Step::ResetSignals => "reset_signals",
            Step::MakeRootPrivate => "make_root_private",
            Step::MountBase => "mount_base",
            Step::PivotToBase => "pivot_to_base",
            Step::MountNewRoot => "mount_new_root",
            Step::Mkdir => "mkdir",
            Step::Symlink => "symlink",
            Step::MountPoint => "mount_point",
            Step::Bind => "bind",
            Step::BindHarden => "bind_harden",
            Step::MountTmpfs => "mount_tmpfs",
            Step::MountProc => "mount_proc",
            Step::SealMount => "seal_mount",
            Step::PivotRoot => "pivot_root",
            Step::DetachOldRoot => "detach_old_root",
            Step::RemountRootReadOnly => "remount_root_read_only",
            Step::Chdir => "chdir",
            Step::Hostname => "hostname",
            Step::Loopback => "loopback",
            Step::Rlimits => "rlimits",
            Step::Securebits => "securebits",
            Step::DropBounding => "drop_bounding_set",
            Step::ClearAmbient => "clear_ambient",
            Step::SetIds => "set_ids",
            Step::RearmParentDeathSignal => "rearm_parent_death_signal",
            Step::NoNestedUserNamespaces => "no_nested_user_namespaces",
            Step::DropCapabilities => "drop_capabilities",
            Step::NewSession => "new_session",
            Step::NoNewPrivs => "no_new_privs",
            Step::PlaceFds => "place_fds",
            Step::WaitForProgram => "wait_for_program",
            Step::CloseFds => "close_fds",
            Step::ForkTarget => "fork_target",
            Step::WaitForTracer => "wait_for_tracer",
            Step::ServeGate => "serve_gate",
            Step::Landlock => "landlock",
            Step::Seccomp => "seccomp",
            Step::Exec => "exec",
        }
    }

    pub fn from_u32(value: u32) -> Option<Step> {
        Step::ALL.iter().copied().find(|s| *s as u32 == value)
    }
}

/// What a failing step writes to the error pipe: step, errno, and which plan entry it was
/// working on (an index into the plan's filesystem operations, or `u32::MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub step: Step,
    pub errno: i32,
    pub item: u32,
}

pub const RECORD_LEN: usize = 12;

impl Failure {
    pub fn encode(step: Step, errno: i32, item: u32) -> [u8; RECORD_LEN] {
        let mut out = [0u8; RECORD_LEN];
        out[0..4].copy_from_slice(&(step as u32).to_ne_bytes());
        out[4..8].copy_from_slice(&errno.to_ne_bytes());
        out[8..12].copy_from_slice(&item.to_ne_bytes());
        out
    }

    pub fn decode(bytes: &[u8; RECORD_LEN]) -> Option<Failure> {
        let word = |i: usize| [bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]];
        Some(Failure {
            step: Step::from_u32(u32::from_ne_bytes(word(0)))?,
            errno: i32::from_ne_bytes(word(4)),
            item: u32::from_ne_bytes(word(8)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        for step in Step::ALL {
            let rec = Failure::encode(step, libc::EPERM, 7);
            assert_eq!(
                Failure::decode(&rec),
                Some(Failure {
                    step,
                    errno: libc::EPERM,
                    item: 7
                })
            );
        }
    }

    #[test]
    fn names_are_unique_and_numbers_dense() {
        let mut names: Vec<_> = Step::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Step::ALL.len());
        for (i, s) in Step::ALL.iter().enumerate() {
            assert_eq!(*s as u32, u32::try_from(i).unwrap() + 1);
        }
    }

    #[test]
    fn garbage_record_is_rejected() {
        assert_eq!(Failure::decode(&[0xff; RECORD_LEN]), None);
    }
}
