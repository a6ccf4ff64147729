//! The plugin host (`plugjail::host::Host`, issue 11), side by side with its floors:
//!
//! 1. a call through a warm pool against the unjailed cold floor (`floor call`: a fresh
//!    process that dlopens the plugin and calls it once) and a cold plugjail session;
//! 2. steady-state round trips through `Host` and through `plugjail host` (the wire front
//!    end, `super::wire`) against the raw pipe and bare sessions, with 1, 4 and 16
//!    concurrent callers;
//! 3. what an idle warm jail and a configured plugin cost in memory: the host's own
//!    process (this one), the `plugjail serve` processes, and the jails;
//! 4. how long a pool takes to refill after a recycle (measured in the loop of 1).
//!
//! The host runs in this process: its jails' `plugjail serve` processes are our children.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Barrier;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use plugjail::host::{Event, EventKind, Host, HostConfig, HostOptions, PluginConfig, State};

use super::BenchError;
use super::calls::{PLACEMENTS, Placement, affinity};
use super::cli::{CliEnv, Contender, Mode};
use super::cold;
use super::launch::{self, Echo, Env, Live, Runner};
use super::wire::Wire;

/// Concurrent callers of the round-trip section (`--quick`: 1 and 4). The pool's `max`
/// (and `warm`) is the number of callers, as the raw pipe gets one server per caller.
const CALLERS: [usize; 3] = [1, 4, 16];
const QUICK_CALLERS: [usize; 2] = [1, 4];
/// The round trip's payload (an `echo` call).
pub const PAYLOAD: usize = 16;

const GREET_IN: &[u8] = b"bench";
const GREET_OUT: &[u8] = b"hello, bench";
/// How long a pool may take to have its jails ready (16 at once on 2 CPUs, debug builds).
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// The JSON sections (`host.…`), also the prefixes of their `unavailable` keys.
pub const WARM_SECTION: &str = "host.warm_call_us";
pub const SECTIONS: [&str; 5] = [
    WARM_SECTION,
    "host.round_trip_us",
    "host.round_trip_calls_per_s",
    "host.memory_kib",
    "host.refill_ms",
];

/// Contenders of the warm-call section, in their JSON order.
pub const WARM: [&str; 4] = [
    "floor_cold",
    "session_cold",
    "warm_pool",
    "warm_pool_recycled",
];
/// Contenders of the round-trip section, in their JSON order.
pub const ROUND_TRIP: [&str; 4] = ["raw_pipe", "session", "host", "wire"];
/// The `unavailable` key of the wire front end: the contender's name, as for a session
/// runner, since its figures lie under every placement and number of callers.
pub const WIRE_KEY: &str = "wire";

