//! The plan, built without a clone: the filesystem operations a profile turns into
//! (order, noexec, missing paths), the environment, descriptor ranges, rlimits, refused
//! paths and placed descriptors.

use std::ffi::OsString;
use std::path::Path;

use super::*;
use crate::jail::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use crate::profile::load_str;

fn profile(extra: &str) -> Profile {
    let text = format!("version: 1\n{extra}");
    load_str(Path::new("test.yaml"), &text).unwrap_or_else(|e| panic!("{e}"))
}

fn ci() -> Profile {
    crate::profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/ci-tests.yaml"))
        .unwrap()
}

fn s(c: &CStr) -> &str {
    c.to_str().unwrap()
}

/// The ops as readable strings: "mkdir /newroot/x", "bind /oldroot/usr /newroot/usr ro,...".
fn render(ops: &[FsStep]) -> Vec<String> {
    let attrs = |a: u64| {
        let mut out = Vec::new();
        for (bit, name) in [
            (MOUNT_ATTR_RDONLY, "ro"),
            (MOUNT_ATTR_NOSUID, "nosuid"),
            (MOUNT_ATTR_NODEV, "nodev"),
            (MOUNT_ATTR_NOEXEC, "noexec"),
        ] {
            if a & bit != 0 {
                out.push(name);
            }
        }
        out.join(",")
    };
    ops.iter()
        .map(|st| match &st.op {
            FsOp::Mkdir(p) => format!("mkdir {}", s(p)),
            FsOp::Symlink { target, path } => format!("symlink {} -> {}", s(path), s(target)),
            FsOp::Touch(p) => format!("touch {}", s(p)),
            FsOp::Bind { src, dst, attrs: a } => {
                format!("bind {} {} {}", s(src), s(dst), attrs(*a))
            }
            FsOp::Tmpfs { dst, flags, data } => format!(
                "tmpfs {} {}{}",
                s(dst),
                s(data),
                if flags & libc::MS_NOEXEC != 0 {
                    ",noexec"
                } else {
                    ""
                }
            ),
            FsOp::Proc { dst, data } => format!("proc {} {}", s(dst), s(data)),
            FsOp::Seal(dst) => format!("seal {}", s(dst)),
        })
        .collect()
}

#[test]
fn ci_profile_builds_the_expected_tree() {
    let (ops, missing) = fs_ops(&ci(), &template::builtin(), true).unwrap();
    let ops = render(&ops);
    let has = |line: &str| assert!(ops.iter().any(|o| o == line), "{line} not in {ops:#?}");
    has("bind /oldroot/usr /newroot/usr ro,nosuid,nodev");
    has("bind /oldroot/etc/ld.so.cache /newroot/etc/ld.so.cache ro,nosuid,nodev,noexec");
    has("touch /newroot/etc/ld.so.cache");
    has("tmpfs /newroot/tmp size=268435456,mode=1777");
    has("bind /oldroot/dev/null /newroot/dev/null nosuid,noexec");
    has("symlink /newroot/dev/fd -> /proc/self/fd");
    has("proc /newroot/proc subset=pid");
    assert_eq!(ops.last().map(String::as_str), Some("seal /newroot/dev"));
    // Template entries the profile mounts are left to the profile; the rest stay.
    has("mkdir /newroot/run");
    let tmp_mkdirs = ops.iter().filter(|o| *o == "mkdir /newroot/tmp").count();
    assert_eq!(tmp_mkdirs, 1, "{ops:#?}");
    // Merged /usr: host /lib is a symlink, recreated as one (never bound).
    if std::fs::symlink_metadata("/lib").is_ok_and(|m| m.file_type().is_symlink()) {
        has("symlink /newroot/lib -> usr/lib");
        assert!(!ops.iter().any(|o| o.starts_with("bind /oldroot/lib ")));
    }
    // /dev is mounted before its devices, and /dev/tty is not there unless asked.
    let dev = ops
        .iter()
        .position(|o| o.starts_with("tmpfs /newroot/dev "))
        .unwrap();
    let null = ops
        .iter()
        .position(|o| o.contains("/newroot/dev/null"))
        .unwrap();
    assert!(dev < null);
    assert!(!ops.iter().any(|o| o.contains("/dev/tty")));
    assert!(missing.iter().all(|p| !p.exists()));
}

#[test]
fn noexec_everywhere_landlock_does_not_allow_execution() {
    let p = profile(
        "filesystem:\n  read_only: [/usr, /etc]\n  read_write: [/var/tmp]\n  tmpfs: [{path: /tmp, size: 1M}]\n\
         landlock:\n  read: [/usr, /etc, /tmp]\n  write: [/tmp, /var/tmp]\n  execute: [/usr/bin]\n",
    );
    let (ops, _) = fs_ops(&p, &[], true).unwrap();
    let ops = render(&ops);
    let has = |line: &str| assert!(ops.iter().any(|o| o == line), "{line} not in {ops:#?}");
    // /usr holds /usr/bin, so the mount must allow exec; Landlock narrows it further.
    has("bind /oldroot/usr /newroot/usr ro,nosuid,nodev");
    has("bind /oldroot/etc /newroot/etc ro,nosuid,nodev,noexec");
    has("bind /oldroot/var/tmp /newroot/var/tmp nosuid,nodev,noexec");
    has("tmpfs /newroot/tmp size=1048576,mode=1777,noexec");
    has("mkdir /newroot/var");
}

