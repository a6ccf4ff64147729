//! `plugjail explain --diff A B`: what profile B allows that A does not, and the reverse,
//! for reviewing a profile change. Compared by meaning, not by text: both profiles are
//! loaded (`extends:` merged), `@groups` are expanded to syscalls, a Landlock path covered
//! by a grant on a parent in the other profile is not new, and an unset limit is no limit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::profile::lint::condition_text;
use crate::profile::resolve::expand_names;
use crate::profile::units::{format_duration, format_size};
use crate::profile::{Action, Level, Network, Phase, Profile};

/// The version of the JSON this module writes; raised when a field changes meaning.
pub const DIFF_FORMAT_VERSION: u32 = 1;

/// One difference: `area` (a profile key such as `landlock.write` or `seccomp.serve`),
/// the `item` within it (a path, a syscall, a limit), each side's value (`null`: absent or
/// unlimited), and the sentence the text form prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub area: String,
    pub item: String,
    pub a: Value,
    pub b: Value,
    pub text: String,
}

/// Every difference between two effective profiles, sorted into the three kinds.
#[derive(Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    /// What B allows that A does not (B is wider here).
    pub b_allows: Vec<Change>,
    /// What A allows that B does not (B is narrower here).
    pub a_allows: Vec<Change>,
    /// Differences that widen neither (hostname, a different deny action, values set).
    pub changed: Vec<Change>,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.b_allows.is_empty() && self.a_allows.is_empty() && self.changed.is_empty()
    }

    fn push(&mut self, wider: Wider, area: &str, item: &str, a: Value, b: Value, text: String) {
        let change = Change {
            area: area.into(),
            item: item.into(),
            a,
            b,
            text,
        };
        match wider {
            Wider::B => self.b_allows.push(change),
            Wider::A => self.a_allows.push(change),
            Wider::Neither => self.changed.push(change),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Wider {
    A,
    B,
    Neither,
}

impl Wider {
    /// The narrower side's name, for "(A: 512M)".
    fn other(self) -> &'static str {
        if self == Wider::B { "A" } else { "B" }
    }
}

/// Compares two effective profiles.
pub fn diff(a: &Profile, b: &Profile) -> Diff {
    let mut d = Diff::default();
    scalars(&mut d, a, b);
    namespaces(&mut d, a, b);
    filesystem(&mut d, a, b);
    landlock(&mut d, a, b);
    seccomp(&mut d, a, b);
    limits(&mut d, a, b);
    environment(&mut d, a, b);
    plugin(&mut d, a, b);
    d
}

/// The JSON form: `version` (of this format), the two files, and the three lists.
pub fn diff_json(a_path: &Path, b_path: &Path, d: &Diff) -> Value {
    json!({
        "version": DIFF_FORMAT_VERSION,
        "a": a_path.display().to_string(),
        "b": b_path.display().to_string(),
        "b_allows": d.b_allows,
        "a_allows": d.a_allows,
        "changed": d.changed,
    })
}

/// The text form: three headed lists, each entry `area: sentence`.
pub fn diff_text(a_path: &Path, b_path: &Path, d: &Diff) -> String {
    let mut o = String::new();
    let (a, b) = (a_path.display(), b_path.display());
    let _ = writeln!(o, "A: {a}\nB: {b}");
    if d.is_empty() {
        let _ = writeln!(o, "\nThe two profiles allow the same.");
        return o;
    }
    for (title, list) in [
        ("What B allows that A does not", &d.b_allows),
        ("What A allows that B does not", &d.a_allows),
        ("Changed, wider in neither", &d.changed),
    ] {
        let _ = writeln!(o, "\n{title}:");
        if list.is_empty() {
            let _ = writeln!(o, "  nothing");
        }
        // Syscalls a phase gains with any arguments: one wrapped line per phase, printed
        // where the first of them would be, not one line each.
        let plain =
            |c: &Change| c.area.starts_with("seccomp.") && c.text.ends_with("` with any arguments");
        let mut grouped: Vec<&str> = Vec::new();
        for c in list {
            if !plain(c) {
                let _ = writeln!(o, "  {}: {}", c.area, c.text);
                continue;
            }
            if grouped.contains(&c.area.as_str()) {
                continue;
            }
            grouped.push(&c.area);
            let names: Vec<&str> = list
                .iter()
                .filter(|x| x.area == c.area && plain(x))
                .map(|x| x.item.as_str())
                .collect();
            wrap(
                &mut o,
                &format!("  {}: with any arguments: ", c.area),
                &names,
            );
        }
    }
    o
}

/// Writes `words` after `lead`, wrapped at a terminal-friendly width.
fn wrap(o: &mut String, lead: &str, words: &[&str]) {
    const WIDTH: usize = 96;
    let indent = " ".repeat(4);
    let mut line = lead.to_string();
    for w in words {
        if line.len() + w.len() + 1 > WIDTH && line.len() > lead.len() {
            let _ = writeln!(o, "{}", line.trim_end());
            line.clone_from(&indent);
        }
        line.push_str(w);
        line.push(' ');
    }
    let _ = writeln!(o, "{}", line.trim_end());
}

fn scalars(d: &mut Diff, a: &Profile, b: &Profile) {
    if a.hostname != b.hostname {
        d.push(
            Wider::Neither,
            "hostname",
            "hostname",
            json!(a.hostname),
            json!(b.hostname),
            format!("{} (A: {})", b.hostname, a.hostname),
        );
    }
    if a.network != b.network {
        let name = |n: Network| match n {
            Network::None => "none",
            Network::Loopback => "loopback",
        };
        let wider = if b.network == Network::Loopback {
            Wider::B
        } else {
            Wider::A
        };
        let (wide, narrow) = if wider == Wider::B { (b, a) } else { (a, b) };
        d.push(
            wider,
            "network",
            "network",
            json!(name(a.network)),
            json!(name(b.network)),
            format!(
                "{} ({}: {})",
                name(wide.network),
                wider.other(),
                name(narrow.network)
            ),
        );
    }
    if a.filesystem.rootfs_template != b.filesystem.rootfs_template {
        let show = |t: &Option<PathBuf>| {
            t.as_ref().map_or("the built-in template".to_string(), |p| {
                p.display().to_string()
            })
        };
        d.push(
            Wider::Neither,
            "filesystem.rootfs_template",
            "rootfs_template",
            json!(a.filesystem.rootfs_template),
            json!(b.filesystem.rootfs_template),
            format!(
                "{} (A: {})",
                show(&b.filesystem.rootfs_template),
                show(&a.filesystem.rootfs_template)
            ),
        );
    }
    let levels = [
        (
            "enforcement.namespaces",
            a.enforcement.namespaces,
            b.enforcement.namespaces,
        ),
        (
            "enforcement.seccomp",
            a.enforcement.seccomp,
            b.enforcement.seccomp,
        ),
        (
            "enforcement.limits",
            a.enforcement.limits,
            b.enforcement.limits,
        ),
        ("landlock.compat", a.landlock.compat, b.landlock.compat),
    ];
    for (area, la, lb) in levels {
        if la != lb {
            // best_effort may run without the mechanism: that side allows more.
            let wider = if lb == Level::BestEffort {
                Wider::B
            } else {
                Wider::A
            };
            d.push(
                wider,
                area,
                area.rsplit('.').next().unwrap_or(area),
                json!(la.name()),
                json!(lb.name()),
                format!(
                    "best_effort: runs without it on a kernel that cannot enforce it \
                     ({}: required)",
                    wider.other()
                ),
            );
        }
    }
}

fn namespaces(d: &mut Diff, a: &Profile, b: &Profile) {
    let (na, nb) = (&a.namespaces, &b.namespaces);
    for (name, on_a, on_b) in [
        ("user", na.user, nb.user),
        ("mount", na.mount, nb.mount),
        ("pid", na.pid, nb.pid),
        ("net", na.net, nb.net),
        ("ipc", na.ipc, nb.ipc),
        ("uts", na.uts, nb.uts),
        ("cgroup", na.cgroup, nb.cgroup),
    ] {
        if on_a != on_b {
            // Without its own namespace the jail shares the host's: that side allows more.
            let wider = if on_b { Wider::A } else { Wider::B };
            d.push(
                wider,
                "namespaces",
                name,
                json!(on_a),
                json!(on_b),
                format!(
                    "shares the host's {name} namespace ({} has its own)",
                    wider.other()
                ),
            );
        }
    }
}

fn filesystem(d: &mut Diff, a: &Profile, b: &Profile) {
    // A path's mount: 1 read-only, 2 read-write.
    let binds = |p: &Profile| {
        let mut m = BTreeMap::new();
        m.extend(p.filesystem.read_only.iter().map(|x| (x.clone(), 1)));
        m.extend(p.filesystem.read_write.iter().map(|x| (x.clone(), 2)));
        m
    };
    let (ba, bb) = (binds(a), binds(b));
    let name = |level: Option<&i32>| match level {
        None => "not bound",
        Some(1) => "read-only",
        Some(_) => "read-write",
    };
    let paths: BTreeSet<&PathBuf> = ba.keys().chain(bb.keys()).collect();
    for path in paths {
        let (la, lb) = (ba.get(path), bb.get(path));
        if la == lb {
            continue;
        }
        let wider = if lb > la { Wider::B } else { Wider::A };
        let (wide, narrow) = if wider == Wider::B {
            (lb, la)
        } else {
            (la, lb)
        };
        d.push(
            wider,
            "filesystem",
            &path.display().to_string(),
            json!(name(la)),
            json!(name(lb)),
            format!(
                "host `{}` bound {} ({}: {})",
                path.display(),
                name(wide),
                wider.other(),
                name(narrow)
            ),
        );
    }

    let tmpfs = |p: &Profile| -> BTreeMap<PathBuf, u64> {
        p.filesystem
            .tmpfs
            .iter()
            .map(|t| (t.path.clone(), t.size))
            .collect()
    };
    let (ta, tb) = (tmpfs(a), tmpfs(b));
    let paths: BTreeSet<&PathBuf> = ta.keys().chain(tb.keys()).collect();
    for path in paths {
        let (sa, sb) = (ta.get(path), tb.get(path));
        if sa == sb {
            continue;
        }
        let wider = if sb > sa { Wider::B } else { Wider::A };
        let show = |s: Option<&u64>| s.map_or("none".to_string(), |s| format_size(*s));
        let (wide, narrow) = if wider == Wider::B {
            (sb, sa)
        } else {
            (sa, sb)
        };
        d.push(
            wider,
            "filesystem.tmpfs",
            &path.display().to_string(),
            json!(sa.map(|s| format_size(*s))),
            json!(sb.map(|s| format_size(*s))),
            format!(
                "a tmpfs at `{}` of {} ({}: {})",
                path.display(),
                show(wide),
                wider.other(),
                show(narrow)
            ),
        );
    }

    let devs = |p: &Profile| -> BTreeSet<&'static str> {
        p.filesystem.devices.iter().map(|d| d.name()).collect()
    };
    sets(d, "filesystem.devices", &devs(a), &devs(b), |n| {
        format!("/dev/{n}")
    });
}

