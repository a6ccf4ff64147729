//! Small typed readers over the YAML node tree. Each reports its problem to the
//! [`Collector`] and returns `None`, so that reading goes on and every error is found.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use super::diag::Collector;
use super::units;
use super::yaml::{Node, Pos, Value};

/// Keys people reasonably look for in one section that live in another: (section, key,
/// where it is).
const ELSEWHERE: &[(&str, &str, &str)] = &[
    (
        "enforcement",
        "landlock",
        "Landlock's level is `landlock.compat`, beside its rules",
    ),
    (
        "limits",
        "network",
        "`network` is a top-level key: `network: none` or `network: loopback`",
    ),
];

/// The entries of one mapping whose keys have been checked against the known set.
pub struct Fields<'a> {
    entries: Vec<(&'a str, &'a Node)>,
    pub pos: Pos,
}

impl<'a> Fields<'a> {
    /// Reads `node` as a mapping called `what` whose keys must be among `known`. A `null`
    /// node (an empty section) reads as an empty mapping.
    pub fn new(c: &mut Collector, node: &'a Node, what: &str, known: &[&str]) -> Option<Self> {
        let entries = match &node.value {
            Value::Map(entries) => entries.as_slice(),
            Value::Null => &[],
            other => {
                c.error(
                    node.pos,
                    format!("`{what}` must be a mapping, not {}", other.kind()),
                );
                return None;
            }
        };
        let mut fields = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let Some(name) = key.as_str() else {
                c.error(key.pos, format!("keys in `{what}` must be strings"));
                continue;
            };
            if known.contains(&name) {
                fields.push((name, value));
            } else if let Some((_, _, hint)) =
                ELSEWHERE.iter().find(|(w, k, _)| *w == what && *k == name)
            {
                c.error_hint(key.pos, format!("unknown key `{name}` in `{what}`"), *hint);
            } else {
                c.error_suggest(
                    key.pos,
                    format!("unknown key `{name}` in `{what}`"),
                    name,
                    known.iter().copied(),
                );
            }
        }
        Some(Fields {
            entries: fields,
            pos: node.pos,
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// Reads `key` with `read` when present; `default` when absent or unreadable.
    pub fn read<T>(
        &self,
        c: &mut Collector,
        key: &str,
        default: T,
        read: impl FnOnce(&mut Collector, &Node) -> Option<T>,
    ) -> T {
        self.get(key).and_then(|n| read(c, n)).unwrap_or(default)
    }
}

pub fn boolean(c: &mut Collector, node: &Node) -> Option<bool> {
    match node.value {
        Value::Bool(b) => Some(b),
        ref other => {
            c.error(
                node.pos,
                format!("expected true or false, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn string(c: &mut Collector, node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        other => {
            c.error(
                node.pos,
                format!("expected a string, found {}", other.kind()),
            );
            None
        }
    }
}

/// A string that must be one of `choices`.
pub fn choice<T: Copy>(c: &mut Collector, node: &Node, choices: &[(&str, T)]) -> Option<T> {
    let names = || choices.iter().map(|(n, _)| *n);
    let list = names().collect::<Vec<_>>().join(", ");
    let Some(text) = node.as_str() else {
        c.error(
            node.pos,
            format!("expected one of {list}, found {}", node.value.kind()),
        );
        return None;
    };
    if let Some((_, v)) = choices.iter().find(|(n, _)| *n == text) {
        return Some(*v);
    }
    c.error_suggest(
        node.pos,
        format!("`{text}` is not one of {list}"),
        text,
        names(),
    );
    None
}

/// An integer in `min..=max`, as a `T` (checked against the range first, so the
/// conversion always succeeds).
pub fn integer<T>(c: &mut Collector, node: &Node, min: T, max: T) -> Option<T>
where
    T: Copy + Into<i128> + TryFrom<i128> + std::fmt::Display,
{
    match node.value {
        Value::Int(n) if (min.into()..=max.into()).contains(&n) => T::try_from(n).ok(),
        Value::Int(n) => {
            c.error(node.pos, format!("{n} is out of range ({min} to {max})"));
            None
        }
        ref other => {
            c.error(
                node.pos,
                format!("expected an integer, found {}", other.kind()),
            );
            None
        }
    }
}

pub fn u32_in(c: &mut Collector, node: &Node, min: u32) -> Option<u32> {
    integer(c, node, min, u32::MAX)
}

/// A byte size: `64M`, `1G`, or a plain number of bytes.
pub fn size(c: &mut Collector, node: &Node) -> Option<u64> {
    let parsed = match &node.value {
        Value::Int(n) => u64::try_from(*n).map_err(|_| format!("{n} is not a size")),
        Value::Str(s) => units::parse_size(s),
        other => Err(format!(
            "expected a size such as 64M, found {}",
            other.kind()
        )),
    };
    parsed
        .map_err(|e| {
            c.error_hint(
                node.pos,
                e,
                "sizes are whole numbers with an optional K, M, G or T suffix (binary), e.g. 64M",
            )
        })
        .ok()
}

/// A duration: `500ms`, `2s`, `5m`, `1h`.
pub fn duration(c: &mut Collector, node: &Node) -> Option<Duration> {
    let parsed = match &node.value {
        Value::Str(s) => units::parse_duration(s),
        Value::Int(n) => Err(format!("`{n}` has no unit; write for example `{n}s`")),
        other => Err(format!(
            "expected a duration such as 2s, found {}",
            other.kind()
        )),
    };
    let d = parsed.map_err(|e| c.error(node.pos, e)).ok()?;
    if d.is_zero() {
        c.error(node.pos, "a duration limit must be longer than zero");
        return None;
    }
    Some(d)
}

/// An absolute, normalised path (no `.`, `..` or trailing slash games).
pub fn abs_path(c: &mut Collector, node: &Node) -> Option<PathBuf> {
    let text = string(c, node)?;
    let path = Path::new(&text);
    if !path.is_absolute() {
        c.error_hint(
            node.pos,
            format!("path `{text}` is relative"),
            "write the full path from /; relative paths would depend on where plugjail runs",
        );
        return None;
    }
    if path
        .components()
        .any(|p| matches!(p, Component::ParentDir | Component::CurDir))
    {
        c.error(
            node.pos,
            format!("path `{text}` contains `.` or `..`; write it in its plain form"),
        );
        return None;
    }
    if text.contains('\0') {
        c.error(node.pos, "path contains a NUL byte");
        return None;
    }
    Some(path.components().collect())
}

/// A list whose items are read with `item`; a bad item is reported and skipped.
pub fn list<T>(
    c: &mut Collector,
    node: &Node,
    mut item: impl FnMut(&mut Collector, &Node) -> Option<T>,
) -> Option<Vec<T>> {
    match &node.value {
        Value::Seq(items) => Some(items.iter().filter_map(|n| item(c, n)).collect()),
        Value::Null => Some(Vec::new()),
        other => {
            c.error(node.pos, format!("expected a list, found {}", other.kind()));
            None
        }
    }
}

/// A list of items, each kept with its position, dropping exact repeats (an `extends:`
/// base and the profile may both name the same thing).
pub fn unique_list<T: PartialEq>(
    c: &mut Collector,
    node: &Node,
    mut item: impl FnMut(&mut Collector, &Node) -> Option<T>,
) -> Option<Vec<(T, Pos)>> {
    let mut out: Vec<(T, Pos)> = Vec::new();
    for (value, pos) in list(c, node, |c, n| item(c, n).map(|v| (v, n.pos)))? {
        if !out.iter().any(|(v, _)| *v == value) {
            out.push((value, pos));
        }
    }
    Some(out)
}
