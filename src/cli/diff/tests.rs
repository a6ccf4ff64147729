use std::path::Path;

use super::*;
use crate::profile::load_str;

fn p(text: &str) -> Profile {
    load_str(Path::new("p.yaml"), &format!("version: 1\n{text}")).unwrap_or_else(|e| panic!("{e}"))
}

/// (area, text) of each list, for compact assertions.
fn listed(list: &[Change]) -> Vec<(String, String)> {
    list.iter()
        .map(|c| (c.area.clone(), c.text.clone()))
        .collect()
}

fn pair(area: &str, text: &str) -> (String, String) {
    (area.to_string(), text.to_string())
}

#[test]
fn the_same_policy_written_differently_is_no_difference() {
    // A group and its members, a path listed twice, an `extends:`-free reorder.
    let a = p(
        "landlock:\n  read: [/usr, /tmp]\nseccomp:\n  load:\n    allow:\n      - syscalls: [\"@time\"]\n",
    );
    let b = p(
        "landlock:\n  read: [/tmp, /usr]\nseccomp:\n  load:\n    allow:\n      - syscalls: [clock_gettime]\n      - syscalls: [\"@time\"]\n",
    );
    assert_eq!(diff(&a, &b), Diff::default());
}

#[test]
fn mounts_and_landlock_by_meaning() {
    let a = p(
        "filesystem:\n  read_only: [/usr, /srv/data]\nlandlock:\n  read: [/usr]\n  write: [/srv]\n",
    );
    let b = p(
        "filesystem:\n  read_only: [/usr]\n  read_write: [/srv/data]\nlandlock:\n  read: [/usr/share, /]\n  write: [/srv/data]\n",
    );
    let d = diff(&a, &b);
    assert_eq!(
        listed(&d.b_allows),
        vec![
            pair(
                "filesystem",
                "host `/srv/data` bound read-write (A: read-only)"
            ),
            // /usr/share is under A's /usr: not new. / is wider than everything A grants.
            pair("landlock.read", "read `/` (A grants only paths below it)"),
        ]
    );
    assert_eq!(
        listed(&d.a_allows),
        vec![pair(
            "landlock.write",
            "write `/srv` (B grants only paths below it)"
        )]
    );
    assert_eq!(d.b_allows[0].a, json!("read-only"));
    assert_eq!(d.b_allows[0].b, json!("read-write"));
}

#[test]
fn syscalls_per_phase_with_argument_conditions() {
    let load = "  load:\n    allow:\n      - syscalls: [read, write, ioctl, socket]\n";
    let a = p(&format!(
        "seccomp:\n{load}  serve:\n    allow:\n      - syscalls: [read, ioctl]\n        args: [{{ index: 1, op: eq, value: 0x5401 }}]\n"
    ));
    let b = p(&format!(
        "seccomp:\n{load}  serve:\n    allow:\n      - syscalls: [read, write]\n      - syscalls: [ioctl]\n        args: [{{ index: 1, op: eq, value: 0x541B }}]\n"
    ));
    let d = diff(&a, &b);
    assert_eq!(
        listed(&d.b_allows),
        vec![
            pair("seccomp.serve", "`ioctl` when arg1 eq 0x541b (FIONREAD)"),
            pair(
                "seccomp.serve",
                "`read` with any arguments (A: only when arg1 eq 0x5401)"
            ),
            pair("seccomp.serve", "`write` with any arguments"),
        ]
    );
    assert_eq!(
        listed(&d.a_allows),
        vec![pair(
            "seccomp.serve",
            "`ioctl` when arg1 eq 0x5401 (TCGETS)"
        )]
    );
    // The load phase is the same: nothing listed for it.
    assert!(d.changed.is_empty());
}

#[test]
fn limits_network_scopes_devices_env_and_pins() {
    let pin = "0".repeat(64);
    let a = p(&format!(
        "limits:\n  memory: 512M\n  cpu: 0.5\n  pids: 64\n  wall_time: 1m\nlandlock:\n  scopes: [signal]\n\
         filesystem:\n  devices: [null, zero]\nenvironment:\n  pass: [LANG]\n  set: {{ HOME: /tmp }}\n\
         plugin:\n  sha256: [\"{pin}\"]\nenforcement:\n  limits: best_effort\nhostname: a\n"
    ));
    let b = p(
        "limits:\n  memory: 1G\n  cpu: 0.25\n  pids: 32\nnetwork: loopback\nfilesystem:\n  devices: [null, tty]\n\
         environment:\n  pass: [LANG, TERM]\n  set: { HOME: /home }\nhostname: b\n",
    );
    let d = diff(&a, &b);
    assert_eq!(
        listed(&d.b_allows),
        vec![
            pair("network", "loopback (A: none)"),
            pair("filesystem.devices", "/dev/tty"),
            pair(
                "landlock.scopes",
                "no `signal` scope: may reach outside the jail that way"
            ),
            pair("limits.memory", "memory 1G (A: 512M)"),
            pair("limits.wall_time", "wall_time no limit (A: 1m)"),
            pair("environment.pass", "passes `TERM` from the caller"),
            pair("plugin.sha256", "any plugin file (A pins the sha256)"),
        ]
    );
    assert_eq!(
        listed(&d.a_allows),
        vec![
            pair(
                "enforcement.limits",
                "best_effort: runs without it on a kernel that cannot enforce it (B: required)"
            ),
            pair("filesystem.devices", "/dev/zero"),
            pair("limits.pids", "pids 64 (B: 32)"),
            pair("limits.cpu", "cpu 0.5 core(s) (B: 0.25 core(s))"),
        ]
    );
    assert_eq!(
        listed(&d.changed),
        vec![
            pair("hostname", "b (A: a)"),
            pair("environment.set", "HOME=\"/home\" (A: \"/tmp\")"),
        ]
    );
}

#[test]
fn swapping_the_sides_swaps_the_lists() {
    for (x, y) in [
        ("profiles/default.yaml", "profiles/ci-tests.yaml"),
        ("profiles/strict.yaml", "profiles/audit.yaml"),
    ] {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let a = crate::profile::load(&root.join(x)).unwrap();
        let b = crate::profile::load(&root.join(y)).unwrap();
        let (ab, ba) = (diff(&a, &b), diff(&b, &a));
        let items = |l: &[Change]| {
            let mut v: Vec<(String, String)> =
                l.iter().map(|c| (c.area.clone(), c.item.clone())).collect();
            v.sort();
            v
        };
        assert_eq!(items(&ab.b_allows), items(&ba.a_allows), "{x} {y}");
        assert_eq!(items(&ab.a_allows), items(&ba.b_allows), "{x} {y}");
        assert!(!ab.b_allows.is_empty() || !ab.a_allows.is_empty());
    }
}