/// Items of two sets: each present in one side only is allowed by that side alone.
fn sets<T: Ord + Serialize>(
    d: &mut Diff,
    area: &str,
    a: &BTreeSet<T>,
    b: &BTreeSet<T>,
    show: impl Fn(&T) -> String,
) {
    for x in b.difference(a) {
        d.push(Wider::B, area, &show(x), Value::Null, json!(x), show(x));
    }
    for x in a.difference(b) {
        d.push(Wider::A, area, &show(x), json!(x), Value::Null, show(x));
    }
}

fn landlock(d: &mut Diff, a: &Profile, b: &Profile) {
    let (la, lb) = (&a.landlock, &b.landlock);
    for (key, ga, gb) in [
        ("read", &la.read, &lb.read),
        ("write", &la.write, &lb.write),
        ("execute", &la.execute, &lb.execute),
    ] {
        let area = format!("landlock.{key}");
        // A grant covers everything beneath its path.
        let covered = |p: &PathBuf, grants: &[PathBuf]| grants.iter().any(|g| p.starts_with(g));
        // What one side grants that the other does not cover, each way round.
        for (wider, (mine, theirs), other) in [(Wider::B, (gb, ga), "A"), (Wider::A, (ga, gb), "B")]
        {
            for p in mine.iter().filter(|p| !covered(p, theirs)) {
                let under = theirs.iter().filter(|g| g.starts_with(p)).count();
                let note = if under > 0 {
                    format!(" ({other} grants only paths below it)")
                } else {
                    String::new()
                };
                let (a, b) = match wider {
                    Wider::B => (Value::Null, json!(p)),
                    _ => (json!(p), Value::Null),
                };
                d.push(
                    wider,
                    &area,
                    &p.display().to_string(),
                    a,
                    b,
                    format!("{key} `{}`{note}", p.display()),
                );
            }
        }
    }
    for (key, pa, pb) in [
        ("tcp_bind", &la.tcp_bind, &lb.tcp_bind),
        ("tcp_connect", &la.tcp_connect, &lb.tcp_connect),
    ] {
        let verb = if key == "tcp_bind" {
            "bind"
        } else {
            "connect to"
        };
        let (sa, sb): (BTreeSet<u16>, BTreeSet<u16>) =
            (pa.iter().copied().collect(), pb.iter().copied().collect());
        sets(d, &format!("landlock.{key}"), &sa, &sb, |p| {
            format!("{verb} TCP port {p}")
        });
    }
    // A scope is a restriction: the side without it allows more.
    let (sa, sb): (BTreeSet<&str>, BTreeSet<&str>) = (
        la.scopes.iter().map(|s| s.name()).collect(),
        lb.scopes.iter().map(|s| s.name()).collect(),
    );
    for s in sa.difference(&sb) {
        d.push(
            Wider::B,
            "landlock.scopes",
            s,
            json!(s),
            Value::Null,
            format!("no `{s}` scope: may reach outside the jail that way"),
        );
    }
    for s in sb.difference(&sa) {
        d.push(
            Wider::A,
            "landlock.scopes",
            s,
            Value::Null,
            json!(s),
            format!("no `{s}` scope: may reach outside the jail that way"),
        );
    }
}

