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

/// Per (size, contender): each call's round trip (ns) and each batch's throughput (bytes
/// of input per second).
#[derive(Debug, Default)]
pub struct Samples {
    pub calls: BTreeMap<(usize, &'static str), Vec<f64>>,
    pub batches: BTreeMap<(usize, &'static str), Vec<f64>>,
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

/// Runs `rounds` rounds (after one warm-up round); in each, every size, and for each size
/// one batch per contender in rotated order.
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
    for round in 0..=rounds {
        for (si, &size) in SIZES.iter().enumerate() {
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
                let key = (size, c.name());
                samples.calls.entry(key).or_default().extend(times);
                samples
                    .batches
                    .entry(key)
                    .or_default()
                    .push((n * size) as f64 / secs);
            }
        }
    }
    for e in echoes {
        e.finish()?;
    }
    Ok(samples)
}