/// Everything measured, raw.
#[derive(Debug, Default)]
pub struct Samples {
    /// Section 1: ns per call, per [`WARM`] contender.
    pub warm: BTreeMap<&'static str, Vec<f64>>,
    /// Section 2: ns per call, per (placement, callers, [`ROUND_TRIP`] contender).
    pub round_trip: BTreeMap<(Placement, usize, &'static str), Vec<f64>>,
    /// Section 2: calls per second of each batch (all callers together).
    pub rate: BTreeMap<(Placement, usize, &'static str), Vec<f64>>,
    /// Section 2: (callers' CPU, servers' CPU) per placement offered.
    pub cpus: BTreeMap<Placement, (usize, usize)>,
    /// Section 2: the numbers of callers measured.
    pub callers: Vec<usize>,
    /// What could not be measured here, and why (`unavailable` keys).
    pub unavailable: Vec<(String, String)>,
    /// Section 3.
    pub memory: Memory,
    /// Section 4: ns from a recycled call's return until its replacement's JailReady.
    pub refill: Vec<f64>,
    /// Section 4: those JailReady events' `start_ms`, in ns.
    pub start: Vec<f64>,
}

/// Section 3: the figures with 0, 1, 4 and 8 idle warm jails, and with idle plugins.
#[derive(Debug, Default)]
pub struct Memory {
    /// Plugins configured (pool.warm 0) for the per-plugin figure.
    pub plugins: usize,
    /// This process before any host: resident set and the allocator's bytes in use.
    pub base: Usage,
    /// With the plugins configured, before any jail.
    pub with_plugins: Usage,
    /// One per number of idle warm jails (the first with none: the plugins only).
    pub steps: Vec<Step>,
}

/// This process's resident set (VmRSS) and heap in use (mallinfo2: arena bytes in use plus
/// mmapped blocks), bytes.
#[derive(Debug, Default, Clone, Copy)]
pub struct Usage {
    pub rss: u64,
    pub heap: u64,
}

/// What `jails` idle warm jails cost, bytes: this process (the host), the `plugjail serve`
/// processes, and their jails (init and stub), each as RSS and PSS (shared pages divided
/// among the processes that map them).
#[derive(Debug, Default, Clone, Copy)]
pub struct Step {
    pub jails: usize,
    pub host: Usage,
    pub serve_rss: u64,
    pub serve_pss: u64,
    pub jail_rss: u64,
    pub jail_pss: u64,
}

/// How much to measure.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub quick: bool,
    /// Section 1 (and 4): untimed rounds, then timed ones.
    pub warmup: usize,
    pub reps: usize,
    /// Section 2: timed rounds (after one warm-up round).
    pub rounds: usize,
}

impl Plan {
    pub fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                quick,
                warmup: 1,
                reps: 3,
                rounds: 1,
            }
        } else {
            Plan {
                quick,
                warmup: 3,
                reps: 100,
                rounds: 40,
            }
        }
    }

    /// Calls per caller per batch: about the same number of calls per batch for every
    /// number of callers, and enough per caller that their starts overlap. Short batches
    /// and many rounds: a noisy neighbour on a shared machine then slows a few batches of
    /// every contender instead of all of one.
    fn per_caller(self, callers: usize) -> usize {
        if self.quick {
            (40 / callers).max(5)
        } else {
            (120 / callers).max(20)
        }
    }

    /// Section 2's numbers of callers: each needs as many sessions and jails again.
    fn callers(self) -> &'static [usize] {
        if self.quick { &QUICK_CALLERS } else { &CALLERS }
    }

    /// Section 3's numbers of idle warm jails, and of idle plugins.
    fn memory_steps(self) -> (&'static [usize], usize) {
        if self.quick {
            (&[1, 2], 2)
        } else {
            (&[1, 4, 8], 8)
        }
    }
}

/// Runs the four measurements. `cli` is the CLI bench's environment, for the cold floor
/// (`floor call`); None leaves that contender out.
pub fn run(
    env: &Env,
    floor: &Path,
    cli: Option<&CliEnv>,
    plan: Plan,
) -> Result<Samples, BenchError> {
    let mut samples = Samples {
        memory: memory(env, plan)?,
        ..Samples::default()
    };
    warm_and_refill(env, cli, plan, &mut samples)?;
    round_trips(env, floor, plan, &mut samples)?;
    Ok(samples)
}

fn plugin(env: &Env, id: &str, warm: usize, max: usize, recycle: Option<u64>) -> PluginConfig {
    let mut cfg = PluginConfig::new(id, &env.plugin, &env.profile);
    cfg.pool.warm = warm;
    cfg.pool.max = max;
    cfg.pool.recycle_calls = recycle;
    cfg
}

fn start(env: &Env, plugins: Vec<PluginConfig>) -> Result<Host, BenchError> {
    let options = HostOptions {
        plugjail: Some(env.plugjail.clone()),
    };
    Host::start_with(HostConfig { plugins }, options).map_err(|source| BenchError::Host { source })
}

