//! The program to run: opened on the host once, copied into a sealed memfd, executed from
//! that fd inside the jail.
//!
//! [`open`] checks the file and makes the (empty) memfd; [`Target::fill`] copies the bytes
//! and seals them. The supervisor fills it after the clone, while the child builds its
//! mounts, and the child waits for it (child step 24c) before the target exists.
//!
//! Opening before the jail exists means the program's directory need not be visible inside,
//! and sealing the copy means nothing (not the host, not the jail) can change the bytes
//! between the checks here and the exec. Only ELF executables are accepted: a `#!` script
//! would be run by its interpreter through `/dev/fd/N`, which a close-on-exec memfd does not
//! survive, and keeping the fd open would hand it to the script's interpreter.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `MFD_EXEC` (Linux 6.3): ask for an executable memfd explicitly, so a host with
/// `vm.memfd_noexec=1` does not silently give us a non-executable one.
const MFD_EXEC: libc::c_uint = 0x10;

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("{path}: command not found")]
    NotFound { path: PathBuf },
    #[error("{path}: cannot open: {source}")]
    Open { path: PathBuf, source: io::Error },
    #[error("{path}: cannot execute: {reason}")]
    CannotExecute { path: PathBuf, reason: &'static str },
    #[error("{path}: cannot copy into a memfd ({syscall}): {source}")]
    Memfd {
        path: PathBuf,
        syscall: &'static str,
        source: io::Error,
    },
}

impl TargetError {
    /// The exit status the shell convention gives this failure.
    pub fn exit_status(&self) -> u8 {
        match self {
            TargetError::NotFound { .. } => 127,
            TargetError::Open { source, .. } if source.kind() == io::ErrorKind::NotFound => 127,
            TargetError::Open { .. } | TargetError::CannotExecute { .. } => 126,
            TargetError::Memfd { .. } => 125,
        }
    }
}

/// A checked program and the memfd its copy goes into.
#[derive(Debug)]
pub struct Target {
    /// The host path that was opened.
    pub path: PathBuf,
    /// Close-on-exec memfd for the program's bytes: empty until [`Target::fill`], which
    /// seals it.
    pub memfd: OwnedFd,
    /// The opened program, at its start, until the copy.
    source: File,
}

impl Target {
    /// Moves the memfd to a descriptor number at or above `min_fd`.
    ///
    /// The seccomp filter allows exactly one exec: `execveat` of this descriptor number.
    /// The program's hard `RLIMIT_NOFILE` is then set to `min_fd`, so after that exec (which
    /// closes the memfd) nothing in the jail can ever own that number again: `dup2` and
    /// every open fail with EBADF/EMFILE above the limit, and raising a hard limit needs a
    /// capability the jail does not have. Without this the program could put another
    /// executable at the same number and reuse the rule.
    pub fn place_at_or_above(&mut self, min_fd: RawFd) -> Result<(), TargetError> {
        raise_fd_soft_limit(min_fd);
        // SAFETY: F_DUPFD_CLOEXEC duplicates a descriptor we own into a new one; no pointers.
        let fd = unsafe { libc::fcntl(self.memfd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min_fd) };
        if fd < 0 {
            return Err(TargetError::Memfd {
                path: self.path.clone(),
                syscall: "fcntl(F_DUPFD_CLOEXEC)",
                source: io::Error::last_os_error(),
            });
        }
        // SAFETY: fcntl just returned this new descriptor and nothing else owns it; the old
        // one is closed when it is dropped here.
        self.memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(())
    }
}

/// Lets this process hold descriptor numbers up to `fd` (soft limit up to the hard one;
/// no privilege needed). If the hard limit is lower, F_DUPFD fails and says so.
fn raise_fd_soft_limit(fd: RawFd) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok(fd) = u64::try_from(fd) else {
        return; // no descriptor number is negative: nothing to allow
    };
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft <= fd
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(fd + 1).max(soft), hard);
    }
}