/// How one phase allows one syscall: with any arguments, or under any of these sets of
/// conditions (each set written as the conditions' text, all of which must hold).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowance {
    Any,
    When(BTreeSet<String>),
}

fn allowances(phase: &Phase) -> BTreeMap<&str, Allowance> {
    let mut out: BTreeMap<&str, Allowance> = BTreeMap::new();
    for rule in &phase.allow {
        for name in expand_names(rule.syscalls.iter().map(String::as_str)) {
            let entry = out
                .entry(name)
                .or_insert_with(|| Allowance::When(BTreeSet::new()));
            if rule.args.is_empty() {
                *entry = Allowance::Any;
            } else if let Allowance::When(alts) = entry {
                let conds: Vec<String> =
                    rule.args.iter().map(|c| condition_text(name, c)).collect();
                alts.insert(conds.join(" and "));
            }
        }
    }
    out
}

fn seccomp(d: &mut Diff, a: &Profile, b: &Profile) {
    let (sa, sb) = (&a.seccomp, &b.seccomp);
    if (sa.default_action, sa.errno) != (sb.default_action, sb.errno) {
        let show = |s: &crate::profile::Seccomp| match s.default_action {
            Action::KillProcess => "kill_process".to_string(),
            Action::Trap => "trap".to_string(),
            Action::Errno => format!(
                "errno {}",
                crate::profile::units::errno_name(s.errno).unwrap_or("?")
            ),
            Action::Log => "log (allows every syscall)".to_string(),
        };
        // `log` lets every syscall through; the others all refuse it, differently.
        let wider = match (sa.default_action, sb.default_action) {
            (Action::Log, _) => Wider::A,
            (_, Action::Log) => Wider::B,
            _ => Wider::Neither,
        };
        d.push(
            wider,
            "seccomp.default_action",
            "default_action",
            json!(show(sa)),
            json!(show(sb)),
            format!("any other syscall: {} (A: {})", show(sb), show(sa)),
        );
    }
    for (phase, pa, pb) in [
        ("load", &sa.load, &sb.load),
        ("serve", &sa.serve, &sb.serve),
    ] {
        let area = format!("seccomp.{phase}");
        let (aa, ab) = (allowances(pa), allowances(pb));
        let names: BTreeSet<&str> = aa.keys().chain(ab.keys()).copied().collect();
        for name in names {
            let (x, y) = (aa.get(name), ab.get(name));
            phase_change(d, &area, name, x, y, Wider::B);
            phase_change(d, &area, name, y, x, Wider::A);
        }
    }
}