/// Waits until plugin `id` has `n` idle jails.
fn wait_idle(host: &Host, id: &str, n: usize) -> Result<(), BenchError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let status = host.status().into_iter().find(|s| s.id == id);
        let Some(status) = status else {
            return Err(not_ready(id, "no such plugin"));
        };
        if status.idle >= n {
            return Ok(());
        }
        if matches!(
            status.state,
            State::Failed | State::Quarantined | State::Terminated
        ) {
            return Err(not_ready(id, status.state.name()));
        }
        if Instant::now() >= deadline {
            return Err(not_ready(id, "its jails did not start in time"));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn not_ready(id: &str, why: &str) -> BenchError {
    BenchError::Cli {
        who: format!("host plugin {id}"),
        what: format!("pool not ready: {why}"),
    }
}

fn host_call(host: &Host, id: &str, method: &str, input: &[u8]) -> Result<Vec<u8>, BenchError> {
    host.call(id, method, input)
        .map_err(|source| BenchError::HostCall { source })
}

// ---------------------------------------------------------------------------------------
// 1 and 4: a warm pool's call against the cold floor; refilling after a recycle.

/// Each round runs every contender once, in an order rotated round by round:
/// - `floor_cold`: `floor call hello.so greet bench`, spawn to the result's first byte;
/// - `session_cold`: a plugjail session's cold start (spawn, HELLO, the call);
/// - `warm_pool`: `Host::call` on a pool with warm 1, max 1 (the jail served before);
/// - `warm_pool_recycled`: the same with `recycle_calls: 1`: every call meets a jail that
///   has never served, and the round then waits for the replacement's JailReady (the
///   refill, section 4) and the retired jail's JailEnded, so nothing else overlaps them.
fn warm_and_refill(
    env: &Env,
    cli: Option<&CliEnv>,
    plan: Plan,
    samples: &mut Samples,
) -> Result<(), BenchError> {
    let host = start(
        env,
        vec![
            plugin(env, "warm", 1, 1, None),
            plugin(env, "fresh", 1, 1, Some(1)),
        ],
    )?;
    let events = host.events();
    wait_idle(&host, "warm", 1)?;
    wait_idle(&host, "fresh", 1)?;
    // The first jails' events (JailReady is sent before a jail joins the pool).
    while events.try_recv().is_ok() {}
    let contenders: Vec<&'static str> = WARM
        .into_iter()
        .filter(|c| *c != "floor_cold" || cli.is_some())
        .collect();
    let k = contenders.len();
    for round in 0..plan.warmup + plan.reps {
        let timed = round >= plan.warmup;
        for i in 0..k {
            let name = contenders[(round + i) % k];
            let ns = match name {
                "floor_cold" => match cli {
                    Some(cli) => cli.once(Mode::Root, Contender::Host)?,
                    None => continue,
                },
                "session_cold" => cold::once(env, Runner::Plugjail)?,
                "warm_pool" => {
                    let t0 = Instant::now();
                    let out = host_call(&host, "warm", "greet", GREET_IN)?;
                    let ns = t0.elapsed().as_nanos() as f64;
                    check(&out, GREET_OUT)?;
                    ns
                }
                _ => {
                    let t0 = Instant::now();
                    let out = host_call(&host, "fresh", "greet", GREET_IN)?;
                    let returned = Instant::now();
                    let ns = (returned - t0).as_nanos() as f64;
                    check(&out, GREET_OUT)?;
                    let (refill, start_ms) = wait_refill(&events, "fresh", returned)?;
                    if timed {
                        samples.refill.push(refill.as_nanos() as f64);
                        samples.start.push(start_ms as f64 * 1e6);
                    }
                    ns
                }
            };
            if timed {
                samples.warm.entry(name).or_default().push(ns);
            }
        }
    }
    Ok(())
}

fn check(out: &[u8], want: &[u8]) -> Result<(), BenchError> {
    if out == want {
        Ok(())
    } else {
        Err(BenchError::Wrong {
            runner: "host",
            what: "call result",
        })
    }
}

/// Waits for plugin `id`'s next JailReady and the JailEnded of the jail it replaces;
/// returns the time from `since` until the JailReady arrived, and its `start_ms`.
fn wait_refill(
    events: &Receiver<Event>,
    id: &str,
    since: Instant,
) -> Result<(Duration, u64), BenchError> {
    let deadline = since + READY_TIMEOUT;
    let mut ready = None;
    let mut ended = false;
    while ready.is_none() || !ended {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match events.recv_timeout(left) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => return Err(not_ready(id, "no refill in time")),
            Err(RecvTimeoutError::Disconnected) => return Err(not_ready(id, "host gone")),
        };
        if event.plugin != id {
            continue;
        }
        match event.kind {
            EventKind::JailReady { start_ms, .. } => ready = Some((since.elapsed(), start_ms)),
            EventKind::JailEnded {
                reason: Some("recycle"),
                ..
            } => ended = true,
            EventKind::JailEnded { outcome, .. } => {
                return Err(not_ready(id, &format!("a jail ended: {outcome}")));
            }
            _ => {}
        }
    }
    ready.ok_or_else(|| not_ready(id, "no refill"))
}

