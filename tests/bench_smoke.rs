//! The benchmark in quick mode: it runs, and its JSON report holds every figure. Speed is
//! never checked here (docs/performance.md); the numbers of a debug build mean nothing.

#[path = "../benches/suite/mod.rs"]
mod suite;

use std::path::{Path, PathBuf};

use serde_json::Value;

fn strict() -> bool {
    std::env::var("PLUGJAIL_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Every leaf of `v` with its path (`a.b.c`).
fn leaves(v: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(x, format!("{path}.{k}"), out);
            }
        }
        other => out.push((path, other.clone())),
    }
}

const CLI_MODES: [&str; 2] = ["root", "rootless"];
/// The CLI cold start's ratios per mode: (name, numerator, denominator).
const CLI_RATIOS: [(&str, &str, &str); 4] = [
    ("plugjail_call/bwrap", "plugjail_call", "bwrap"),
    ("plugjail_exec/bwrap", "plugjail_exec", "bwrap"),
    ("plugjail_call/host", "plugjail_call", "host"),
    ("bwrap/host", "bwrap", "host"),
];

/// The figure at `path` and, for a ratio (`PREFIX.ratios.A/B.STAT`), the figures of its
/// two sides (`unavailable` names runners, e.g. `cli_cold_start_ms.MODE[.CONTENDER]` or
/// `host.warm_call_us.floor_cold`, which the ratio's own path does not contain).
fn depends_on(path: &str) -> Vec<String> {
    let mut paths = vec![path.to_string()];
    if let Some((prefix, rest)) = path.split_once(".ratios.")
        && let Some((label, _stat)) = rest.split_once('.')
        && let Some((a, b)) = label.split_once('/')
    {
        paths.push(format!("{prefix}.{a}"));
        paths.push(format!("{prefix}.{b}"));
    }
    paths
}

