//! Shared-memory calls (issue 18, docs/protocol.md "Shared-memory calls"), side by side
//! in one run with ratios:
//!
//! - round trips of 16 B and 1 KiB echoes and of a 128-frame stereo float buffer through a
//!   gain (1 KiB of f32), via shared memory against the same plugin called in this
//!   process (the floor: a function call) and against the pipe path, unpinned, on one CPU
//!   and across two;
//! - throughput of 1 MiB and 64 MiB echoes, shared memory against the pipe;
//! - the CPU an idle session costs (the stub's on-CPU time from /proc/PID/schedstat);
//! - an audio-style host: a gain call every 2.67 ms (128 frames at 48 kHz) for a set time,
//!   counting the calls that took longer than the period (missed deadlines).

use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use plugjail::session::ShmOptions;
use serde_json::{Map, Value, json};

use super::BenchError;
use super::calls::affinity;
use super::launch::{self, Env, Live};
use super::stats::{self, Summary};

/// What to run, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub quick: bool,
    /// Seconds per contender of the audio-style run.
    pub audio_secs: f64,
    /// Seconds an idle session is watched.
    pub idle_secs: f64,
}

impl Plan {
    pub fn new(quick: bool, audio_secs: Option<f64>) -> Plan {
        Plan {
            quick,
            audio_secs: audio_secs.unwrap_or(if quick { 0.5 } else { 10.0 }),
            idle_secs: if quick { 1.0 } else { 10.0 },
        }
    }
}

/// An audio period: 128 frames at 48 kHz.
const PERIOD: Duration = Duration::from_nanos(2_666_667);
/// The spin budget of the sessions (both ends): enough to catch back-to-back calls.
const SPIN: Duration = Duration::from_micros(50);

/// 128 interleaved stereo frames of f32.
fn stereo_buffer() -> Vec<u8> {
    (0..256)
        .flat_map(|i| ((i as f32 * 0.01).sin()).to_le_bytes())
        .collect()
}

fn shm(spin: Duration, arena: usize) -> Option<ShmOptions> {
    Some(ShmOptions {
        spin,
        arena,
        scrub_inputs: false,
    })
}

/// A contender of the round trips.
enum Contender<'a> {
    InProcess(&'a mut InProcess),
    Session(&'static str, &'a mut Live),
}

impl Contender<'_> {
    fn name(&self) -> &'static str {
        match self {
            Contender::InProcess(_) => "in_process",
            Contender::Session(name, _) => name,
        }
    }

    fn call(&mut self, method: &str, input: &[u8]) -> Result<(), BenchError> {
        match self {
            Contender::InProcess(p) => p.call(method, input, input.len()),
            Contender::Session(_, live) => live.call(method, input, |out| out.len() == input.len()),
        }
    }
}

/// Runs the whole section; returns its JSON (`shm` in the report) and prints a table.
pub fn run(env: &Env, gain: &Path, out: &Path, plan: &Plan) -> Result<Value, BenchError> {
    let mut local = InProcess::load(gain)?;
    let mut via_shm = launch::start_session(env, &env.profile, gain, shm(SPIN, 1 << 20))?;
    let mut via_pipe = launch::start_session(env, &env.profile, gain, None)?;
    let round_trip = round_trips(&mut local, &mut via_shm, &mut via_pipe, plan)?;
    let idle = idle_cpu(&via_shm, &via_pipe, plan.idle_secs)?;
    via_shm.finish()?;
    via_pipe.finish()?;
    let throughput = throughput(env, gain, out, plan)?;
    let audio = audio(env, gain, out, &mut local, plan)?;
    let json = json!({
        "spin_us": u64::try_from(SPIN.as_micros()).unwrap_or(u64::MAX),
        "round_trip_us": round_trip,
        "throughput_mb_s": throughput,
        "idle_cpu": idle,
        "audio": audio,
    });
    println!("{}", table(&json));
    Ok(json)
}

const PAYLOADS: [(&str, &str); 3] = [("16", "echo"), ("1024", "echo"), ("stereo128", "gain")];
const PLACEMENTS: [&str; 3] = ["unpinned", "same_cpu", "cross_cpu"];

fn payload(name: &str) -> Vec<u8> {
    match name {
        "16" => vec![7u8; 16],
        "1024" => vec![7u8; 1024],
        _ => stereo_buffer(),
    }
}

