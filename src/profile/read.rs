//! Reads a merged node tree into a validated [`Profile`], reporting every problem: one
//! reader per section, in the order of the format. The `seccomp` section, with its syscall
//! names and phases, is in `read/seccomp.rs`.

mod seccomp;

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::diag::Collector;
use super::fields::{self, Fields};
use super::model::*;
use super::units;
use super::yaml::{Node, Pos};

pub const TOP_KEYS: &[&str] = &[
    "version",
    "extends",
    "description",
    "namespaces",
    "hostname",
    "filesystem",
    "landlock",
    "seccomp",
    "limits",
    "network",
    "environment",
    "plugin",
    "enforcement",
];
pub const NAMESPACE_KEYS: &[&str] = &["user", "mount", "pid", "net", "ipc", "uts", "cgroup"];
pub const FILESYSTEM_KEYS: &[&str] = &[
    "rootfs_template",
    "read_only",
    "read_write",
    "tmpfs",
    "devices",
];
pub const TMPFS_KEYS: &[&str] = &["path", "size"];
pub const LANDLOCK_KEYS: &[&str] = &[
    "compat",
    "read",
    "write",
    "execute",
    "tcp_bind",
    "tcp_connect",
    "scopes",
];
pub const SECCOMP_KEYS: &[&str] = &["default_action", "errno", "load", "serve"];
pub const PHASE_KEYS: &[&str] = &["allow"];
pub const RULE_KEYS: &[&str] = &["syscalls", "args", "comment"];
pub const ARG_KEYS: &[&str] = &["index", "op", "value", "mask"];
pub const LIMIT_KEYS: &[&str] = &[
    "memory",
    "swap",
    "cpu",
    "io",
    "pids",
    "open_files",
    "file_size",
    "wall_time",
    "cpu_time",
    "call_time",
    "idle_time",
    "max_message",
];
pub const IO_KEYS: &[&str] = &["read_bps", "write_bps", "read_iops", "write_iops"];
pub const ENVIRONMENT_KEYS: &[&str] = &["pass", "set"];
pub const PLUGIN_KEYS: &[&str] = &["sha256"];
pub const ENFORCEMENT_KEYS: &[&str] = &["namespaces", "seccomp", "limits"];

pub const LEVELS: &[(&str, Level)] = &[
    ("required", Level::Required),
    ("best_effort", Level::BestEffort),
];
pub const ACTIONS: &[(&str, Action)] = &[
    ("kill_process", Action::KillProcess),
    ("trap", Action::Trap),
    ("errno", Action::Errno),
    ("log", Action::Log),
];
pub const NETWORKS: &[(&str, Network)] =
    &[("none", Network::None), ("loopback", Network::Loopback)];

/// Bounds for `max_message`: a frame must hold a HELLO, and the cap protects the host.
const MAX_MESSAGE_RANGE: (u64, u64) = (4 << 10, 1 << 30);

/// Reads the whole (already merged) document.
pub fn profile(c: &mut Collector, root: &Node) -> Option<Profile> {
    let top = Fields::new(c, root, "profile", TOP_KEYS)?;
    let section = |key: &str| {
        top.get(key).cloned().unwrap_or(Node {
            pos: top.pos,
            value: super::yaml::Value::Null,
        })
    };

    let mut profile = Profile {
        version: 1,
        description: top.read(c, "description", None, |c, n| {
            fields::string(c, n).map(Some)
        }),
        namespaces: namespaces(c, &section("namespaces")),
        hostname: top.read(c, "hostname", "plugjail".into(), hostname),
        filesystem: filesystem(c, &section("filesystem")),
        landlock: landlock(c, &section("landlock")),
        seccomp: seccomp::seccomp(c, &section("seccomp")),
        limits: limits(c, &section("limits")),
        network: top.read(c, "network", Network::None, |c, n| {
            fields::choice(c, n, NETWORKS)
        }),
        environment: environment(c, &section("environment")),
        plugin: plugin(c, &section("plugin")),
        enforcement: enforcement(c, &section("enforcement")),
    };
    if profile.network == Network::None && !profile.namespaces.net {
        let pos = top.get("network").map_or(top.pos, |n| n.pos);
        c.error_hint(
            pos,
            "`network: none` needs a network namespace, but `namespaces.net` is false",
            "set `namespaces.net: true`, or say what network the plugin may use",
        );
    }
    profile.version = 1;
    Some(profile)
}

