//! `plugjail syscall NAME|NUMBER|@GROUP`: the lookup a profile writer needs beside a
//! verdict or a kernel log line: a name's number on each architecture and the groups that
//! hold it, a number's name on each, a group's members.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::profile::diag::closest;
use crate::sysnames::{self, Arch};

/// The version of `syscall --json`'s format.
pub const SYSCALL_FORMAT_VERSION: u32 = 1;

/// What a query matched, as JSON: `{"version", "query", "syscalls": [{"name", "numbers":
/// {"x86_64": 257, "aarch64": 56}, "groups": [...]}], "group": {...} | null}`.
pub fn lookup(query: &str) -> Result<Value, String> {
    let query = query.trim();
    if query.starts_with('@') {
        let Some(g) = sysnames::group(query) else {
            let names = sysnames::GROUPS.iter().map(|g| g.name);
            let all: Vec<&str> = sysnames::GROUPS.iter().map(|g| g.name).collect();
            return Err(match closest(query, names) {
                Some(best) => format!("unknown group `{query}`; did you mean `{best}`?"),
                None => format!("unknown group `{query}`; the groups are {}", all.join(" ")),
            });
        };
        return Ok(json!({
            "version": SYSCALL_FORMAT_VERSION,
            "query": query,
            "number": null,
            "group": { "name": g.name, "about": g.about },
            "syscalls": g.syscalls.iter().map(|n| one(n)).collect::<Vec<_>>(),
        }));
    }
    let number = parse_number(query);
    let names: Vec<&str> = match number {
        Some(nr) => {
            let mut names: Vec<&str> = Arch::ALL
                .iter()
                .filter_map(|&a| sysnames::name(a, nr))
                .collect();
            names.dedup();
            if names.is_empty() {
                return Err(format!("no syscall has number {nr} on x86_64 or aarch64"));
            }
            names
        }
        None if sysnames::is_known(query) => vec![query],
        None => {
            let mut all: Vec<&str> = sysnames::all_names().collect();
            all.sort_unstable();
            all.dedup();
            return Err(match closest(query, all) {
                Some(best) => format!("unknown syscall `{query}`; did you mean `{best}`?"),
                None => format!("unknown syscall `{query}` (on x86_64 and aarch64)"),
            });
        }
    };
    // For a number: which name it is on each architecture.
    let named: Option<serde_json::Map<String, Value>> = number.map(|nr| {
        Arch::ALL
            .iter()
            .map(|&a| (a.name().to_string(), json!(sysnames::name(a, nr))))
            .collect()
    });
    Ok(json!({
        "version": SYSCALL_FORMAT_VERSION,
        "query": query,
        "number": named.map(|by_arch| json!({ "value": number, "names": by_arch })),
        "group": null,
        "syscalls": names.iter().map(|n| one(n)).collect::<Vec<_>>(),
    }))
}

/// A decimal or `0x` hex number.
fn parse_number(q: &str) -> Option<u32> {
    match q.strip_prefix("0x").or_else(|| q.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => q.parse().ok(),
    }
}

fn one(name: &str) -> Value {
    let numbers: serde_json::Map<String, Value> = Arch::ALL
        .iter()
        .map(|&a| (a.name().to_string(), json!(sysnames::number(a, name))))
        .collect();
    let groups: Vec<&str> = sysnames::GROUPS
        .iter()
        .filter(|g| g.syscalls.contains(&name))
        .map(|g| g.name)
        .collect();
    json!({ "name": name, "numbers": numbers, "groups": groups })
}

/// The text form of [`lookup`]'s answer.
pub fn text(v: &Value) -> String {
    let mut o = String::new();
    let native = Arch::native();
    if let Some(g) = v["group"].as_object() {
        let _ = writeln!(
            o,
            "{}: {}",
            g["name"].as_str().unwrap_or_default(),
            g["about"].as_str().unwrap_or_default()
        );
    }
    if let Some(n) = v["number"].as_object() {
        let each: Vec<String> = Arch::ALL
            .iter()
            .map(|a| {
                let name = n["names"][a.name()].as_str().unwrap_or("nothing");
                format!("{name} on {a}")
            })
            .collect();
        let _ = writeln!(o, "{}: {}", n["value"], each.join(", "));
    }
    for s in v["syscalls"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().unwrap_or_default();
        let numbers: Vec<String> = Arch::ALL
            .iter()
            .map(|a| {
                let n = s["numbers"][a.name()]
                    .as_u64()
                    .map_or("none".to_string(), |n| n.to_string());
                let mark = if *a == native { " (this machine)" } else { "" };
                format!("{a} {n}{mark}")
            })
            .collect();
        let groups: Vec<&str> = s["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let groups = if groups.is_empty() {
            "in no group".to_string()
        } else {
            format!("in {}", groups.join(" "))
        };
        let _ = writeln!(o, "{name}: {}; {groups}", numbers.join(", "));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_groups() {
        let v = lookup("openat").unwrap();
        assert_eq!(v["syscalls"][0]["numbers"]["x86_64"], 257);
        assert_eq!(v["syscalls"][0]["numbers"]["aarch64"], 56);
        assert!(
            v["syscalls"][0]["groups"]
                .as_array()
                .unwrap()
                .contains(&json!("@file-read"))
        );
        // 56 is openat on aarch64 and clone on x86_64: both are named.
        let v = lookup("56").unwrap();
        let names: Vec<&str> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["clone", "openat"]);
        assert_eq!(v["number"]["names"]["x86_64"], "clone");
        assert_eq!(v["number"]["names"]["aarch64"], "openat");
        assert_eq!(
            text(&v).lines().next(),
            Some("56: clone on x86_64, openat on aarch64")
        );
        assert_eq!(lookup("0x101").unwrap()["syscalls"][0]["name"], "openat");
        // open exists on x86_64 only.
        assert_eq!(
            lookup("open").unwrap()["syscalls"][0]["numbers"]["aarch64"],
            Value::Null
        );
        let g = lookup("@time").unwrap();
        assert_eq!(g["group"]["name"], "@time");
        assert!(g["syscalls"].as_array().unwrap().len() > 2);
    }

    #[test]
    fn unknown_queries_suggest() {
        assert_eq!(
            lookup("opneat").unwrap_err(),
            "unknown syscall `opneat`; did you mean `openat`?"
        );
        assert!(
            lookup("@tme")
                .unwrap_err()
                .contains("did you mean `@time`?")
        );
        assert!(
            lookup("99999")
                .unwrap_err()
                .contains("no syscall has number 99999")
        );
    }
}
