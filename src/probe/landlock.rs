//! Landlock: the ABI version the kernel reports, and what that version can enforce.

use nix::errno::Errno;
use serde::Serialize;

use super::{Error, Failure};

/// What each Landlock ABI added, in order: a kernel with ABI `n` has every feature whose
/// number is `<= n`. Features from ABIs newer than this table are not listed by name.
pub const LANDLOCK_FEATURES: [(u32, &str, &str); 7] = [
    (
        1,
        "fs",
        "filesystem access rules (read, write, execute, make, remove)",
    ),
    (2, "fs_refer", "cross-directory rename and link"),
    (3, "fs_truncate", "file truncation"),
    (4, "net_tcp", "TCP bind and connect by port"),
    (5, "ioctl_dev", "ioctl on device files"),
    (6, "scopes", "scopes: abstract unix sockets and signals"),
    (7, "logging", "audit logging of denials"),
];

/// `LANDLOCK_CREATE_RULESET_VERSION` from <linux/landlock.h>.
const CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Landlock {
    /// The kernel's Landlock ABI version; 0 when Landlock is not available.
    pub abi: u32,
    /// Short names of the features this ABI enables (`fs`, `net_tcp`, `scopes`...).
    pub features: Vec<&'static str>,
    /// Why the ABI is 0: `ENOSYS` (not built in) or `EOPNOTSUPP` (disabled at boot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// The kernel's Landlock ABI version, from
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`, or the call's errno:
/// `ENOSYS` when the kernel was built without Landlock, `EOPNOTSUPP` when it is built in but
/// not enabled at boot.
///
/// The one probe of the ABI: doctor reports its answer ([`landlock_abi`], `landlock`) and
/// the jail prepares its Landlock rules for it (`landlock::prepare`), so the two cannot
/// disagree about the kernel.
pub fn landlock_abi_errno() -> Result<u32, Errno> {
    // SAFETY: with LANDLOCK_CREATE_RULESET_VERSION the attribute pointer must be NULL and
    // the size 0; the kernel reads no memory and returns the version, not a file descriptor.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        return Err(Errno::last());
    }
    // The kernel returns an int; saturate rather than wrap should that ever change.
    Ok(u32::try_from(ret).unwrap_or(u32::MAX))
}

/// [`landlock_abi_errno`], with a failure named for the report.
pub fn landlock_abi() -> Result<u32, Error> {
    landlock_abi_errno().map_err(|errno| Error::Syscall {
        syscall: "landlock_create_ruleset",
        errno,
    })
}

pub fn landlock() -> Landlock {
    match landlock_abi() {
        Ok(abi) => Landlock {
            abi,
            features: features(abi),
            error: None,
        },
        Err(e) => Landlock {
            abi: 0,
            features: Vec::new(),
            error: Some(e.into()),
        },
    }
}

pub fn features(abi: u32) -> Vec<&'static str> {
    LANDLOCK_FEATURES
        .iter()
        .filter(|(n, _, _)| *n <= abi)
        .map(|(_, name, _)| *name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_grow_with_the_abi() {
        assert!(features(0).is_empty());
        assert_eq!(features(1), ["fs"]);
        assert!(features(4).contains(&"net_tcp"));
        assert!(!features(5).contains(&"scopes"));
        assert_eq!(features(9).len(), LANDLOCK_FEATURES.len());
    }
}
