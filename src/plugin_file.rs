//! Verified loading of a plugin (supervisor side, before anything runs).
//!
//! The `.so` is opened once, read fully, hashed, checked against the profile's sha256
//! allowlist, and copied into a sealed memfd. Only that memfd goes to the stub, which
//! dlopens `/proc/self/fd/N`: the path is never looked up again, so the bytes that were
//! checked are the bytes that run (no time-of-check/time-of-use gap).
//!
//! Only a regular file is read, and only when its size is within the cap: the path is
//! opened without blocking (a FIFO with no writer would otherwise hang the supervisor
//! before any deadline exists) and checked with `fstat` on that same descriptor before
//! a byte is read (a device such as /dev/zero never ends).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::profile::Plugin;

/// The largest plugin accepted: a bound on what the supervisor reads into memory.
pub const MAX_PLUGIN_BYTES: u64 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum PluginFileError {
    #[error("{path}: cannot open the plugin: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: cannot read the plugin: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: the plugin is {kind}, not a regular file")]
    NotRegular { path: PathBuf, kind: &'static str },
    #[error("{path}: the plugin is larger than {max} bytes")]
    TooLarge { path: PathBuf, max: u64 },
    #[error("{path}: not an ELF shared object")]
    NotElf { path: PathBuf },
    /// The `plugin_rejected` verdict.
    #[error("{path}: sha256 {actual} is not in the profile's plugin.sha256 allowlist")]
    HashRejected { path: PathBuf, actual: String },
    #[error("cannot copy {what} into a sealed memfd ({syscall}): {source}")]
    Memfd {
        what: &'static str,
        syscall: &'static str,
        source: io::Error,
    },
}

impl PluginFileError {
    /// True for the failures that make the verdict `plugin_rejected` (the plugin itself
    /// is refused) rather than `setup_failed`.
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            PluginFileError::HashRejected { .. }
                | PluginFileError::NotElf { .. }
                | PluginFileError::NotRegular { .. }
                | PluginFileError::TooLarge { .. }
        )
    }
}

/// A plugin whose bytes were checked, sealed in a memfd.
#[derive(Debug)]
pub struct VerifiedPlugin {
    /// Sealed (no write, grow, shrink or new seals), close-on-exec: clear the flag (or
    /// dup2 it) where it should reach the stub.
    pub memfd: OwnedFd,
    /// Lowercase hex SHA-256 of the bytes, for the verdict.
    pub sha256: String,
    pub len: u64,
}

/// Reads the plugin at `path` once, checks it against `policy.sha256` (when non-empty) and
/// seals its bytes into a memfd.
pub fn load(path: &Path, policy: &Plugin) -> Result<VerifiedPlugin, PluginFileError> {
    let open_err = |source| PluginFileError::Open {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a
    // writer (on a regular file the flag changes nothing). O_NOCTTY: a terminal device
    // never becomes our controlling terminal. std adds O_CLOEXEC.
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() {
        return Err(PluginFileError::NotRegular {
            path: path.to_path_buf(),
            kind: file_kind(meta.file_type()),
        });
    }
    if meta.len() > MAX_PLUGIN_BYTES {
        return Err(PluginFileError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_PLUGIN_BYTES,
        });
    }
    // Only a capacity hint (the read below is bounded either way).
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    // Still bounded: the file may grow between fstat and read.
    file.take(MAX_PLUGIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| PluginFileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_PLUGIN_BYTES {
        return Err(PluginFileError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_PLUGIN_BYTES,
        });
    }
    if !bytes.starts_with(b"\x7fELF") {
        return Err(PluginFileError::NotElf {
            path: path.to_path_buf(),
        });
    }
    let sha256 = hex(&Sha256::digest(&bytes));
    if !policy.sha256.is_empty()
        && !policy
            .sha256
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&sha256))
    {
        return Err(PluginFileError::HashRejected {
            path: path.to_path_buf(),
            actual: sha256,
        });
    }
    let memfd = sealed_memfd("plugjail-plugin", &bytes)?;
    Ok(VerifiedPlugin {
        memfd,
        sha256,
        len: bytes.len() as u64,
    })
}