fn round_trips(
    local: &mut InProcess,
    via_shm: &mut Live,
    via_pipe: &mut Live,
    plan: &Plan,
) -> Result<Value, BenchError> {
    let (rounds, n) = if plan.quick { (2, 200) } else { (5, 2000) };
    let allowed = affinity::get(0)?;
    let stubs: Vec<i32> = [&*via_shm, &*via_pipe]
        .iter()
        .filter_map(|l| l.stub_pid())
        .collect();
    let mut out = Map::new();
    for place in PLACEMENTS {
        let (host, server): (Vec<usize>, Vec<usize>) = match (place, allowed.as_slice()) {
            ("unpinned", _) => (allowed.clone(), allowed.clone()),
            ("same_cpu", [a, ..]) => (vec![*a], vec![*a]),
            ("cross_cpu", [a, b, ..]) => (vec![*a], vec![*b]),
            _ => continue,
        };
        affinity::set(0, &host)?;
        for &pid in &stubs {
            affinity::set_process(pid, &server)?;
        }
        let mut samples: Vec<(String, &str, Vec<f64>)> = Vec::new();
        for round in 0..=rounds {
            for (size, method) in PAYLOADS {
                let input = payload(size);
                let mut cs = [
                    Contender::InProcess(&mut *local),
                    Contender::Session("shm", &mut *via_shm),
                    Contender::Session("pipe", &mut *via_pipe),
                ];
                cs.rotate_left(round % 3);
                for c in cs.iter_mut() {
                    let mut times = Vec::with_capacity(n);
                    for _ in 0..n {
                        let t = Instant::now();
                        c.call(method, &input)?;
                        times.push(t.elapsed().as_nanos() as f64);
                    }
                    if round > 0 {
                        let name = c.name();
                        match samples.iter_mut().find(|s| s.0 == size && s.1 == name) {
                            Some(s) => s.2.extend(times),
                            None => samples.push((size.to_string(), name, times)),
                        }
                    }
                }
            }
        }
        let mut per_size = Map::new();
        for (size, _) in PAYLOADS {
            let get = |name: &str| {
                samples
                    .iter()
                    .find(|s| s.0 == size && s.1 == name)
                    .map(|s| s.2.as_slice())
                    .unwrap_or(&[])
            };
            let mut m = Map::new();
            for name in ["in_process", "shm", "pipe"] {
                m.insert(name.into(), latency(get(name)));
            }
            let (s, l, p) = (
                Summary::of(get("shm")),
                Summary::of(get("in_process")),
                Summary::of(get("pipe")),
            );
            let r = |a: Option<Summary>, b: Option<Summary>| {
                json!({
                    "median": stats::ratio(a.map(|x| x.median), b.map(|x| x.median)).map(stats::round),
                    "p99": stats::ratio(a.map(|x| x.p99), b.map(|x| x.p99)).map(stats::round),
                })
            };
            m.insert(
                "ratios".into(),
                json!({ "shm/in_process": r(s, l), "shm/pipe": r(s, p) }),
            );
            // The goal: p99 within 2x of an in-process call plus 5 µs.
            let goal = l.map(|l| stats::round((2.0 * l.p99 + 5000.0) / 1e3));
            m.insert("goal_p99_us".into(), json!(goal));
            per_size.insert(size.into(), Value::Object(m));
        }
        out.insert(place.into(), Value::Object(per_size));
    }
    affinity::set(0, &allowed)?;
    for &pid in &stubs {
        affinity::set_process(pid, &allowed)?;
    }
    Ok(Value::Object(out))
}

