//! The results as JSON (every figure and ratio; null where a runner was left out) and as
//! a table for people, built from that JSON so the two always agree.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use super::calls::{PLACEMENTS, Placement, SIZES, Samples};
use super::cli::{self, CONTENDERS, MODES};
use super::host;
use super::memory::Memory;
use super::stats::{Summary, ratio, round};

/// Bumped when the JSON layout changes, so comparisons across commits can tell.
pub const SCHEMA: &str = "plugjail-bench/1";

pub const COLD_RUNNERS: [&str; 4] = ["floor", "unshare", "bwrap", "plugjail"];
pub const CALL_CONTENDERS: [&str; 4] = ["raw_pipe", "floor", "floor_seccomp", "plugjail"];

/// (ratio name, numerator, denominator, target for people, or "")
const COLD_RATIOS: [(&str, &str, &str, &str); 4] = [
    ("plugjail/floor", "plugjail", "floor", "<= 2.5"),
    ("plugjail/bwrap", "plugjail", "bwrap", "<= 1.0"),
    ("bwrap/floor", "bwrap", "floor", ""),
    ("unshare/floor", "unshare", "floor", ""),
];
/// (ratio name, numerator, denominator), per mode of the CLI cold start.
const CLI_RATIOS: [(&str, &str, &str); 4] = [
    ("plugjail_call/bwrap", "plugjail_call", "bwrap"),
    ("plugjail_exec/bwrap", "plugjail_exec", "bwrap"),
    ("plugjail_call/host", "plugjail_call", "host"),
    ("bwrap/host", "bwrap", "host"),
];
const CALL_RATIOS: [(&str, &str, &str); 3] = [
    ("plugjail/raw_pipe", "plugjail", "raw_pipe"),
    ("floor/raw_pipe", "floor", "raw_pipe"),
    ("floor_seccomp/raw_pipe", "floor_seccomp", "raw_pipe"),
];

pub struct Inputs<'a> {
    pub quick: bool,
    pub root: &'a Path,
    pub unavailable: &'a [(String, String)],
    pub cold: &'a BTreeMap<&'static str, Vec<f64>>,
    pub cli: &'a cli::Samples,
    pub calls: &'a Samples,
    pub memory: &'a Memory,
    /// None when plugjail sessions could not run here.
    pub host: Option<&'a host::Samples>,
}

fn summary_json(s: Option<Summary>, unit: f64) -> Value {
    s.map_or(Value::Null, |s| s.json(unit))
}

fn ratio_json(a: Option<Summary>, b: Option<Summary>) -> Value {
    let r = |f: fn(&Summary) -> f64| {
        ratio(a.as_ref().map(f), b.as_ref().map(f)).map_or(Value::Null, |x| json!(round(x)))
    };
    json!({ "median": r(|s| s.median), "p99": r(|s| s.p99), "min": r(|s| s.min) })
}

