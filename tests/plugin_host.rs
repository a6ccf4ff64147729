//! The plugin host (`plugjail::host::Host`) against real jails, root and rootless: warm
//! pools serving in parallel, restarts with backoff and a budget, quarantine after a
//! violation, cancel, backpressure, recycling, upgrade and rollback. Every test checks at
//! the end that each jail the host started ended with a verdict (none left behind).

mod common;

use std::collections::BTreeSet;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{Mode, jail_modes, plugin, plugjail_for, profile_for};
use plugjail::host::{
    CancelToken, Event, EventKind, Host, HostCallError, HostConfig, HostError, HostOptions,
    PluginConfig, State,
};

fn config(mode: Mode, id: &str, so: &str) -> PluginConfig {
    let mut cfg = PluginConfig::new(id, plugin(so), profile_for(mode, "default"));
    cfg.restart.backoff = Duration::from_millis(20);
    cfg.restart.backoff_max = Duration::from_millis(100);
    cfg
}

/// A started host and its event stream.
struct Hosted {
    host: Option<Host>,
    events: Receiver<Event>,
    seen: Vec<Event>,
}

impl Hosted {
    fn start(mode: Mode, plugins: Vec<PluginConfig>) -> Hosted {
        let options = HostOptions {
            plugjail: Some(plugjail_for(mode)),
        };
        let host = Host::start_with(HostConfig { plugins }, options).expect("host starts");
        let events = host.events();
        Hosted {
            host: Some(host),
            events,
            seen: Vec::new(),
        }
    }

    fn host(&self) -> &Host {
        self.host.as_ref().expect("not shut down")
    }

    /// Waits (at most 30 s) for an event that `want` accepts; returns it.
    fn wait_for(&mut self, what: &str, want: impl Fn(&Event) -> bool) -> Event {
        if let Some(e) = self.seen.iter().find(|e| want(e)) {
            return e.clone();
        }
        let limit = Instant::now() + Duration::from_secs(30);
        loop {
            let left = limit.saturating_duration_since(Instant::now());
            let e = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what} event within 30 s; saw {:#?}", self.seen));
            self.seen.push(e.clone());
            if want(&e) {
                return e;
            }
        }
    }

    /// Waits until `jails` jails of plugin `id` have said HELLO in all.
    fn wait_ready(&mut self, id: &str, jails: usize) {
        let ready = |e: &Event| e.plugin == id && matches!(e.kind, EventKind::JailReady { .. });
        let limit = Instant::now() + Duration::from_secs(30);
        while self.seen.iter().filter(|e| ready(e)).count() < jails {
            let left = limit.saturating_duration_since(Instant::now());
            let e = self.events.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "not {jails} jails of {id} ready within 30 s; saw {:#?}",
                    self.seen
                )
            });
            self.seen.push(e);
        }
    }

    fn state(&self, id: &str) -> State {
        let status = self.host().status();
        status.iter().find(|s| s.id == id).expect("plugin").state
    }

    /// Shuts the host down and checks that every jail that became ready also ended.
    fn shutdown(mut self) -> Vec<Event> {
        self.host.take().expect("once").shutdown();
        self.seen.extend(self.events.try_iter());
        let ready: BTreeSet<(String, u64)> = self
            .seen
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::JailReady { jail, .. } => Some((e.plugin.clone(), jail)),
                _ => None,
            })
            .collect();
        let ended: BTreeSet<(String, u64)> = self
            .seen
            .iter()
            .filter_map(|e| match e.kind {
                EventKind::JailEnded { jail, .. } => Some((e.plugin.clone(), jail)),
                _ => None,
            })
            .collect();
        let left: Vec<_> = ready.difference(&ended).collect();
        assert!(left.is_empty(), "jails without a verdict: {left:?}");
        self.seen
    }
}

fn ended_with(e: &Event, outcome: &str) -> bool {
    matches!(&e.kind, EventKind::JailEnded { outcome: o, reason: None, .. } if o == outcome)
}

