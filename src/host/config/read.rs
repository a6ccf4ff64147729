//! Reads a host configuration file into a [`HostConfig`], as strictly as profiles are
//! read and with the same machinery (`crate::profile`): unknown keys with suggestions,
//! every problem with its `FILE:LINE:COL`, the 1 MiB cap. Each profile a plugin names is
//! loaded too, and its own errors point into the profile file.

mod sections;

use std::path::{Path, PathBuf};

use crate::profile::diag::Collector;
use crate::profile::fields::{self, Fields};
use crate::profile::yaml::{Node, Pos, Value};
use crate::profile::{self, Document, Loader, ProfileErrors};

use super::{HostConfig, PluginConfig, WhenPaused};
use sections::{cpus, health, id, pool, restart, shm};

// The keys and bounds of the format, shared with `plugjail schema --host` so that the
// schema and the reader cannot drift apart.
pub const TOP_KEYS: &[&str] = &["version", "plugins"];
pub const PLUGIN_KEYS: &[&str] = &[
    "id",
    "plugin",
    "profile",
    "cpus",
    "pool",
    "restart",
    "call_time",
    "start_time",
    "stop_time",
    "when_paused",
    "health",
    "shm",
];
pub const POOL_KEYS: &[&str] = &["warm", "max", "queue", "recycle_calls", "recycle_time"];
pub const RESTART_KEYS: &[&str] = &["backoff", "backoff_max", "budget", "window"];
pub const HEALTH_KEYS: &[&str] = &["method", "input"];
pub const SHM_KEYS: &[&str] = &["spin_us", "arena", "scrub_inputs"];
/// The largest shared-memory arena: each jail maps two of them (request and answer).
pub const MAX_ARENA: u64 = 1 << 30;
pub const WHEN_PAUSED: &[(&str, WhenPaused)] =
    &[("wait", WhenPaused::Wait), ("fail", WhenPaused::Fail)];
pub const MAX_ID_LEN: usize = 64;
/// CPU numbers fit a `cpu_set_t` (1024 bits), what sched_setaffinity takes.
pub const MAX_CPU: u32 = 1023;
/// Jails per plugin: each is a process tree with its own cgroup, not a thread.
pub const MAX_POOL: u32 = 256;
pub const MAX_QUEUE: u32 = 65536;

/// How read errors name the file.
const WHAT: &str = "host configuration";

/// Loads and validates the host configuration at `path`, and every profile it names.
pub fn load(path: &Path) -> Result<HostConfig, ProfileErrors> {
    from_document(Document::read(path, WHAT))
}

/// Validates host configuration text as if read from `name` (its paths are relative to
/// `name`'s directory, and the files they name must exist).
pub fn load_str(name: &Path, text: &str) -> Result<HostConfig, ProfileErrors> {
    from_document(Document::parse(name, text))
}

/// Whether a parsed YAML file is a host configuration rather than a profile: its
/// top-level mapping has `plugins` (no profile key is spelled so).
pub(crate) fn is_host_config(root: &Node) -> bool {
    matches!(&root.value, Value::Map(entries)
        if entries.iter().any(|(k, _)| k.as_str() == Some("plugins")))
}

/// Reads a parsed file as a host configuration.
pub(crate) fn from_document(doc: Document) -> Result<HostConfig, ProfileErrors> {
    let Document { path, root, loader } = doc;
    let mut reader = Reader {
        loader,
        dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
        profiles: Vec::new(),
    };
    let config = root.and_then(|root| reader.config(&root));
    reader.loader.finish(config)
}

struct Reader {
    loader: Loader,
    /// Relative paths in the file are relative to this directory.
    dir: PathBuf,
    /// Profiles loaded so far, with their error counts: each is loaded (and its errors
    /// shown) once however many plugins name it.
    profiles: Vec<(PathBuf, usize)>,
}

impl Reader {
    fn c(&mut self) -> &mut Collector {
        &mut self.loader.collector
    }

    fn config(&mut self, root: &Node) -> Option<HostConfig> {
        if !matches!(root.value, Value::Map(_)) {
            let found = match root.value {
                Value::Null => "an empty document",
                ref other => other.kind(),
            };
            let pos = Pos {
                line: root.pos.line.max(1),
                col: root.pos.col.max(1),
                ..root.pos
            };
            self.c().error_hint(
                pos,
                format!("a host configuration must be a mapping, found {found}"),
                "start with `version: 1`",
            );
            return None;
        }
        let top = Fields::new(self.c(), root, "host configuration", TOP_KEYS)?;
        match top.get("version") {
            Some(v) if v.value == Value::Int(1) => {}
            Some(v) => self.c().error_hint(
                v.pos,
                "unsupported host configuration version",
                "this plugjail reads `version: 1`",
            ),
            None => self.c().error_hint(
                root.pos,
                "the host configuration has no `version`",
                "add `version: 1` as the first line",
            ),
        }
        let Some(list) = top.get("plugins") else {
            self.c().error_hint(
                root.pos,
                "the host configuration has no `plugins`",
                "list at least one: `plugins: [{id: ..., plugin: ..., profile: ...}]`",
            );
            return None;
        };
        let Value::Seq(items) = &list.value else {
            let message = format!("`plugins` must be a list, not {}", list.value.kind());
            self.c().error(list.pos, message);
            return None;
        };
        if items.is_empty() {
            self.c()
                .error(list.pos, "`plugins` is empty: a host needs a plugin");
        }
        let mut plugins: Vec<PluginConfig> = Vec::new();
        let mut ids: Vec<(String, Pos)> = Vec::new();
        for item in items {
            let (id, plugin) = self.plugin(item);
            // Checked whether or not the rest of the entry is valid, so that every
            // clash is reported in one go.
            if let Some((id, pos)) = id {
                if let Some((_, first)) = ids.iter().find(|(seen, _)| *seen == id) {
                    let message = format!(
                        "plugin id `{id}` is used twice (first at line {})",
                        first.line
                    );
                    self.c()
                        .error_hint(pos, message, "ids must be unique in the file");
                } else {
                    ids.push((id, pos));
                }
            }
            plugins.extend(plugin);
        }
        Some(HostConfig { plugins })
    }