#[test]
fn nested_mounts_come_after_their_parents() {
    let p = profile(
        "filesystem:\n  read_only: [/usr]\n  tmpfs: [{path: /usr/local/scratch, size: 1M}, {path: /a, size: 1M}]\n\
         landlock:\n  read: [/usr]\n",
    );
    let (ops, _) = fs_ops(&p, &[], false).unwrap();
    let ops = render(&ops);
    let pos = |prefix: &str| ops.iter().position(|o| o.starts_with(prefix)).unwrap();
    assert!(pos("bind /oldroot/usr ") < pos("tmpfs /newroot/usr/local/scratch "));
    assert!(
        !ops.iter().any(|o| o.starts_with("proc ")),
        "no proc without a PID namespace"
    );
}

#[test]
fn missing_host_paths_are_reported_not_bound() {
    let p = profile("filesystem:\n  read_only: [/usr, /no/such/path/plugjail]\n");
    let (ops, missing) = fs_ops(&p, &[], true).unwrap();
    assert_eq!(missing, [PathBuf::from("/no/such/path/plugjail")]);
    assert!(!render(&ops).iter().any(|o| o.contains("/no/such")));
}

#[test]
fn environment_is_the_allowlist_only() {
    let p =
        profile("environment:\n  pass: [LANG, TERM, UNSET]\n  set: {PATH: /usr/bin, TERM: dumb}\n");
    let host = |name: &str| match name {
        "LANG" => Some(OsString::from("C.UTF-8")),
        "TERM" => Some(OsString::from("xterm")),
        "SECRET" => Some(OsString::from("x")),
        _ => None,
    };
    let env = environment(&p, host).unwrap();
    let env: Vec<_> = env.iter().map(|c| c.to_str().unwrap()).collect();
    assert_eq!(env, ["LANG=C.UTF-8", "PATH=/usr/bin", "TERM=dumb"]);
}

#[test]
fn close_ranges_skip_kept_fds() {
    assert_eq!(close_ranges(&[]), [(3, u32::MAX)]);
    assert_eq!(close_ranges(&[7, 3, 5, 1]), [(4, 4), (6, 6), (8, u32::MAX)]);
    assert_eq!(close_ranges(&[4, 5]), [(3, 3), (6, u32::MAX)]);
}

#[test]
fn rlimits_cover_files_size_cpu_and_core() {
    let p = profile("limits:\n  open_files: 64\n  file_size: 1M\n  cpu_time: 1500ms\n");
    assert_eq!(open_files_limit(&p), 64);
    let r = rlimits(&p, open_files_limit(&p));
    let get = |res| r.iter().find(|(x, _)| *x == res).map(|(_, v)| *v);
    assert_eq!(get(libc::RLIMIT_NOFILE), Some(64));
    assert_eq!(get(libc::RLIMIT_FSIZE), Some(1 << 20));
    assert_eq!(
        get(libc::RLIMIT_CPU),
        Some(2),
        "cpu time rounds up to whole seconds"
    );
    assert_eq!(get(libc::RLIMIT_CORE), Some(0));
}

#[test]
fn open_files_are_always_limited() {
    // The exec rule's descriptor number sits at this limit, so it must always be set.
    let p = profile("");
    let n = open_files_limit(&p);
    assert!(n > 0 && n <= DEFAULT_OPEN_FILES, "{n}");
    let r = rlimits(&p, n);
    assert!(r.contains(&(libc::RLIMIT_NOFILE, n)));
}

#[test]
fn relative_or_dotdot_paths_are_refused() {
    assert!(check_path(Path::new("/usr/../etc")).is_err());
    assert!(check_path(Path::new("usr")).is_err());
    assert!(check_path(Path::new("/usr/lib")).is_ok());
}

#[test]
fn placed_descriptors_are_copied_above_the_range_and_checked() {
    use std::os::fd::{AsFd, AsRawFd};
    let p = profile("limits:\n  open_files: 64\n");
    let target = super::super::target::open(std::ffi::OsStr::new("/bin/true")).unwrap();
    let mut plan = build(&p, target, &[OsString::from("true")], |_| None).unwrap();
    let file = std::fs::File::open("/dev/null").unwrap();
    plan.place_fd(file.as_fd(), 3).unwrap();
    plan.place_fd(file.as_fd(), 1).unwrap();
    assert!(
        plan.fds
            .iter()
            .all(|f| f.source.as_raw_fd() > MAX_PLACED_FD)
    );
    assert_eq!(
        plan.fds.iter().map(|f| f.target).collect::<Vec<_>>(),
        [3, 1]
    );
    let twice = plan.place_fd(file.as_fd(), 3).unwrap_err();
    assert!(twice.to_string().contains("given twice"), "{twice}");
    assert!(plan.place_fd(file.as_fd(), 64).is_err());
    plan.release_fds();
    assert!(plan.fds.is_empty());
}