#[test]
fn a_warm_pool_serves_calls_in_parallel() {
    for mode in jail_modes() {
        let mut cfg = config(mode, "hello", "hello");
        cfg.pool.warm = 2;
        cfg.pool.max = 2;
        let mut h = Hosted::start(mode, vec![cfg]);
        h.wait_ready("hello", 2);
        assert_eq!(h.state("hello"), State::Running, "{mode:?}");
        std::thread::scope(|s| {
            for t in 0..4 {
                let host = h.host();
                s.spawn(move || {
                    for i in 0..5 {
                        let who = format!("caller {t}.{i}");
                        let out = host.call("hello", "greet", who.as_bytes()).expect("call");
                        assert_eq!(out, format!("hello, {who}").as_bytes());
                    }
                });
            }
        });
        let status = &h.host().status()[0];
        assert_eq!(status.calls, 20, "{mode:?}");
        assert!(status.idle + status.busy <= 2, "{status:?}");
        let err = h.host().call("nope", "greet", b"").unwrap_err();
        assert!(matches!(err, HostCallError::UnknownPlugin { .. }), "{err}");
        h.shutdown();
    }
}

#[test]
fn a_crash_restarts_with_backoff_until_the_budget_is_spent() {
    for mode in jail_modes() {
        let mut cfg = config(mode, "crash", "crash");
        cfg.restart.budget = 2;
        let mut h = Hosted::start(mode, vec![cfg]);
        for attempt in 1..=2u32 {
            let err = h.host().call("crash", "segv", b"").unwrap_err();
            assert!(
                matches!(&err, HostCallError::JailEnded { outcome } if outcome == "signaled"),
                "{mode:?}: {err}"
            );
            h.wait_for(
                "restart",
                |e| matches!(e.kind, EventKind::Restart { attempt: a, .. } if a == attempt),
            );
            // The restarted jail serves.
            assert_eq!(h.host().call("crash", "noop", b"").expect("noop"), b"");
        }
        let err = h.host().call("crash", "segv", b"").unwrap_err();
        assert!(matches!(err, HostCallError::JailEnded { .. }), "{err}");
        h.wait_for("failed", |e| {
            matches!(
                e.kind,
                EventKind::State {
                    to: State::Failed,
                    ..
                }
            )
        });
        let err = h.host().call("crash", "noop", b"").unwrap_err();
        assert!(
            matches!(
                err,
                HostCallError::NotServing {
                    state: State::Failed,
                    ..
                }
            ),
            "{err}"
        );
        h.host().release("crash").expect("release");
        assert_eq!(h.host().call("crash", "noop", b"").expect("noop"), b"");
        h.shutdown();
    }
}

#[test]
fn a_violation_quarantines_the_plugin_until_released() {
    for mode in jail_modes() {
        let mut h = Hosted::start(mode, vec![config(mode, "escape", "escape")]);
        let err = h.host().call("escape", "shell", b"").unwrap_err();
        assert!(
            matches!(&err, HostCallError::JailEnded { outcome } if outcome == "seccomp_violation"),
            "{mode:?}: {err}"
        );
        let e = h.wait_for("quarantine", |e| ended_with(e, "seccomp_violation"));
        if let EventKind::JailEnded { verdict, .. } = &e.kind {
            assert_eq!(verdict["syscall"]["name"], "execve", "{verdict}");
        }
        assert_eq!(h.state("escape"), State::Quarantined);
        // No restart while quarantined: calls are refused at once.
        let t = Instant::now();
        let err = h.host().call("escape", "noop", b"").unwrap_err();
        assert!(
            matches!(
                err,
                HostCallError::NotServing {
                    state: State::Quarantined,
                    ..
                }
            ),
            "{err}"
        );
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(
            !h.seen
                .iter()
                .any(|e| matches!(e.kind, EventKind::Restart { .. }))
        );
        let err = h.host().resume("escape").unwrap_err();
        assert!(
            matches!(err, HostError::Transition { .. } | HostError::Pause { .. }),
            "{err}"
        );
        h.host().release("escape").expect("release");
        assert_eq!(h.host().call("escape", "noop", b"").expect("noop"), b"");
        h.shutdown();
    }
}

