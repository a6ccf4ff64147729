//! The cross-layer lint of `plugjail check`: a profile every layer of which is valid on its
//! own can still contradict itself across layers. A mount says what exists in the jail,
//! Landlock what may be done there, seccomp which calls may be made; when they disagree
//! the run does not fail at setup, the plugin simply gets EACCES (or EROFS, or nothing) at
//! run time, which is the hardest place to find it. Each finding is a warning with the
//! place in the file that wrote the value and a fix.
//!
//! The lint reads the validated [`Profile`] for meaning and the merged YAML tree only for
//! positions (so a finding in an `extends:` base points into the base). It looks at the
//! host only to ask whether a `read_write` directory is writable by the user the jail will
//! run as.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::diag::Diagnostic;
use super::model::{Network, Profile, Rule};
use super::resolve;
use super::yaml::{Node, Pos, Value};

/// A host identity the jail may run as, for the writability check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JailUser {
    pub uid: u32,
    pub gid: u32,
    /// When the jail runs as this user, e.g. "when plugjail runs as root".
    pub when: String,
}

/// Lints `profile`; `root` is the merged tree it was read from (for positions), `users`
/// the host identities the jail may run as (empty: skip the checks that look at the host).
pub fn lint(root: &Node, profile: &Profile, users: &[JailUser]) -> Vec<Diagnostic> {
    let l = Layers::new(root, profile);
    let mut out = Vec::new();
    // Without a mount namespace the jail sees the host's tree: there are no mounts to
    // compare Landlock with.
    if profile.namespaces.mount {
        l.binds_without_landlock(&mut out);
        l.grants_without_mount(&mut out);
        l.binds_under_wider_grants(&mut out);
        l.unwritable_binds(users, &mut out);
    }
    serve_conditions(root, profile, &mut out);
    ports_without_network(root, profile, &mut out);
    out.sort_by_key(|d| (d.pos.file, d.pos.line, d.pos.col));
    out
}

/// A path as written in the profile, with its position.
type Placed = (PathBuf, Pos);

/// The three Landlock filesystem rights a profile grants, by its own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Right {
    Read,
    Write,
    Execute,
}

impl Right {
    fn key(self) -> &'static str {
        match self {
            Right::Read => "read",
            Right::Write => "write",
            Right::Execute => "execute",
        }
    }
}

/// The filesystem and Landlock layers, each path with where it was written.
struct Layers {
    read_only: Vec<Placed>,
    read_write: Vec<Placed>,
    /// Writable mounts the profile makes besides read-write binds: tmpfs and devices.
    scratch: Vec<Placed>,
    /// Everything else that exists in the jail: /dev, /proc, the template's entries.
    fixed: Vec<PathBuf>,
    read: Vec<Placed>,
    write: Vec<Placed>,
    execute: Vec<Placed>,
}

impl Layers {
    fn new(root: &Node, p: &Profile) -> Layers {
        let fs = &p.filesystem;
        let placed = |keys: &[&str], values: &[PathBuf]| -> Vec<Placed> {
            let written = path_items(at(Some(root), keys));
            values
                .iter()
                .map(|v| {
                    let pos = written
                        .iter()
                        .find(|(w, _)| w == v)
                        .map_or_else(|| section_pos(root, keys), |(_, pos)| *pos);
                    (v.clone(), pos)
                })
                .collect()
        };
        let tmpfs_pos = |path: &Path| {
            seq(at(Some(root), &["filesystem", "tmpfs"]))
                .iter()
                .find_map(|n| {
                    let p = at(Some(n), &["path"])?;
                    (p.as_str().map(normal) == Some(path.to_path_buf())).then_some(p.pos)
                })
                .unwrap_or_else(|| section_pos(root, &["filesystem", "tmpfs"]))
        };
        let devices_pos = section_pos(root, &["filesystem", "devices"]);
        let mut scratch: Vec<Placed> = fs
            .tmpfs
            .iter()
            .map(|t| (t.path.clone(), tmpfs_pos(&t.path)))
            .collect();
        scratch.extend(
            fs.devices
                .iter()
                .map(|d| (Path::new("/dev").join(d.name()), devices_pos)),
        );
        let mut fixed = vec![PathBuf::from("/dev")];
        if p.namespaces.pid {
            fixed.push(PathBuf::from("/proc"));
        }
        let template = match &fs.rootfs_template {
            None => Some(crate::jail::template::builtin()),
            Some(dir) => crate::jail::template::read_dir(dir).ok(),
        };
        fixed.extend(
            template
                .into_iter()
                .flatten()
                .map(|e| Path::new("/").join(e.path())),
        );
        let ll = &p.landlock;
        Layers {
            read_only: placed(&["filesystem", "read_only"], &fs.read_only),
            read_write: placed(&["filesystem", "read_write"], &fs.read_write),
            scratch,
            fixed,
            read: placed(&["landlock", "read"], &ll.read),
            write: placed(&["landlock", "write"], &ll.write),
            execute: placed(&["landlock", "execute"], &ll.execute),
        }
    }

