//! Who runs plugjail (root, or rootless as uid 65534 through `setpriv`), and which of
//! those modes this machine supports.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::OnceLock;

use super::{NOBODY, probe, skip};

/// Who runs plugjail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// As root (only when the tests run as root).
    Root,
    /// As an ordinary user: uid/gid 65534 via `setpriv` when the tests run as root, else
    /// the user running the tests.
    Rootless,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Root => "root",
            Mode::Rootless => "rootless",
        }
    }

    /// The host uid a process started in this mode runs as.
    pub fn uid(self) -> u32 {
        match self {
            Mode::Root => 0,
            Mode::Rootless if probe::is_root() => NOBODY,
            // SAFETY: getuid has no preconditions and cannot fail.
            Mode::Rootless => unsafe { libc::getuid() },
        }
    }

    /// A command for `program` that runs as this mode's user.
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        if self == Mode::Rootless && probe::is_root() {
            let mut cmd = Command::new("setpriv");
            cmd.arg(format!("--reuid={NOBODY}"))
                .arg(format!("--regid={NOBODY}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }
}

/// The modes a jail test can run in on this machine. Prints (or, under strict, fails on)
/// the reason for each mode that is missing; an empty list means the caller returns.
pub fn jail_modes() -> Vec<Mode> {
    static MODES: OnceLock<(Vec<Mode>, Vec<String>)> = OnceLock::new();
    let (modes, reasons) = MODES.get_or_init(|| {
        let mut modes = vec![];
        let mut reasons = vec![];
        if !probe::seccomp() {
            reasons.push("seccomp kill_process is not available".to_string());
        }
        match probe::landlock_abi() {
            // The shipped profiles require IPC scopes (ABI 6).
            Some(abi) if abi >= 6 => {}
            Some(abi) => reasons.push(format!("Landlock ABI {abi} < 6 (IPC scopes)")),
            None => reasons.push("Landlock is not enabled in this kernel".to_string()),
        }
        if !reasons.is_empty() {
            return (modes, reasons);
        }
        if probe::is_root() {
            match probe::user_namespaces(None) {
                Ok(()) => modes.push(Mode::Root),
                Err(e) => reasons.push(format!("root: {e}")),
            }
        } else {
            reasons.push("tests do not run as root: root-mode jail tests skipped".to_string());
        }
        let uid = probe::is_root().then_some(NOBODY);
        match probe::user_namespaces(uid) {
            Ok(()) => modes.push(Mode::Rootless),
            Err(e) => reasons.push(format!("rootless: {e}")),
        }
        (modes, reasons)
    });
    for r in reasons {
        skip(r);
    }
    modes.clone()
}