pub fn json(i: &Inputs) -> Value {
    let cold_sum = |name: &str| i.cold.get(name).and_then(|v| Summary::of(v));
    let mut cold = Map::new();
    for name in COLD_RUNNERS {
        cold.insert(name.into(), summary_json(cold_sum(name), 1e6));
    }
    let mut ratios = Map::new();
    for (label, a, b, _) in COLD_RATIOS {
        ratios.insert(label.into(), ratio_json(cold_sum(a), cold_sum(b)));
    }
    cold.insert("ratios".into(), Value::Object(ratios));

    let mut cli_cold = Map::new();
    for mode in MODES {
        let sum = |c: &str| i.cli.get(&(mode.name(), c)).and_then(|v| Summary::of(v));
        let mut per = Map::new();
        for c in CONTENDERS {
            per.insert(c.name().into(), summary_json(sum(c.name()), 1e6));
        }
        let mut ratios = Map::new();
        for (label, a, b) in CLI_RATIOS {
            ratios.insert(label.into(), ratio_json(sum(a), sum(b)));
        }
        per.insert("ratios".into(), Value::Object(ratios));
        cli_cold.insert(mode.name().into(), Value::Object(per));
    }

    let mut calls = Map::new();
    let mut tput = Map::new();
    for placement in PLACEMENTS {
        calls.insert(placement.name().into(), call_json(i.calls, placement));
        tput.insert(placement.name().into(), tput_json(i.calls, placement));
    }
    let cpus: Map<String, Value> = i
        .calls
        .cpus
        .iter()
        .map(|(p, (h, s))| (p.name().to_string(), json!({ "host": h, "server": s })))
        .collect();

    let m = i.memory;
    let kib = |b: Option<u64>| b.map_or(Value::Null, |b| json!(b / 1024));
    let beyond = match (m.stub, m.plugin_host) {
        (Some(s), Some(p)) => Some(s.saturating_sub(p)),
        _ => None,
    };
    let memory = json!({
        "plugjail_supervisor_peak_kib": kib(m.supervisor),
        "plugjail_stub_peak_kib": kib(m.stub),
        "plugjail_stub_beyond_plugin_kib": kib(beyond),
        "floor_stub_peak_kib": kib(m.floor_stub),
        "plugin_host_peak_kib": kib(m.plugin_host),
    });

    let unavailable: Map<String, Value> = i
        .unavailable
        .iter()
        .map(|(n, why)| (n.clone(), json!(why)))
        .collect();
    json!({
        "schema": SCHEMA,
        "mode": if i.quick { "quick" } else { "full" },
        "commit": commit(i.root),
        "unix_time": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        "machine": machine(),
        "unavailable": unavailable,
        "cold_start_ms": cold,
        (cli::SECTION): cli_cold,
        "call_cpus": cpus,
        "call_us": calls,
        "throughput_mb_s": tput,
        "memory": memory,
        "host": host_json(i.host),
        "targets": {
            "cold_start plugjail/bwrap": "<= 1.0",
            "cold_start plugjail/floor": "<= 2.5",
            "call 16 and 1024 plugjail/raw_pipe (median, p99)": "<= 1.3",
            "throughput plugjail/raw_pipe": ">= 0.8",
        },
    })
}

