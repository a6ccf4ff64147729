//! The JSON Schema of the profile format, for editors (yaml-language-server) to validate
//! profiles as they are typed. plugjail's own reader stays the authority: the schema
//! catches most mistakes early, `plugjail check` catches all of them.

use serde_json::{Map, Value, json};

use crate::profile::read::*;
use crate::profile::units::ERRNOS;
use crate::profile::{CmpOp, Device, Scope};
use crate::sysnames;

/// What `units::parse_size` reads: digits, an optional K/M/G/T (either case), then
/// optionally `B` or `iB` (upper-case B only: `512b` is refused by both).
const SIZE: &str = r"^[0-9]+[KkMmGgTt]?(i?B)?$";
const DURATION: &str = r"^[0-9]+(\.[0-9]+)?(ms|s|m|h)$";
const ABS_PATH: &str = r"^/";

pub fn profile_schema() -> Value {
    let device_names: Vec<&str> = Device::ALL.iter().map(|d| d.name()).collect();
    let mut devices: Vec<Value> = device_names.iter().map(|n| json!(n)).collect();
    devices.push(Value::Null);
    let scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.name()).collect();
    let ops: Vec<&str> = CmpOp::ALL.iter().map(|o| o.name()).collect();
    let errnos: Vec<&str> = ERRNOS.iter().map(|(n, _)| *n).collect();
    let mut syscalls: Vec<&str> = sysnames::all_names().collect();
    syscalls.sort_unstable();
    syscalls.dedup();
    let groups: Vec<&str> = sysnames::GROUPS.iter().map(|g| g.name).collect();
    let level = json!({ "enum": choice_names(LEVELS), "description": "required: refuse to run if the kernel cannot enforce it; best_effort: run and report what was dropped" });
    let bool_true =
        |about: &str| json!({ "type": "boolean", "default": true, "description": about });

    // One enum of groups and names, not an anyOf of two: editors then show the short
    // errorMessage for an unknown name instead of listing all ~450 valid ones, and still
    // complete from the list (with each group's purpose beside it).
    let about: Vec<&str> = sysnames::GROUPS
        .iter()
        .map(|g| g.about)
        .chain(syscalls.iter().map(|_| ""))
        .collect();
    let names: Vec<&str> = groups.iter().chain(&syscalls).copied().collect();
    let rule = object(
        RULE_KEYS,
        &["syscalls"],
        json!({
            "syscalls": { "type": "array", "minItems": 1, "items": {
                "enum": names,
                "enumDescriptions": about,
                "description": "a syscall name (x86_64 or aarch64) or a @group",
                "errorMessage": "not a syscall (x86_64 or aarch64) nor a @group: `plugjail check` suggests the nearest name, `plugjail syscall NAME` looks one up"
            }},
            "args": { "type": "array", "items": object(ARG_KEYS, &["index", "op", "value"], json!({
                "index": { "type": "integer", "minimum": 0, "maximum": 5 },
                "op": { "enum": ops },
                "value": { "type": "integer", "minimum": 0 },
                "mask": { "type": "integer", "minimum": 0 }
            }))},
            "comment": { "type": "string" }
        }),
    );
    let phase = object(
        PHASE_KEYS,
        &[],
        json!({ "allow": { "type": "array", "items": rule } }),
    );

    let mut schema = object(
        TOP_KEYS,
        &["version"],
        json!({
            "version": { "const": 1 },
            "extends": { "anyOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ],
                         "description": "base profile(s), relative to this file; their settings are merged under this one" },
            "description": { "type": "string" },
            "namespaces": object(NAMESPACE_KEYS, &[], json!({
                "user": bool_true("new user namespace"), "mount": bool_true("new mount namespace"),
                "pid": bool_true("new PID namespace"), "net": bool_true("new network namespace"),
                "ipc": bool_true("new IPC namespace"), "uts": bool_true("new hostname namespace"),
                "cgroup": bool_true("new cgroup namespace")
            })),
            "hostname": { "type": "string", "pattern": "^[A-Za-z0-9.-]{1,64}$" },
            "filesystem": object(FILESYSTEM_KEYS, &[], json!({
                "rootfs_template": path(),
                "read_only": paths(), "read_write": paths(),
                "tmpfs": { "type": "array", "items": object(TMPFS_KEYS, &["path", "size"], json!({
                    "path": path(), "size": size() })) },
                // YAML reads a bare `null` as the null value; the reader takes it as
                // /dev/null, so the schema does too.
                "devices": { "type": "array", "items": {
                    "enum": devices,
                    "description": "a device node under /dev (`null` may be written bare)",
                    "errorMessage": format!("not a device plugjail provides: {}", device_names.join(", "))
                } }
            })),
            "landlock": object(LANDLOCK_KEYS, &[], json!({
                "compat": level,
                "read": paths(), "write": paths(), "execute": paths(),
                "tcp_bind": ports(), "tcp_connect": ports(),
                "scopes": { "type": "array", "items": { "enum": scopes } }
            })),
            "seccomp": object(SECCOMP_KEYS, &[], json!({
                "default_action": { "enum": choice_names(ACTIONS) },
                "errno": { "enum": errnos },
                "load": phase, "serve": phase
            })),
            "limits": object(LIMIT_KEYS, &[], json!({
                "memory": size(), "swap": size(),
                "cpu": { "type": "number", "minimum": 0.01, "maximum": 1024, "description": "cores" },
                "io": object(IO_KEYS, &[], json!({
                    "read_bps": size(), "write_bps": size(),
                    "read_iops": { "type": "integer", "minimum": 1 },
                    "write_iops": { "type": "integer", "minimum": 1 }
                })),
                "pids": { "type": "integer", "minimum": 1 },
                "open_files": { "type": "integer", "minimum": 4 },
                "file_size": size(),
                "wall_time": duration(), "cpu_time": duration(),
                "call_time": duration(), "idle_time": duration(),
                "max_message": size()
            })),
            "network": { "enum": choice_names(NETWORKS) },
            "environment": object(ENVIRONMENT_KEYS, &[], json!({
                "pass": { "type": "array", "items": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$" } },
                "set": { "type": "object", "additionalProperties": { "type": "string" } }
            })),
            "plugin": object(PLUGIN_KEYS, &[], json!({
                "sha256": { "type": "array", "items": { "type": "string", "pattern": "^[0-9a-fA-F]{64}$" } }
            })),
            "enforcement": object(ENFORCEMENT_KEYS, &[], json!({
                "namespaces": level, "seccomp": level, "limits": level
            }))
        }),
    );
    titled(&mut schema, "plugjail profile, version 1");
    schema
}