/// What `wide` allows of syscall `name` that `narrow` does not, recorded as allowed by the
/// side `wider` names.
fn phase_change(
    d: &mut Diff,
    area: &str,
    name: &str,
    narrow: Option<&Allowance>,
    wide: Option<&Allowance>,
    wider: Wider,
) {
    let show = |a: Option<&Allowance>| match a {
        None => Value::Null,
        Some(Allowance::Any) => json!("any arguments"),
        Some(Allowance::When(alts)) => json!(alts),
    };
    let (va, vb) = if wider == Wider::B {
        (show(narrow), show(wide))
    } else {
        (show(wide), show(narrow))
    };
    let other = if wider == Wider::B { "A" } else { "B" };
    let text = match (narrow, wide) {
        (_, None) | (Some(Allowance::Any), _) => return,
        (None, Some(Allowance::Any)) => format!("`{name}` with any arguments"),
        (Some(Allowance::When(n)), Some(Allowance::Any)) => format!(
            "`{name}` with any arguments ({other}: only when {})",
            n.iter().cloned().collect::<Vec<_>>().join(", or when ")
        ),
        (narrow, Some(Allowance::When(w))) => {
            let had = match narrow {
                Some(Allowance::When(n)) => n.clone(),
                _ => BTreeSet::new(),
            };
            let new: Vec<&String> = w.difference(&had).collect();
            if new.is_empty() {
                return;
            }
            let whens: Vec<String> = new.iter().map(|c| format!("when {c}")).collect();
            format!("`{name}` {}", whens.join(", or "))
        }
    };
    d.push(wider, area, name, va, vb, text);
}

