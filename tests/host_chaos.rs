//! Chaos against the plugin host, with real jails, root and rootless: callers on several
//! threads call a well-behaved plugin, one that crashes or hangs on request and one that
//! breaks its seccomp filter, while a chaos thread SIGKILLs random processes inside the
//! jails (inits and stubs; never `plugjail serve`, whose loss is not the host's to
//! survive) and releases the quarantined plugin now and then. Afterwards:
//!
//! - every call got exactly one answer (each call returns once; the answers add up);
//! - the policies held: no jail of the violating plugin started while it was quarantined,
//!   every restart waited a backoff within its configured bounds;
//! - nothing is left: every jail that said HELLO ended with a verdict, this process has no
//!   child left, and no cgroup of any `plugjail serve` it started remains;
//! - the host's memory stayed flat.
//!
//! A file of its own: one test per process, so the child and memory checks see only it.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Mode, jail_modes, plugin, plugjail_for, profile_for};
use plugjail::host::{
    Event, EventKind, Host, HostCallError, HostConfig, HostOptions, PluginConfig, State,
};

/// How long the chaos runs per mode.
const CHAOS: Duration = Duration::from_secs(6);
const CALLERS: usize = 6;

/// A small xorshift generator: reproducible from the printed seed, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        let n = u64::try_from(n).expect("usize fits u64");
        usize::try_from(self.next() % n).expect("below n")
    }
}

fn plugins(mode: Mode) -> Vec<PluginConfig> {
    let profile = profile_for(mode, "default");
    let mut good = PluginConfig::new("good", plugin("hello"), &profile);
    good.pool.warm = 2;
    good.pool.max = 3;
    good.pool.recycle_calls = Some(7);
    let mut crash = PluginConfig::new("crash", plugin("crash"), &profile);
    crash.pool.max = 2;
    crash.call_time = Some(Duration::from_millis(300));
    let mut escape = PluginConfig::new("escape", plugin("escape"), &profile);
    escape.pool.queue = 4;
    for p in [&mut good, &mut crash, &mut escape] {
        p.restart.backoff = Duration::from_millis(10);
        p.restart.backoff_max = Duration::from_millis(80);
        p.restart.budget = 1000;
    }
    vec![good, crash, escape]
}

/// What one caller asked, and the answers it got, by kind.
#[derive(Default)]
struct Tally {
    calls: u64,
    answers: HashMap<String, u64>,
}

fn call_once(host: &Host, rng: &mut Rng) -> (String, Result<Vec<u8>, HostCallError>) {
    let (plugin, method) = match rng.below(10) {
        0..=4 => ("good", "greet"),
        5 => ("crash", "segv"),
        6 => ("crash", "hang"),
        7 => ("crash", "noop"),
        8 => ("escape", "shell"),
        _ => ("escape", "noop"),
    };
    let result = host.call(plugin, method, b"chaos");
    if let Ok(out) = &result {
        let expected: &[u8] = if plugin == "good" {
            b"hello, chaos"
        } else {
            b""
        };
        assert_eq!(out, expected, "{plugin}.{method} answered something else");
    }
    (format!("{plugin}.{method}"), result)
}

/// (pid, ppid) of every process.
fn processes() -> Vec<(i32, i32)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The command may hold spaces and parentheses: fields follow the last ')'.
            let rest = &stat[stat.rfind(')')? + 2..];
            let ppid = rest.split(' ').nth(1)?.parse().ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// This process's children (`plugjail serve`s) and everything below them (the jails).
fn descendants() -> (Vec<i32>, Vec<i32>) {
    let me = std::process::id() as i32;
    let all = processes();
    let children: Vec<i32> = all.iter().filter(|p| p.1 == me).map(|p| p.0).collect();
    let mut below = Vec::new();
    let mut frontier = children.clone();
    while let Some(parent) = frontier.pop() {
        for &(pid, ppid) in &all {
            if ppid == parent {
                below.push(pid);
                frontier.push(pid);
            }
        }
    }
    (children, below)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// cgroup directories named after one of `supervisors` (plugjail-<pid>-<n>).
fn cgroups_of(supervisors: &BTreeSet<i32>) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if !kind.is_dir() || kind.is_symlink() {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("plugjail-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok());
            if pid.is_some_and(|p| supervisors.contains(&p)) {
                found.push(e.path().display().to_string());
            }
            stack.push(e.path());
        }
    }
    found
}

/// Checks the quarantine and backoff rules on the event stream.
fn check_policies(events: &[Event]) {
    let mut quarantined = false;
    for e in events.iter().filter(|e| e.plugin == "escape") {
        match &e.kind {
            EventKind::State { to, .. } => quarantined = *to == State::Quarantined,
            EventKind::JailReady { jail, .. } => {
                assert!(!quarantined, "escape jail {jail} started while quarantined")
            }
            _ => {}
        }
    }
    for e in events {
        if let EventKind::Restart { delay_ms, .. } = e.kind {
            assert!(
                (10..=80).contains(&delay_ms),
                "backoff {delay_ms} ms out of bounds"
            );
        }
    }
}