fn hostname(c: &mut Collector, node: &Node) -> Option<String> {
    let name = fields::string(c, node)?;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        c.error(
            node.pos,
            format!("`{name}` is not a valid hostname (1-64 letters, digits, `-` or `.`)"),
        );
        return None;
    }
    Some(name)
}

fn namespaces(c: &mut Collector, node: &Node) -> Namespaces {
    let all = Namespaces {
        user: true,
        mount: true,
        pid: true,
        net: true,
        ipc: true,
        uts: true,
        cgroup: true,
    };
    let Some(f) = Fields::new(c, node, "namespaces", NAMESPACE_KEYS) else {
        return all;
    };
    Namespaces {
        user: f.read(c, "user", true, fields::boolean),
        mount: f.read(c, "mount", true, fields::boolean),
        pid: f.read(c, "pid", true, fields::boolean),
        net: f.read(c, "net", true, fields::boolean),
        ipc: f.read(c, "ipc", true, fields::boolean),
        uts: f.read(c, "uts", true, fields::boolean),
        cgroup: f.read(c, "cgroup", true, fields::boolean),
    }
}

fn filesystem(c: &mut Collector, node: &Node) -> Filesystem {
    let default_devices = vec![
        Device::Null,
        Device::Zero,
        Device::Full,
        Device::Random,
        Device::Urandom,
    ];
    let Some(f) = Fields::new(c, node, "filesystem", FILESYSTEM_KEYS) else {
        return Filesystem {
            rootfs_template: None,
            read_only: vec![],
            read_write: vec![],
            tmpfs: vec![],
            devices: default_devices,
        };
    };
    let read_only = f.read(c, "read_only", vec![], |c, n| {
        fields::unique_list(c, n, fields::abs_path)
    });
    let read_write = f.read(c, "read_write", vec![], |c, n| {
        fields::unique_list(c, n, fields::abs_path)
    });
    let tmpfs = f.read(c, "tmpfs", vec![], |c, n| fields::unique_list(c, n, tmpfs));

    // Two mounts at one path: the later would silently hide the earlier.
    let mut seen: Vec<(&PathBuf, &str)> = Vec::new();
    let named = read_only
        .iter()
        .map(|(p, pos)| (p, *pos, "read_only"))
        .chain(read_write.iter().map(|(p, pos)| (p, *pos, "read_write")))
        .chain(
            tmpfs
                .iter()
                .map(|(t, pos): &(Tmpfs, Pos)| (&t.path, *pos, "tmpfs")),
        );
    for (path, pos, kind) in named {
        if let Some((_, first)) = seen.iter().find(|(p, _)| *p == path) {
            c.error_hint(
                pos,
                format!(
                    "`{}` is listed both in {first} and in {kind}",
                    path.display()
                ),
                "a path gets one mount; keep it in one list",
            );
        } else {
            seen.push((path, kind));
        }
    }

    let devices = f.read(c, "devices", default_devices, |c, n| {
        let choices: Vec<(&str, Device)> = Device::ALL.iter().map(|d| (d.name(), *d)).collect();
        let mut list = fields::list(c, n, |c, n| match n.value {
            // YAML reads a bare `null` as the null value; in this list it can only mean
            // /dev/null.
            super::yaml::Value::Null => Some(Device::Null),
            _ => fields::choice(c, n, &choices),
        })?;
        list.sort();
        list.dedup();
        Some(list)
    });
    Filesystem {
        rootfs_template: f.read(c, "rootfs_template", None, |c, n| {
            fields::abs_path(c, n).map(Some)
        }),
        read_only: read_only.into_iter().map(|(p, _)| p).collect(),
        read_write: read_write.into_iter().map(|(p, _)| p).collect(),
        tmpfs: tmpfs.into_iter().map(|(t, _)| t).collect(),
        devices,
    }
}