    fn grants(&self, right: Right) -> &[Placed] {
        match right {
            Right::Read => &self.read,
            Right::Write => &self.write,
            Right::Execute => &self.execute,
        }
    }

    /// The nearest grant of `right` that covers `path` (Landlock rules cover the whole
    /// hierarchy beneath their path).
    fn reach(&self, right: Right, path: &Path) -> Option<&Placed> {
        self.grants(right)
            .iter()
            .filter(|(g, _)| path.starts_with(g))
            .max_by_key(|(g, _)| g.components().count())
    }

    fn is_bind(&self, path: &Path) -> bool {
        self.read_only
            .iter()
            .chain(&self.read_write)
            .any(|(b, _)| b == path)
    }

    /// A bind whose Landlock rights do not let the plugin use it the way it is mounted.
    fn binds_without_landlock(&self, out: &mut Vec<Diagnostic>) {
        for (path, pos) in &self.read_write {
            if self.reach(Right::Write, path).is_none() {
                let shown = path.display();
                out.push(warn(
                    *pos,
                    format!(
                        "`{shown}` is bound read-write, but Landlock grants no write there: \
                         every write in it fails with EACCES"
                    ),
                    format!("add `{shown}` to landlock.write, or move it to filesystem.read_only"),
                ));
            }
        }
        for (path, pos) in &self.read_only {
            if self.reach(Right::Read, path).is_none() && self.reach(Right::Execute, path).is_none()
            {
                let shown = path.display();
                out.push(warn(
                    *pos,
                    format!(
                        "`{shown}` is bound read-only, but Landlock grants no read there: \
                         opening anything in it fails with EACCES"
                    ),
                    format!(
                        "add `{shown}` to landlock.read (or to landlock.execute for programs \
                         and libraries), or drop the bind"
                    ),
                ));
            }
        }
    }

    /// A Landlock grant that can have no effect: write where nothing writable is mounted,
    /// or any right on a path the jail does not have (the jail skips such a rule).
    fn grants_without_mount(&self, out: &mut Vec<Diagnostic>) {
        let related = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
        let exists = |path: &Path| {
            self.read_only
                .iter()
                .chain(&self.read_write)
                .chain(&self.scratch)
                .any(|(m, _)| related(path, m))
                || self.fixed.iter().any(|m| related(path, m))
        };
        for (path, pos) in &self.write {
            let shown = path.display();
            let writable = self
                .read_write
                .iter()
                .chain(&self.scratch)
                .any(|(m, _)| related(path, m));
            if writable {
                continue;
            }
            let on = self
                .read_only
                .iter()
                .filter(|(m, _)| path.starts_with(m))
                .max_by_key(|(m, _)| m.components().count());
            let why = match on {
                Some((m, _)) => format!(
                    "it is on the read-only bind of `{}`, so writes fail with EROFS",
                    m.display()
                ),
                None if exists(path) => {
                    "nothing writable is mounted there (the jail's root is read-only)".to_string()
                }
                None => "the jail has no such path, so the rule is skipped".to_string(),
            };
            out.push(warn(
                *pos,
                format!("Landlock grants write on `{shown}`, but {why}"),
                format!(
                    "bind a host directory there (filesystem.read_write) or mount a tmpfs, \
                     or drop `{shown}` from landlock.write"
                ),
            ));
        }
        for right in [Right::Read, Right::Execute] {
            for (path, pos) in self.grants(right) {
                if !exists(path) {
                    let shown = path.display();
                    let key = right.key();
                    out.push(warn(
                        *pos,
                        format!(
                            "Landlock grants {key} on `{shown}`, but no mount puts anything \
                             there: the jail has no such path, so the rule is skipped"
                        ),
                        format!(
                            "bind it (filesystem.read_only: [{shown}]), or drop it from \
                             landlock.{key}"
                        ),
                    ));
                }
            }
        }
    }

    /// Whether a grant on `grant` also covers jail content that no bind brought: a tmpfs,
    /// a device, /dev or /proc at, under or above it. A grant on a directory that only
    /// holds binds (`/srv` for binds at /srv/a and /srv/b) is about those binds.
    fn covers_more_than_binds(&self, grant: &Path) -> bool {
        let related = |m: &Path| grant.starts_with(m) || m.starts_with(grant);
        self.scratch.iter().any(|(m, _)| related(m))
            || [Path::new("/dev"), Path::new("/proc")]
                .into_iter()
                .any(|m| self.fixed.iter().any(|f| f == m) && related(m))
    }

