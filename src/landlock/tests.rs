//! Landlock's tests: the rules `prepare` derives for a kernel ABI (pure), and their effect in
//! a forked child that applies them (read, write, exec, TCP, scopes, the shipped profiles).

use std::ffi::CString;
use std::io::Write;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use ::landlock::{AccessFs, AccessNet};
use nix::errno::Errno;

use super::rules::{EXECUTE_ACCESS, READ_ACCESS, kernel_abi, prepare_for_abi, write_access};
use super::*;
use crate::profile::{Landlock, Level, Scope};
use crate::seccomp::tests::{Exit, errno, no_new_privs, run_in_child, true_binary};

/// Skips (returns false) when the kernel's ABI is below `needed`, saying why; under
/// PLUGJAIL_TEST_STRICT=1 a skip is a failure.
fn have_abi(needed: u32, what: &str) -> bool {
    let abi = kernel_abi().expect("probe landlock abi");
    if abi >= needed {
        return true;
    }
    let reason = format!("skip: {what} needs landlock abi {needed}, this kernel has {abi}");
    if std::env::var("PLUGJAIL_TEST_STRICT").as_deref() == Ok("1") {
        panic!("{reason} (PLUGJAIL_TEST_STRICT=1)");
    }
    eprintln!("{reason}");
    false
}

fn policy(compat: Level) -> Landlock {
    Landlock {
        compat,
        read: Vec::new(),
        write: Vec::new(),
        execute: Vec::new(),
        tcp_bind: Vec::new(),
        tcp_connect: Vec::new(),
        scopes: Vec::new(),
    }
}

/// A scratch directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("plugjail-landlock-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn file(&self, rel: &str) -> PathBuf {
        let path = self.0.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, b"data").expect("write");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn cstr(path: &Path) -> CString {
    CString::new(path.as_os_str().as_encoded_bytes()).expect("path")
}

/// open(2) in the child: Ok, or the errno.
fn open(path: &CString, flags: libc::c_int) -> Result<(), i32> {
    // SAFETY: NUL-terminated path owned by the test.
    let fd = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: fd was just opened here.
    unsafe { libc::close(fd) };
    Ok(())
}

fn restrict(plan: &LandlockPlan) -> bool {
    no_new_privs() && plan.apply().is_ok()
}

#[test]
fn required_fails_in_prepare_when_the_kernel_cannot_enforce() {
    let mut want = policy(Level::Required);
    want.tcp_connect = vec![443];
    want.scopes = vec![Scope::Signal];
    // A kernel of the 6.1 kind (Landlock ABI 2): no truncate, TCP, ioctl or scope rules.
    let err = prepare_for_abi(&want, 2).unwrap_err();
    assert_eq!(
        err.to_string(),
        "landlock is required but this kernel (landlock abi 2) cannot enforce: truncation \
         control (needs abi 3); TCP port rules (needs abi 4); device ioctl control (needs \
         abi 5); scope signal (needs abi 6); set landlock.compat: best_effort to run \
         without it"
    );
    assert!(prepare_for_abi(&want, 0).is_err());
    want.compat = Level::BestEffort;
    let plan = prepare_for_abi(&want, 5).expect("best effort");
    assert_eq!(plan.report().status, "partial");
    assert_eq!(plan.report().dropped, ["scope signal (needs abi 6)"]);
    assert_eq!(plan.attr.scoped, 0);
    assert_eq!(plan.attr_size, 16);
    let plan = prepare_for_abi(&want, 0).expect("best effort");
    assert_eq!(plan.report().status, "not_enforced");
    assert!(!plan.enforce);
    assert_eq!(plan.report().dropped.len(), 5);
    want.compat = Level::Required;
    assert_eq!(
        prepare_for_abi(&want, 7).expect("abi 7").report().status,
        "full"
    );
}