fn tmpfs(c: &mut Collector, node: &Node) -> Option<Tmpfs> {
    let f = Fields::new(c, node, "tmpfs entry", TMPFS_KEYS)?;
    let (Some(path), Some(size)) = (f.get("path"), f.get("size")) else {
        c.error_hint(
            node.pos,
            "a tmpfs entry needs both `path` and `size`",
            "for example `{ path: /tmp, size: 64M }`",
        );
        return None;
    };
    let path = fields::abs_path(c, path);
    let size_pos = size.pos;
    let size = fields::size(c, size);
    if size == Some(0) {
        c.error(size_pos, "a tmpfs needs a size above zero");
        return None;
    }
    Some(Tmpfs {
        path: path?,
        size: size?,
    })
}

fn landlock(c: &mut Collector, node: &Node) -> Landlock {
    let empty = Landlock {
        compat: Level::Required,
        read: vec![],
        write: vec![],
        execute: vec![],
        tcp_bind: vec![],
        tcp_connect: vec![],
        scopes: vec![],
    };
    let Some(f) = Fields::new(c, node, "landlock", LANDLOCK_KEYS) else {
        return empty;
    };
    let paths = |c: &mut Collector, key: &str| {
        f.read(c, key, vec![], |c, n| {
            fields::unique_list(c, n, fields::abs_path)
        })
        .into_iter()
        .map(|(p, _)| p)
        .collect()
    };
    let ports = |c: &mut Collector, key: &str| {
        f.read(c, key, vec![], |c, n| {
            fields::unique_list(c, n, |c, n| fields::integer(c, n, 1, u16::MAX))
        })
        .into_iter()
        .map(|(p, _)| p)
        .collect()
    };
    let scope_choices: Vec<(&str, Scope)> = Scope::ALL.iter().map(|s| (s.name(), *s)).collect();
    Landlock {
        compat: f.read(c, "compat", Level::Required, |c, n| {
            fields::choice(c, n, LEVELS)
        }),
        read: paths(c, "read"),
        write: paths(c, "write"),
        execute: paths(c, "execute"),
        tcp_bind: ports(c, "tcp_bind"),
        tcp_connect: ports(c, "tcp_connect"),
        scopes: f.read(c, "scopes", vec![], |c, n| {
            let mut list = fields::list(c, n, |c, n| fields::choice(c, n, &scope_choices))?;
            list.sort();
            list.dedup();
            Some(list)
        }),
    }
}

fn limits(c: &mut Collector, node: &Node) -> Limits {
    let mut out = Limits::default();
    let Some(f) = Fields::new(c, node, "limits", LIMIT_KEYS) else {
        return out;
    };
    let some_size = |c: &mut Collector, n: &Node| fields::size(c, n).map(Some);
    let some_duration = |c: &mut Collector, n: &Node| fields::duration(c, n).map(Some);
    out.memory = f.read(c, "memory", None, some_size);
    out.swap = f.read(c, "swap", None, some_size);
    out.cpu = f.read(c, "cpu", None, cpu_share);
    out.pids = f.read(c, "pids", None, |c, n| fields::u32_in(c, n, 1).map(Some));
    out.open_files = f.read(c, "open_files", None, |c, n| {
        fields::u32_in(c, n, 4).map(Some)
    });
    out.file_size = f.read(c, "file_size", None, some_size);
    out.wall_time = f.read(c, "wall_time", None, some_duration);
    out.cpu_time = f.read(c, "cpu_time", None, some_duration);
    out.call_time = f.read(c, "call_time", None, some_duration);
    out.idle_time = f.read(c, "idle_time", None, some_duration);
    if let Some(n) = f.get("max_message")
        && let Some(size) = fields::size(c, n)
    {
        let (lo, hi) = MAX_MESSAGE_RANGE;
        if (lo..=hi).contains(&size) {
            out.max_message = size;
        } else {
            c.error(
                n.pos,
                format!(
                    "max_message must be between {} and {}",
                    units::format_size(lo),
                    units::format_size(hi)
                ),
            );
        }
    }
    if let Some(io) = f.get("io")
        && let Some(io) = Fields::new(c, io, "limits.io", IO_KEYS)
    {
        let count = |c: &mut Collector, n: &Node| fields::integer(c, n, 1, u64::MAX).map(Some);
        out.io = IoLimits {
            read_bps: io.read(c, "read_bps", None, some_size),
            write_bps: io.read(c, "write_bps", None, some_size),
            read_iops: io.read(c, "read_iops", None, count),
            write_iops: io.read(c, "write_iops", None, count),
        };
    }
    for (key, inner) in [("call_time", out.call_time), ("idle_time", out.idle_time)] {
        if let (Some(inner), Some(wall)) = (inner, out.wall_time)
            && inner > wall
        {
            let pos = f.get(key).map_or(f.pos, |n| n.pos);
            c.error_hint(
                pos,
                format!(
                    "{key} ({}) is longer than wall_time ({}), so it could never trigger",
                    units::format_duration(inner),
                    units::format_duration(wall)
                ),
                format!("make {key} shorter than wall_time, or raise wall_time"),
            );
        }
    }
    out
}

