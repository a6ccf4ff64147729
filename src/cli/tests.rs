//! `explain --json` writes the effective profile in the profile format itself: reading it
//! back must give the same policy, for any valid profile.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::collection::{btree_set, vec};
use proptest::option;
use proptest::prelude::*;
use proptest::sample::subsequence;

use super::explain_json;
use crate::profile::*;

const PATHS: &[&str] = &[
    "/usr",
    "/lib",
    "/opt/a",
    "/srv/data",
    "/var/lib/x",
    "/etc/ld.so.cache",
];
const SYSCALLS: &[&str] = &[
    "read",
    "write",
    "openat",
    "@memory",
    "@basic-io",
    "ioctl",
    "open",
    "futex",
];

fn paths() -> impl Strategy<Value = Vec<PathBuf>> {
    subsequence(PATHS, 0..=PATHS.len()).prop_map(|v| v.into_iter().map(PathBuf::from).collect())
}

fn level() -> impl Strategy<Value = Level> {
    prop_oneof![Just(Level::Required), Just(Level::BestEffort)]
}

fn duration() -> impl Strategy<Value = Duration> {
    (1u64..10_000_000).prop_map(Duration::from_millis)
}

fn rule() -> impl Strategy<Value = Rule> {
    let arg = (0u8..6, 0usize..7, any::<u64>(), any::<u64>()).prop_map(|(index, op, value, m)| {
        let op = CmpOp::ALL[op];
        ArgCondition {
            index,
            op,
            value,
            mask: (op == CmpOp::MaskedEq).then_some(m),
        }
    });
    (
        subsequence(SYSCALLS, 1..=SYSCALLS.len()),
        vec(arg, 0..3),
        option::of("[a-z ]{1,20}"),
    )
        .prop_map(|(s, args, comment)| Rule {
            syscalls: s.into_iter().map(String::from).collect(),
            args,
            comment,
        })
}

fn seccomp() -> impl Strategy<Value = Seccomp> {
    (0usize..4, 0usize..5, vec(rule(), 0..4), any::<bool>()).prop_map(|(a, e, load, same)| {
        let default_action = [
            Action::KillProcess,
            Action::Trap,
            Action::Errno,
            Action::Log,
        ][a];
        let errno = if default_action == Action::Errno {
            units::ERRNOS[e].1
        } else {
            libc::EPERM
        };
        // Serve must stay within load: use load itself, or its first rules.
        let serve = if same {
            load.clone()
        } else {
            load.iter().take(1).cloned().collect()
        };
        Seccomp {
            default_action,
            errno,
            load: Phase { allow: load },
            serve: Phase { allow: serve },
        }
    })
}

fn limits() -> impl Strategy<Value = Limits> {
    let size = || option::of(0u64..(1 << 45));
    (
        (
            size(),
            size(),
            option::of(1u32..=102_400).prop_map(|c| c.map(|c| f64::from(c) / 100.0)),
        ),
        (
            size(),
            size(),
            option::of(1u64..1_000_000),
            option::of(1u64..1_000_000),
        ),
        (option::of(1u32..100_000), option::of(4u32..100_000), size()),
        (
            duration(),
            option::of(duration()),
            0u64..=1,
            option::of(duration()),
        ),
        (4u64 << 10)..=(1 << 30),
    )
        .prop_map(
            |(
                (memory, swap, cpu),
                (rb, wb, ri, wi),
                (pids, open_files, file_size),
                (wall, cpu_time, calls, idle),
                max_message,
            )| {
                // Per-call and idle limits never exceed the wall time (that is an error).
                let within = |d: Option<Duration>| d.map(|d| d.min(wall));
                Limits {
                    memory,
                    swap,
                    cpu,
                    io: IoLimits {
                        read_bps: rb,
                        write_bps: wb,
                        read_iops: ri,
                        write_iops: wi,
                    },
                    pids,
                    open_files,
                    file_size,
                    wall_time: Some(wall),
                    cpu_time,
                    call_time: (calls == 1)
                        .then(|| {
                            Duration::from_millis(u64::try_from(wall.as_millis()).unwrap() / 2)
                        })
                        .filter(|d| !d.is_zero()),
                    idle_time: within(idle),
                    max_message,
                }
            },
        )
}

prop_compose! {
    fn profile()(
        ns in vec(any::<bool>(), 7),
        loopback in any::<bool>(),
        ro in paths(),
        rw_tmp in subsequence(&["/data", "/out", "/tmp", "/run/x"][..], 0..=4),
        tmpfs_size in 1u64..(1 << 34),
        devices in btree_set(0usize..6, 0..=6),
        (read, write, execute) in (paths(), paths(), paths()),
        ports in (btree_set(1u16..=65535, 0..3), btree_set(1u16..=65535, 0..3)),
        scopes in btree_set(0usize..2, 0..=2),
        compat in level(),
        seccomp in seccomp(),
        limits in limits(),
        pass in btree_set("[A-Z_][A-Z0-9_]{0,8}", 0..3),
        set in proptest::collection::btree_map("[A-Z_][A-Z0-9_]{0,8}", "[ -~]{0,16}", 0..3),
        sha in btree_set("[0-9a-f]{64}", 0..2),
        levels in (level(), level(), level()),
        description in option::of("[ -~]{0,40}"),
    ) -> Profile {
        // A path is in at most one mount list; split the second pool between rw and tmpfs.
        let (rw, tmp) = rw_tmp.split_at(rw_tmp.len() / 2);
        Profile {
            version: 1,
            description,
            namespaces: Namespaces { user: ns[0], mount: ns[1], pid: ns[2], net: ns[3] || !loopback, ipc: ns[4], uts: ns[5], cgroup: ns[6] },
            hostname: "jail-1".into(),
            filesystem: Filesystem {
                rootfs_template: None,
                read_only: ro,
                read_write: rw.iter().map(PathBuf::from).collect(),
                tmpfs: tmp.iter().map(|p| Tmpfs { path: p.into(), size: tmpfs_size }).collect(),
                devices: devices.into_iter().map(|i| Device::ALL[i]).collect(),
            },
            landlock: Landlock {
                compat,
                read,
                write,
                execute,
                tcp_bind: ports.0.into_iter().collect(),
                tcp_connect: ports.1.into_iter().collect(),
                scopes: scopes.into_iter().map(|i| Scope::ALL[i]).collect(),
            },
            seccomp,
            limits,
            network: if loopback { Network::Loopback } else { Network::None },
            environment: Environment { pass: pass.into_iter().collect(), set: set.into_iter().collect::<BTreeMap<_, _>>() },
            plugin: Plugin { sha256: sha.into_iter().collect() },
            enforcement: Enforcement { namespaces: levels.0, seccomp: levels.1, limits: levels.2 },
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn explain_json_reparses_to_the_same_profile(p in profile()) {
        let json = serde_json::to_string_pretty(&explain_json(&p)["profile"]).unwrap();
        let back = load_str(Path::new("explained.json"), &json)
            .unwrap_or_else(|e| panic!("{e}\n{json}"));
        prop_assert_eq!(back, p);
    }
}

#[test]
fn shipped_profiles_round_trip_through_explain() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let p = load(&path).unwrap();
        let json = serde_json::to_string(&explain_json(&p)["profile"]).unwrap();
        assert_eq!(load_str(&path, &json).unwrap(), p, "{}", path.display());
    }
}