#[test]
fn rights_follow_the_lists_and_paths_are_merged() {
    let mut want = policy(Level::Required);
    want.read = vec!["/a".into(), "/b".into()];
    want.write = vec!["/b".into()];
    want.execute = vec!["/c".into()];
    want.tcp_bind = vec![8080];
    want.tcp_connect = vec![8080, 443];
    let plan = prepare_for_abi(&want, 7).expect("plan");
    let rights: Vec<_> = plan
        .paths
        .iter()
        .map(|r| (r.path.to_str().expect("utf-8"), r.access))
        .collect();
    assert_eq!(
        rights,
        [
            ("/a", READ_ACCESS),
            (
                "/b",
                (READ_ACCESS | write_access()) & plan.attr.handled_access_fs
            ),
            ("/c", EXECUTE_ACCESS)
        ]
    );
    assert_eq!(write_access() & AccessFs::MakeChar as u64, 0);
    let ports: Vec<_> = plan
        .ports
        .iter()
        .map(|p| (p.port, p.allowed_access))
        .collect();
    let (bind, connect) = (AccessNet::BindTcp as u64, AccessNet::ConnectTcp as u64);
    assert_eq!(ports, [(443, connect), (8080, bind | connect)]);
    assert_eq!(plan.attr.handled_access_net, bind | connect);
    want.read = vec!["relative".into()];
    assert!(matches!(
        prepare_for_abi(&want, 7),
        Err(LandlockError::RelativePath { .. })
    ));
}

#[test]
fn read_is_denied_outside_read_paths_and_allowed_inside() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    let tmp = TempDir::new("read");
    let inside = cstr(&tmp.file("inside/file"));
    let outside = cstr(&tmp.file("outside/file"));
    let mut want = policy(Level::BestEffort);
    want.read = vec![tmp.0.join("inside"), tmp.0.join("missing-in-this-jail")];
    want.write = vec![tmp.0.join("inside/file")];
    let plan = prepare(&want).expect("prepare");
    let end = run_in_child(|| {
        if !restrict(&plan) {
            return 2;
        }
        if open(&inside, libc::O_RDONLY).is_err() {
            return 3;
        }
        if open(&outside, libc::O_RDONLY) != Err(libc::EACCES) {
            return 4;
        }
        // A file rule: write granted on the file itself (directory rights masked off).
        if open(&inside, libc::O_WRONLY).is_err() {
            return 5;
        }
        if open(&outside, libc::O_WRONLY) != Err(libc::EACCES) {
            return 6;
        }
        0
    });
    assert_eq!(end, Exit::Code(0));
}

/// connect(2) to 127.0.0.1:port in the child: Ok, or the errno.
fn connect(port: u16) -> Result<(), i32> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(-errno());
    }
    let addr = libc::sockaddr_in {
        sin_family: libc::sa_family_t::try_from(libc::AF_INET).unwrap(),
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: `addr` is a valid sockaddr_in of the size passed.
    let ret = unsafe {
        libc::connect(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            libc::socklen_t::try_from(size_of::<libc::sockaddr_in>()).unwrap(),
        )
    };
    let result = if ret == 0 { Ok(()) } else { Err(errno()) };
    // SAFETY: fd was opened above.
    unsafe { libc::close(fd) };
    result
}

#[test]
fn tcp_connect_is_denied_unless_the_port_is_listed() {
    if !have_abi(4, "landlock tcp rules") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port();
    let mut want = policy(Level::Required);
    want.tcp_connect = vec![port.wrapping_add(1).max(1)];
    let denied = prepare(&want).expect("prepare");
    want.tcp_connect = vec![port];
    let allowed = prepare(&want).expect("prepare");
    let end = run_in_child(|| {
        if !restrict(&denied) {
            return 2;
        }
        match connect(port) {
            Err(libc::EACCES) => 0,
            Ok(()) => 3,
            Err(_) => 4,
        }
    });
    assert_eq!(end, Exit::Code(0), "connect to an unlisted port");
    let end = run_in_child(|| {
        if !restrict(&allowed) {
            return 2;
        }
        if connect(port).is_ok() { 0 } else { 3 }
    });
    assert_eq!(end, Exit::Code(0), "connect to a listed port");
}