#[test]
fn a_cancelled_call_ends_only_its_own_jail() {
    for mode in jail_modes() {
        let mut cfg = config(mode, "crash", "crash");
        cfg.pool.warm = 2;
        cfg.pool.max = 2;
        let mut h = Hosted::start(mode, vec![cfg]);
        h.wait_ready("crash", 2);
        let token = CancelToken::new();
        std::thread::scope(|s| {
            let host = h.host();
            let hung = s.spawn(|| host.call_with("crash", "hang", b"", Some(&token)));
            // Wait until the hanging call holds a jail, then cancel it.
            while host.status()[0].busy == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(host.call("crash", "noop", b"").expect("other call"), b"");
            token.cancel();
            let err = hung.join().expect("thread").unwrap_err();
            assert!(matches!(err, HostCallError::Cancelled), "{mode:?}: {err}");
            assert_eq!(host.call("crash", "noop", b"").expect("after cancel"), b"");
        });
        h.wait_for("cancelled", |e| {
            matches!(e.kind, EventKind::Cancelled { .. })
        });
        assert_eq!(h.state("crash"), State::Running, "a cancel is no fault");
        // Cancelled before it starts: fails at once.
        let early = CancelToken::new();
        early.cancel();
        let err = h
            .host()
            .call_with("crash", "noop", b"", Some(&early))
            .unwrap_err();
        assert!(matches!(err, HostCallError::Cancelled), "{err}");
        h.shutdown();
    }
}

#[test]
fn a_full_queue_refuses_and_a_missed_deadline_restarts() {
    for mode in jail_modes() {
        let mut cfg = config(mode, "crash", "crash");
        cfg.pool.queue = 1;
        cfg.call_time = Some(Duration::from_millis(1500));
        let mut h = Hosted::start(mode, vec![cfg]);
        h.wait_ready("crash", 1);
        std::thread::scope(|s| {
            let host = h.host();
            let hung = s.spawn(|| host.call("crash", "hang", b""));
            while host.status()[0].busy == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let queued = s.spawn(|| host.call("crash", "noop", b""));
            while host.status()[0].queued == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            let err = host.call("crash", "noop", b"").unwrap_err();
            assert!(
                matches!(err, HostCallError::QueueFull { queued: 1, .. }),
                "{err}"
            );
            let err = hung.join().expect("thread").unwrap_err();
            assert!(
                matches!(err, HostCallError::Timeout { .. }),
                "{mode:?}: {err}"
            );
            // The queued call waited within its own deadline: it either got the restarted
            // jail in time or timed out; it got exactly one answer either way.
            let _ = queued.join().expect("thread");
        });
        let e = h.wait_for("timeout verdict", |e| ended_with(e, "timeout"));
        if let EventKind::JailEnded { verdict, .. } = &e.kind {
            assert_eq!(verdict["timeout"]["kind"], "host", "{verdict}");
        }
        h.wait_for(
            "restart",
            |e| matches!(&e.kind, EventKind::Restart { cause, .. } if cause == "timeout"),
        );
        h.shutdown();
    }
}

#[test]
fn jails_are_recycled_after_their_calls() {
    for mode in jail_modes() {
        let mut cfg = config(mode, "hello", "hello");
        cfg.pool.recycle_calls = Some(2);
        let mut h = Hosted::start(mode, vec![cfg]);
        for _ in 0..5 {
            assert_eq!(
                h.host().call("hello", "greet", b"x").expect("call"),
                b"hello, x"
            );
        }
        h.wait_for("recycle", |e| {
            matches!(
                e.kind,
                EventKind::JailEnded {
                    reason: Some("recycle"),
                    calls: 2,
                    ..
                }
            )
        });
        let seen = h.shutdown();
        let recycled = seen
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::JailEnded {
                        reason: Some("recycle"),
                        ..
                    }
                )
            })
            .count();
        assert_eq!(
            recycled, 2,
            "5 calls, 2 per jail: two recycled, the third shut down"
        );
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e.kind, EventKind::Restart { .. }))
        );
    }
}