    /// One entry of `plugins`: its id and where it is written (when readable), and the
    /// plugin (when all of it is valid).
    fn plugin(&mut self, node: &Node) -> (Option<(String, Pos)>, Option<PluginConfig>) {
        let Some(f) = Fields::new(self.c(), node, "plugins entry", PLUGIN_KEYS) else {
            return (None, None);
        };
        let d = PluginConfig::new("", "", "");
        let c = self.c();
        for key in ["id", "plugin", "profile"] {
            if f.get(key).is_none() {
                c.error_hint(
                    node.pos,
                    format!("this plugin has no `{key}`"),
                    "each plugin needs `id`, `plugin` and `profile`",
                );
            }
        }
        let id = f.get("id").and_then(|n| Some((id(c, n)?, n.pos)));
        let some_duration = |c: &mut Collector, n: &Node| fields::duration(c, n).map(Some);
        let read = PluginConfig {
            cpus: f.read(c, "cpus", d.cpus, cpus),
            pool: f.read(c, "pool", d.pool, |c, n| Some(pool(c, n))),
            restart: f.read(c, "restart", d.restart, |c, n| Some(restart(c, n))),
            call_time: f.read(c, "call_time", d.call_time, some_duration),
            start_time: f.read(c, "start_time", d.start_time, fields::duration),
            stop_time: f.read(c, "stop_time", d.stop_time, fields::duration),
            when_paused: f.read(c, "when_paused", d.when_paused, |c, n| {
                fields::choice(c, n, WHEN_PAUSED)
            }),
            health: f.read(c, "health", d.health, |c, n| health(c, n).map(Some)),
            shm: f.read(c, "shm", d.shm, |c, n| shm(c, n).map(Some)),
            ..d
        };
        let plugin = f.get("plugin").and_then(|n| self.plugin_file(n));
        let profile = f.get("profile").and_then(|n| self.profile_file(n));
        if let (Some(node), Some(path), Some(_)) = (f.get("shm"), &profile, &read.shm) {
            self.shm_profile(node, path);
        }
        let config = match (&id, plugin, profile) {
            (Some((id, _)), Some(plugin), Some(profile)) => Some(PluginConfig {
                id: id.clone(),
                plugin,
                profile,
                ..read
            }),
            _ => None,
        };
        (id, config)
    }

    /// A path in the file, joined to the file's directory when relative. `..` is fine:
    /// these are host paths the operator chose, not paths in a jail.
    fn host_path(&mut self, node: &Node) -> Option<PathBuf> {
        let text = fields::string(self.c(), node)?;
        if text.is_empty() || text.contains('\0') {
            self.c()
                .error(node.pos, "a path must be non-empty, without NUL bytes");
            return None;
        }
        Some(self.dir.join(text))
    }

    /// The plugin `.so`: it must exist now (it is verified and loaded at start).
    fn plugin_file(&mut self, node: &Node) -> Option<PathBuf> {
        let path = self.host_path(node)?;
        let problem = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => return Some(path),
            Ok(_) => "is not a regular file".to_string(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
            Err(e) => format!("cannot be read: {e}"),
        };
        let message = format!("plugin file `{}` {problem}", path.display());
        if node.as_str().is_some_and(|p| Path::new(p).is_relative()) {
            self.c().error_hint(
                node.pos,
                message,
                "relative paths start from the directory of this file",
            );
        } else {
            self.c().error(node.pos, message);
        }
        None
    }

    /// Shared-memory calls need `futex` in both of the profile's phases; a profile that
    /// does not allow it is refused here rather than by every jail at start.
    fn shm_profile(&mut self, node: &Node, profile: &Path) {
        let Ok(p) = profile::load(profile) else {
            return; // its errors are already reported
        };
        if let Err(e) = crate::plugin_mode::shm::check_profile(&p) {
            let message = format!("`shm` needs what profile `{}` refuses", profile.display());
            let hint = e.to_string().replace("--shm-fd: ", "");
            self.c().error_hint(node.pos, message, hint);
        }
    }

    /// The profile: it must load; its own errors are reported with its files.
    fn profile_file(&mut self, node: &Node) -> Option<PathBuf> {
        let path = self.host_path(node)?;
        let key = path.canonicalize().unwrap_or_else(|_| path.clone());
        let errors = match self.profiles.iter().find(|(p, _)| *p == key) {
            Some((_, n)) => *n,
            None => {
                let n = match profile::load(&path) {
                    Ok(_) => 0,
                    Err(errors) => {
                        let n = errors.diagnostics.len();
                        self.loader.absorb(errors);
                        n
                    }
                };
                self.profiles.push((key, n));
                n
            }
        };
        if errors == 0 {
            return Some(path);
        }
        let message = format!(
            "profile `{}` does not load: {errors} error{}, shown below",
            path.display(),
            if errors == 1 { "" } else { "s" }
        );
        self.c().error(node.pos, message);
        None
    }
}