/// (ratio name, numerator, denominator) of the host's warm-call section.
const WARM_RATIOS: [(&str, &str, &str); 4] = [
    ("warm_pool/floor_cold", "warm_pool", "floor_cold"),
    (
        "warm_pool_recycled/floor_cold",
        "warm_pool_recycled",
        "floor_cold",
    ),
    ("warm_pool/session_cold", "warm_pool", "session_cold"),
    (
        "warm_pool_recycled/session_cold",
        "warm_pool_recycled",
        "session_cold",
    ),
];
/// The same for the host's round trips (and, of the medians, their calls per second).
const HOST_RT_RATIOS: [(&str, &str, &str); 5] = [
    ("host/raw_pipe", "host", "raw_pipe"),
    ("wire/raw_pipe", "wire", "raw_pipe"),
    ("session/raw_pipe", "session", "raw_pipe"),
    ("host/session", "host", "session"),
    ("wire/host", "wire", "host"),
];
/// The figures of a memory step, as (JSON key, bytes).
fn step_fields(s: &host::Step) -> [(&'static str, u64); 6] {
    [
        ("host_rss", s.host.rss),
        ("host_heap", s.host.heap),
        ("serve_rss", s.serve_rss),
        ("serve_pss", s.serve_pss),
        ("jail_rss", s.jail_rss),
        ("jail_pss", s.jail_pss),
    ]
}

/// The `host` section: every figure of benches/suite/host.rs, null throughout when it did
/// not run.
fn host_json(h: Option<&host::Samples>) -> Value {
    let section = |name: &str| name.trim_start_matches("host.").to_string();
    let Some(h) = h else {
        return Value::Object(
            host::SECTIONS
                .iter()
                .map(|s| (section(s), Value::Null))
                .collect(),
        );
    };
    let warm_sum = |name: &str| h.warm.get(name).and_then(|v| Summary::of(v));
    let mut warm = Map::new();
    for name in host::WARM {
        warm.insert(name.into(), summary_json(warm_sum(name), 1e3));
    }
    let mut ratios = Map::new();
    for (label, a, b) in WARM_RATIOS {
        ratios.insert(label.into(), ratio_json(warm_sum(a), warm_sum(b)));
    }
    warm.insert("ratios".into(), Value::Object(ratios));

    let mut rt = Map::new();
    let mut rate = Map::new();
    for placement in PLACEMENTS {
        if !h.cpus.contains_key(&placement) {
            continue;
        }
        let mut rt_p = Map::new();
        let mut rate_p = Map::new();
        for &callers in &h.callers {
            let key = |name: &str| {
                let name = host::ROUND_TRIP.iter().find(|c| **c == name).copied();
                (placement, callers, name.unwrap_or(""))
            };
            let rt_sum = |name: &str| h.round_trip.get(&key(name)).and_then(|v| Summary::of(v));
            let rate_sum = |name: &str| h.rate.get(&key(name)).and_then(|v| Summary::of(v));
            let mut per = Map::new();
            let mut per_rate = Map::new();
            for name in host::ROUND_TRIP {
                per.insert(name.into(), summary_json(rt_sum(name), 1e3));
                per_rate.insert(name.into(), summary_json(rate_sum(name), 1.0));
            }
            let mut ratios = Map::new();
            let mut rate_ratios = Map::new();
            for (label, a, b) in HOST_RT_RATIOS {
                ratios.insert(label.into(), ratio_json(rt_sum(a), rt_sum(b)));
                let med = |n: &str| rate_sum(n).map(|s| s.median);
                let r = ratio(med(a), med(b)).map_or(Value::Null, |x| json!(round(x)));
                rate_ratios.insert(label.into(), json!({ "median": r }));
            }
            per.insert("ratios".into(), Value::Object(ratios));
            per_rate.insert("ratios".into(), Value::Object(rate_ratios));
            rt_p.insert(callers.to_string(), Value::Object(per));
            rate_p.insert(callers.to_string(), Value::Object(per_rate));
        }
        rt.insert(placement.name().into(), Value::Object(rt_p));
        rate.insert(placement.name().into(), Value::Object(rate_p));
    }
    let cpus: Map<String, Value> = h
        .cpus
        .iter()
        .map(|(p, (c, s))| (p.name().to_string(), json!({ "callers": c, "servers": s })))
        .collect();

    let m = &h.memory;
    let kib = |b: u64| json!(b / 1024);
    let mut steps = Map::new();
    for s in &m.steps {
        let fields: Map<String, Value> = step_fields(s)
            .into_iter()
            .map(|(k, v)| (k.to_string(), kib(v)))
            .collect();
        steps.insert(s.jails.to_string(), Value::Object(fields));
    }
    // Increments per jail from no jail to the most, and per plugin from no host to the
    // plugins configured (KiB, one decimal; negative if the allocator gave memory back).
    let per = |from: u64, to: u64, n: usize| {
        if n == 0 {
            Value::Null
        } else {
            let d = (to as f64 - from as f64) / 1024.0 / n as f64;
            json!((d * 10.0).round() / 10.0)
        }
    };
    let per_jail = match (m.steps.first(), m.steps.last()) {
        (Some(a), Some(b)) if b.jails > a.jails => {
            let n = b.jails - a.jails;
            let fields: Map<String, Value> = step_fields(a)
                .into_iter()
                .zip(step_fields(b))
                .map(|((k, x), (_, y))| (k.to_string(), per(x, y, n)))
                .collect();
            Value::Object(fields)
        }
        _ => Value::Null,
    };
    let memory = json!({
        "plugins": m.plugins,
        "base": { "host_rss": kib(m.base.rss), "host_heap": kib(m.base.heap) },
        "with_plugins": {
            "host_rss": kib(m.with_plugins.rss),
            "host_heap": kib(m.with_plugins.heap),
        },
        "steps": steps,
        "per_jail": per_jail,
        "per_plugin": {
            "host_rss": per(m.base.rss, m.with_plugins.rss, m.plugins),
            "host_heap": per(m.base.heap, m.with_plugins.heap, m.plugins),
        },
    });

    let refill_sum = Summary::of(&h.refill);
    let start_sum = Summary::of(&h.start);
    let refill = json!({
        "refill": summary_json(refill_sum, 1e6),
        "start_ms": summary_json(start_sum, 1e6),
        "ratios": {
            "refill/session_cold": ratio_json(refill_sum, warm_sum("session_cold")),
            "start_ms/session_cold": ratio_json(start_sum, warm_sum("session_cold")),
        },
    });

    json!({
        "warm_call_us": warm,
        "round_trip_cpus": cpus,
        "round_trip_us": rt,
        "round_trip_calls_per_s": rate,
        "round_trip_payload": host::PAYLOAD,
        "round_trip_callers": h.callers,
        "memory_kib": memory,
        "refill_ms": refill,
        "targets": {
            "warm_call warm_pool/floor_cold (median)": "< 1.0",
            "round_trip host/raw_pipe (median, p99)": "<= 1.2",
            "round_trip wire/raw_pipe (median, p99)": "<= 1.2",
        },
    })
}

/// Round trips per payload size in one placement (µs), with the ratios.
fn call_json(samples: &Samples, placement: Placement) -> Value {
    let mut calls = Map::new();
    for size in SIZES {
        let sum = |name: &str| {
            let key = (placement, size, contender_key(name));
            samples.calls.get(&key).and_then(|v| Summary::of(v))
        };
        let mut per = Map::new();
        for name in CALL_CONTENDERS {
            per.insert(name.into(), summary_json(sum(name), 1e3));
        }
        let mut ratios = Map::new();
        for (label, a, b) in CALL_RATIOS {
            ratios.insert(label.into(), ratio_json(sum(a), sum(b)));
        }
        per.insert("ratios".into(), Value::Object(ratios));
        calls.insert(size.to_string(), Value::Object(per));
    }
    Value::Object(calls)
}

/// Back-to-back 1 MiB calls in one placement: MB/s of input per batch.
fn tput_json(samples: &Samples, placement: Placement) -> Value {
    let mib = *SIZES.last().unwrap_or(&0);
    let tput_sum = |name: &str| {
        let key = (placement, mib, contender_key(name));
        samples.batches.get(&key).and_then(|v| Summary::of(v))
    };
    let mut tput = Map::new();
    for name in CALL_CONTENDERS {
        tput.insert(name.into(), summary_json(tput_sum(name), 1e6));
    }
    let med = |name: &str| tput_sum(name).map(|s| s.median);
    let mut ratios = Map::new();
    for (label, a, b) in CALL_RATIOS {
        let r = ratio(med(a), med(b)).map_or(Value::Null, |x| json!(round(x)));
        ratios.insert(label.into(), json!({ "median": r }));
    }
    tput.insert("ratios".into(), Value::Object(ratios));
    Value::Object(tput)
}

/// The names the call samples are stored under (the session runners' names).
fn contender_key(name: &str) -> &'static str {
    CALL_CONTENDERS
        .iter()
        .find(|c| **c == name)
        .copied()
        .unwrap_or("")
}

