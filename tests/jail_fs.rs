//! Files: host secrets are invisible, bound paths outside Landlock's read list are
//! refused, writes outside the allowed paths fail and leave the host unchanged (each layer
//! alone keeps a bound directory unchanged), and the kernel's and cgroupfs's knobs
//! (/proc/sys, /sys/fs/cgroup) are out of reach.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{
    Failures, SHIPPED, TempDir, extend_profile, jail, jail_modes, label, profile_for, unique,
};

// ---------------------------------------------------------------------------------------
// Files: reading secrets, writing the host

#[test]
fn host_secrets_are_not_visible() {
    let modes = jail_modes();
    let home = TempDir::outside_profiles("home", 0o755);
    let secret = home.write("secret.txt", "the caller's secret\n", 0o644);
    let tmp_home = TempDir::in_system_tmp("home", 0o755);
    let tmp_secret = tmp_home.write("secret.txt", "a secret in host /tmp\n", 0o644);
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let profile_path = profile_for(mode, profile);
            for path in [Path::new("/etc/shadow"), &secret, &tmp_secret] {
                let args = ["read", path.to_str().unwrap()];
                let run = jail(mode, &profile_path, &args);
                let check = run.check_denied_at(&profile_path, path, &["ENOENT"]);
                failures.check(&label(profile, &args), &run, check);
            }
        }
    }
    failures.finish();
}

/// Bound into the jail but not in Landlock's read list: Landlock refuses (as root, the
/// mapped uid would otherwise pass the DAC check on /etc/shadow).
#[test]
fn bound_paths_outside_landlock_read_are_refused() {
    let modes = jail_modes();
    let home = TempDir::outside_profiles("home", 0o755);
    let secret = home.write("secret.txt", "the caller's secret\n", 0o644);
    let dir = TempDir::new("profiles", 0o755);
    let profile = extend_profile(
        &dir,
        "ci-tests-bind-etc",
        "ci-tests",
        &format!(
            "filesystem:\n  read_only: [/etc, {}]\n",
            home.path().display()
        ),
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        for path in [Path::new("/etc/shadow"), Path::new("/etc/passwd"), &secret] {
            let args = ["read", path.to_str().unwrap()];
            let run = jail(mode, &profile, &args);
            failures.check(
                &label("ci-tests + bind /etc and home", &args),
                &run,
                run.check_denied_at(&profile, path, &["EACCES"]),
            );
        }
    }
    failures.finish();
}

/// A directory on the host with one file in it, to attack and then inspect.
struct Victim {
    dir: TempDir,
    existing: PathBuf,
}

const ORIGINAL: &str = "original contents\n";

impl Victim {
    fn new(dir: TempDir) -> Victim {
        // World-writable, so plain permissions would let uid 65534 in: only the jail stops it.
        dir.chmod(0o777);
        let existing = dir.write("existing.txt", ORIGINAL, 0o666);
        Victim { dir, existing }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// The directory still holds exactly the original file, unchanged.
    fn check(&self, failures: &mut Failures, what: &str) {
        let contents = fs::read_to_string(&self.existing).unwrap_or_default();
        if contents != ORIGINAL {
            failures.fail(format!(
                "{what}: {} on the host changed: it holds {contents:?}",
                self.existing.display()
            ));
        }
        let names: Vec<String> = fs::read_dir(self.dir.path())
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if names != ["existing.txt"] {
            failures.fail(format!(
                "{what}: {} on the host now holds {names:?}, not just existing.txt",
                self.dir.path().display()
            ));
        }
    }
}

/// Removes a host path an attack should not have created, reporting it if it exists.
fn check_absent(failures: &mut Failures, path: &Path) {
    if path.symlink_metadata().is_ok() {
        failures.fail(format!(
            "{} was created on the host by a jailed program",
            path.display()
        ));
        let _ = fs::remove_file(path).or_else(|_| fs::remove_dir(path));
    }
}

#[test]
fn writes_outside_the_allowed_paths_fail_and_the_host_is_unchanged() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    let victims = [
        // Where no profile mounts or grants anything.
        Victim::new(TempDir::outside_profiles("victim", 0o777)),
        // In host /tmp: the jail's /tmp must be its own.
        Victim::new(TempDir::in_system_tmp("victim", 0o777)),
    ];
    for &mode in &modes {
        for profile in SHIPPED {
            let usr = PathBuf::from(format!("/usr/{}", unique("plugjail-hostile")));
            let root = PathBuf::from(format!("/{}", unique("plugjail-hostile")));
            let mut cases: Vec<(Vec<String>, &[&str])> = vec![];
            for v in &victims {
                cases.push((vec!["write".into(), v.path("existing.txt")], &["ENOENT"]));
                cases.push((vec!["create".into(), v.path("new.txt")], &["ENOENT"]));
            }
            // /usr is a read-only bind: the mount refuses before Landlock is asked.
            cases.push((vec!["create".into(), usr.display().to_string()], &["EROFS"]));
            // The jail's root is the jail's own; whether it is read-only or Landlock
            // refuses, nothing may be created there.
            cases.push((
                vec!["create".into(), root.display().to_string()],
                &["EROFS", "EACCES"],
            ));
            if profile != "strict" {
                // strict does not allow mkdir at all (seccomp).
                let dir = format!("{}-dir", root.display());
                cases.push((vec!["mkdir".into(), dir], &["EROFS", "EACCES"]));
            }
            let profile_path = profile_for(mode, profile);
            for (args, errnos) in &cases {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, &profile_path, &args);
                let check = run.check_denied_at(&profile_path, Path::new(args[1]), errnos);
                failures.check(&label(profile, &args), &run, check);
            }
            check_absent(&mut failures, &usr);
            check_absent(&mut failures, &root);
            check_absent(&mut failures, Path::new(&format!("{}-dir", root.display())));
            for v in &victims {
                v.check(&mut failures, &format!("[{}] under {profile}", mode.name()));
            }
        }
    }
    failures.finish();
}

