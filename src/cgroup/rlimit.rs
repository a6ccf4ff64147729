//! The rlimits a jail gets: always the plain ones (open files, file size, CPU time, no core
//! dumps), and with no cgroup to carry them, stand-ins for memory (`RLIMIT_AS`) and pids
//! (`RLIMIT_NPROC`). A fixed array, so the child applies it without allocating.

use crate::profile::Limits;

/// At most this many rlimits: NOFILE, FSIZE, CPU, CORE, AS, NPROC.
pub const RLIMITS_MAX: usize = 6;

/// `(resource, value)` pairs, soft and hard limit alike, each already capped at the
/// current hard limit (the child cannot raise it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rlimits {
    items: [(u32, u64); RLIMITS_MAX],
    len: usize,
}

impl Rlimits {
    /// `memory_as`: memory goes to RLIMIT_AS (no memory cgroup); `nproc`: pids goes to
    /// RLIMIT_NPROC (no pids cgroup).
    pub fn plan(limits: &Limits, memory_as: bool, nproc: bool) -> Rlimits {
        let cpu_secs = limits
            .cpu_time
            .map(|d| d.as_secs() + u64::from(d.subsec_nanos() > 0));
        let wanted = [
            (libc::RLIMIT_NOFILE, limits.open_files.map(u64::from)),
            (libc::RLIMIT_FSIZE, limits.file_size),
            (libc::RLIMIT_CPU, cpu_secs),
            (libc::RLIMIT_CORE, Some(0)),
            (libc::RLIMIT_AS, limits.memory.filter(|_| memory_as)),
            (
                libc::RLIMIT_NPROC,
                limits.pids.map(u64::from).filter(|_| nproc),
            ),
        ];
        let mut out = Rlimits::default();
        for (resource, value) in wanted {
            if let Some(v) = value {
                out.items[out.len] = (resource, v.min(hard_limit(resource)));
                out.len += 1;
            }
        }
        out
    }

    pub fn as_slice(&self) -> &[(u32, u64)] {
        &self.items[..self.len]
    }

    pub fn get(&self, resource: u32) -> Option<u64> {
        self.as_slice()
            .iter()
            .find(|(r, _)| *r == resource)
            .map(|(_, v)| *v)
    }

    /// Applies every limit with `setrlimit`. Safe in the child after clone: no allocation,
    /// no locks. On failure: the resource and the errno.
    pub fn apply(&self) -> Result<(), (u32, i32)> {
        for &(resource, value) in self.as_slice() {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            // SAFETY: `lim` is a valid rlimit on the stack for the duration of the call.
            if unsafe { libc::setrlimit(resource, &lim) } != 0 {
                return Err((resource, nix::errno::Errno::last_raw()));
            }
        }
        Ok(())
    }

    /// `(name, value)` pairs for reports.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        self.as_slice().iter().map(|&(r, v)| (name(r), v)).collect()
    }
}

pub fn name(resource: u32) -> &'static str {
    match resource {
        libc::RLIMIT_NOFILE => "RLIMIT_NOFILE",
        libc::RLIMIT_FSIZE => "RLIMIT_FSIZE",
        libc::RLIMIT_CPU => "RLIMIT_CPU",
        libc::RLIMIT_CORE => "RLIMIT_CORE",
        libc::RLIMIT_AS => "RLIMIT_AS",
        libc::RLIMIT_NPROC => "RLIMIT_NPROC",
        _ => "RLIMIT_?",
    }
}

fn hard_limit(resource: u32) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid out pointer for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } == 0 {
        lim.rlim_max
    } else {
        libc::RLIM_INFINITY
    }
}

/// What stands in for a limit no cgroup carries (`what` as in `Dropped::what`).
pub fn stand_in(what: &str) -> Option<String> {
    if what.starts_with("memory ") {
        Some(
            "RLIMIT_AS (each process's address space, not the jail's memory; no oom verdict)"
                .to_owned(),
        )
    } else if what.starts_with("pids ") {
        Some("RLIMIT_NPROC (processes of the jail's uid, counted per user namespace)".to_owned())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    pub fn limits() -> Limits {
        Limits {
            memory: Some(64 << 20),
            cpu: Some(0.5),
            pids: Some(16),
            open_files: Some(64),
            file_size: Some(1 << 20),
            cpu_time: Some(Duration::from_millis(1500)),
            max_message: 1 << 20,
            ..Limits::default()
        }
    }

    #[test]
    fn plain_limits_always_stand_ins_only_without_cgroups() {
        let with_cgroups = Rlimits::plan(&limits(), false, false);
        let names: Vec<_> = with_cgroups.named().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_CPU", "RLIMIT_CORE"]
        );
        assert_eq!(with_cgroups.get(libc::RLIMIT_CPU), Some(2), "rounded up");
        assert_eq!(with_cgroups.get(libc::RLIMIT_CORE), Some(0));

        let none = Rlimits::plan(&limits(), true, true);
        assert_eq!(none.as_slice().len(), RLIMITS_MAX);
        assert_eq!(none.get(libc::RLIMIT_AS), Some(64 << 20));
        assert_eq!(none.get(libc::RLIMIT_NPROC).map(|v| v.min(16)), Some(16));
    }

    #[test]
    fn stand_ins() {
        assert!(stand_in("memory 64M").unwrap().starts_with("RLIMIT_AS"));
        assert!(stand_in("pids 16").unwrap().starts_with("RLIMIT_NPROC"));
        assert_eq!(stand_in("cpu 0.5 cores"), None);
    }
}
