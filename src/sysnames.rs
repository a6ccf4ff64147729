//! Syscall names, numbers and the named groups profiles may use (`@basic-io`, …).
//!
//! Profiles name syscalls; the kernel filters numbers, and they differ per architecture.
//! Both tables come from the `syscalls` crate so that a profile written on x86_64 is
//! checked against aarch64 too, and a verdict can name a blocked syscall by its number.

use std::fmt;

use syscalls::{aarch64, x86_64};

/// The architectures profiles are checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::X86_64, Arch::Aarch64];

    /// The architecture this binary runs on.
    pub fn native() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The number of syscall `name` on `arch`, if it exists there.
pub fn number(arch: Arch, name: &str) -> Option<u32> {
    let id = match arch {
        Arch::X86_64 => name.parse::<x86_64::Sysno>().ok()?.id(),
        Arch::Aarch64 => name.parse::<aarch64::Sysno>().ok()?.id(),
    };
    u32::try_from(id).ok()
}

/// The name of syscall number `nr` on `arch`, if it has one.
pub fn name(arch: Arch, nr: u32) -> Option<&'static str> {
    let nr = usize::try_from(nr).ok()?;
    match arch {
        Arch::X86_64 => x86_64::Sysno::new(nr).map(|s| s.name()),
        Arch::Aarch64 => aarch64::Sysno::new(nr).map(|s| s.name()),
    }
}

/// Every syscall name known on any supported architecture.
/// The name of a constant passed as argument `index` of `syscall`, for the arguments
/// profiles most often condition on (ioctl requests, prctl options, socket families and
/// types). `None` for anything else.
pub fn arg_constant(syscall: &str, index: u8, value: u64) -> Option<&'static str> {
    const IOCTL: &[(u64, &str)] = &[
        (0x5401, "TCGETS"),
        (0x5402, "TCSETS"),
        (0x5403, "TCSETSW"),
        (0x5404, "TCSETSF"),
        (0x540e, "TIOCSCTTY"),
        (0x540f, "TIOCGPGRP"),
        (0x5410, "TIOCSPGRP"),
        (0x5412, "TIOCSTI"),
        (0x5413, "TIOCGWINSZ"),
        (0x5414, "TIOCSWINSZ"),
        (0x541b, "FIONREAD"),
        (0x5421, "FIONBIO"),
        (0x5450, "FIONCLEX"),
        (0x5451, "FIOCLEX"),
        (0x5452, "FIOASYNC"),
        (0x541c, "TIOCLINUX"),
    ];
    const PRCTL: &[(u64, &str)] = &[
        (1, "PR_SET_PDEATHSIG"),
        (2, "PR_GET_PDEATHSIG"),
        (3, "PR_GET_DUMPABLE"),
        (4, "PR_SET_DUMPABLE"),
        (8, "PR_SET_KEEPCAPS"),
        (15, "PR_SET_NAME"),
        (16, "PR_GET_NAME"),
        (22, "PR_SET_SECCOMP"),
        (23, "PR_CAPBSET_READ"),
        (24, "PR_CAPBSET_DROP"),
        (36, "PR_SET_CHILD_SUBREAPER"),
        (38, "PR_SET_NO_NEW_PRIVS"),
        (39, "PR_GET_NO_NEW_PRIVS"),
        (47, "PR_CAP_AMBIENT"),
        (0x5359_4d41, "PR_SET_VMA"),
    ];
    const DOMAIN: &[(u64, &str)] = &[
        (1, "AF_UNIX"),
        (2, "AF_INET"),
        (10, "AF_INET6"),
        (16, "AF_NETLINK"),
        (17, "AF_PACKET"),
        (38, "AF_ALG"),
        (40, "AF_VSOCK"),
    ];
    // Socket types may carry SOCK_NONBLOCK / SOCK_CLOEXEC in their high bits.
    const TYPE: &[(u64, &str)] = &[
        (1, "SOCK_STREAM"),
        (2, "SOCK_DGRAM"),
        (3, "SOCK_RAW"),
        (5, "SOCK_SEQPACKET"),
    ];
    let (table, value) = match (syscall, index) {
        ("ioctl", 1) => (IOCTL, value),
        ("prctl", 0) => (PRCTL, value),
        ("socket" | "socketpair", 0) => (DOMAIN, value),
        ("socket" | "socketpair", 1) => (TYPE, value & 0xf),
        _ => return None,
    };
    table.iter().find(|(v, _)| *v == value).map(|(_, n)| *n)
}

pub fn all_names() -> impl Iterator<Item = &'static str> {
    x86_64::Sysno::iter()
        .map(|s| s.name())
        .chain(aarch64::Sysno::iter().map(|s| s.name()))
}

pub fn is_known(name: &str) -> bool {
    Arch::ALL.iter().any(|&a| number(a, name).is_some())
}

/// A named set of syscalls, written `@name` in a profile.
pub struct Group {
    pub name: &'static str,
    pub about: &'static str,
    pub syscalls: &'static [&'static str],
}