// ---------------------------------------------------------------------------------------
// 2: steady-state round trips with concurrent callers.

/// For each number of callers N: N raw-pipe servers (`floor echo 16`), N plugjail
/// sessions, a host whose pool has warm = max = N, and `plugjail host` with the same pool,
/// all started and ready before any timing. Then, in each placement the machine offers
/// (as the warm-call section: callers on one CPU and servers on the same one, or on
/// another), rounds of one batch per contender in rotated order; a batch is N threads,
/// each with its own server (its own echo process, its own session; the host's callers
/// share the host, the wire's its one connection), each making [`Plan::per_caller`] 16 B
/// `echo` calls after a common start. `plugjail host` itself runs on the callers' CPU
/// (it is the host side, as `Host` runs on its callers' threads), its jails on the
/// servers'.
fn round_trips(
    env: &Env,
    floor: &Path,
    plan: Plan,
    samples: &mut Samples,
) -> Result<(), BenchError> {
    let allowed = affinity::get(0)?;
    for &callers in plan.callers() {
        samples.callers.push(callers);
        let mut echoes = (0..callers)
            .map(|_| Echo::start(floor, PAYLOAD, env.cap))
            .collect::<Result<Vec<_>, _>>()?;
        let mut sessions = (0..callers)
            .map(|_| launch::start(env, Runner::Plugjail))
            .collect::<Result<Vec<_>, _>>()?;
        let id = format!("pool-{callers}");
        let host = start(env, vec![plugin(env, &id, callers, callers, None)])?;
        wait_idle(&host, &id, callers)?;
        let wire = if samples.unavailable.iter().any(|(k, _)| k == WIRE_KEY) {
            None
        } else {
            let config = env
                .plugin
                .with_file_name(format!("host-wire-{callers}.yaml"));
            match Wire::start(
                &env.plugjail,
                &config,
                &id,
                &env.plugin,
                &env.profile,
                callers,
            ) {
                Ok(w) => Some(w),
                Err(e) => {
                    samples.unavailable.push((WIRE_KEY.into(), e.to_string()));
                    None
                }
            }
        };
        let wire_pid = wire.as_ref().map(Wire::pid);
        for placement in PLACEMENTS {
            let (mine, theirs) = match (placement, allowed.as_slice()) {
                (Placement::SameCpu, [a, ..]) => (*a, *a),
                (Placement::CrossCpu, [a, b, ..]) => (*a, *b),
                _ => continue,
            };
            samples.cpus.insert(placement, (mine, theirs));
            // Caller threads inherit this thread's affinity.
            affinity::set(0, &[mine])?;
            let mut servers: Vec<i32> = echoes.iter().map(Echo::pid).collect();
            let mut serving = serves(env, std::process::id() as i32);
            if let Some(pid) = wire_pid {
                serving.retain(|&p| p != pid);
                serving.extend(serves(env, pid));
                affinity::set_process(pid, &[mine])?;
            }
            servers.extend(serving.into_iter().filter_map(launch::deepest));
            for pid in servers {
                affinity::set_process(pid, &[theirs])?;
            }
            let mut rig = Rig {
                echoes: &mut echoes,
                sessions: &mut sessions,
                host: &host,
                wire: wire.as_ref(),
                id: &id,
            };
            for round in 0..=plan.rounds {
                let msg: Vec<u8> = (0..PAYLOAD)
                    .map(|i| u8::try_from((i * 7 + round) % 251).unwrap_or(0))
                    .collect();
                let contenders: Vec<&'static str> = ROUND_TRIP
                    .into_iter()
                    .filter(|c| *c != "wire" || rig.wire.is_some())
                    .collect();
                for i in 0..contenders.len() {
                    let name = contenders[(round + i) % contenders.len()];
                    let (times, rate) = rig.batch(name, plan.per_caller(callers), &msg)?;
                    if round == 0 {
                        continue; // warm-up
                    }
                    let key = (placement, callers, name);
                    samples.round_trip.entry(key).or_default().extend(times);
                    samples.rate.entry(key).or_default().push(rate);
                }
            }
        }
        affinity::set(0, &allowed)?;
        if let Some(w) = wire {
            w.finish()?;
        }
        drop(host);
        for live in sessions {
            live.finish()?;
        }
        for e in echoes {
            e.finish()?;
        }
    }
    Ok(())
}