    /// A host directory bound under a Landlock grant on a wider path that is not itself a
    /// bind and covers other content (a tmpfs like /tmp, or the root): it gets that
    /// grant's rights without a rule of its own, which is easy to miss when the grant was
    /// written for something else.
    fn binds_under_wider_grants(&self, out: &mut Vec<Diagnostic>) {
        let kinds: [(&[Placed], &[Right]); 2] = [
            (&self.read_only, &[Right::Read, Right::Execute]),
            (
                &self.read_write,
                &[Right::Read, Right::Write, Right::Execute],
            ),
        ];
        for (binds, rights) in kinds {
            for (path, pos) in binds {
                let mut inherited: Vec<(Right, &Placed)> = Vec::new();
                for &right in rights {
                    if let Some(grant) = self.reach(right, path)
                        && grant.0 != *path
                        && !self.is_bind(&grant.0)
                        && self.covers_more_than_binds(&grant.0)
                    {
                        inherited.push((right, grant));
                    }
                }
                if inherited.is_empty() {
                    continue;
                }
                let shown = path.display();
                let from: Vec<String> = inherited
                    .iter()
                    .map(|(r, (g, gp))| {
                        format!("{} from `{}` (line {})", r.key(), g.display(), gp.line)
                    })
                    .collect();
                let keys: Vec<String> = inherited
                    .iter()
                    .map(|(r, _)| format!("landlock.{}", r.key()))
                    .collect();
                out.push(warn(
                    *pos,
                    format!(
                        "the host path bound at `{shown}` lies under a wider Landlock grant and \
                         gets {} without a rule of its own",
                        from.join(", ")
                    ),
                    format!(
                        "if that is intended, say so: add `{shown}` to {}; if not, bind it \
                         outside the granted directory",
                        keys.join(" and ")
                    ),
                ));
            }
        }
    }

    /// A read-write bind of a host path the jail's user cannot write: the mount and
    /// Landlock allow it, the host's file permissions do not.
    fn unwritable_binds(&self, users: &[JailUser], out: &mut Vec<Diagnostic>) {
        if users.is_empty() {
            return;
        }
        for (path, pos) in &self.read_write {
            let shown = path.display();
            let meta = match std::fs::metadata(path) {
                Ok(m) => m,
                Err(e) => {
                    out.push(warn(
                        *pos,
                        format!(
                            "`{shown}` cannot be read on this host ({e}): the jail will not have it"
                        ),
                        format!("create it before the run (mkdir -p {shown}), or fix the path"),
                    ));
                    continue;
                }
            };
            if read_only_fs(path) {
                out.push(warn(
                    *pos,
                    format!("`{shown}` is on a read-only filesystem on this host"),
                    "bind a directory on a writable filesystem",
                ));
                continue;
            }
            for user in users {
                if writable_by(&meta, user.uid, user.gid) {
                    continue;
                }
                out.push(warn(
                    *pos,
                    format!(
                        "`{shown}` is not writable by uid {} gid {}, the user the jail runs as \
                         {} (it is mode {:04o}, owner {}:{})",
                        user.uid,
                        user.gid,
                        user.when,
                        meta.mode() & 0o7777,
                        meta.uid(),
                        meta.gid()
                    ),
                    format!(
                        "give that user write access (chown {}:{} {shown}, or a group it is \
                         in), or bind a directory it owns",
                        user.uid, user.gid
                    ),
                ));
            }
        }
    }
}