#[test]
fn a_bad_upgrade_rolls_back_and_a_good_one_takes_over() {
    for mode in jail_modes() {
        let mut h = Hosted::start(mode, vec![config(mode, "p", "hello")]);
        assert_eq!(
            h.host().call("p", "greet", b"a").expect("call"),
            b"hello, a"
        );
        let err = h
            .host()
            .upgrade("p", plugin("init_fails"), None)
            .unwrap_err();
        assert!(
            matches!(err, HostError::RolledBack { .. }),
            "{mode:?}: {err}"
        );
        h.wait_for("rollback", |e| {
            matches!(e.kind, EventKind::RolledBack { .. })
        });
        assert_eq!(h.state("p"), State::Running, "a failed upgrade is no fault");
        assert_eq!(
            h.host().call("p", "greet", b"b").expect("old serves"),
            b"hello, b"
        );
        h.host()
            .upgrade("p", plugin("crash"), None)
            .expect("upgrade");
        h.wait_for("activated", |e| {
            matches!(e.kind, EventKind::Activated { .. })
        });
        h.wait_for("old jail retired", |e| {
            matches!(
                e.kind,
                EventKind::JailEnded {
                    reason: Some("upgrade"),
                    ..
                }
            )
        });
        // The new build answers: crash.so's noop, where hello.so has no such method.
        assert_eq!(h.host().call("p", "noop", b"").expect("new serves"), b"");
        h.shutdown();
    }
}

#[test]
fn a_paused_plugin_freezes_its_jails_and_holds_or_refuses_calls() {
    for mode in jail_modes() {
        let mut waits = config(mode, "waits", "spin");
        waits.pool.warm = 2;
        waits.pool.max = 2;
        let mut fails = config(mode, "fails", "spin");
        fails.when_paused = plugjail::host::WhenPaused::Fail;
        fails.cpus = vec![0];
        let mut h = Hosted::start(mode, vec![waits, fails]);
        h.wait_ready("waits", 2);
        h.wait_ready("fails", 1);
        // Pinned by the configuration.
        let cpus = h.host().call("fails", "cpus", b"").expect("cpus");
        assert!(cpus.ends_with(b";0"), "{}", String::from_utf8_lossy(&cpus));
        std::thread::scope(|s| {
            let host = h.host();
            // A call in flight is frozen with its jail and finishes after resume.
            let busy = s.spawn(|| host.call("waits", "spin", b"400"));
            while host.status()[0].busy == 0 {
                std::thread::sleep(Duration::from_millis(5));
            }
            host.pause("waits").expect("pause");
            host.pause("fails").expect("pause");
            assert_eq!(h.state("waits"), State::Paused);
            let err = host.call("fails", "count", b"").unwrap_err();
            assert!(
                matches!(
                    err,
                    HostCallError::NotServing {
                        state: State::Paused,
                        ..
                    }
                ),
                "{mode:?}: {err}"
            );
            // A new call to the waiting plugin waits for the resume.
            let waiting = s.spawn(|| host.call("waits", "count", b""));
            std::thread::sleep(Duration::from_millis(300));
            assert!(
                !waiting.is_finished() && !busy.is_finished(),
                "{mode:?}: ran while paused"
            );
            let err = host.pause("waits").unwrap_err();
            assert!(matches!(err, HostError::Transition { .. }), "{err}");
            host.resume("waits").expect("resume");
            host.resume("fails").expect("resume");
            assert_eq!(
                busy.join().expect("thread").expect("busy call"),
                b"spun 400"
            );
            assert_eq!(waiting.join().expect("thread").expect("waiting call"), b"1");
        });
        for to in [State::Paused, State::Running] {
            h.wait_for("pause and resume events", |e| {
                e.plugin == "waits" && matches!(e.kind, EventKind::State { to: t, .. } if t == to)
            });
        }
        h.shutdown();
    }
}