/// The servers of one number of callers.
struct Rig<'a> {
    echoes: &'a mut [Echo],
    sessions: &'a mut [Live],
    host: &'a Host,
    wire: Option<&'a Wire>,
    id: &'a str,
}

/// One caller's calls: each call's round trip (ns), and when the first began and the last
/// ended.
type CallerTimes = (Vec<f64>, Instant, Instant);

impl Rig<'_> {
    /// One batch of contender `name`: every caller makes `per` calls of `msg`. Returns
    /// every call's round trip (ns) and the batch's calls per second.
    fn batch(&mut self, name: &str, per: usize, msg: &[u8]) -> Result<(Vec<f64>, f64), BenchError> {
        let callers = self.echoes.len();
        let barrier = Barrier::new(callers);
        let barrier = &barrier;
        let results: Vec<Result<CallerTimes, BenchError>> = std::thread::scope(|s| {
            let handles: Vec<_> = match name {
                "raw_pipe" => self
                    .echoes
                    .iter_mut()
                    .map(|e| s.spawn(move || caller(barrier, per, msg, |m| e.call(m))))
                    .collect(),
                "session" => self
                    .sessions
                    .iter_mut()
                    .map(|l| {
                        s.spawn(move || {
                            caller(barrier, per, msg, |m| l.call("echo", m, |out| out == m))
                        })
                    })
                    .collect(),
                "wire" => {
                    let (wire, id) = (self.wire, self.id);
                    (0..callers)
                        .map(|_| {
                            s.spawn(move || {
                                caller(barrier, per, msg, |m| match wire {
                                    Some(w) => check(&w.call(id, "echo", m)?, m),
                                    None => Err(not_ready(id, "no plugjail host")),
                                })
                            })
                        })
                        .collect()
                }
                _ => {
                    let (host, id) = (self.host, self.id);
                    (0..callers)
                        .map(|_| {
                            s.spawn(move || {
                                caller(barrier, per, msg, |m| {
                                    check(&host_call(host, id, "echo", m)?, m)
                                })
                            })
                        })
                        .collect()
                }
            };
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut times = Vec::with_capacity(per * callers);
        let mut first: Option<Instant> = None;
        let mut last: Option<Instant> = None;
        for r in results {
            let (t, a, b) = r?;
            times.extend(t);
            first = Some(first.map_or(a, |f| f.min(a)));
            last = Some(last.map_or(b, |l| l.max(b)));
        }
        let secs = match (first, last) {
            (Some(a), Some(b)) => (b - a).as_secs_f64(),
            _ => 0.0,
        };
        let rate = if secs > 0.0 {
            times.len() as f64 / secs
        } else {
            0.0
        };
        Ok((times, rate))
    }
}

fn caller(
    barrier: &Barrier,
    per: usize,
    msg: &[u8],
    mut call: impl FnMut(&[u8]) -> Result<(), BenchError>,
) -> Result<CallerTimes, BenchError> {
    let mut times = Vec::with_capacity(per);
    barrier.wait();
    let first = Instant::now();
    for _ in 0..per {
        let t0 = Instant::now();
        call(msg)?;
        times.push(t0.elapsed().as_nanos() as f64);
    }
    Ok((times, first, Instant::now()))
}

// ---------------------------------------------------------------------------------------
// 3: memory per idle warm jail and per plugin.

/// Hosts are added, never dropped, so that memory a dropped host freed cannot hide what
/// the next one takes: first one host with [`Plan::memory_steps`]'s number of plugins
/// configured with no warm jail, then hosts of one plugin each whose warm jails bring the
/// total to each step's number.
fn memory(env: &Env, plan: Plan) -> Result<Memory, BenchError> {
    let (targets, plugins) = plan.memory_steps();
    let base = usage();
    let mut hosts = vec![start(
        env,
        (0..plugins)
            .map(|i| plugin(env, &format!("idle-{i}"), 0, 1, None))
            .collect(),
    )?];
    settle();
    let with_plugins = usage();
    let mut steps = vec![step(env, 0)];
    let mut have = 0;
    for &jails in targets {
        let id = format!("mem-{jails}");
        let add = jails - have;
        let host = start(env, vec![plugin(env, &id, add, add, None)])?;
        wait_idle(&host, &id, add)?;
        hosts.push(host);
        have = jails;
        settle();
        steps.push(step(env, jails));
    }
    drop(hosts);
    Ok(Memory {
        plugins,
        base,
        with_plugins,
        steps,
    })
}

/// Lets the threads that started jails exit and the new jails go idle.
fn settle() {
    std::thread::sleep(Duration::from_millis(50));
}

fn usage() -> Usage {
    // SAFETY: mallinfo2 has no preconditions; it walks the allocator's arenas under their
    // locks and returns a plain struct.
    let mi = unsafe { libc::mallinfo2() };
    Usage {
        rss: status_kib(std::process::id() as i32, "VmRSS:").unwrap_or(0) * 1024,
        heap: (mi.uordblks + mi.hblkhd) as u64,
    }
}

fn step(env: &Env, jails: usize) -> Step {
    let mut s = Step {
        jails,
        host: usage(),
        ..Step::default()
    };
    for serve in serves(env, std::process::id() as i32) {
        s.serve_rss += status_kib(serve, "VmRSS:").unwrap_or(0) * 1024;
        s.serve_pss += pss_kib(serve).unwrap_or(0) * 1024;
        for pid in launch::descendants(serve) {
            s.jail_rss += status_kib(pid, "VmRSS:").unwrap_or(0) * 1024;
            s.jail_pss += pss_kib(pid).unwrap_or(0) * 1024;
        }
    }
    s
}

/// The `plugjail` children of `pid`: of this process, every session's and every host
/// jail's `plugjail serve` (and `plugjail host`, if one runs); of `plugjail host`, its
/// jails' `plugjail serve`.
fn serves(env: &Env, pid: i32) -> Vec<i32> {
    launch::children(pid)
        .into_iter()
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == env.plugjail)
        })
        .collect()
}

fn status_kib(pid: i32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    field_kib(&status, key)
}

fn pss_kib(pid: i32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    field_kib(&rollup, "Pss:")
}

/// `KEY   123 kB` → 123.
fn field_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
