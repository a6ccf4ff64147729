//! Warm calls: round trips of `echo` with each payload size through live sessions,
//! against the raw pipe ping-pong; and the throughput of back-to-back 1 MiB calls.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use super::BenchError;
use super::launch::{Echo, Live};

pub const SIZES: [usize; 4] = [16, 1 << 10, 64 << 10, 1 << 20];

/// Calls per batch for a payload size: about the same time per batch for every size.
fn batch_len(size: usize, quick: bool) -> usize {
    let full = match size {
        s if s <= 1024 => 400,
        s if s <= 64 << 10 => 100,
        _ => 20,
    };
    if quick { (full / 10).max(3) } else { full }
}

/// Where the two ends of a call run. On a virtual machine a wake-up across CPUs costs tens
/// of microseconds (the idle vCPU must be woken through the hypervisor) while one on the
/// same CPU costs about one, and the scheduler picks either, and sticks to it, by chance.
/// Unpinned figures are therefore bimodal; pinning makes them repeatable, and every
/// contender is measured in both placements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Placement {
    /// Host and server on one CPU: every wake-up is cheap; shows CPU overhead plainly.
    SameCpu,
    /// Host on one CPU, server on another: each call pays two cross-CPU wake-ups.
    CrossCpu,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::SameCpu => "same_cpu",
            Placement::CrossCpu => "cross_cpu",
        }
    }
}

pub const PLACEMENTS: [Placement; 2] = [Placement::SameCpu, Placement::CrossCpu];

type Key = (Placement, usize, &'static str);

/// Per (placement, size, contender): each call's round trip (ns) and each batch's
/// throughput (bytes of input per second).
#[derive(Debug, Default)]
pub struct Samples {
    pub calls: BTreeMap<Key, Vec<f64>>,
    pub batches: BTreeMap<Key, Vec<f64>>,
    /// The CPUs used (host, server) per placement; a placement this machine cannot offer
    /// (one CPU) is missing.
    pub cpus: BTreeMap<Placement, (usize, usize)>,
}

enum Contender<'a> {
    Raw(&'a mut Echo),
    Session(&'a mut Live),
}

impl Contender<'_> {
    fn name(&self) -> &'static str {
        match self {
            Contender::Raw(_) => "raw_pipe",
            Contender::Session(live) => live.runner().name(),
        }
    }

    fn call(&mut self, msg: &[u8]) -> Result<(), BenchError> {
        match self {
            Contender::Raw(e) => e.call(msg),
            Contender::Session(live) => live.call("echo", msg, |out| out.len() == msg.len()),
        }
    }
}

/// For each placement the machine offers: pins the host and every server, then runs
/// `rounds` rounds (after one warm-up round); in each, every size, and for each size one
/// batch per contender in rotated order. The host's affinity is restored at the end.
pub fn run(
    floor: &Path,
    cap: u32,
    sessions: &mut [Live],
    rounds: usize,
    quick: bool,
) -> Result<Samples, BenchError> {
    let mut samples = Samples::default();
    let mut echoes = SIZES
        .iter()
        .map(|&s| Echo::start(floor, s, cap))
        .collect::<Result<Vec<_>, _>>()?;
    let allowed = affinity::get(0)?;
    for placement in PLACEMENTS {
        let (host, server) = match (placement, allowed.as_slice()) {
            (Placement::SameCpu, [a, ..]) => (*a, *a),
            (Placement::CrossCpu, [a, b, ..]) => (*a, *b),
            _ => continue,
        };
        samples.cpus.insert(placement, (host, server));
        affinity::set(0, &[host])?;
        let mut servers: Vec<i32> = echoes.iter().map(Echo::pid).collect();
        servers.extend(sessions.iter().filter_map(Live::stub_pid));
        for pid in servers {
            affinity::set_process(pid, &[server])?;
        }
        measure(
            placement,
            &mut echoes,
            sessions,
            rounds,
            quick,
            &mut samples,
        )?;
    }
    affinity::set(0, &allowed)?;
    for e in echoes {
        e.finish()?;
    }
    Ok(samples)
}

fn measure(
    placement: Placement,
    echoes: &mut [Echo],
    sessions: &mut [Live],
    rounds: usize,
    quick: bool,
    samples: &mut Samples,
) -> Result<(), BenchError> {
    for round in 0..=rounds {
        for (si, &size) in SIZES.iter().enumerate() {
            // A byte pattern that changes every round: the low byte is the point.
            #[allow(clippy::cast_possible_truncation)]
            let msg: Vec<u8> = (0..size).map(|i| (i * 7 + round) as u8).collect();
            let n = batch_len(size, quick);
            let mut contenders: Vec<Contender> = Vec::new();
            contenders.push(Contender::Raw(&mut echoes[si]));
            for live in sessions.iter_mut() {
                contenders.push(Contender::Session(live));
            }
            let k = contenders.len();
            contenders.rotate_left(round % k);
            for c in contenders.iter_mut() {
                let mut times = Vec::with_capacity(n);
                let start = Instant::now();
                for _ in 0..n {
                    let t0 = Instant::now();
                    c.call(&msg)?;
                    times.push(t0.elapsed().as_nanos() as f64);
                }
                let secs = start.elapsed().as_secs_f64();
                if round == 0 {
                    continue; // warm-up: buffers grown, caches and pipes primed
                }
                let key = (placement, size, c.name());
                samples.calls.entry(key).or_default().extend(times);
                samples
                    .batches
                    .entry(key)
                    .or_default()
                    .push((n * size) as f64 / secs);
            }
        }
    }
    Ok(())
}

/// sched_{get,set}affinity over CPU lists.
pub mod affinity {
    use super::BenchError;

    fn error(source: std::io::Error) -> BenchError {
        BenchError::Io {
            what: "sched_setaffinity",
            source,
        }
    }

    /// The CPUs `pid` (0: this thread) may run on, in order.
    pub fn get(pid: i32) -> Result<Vec<usize>, BenchError> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills it.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        if unsafe { libc::sched_getaffinity(pid, size_of::<libc::cpu_set_t>(), &mut set) } != 0 {
            return Err(error(std::io::Error::last_os_error()));
        }
        // SAFETY: CPU_ISSET reads the set within its size (CPU_SETSIZE bits).
        Ok((0..libc::CPU_SETSIZE as usize)
            .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
            .collect())
    }

    /// Pins one task (0: this thread).
    pub fn set(pid: i32, cpus: &[usize]) -> Result<(), BenchError> {
        // SAFETY: a zeroed cpu_set_t is a valid empty set.
        let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for &c in cpus {
            // SAFETY: CPU_SET writes within the set; `c` came from the allowed mask.
            unsafe { libc::CPU_SET(c, &mut set) };
        }
        // SAFETY: `set` is a valid cpu_set_t of the size passed.
        if unsafe { libc::sched_setaffinity(pid, size_of::<libc::cpu_set_t>(), &set) } != 0 {
            return Err(error(std::io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Pins every thread of a process we started (or a descendant of one).
    pub fn set_process(pid: i32, cpus: &[usize]) -> Result<(), BenchError> {
        let tasks =
            std::fs::read_dir(format!("/proc/{pid}/task")).map_err(|source| BenchError::Io {
                what: "listing a server's threads",
                source,
            })?;
        for t in tasks.flatten() {
            if let Some(tid) = t.file_name().to_str().and_then(|s| s.parse().ok()) {
                set(tid, cpus)?;
            }
        }
        Ok(())
    }
}
