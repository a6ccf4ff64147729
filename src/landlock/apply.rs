//! Landlock, child side: [`LandlockPlan::apply`] creates the ruleset, adds the prepared
//! path and port rules and restricts the calling thread. Raw syscalls on data the parent
//! prepared: no allocation, no lock, safe after `clone`. It fails closed: once the plan
//! enforces (the kernel has Landlock), every failed call is an error for the jail's (step,
//! errno) record, whatever `compat` says; `compat` only decides, in `prepare`, what the
//! kernel may leave out.

use nix::errno::Errno;

use super::{ApplyFailure, LandlockPlan, NetPortAttr, PathRule, RulesetAttr};

/// `struct landlock_path_beneath_attr`, packed in the kernel's header.
#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

const RULE_PATH_BENEATH: libc::c_uint = 1;
const RULE_NET_PORT: libc::c_uint = 2;

/// Closes `fd` when dropped, so every early return in the child releases it. Drop runs
/// no allocator code: it is one close(2).
struct Fd(libc::c_int);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: the fd was returned by the kernel to this code and is closed only here.
        unsafe { libc::close(self.0) };
    }
}

impl LandlockPlan {
    /// Child side, called after pivot_root (so the paths are those inside the jail) and after
    /// no_new_privs, just before seccomp and exec: landlock_create_ruleset, open each path
    /// O_PATH|O_CLOEXEC and landlock_add_rule, close, landlock_restrict_self. Raw syscalls
    /// (libc::syscall), no allocation. A rule path that does not exist inside the jail is
    /// skipped (it grants nothing). Returns the errno of the failing call.
    pub fn apply(&self) -> Result<(), Errno> {
        self.apply_detailed().map_err(|f| f.errno)
    }

    /// [`apply`](Self::apply), saying which call (and which path rule) failed.
    pub fn apply_detailed(&self) -> Result<(), ApplyFailure> {
        if !self.enforce {
            return Ok(());
        }
        let fail = |call, rule| ApplyFailure {
            call,
            rule,
            errno: Errno::last(),
        };
        // SAFETY: `attr` is a live, initialised struct and `attr_size` is at most its size.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_create_ruleset,
                &self.attr as *const RulesetAttr,
                self.attr_size,
                0 as libc::c_uint,
            )
        };
        // A new descriptor, or -1 (errno).
        let ruleset = match libc::c_int::try_from(ret) {
            Ok(fd) if fd >= 0 => Fd(fd),
            _ => return Err(fail("landlock_create_ruleset", None)),
        };
        for (i, rule) in self.paths.iter().enumerate() {
            self.add_path(ruleset.0, rule)
                .map_err(|call| fail(call, Some(i)))?;
        }
        for port in &self.ports {
            // SAFETY: `port` is a live `landlock_net_port_attr`; the kernel only reads it.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_landlock_add_rule,
                    ruleset.0,
                    RULE_NET_PORT,
                    port as *const NetPortAttr,
                    0 as libc::c_uint,
                )
            };
            if ret < 0 {
                return Err(fail("landlock_add_rule", None));
            }
        }
        // SAFETY: integer arguments only (the ruleset built above and no flags); no memory
        // is passed. It restricts the calling thread, in the jail the child's only one.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_restrict_self,
                ruleset.0,
                0 as libc::c_uint,
            )
        };
        if ret < 0 {
            return Err(fail("landlock_restrict_self", None));
        }
        Ok(())
    }

    /// Adds one path rule; a path missing inside the jail grants nothing and is skipped.
    fn add_path(&self, ruleset: libc::c_int, rule: &PathRule) -> Result<(), &'static str> {
        // SAFETY: `rule.path` is a NUL-terminated string owned by the plan.
        let fd = unsafe { libc::open(rule.path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return match Errno::last() {
                Errno::ENOENT | Errno::ENOTDIR => Ok(()),
                _ => Err("open"),
            };
        }
        let fd = Fd(fd);
        // SAFETY: all-zero bytes are a valid `struct stat` (plain integers).
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `fd` is open and `st` is a valid out pointer for the call.
        if unsafe { libc::fstat(fd.0, &mut st) } < 0 {
            return Err("fstat");
        }
        let access = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
            rule.access
        } else {
            rule.access & self.file_access
        };
        if access == 0 {
            return Ok(());
        }
        let attr = PathBeneathAttr {
            allowed_access: access,
            parent_fd: fd.0,
        };
        // SAFETY: `attr` is a live `landlock_path_beneath_attr`; the kernel only reads it.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &attr as *const PathBeneathAttr,
                0 as libc::c_uint,
            )
        };
        if ret < 0 {
            return Err("landlock_add_rule");
        }
        Ok(())
    }
}