/// Finds `cmd` like a shell does: a name without `/` is searched in `path_var` (plugjail's
/// own PATH on the host).
pub fn resolve(cmd: &OsStr, path_var: Option<&OsStr>) -> Result<PathBuf, TargetError> {
    if cmd.as_bytes().contains(&b'/') {
        return Ok(PathBuf::from(cmd));
    }
    let not_found = || TargetError::NotFound {
        path: PathBuf::from(cmd),
    };
    if cmd.is_empty() {
        return Err(not_found());
    }
    let path_var = path_var.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(path_var) {
        let candidate = dir.join(cmd);
        if let Ok(meta) = candidate.metadata()
            && meta.is_file()
            && meta.permissions().mode() & 0o111 != 0
        {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

/// Opens the program, checks it is an executable ELF file, and copies it into a sealed memfd.
pub fn open(cmd: &OsStr) -> Result<Target, TargetError> {
    let path = resolve(cmd, std::env::var_os("PATH").as_deref())?;
    let open_err = |source: io::Error| TargetError::Open {
        path: path.clone(),
        source,
    };
    let cannot = |reason| TargetError::CannotExecute {
        path: path.clone(),
        reason,
    };
    // O_NONBLOCK: a FIFO opens at once instead of waiting for a writer (and is refused
    // below); on a regular file the flag changes nothing. O_NOCTTY: a terminal device never
    // becomes our controlling terminal. std adds O_CLOEXEC.
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .map_err(open_err)?;
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() {
        return Err(cannot("not a regular file"));
    }
    if nix::unistd::access(&path, nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(cannot("permission denied (no execute permission)"));
    }
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(open_err)?;
    match &magic[..n] {
        [0x7f, b'E', b'L', b'F'] => {}
        [b'#', b'!', ..] => {
            return Err(cannot(
                "scripts are not supported: run the interpreter with the script as an argument",
            ));
        }
        _ => return Err(cannot("not an ELF executable")),
    }
    file.rewind().map_err(open_err)?;
    let memfd = memfd(&path)?;
    Ok(Target {
        path,
        memfd,
        source: file,
    })
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn memfd_error(path: &Path, syscall: &'static str) -> impl FnOnce(io::Error) -> TargetError {
    let path = path.to_path_buf();
    move |source| TargetError::Memfd {
        path,
        syscall,
        source,
    }
}

/// An empty memfd that can be executed and sealed.
fn memfd(path: &Path) -> Result<OwnedFd, TargetError> {
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    let create = |flags| {
        // SAFETY: the name is a static NUL-terminated string.
        let fd = unsafe { libc::memfd_create(c"plugjail-target".as_ptr(), flags) };
        if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            // SAFETY: memfd_create just returned this fd and nothing else owns it.
            Ok(unsafe { OwnedFd::from_raw_fd(fd) })
        }
    };
    // Kernels before 6.3 do not know MFD_EXEC (EINVAL) and make executable memfds anyway.
    match create(flags | MFD_EXEC) {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => create(flags),
        other => other,
    }
    .map_err(memfd_error(path, "memfd_create"))
}

impl Target {
    /// Copies the program into its memfd and seals it: nothing can change the bytes from
    /// here to the exec. Called before the target is forked; a memfd already sealed is
    /// left as it is.
    pub fn fill(&self) -> Result<(), TargetError> {
        // SAFETY: F_GET_SEALS on an fd we own; no pointers.
        if unsafe { libc::fcntl(self.memfd.as_raw_fd(), libc::F_GET_SEALS) } & libc::F_SEAL_SEAL
            != 0
        {
            return Ok(());
        }
        let mut memfd = File::from(
            self.memfd
                .try_clone()
                .map_err(memfd_error(&self.path, "dup"))?,
        );
        io::copy(&mut &self.source, &mut memfd).map_err(memfd_error(&self.path, "copy"))?;
        let seals =
            libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS takes an integer argument on an fd we own.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(memfd_error(&self.path, "fcntl(F_ADD_SEALS)")(
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_searched_in_path_and_paths_are_taken_as_is() {
        let found = resolve(OsStr::new("sh"), Some(OsStr::new("/nonexistent:/bin"))).unwrap();
        assert_eq!(found, Path::new("/bin/sh"));
        let rel = resolve(OsStr::new("./x"), None).unwrap();
        assert_eq!(rel, Path::new("./x"));
        let missing = resolve(OsStr::new("no-such-cmd-xyz"), Some(OsStr::new("/bin")));
        assert_eq!(missing.unwrap_err().exit_status(), 127);
    }

    #[test]
    fn elf_is_sealed_in_a_memfd_and_scripts_are_refused() {
        let t = open(OsStr::new("/bin/true")).unwrap();
        t.fill().unwrap();
        t.fill()
            .expect("a second fill leaves the sealed copy as it is");
        assert!(
            t.memfd.as_raw_fd() >= 0
                && std::fs::metadata(format!("/proc/self/fd/{}", t.memfd.as_raw_fd()))
                    .unwrap()
                    .len()
                    > 0
        );
        // SAFETY: F_GET_SEALS on an fd we own.
        let seals = unsafe { libc::fcntl(t.memfd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & libc::F_SEAL_WRITE, libc::F_SEAL_WRITE);
        assert_eq!(seals & libc::F_SEAL_SEAL, libc::F_SEAL_SEAL);
        let dir = std::env::temp_dir().join(format!("plugjail-target-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("s.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.join("data");
        std::fs::write(&data, "plain").unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        let s = open(script.as_os_str()).unwrap_err();
        let d = open(data.as_os_str()).unwrap_err();
        let missing = open(dir.join("missing").as_os_str()).unwrap_err();
        // A FIFO nobody writes to: refused, not waited on (on another thread, so that a
        // regression fails after 10 s instead of hanging the test).
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a NUL-terminated path; mkfifo only creates the node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o755) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let fifo_path = fifo.clone();
        std::thread::spawn(move || tx.send(open(fifo_path.as_os_str()).map(drop)));
        let f = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("opening a FIFO with no writer blocked")
            .unwrap_err();
        let dev = open(OsStr::new("/dev/zero")).unwrap_err();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(f.exit_status(), 126, "{f}");
        assert!(f.to_string().ends_with("not a regular file"), "{f}");
        assert_eq!(dev.exit_status(), 126, "{dev}");
        assert_eq!(s.exit_status(), 126, "{s}");
        assert!(s.to_string().contains("scripts are not supported"));
        assert_eq!(d.exit_status(), 126, "{d}");
        assert_eq!(missing.exit_status(), 127, "{missing}");
    }
}
