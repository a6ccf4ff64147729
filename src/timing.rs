//! Start-up timing, for profiling only: with `PLUGJAIL_TIMING=1` in its environment,
//! plugjail notes when each setup step ends and prints one line on stderr at the end
//! (`plugjail: timing (ms since main): profile 0.41, plugin 0.52, ...`). Without it, a mark
//! is one relaxed atomic load. Never used for decisions, never in tests' assertions.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

static ON: AtomicBool = AtomicBool::new(false);
static MARKS: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());

/// Reads `PLUGJAIL_TIMING` once, at the start of `main`, and starts the clock.
pub fn start() {
    if std::env::var_os("PLUGJAIL_TIMING").is_some_and(|v| v == "1") {
        ON.store(true, Ordering::Relaxed);
        mark("main");
    }
}

/// The step `label` just ended.
pub fn mark(label: &'static str) {
    if ON.load(Ordering::Relaxed) {
        let mut marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
        marks.push((label, Instant::now()));
    }
}

/// Prints the marks, as milliseconds since `main` began, on one line.
pub fn report() {
    if !ON.load(Ordering::Relaxed) {
        return;
    }
    let marks = MARKS.lock().unwrap_or_else(|e| e.into_inner());
    let Some(&(_, t0)) = marks.first() else {
        return;
    };
    let steps: Vec<String> = marks[1..]
        .iter()
        .map(|(label, t)| format!("{label} {:.2}", t.duration_since(t0).as_secs_f64() * 1e3))
        .collect();
    eprintln!("plugjail: timing (ms since main): {}", steps.join(", "));
}