/// Summary in µs, with p99.9 and the maximum.
fn latency(ns: &[f64]) -> Value {
    let Some(s) = Summary::of(ns) else {
        return Value::Null;
    };
    let mut v = s.json(1e3);
    let mut sorted = ns.to_vec();
    sorted.sort_by(f64::total_cmp);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let p999 = sorted[((0.999 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    v["p999"] = json!(stats::round(p999 / 1e3));
    v["max"] = json!(stats::round(sorted[sorted.len() - 1] / 1e3));
    v
}

/// On-CPU nanoseconds of every thread of `pid` (/proc/PID/task/*/schedstat).
fn cpu_ns(pid: i32) -> Result<u64, BenchError> {
    let io = |source| BenchError::Io {
        what: "reading a stub's schedstat",
        source,
    };
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).map_err(io)? {
        let path = t.map_err(io)?.path().join("schedstat");
        let text = std::fs::read_to_string(path).map_err(io)?;
        total += text
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

fn idle_cpu(via_shm: &Live, via_pipe: &Live, secs: f64) -> Result<Value, BenchError> {
    let pids = [via_shm.stub_pid(), via_pipe.stub_pid()];
    let before = pids
        .iter()
        .map(|p| p.map(cpu_ns).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let wall = t.elapsed().as_secs_f64();
    let mut out = Map::new();
    for (i, name) in ["shm", "pipe"].iter().enumerate() {
        let per_s = match (pids[i], before[i]) {
            (Some(pid), Some(b)) => Some(stats::round(
                (cpu_ns(pid)?.saturating_sub(b)) as f64 / 1e6 / wall,
            )),
            _ => None,
        };
        out.insert((*name).into(), json!({ "cpu_ms_per_s": per_s }));
    }
    out.insert("seconds".into(), json!(stats::round(wall)));
    Ok(Value::Object(out))
}

fn throughput(env: &Env, gain: &Path, out: &Path, plan: &Plan) -> Result<Value, BenchError> {
    // 64 MiB frames need a larger max_message than the default profile's 16 MiB.
    let profile = out.join("shm-bench.yaml");
    let text = format!(
        "version: 1\nextends: {}\nlimits:\n  max_message: 80M\n",
        env.profile.display()
    );
    std::fs::write(&profile, text).map_err(|source| BenchError::Io {
        what: "writing the throughput profile",
        source,
    })?;
    let mut via_shm = launch::start_session(env, &profile, gain, shm(SPIN, 65 << 20))?;
    let mut via_pipe = launch::start_session(env, &profile, gain, None)?;
    let mut res = Map::new();
    for (label, size, n) in [
        ("1048576", 1usize << 20, if plan.quick { 4 } else { 40 }),
        ("67108864", 64 << 20, if plan.quick { 1 } else { 4 }),
    ] {
        let input: Vec<u8> = (0..size)
            .map(|i| u8::try_from(i % 253).unwrap_or(0))
            .collect();
        let mut m = Map::new();
        let mut rates = [0.0f64; 2];
        for (i, (name, live)) in [("shm", &mut via_shm), ("pipe", &mut via_pipe)]
            .into_iter()
            .enumerate()
        {
            live.call("echo", &input, |o| o.len() == size)?; // warm-up
            let t = Instant::now();
            for _ in 0..n {
                live.call("echo", &input, |o| o.len() == size)?;
            }
            rates[i] = (n * size) as f64 / t.elapsed().as_secs_f64() / 1e6;
            m.insert(name.into(), json!(stats::round(rates[i])));
        }
        m.insert(
            "ratios".into(),
            json!({ "shm/pipe": stats::ratio(Some(rates[0]), Some(rates[1])).map(stats::round) }),
        );
        res.insert(label.into(), Value::Object(m));
    }
    via_shm.finish()?;
    via_pipe.finish()?;
    Ok(Value::Object(res))
}

/// One audio-style run: a gain call every period for `secs`.
fn audio_run(
    secs: f64,
    mut call: impl FnMut(&[u8]) -> Result<(), BenchError>,
) -> Result<Value, BenchError> {
    let input = stereo_buffer();
    let start = Instant::now();
    let total = Duration::from_secs_f64(secs);
    let mut times = Vec::new();
    let (mut missed, mut over_1ms) = (0u64, 0u64);
    let mut k = 0u32;
    while start.elapsed() < total {
        let due = start + PERIOD * k;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let t = Instant::now();
        call(&input)?;
        let took = t.elapsed();
        if took > PERIOD {
            missed += 1;
        }
        if took > Duration::from_millis(1) {
            over_1ms += 1;
        }
        times.push(took.as_nanos() as f64);
        k += 1;
    }
    let mut v = latency(&times);
    v["calls"] = json!(times.len());
    v["missed_deadlines"] = json!(missed);
    v["over_1ms"] = json!(over_1ms);
    Ok(v)
}

fn audio(
    env: &Env,
    gain: &Path,
    out_dir: &Path,
    local: &mut InProcess,
    plan: &Plan,
) -> Result<Value, BenchError> {
    // A stub that spins through the whole period uses most of a CPU: measured also with
    // headroom (`cpu: 2.0`), to tell the default profile's `cpu: 1.0` (CFS bandwidth
    // control) apart from other causes of a missed deadline.
    let rt_profile = out_dir.join("shm-rt.yaml");
    let text = format!(
        "version: 1\nextends: {}\nlimits:\n  cpu: 2.0\n",
        env.profile.display()
    );
    std::fs::write(&rt_profile, text).map_err(|source| BenchError::Io {
        what: "writing the real-time profile",
        source,
    })?;
    let mut out = Map::new();
    out.insert("seconds_each".into(), json!(plan.audio_secs));
    out.insert(
        "period_us".into(),
        json!(stats::round(PERIOD.as_nanos() as f64 / 1e3)),
    );
    let v = audio_run(plan.audio_secs, |input| {
        local.call("gain", input, input.len())
    })?;
    out.insert("in_process".into(), v);
    // The real-time setting spins through the whole period: the stub never sleeps.
    let spin_period = shm(PERIOD + Duration::from_micros(500), 1 << 20);
    for (name, profile, opts) in [
        ("shm", &env.profile, shm(SPIN, 1 << 20)),
        ("shm_spin_period", &env.profile, spin_period),
        ("shm_spin_period_cpu2", &rt_profile, spin_period),
        ("pipe", &env.profile, None),
    ] {
        let mut live = launch::start_session(env, profile, gain, opts)?;
        let pid = live.stub_pid();
        let before = pid.map(cpu_ns).transpose()?;
        let t = Instant::now();
        let mut v = audio_run(plan.audio_secs, |input| {
            live.call("gain", input, |o| o.len() == input.len())
        })?;
        let wall = t.elapsed().as_secs_f64();
        if let (Some(pid), Some(b)) = (pid, before) {
            let cpu = cpu_ns(pid)?.saturating_sub(b) as f64 / 1e6 / wall;
            v["stub_cpu_ms_per_s"] = json!(stats::round(cpu));
        }
        live.finish()?;
        out.insert(name.into(), v);
    }
    Ok(Value::Object(out))
}

fn table(j: &Value) -> String {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    let mut s = String::from("\nshared-memory calls (µs; ratios of medians / p99s)\n");
    for place in PLACEMENTS {
        for (size, _) in PAYLOADS {
            let r = &j["round_trip_us"][place][size];
            if r.is_null() {
                continue;
            }
            s += &format!(
                "  {place:9} {size:9}  in_process {:>7}/{:>7}  shm {:>7}/{:>7}  pipe {:>8}/{:>8}  shm/in_process {}/{}  shm/pipe {}/{}  goal p99 {}\n",
                f(&r["in_process"]["median"]),
                f(&r["in_process"]["p99"]),
                f(&r["shm"]["median"]),
                f(&r["shm"]["p99"]),
                f(&r["pipe"]["median"]),
                f(&r["pipe"]["p99"]),
                f(&r["ratios"]["shm/in_process"]["median"]),
                f(&r["ratios"]["shm/in_process"]["p99"]),
                f(&r["ratios"]["shm/pipe"]["median"]),
                f(&r["ratios"]["shm/pipe"]["p99"]),
                f(&r["goal_p99_us"]),
            );
        }
    }
    for size in ["1048576", "67108864"] {
        let t = &j["throughput_mb_s"][size];
        s += &format!(
            "  throughput {size:>9} B: shm {} MB/s, pipe {} MB/s, shm/pipe {}\n",
            f(&t["shm"]),
            f(&t["pipe"]),
            f(&t["ratios"]["shm/pipe"])
        );
    }
    s += &format!(
        "  idle {} s: stub CPU ms/s shm {}, pipe {}\n",
        f(&j["idle_cpu"]["seconds"]),
        f(&j["idle_cpu"]["shm"]["cpu_ms_per_s"]),
        f(&j["idle_cpu"]["pipe"]["cpu_ms_per_s"])
    );
    let a = &j["audio"];
    for name in [
        "in_process",
        "shm",
        "shm_spin_period",
        "shm_spin_period_cpu2",
        "pipe",
    ] {
        let r = &a[name];
        s += &format!(
            "  audio {name:20} {} calls: median {} p99 {} p99.9 {} max {}  missed {} (>1ms {})  stub CPU ms/s {}\n",
            r["calls"],
            f(&r["median"]),
            f(&r["p99"]),
            f(&r["p999"]),
            f(&r["max"]),
            r["missed_deadlines"],
            r["over_1ms"],
            f(&r["stub_cpu_ms_per_s"]),
        );
    }
    s
}

/// The plugin loaded into this process: the floor of a call (a function call and the
/// copy of the output `host->write` makes).
pub struct InProcess {
    desc: &'static PluginDesc,
    methods: Vec<(String, *const c_char)>,
    out: Vec<u8>,
    path: PathBuf,
}

#[repr(C)]
struct HostTable {
    struct_size: u32,
    abi_version: u32,
    max_output: u64,
    log: unsafe extern "C" fn(u32, *const c_char, usize),
    write: unsafe extern "C" fn(*mut c_void, *const c_void, usize) -> c_int,
    fail: unsafe extern "C" fn(*mut c_void, *const c_char, usize),
}

#[repr(C)]
struct PluginDesc {
    struct_size: u32,
    abi_version: u32,
    name: *const c_char,
    version: *const c_char,
    methods: *const *const c_char,
    init: Option<unsafe extern "C" fn(*const HostTable) -> c_int>,
    call: Option<unsafe extern "C" fn(*const c_char, *const u8, usize, *mut c_void) -> c_int>,
    shutdown: Option<unsafe extern "C" fn()>,
}

unsafe extern "C" fn host_log(_: u32, _: *const c_char, _: usize) {}

unsafe extern "C" fn host_write(out: *mut c_void, data: *const c_void, len: usize) -> c_int {
    // SAFETY: `out` is the Vec InProcess::call passed for this call; `data` holds `len`
    // bytes (the plugin's promise; the plugin is our own benchmark plugin).
    let out = unsafe { &mut *out.cast::<Vec<u8>>() };
    // SAFETY: as above.
    let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) };
    out.extend_from_slice(bytes);
    0
}

unsafe extern "C" fn host_fail(_: *mut c_void, _: *const c_char, _: usize) {}

// Two u32s, a u64 and three pointers: 40 bytes.
#[allow(clippy::cast_possible_truncation)]
static HOST: HostTable = HostTable {
    struct_size: std::mem::size_of::<HostTable>() as u32,
    abi_version: 1,
    max_output: 1 << 20,
    log: host_log,
    write: host_write,
    fail: host_fail,
};

impl InProcess {
    fn load(path: &Path) -> Result<InProcess, BenchError> {
        let wrong = |what| BenchError::Wrong {
            runner: "in_process",
            what,
        };
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| wrong("plugin path"))?;
        // SAFETY: a NUL-terminated path; the handle is never closed (the plugin lives as
        // long as the bench).
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            return Err(wrong("dlopen of the gain plugin"));
        }
        // SAFETY: a valid handle and a NUL-terminated symbol name.
        let sym = unsafe { libc::dlsym(handle, c"plugjail_plugin_v1".as_ptr()) };
        if sym.is_null() {
            return Err(wrong("plugjail_plugin_v1"));
        }
        // SAFETY: include/plugjail.h declares the symbol as `const struct plugjail_plugin
        // *(void)`; the plugin is the bench's own.
        let entry: unsafe extern "C" fn() -> *const PluginDesc =
            unsafe { std::mem::transmute(sym) };
        // SAFETY: the ABI's entry point.
        let desc = unsafe { entry() };
        // SAFETY: NULL or a description in static storage (the ABI).
        let desc = unsafe { desc.as_ref() }.ok_or(wrong("a NULL description"))?;
        let mut methods = Vec::new();
        for i in 0.. {
            // SAFETY: a NULL-terminated array of names in static storage (the ABI); the
            // loop stops at the NULL, so entry i is within it.
            let slot = unsafe { desc.methods.add(i) };
            // SAFETY: as above.
            let p = unsafe { *slot };
            if p.is_null() {
                break;
            }
            // SAFETY: a NUL-terminated name (the ABI).
            let name = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
            methods.push((name, p));
        }
        if let Some(init) = desc.init {
            // SAFETY: the ABI's init with a host table that lives for the process.
            if unsafe { init(&HOST) } != 0 {
                return Err(wrong("init"));
            }
        }
        Ok(InProcess {
            desc,
            methods,
            out: Vec::with_capacity(1 << 20),
            path: path.to_path_buf(),
        })
    }

    fn call(&mut self, method: &str, input: &[u8], want: usize) -> Result<(), BenchError> {
        let wrong = |what| BenchError::Wrong {
            runner: "in_process",
            what,
        };
        let m = self
            .methods
            .iter()
            .find(|(n, _)| n == method)
            .map(|m| m.1)
            .ok_or(wrong("method"))?;
        let call = self.desc.call.ok_or(wrong("call"))?;
        self.out.clear();
        let out: *mut Vec<u8> = &mut self.out;
        // SAFETY: the ABI's call: the plugin's own method pointer, `input` for the call,
        // and the output Vec that host_write appends to, alive for the call.
        let status = unsafe { call(m, input.as_ptr(), input.len(), out.cast()) };
        if status != 0 || self.out.len() != want {
            return Err(wrong("call result"));
        }
        let _ = &self.path;
        Ok(())
    }
}