#[test]
fn a_stuck_init_or_shutdown_ends_in_a_verdict_not_a_hang() {
    for mode in jail_modes() {
        let profile = profile_for(mode, "default");
        let mut init = PluginConfig::new(
            "init",
            common::plugin_with("stuck", &["-DSTUCK_INIT"]),
            &profile,
        );
        init.start_time = Duration::from_millis(500);
        init.restart.budget = 1;
        let mut shutdown = PluginConfig::new(
            "shutdown",
            common::plugin_with("stuck", &["-DSTUCK_SHUTDOWN"]),
            &profile,
        );
        shutdown.stop_time = Duration::from_millis(300);
        let mut h = Hosted::start(mode, vec![init, shutdown]);
        // Two starts time out (the budget allows one restart), then the plugin fails;
        // the call that waited for it is told so.
        let err = h.host().call("init", "noop", b"").unwrap_err();
        assert!(
            matches!(
                err,
                HostCallError::NotServing {
                    state: State::Failed,
                    ..
                }
            ),
            "{mode:?}: {err}"
        );
        let e = h.wait_for("start timeout", |e| {
            e.plugin == "init" && ended_with(e, "timeout")
        });
        if let EventKind::JailEnded { verdict, .. } = &e.kind {
            assert_eq!(verdict["timeout"]["kind"], "host", "{verdict}");
        }
        assert_eq!(h.host().call("shutdown", "noop", b"").expect("call"), b"");
        let t = Instant::now();
        let seen = h.shutdown();
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "shutdown took {:?}",
            t.elapsed()
        );
        assert!(seen.iter().any(|e| e.plugin == "shutdown"
            && matches!(
                e.kind,
                EventKind::JailEnded {
                    reason: Some("shutdown"),
                    ..
                }
            )));
    }
}

/// A plugin configured with `shm` is served over shared memory by every jail of its
/// pool, and a jail that forges its answer in the region is a violation like on the pipe.
#[test]
fn a_pool_can_call_over_shared_memory_and_a_forged_answer_quarantines() {
    let dir = common::TempDir::new("host-shm", 0o755);
    // The test plugin finds the region through /proc/self/maps.
    let profile = common::extend_profile(&dir, "shm", "default", "landlock:\n  read: [/proc]\n");
    for mode in jail_modes() {
        let mut cfg = PluginConfig::new("shm", plugin("shm_attack"), &profile);
        cfg.pool.warm = 2;
        cfg.pool.max = 2;
        cfg.shm = Some(plugjail::session::ShmOptions::default());
        let mut h = Hosted::start(mode, vec![cfg]);
        h.wait_ready("shm", 2);
        for e in &h.seen {
            if let EventKind::JailReady {
                transport,
                shm_unavailable,
                ..
            } = &e.kind
            {
                assert_eq!(*transport, "shm", "{mode:?}: {shm_unavailable:?}");
            }
        }
        std::thread::scope(|s| {
            for t in 0..2u8 {
                let host = h.host();
                s.spawn(move || {
                    assert_eq!(host.call("shm", "found", b"").expect("found"), b"yes");
                    let input = vec![t; 100_000];
                    assert_eq!(host.call("shm", "echo", &input).expect("echo"), input);
                });
            }
        });
        let err = h.host().call("shm", "forge_length", b"").unwrap_err();
        assert!(
            matches!(&err, HostCallError::JailEnded { outcome } if outcome == "protocol_violation"),
            "{mode:?}: {err}"
        );
        h.wait_for("quarantine", |e| ended_with(e, "protocol_violation"));
        assert_eq!(h.state("shm"), State::Quarantined, "{mode:?}");
        h.shutdown();
    }
}