/// A read-only bind stays read-only even where Landlock would allow writing, and a
/// read-write bind is not writable where Landlock does not allow it.
#[test]
fn each_layer_alone_keeps_a_bound_directory_unchanged() {
    let modes = jail_modes();
    let dir = TempDir::new("profiles", 0o755);
    let mut failures = Failures::default();
    for &mode in &modes {
        let ro = Victim::new(TempDir::outside_profiles("victim-ro", 0o777));
        let rw = Victim::new(TempDir::outside_profiles("victim-rw", 0o777));
        let ro_profile = extend_profile(
            &dir,
            &unique("ro-bind-landlock-write"),
            "ci-tests",
            &format!(
                "filesystem:\n  read_only: [{d}]\nlandlock:\n  read: [{d}]\n  write: [{d}]\n",
                d = ro.dir.path().display()
            ),
        );
        let rw_profile = extend_profile(
            &dir,
            &unique("rw-bind-no-landlock-write"),
            "ci-tests",
            &format!(
                "filesystem:\n  read_write: [{d}]\nlandlock:\n  read: [{d}]\n",
                d = rw.dir.path().display()
            ),
        );
        for (victim, profile, name, errno) in [
            (&ro, &ro_profile, "read-only bind, Landlock write", "EROFS"),
            (
                &rw,
                &rw_profile,
                "read-write bind, no Landlock write",
                "EACCES",
            ),
        ] {
            for args in [
                ["write".to_string(), victim.path("existing.txt")],
                ["create".to_string(), victim.path("new.txt")],
                ["mkdir".to_string(), victim.path("newdir")],
            ] {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, profile, &args);
                let check = run.check_denied_at(profile, Path::new(args[1]), &[errno]);
                failures.check(&label(name, &args), &run, check);
            }
            // Reading is allowed in both: the bind really is there.
            let args = ["read", &victim.path("existing.txt")];
            let run = jail(mode, profile, &args);
            let check = match run.result() {
                Some(r) if r.starts_with("escaped") && run.stdout.contains("original contents") => {
                    Ok(())
                }
                _ => Err(
                    "the bound file could not be read, so the write checks prove nothing".into(),
                ),
            };
            failures.check(&label(name, &args), &run, check);
            victim.check(&mut failures, &format!("[{}] {name}", mode.name()));
        }
    }
    failures.finish();
}

// ---------------------------------------------------------------------------------------
// Kernel and cgroup knobs

#[test]
fn proc_sys_and_cgroupfs_are_not_writable() {
    let modes = jail_modes();
    let hostname = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let name = unique("plugjail-hostile");
    let mut failures = Failures::default();
    for &mode in &modes {
        for profile in SHIPPED {
            let mut cases: Vec<(Vec<String>, &[&str])> = vec![
                // /proc is mounted with subset=pid: /proc/sys and the other global knobs
                // do not exist in the jail at all.
                (
                    vec!["rewrite".into(), "/proc/sys/kernel/hostname".into()],
                    &["ENOENT"],
                ),
                (
                    vec!["open_write".into(), "/proc/sysrq-trigger".into()],
                    &["ENOENT"],
                ),
                // No profile names /sys: it is not there.
                (
                    vec!["open_write".into(), "/sys/fs/cgroup/cgroup.procs".into()],
                    &["ENOENT"],
                ),
                (
                    vec![
                        "open_write".into(),
                        "/sys/fs/cgroup/memory/cgroup.procs".into(),
                    ],
                    &["ENOENT"],
                ),
            ];
            if profile != "strict" {
                cases.push((
                    vec!["mkdir".into(), format!("/sys/fs/cgroup/{name}")],
                    &["ENOENT"],
                ));
                cases.push((
                    vec!["mkdir".into(), format!("/sys/fs/cgroup/memory/{name}")],
                    &["ENOENT"],
                ));
            }
            for (args, errnos) in &cases {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let run = jail(mode, &profile_for(mode, profile), &args);
                failures.check(&label(profile, &args), &run, run.check_denied(errnos));
            }
        }
    }
    if fs::read_to_string("/proc/sys/kernel/hostname").unwrap() != hostname {
        failures.fail("the host's hostname changed".into());
    }
    if let Ok(entries) = fs::read_dir("/sys/fs/cgroup") {
        for e in entries.filter_map(Result::ok) {
            check_absent(&mut failures, &e.path().join(&name));
        }
    }
    check_absent(&mut failures, &Path::new("/sys/fs/cgroup").join(&name));
    failures.finish();
}