fn cpu_share(c: &mut Collector, node: &Node) -> Option<Option<f64>> {
    let cores = match node.value {
        super::yaml::Value::Float(f) => f,
        super::yaml::Value::Int(i) => i as f64,
        ref other => {
            c.error(
                node.pos,
                format!(
                    "expected a number of cores such as 0.5, found {}",
                    other.kind()
                ),
            );
            return None;
        }
    };
    if !(0.01..=1024.0).contains(&cores) {
        c.error(
            node.pos,
            format!("cpu share {cores} is out of range (0.01 to 1024 cores)"),
        );
        return None;
    }
    Some(Some(cores))
}

fn environment(c: &mut Collector, node: &Node) -> Environment {
    let mut out = Environment {
        pass: vec![],
        set: BTreeMap::new(),
    };
    let Some(f) = Fields::new(c, node, "environment", ENVIRONMENT_KEYS) else {
        return out;
    };
    out.pass = f
        .read(c, "pass", vec![], |c, n| {
            fields::unique_list(c, n, env_name)
        })
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    if let Some(set) = f.get("set")
        && let super::yaml::Value::Map(entries) = &set.value
    {
        for (k, v) in entries {
            if let (Some(name), Some(value)) = (env_name(c, k), fields::string(c, v)) {
                out.set.insert(name, value);
            }
        }
    } else if let Some(set) = f.get("set") {
        c.error(
            set.pos,
            "`environment.set` must be a mapping of NAME: value",
        );
    }
    out
}

fn env_name(c: &mut Collector, node: &Node) -> Option<String> {
    let name = fields::string(c, node)?;
    let mut bytes = name.bytes();
    let valid = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !valid {
        c.error(
            node.pos,
            format!("`{name}` is not a valid environment variable name"),
        );
        return None;
    }
    Some(name)
}

fn plugin(c: &mut Collector, node: &Node) -> Plugin {
    let sha256 = Fields::new(c, node, "plugin", PLUGIN_KEYS)
        .map(|f| {
            f.read(c, "sha256", vec![], |c, n| {
                fields::unique_list(c, n, |c, n| {
                    let hex = fields::string(c, n)?.to_ascii_lowercase();
                    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                        c.error_hint(
                            n.pos,
                            "a sha256 digest is 64 hex digits",
                            "compute it with `sha256sum plugin.so`",
                        );
                        return None;
                    }
                    Some(hex)
                })
            })
        })
        .unwrap_or_default();
    Plugin {
        sha256: sha256.into_iter().map(|(h, _)| h).collect(),
    }
}

fn enforcement(c: &mut Collector, node: &Node) -> Enforcement {
    let mut out = Enforcement {
        namespaces: Level::Required,
        seccomp: Level::Required,
        limits: Level::Required,
    };
    if let Some(f) = Fields::new(c, node, "enforcement", ENFORCEMENT_KEYS) {
        let level = |c: &mut Collector, n: &Node| fields::choice(c, n, LEVELS);
        out.namespaces = f.read(c, "namespaces", Level::Required, level);
        out.seccomp = f.read(c, "seccomp", Level::Required, level);
        out.limits = f.read(c, "limits", Level::Required, level);
    }
    out
}