/// Marks `schema` as a whole document's schema called `title`.
pub(super) fn titled(schema: &mut Value, title: &str) {
    let top = schema.as_object_mut().expect("object() builds an object");
    top.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    top.insert("title".into(), json!(title));
}

/// An object schema whose property names are exactly `keys` (the reader's own key list,
/// so the schema and the reader cannot drift apart).
pub(super) fn object(keys: &[&str], required: &[&str], properties: Value) -> Value {
    let Value::Object(props) = properties else {
        unreachable!("properties are written as a JSON object")
    };
    debug_assert_eq!(
        {
            let mut k: Vec<&str> = props.keys().map(String::as_str).collect();
            k.sort_unstable();
            k
        },
        {
            let mut k = keys.to_vec();
            k.sort_unstable();
            k
        },
        "schema properties differ from the reader's keys"
    );
    let mut o = Map::new();
    o.insert("type".into(), json!(["object", "null"]));
    o.insert("additionalProperties".into(), json!(false));
    o.insert("properties".into(), Value::Object(props));
    if !required.is_empty() {
        o.insert("required".into(), json!(required));
    }
    Value::Object(o)
}

pub(super) fn choice_names<T>(choices: &[(&str, T)]) -> Vec<String> {
    choices.iter().map(|(n, _)| n.to_string()).collect()
}

fn path() -> Value {
    json!({ "type": "string", "pattern": ABS_PATH })
}

fn paths() -> Value {
    json!({ "type": "array", "items": path() })
}

fn ports() -> Value {
    json!({ "type": "array", "items": { "type": "integer", "minimum": 1, "maximum": 65535 } })
}

pub(super) fn size() -> Value {
    let message = "a size: whole bytes, or a whole number with K, M, G or T (binary units; \
                   optionally followed by B or iB), e.g. 64M";
    json!({ "anyOf": [ { "type": "string", "pattern": SIZE, "errorMessage": message },
                       { "type": "integer", "minimum": 0 } ],
            "description": "bytes, or a number with K, M, G or T (binary units), e.g. 64M" })
}

pub(super) fn duration() -> Value {
    json!({ "type": "string", "pattern": DURATION, "description": "e.g. 500ms, 2s, 5m, 1h" })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The debug assertion in `object` compares every section with the reader's keys;
    /// building the schema once runs all of them.
    #[test]
    fn schema_matches_reader_keys() {
        let schema = profile_schema();
        assert_eq!(schema["properties"]["version"]["const"], 1);
        assert_eq!(schema["additionalProperties"], false);
    }
}
