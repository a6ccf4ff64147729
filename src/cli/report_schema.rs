//! JSON Schemas of what plugjail writes for machines: the verdict (`--report`,
//! `--status-fd`; docs/verdict.md) and `doctor --json` (docs/doctor.md). Written by hand
//! beside the types they describe (crate::verdict, crate::probe, crate::cgroup): every
//! object lists its fields and refuses others, so a field added to a report without its
//! schema fails the test that validates real reports against these (tests/editor_schema.rs).

use serde_json::{Map, Value, json};

use super::schema::titled;

/// An object with exactly these properties; `required` must be present.
fn obj(required: &[&str], properties: Value) -> Value {
    let mut o = Map::new();
    o.insert("type".into(), json!("object"));
    o.insert("additionalProperties".into(), json!(false));
    o.insert("properties".into(), properties);
    if !required.is_empty() {
        o.insert("required".into(), json!(required));
    }
    Value::Object(o)
}

fn string() -> Value {
    json!({ "type": "string" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn count() -> Value {
    json!({ "type": "integer", "minimum": 0 })
}

fn boolean() -> Value {
    json!({ "type": "boolean" })
}

fn named() -> Value {
    obj(
        &["number", "name"],
        json!({ "number": { "type": "integer" }, "name": string() }),
    )
}

/// A failed probe step (`crate::probe::Failure`).
fn failure() -> Value {
    obj(
        &["call", "message"],
        json!({ "call": string(), "errno": string(), "message": string() }),
    )
}

/// The verdict of one run (`crate::verdict::Verdict`).
pub fn verdict_schema() -> Value {
    let outcomes = [
        "exited",
        "signaled",
        "setup_failed",
        "not_found",
        "cannot_execute",
        "oom",
        "timeout",
        "pids_limit",
        "seccomp_violation",
        "ok",
        "plugin_rejected",
        "protocol_violation",
        "plugin_failed",
    ];
    let seccomp = obj(
        &[
            "phase",
            "default_action",
            "instructions",
            "allowed_syscalls",
            "naming",
        ],
        json!({
            "phase": { "enum": ["load", "serve"] },
            "default_action": string(),
            "instructions": count(),
            "allowed_syscalls": count(),
            "absent": strings(),
            "naming": { "enum": ["ptrace", "none"] }
        }),
    );
    let cgroup = obj(
        &["backend", "controllers", "dropped", "rlimits"],
        json!({
            "backend": { "enum": ["v2", "v1_hybrid", "none"] },
            "name": string(),
            "controllers": { "type": "array", "items": { "enum": ["memory", "cpu", "io", "pids"] } },
            "dropped": { "type": "array", "items": obj(&["what", "why"], json!({
                "what": string(), "why": string(), "instead": string()
            })) },
            "io_devices": { "type": "array", "items": { "type": "string", "pattern": "^[0-9]+:[0-9]+$" } },
            "rlimits": { "type": "array", "items": {
                "type": "array", "prefixItems": [string(), count()], "items": false, "minItems": 2
            } },
            "oom_kills": count(),
            "memory_limit_hits": count(),
            "memory_peak": count(),
            "cpu_usage_usec": count(),
            "cpu_throttled_periods": count(),
            "pids_limit_hits": count()
        }),
    );
    let enforced = obj(
        &["namespaces", "landlock", "seccomp", "rootless"],
        json!({
            "namespaces": strings(),
            "namespaces_dropped": strings(),
            "landlock": { "anyOf": [ { "type": "null" }, obj(&["abi", "status", "dropped"], json!({
                "abi": count(),
                "status": { "enum": ["full", "partial", "not_enforced"] },
                "dropped": strings()
            })) ] },
            "seccomp": { "anyOf": [ { "type": "null" }, seccomp.clone() ] },
            "seccomp_serve": seccomp,
            "seccomp_serve_skipped": string(),
            "rootless": boolean(),
            "uid_map": string(),
            "gid_map": string(),
            "missing_paths": strings(),
            "cgroup": cgroup
        }),
    );
    let mut schema = obj(
        &[
            "version",
            "outcome",
            "exit_status",
            "wall_time_ms",
            "profile",
            "command",
        ],
        json!({
            "version": { "const": crate::verdict::VERSION, "description": "the verdict format's version" },
            "outcome": { "enum": outcomes },
            "exit_code": { "type": "integer" },
            "signal": named(),
            "step": { "type": "string", "description": "the setup step that failed" },
            "errno": named(),
            "message": { "type": "string", "description": "may hold text the plugin wrote: escape it before showing it" },
            "timeout": obj(&["kind"], json!({
                "kind": { "enum": ["wall", "cpu", "call", "idle", "host"] },
                "limit_ms": count()
            })),
            "syscall": obj(&["name", "number", "arch"], json!({
                "name": { "type": ["string", "null"] },
                "number": { "type": ["integer", "null"], "minimum": 0 },
                "arch": { "type": ["string", "null"] },
                "phase": { "enum": ["load", "serve"] },
                "args": { "type": "array", "items": obj(&["index", "value"], json!({
                    "index": { "type": "integer", "minimum": 0, "maximum": 5 },
                    "value": string(),
                    "constant": string()
                })) }
            })),
            "calls": count(),
            "plugin": obj(&["path", "sha256", "bytes"], json!({
                "path": string(),
                "sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
                "bytes": count()
            })),
            "call_error": obj(&["kind", "status", "message"], json!({
                "kind": { "enum": ["plugin", "unknown_method", "output_too_large", "bad_call"] },
                "status": { "type": "integer" },
                "message": string()
            })),
            "plugin_failure": obj(&["stage"], json!({
                "stage": { "enum": ["load", "entry", "abi", "init"] },
                "status": { "type": "integer" },
                "message": string()
            })),
            "exit_status": { "type": "integer", "minimum": 0, "maximum": 255 },
            "wall_time_ms": count(),
            "resources": obj(&["cpu_time_ms", "max_rss_bytes"], json!({
                "cpu_time_ms": count(),
                "max_rss_bytes": count(),
                "memory_peak_bytes": count()
            })),
            "profile": string(),
            "command": strings(),
            "enforced": enforced
        }),
    );
    titled(&mut schema, "plugjail verdict");
    schema
}

/// `plugjail doctor --json` (`crate::doctor`, over `crate::probe::Capabilities`).
pub fn doctor_schema() -> Value {
    let check = obj(&["ok"], json!({ "ok": boolean(), "error": failure() }));
    let v2_cgroup = obj(
        &[
            "path",
            "dir",
            "is_root",
            "controllers",
            "subtree_control",
            "writable",
            "procs_writable",
            "subtree_control_writable",
            "delegated",
        ],
        json!({
            "path": string(), "dir": string(), "is_root": boolean(), "owner_uid": count(),
            "controllers": strings(), "subtree_control": strings(), "writable": boolean(),
            "procs_writable": boolean(), "subtree_control_writable": boolean(),
            "delegated": boolean()
        }),
    );
    let mechanism = obj(
        &["name", "level", "items"],
        json!({
            "name": { "enum": ["namespaces", "landlock", "seccomp", "limits"] },
            "level": { "enum": ["required", "best_effort"] },
            "items": { "type": "array", "items": obj(&["what", "enforce", "how"], json!({
                "what": string(),
                "enforce": { "enum": ["yes", "degraded", "no"] },
                "how": string()
            })) }
        }),
    );
    let mut schema = obj(
        &[
            "version",
            "arch",
            "privileges",
            "user_namespaces",
            "landlock",
            "seccomp",
            "no_new_privs",
            "cgroups",
        ],
        json!({
            "version": { "type": "string", "description": "the plugjail release that wrote the report" },
            "arch": string(),
            "privileges": obj(&["uid", "euid", "gid", "root", "cap_sys_admin"], json!({
                "uid": count(), "euid": count(), "gid": count(), "root": boolean(),
                "cap_sys_admin": boolean()
            })),
            "user_namespaces": obj(
                &["works", "user", "maps", "mount", "pid", "net", "ipc", "uts", "cgroup"],
                json!({
                    "works": boolean(), "user": check, "maps": check, "mount": check,
                    "pid": check, "net": check, "ipc": check, "uts": check, "cgroup": check,
                    "max_user_namespaces": count(),
                    "apparmor_restrict_unprivileged_userns": boolean(),
                    "hint": string(),
                    "unprivileged_userns_clone": boolean()
                })
            ),
            "landlock": obj(&["abi", "features"], json!({
                "abi": count(), "features": strings(), "error": failure()
            })),
            "seccomp": obj(&["available", "current_mode", "actions", "actions_source"], json!({
                "available": boolean(), "current_mode": string(), "actions": strings(),
                "actions_source": string(), "error": failure()
            })),
            "no_new_privs": obj(&["supported", "set"], json!({
                "supported": boolean(), "set": boolean()
            })),
            "cgroups": obj(&["mode", "own", "v1", "writable", "host_swap"], json!({
                "mode": { "enum": ["v2", "v1_hybrid", "none"] },
                "own": { "type": "array", "items": obj(&["hierarchy", "controllers", "path"], json!({
                    "hierarchy": count(), "controllers": strings(), "path": string()
                })) },
                "v2": obj(&["mount", "own_path", "usable_controllers"], json!({
                    "mount": string(), "own_path": string(), "own": v2_cgroup,
                    "parent": v2_cgroup, "usable_controllers": strings(), "error": failure()
                })),
                "v1": { "type": "array", "items": obj(&["controller", "own_is_root", "writable"], json!({
                    "controller": string(), "mount": string(), "own_path": string(),
                    "dir": string(), "own_is_root": boolean(), "owner_uid": count(),
                    "writable": boolean(), "error": failure()
                })) },
                "writable": { "type": "array", "items": { "enum": ["memory", "cpu", "io", "pids"] } },
                "swap_accounting": boolean(),
                "host_swap": boolean(),
                "error": failure()
            })),
            "profile": obj(&["path", "mechanisms", "outcome", "lost", "refused", "summary"], json!({
                "path": string(),
                "mechanisms": { "type": "array", "items": mechanism },
                "outcome": { "enum": ["run", "run_losing", "refused"] },
                "lost": strings(),
                "refused": strings(),
                "summary": string()
            }))
        }),
    );
    titled(&mut schema, "plugjail doctor --json");
    schema
}