#[test]
fn quick_bench_reports_every_figure() {
    let dir = tempfile::tempdir().expect("temp dir");
    let json_path = dir.path().join("bench.json");
    let bins = suite::Binaries {
        stub: Path::new(env!("CARGO_BIN_EXE_plugjail")).with_file_name("plugjail-stub"),
        plugjail: PathBuf::from(env!("CARGO_BIN_EXE_plugjail")),
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        out: Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke"),
    };
    let opts = suite::Options {
        quick: true,
        json: Some(json_path.clone()),
        cold_reps: 3,
        cli_reps: 3,
        ..suite::Options::default()
    };
    let returned = suite::run(&bins, &opts).unwrap_or_else(|e| panic!("bench: {e}"));
    let text = std::fs::read_to_string(&json_path).expect("the JSON report was written");
    let json: Value = serde_json::from_str(&text).expect("the JSON report parses");
    assert_eq!(json, returned, "the file holds what run() returned");
    assert_eq!(json["schema"], "plugjail-bench/1");
    assert_eq!(json["mode"], "quick");

    // The figures that must be there, whatever the machine.
    let runners = ["floor", "unshare", "bwrap", "plugjail"];
    let stats = ["n", "median", "p99", "min", "mean"];
    for r in runners {
        assert!(json["cold_start_ms"].get(r).is_some(), "cold_start_ms.{r}");
    }
    for place in ["same_cpu", "cross_cpu"] {
        let calls = &json["call_us"][place];
        for size in ["16", "1024", "65536", "1048576"] {
            for c in ["raw_pipe", "floor", "floor_seccomp", "plugjail"] {
                assert!(calls[size].get(c).is_some(), "call_us.{place}.{size}.{c}");
            }
            let r = &calls[size]["ratios"]["plugjail/raw_pipe"];
            for k in ["median", "p99", "min"] {
                assert!(r.get(k).is_some(), "call_us.{place}.{size} ratio {k}");
            }
        }
        let tput = &json["throughput_mb_s"][place];
        for c in ["raw_pipe", "plugjail"] {
            assert!(tput.get(c).is_some(), "throughput_mb_s.{place}.{c}");
        }
        assert!(
            tput["ratios"]["plugjail/raw_pipe"].get("median").is_some(),
            "throughput_mb_s.{place} ratio"
        );
    }
    for k in ["plugjail/floor", "plugjail/bwrap"] {
        assert!(json["cold_start_ms"]["ratios"].get(k).is_some(), "{k}");
    }
    for mode in CLI_MODES {
        let cli = &json["cli_cold_start_ms"][mode];
        for c in ["host", "unshare", "bwrap", "plugjail_call", "plugjail_exec"] {
            assert!(cli.get(c).is_some(), "cli_cold_start_ms.{mode}.{c}");
        }
        for (label, _, _) in CLI_RATIOS {
            for k in ["median", "p99", "min"] {
                assert!(
                    cli["ratios"][label].get(k).is_some(),
                    "cli_cold_start_ms.{mode} ratio {label} {k}"
                );
            }
        }
    }
    for k in [
        "plugjail_supervisor_peak_kib",
        "plugjail_stub_peak_kib",
        "plugjail_stub_beyond_plugin_kib",
        "floor_stub_peak_kib",
        "plugin_host_peak_kib",
    ] {
        assert!(json["memory"].get(k).is_some(), "memory.{k}");
    }
    // The plugin host (benches/suite/host.rs).
    let host = &json["host"];
    for c in [
        "floor_cold",
        "session_cold",
        "warm_pool",
        "warm_pool_recycled",
    ] {
        assert!(
            host["warm_call_us"].get(c).is_some(),
            "host.warm_call_us.{c}"
        );
    }
    for r in ["warm_pool/floor_cold", "warm_pool_recycled/floor_cold"] {
        assert!(
            host["warm_call_us"]["ratios"][r].get("median").is_some(),
            "host.warm_call_us ratio {r}"
        );
    }
    // Full runs measure 1, 4 and 16 callers, quick ones 1 and 4.
    let callers: Vec<String> = host["round_trip_callers"]
        .as_array()
        .map(|a| a.iter().map(|n| n.to_string()).collect())
        .unwrap_or_default();
    assert!(
        callers.iter().any(|c| c == "1") && callers.len() >= 2,
        "host.round_trip_callers: {callers:?}"
    );
    for place in ["same_cpu", "cross_cpu"] {
        for callers in &callers {
            let rt = &host["round_trip_us"][place][callers];
            for c in ["raw_pipe", "session", "host", "wire"] {
                assert!(
                    rt.get(c).is_some(),
                    "host.round_trip_us.{place}.{callers}.{c}"
                );
                let rate = &host["round_trip_calls_per_s"][place][callers];
                assert!(
                    rate.get(c).is_some(),
                    "host.round_trip_calls_per_s {place} {c}"
                );
            }
            for r in ["host/raw_pipe", "wire/raw_pipe", "host/session"] {
                for k in ["median", "p99", "min"] {
                    assert!(
                        rt["ratios"][r].get(k).is_some(),
                        "host.round_trip_us.{place}.{callers} ratio {r} {k}"
                    );
                }
            }
        }
    }
    let mem = &host["memory_kib"];
    for k in [
        "host_rss",
        "host_heap",
        "serve_rss",
        "serve_pss",
        "jail_rss",
        "jail_pss",
    ] {
        assert!(
            mem["per_jail"].get(k).is_some(),
            "host.memory_kib.per_jail.{k}"
        );
        assert!(
            mem["steps"]["0"].get(k).is_some(),
            "host.memory_kib.steps.0.{k}"
        );
    }
    for k in ["host_rss", "host_heap"] {
        assert!(
            mem["per_plugin"].get(k).is_some(),
            "host.memory_kib.per_plugin.{k}"
        );
    }
    for k in ["refill", "start_ms"] {
        assert!(host["refill_ms"].get(k).is_some(), "host.refill_ms.{k}");
    }

    for section in ["cold_start_ms", "cli_cold_start_ms", "call_us", "host"] {
        let mut all = Vec::new();
        leaves(&json[section], String::new(), &mut all);
        for (path, v) in all
            .iter()
            .filter(|(p, _)| stats.iter().any(|s| p.ends_with(s)))
        {
            if let Some(n) = v.as_f64() {
                assert!(n.is_finite() && n >= 0.0, "{section}{path} = {n}");
            }
        }
    }

    // A null figure is allowed only for a runner the bench could not start here (for a
    // CLI ratio: either side's), and only outside strict mode.
    let unavailable = json["unavailable"].as_object().cloned().unwrap_or_default();
    let mut all = Vec::new();
    leaves(&json, String::new(), &mut all);
    for (path, v) in &all {
        if !v.is_null() || path.starts_with(".machine") || path == ".commit" {
            continue;
        }
        let depends = depends_on(path);
        assert!(
            unavailable
                .keys()
                .any(|r| depends.iter().any(|p| p.contains(r.as_str()))),
            "{path} is null though no runner it depends on was left out"
        );
    }
    for (runner, why) in &unavailable {
        let msg = format!("bench smoke: {runner} not measured here: {why}");
        assert!(!strict(), "{msg} (PLUGJAIL_TEST_STRICT=1)");
        println!("skip: {msg}");
    }
    for (path, v) in &all {
        if path.ends_with(".n") && !v.is_null() {
            assert!(v.as_u64().is_some_and(|n| n > 0), "{path}");
        }
    }
}
