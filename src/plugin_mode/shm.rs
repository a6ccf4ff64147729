//! `plugjail serve --shm-fd N`: the host's shared-memory region for calls
//! (docs/protocol.md, "Shared-memory calls"). plugjail does not read or write the region;
//! it checks that the profile lets the stub use it, that the host sealed it, and places it
//! in the jail (fd 9) for the stub, which maps it before the plugin loads.

use std::os::fd::RawFd;

use crate::profile::{Action, Phase, Profile};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShmCheckError {
    #[error(
        "--shm-fd: the profile's {phase} phase does not allow futex without conditions; the \
         stub sleeps and wakes the host with it (add `futex` to seccomp.{phase}.allow, or \
         call over the pipe)"
    )]
    NoFutex { phase: &'static str },
    #[error("--shm-fd: descriptor {fd} is not open")]
    NotOpen { fd: RawFd },
    #[error(
        "--shm-fd: descriptor {fd} is not a memfd sealed against shrinking and growing \
         (F_SEAL_SHRINK | F_SEAL_GROW)"
    )]
    NotSealed { fd: RawFd },
}

impl ShmCheckError {
    pub fn errno(&self) -> i32 {
        match self {
            ShmCheckError::NoFutex { .. } => libc::EPERM,
            ShmCheckError::NotOpen { .. } => libc::EBADF,
            ShmCheckError::NotSealed { .. } => libc::EINVAL,
        }
    }
}

/// True when `phase` allows `futex` whatever its arguments (by name, or in a group).
fn allows_futex(phase: &Phase) -> bool {
    phase.allow.iter().filter(|r| r.args.is_empty()).any(|r| {
        r.syscalls.iter().any(|s| {
            s == "futex" || crate::sysnames::group(s).is_some_and(|g| g.syscalls.contains(&"futex"))
        })
    })
}

/// The profile must let the stub sleep and wake on the region's futex words in both
/// phases (the load filter stays in force in the serve phase): refused, not run weaker.
pub fn check_profile(profile: &Profile) -> Result<(), ShmCheckError> {
    let s = &profile.seccomp;
    if s.default_action == Action::Log {
        return Ok(());
    }
    for (phase, rules) in [("load", &s.load), ("serve", &s.serve)] {
        if !allows_futex(rules) {
            return Err(ShmCheckError::NoFutex { phase });
        }
    }
    Ok(())
}

/// The region must be open and sealed against resizing: a region the stub's side could
/// shrink would fault (SIGBUS) in whoever maps it.
pub fn check_fd(fd: RawFd) -> Result<(), ShmCheckError> {
    // SAFETY: F_GET_SEALS takes no pointer; a non-memfd answers EINVAL.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals < 0 {
        // SAFETY: F_GETFD only queries the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Err(ShmCheckError::NotOpen { fd });
        }
        return Err(ShmCheckError::NotSealed { fd });
    }
    let want = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW;
    if seals & want != want {
        return Err(ShmCheckError::NotSealed { fd });
    }
    Ok(())
}

/// Makes the channel's read end non-blocking: the stub reads it only to notice the host's
/// end between futex sleeps, and must not block there (the description is shared, so this
/// reaches the stub's copy).
pub fn nonblocking(fd: RawFd) -> Result<(), i32> {
    // SAFETY: integer fcntl calls on an inherited descriptor.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_lets_the_stub_use_the_region() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        for name in ["default", "strict", "ci-tests", "audit"] {
            let p = crate::profile::load(&dir.join(format!("{name}.yaml"))).expect(name);
            assert_eq!(check_profile(&p), Ok(()), "{name}");
        }
    }

    #[test]
    fn a_profile_without_futex_in_serve_is_refused() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let mut p = crate::profile::load(&dir.join("strict.yaml")).expect("strict");
        for r in &mut p.seccomp.serve.allow {
            r.syscalls.retain(|s| s != "futex");
        }
        assert_eq!(
            check_profile(&p),
            Err(ShmCheckError::NoFutex { phase: "serve" })
        );
    }
}
