//! Cold start: from spawning the runner until the first call's result is back.

use std::collections::BTreeMap;
use std::time::Instant;

use super::BenchError;
use super::launch::{self, Env, Runner};

const INPUT: &[u8] = b"bench";
const OUTPUT: &[u8] = b"hello, bench";

/// One cold start: spawn, HELLO, one `greet` call. The session is then ended and reaped
/// outside the timed part.
pub fn once(env: &Env, runner: Runner) -> Result<f64, BenchError> {
    let t0 = Instant::now();
    let mut live = launch::start(env, runner)?;
    live.call("greet", INPUT, |out| out == OUTPUT)?;
    let ns = t0.elapsed().as_nanos() as f64;
    live.finish()?;
    Ok(ns)
}

/// `warmup` untimed rounds, then `reps` rounds; each round starts every runner once, in
/// an order rotated round by round so no runner always follows the same one.
pub fn run(
    env: &Env,
    runners: &[Runner],
    warmup: usize,
    reps: usize,
) -> Result<BTreeMap<&'static str, Vec<f64>>, BenchError> {
    let mut samples: BTreeMap<&'static str, Vec<f64>> = BTreeMap::new();
    for round in 0..warmup + reps {
        for i in 0..runners.len() {
            let runner = runners[(round + i) % runners.len()];
            let ns = once(env, runner)?;
            if round >= warmup {
                samples.entry(runner.name()).or_default().push(ns);
            }
        }
    }
    Ok(samples)
}
