//! The JSON Schema of the host configuration (`plugjail schema --host`), built like the
//! profile's (schema.rs) from the reader's own key lists, bounds and defaults, so that
//! the schema cannot drift from what `plugjail check` accepts.

use serde_json::{Value, json};

use super::schema::{choice_names, duration, object, size, titled};
use crate::host::config::read::*;
use crate::host::{PluginConfig, PoolConfig, RestartConfig};
use crate::profile::units::format_duration;

pub fn host_schema() -> Value {
    let plugin_defaults = PluginConfig::new("", "", "");
    let (pool, restart) = (PoolConfig::default(), RestartConfig::default());
    let count = |min: u32, max: u32, default: usize, about: &str| {
        json!({ "type": "integer", "minimum": min, "maximum": max, "default": default,
                "description": about })
    };
    let time = |default, about: &str| {
        let mut d = described(duration(), about);
        d["default"] = json!(format_duration(default));
        d
    };
    let when_paused = WHEN_PAUSED
        .iter()
        .find(|(_, w)| *w == plugin_defaults.when_paused)
        .map(|(name, _)| *name);
    let file = |about: &str| json!({ "type": "string", "minLength": 1, "description": about });

    let pool = object(
        POOL_KEYS,
        &[],
        json!({
            "warm": count(0, MAX_POOL, pool.warm, "jails started ahead of need (at most max)"),
            "max": count(1, MAX_POOL, pool.max, "the most jails, so calls, at once"),
            "queue": count(0, MAX_QUEUE, pool.queue, "calls that may wait for a jail"),
            "recycle_calls": { "type": "integer", "minimum": 1,
                               "description": "recycle a jail after this many calls" },
            "recycle_time": described(duration(), "recycle a jail this long after it started")
        }),
    );
    let restart = object(
        RESTART_KEYS,
        &[],
        json!({
            "backoff": time(restart.backoff, "first delay after a transient fault"),
            "backoff_max": time(restart.backoff_max, "the delay doubles up to this"),
            "budget": { "type": "integer", "minimum": 1, "maximum": u32::MAX,
                        "default": restart.budget,
                        "description": "transient faults allowed in `window`" },
            "window": time(restart.window, "the window of `budget`")
        }),
    );
    let health = object(
        HEALTH_KEYS,
        &["method"],
        json!({
            "method": { "type": "string", "minLength": 1, "maxLength": 255 },
            "input": { "type": "string", "default": "" }
        }),
    );
    let shm_defaults = crate::host::config::ShmOptions::default();
    let shm = object(
        SHM_KEYS,
        &[],
        json!({
            "spin_us": { "type": "integer", "minimum": 0,
                         "maximum": crate::protocol::shm::MAX_SPIN_US,
                         "default": shm_defaults.spin.as_micros(),
                         "description": "microseconds each side spins before it sleeps on the futex" },
            "arena": described(size(),
                               "the largest payload per direction, e.g. 1M (8K to 1024M)"),
            "scrub_inputs": { "type": "boolean", "default": shm_defaults.scrub_inputs,
                              "description": "zero each call's input in the region once it returns" }
        }),
    );
    let mut plugin = object(
        PLUGIN_KEYS,
        &["id", "plugin", "profile"],
        json!({
            "id": { "type": "string", "pattern": format!("^[a-z0-9_-]{{1,{MAX_ID_LEN}}}$"),
                    "description": "what hosts call the plugin by; unique in the file" },
            "plugin": file("the plugin .so, relative to this file's directory"),
            "profile": file("the profile its jails run under, relative to this file's directory"),
            "cpus": { "type": "array", "uniqueItems": true,
                      "items": { "type": "integer", "minimum": 0, "maximum": MAX_CPU } },
            "pool": pool,
            "restart": restart,
            "call_time": described(duration(), "per-call deadline; default: the profile's limits.call_time"),
            "start_time": time(plugin_defaults.start_time, "load and init deadline of a jail"),
            "stop_time": time(plugin_defaults.stop_time, "shutdown deadline of a jail"),
            "when_paused": { "enum": choice_names(WHEN_PAUSED), "default": when_paused },
            "health": health,
            "shm": described(shm, "call over shared memory instead of the pipe")
        }),
    );
    // A plugin entry is a mapping with its required keys, never an empty one.
    plugin["type"] = json!("object");
    let mut schema = object(
        TOP_KEYS,
        &["version", "plugins"],
        json!({
            "version": { "const": 1 },
            "plugins": { "type": "array", "minItems": 1, "items": plugin }
        }),
    );
    schema["type"] = json!("object");
    titled(&mut schema, "plugjail host configuration, version 1");
    schema
}

/// `schema` with a description for editors to show.
fn described(mut schema: Value, about: &str) -> Value {
    schema["description"] = json!(about);
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `object`'s debug assertion compares every section with the reader's keys.
    #[test]
    fn host_schema_matches_reader_keys() {
        let schema = host_schema();
        assert_eq!(schema["properties"]["version"]["const"], 1);
        let plugin = &schema["properties"]["plugins"]["items"];
        assert_eq!(plugin["required"], json!(["id", "plugin", "profile"]));
        assert_eq!(plugin["properties"]["start_time"]["default"], "30s");
    }
}
