//! Resource limits as `plugjail exec` enforces and reports them on this host: cgroup v1
//! hybrid as root, the rlimit fallback rootless. (Pure cgroup v2 is proven in the VM:
//! scripts/vm-test.sh runs the same hog against the same kinds of limit.)

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::{Exec, Lang, Mode, Run, TempDir, build, extend_profile, jail_modes};

fn hog() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| build("hog", Lang::C, &["scripts/vm/hog.c"], &["-O2"]))
}

/// A profile: ci-tests plus `limits` (YAML body), with the limits `required` as root (the
/// host has writable v1 cgroups for root) and `best_effort` rootless (it has none).
fn profile(dir: &TempDir, mode: Mode, name: &str, limits: &str) -> PathBuf {
    let level = if mode == Mode::Root {
        "required"
    } else {
        "best_effort"
    };
    let body = format!("limits:\n{limits}enforcement:\n  limits: {level}\n");
    extend_profile(dir, &format!("{name}-{}", mode.name()), "ci-tests", &body)
}

fn run(mode: Mode, profile: &Path, args: &[&str]) -> Run {
    Exec::new(mode, profile).cmd([hog()]).cmd(args).run()
}

fn cgroup_field(run: &Run, name: &str) -> serde_json::Value {
    run.report.as_ref().expect("a verdict")["enforced"]["cgroup"][name].clone()
}

#[test]
fn a_memory_hog_is_oom_killed_with_peak_at_the_limit() {
    let dir = TempDir::new("limits", 0o755);
    for mode in jail_modes() {
        let p = profile(&dir, mode, "memory", "  memory: 64M\n");
        let r = run(mode, &p, &["memory", "256"]);
        if mode == Mode::Root {
            assert_eq!(r.outcome(), Some("oom"), "{}", r.describe());
            assert_eq!(r.code(), Some(137), "{}", r.describe());
            let peak = cgroup_field(&r, "memory_peak").as_u64().unwrap_or(0);
            assert!(
                (56 << 20..=64 << 20).contains(&peak),
                "peak {peak} not near 64 MiB: {}",
                r.describe()
            );
        } else {
            // No cgroup: the address-space rlimit makes the allocation fail instead.
            assert_eq!(r.outcome(), Some("exited"), "{}", r.describe());
            assert!(r.stdout.contains("failed"), "{}", r.describe());
            assert_eq!(cgroup_field(&r, "backend"), "none", "{}", r.describe());
        }
    }
}

#[test]
fn a_fork_bomb_hits_the_pids_limit_and_the_host_is_unaffected() {
    let dir = TempDir::new("limits", 0o755);
    for mode in jail_modes().into_iter().filter(|m| *m == Mode::Root) {
        let p = profile(&dir, mode, "pids", "  pids: 16\n");
        let r = run(mode, &p, &["forkbomb", "200"]);
        assert_eq!(r.outcome(), Some("pids_limit"), "{}", r.describe());
        assert!(
            cgroup_field(&r, "pids_limit_hits").as_u64().unwrap_or(0) > 0,
            "{}",
            r.describe()
        );
        // The host can still fork, and nothing of the jail is left.
        let status = std::process::Command::new("true")
            .status()
            .expect("fork on the host");
        assert!(status.success());
        let name = cgroup_field(&r, "name");
        let leftover = Path::new("/sys/fs/cgroup/pids").join(name.as_str().unwrap_or("?"));
        assert!(!leftover.exists(), "{} left behind", leftover.display());
    }
}

#[test]
fn a_busy_loop_gets_its_cpu_share() {
    let dir = TempDir::new("limits", 0o755);
    for mode in jail_modes().into_iter().filter(|m| *m == Mode::Root) {
        let p = profile(&dir, mode, "cpu", "  cpu: 0.2\n");
        let r = run(mode, &p, &["spin", "2"]);
        assert_eq!(r.outcome(), Some("exited"), "{}", r.describe());
        // Measured by the kernel (cpuacct) against the run's wall time; generous bounds.
        let used = cgroup_field(&r, "cpu_usage_usec").as_u64().unwrap_or(0) as f64;
        let wall = r
            .field("wall_time_ms")
            .and_then(|w| w.as_u64())
            .unwrap_or(1) as f64
            * 1e3;
        let share = used / wall;
        assert!(
            (0.10..=0.35).contains(&share),
            "share {share:.2}: {}",
            r.describe()
        );
        let throttled = cgroup_field(&r, "cpu_throttled_periods");
        assert!(throttled.as_u64().unwrap_or(0) > 0, "{}", r.describe());
    }
}

#[test]
fn time_limits_end_the_run_with_their_kind() {
    let dir = TempDir::new("limits", 0o755);
    for mode in jail_modes() {
        let wall = profile(&dir, mode, "wall", "  wall_time: 1s\n");
        let r = run(mode, &wall, &["spin", "30"]);
        assert_eq!(r.outcome(), Some("timeout"), "{}", r.describe());
        let timeout = r.field("timeout").cloned().unwrap_or_default();
        assert_eq!(timeout["kind"], "wall", "{}", r.describe());
        assert_eq!(timeout["limit_ms"], 1000, "{}", r.describe());
        assert!(r.elapsed.as_secs_f64() < 10.0, "{}", r.describe());

        let cpu = profile(&dir, mode, "cputime", "  cpu_time: 1s\n");
        let r = run(mode, &cpu, &["spin", "30"]);
        assert_eq!(r.outcome(), Some("timeout"), "{}", r.describe());
        let timeout = r.field("timeout").cloned().unwrap_or_default();
        assert_eq!(timeout["kind"], "cpu", "{}", r.describe());
    }
}

#[test]
fn limits_that_cannot_be_enforced_refuse_to_run_when_required() {
    let dir = TempDir::new("limits", 0o755);
    for mode in jail_modes().into_iter().filter(|m| *m == Mode::Rootless) {
        let body = "limits:\n  pids: 16\nenforcement:\n  limits: required\n";
        let p = extend_profile(&dir, "required-pids", "ci-tests", body);
        let r = run(mode, &p, &["spin", "1"]);
        assert_eq!(r.code(), Some(125), "{}", r.describe());
        assert_eq!(r.outcome(), Some("setup_failed"), "{}", r.describe());
        assert!(r.stdout.is_empty(), "the program ran: {}", r.describe());
    }
}