/// Plain Unix permission bits for `uid`/`gid` (no supplementary groups: a jail started by
/// root drops them). A directory needs write and search.
fn writable_by(meta: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    let mode = meta.mode();
    let bits = if meta.uid() == uid {
        (mode >> 6) & 7
    } else if meta.gid() == gid {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    let need = if meta.is_dir() { 0o3 } else { 0o2 };
    bits & need == need
}

fn read_only_fs(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

/// Serve rules held to conditions the load phase adds: the filters stack, so a syscall the
/// serve phase allows with any argument is still refused whatever load refuses.
fn serve_conditions(root: &Node, p: &Profile, out: &mut Vec<Diagnostic>) {
    let s = &p.seccomp;
    if s.serve == s.load {
        return;
    }
    let load_any = unconditional(&s.load.allow);
    let serve_rules = seq(at(Some(root), &["seccomp", "serve", "allow"]));
    for (i, rule) in s.serve.allow.iter().enumerate() {
        if !rule.args.is_empty() {
            continue;
        }
        let written = serve_rules.get(i);
        for name in &rule.syscalls {
            let members = resolve::expand_names(std::iter::once(name.as_str()));
            let held: Vec<&str> = members
                .iter()
                .copied()
                .filter(|m| !load_any.contains(m))
                .collect();
            if held.is_empty() {
                continue;
            }
            let pos = written
                .and_then(|r| {
                    seq(at(Some(r), &["syscalls"]))
                        .iter()
                        .find(|n| n.as_str() == Some(name))
                        .map(|n| n.pos)
                })
                .or(written.map(|r| r.pos))
                .unwrap_or_else(|| section_pos(root, &["seccomp", "serve"]));
            let conditions: Vec<String> = held
                .iter()
                .map(|m| format!("`{m}` only {}", load_conditions(&s.load.allow, m)))
                .collect();
            out.push(warn(
                pos,
                format!(
                    "serve allows `{name}` with any arguments, but load allows {}: the filters \
                     stack, so serve is held to load's conditions",
                    conditions.join("; ")
                ),
                "write the same argument conditions in the serve rule, or allow it without \
                 conditions in load too",
            ));
        }
    }
}

/// Every syscall some rule allows with no argument condition.
fn unconditional(rules: &[Rule]) -> std::collections::BTreeSet<&str> {
    resolve::expand_names(
        rules
            .iter()
            .filter(|r| r.args.is_empty())
            .flat_map(|r| r.syscalls.iter().map(String::as_str)),
    )
}

/// The conditions under which `rules` allow `name`, in words.
fn load_conditions(rules: &[Rule], name: &str) -> String {
    let mut alternatives = Vec::new();
    for r in rules {
        if !resolve::expand_names(r.syscalls.iter().map(String::as_str)).contains(name) {
            continue;
        }
        let all: Vec<String> = r.args.iter().map(|a| condition_text(name, a)).collect();
        alternatives.push(all.join(" and "));
    }
    format!("when {}", alternatives.join(", or when "))
}

/// One argument condition of `syscall` as a reviewer reads it: `arg1 eq 0x5401 (TCGETS)`.
pub fn condition_text(syscall: &str, a: &super::model::ArgCondition) -> String {
    let mut t = format!("arg{} {} {:#x}", a.index, a.op.name(), a.value);
    if let Some(m) = a.mask {
        t.push_str(&format!(" (mask {m:#x})"));
    }
    if let Some(name) = crate::sysnames::arg_constant(syscall, a.index, a.value) {
        t.push_str(&format!(" ({name})"));
    }
    t
}

/// TCP ports Landlock allows in a jail that has no network interface at all.
fn ports_without_network(root: &Node, p: &Profile, out: &mut Vec<Diagnostic>) {
    if p.network != Network::None || !p.namespaces.net {
        return;
    }
    for key in ["tcp_bind", "tcp_connect"] {
        let Some(list) = at(Some(root), &["landlock", key]) else {
            continue;
        };
        if seq(Some(list)).is_empty() {
            continue;
        }
        out.push(warn(
            list.pos,
            format!(
                "landlock.{key} allows TCP ports, but `network: none` gives the jail no \
                 interface: no port can be reached"
            ),
            format!("set `network: loopback` if the plugin needs it, or drop landlock.{key}"),
        ));
    }
}

fn warn(pos: Pos, message: String, fix: impl Into<String>) -> Diagnostic {
    Diagnostic {
        pos,
        message,
        hint: Some(fix.into()),
    }
}

/// The node at `keys` below `root`, if every mapping on the way has the key.
fn at<'a>(root: Option<&'a Node>, keys: &[&str]) -> Option<&'a Node> {
    let mut node = root?;
    for key in keys {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        node = entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)?;
    }
    Some(node)
}

fn seq(node: Option<&Node>) -> &[Node] {
    match node.map(|n| &n.value) {
        Some(Value::Seq(items)) => items,
        _ => &[],
    }
}

/// Where a section (or, failing that, its nearest written parent) is.
fn section_pos(root: &Node, keys: &[&str]) -> Pos {
    (0..=keys.len())
        .rev()
        .find_map(|n| at(Some(root), &keys[..n]).map(|node| node.pos))
        .unwrap_or(root.pos)
}

/// The path items of a list as the reader normalises them.
fn path_items(node: Option<&Node>) -> Vec<Placed> {
    seq(node)
        .iter()
        .filter_map(|n| Some((normal(n.as_str()?), n.pos)))
        .collect()
}

fn normal(text: &str) -> PathBuf {
    Path::new(text).components().collect()
}

#[cfg(test)]
mod tests;