#[test]
fn signal_scope_denies_signalling_outside_the_domain() {
    if !have_abi(6, "landlock scopes") {
        return;
    }
    let mut want = policy(Level::Required);
    want.scopes = vec![Scope::Signal];
    let plan = prepare(&want).expect("prepare");
    let parent = std::process::id() as libc::pid_t;
    let end = run_in_child(|| {
        if !restrict(&plan) {
            return 2;
        }
        // SAFETY: signal 0 only checks permission; nothing is delivered.
        let ret = unsafe { libc::kill(parent, 0) };
        if ret == -1 && errno() == libc::EPERM {
            0
        } else {
            3
        }
    });
    assert_eq!(end, Exit::Code(0));
}

/// A sealed memfd holding a copy of `bin`, as `plugjail exec` prepares its target.
fn sealed_memfd(bin: &Path) -> OwnedFd {
    let name = CString::new("plugjail-target").expect("name");
    // SAFETY: NUL-terminated name; the returned fd is owned below.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    assert!(fd >= 0, "memfd_create: {}", Errno::last());
    // SAFETY: fd was just returned by memfd_create and is owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(fd.try_clone().expect("dup"));
    file.write_all(&std::fs::read(bin).expect("read target"))
        .expect("copy");
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: integer fcntl on an fd we own.
    let ret = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) };
    assert_eq!(ret, 0, "seal: {}", Errno::last());
    fd
}

/// Runs `argv` from a sealed memfd copy of `bin` in a child restricted by `want`, the
/// way `plugjail exec` starts its target; returns how it ended.
fn exec_memfd_under(want: &Landlock, bin: &Path, argv: &[&str]) -> Exit {
    let plan = prepare(want).expect("prepare");
    let memfd = sealed_memfd(bin);
    let fd = memfd.as_raw_fd();
    let args: Vec<CString> = argv
        .iter()
        .map(|a| CString::new(*a).expect("arg"))
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp = [std::ptr::null::<libc::c_char>()];
    let empty = CString::default();
    let null = std::fs::File::options()
        .write(true)
        .open("/dev/null")
        .expect("null");
    let null = null.as_raw_fd();
    run_in_child(|| {
        if !restrict(&plan) {
            return 2;
        }
        // Keep the target's output out of the test log.
        // SAFETY: dup2 onto this child's own stdout; `null` is open in it.
        unsafe { libc::dup2(null, libc::STDOUT_FILENO) };
        // SAFETY: NUL-terminated strings and NULL-terminated arrays owned by the parent
        // frame, alive for the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                empty.as_ptr(),
                argv.as_ptr(),
                envp.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        // Exec failed: report the errno as the exit code (EACCES = 13).
        100 + errno()
    })
}

fn system_paths() -> Vec<PathBuf> {
    ["/usr", "/lib", "/lib64", "/etc/ld.so.cache"]
        .iter()
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .collect()
}

#[test]
fn memfd_exec_works_with_the_loader_under_an_execute_path() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    let bin = true_binary().expect("no /usr/bin/true");
    let mut want = policy(Level::BestEffort);
    want.read = system_paths();
    want.execute = system_paths();
    // The memfd lives on the kernel's internal shmem mount, which no Landlock rule can
    // name; the kernel lets it through. The loader it names must be executable.
    assert_eq!(exec_memfd_under(&want, &bin, &["true"]), Exit::Code(0));
}

#[test]
fn memfd_exec_fails_when_the_loader_is_not_under_an_execute_path() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    let bin = true_binary().expect("no /usr/bin/true");
    let mut want = policy(Level::BestEffort);
    want.read = system_paths();
    assert_eq!(
        exec_memfd_under(&want, &bin, &["true"]),
        Exit::Code(100 + libc::EACCES),
        "the kernel opens the ELF interpreter for exec, which needs EXECUTE"
    );
}

#[test]
fn memfd_itself_needs_no_execute_rule() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    // ldconfig is static on glibc systems: no interpreter, no library to open.
    let Some(bin) = ["/usr/sbin/ldconfig", "/sbin/ldconfig"]
        .iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        eprintln!("skip: no static ldconfig to exec");
        return;
    };
    // Nothing readable or executable at all; the memfd still executes.
    let want = policy(Level::BestEffort);
    assert_eq!(
        exec_memfd_under(&want, bin, &["ldconfig", "--version"]),
        Exit::Code(0)
    );
}