#[test]
fn the_host_survives_chaos_and_leaves_nothing_behind() {
    for mode in jail_modes() {
        let seed = std::env::var("PLUGJAIL_CHAOS_SEED")
            .ok()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                let nanos = u64::try_from(now.as_nanos() & u128::from(u64::MAX)).unwrap_or(1);
                (nanos | 1) ^ u64::from(std::process::id())
            });
        println!("{mode:?}: seed {seed:#x} (PLUGJAIL_CHAOS_SEED repeats it)");
        let options = HostOptions {
            plugjail: Some(plugjail_for(mode)),
        };
        let host = Host::start_with(
            HostConfig {
                plugins: plugins(mode),
            },
            options,
        )
        .expect("host starts");
        let events = host.events();
        // Warm up, then take the memory baseline.
        for _ in 0..20 {
            host.call("good", "greet", b"chaos").expect("warm-up call");
        }
        let rss_before = rss_kib();
        let stop = AtomicBool::new(false);
        let killed = AtomicU64::new(0);
        let supervisors = Mutex::new(BTreeSet::new());
        let tallies: Vec<Tally> = std::thread::scope(|s| {
            let chaos = s.spawn(|| {
                let mut rng = Rng(seed ^ 0xdead_beef);
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis([20, 40, 60, 80][rng.below(4)]));
                    let (children, below) = descendants();
                    supervisors.lock().unwrap().extend(children);
                    if !below.is_empty() {
                        let victim = below[rng.below(below.len())];
                        // Only a process this test started (below one of its children).
                        // SAFETY: kill takes no pointers.
                        if unsafe { libc::kill(victim, libc::SIGKILL) } == 0 {
                            killed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if rng.below(8) == 0 {
                        let _ = host.release("escape");
                    }
                }
            });
            let callers: Vec<_> = (0..CALLERS)
                .map(|t| {
                    let host = &host;
                    let stop = &stop;
                    s.spawn(move || {
                        let mut rng = Rng(seed.wrapping_add(t as u64 + 1));
                        let mut tally = Tally::default();
                        while !stop.load(Ordering::Relaxed) {
                            tally.calls += 1;
                            let (what, result) = call_once(host, &mut rng);
                            let kind = match &result {
                                Ok(_) => "ok".to_owned(),
                                Err(e) => e.kind_name().to_owned(),
                            };
                            *tally.answers.entry(format!("{what} {kind}")).or_default() += 1;
                        }
                        tally
                    })
                })
                .collect();
            std::thread::sleep(CHAOS);
            stop.store(true, Ordering::Relaxed);
            chaos.join().expect("chaos thread");
            callers
                .into_iter()
                .map(|c| c.join().expect("caller"))
                .collect()
        });
        let rss_after = rss_kib();
        // The last kill may still be landing (a stub dying while a call is written to it
        // is a call lost with its jail): let it land, then a call must find a live jail.
        std::thread::sleep(Duration::from_millis(300));
        let good_after = host.call("good", "greet", b"chaos");
        host.shutdown();
        let seen: Vec<Event> = events.try_iter().collect();

        // Every call answered exactly once.
        let calls: u64 = tallies.iter().map(|t| t.calls).sum();
        let mut answers: HashMap<String, u64> = HashMap::new();
        for t in &tallies {
            for (k, n) in &t.answers {
                *answers.entry(k.clone()).or_default() += n;
            }
        }
        let answered: u64 = answers.values().sum();
        println!(
            "{mode:?}: {calls} calls, {} kills, {} events; answers {answers:#?}",
            killed.load(Ordering::Relaxed),
            seen.len()
        );
        assert_eq!(calls, answered);
        // Kills from outside are transient faults: the well-behaved plugin is never
        // blamed for one (quarantined), whatever moment of its jail's life they hit.
        for e in seen.iter().filter(|e| e.plugin == "good") {
            if let EventKind::JailEnded {
                outcome, verdict, ..
            } = &e.kind
            {
                assert!(
                    matches!(outcome.as_str(), "signaled" | "ok" | "setup_failed"),
                    "a kill from outside was read as the plugin's fault: {verdict}"
                );
            }
        }
        assert!(answers.get("good.greet ok").copied().unwrap_or(0) > 0);
        assert!(
            good_after.is_ok(),
            "the good plugin serves after the chaos: {good_after:?}"
        );
        // The events were all delivered (a slow subscriber would have been told).
        assert!(
            seen.iter().all(|e| e.dropped_before == 0),
            "events were dropped"
        );
        check_policies(&seen);

        // Nothing left behind.
        let ready: BTreeSet<(String, u64)> = seen
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::JailReady { jail, .. } => Some((e.plugin.clone(), jail)),
                _ => None,
            })
            .collect();
        let ended: BTreeSet<(String, u64)> = seen
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::JailEnded { jail, .. } => Some((e.plugin.clone(), jail)),
                _ => None,
            })
            .collect();
        let missing: Vec<_> = ready.difference(&ended).collect();
        assert!(missing.is_empty(), "jails without a verdict: {missing:?}");
        let (children, below) = descendants();
        assert!(
            children.is_empty() && below.is_empty(),
            "left: {children:?} {below:?}"
        );
        let leaked = cgroups_of(&supervisors.lock().unwrap());
        assert!(leaked.is_empty(), "cgroups left: {leaked:?}");
        // Flat memory: the run's growth is bookkeeping, not per-call (bounded generously:
        // thread stacks and allocator arenas come and go).
        let growth = rss_after.saturating_sub(rss_before);
        println!("{mode:?}: host RSS {rss_before} KiB → {rss_after} KiB");
        assert!(
            growth < 16 * 1024,
            "host RSS grew by {growth} KiB over the chaos"
        );
    }
}
