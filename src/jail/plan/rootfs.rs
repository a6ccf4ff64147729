//! The jail's root filesystem in the plan: the rootfs template and the profile's
//! `filesystem` section turned into the child's mount operations ([`FsStep`]), parents
//! before children, with host paths inspected here (symlinks recreated, files and
//! directories told apart, missing paths listed) and `noexec` wherever Landlock's `execute`
//! list does not reach.

use std::ffi::CStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{FsOp, FsStep, NEW_ROOT, OLD_ROOT, PlanError, check_path, cstring, path_cstring};
use crate::jail::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::jail::template::Entry;
use crate::profile::Profile;

const DEV_TMPFS: &CStr = c"size=64k,nr_inodes=64,mode=0755";
/// Symlinks every /dev has; they point into the jail's own /proc.
const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// What a profile asks to appear at one jail path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Want {
    ReadOnly,
    ReadWrite,
    Tmpfs(u64),
    DevTmpfs,
    Device,
    Proc,
}

/// Whether programs may be executed from under `path`: only where Landlock's `execute`
/// list reaches (the same path, below it, or above it). Everything else is `noexec`.
fn executable(profile: &Profile, path: &Path) -> bool {
    profile
        .landlock
        .execute
        .iter()
        .any(|e| path.starts_with(e) || e.starts_with(path))
}

fn depth(path: &Path) -> usize {
    path.components().count()
}

/// Turns the template and the profile's filesystem section into child operations.
pub(super) fn fs_ops(
    profile: &Profile,
    tpl: &[Entry],
    pid_ns: bool,
) -> Result<(Vec<FsStep>, Vec<PathBuf>), PlanError> {
    let fs = &profile.filesystem;
    let mut wants: Vec<(PathBuf, Want)> = Vec::new();
    wants.extend(fs.read_only.iter().map(|p| (p.clone(), Want::ReadOnly)));
    wants.extend(fs.read_write.iter().map(|p| (p.clone(), Want::ReadWrite)));
    wants.extend(
        fs.tmpfs
            .iter()
            .map(|t| (t.path.clone(), Want::Tmpfs(t.size))),
    );
    wants.push((PathBuf::from("/dev"), Want::DevTmpfs));
    let mut devices = fs.devices.clone();
    devices.sort();
    devices.dedup();
    wants.extend(
        devices
            .iter()
            .map(|d| (Path::new("/dev").join(d.name()), Want::Device)),
    );
    if pid_ns {
        wants.push((PathBuf::from("/proc"), Want::Proc));
    }
    for (path, _) in &wants {
        check_path(path)?;
    }
    // Parents before children, so a mount never hides one made before it.
    wants.sort_by_key(|(p, _)| depth(p));

    let mut ops = Vec::new();
    let mut push = |op, about: &Path| {
        ops.push(FsStep {
            op,
            about: about.to_path_buf(),
        })
    };
    // The template, minus entries the profile mounts over or under: the profile wins.
    for entry in tpl {
        let jail_path = Path::new("/").join(entry.path());
        let symlink = matches!(entry, Entry::Symlink { .. });
        let clashes = wants
            .iter()
            .any(|(p, _)| jail_path.starts_with(p) || (symlink && p.starts_with(&jail_path)));
        if clashes {
            continue;
        }
        match entry {
            Entry::Dir(_) => push(FsOp::Mkdir(path_cstring(NEW_ROOT, &jail_path)?), &jail_path),
            Entry::Symlink { target, .. } => push(
                FsOp::Symlink {
                    target: cstring(target.as_os_str().as_bytes(), "a symlink target")?,
                    path: path_cstring(NEW_ROOT, &jail_path)?,
                },
                &jail_path,
            ),
        }
    }

    let mut missing = Vec::new();
    for (path, want) in &wants {
        let dst = path_cstring(NEW_ROOT, path)?;
        let mkdir_parents = |push: &mut dyn FnMut(FsOp, &Path)| -> Result<(), PlanError> {
            let mut ancestors: Vec<_> = path.ancestors().skip(1).collect();
            ancestors.reverse();
            for a in ancestors.into_iter().filter(|a| *a != Path::new("/")) {
                push(FsOp::Mkdir(path_cstring(NEW_ROOT, a)?), a);
            }
            Ok(())
        };
        let noexec = if executable(profile, path) {
            0
        } else {
            MOUNT_ATTR_NOEXEC
        };
        match want {
            Want::ReadOnly | Want::ReadWrite | Want::Device => {
                let meta = match std::fs::symlink_metadata(path) {
                    Ok(m) => m,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {
                        missing.push(path.clone());
                        continue;
                    }
                    Err(source) => {
                        return Err(PlanError::HostPath {
                            path: path.clone(),
                            source,
                        });
                    }
                };
                mkdir_parents(&mut push)?;
                if meta.file_type().is_symlink() && *want != Want::Device {
                    // A host symlink (e.g. /lib -> usr/lib) is recreated, not followed, so
                    // the jail sees the same layout and the link's target is bound on its own.
                    let target =
                        std::fs::read_link(path).map_err(|source| PlanError::HostPath {
                            path: path.clone(),
                            source,
                        })?;
                    let target = cstring(target.as_os_str().as_bytes(), "a symlink target")?;
                    push(FsOp::Symlink { target, path: dst }, path);
                    continue;
                }
                if meta.is_dir() {
                    push(FsOp::Mkdir(dst.clone()), path);
                } else {
                    push(FsOp::Touch(dst.clone()), path);
                }
                let attrs = match want {
                    Want::ReadOnly => MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    Want::ReadWrite => MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
                    // A device node must stay usable, so no nodev here; nothing to execute.
                    _ => MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
                };
                push(
                    FsOp::Bind {
                        src: path_cstring(OLD_ROOT, path)?,
                        dst,
                        attrs: attrs | noexec,
                    },
                    path,
                );
            }
            Want::Tmpfs(size) => {
                mkdir_parents(&mut push)?;
                push(FsOp::Mkdir(dst.clone()), path);
                let mut flags = libc::MS_NOSUID | libc::MS_NODEV;
                if noexec != 0 {
                    flags |= libc::MS_NOEXEC;
                }
                let data = cstring(format!("size={size},mode=1777").as_bytes(), "tmpfs")?;
                push(FsOp::Tmpfs { dst, flags, data }, path);
            }
            Want::DevTmpfs => {
                push(FsOp::Mkdir(dst.clone()), path);
                let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                let data = DEV_TMPFS.to_owned();
                push(FsOp::Tmpfs { dst, flags, data }, path);
                for (name, target) in DEV_LINKS {
                    let link = path.join(name);
                    push(
                        FsOp::Symlink {
                            target: cstring(target.as_bytes(), "a symlink target")?,
                            path: path_cstring(NEW_ROOT, &link)?,
                        },
                        &link,
                    );
                }
            }
            Want::Proc => {
                push(FsOp::Mkdir(dst.clone()), path);
                // Only the jail's own processes, and none of /proc/sys, /proc/kcore, ...
                let data = cstring(b"subset=pid", "proc options")?;
                push(FsOp::Proc { dst, data }, path);
            }
        }
    }
    // /dev is populated now; nothing may add files or replace its symlinks.
    let dev = Path::new("/dev");
    push(FsOp::Seal(path_cstring(NEW_ROOT, dev)?), dev);
    Ok((ops, missing))
}
