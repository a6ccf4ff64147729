//! seccomp, no_new_privs and who we are: what installing a syscall filter needs.

use nix::errno::Errno;
use serde::Serialize;

use super::{Error, Failure, read_trimmed};

/// `CAP_SYS_ADMIN` from linux/capability.h (libc does not define the numbers).
const CAP_SYS_ADMIN: u32 = 21;

const ACTIONS_AVAIL: &str = "/proc/sys/kernel/seccomp/actions_avail";

/// The action names the kernel uses in `actions_avail`, with their return values, for
/// asking `seccomp(SECCOMP_GET_ACTION_AVAIL)` when /proc/sys is not readable.
const ACTIONS: [(&str, u32); 8] = [
    ("kill_process", libc::SECCOMP_RET_KILL_PROCESS),
    ("kill_thread", libc::SECCOMP_RET_KILL_THREAD),
    ("trap", libc::SECCOMP_RET_TRAP),
    ("errno", libc::SECCOMP_RET_ERRNO),
    ("user_notif", libc::SECCOMP_RET_USER_NOTIF),
    ("trace", libc::SECCOMP_RET_TRACE),
    ("log", libc::SECCOMP_RET_LOG),
    ("allow", libc::SECCOMP_RET_ALLOW),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Seccomp {
    /// Whether this process can install a seccomp BPF filter (given no_new_privs).
    pub available: bool,
    /// This process's own mode now: `disabled`, or `filter` when something above us (a
    /// container runtime, a parent sandbox) already installed filters; ours stack on top.
    pub current_mode: &'static str,
    /// Filter return actions the kernel supports (`kill_process`, `trap`, `errno`, `log`...).
    pub actions: Vec<String>,
    /// Where `actions` came from: the /proc file, or asking the kernel action by action.
    pub actions_source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoNewPrivs {
    /// `prctl(PR_SET_NO_NEW_PRIVS)` exists; an unprivileged filter needs it.
    pub supported: bool,
    /// Already set on this process (inherited from whoever started plugjail).
    pub set: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Privileges {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub root: bool,
    /// CAP_SYS_ADMIN in the effective set (namespaces without a user namespace need it).
    pub cap_sys_admin: bool,
}

pub fn privileges() -> Privileges {
    let euid = nix::unistd::geteuid().as_raw();
    Privileges {
        uid: nix::unistd::getuid().as_raw(),
        euid,
        gid: nix::unistd::getgid().as_raw(),
        root: euid == 0,
        cap_sys_admin: crate::jail::capget_effective()
            .is_ok_and(|effective| effective & (1 << CAP_SYS_ADMIN) != 0),
    }
}

pub fn no_new_privs() -> NoNewPrivs {
    // SAFETY: PR_GET_NO_NEW_PRIVS takes no pointer arguments and only returns a flag.
    let ret = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    NoNewPrivs {
        supported: ret >= 0,
        set: ret == 1,
    }
}

pub fn seccomp() -> Seccomp {
    let (available, error) = match seccomp_filter() {
        Ok(()) => (true, None),
        Err(e) => (false, Some(Failure::from(e))),
    };
    // SAFETY: PR_GET_SECCOMP takes no pointer arguments and only returns the mode.
    let mode = unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) };
    let current_mode = match mode {
        0 => "disabled",
        2 => "filter",
        _ => "unknown",
    };
    let (actions, actions_source) = match read_trimmed(ACTIONS_AVAIL) {
        Ok(Some(list)) => (
            list.split_whitespace().map(str::to_owned).collect(),
            ACTIONS_AVAIL,
        ),
        _ if available => (asked_actions(), "seccomp(SECCOMP_GET_ACTION_AVAIL)"),
        _ => (Vec::new(), "none"),
    };
    Seccomp {
        available,
        current_mode,
        actions,
        actions_source,
        error,
    }
}

/// Whether this process can install a seccomp filter: filter mode is supported when
/// `seccomp(SECCOMP_SET_MODE_FILTER)` with a NULL program fails with EFAULT (the kernel got
/// as far as reading it) rather than EINVAL or ENOSYS (or an errno some filter above us
/// answers for `seccomp`). The kernel copies the program before any other check, so
/// nothing is installed.
///
/// The one probe of seccomp filters: doctor reports it ([`seccomp`]) and the jail plan
/// compiles its filter only when it succeeds (or refuses `enforcement.seccomp: required`).
pub fn seccomp_filter() -> Result<(), Error> {
    // SAFETY: the program pointer is NULL, so the kernel fails the copy with EFAULT and
    // installs nothing; no memory of ours is read or written.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0u32,
            std::ptr::null::<libc::c_void>(),
        )
    };
    match (ret, Errno::last()) {
        (r, Errno::EFAULT) if r < 0 => Ok(()),
        (r, errno) if r < 0 => Err(Error::Syscall {
            syscall: "seccomp(SECCOMP_SET_MODE_FILTER)",
            errno,
        }),
        // Cannot happen with a NULL program; treat success as support.
        _ => Ok(()),
    }
}

fn asked_actions() -> Vec<String> {
    ACTIONS
        .iter()
        .filter(|(_, action)| {
            // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from the pointer, which points
            // at a live local for the duration of the call.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_GET_ACTION_AVAIL,
                    0u32,
                    action as *const u32,
                )
            };
            ret == 0
        })
        .map(|(name, _)| (*name).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asking_the_kernel_agrees_with_the_proc_file() {
        let Ok(Some(list)) = read_trimmed(ACTIONS_AVAIL) else {
            crate::probe::skip(&format!("{ACTIONS_AVAIL} not readable"));
            return;
        };
        let from_file: Vec<&str> = list.split_whitespace().collect();
        assert_eq!(asked_actions(), from_file);
    }
}