#[test]
fn libraries_need_only_read_and_the_interpreter_execute() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    let bin = true_binary().expect("no /usr/bin/true");
    let interp = if cfg!(target_arch = "aarch64") {
        "/lib/ld-linux-aarch64.so.1"
    } else {
        "/lib64/ld-linux-x86-64.so.2"
    };
    // Landlock judges the file a symlink resolves to: /lib64/ld-linux… lives under
    // /usr/lib on merged-/usr systems, so the rule must name where it really is.
    let real = std::fs::canonicalize(interp).expect("interpreter");
    let mut want = policy(Level::BestEffort);
    want.read = system_paths();
    want.execute = vec![PathBuf::from(interp)];
    let through_symlink = exec_memfd_under(&want, &bin, &["true"]);
    want.execute = vec![real.clone()];
    assert_eq!(
        exec_memfd_under(&want, &bin, &["true"]),
        Exit::Code(0),
        "execute on {} alone, libraries read-only",
        real.display()
    );
    if real != Path::new(interp) {
        // The rule opens the path (following the symlink), so it lands on the real file.
        assert_eq!(through_symlink, Exit::Code(0));
    }
    // But a rule on the interpreter's directory covers only what really lies beneath
    // it: on merged-/usr Debian, /lib64 holds just a symlink into /usr/lib.
    let dir = Path::new(interp).parent().expect("dir");
    let real_dir = std::fs::canonicalize(dir).expect("interpreter dir");
    want.execute = vec![dir.to_path_buf()];
    let expected = if real.starts_with(&real_dir) {
        Exit::Code(0)
    } else {
        Exit::Code(100 + libc::EACCES)
    };
    assert_eq!(exec_memfd_under(&want, &bin, &["true"]), expected);
}

#[test]
fn exec_by_path_needs_execute() {
    if !have_abi(1, "landlock filesystem rules") {
        return;
    }
    let bin = cstr(&true_binary().expect("no /usr/bin/true"));
    let mut want = policy(Level::BestEffort);
    want.read = system_paths();
    let plan = prepare(&want).expect("prepare");
    let argv = [bin.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null::<libc::c_char>()];
    let end = run_in_child(|| {
        if !restrict(&plan) {
            return 2;
        }
        // SAFETY: NUL-terminated path, NULL-terminated arrays, alive for the call.
        unsafe { libc::execve(bin.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        100 + errno()
    });
    assert_eq!(end, Exit::Code(100 + libc::EACCES));
}

#[test]
fn shipped_profiles_prepare_and_apply() {
    if !have_abi(6, "the shipped profiles' scopes") {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let passwd = CString::new("/etc/passwd").expect("path");
    let cache = CString::new("/etc/ld.so.cache").expect("path");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("profiles/") {
        let path = entry.expect("entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let p = crate::profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let plan = prepare(&p.landlock).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(plan.report().status, "full", "{}", path.display());
        // On the host the same paths exist (some as files: /dev/null, ld.so.cache).
        let end = run_in_child(|| {
            if !no_new_privs() {
                return 2;
            }
            if let Err(f) = plan.apply_detailed() {
                return 10 + f.rule.and_then(|r| i32::try_from(r).ok()).unwrap_or(50);
            }
            if open(&cache, libc::O_RDONLY).is_err() {
                return 3;
            }
            if open(&passwd, libc::O_RDONLY) != Err(libc::EACCES) {
                return 4;
            }
            0
        });
        assert_eq!(end, Exit::Code(0), "{}", path.display());
        seen += 1;
    }
    assert!(seen >= 4, "expected the four shipped profiles");
}

#[test]
fn the_jail_prepares_for_the_abi_doctor_reports() {
    // One probe: what `plugjail doctor` prints is what the jail's plan is built for.
    let doctor = crate::probe::landlock();
    let plan = prepare(&policy(Level::BestEffort)).expect("prepare");
    assert_eq!(plan.report().abi, doctor.abi);
}
