//! Landlock, parent side: a profile's `landlock` section turned into a [`LandlockPlan`] for
//! the kernel's ABI. Decides every access right, port and scope, builds the C strings of the
//! paths, and fails closed (`compat: required`) when the kernel cannot enforce the profile.
//! May allocate; nothing here runs in the child.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::path::Path;

use ::landlock::{ABI, Access, AccessFs, AccessNet};
use nix::errno::Errno;

use super::{LandlockError, LandlockPlan, LandlockReport, NetPortAttr, PathRule, RulesetAttr};
use crate::profile::{Landlock, Level, Scope};

/// Parent side: read the ABI (the one probe), decide the handled access rights and the rules,
/// pre-build the C strings of the paths. With compat: required, anything the profile asks for
/// that this kernel cannot enforce is an error (fail closed); with best_effort it is recorded
/// in the report's `dropped` list.
pub fn prepare(landlock: &Landlock) -> Result<LandlockPlan, LandlockError> {
    let abi = kernel_abi().map_err(|errno| LandlockError::Probe { errno })?;
    prepare_for_abi(landlock, abi)
}

/// The kernel's Landlock ABI as the jail reads it (the one probe, `probe::landlock_abi_errno`):
/// 0 when the kernel has no Landlock (built without it: ENOSYS; not enabled at boot:
/// EOPNOTSUPP). Any other errno means the probe itself was refused: an error.
pub(super) fn kernel_abi() -> Result<u32, Errno> {
    match crate::probe::landlock_abi_errno() {
        Err(Errno::ENOSYS | Errno::EOPNOTSUPP) => Ok(0),
        other => other,
    }
}

/// What `write` grants on a directory: change its content. Not MAKE_CHAR / MAKE_BLOCK: no
/// plugin needs to create device nodes. REFER (moving files between write directories) and
/// RESOLVE_UNIX (connecting to a socket file, which plain file permissions tie to write)
/// where the ABI has them.
pub(super) fn write_access() -> u64 {
    [
        AccessFs::WriteFile,
        AccessFs::Truncate,
        AccessFs::RemoveDir,
        AccessFs::RemoveFile,
        AccessFs::MakeDir,
        AccessFs::MakeReg,
        AccessFs::MakeSock,
        AccessFs::MakeFifo,
        AccessFs::MakeSym,
        AccessFs::Refer,
        AccessFs::IoctlDev,
        AccessFs::ResolveUnix,
    ]
    .iter()
    .fold(0, |acc, a| acc | *a as u64)
}

/// `read` grants reading files and listing directories.
pub(super) const READ_ACCESS: u64 = AccessFs::ReadFile as u64 | AccessFs::ReadDir as u64;
/// `execute` grants exec, and reading: the dynamic loader opens libraries to map them.
pub(super) const EXECUTE_ACCESS: u64 = AccessFs::Execute as u64 | AccessFs::ReadFile as u64;

fn scope_bit(scope: Scope) -> u64 {
    match scope {
        Scope::AbstractUnixSocket => ::landlock::Scope::AbstractUnixSocket as u64,
        Scope::Signal => ::landlock::Scope::Signal as u64,
    }
}

/// Every Landlock feature the profile relies on, with the ABI that brings it. Network
/// rules are always handled (no port listed = no TCP bind/connect at all), so they always
/// count; cross-directory renames (ABI 2) do not: without them the kernel is stricter.
pub fn requirements(landlock: &Landlock) -> Vec<(u32, String)> {
    let mut needs: Vec<(u32, String)> = vec![
        (1, "filesystem rules".to_string()),
        (3, "truncation control".to_string()),
        (4, "TCP port rules".to_string()),
        (5, "device ioctl control".to_string()),
    ];
    for scope in &landlock.scopes {
        needs.push((6, format!("scope {}", scope.name())));
    }
    needs
}

/// What the profile implies and a kernel with `abi` cannot enforce.
fn unenforceable(landlock: &Landlock, abi: u32) -> Vec<String> {
    requirements(landlock)
        .into_iter()
        .filter(|(n, _)| *n > abi)
        .map(|(n, what)| format!("{what} (needs abi {n})"))
        .collect()
}

pub(super) fn prepare_for_abi(
    landlock: &Landlock,
    abi: u32,
) -> Result<LandlockPlan, LandlockError> {
    let missing = unenforceable(landlock, abi);
    if landlock.compat == Level::Required && !missing.is_empty() {
        return Err(LandlockError::Unenforceable { abi, missing });
    }
    let crate_abi = ABI::from(i32::try_from(abi).unwrap_or(i32::MAX));
    let handled_fs = AccessFs::from_all(crate_abi).bits();
    let handled_net = AccessNet::from_all(crate_abi).bits();
    let scopes = ::landlock::Scope::from_all(crate_abi).bits();
    let attr = RulesetAttr {
        handled_access_fs: handled_fs,
        handled_access_net: handled_net,
        scoped: landlock
            .scopes
            .iter()
            .map(|&s| scope_bit(s))
            .fold(0, |a, b| a | b)
            & scopes,
    };
    let attr_size = match abi {
        0..=3 => 8,
        4 | 5 => 16,
        _ => size_of::<RulesetAttr>(),
    };

    let mut by_path = BTreeMap::<&Path, u64>::new();
    let lists = [
        (&landlock.read, READ_ACCESS),
        (&landlock.write, write_access()),
        (&landlock.execute, EXECUTE_ACCESS),
    ];
    for (paths, access) in lists {
        for path in paths {
            *by_path.entry(path).or_default() |= access & handled_fs;
        }
    }
    let paths = by_path
        .into_iter()
        .map(|(path, access)| {
            if !path.is_absolute() {
                return Err(LandlockError::RelativePath { path: path.into() });
            }
            let path = CString::new(path.as_os_str().as_encoded_bytes())
                .map_err(|_| LandlockError::NulInPath { path: path.into() })?;
            Ok(PathRule { path, access })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut by_port = BTreeMap::<u16, u64>::new();
    for (ports, access) in [
        (&landlock.tcp_bind, AccessNet::BindTcp as u64),
        (&landlock.tcp_connect, AccessNet::ConnectTcp as u64),
    ] {
        for &port in ports {
            *by_port.entry(port).or_default() |= access & handled_net;
        }
    }
    let ports = by_port
        .into_iter()
        .filter(|&(_, access)| access != 0)
        .map(|(port, access)| NetPortAttr {
            allowed_access: access,
            port: u64::from(port),
        })
        .collect();

    let status = match (abi, missing.is_empty()) {
        (0, _) => "not_enforced",
        (_, true) => "full",
        (_, false) => "partial",
    };
    Ok(LandlockPlan {
        report: LandlockReport {
            abi,
            status,
            dropped: missing,
        },
        enforce: abi > 0,
        attr,
        attr_size,
        paths,
        file_access: AccessFs::from_file(crate_abi).bits(),
        ports,
    })
}