fn commit(root: &Path) -> Value {
    std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or(Value::Null, |o| {
            json!(String::from_utf8_lossy(&o.stdout).trim())
        })
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string());
    let mem_kib: Option<u64> = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok());
    let cgroups = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "v2"
    } else if Path::new("/sys/fs/cgroup/unified").exists() {
        "v1 hybrid"
    } else {
        "v1"
    };
    let bwrap = std::process::Command::new("bwrap")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    json!({
        "cpu": cpu,
        "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "memory_mib": mem_kib.map(|k| k / 1024),
        // SAFETY: getuid has no preconditions.
        "uid": unsafe { libc::getuid() },
        "cgroups": cgroups,
        "bwrap": bwrap,
    })
}

fn fig(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else if x >= 10.0 {
            format!("{x:.1}")
        } else {
            format!("{x:.2}")
        }
    })
}

fn ratio_fig(v: &Value) -> String {
    v.as_f64().map_or("-".into(), |x| format!("{x:.2}x"))
}

/// The table for people.
pub fn table(j: &Value) -> String {
    let mut t = String::new();
    let m = &j["machine"];
    let _ = writeln!(
        t,
        "plugjail bench ({}) at {} on {} x {}, kernel {}, cgroups {}, uid {}",
        j["mode"].as_str().unwrap_or("?"),
        j["commit"].as_str().unwrap_or("?"),
        m["cpus"],
        m["cpu"].as_str().unwrap_or("?"),
        m["kernel"].as_str().unwrap_or("?"),
        m["cgroups"].as_str().unwrap_or("?"),
        m["uid"],
    );
    if let Some(u) = j["unavailable"].as_object() {
        for (name, why) in u {
            let _ = writeln!(t, "  left out: {name}: {}", why.as_str().unwrap_or(""));
        }
    }
    let row = |t: &mut String, label: &str, s: &Value| {
        let _ = writeln!(
            t,
            "  {label:<24} {:>9} {:>9} {:>9} {:>6}",
            fig(&s["median"]),
            fig(&s["p99"]),
            fig(&s["min"]),
            s["n"].as_u64().map_or("-".into(), |n| n.to_string()),
        );
    };
    let ratio_row = |t: &mut String, label: &str, r: &Value, target: &str| {
        let target = if target.is_empty() {
            String::new()
        } else {
            format!("   target {target}")
        };
        let _ = writeln!(
            t,
            "  {label:<24} {:>9} {:>9} {:>9}{target}",
            ratio_fig(&r["median"]),
            ratio_fig(&r["p99"]),
            ratio_fig(&r["min"]),
        );
    };

    let _ = writeln!(
        t,
        "\ncold start, spawn to first result (ms)  median       p99       min      n"
    );
    let cold = &j["cold_start_ms"];
    for name in COLD_RUNNERS {
        row(&mut t, name, &cold[name]);
    }
    for (label, _, _, target) in COLD_RATIOS {
        ratio_row(&mut t, label, &cold["ratios"][label], target);
    }

    let _ = writeln!(
        t,
        "\ncli cold start, spawn to the result's first byte on stdout (ms)"
    );
    let _ = writeln!(t, "{:<40} median       p99       min      n", "");
    for mode in MODES {
        let uid = match mode {
            cli::Mode::Root => m["uid"].to_string(),
            cli::Mode::Rootless => "65534".into(),
        };
        let _ = writeln!(t, "  {}, as uid {uid}", mode.name());
        let c = &j[cli::SECTION][mode.name()];
        for name in CONTENDERS.map(cli::Contender::name) {
            row(&mut t, &format!("  {name}"), &c[name]);
        }
        for (label, _, _) in CLI_RATIOS {
            ratio_row(&mut t, &format!("  {label}"), &c["ratios"][label], "");
        }
    }

    for placement in PLACEMENTS {
        let p = placement.name();
        let cpus = &j["call_cpus"][p];
        let _ = writeln!(
            t,
            "\nwarm call round trip, {p} (host cpu {}, server cpu {}) (us)",
            cpus["host"], cpus["server"]
        );
        let _ = writeln!(t, "{:<40} median       p99       min      n", "");
        for size in SIZES {
            let c = &j["call_us"][p][size.to_string()];
            let _ = writeln!(t, "  {}", size_name(size));
            for name in CALL_CONTENDERS {
                row(&mut t, &format!("  {name}"), &c[name]);
            }
            for (label, _, _) in CALL_RATIOS {
                let target = if label == "plugjail/raw_pipe" && size <= 1024 {
                    "<= 1.3"
                } else {
                    ""
                };
                ratio_row(&mut t, &format!("  {label}"), &c["ratios"][label], target);
            }
        }

        let _ = writeln!(
            t,
            "\nthroughput, back-to-back 1 MiB calls, {p} (MB/s of input)  median    min"
        );
        let tp = &j["throughput_mb_s"][p];
        for name in CALL_CONTENDERS {
            let _ = writeln!(
                t,
                "  {name:<24} {:>9} {:>9}",
                fig(&tp[name]["median"]),
                fig(&tp[name]["min"]),
            );
        }
        for (label, _, _) in CALL_RATIOS {
            let target = if label == "plugjail/raw_pipe" {
                "   target >= 0.8"
            } else {
                ""
            };
            let _ = writeln!(
                t,
                "  {label:<24} {:>9}{target}",
                ratio_fig(&tp["ratios"][label]["median"])
            );
        }
    }

    let _ = writeln!(t, "\nmemory, peak resident set (KiB)");
    if let Some(mem) = j["memory"].as_object() {
        for (k, v) in mem {
            let _ = writeln!(
                t,
                "  {:<24} {:>9}",
                k.trim_end_matches("_kib"),
                v.as_u64().map_or("-".into(), |x| x.to_string())
            );
        }
    }
    host_table(&mut t, &j["host"]);
    t
}