fn limits(d: &mut Diff, a: &Profile, b: &Profile) {
    let (la, lb) = (&a.limits, &b.limits);
    let sizes = [
        ("memory", la.memory, lb.memory),
        ("swap", la.swap, lb.swap),
        ("file_size", la.file_size, lb.file_size),
        ("io.read_bps", la.io.read_bps, lb.io.read_bps),
        ("io.write_bps", la.io.write_bps, lb.io.write_bps),
        ("max_message", Some(la.max_message), Some(lb.max_message)),
    ];
    for (key, x, y) in sizes {
        limit(d, key, x, y, |v| format_size(*v));
    }
    let counts = [
        ("pids", la.pids.map(u64::from), lb.pids.map(u64::from)),
        (
            "open_files",
            la.open_files.map(u64::from),
            lb.open_files.map(u64::from),
        ),
        ("io.read_iops", la.io.read_iops, lb.io.read_iops),
        ("io.write_iops", la.io.write_iops, lb.io.write_iops),
    ];
    for (key, x, y) in counts {
        limit(d, key, x, y, u64::to_string);
    }
    let durations: [(&str, Option<Duration>, Option<Duration>); 4] = [
        ("wall_time", la.wall_time, lb.wall_time),
        ("cpu_time", la.cpu_time, lb.cpu_time),
        ("call_time", la.call_time, lb.call_time),
        ("idle_time", la.idle_time, lb.idle_time),
    ];
    for (key, x, y) in durations {
        limit(d, key, x, y, |v| format_duration(*v));
    }
    let cores = |c: Option<f64>| c.map(Cores);
    limit(d, "cpu", cores(la.cpu), cores(lb.cpu), |v| {
        format!("{} core(s)", v.0)
    });
}

