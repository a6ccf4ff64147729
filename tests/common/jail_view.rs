//! A plugin session's jail seen from outside, by the pid of its `plugjail serve`: the
//! jail's processes ([`jail_processes`]), their CPU time ([`jail_cpu`]: the cgroup's
//! figure when the jail has a cgroup, else /proc), and the cgroups named after that pid
//! ([`cgroups_of`]).

use std::path::{Path, PathBuf};

/// Every process descended from `serve` (the jail's init and everything in the jail),
/// from the parent pids in /proc.
pub fn jail_processes(serve: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter_map(|pid| Some((pid, field(pid, 4)?)))
                .collect()
        })
        .unwrap_or_default();
    let mut out = vec![];
    let mut frontier = vec![serve];
    while let Some(p) = frontier.pop() {
        for &(child, parent) in &parents {
            if parent == p && !out.contains(&child) {
                out.push(child);
                frontier.push(child);
            }
        }
    }
    out.sort_unstable();
    out
}

/// Field `n` (1-based, as in proc(5)) of /proc/PID/stat, as a number.
fn field(pid: u32, n: usize) -> Option<u32> {
    stat_fields(pid)?.get(n - 3)?.parse().ok()
}

/// The fields of /proc/PID/stat after the command (field 3, the state, first).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The state letter of every thread of `pid` (`R`, `S`, `T`, `t`, ...).
pub fn thread_states(pid: u32) -> Vec<char> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .filter_map(|t| {
                    let s = std::fs::read_to_string(t.path().join("stat")).ok()?;
                    s.rsplit_once(')')?.1.trim_start().chars().next()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The `plugjail-<serve>-<n>` cgroups of a session, in every hierarchy, but not v2's
/// supervisor leaf `plugjail-<serve>-sup` (empty once serve has exited, and reaped by the
/// next run: docs/limits.md).
pub fn cgroups_of(serve: u32) -> Vec<PathBuf> {
    let prefix = format!("plugjail-{serve}-");
    let mut out = vec![];
    walk(Path::new("/sys/fs/cgroup"), 0, &mut |dir| {
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if name.starts_with(&prefix) && !name.ends_with("-sup") {
            out.push(dir.to_path_buf());
        }
    });
    out.sort();
    out
}

/// Calls `f` on every directory below `dir` (not below a `plugjail-*` one), at most 6
/// levels down.
fn walk(dir: &Path, depth: usize, f: &mut dyn FnMut(&Path)) {
    if depth > 6 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        f(&path);
        if !e.file_name().to_string_lossy().starts_with("plugjail-") {
            walk(&path, depth + 1, f);
        }
    }
}

/// The jail's CPU time in microseconds and where it was read: the cgroup's own figure
/// (v2 `cpu.stat` `usage_usec`, v1 `cpuacct.usage`) when the session has a cgroup with
/// one, else utime + stime of the jail's processes from /proc (clock ticks, usually 10 ms).
pub fn jail_cpu(serve: u32) -> (u64, &'static str) {
    for dir in cgroups_of(serve) {
        if let Ok(t) = std::fs::read_to_string(dir.join("cpu.stat"))
            && let Some(v) = t.lines().find_map(|l| l.strip_prefix("usage_usec "))
            && let Ok(us) = v.trim().parse::<u64>()
        {
            return (us, "cgroup v2 cpu.stat");
        }
        if let Ok(t) = std::fs::read_to_string(dir.join("cpuacct.usage"))
            && let Ok(ns) = t.trim().parse::<u64>()
        {
            return (ns / 1000, "cgroup v1 cpuacct.usage");
        }
    }
    // SAFETY: sysconf has no memory arguments.
    let tick = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1);
    let ticks: u64 = jail_processes(serve)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| {
            // utime and stime are fields 14 and 15.
            let n = |i: usize| {
                f.get(i - 3)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            n(14) + n(15)
        })
        .sum();
    (ticks * 1_000_000 / tick, "/proc utime+stime")
}