/// The host's sections of the table.
fn host_table(t: &mut String, h: &Value) {
    if h["warm_call_us"].is_null() {
        let _ = writeln!(t, "\nplugin host: not measured");
        return;
    }
    let row = |t: &mut String, label: &str, s: &Value| {
        let _ = writeln!(
            t,
            "  {label:<32} {:>9} {:>9} {:>9} {:>6}",
            fig(&s["median"]),
            fig(&s["p99"]),
            fig(&s["min"]),
            s["n"].as_u64().map_or("-".into(), |n| n.to_string()),
        );
    };
    let ratio_row = |t: &mut String, label: &str, r: &Value, target: &str| {
        let target = if target.is_empty() {
            String::new()
        } else {
            format!("   target {target}")
        };
        let _ = writeln!(
            t,
            "  {label:<32} {:>9} {:>9} {:>9}{target}",
            ratio_fig(&r["median"]),
            ratio_fig(&r["p99"]),
            ratio_fig(&r["min"]),
        );
    };
    let head = |t: &mut String, title: &str| {
        let _ = writeln!(t, "\n{title}");
        let _ = writeln!(t, "{:<48} median       p99       min      n", "");
    };

    head(
        t,
        "plugin host: a call through a warm pool vs the cold floor (us)",
    );
    let w = &h["warm_call_us"];
    for name in host::WARM {
        row(t, name, &w[name]);
    }
    for (label, _, _) in WARM_RATIOS {
        let target = if label == "warm_pool/floor_cold" {
            "< 1.0"
        } else {
            ""
        };
        ratio_row(t, label, &w["ratios"][label], target);
    }

    let payload = h["round_trip_payload"].as_u64().unwrap_or(0);
    if let Some(placements) = h["round_trip_us"].as_object() {
        for (p, by_callers) in placements {
            let cpus = &h["round_trip_cpus"][p];
            head(
                t,
                &format!(
                    "plugin host: {payload} B round trip, {p} (callers cpu {}, servers cpu {}), \
                     pool max = warm = callers (us)",
                    cpus["callers"], cpus["servers"]
                ),
            );
            let Some(by_callers) = by_callers.as_object() else {
                continue;
            };
            for (callers, c) in by_callers {
                let rate = &h["round_trip_calls_per_s"][p][callers];
                let _ = writeln!(t, "  {callers} caller(s)");
                for name in host::ROUND_TRIP {
                    row(t, &format!("  {name}"), &c[name]);
                }
                for (label, _, _) in HOST_RT_RATIOS {
                    let target = match label {
                        "host/raw_pipe" | "wire/raw_pipe" => "<= 1.2",
                        _ => "",
                    };
                    ratio_row(t, &format!("  {label}"), &c["ratios"][label], target);
                }
                let rates: Vec<String> = host::ROUND_TRIP
                    .iter()
                    .map(|n| format!("{n} {}", fig(&rate[*n]["median"])))
                    .collect();
                let _ = writeln!(
                    t,
                    "    calls/s (median batch): {}; host/raw_pipe {}, wire/raw_pipe {}",
                    rates.join(", "),
                    ratio_fig(&rate["ratios"]["host/raw_pipe"]["median"]),
                    ratio_fig(&rate["ratios"]["wire/raw_pipe"]["median"])
                );
            }
        }
    }

    let m = &h["memory_kib"];
    let _ = writeln!(
        t,
        "\nplugin host: memory with idle warm jails (KiB; host = this process)"
    );
    let _ = writeln!(
        t,
        "  {:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "jails", "host_rss", "host_heap", "serve_rss", "serve_pss", "jail_rss", "jail_pss"
    );
    let cell = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x}"));
    let line = |t: &mut String, label: &str, s: &Value| {
        let _ = writeln!(
            t,
            "  {label:<10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            cell(&s["host_rss"]),
            cell(&s["host_heap"]),
            cell(&s["serve_rss"]),
            cell(&s["serve_pss"]),
            cell(&s["jail_rss"]),
            cell(&s["jail_pss"]),
        );
    };
    if let Some(steps) = m["steps"].as_object() {
        for (jails, s) in steps {
            line(t, jails, s);
        }
    }
    line(t, "per jail", &m["per_jail"]);
    let _ = writeln!(
        t,
        "  per plugin (of {}, no jail): host_rss {} KiB, host_heap {} KiB",
        m["plugins"],
        cell(&m["per_plugin"]["host_rss"]),
        cell(&m["per_plugin"]["host_heap"]),
    );

    head(
        t,
        "plugin host: refill after a recycle (warm 1, max 1, recycle_calls 1) (ms)",
    );
    let r = &h["refill_ms"];
    row(t, "call return -> JailReady", &r["refill"]);
    row(t, "JailReady start_ms", &r["start_ms"]);
    for label in ["refill/session_cold", "start_ms/session_cold"] {
        ratio_row(t, label, &r["ratios"][label], "");
    }
}

fn size_name(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1 << 10 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}
