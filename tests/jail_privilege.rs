//! Capabilities and privilege: no capability can be regained, every mount is nosuid (and
//! nodev but for device nodes) and only what the profile names, and a setuid-root binary
//! grants nothing.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::{
    Failures, TempDir, attack, extend_profile, jail, jail_modes, label, probe, profile_for,
    shipped_profile, skip,
};

// ---------------------------------------------------------------------------------------
// Capabilities and privilege

#[test]
fn no_capability_can_be_regained() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    for &mode in &modes {
        let ci = shipped_profile("ci-tests");
        // Every capability set empty, no_new_privs set, a seccomp filter in force.
        let run = jail(mode, &ci, &["status"]);
        let check = run.check_safe().and_then(|()| {
            if run.stdout.lines().any(|l| l == "status: Seccomp:\t2") {
                Ok(())
            } else {
                Err("/proc/self/status does not show seccomp filter mode (Seccomp: 2)".into())
            }
        });
        failures.check(&label("ci-tests", &["status"]), &run, check);
        // prctl is allowed in ci-tests: raising an ambient capability needs it permitted.
        let run = jail(mode, &ci, &["ambient_raise"]);
        failures.check(
            &label("ci-tests", &["ambient_raise"]),
            &run,
            run.check_denied(&["EPERM"]),
        );
        for profile in ["default", "strict"] {
            let run = jail(mode, &profile_for(mode, profile), &["ambient_raise"]);
            failures.check(
                &label(profile, &["ambient_raise"]),
                &run,
                run.check_seccomp_violation("prctl"),
            );
        }
    }
    failures.finish();
}

/// Every mount in the jail is nosuid, and nodev except the device nodes themselves; and
/// the jail sees no mount the profile does not name.
#[test]
fn mounts_are_nosuid_nodev_and_only_what_the_profile_names() {
    let modes = jail_modes();
    let mut failures = Failures::default();
    let named = ["/usr", "/lib", "/lib64", "/bin", "/etc/ld.so.cache", "/tmp"];
    for &mode in &modes {
        let run = jail(mode, &shipped_profile("ci-tests"), &["mounts"]);
        let check = run.check_safe().and_then(|()| {
            let mut problems = vec![];
            for line in run.stdout.lines().filter_map(|l| l.strip_prefix("mount: ")) {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let (Some(point), Some(opts)) = (fields.get(1), fields.get(3)) else {
                    problems.push(format!("unparsable mount line {line:?}"));
                    continue;
                };
                let opts: Vec<&str> = opts.split(',').collect();
                let device = point.starts_with("/dev/");
                if !opts.contains(&"nosuid") {
                    problems.push(format!("{point} is not nosuid"));
                }
                if !device && *point != "/dev" && !opts.contains(&"nodev") {
                    problems.push(format!("{point} is not nodev"));
                }
                let allowed = *point == "/"
                    || *point == "/proc"
                    || point.starts_with("/proc/")
                    || *point == "/dev"
                    || device
                    || named.contains(point);
                if !allowed {
                    problems.push(format!(
                        "{point} is mounted but the profile does not name it"
                    ));
                }
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        });
        failures.check(&label("ci-tests", &["mounts"]), &run, check);
    }
    failures.finish();
}

/// A setuid-root executable, bound and executable in the jail, runs without privilege.
#[test]
fn a_setuid_binary_grants_no_privilege() {
    let modes = jail_modes();
    if !probe::is_root() {
        skip("creating a setuid-root file needs root");
        return;
    }
    let dir = TempDir::new("setuid", 0o755);
    let suid = dir.join("attack-suid");
    fs::copy(attack(), &suid).unwrap();
    std::os::unix::fs::chown(&suid, Some(0), Some(0)).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let profiles = TempDir::new("profiles", 0o755);
    let profile = extend_profile(
        &profiles,
        "ci-tests-setuid",
        "ci-tests",
        &format!(
            "filesystem:\n  read_only: [{d}]\nlandlock:\n  read: [{d}]\n  execute: [{d}]\n",
            d = dir.path().display()
        ),
    );
    let mut failures = Failures::default();
    for &mode in &modes {
        let args = ["exec_setuid", suid.to_str().unwrap()];
        let run = jail(mode, &profile, &args);
        // Either the exec is refused (a noexec mount) or the program runs with the euid
        // it had before.
        let check = run.check_safe().or_else(|safe| {
            run.check_denied(&["EACCES"])
                .map_err(|d| format!("{safe}; or: {d}"))
        });
        failures.check(&label("ci-tests + setuid dir", &args), &run, check);
    }
    failures.finish();
}