/// Copies `bytes` into a new memfd (close-on-exec) and seals it against any change. Also
/// used for the serve-phase seccomp filter handed to the stub.
pub fn sealed_memfd(what: &'static str, bytes: &[u8]) -> Result<OwnedFd, PluginFileError> {
    let err = |syscall| {
        move |source| PluginFileError::Memfd {
            what,
            syscall,
            source,
        }
    };
    let name = std::ffi::CString::new(what).unwrap_or_default();
    // SAFETY: NUL-terminated name, valid flags; the result is checked before use.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(err("memfd_create")(io::Error::last_os_error()));
    }
    // SAFETY: memfd_create just returned this fd and nothing else owns it.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = File::from(fd);
    file.write_all(bytes).map_err(err("write"))?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: integer fcntl on the memfd we own.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(err("fcntl(F_ADD_SEALS)")(io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(file))
}

/// What a non-regular file is, for messages ("the plugin is a FIFO, not a regular file").
pub fn file_kind(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_file() {
        "a regular file"
    } else {
        "of an unknown file type"
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn so_path() -> PathBuf {
        // Any ELF file serves for the hash checks; the loader never runs it here.
        ["/usr/bin/true", "/bin/true"]
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("no /usr/bin/true")
    }

    #[test]
    fn allowlist_accepts_matching_hash_and_seals() {
        let path = so_path();
        let any = load(&path, &Plugin { sha256: vec![] }).expect("no allowlist");
        let listed = Plugin {
            sha256: vec!["00".repeat(32), any.sha256.to_uppercase()],
        };
        let v = load(&path, &listed).expect("listed");
        assert_eq!(v.sha256, any.sha256);
        // SAFETY: integer fcntl on an fd we own.
        let seals = unsafe { libc::fcntl(v.memfd.as_raw_fd(), libc::F_GET_SEALS) };
        let want = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
        assert_eq!(seals & want, want);
        let mut copy = Vec::new();
        File::open(format!("/proc/self/fd/{}", v.memfd.as_raw_fd()))
            .and_then(|mut f| f.read_to_end(&mut copy))
            .expect("read memfd");
        assert_eq!(copy, std::fs::read(&path).expect("read original"));
    }

    #[test]
    fn hash_not_in_allowlist_is_rejected() {
        let e = load(
            &so_path(),
            &Plugin {
                sha256: vec!["ab".repeat(32)],
            },
        )
        .unwrap_err();
        assert!(e.is_rejection());
        assert!(
            e.to_string()
                .contains("is not in the profile's plugin.sha256 allowlist"),
            "{e}"
        );
    }

    /// `load` on another thread, failing the test (instead of hanging it) after 10 s.
    fn load_within_10s(path: &Path) -> Result<VerifiedPlugin, PluginFileError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(load(&owned, &Plugin { sha256: vec![] }));
        });
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("load({}) still blocked after 10 s", path.display()))
    }

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fifo = dir.path().join("fifo.so");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: a NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
        for (path, kind) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a character device"),
            (dir.path(), "a directory"),
        ] {
            match load_within_10s(path) {
                Err(e @ PluginFileError::NotRegular { .. }) => {
                    assert!(e.is_rejection(), "{e}");
                    assert!(
                        e.to_string()
                            .ends_with(&format!("is {kind}, not a regular file")),
                        "{e}"
                    );
                }
                other => panic!("{}: {other:?}", path.display()),
            }
        }
    }

    #[test]
    fn an_oversized_file_is_refused_by_its_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("big.so");
        let f = File::create(&p).expect("create");
        // Sparse: no disk space, but reading it would still take 256 MiB of memory.
        f.set_len(MAX_PLUGIN_BYTES + 1).expect("ftruncate");
        assert!(matches!(
            load_within_10s(&p),
            Err(PluginFileError::TooLarge { .. })
        ));
    }

    #[test]
    fn non_elf_is_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("x.so");
        std::fs::write(&p, b"#!/bin/sh\n").expect("write");
        assert!(matches!(
            load(&p, &Plugin { sha256: vec![] }),
            Err(PluginFileError::NotElf { .. })
        ));
    }
}