/// A CPU share, ordered with `f64::total_cmp` (the reader only admits 0.01 to 1024).
#[derive(Clone, Copy, PartialEq)]
struct Cores(f64);

impl Eq for Cores {}

impl PartialOrd for Cores {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cores {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A limit on each side (`None` = no limit): the side with the higher (or no) limit
/// allows more.
fn limit<T: Ord + Copy>(
    d: &mut Diff,
    key: &str,
    a: Option<T>,
    b: Option<T>,
    show: impl Fn(&T) -> String,
) {
    if a == b {
        return;
    }
    let text = |v: Option<T>| v.as_ref().map_or("no limit".to_string(), &show);
    // None (no limit) is the widest.
    let rank = |v: Option<T>| (v.is_none(), v);
    let wider = if rank(b) > rank(a) {
        Wider::B
    } else {
        Wider::A
    };
    let (wide, narrow) = if wider == Wider::B { (b, a) } else { (a, b) };
    d.push(
        wider,
        &format!("limits.{key}"),
        key,
        a.map_or(Value::Null, |v| json!(show(&v))),
        b.map_or(Value::Null, |v| json!(show(&v))),
        format!("{key} {} ({}: {})", text(wide), wider.other(), text(narrow)),
    );
}

fn environment(d: &mut Diff, a: &Profile, b: &Profile) {
    let (pa, pb): (BTreeSet<&str>, BTreeSet<&str>) = (
        a.environment.pass.iter().map(String::as_str).collect(),
        b.environment.pass.iter().map(String::as_str).collect(),
    );
    sets(d, "environment.pass", &pa, &pb, |n| {
        format!("passes `{n}` from the caller")
    });
    let (sa, sb) = (&a.environment.set, &b.environment.set);
    let names: BTreeSet<&String> = sa.keys().chain(sb.keys()).collect();
    for name in names {
        let (x, y) = (sa.get(name), sb.get(name));
        if x != y {
            let show = |v: Option<&String>| v.map_or("unset".to_string(), |v| format!("{v:?}"));
            d.push(
                Wider::Neither,
                "environment.set",
                name,
                json!(x),
                json!(y),
                format!("{name}={} (A: {})", show(y), show(x)),
            );
        }
    }
}

fn plugin(d: &mut Diff, a: &Profile, b: &Profile) {
    let (ha, hb): (BTreeSet<&str>, BTreeSet<&str>) = (
        a.plugin.sha256.iter().map(String::as_str).collect(),
        b.plugin.sha256.iter().map(String::as_str).collect(),
    );
    if ha == hb {
        return;
    }
    // No pin accepts any plugin: wider than any list of digests.
    match (ha.is_empty(), hb.is_empty()) {
        (false, true) => d.push(
            Wider::B,
            "plugin.sha256",
            "sha256",
            json!(ha),
            Value::Null,
            "any plugin file (A pins the sha256)".into(),
        ),
        (true, false) => d.push(
            Wider::A,
            "plugin.sha256",
            "sha256",
            Value::Null,
            json!(hb),
            "any plugin file (B pins the sha256)".into(),
        ),
        _ => sets(d, "plugin.sha256", &ha, &hb, |h| {
            format!("a plugin whose sha256 is {h}")
        }),
    }
}

#[cfg(test)]
mod tests;