/// The groups a profile may name. Each is small and about one kind of work, so that a
/// reviewer can read a profile's allowlist as a list of capabilities. Names that exist on
/// only one architecture (`open` is x86_64 only) are simply absent on the other.
pub const GROUPS: &[Group] = &[
    Group {
        name: "@basic-io",
        about: "read and write on file descriptors the program already holds",
        syscalls: &[
            "read",
            "write",
            "readv",
            "writev",
            "pread64",
            "pwrite64",
            "preadv",
            "pwritev",
            "preadv2",
            "pwritev2",
            "lseek",
            "close",
            "close_range",
            "dup",
            "dup2",
            "dup3",
            "fcntl",
            "fstat",
            "newfstatat",
            "statx",
        ],
    },
    Group {
        name: "@memory",
        about: "map, unmap and protect the program's own memory",
        syscalls: &[
            "brk",
            "mmap",
            "munmap",
            "mremap",
            "mprotect",
            "madvise",
            "mlock",
            "munlock",
            "msync",
            "mincore",
            "membarrier",
        ],
    },
    Group {
        name: "@file-read",
        about: "open and inspect files (what Landlock and the mounts allow)",
        syscalls: &[
            "open",
            "openat",
            "openat2",
            "stat",
            "lstat",
            "fstat",
            "newfstatat",
            "statx",
            "statfs",
            "fstatfs",
            "access",
            "faccessat",
            "faccessat2",
            "getdents64",
            "readlink",
            "readlinkat",
            "getcwd",
            "chdir",
            "fchdir",
            "fadvise64",
        ],
    },
    Group {
        name: "@file-write",
        about: "create, change and remove files (what Landlock and the mounts allow)",
        syscalls: &[
            "creat",
            "mkdir",
            "mkdirat",
            "rmdir",
            "unlink",
            "unlinkat",
            "rename",
            "renameat",
            "renameat2",
            "link",
            "linkat",
            "symlink",
            "symlinkat",
            "truncate",
            "ftruncate",
            "fallocate",
            "fsync",
            "fdatasync",
            "sync_file_range",
            "fchmod",
            "fchmodat",
            "utimensat",
            "umask",
            "memfd_create",
        ],
    },
    Group {
        name: "@threads",
        about: "start and synchronise threads",
        syscalls: &[
            "clone",
            "clone3",
            "futex",
            "futex_waitv",
            "set_robust_list",
            "get_robust_list",
            "rseq",
            "set_tid_address",
            "gettid",
            "sched_yield",
            "sched_getaffinity",
            "sched_setaffinity",
            "sched_getparam",
            "sched_getscheduler",
            "getcpu",
            "madvise",
        ],
    },
    Group {
        name: "@signals",
        about: "handle and wait for signals, signal the program itself (abort, raise)",
        syscalls: &[
            "rt_sigaction",
            "rt_sigprocmask",
            "rt_sigreturn",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "pause",
            "sigaltstack",
            "kill",
            "tgkill",
            "tkill",
            "restart_syscall",
        ],
    },
    Group {
        name: "@time",
        about: "read clocks and sleep",
        syscalls: &[
            "clock_gettime",
            "clock_getres",
            "gettimeofday",
            "time",
            "nanosleep",
            "clock_nanosleep",
        ],
    },
    Group {
        name: "@process-info",
        about: "learn the program's own identity and limits; exit",
        syscalls: &[
            "exit",
            "exit_group",
            "getpid",
            "getppid",
            "getuid",
            "geteuid",
            "getgid",
            "getegid",
            "getgroups",
            "getresuid",
            "getresgid",
            "getpgrp",
            "getpgid",
            "getsid",
            "uname",
            "getrlimit",
            "prlimit64",
            "getrusage",
            "sysinfo",
            "getrandom",
            "arch_prctl",
            "sched_getaffinity",
        ],
    },
    Group {
        name: "@poll",
        about: "wait on file descriptors; pipes and event fds",
        syscalls: &[
            "poll",
            "ppoll",
            "select",
            "pselect6",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_wait",
            "epoll_pwait",
            "epoll_pwait2",
            "eventfd",
            "eventfd2",
            "pipe",
            "pipe2",
        ],
    },
    Group {
        name: "@spawn",
        about: "start and wait for child processes",
        syscalls: &[
            "fork", "vfork", "clone", "clone3", "wait4", "waitid", "setpgid", "setsid", "prctl",
        ],
    },
    Group {
        name: "@exec",
        about: "replace the program with another executable",
        syscalls: &["execve", "execveat"],
    },
    Group {
        name: "@network",
        about: "sockets (what the network namespace and Landlock allow)",
        syscalls: &[
            "socket",
            "socketpair",
            "connect",
            "bind",
            "listen",
            "accept",
            "accept4",
            "sendto",
            "recvfrom",
            "sendmsg",
            "recvmsg",
            "sendmmsg",
            "recvmmsg",
            "shutdown",
            "getsockname",
            "getpeername",
            "setsockopt",
            "getsockopt",
        ],
    },
];

pub fn group(name: &str) -> Option<&'static Group> {
    GROUPS.iter().find(|g| g.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_differ_per_arch() {
        assert_eq!(number(Arch::X86_64, "read"), Some(0));
        assert_eq!(number(Arch::Aarch64, "read"), Some(63));
        assert_eq!(number(Arch::Aarch64, "open"), None);
        assert_eq!(name(Arch::X86_64, 101), Some("ptrace"));
        assert_eq!(name(Arch::X86_64, 9999), None);
    }

    #[test]
    fn every_group_member_exists_somewhere() {
        for g in GROUPS {
            assert!(g.name.starts_with('@'));
            for s in g.syscalls {
                assert!(is_known(s), "{} lists unknown syscall {s}", g.name);
            }
        }
    }
}
