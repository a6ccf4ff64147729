//! `plugjail serve --cpus LIST`: pinning the jail to CPUs.
//!
//! serve pins itself with `sched_setaffinity` before it builds the jail, and the jail's
//! processes inherit the mask (clone copies it). Every CPU listed must be one plugjail may
//! run on now (its own affinity, which the cpuset of its cgroup bounds): an offline or
//! forbidden CPU is refused rather than silently dropped, as the kernel would drop it.
//!
//! This is placement, not a limit: a plugin whose profile allows `sched_setaffinity` (the
//! `@threads` group does) can widen its own mask again, up to what plugjail itself may use.
//! The CPU *share* is the profile's `limits.cpu` (cgroup cpu.max / cfs quota).

use std::io;

/// CPUs a `cpu_set_t` can name.
const SETSIZE: usize = libc::CPU_SETSIZE as usize;

#[derive(Debug, thiserror::Error)]
pub enum CpusError {
    #[error("--cpus {list:?}: {what}; expected CPU numbers and ranges, e.g. 0,2-3")]
    Parse { list: String, what: String },
    #[error("--cpus: CPU {cpu} is not one plugjail may run on here (allowed: {allowed})")]
    NotAllowed { cpu: usize, allowed: String },
    #[error("{syscall}: {source}")]
    Affinity {
        syscall: &'static str,
        source: io::Error,
    },
}

impl CpusError {
    pub fn errno(&self) -> i32 {
        match self {
            CpusError::Parse { .. } | CpusError::NotAllowed { .. } => libc::EINVAL,
            CpusError::Affinity { source, .. } => source.raw_os_error().unwrap_or(0),
        }
    }
}

/// `0,2-3` → [0, 2, 3] (sorted, no duplicates). Empty is an error: pinning to no CPU
/// would be pinning to none.
pub fn parse(list: &str) -> Result<Vec<usize>, CpusError> {
    let bad = |what: String| CpusError::Parse {
        list: list.to_owned(),
        what,
    };
    let num = |s: &str| {
        s.trim()
            .parse::<usize>()
            .map_err(|_| bad(format!("{:?} is not a CPU number", s.trim())))
    };
    let mut out = Vec::new();
    for part in list.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad(format!("{a}-{b} is an empty range")));
                }
                if b >= SETSIZE {
                    return Err(bad(format!("CPU {b} is beyond {}", SETSIZE - 1)));
                }
                out.extend(a..=b);
            }
            None => out.push(num(part)?),
        }
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// The CPUs this thread may run on now.
fn allowed() -> Result<Vec<usize>, CpusError> {
    // SAFETY: all-zero is an empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid out pointer of the size given.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&set), &mut set) } != 0 {
        return Err(CpusError::Affinity {
            syscall: "sched_getaffinity",
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: CPU_ISSET reads the set; every index is below CPU_SETSIZE.
    Ok((0..SETSIZE)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect())
}

/// Pins the calling thread (serve's only one, before it clones the jail) to `cpus`.
pub fn pin(cpus: &[usize]) -> Result<(), CpusError> {
    let allowed = allowed()?;
    // SAFETY: all-zero is an empty cpu_set_t.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        if !allowed.contains(&cpu) {
            return Err(CpusError::NotAllowed {
                cpu,
                allowed: format_list(&allowed),
            });
        }
        // SAFETY: `cpu` is in `allowed`, so below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: `set` is a valid cpu_set_t of the size given.
    if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) } != 0 {
        return Err(CpusError::Affinity {
            syscall: "sched_setaffinity",
            source: io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// [0, 1, 2, 5] → `0-2,5`.
pub fn format_list(cpus: &[usize]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        while i + 1 < cpus.len() && cpus[i + 1] == cpus[i] + 1 {
            i += 1;
        }
        out.push(if cpus[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cpus[i])
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists() {
        assert_eq!(parse("0").unwrap(), [0]);
        assert_eq!(parse("3,0-1, 1").unwrap(), [0, 1, 3]);
        assert!(parse("").is_err());
        assert!(parse("a").is_err());
        assert!(parse("2-1").is_err());
        assert!(parse("0-99999").is_err());
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(format_list(&[]), "");
    }

    #[test]
    fn a_cpu_beyond_the_allowed_ones_is_refused() {
        // Checked before any change: the test thread's affinity stays as it was.
        match pin(&[SETSIZE - 1]) {
            Err(CpusError::NotAllowed { cpu, allowed }) => {
                assert_eq!(cpu, SETSIZE - 1);
                assert!(!allowed.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }
}
