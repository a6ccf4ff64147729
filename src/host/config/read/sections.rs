//! The readers of one plugin's values and sections (`pool`, `restart`, `health`), each
//! reporting its problems and going on, as the profile's readers do.

use std::time::Duration;

use crate::profile::diag::Collector;
use crate::profile::fields::{self, Fields};
use crate::profile::units::format_duration;
use crate::profile::yaml::Node;
use crate::protocol::payload::check_name;

use super::{
    HEALTH_KEYS, MAX_ARENA, MAX_CPU, MAX_ID_LEN, MAX_POOL, MAX_QUEUE, POOL_KEYS, RESTART_KEYS,
    SHM_KEYS,
};
use crate::host::config::{HealthCheck, PoolConfig, RestartConfig, ShmOptions};
use crate::protocol::shm::MAX_SPIN_US;
use crate::protocol::shm::host::MIN_ARENA;

pub fn id(c: &mut Collector, node: &Node) -> Option<String> {
    let id = fields::string(c, node)?;
    let valid = (1..=MAX_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
    if !valid {
        c.error_hint(
            node.pos,
            format!("`{id}` is not a valid plugin id"),
            format!("1 to {MAX_ID_LEN} of a-z, 0-9, `_` and `-`"),
        );
        return None;
    }
    Some(id)
}

pub fn cpus(c: &mut Collector, node: &Node) -> Option<Vec<usize>> {
    let read = fields::list(c, node, |c, n| {
        Some((fields::integer(c, n, 0, MAX_CPU)? as usize, n.pos))
    })?;
    let mut out = Vec::with_capacity(read.len());
    for (cpu, pos) in read {
        if out.contains(&cpu) {
            c.error(pos, format!("CPU {cpu} is listed twice"));
        } else {
            out.push(cpu);
        }
    }
    Some(out)
}

/// A count in `min..=max`; `default` when `key` is absent, None when it is unreadable
/// (so that a comparison with another key is made only between values actually read).
fn count(
    c: &mut Collector,
    f: &Fields,
    key: &str,
    default: usize,
    range: (u32, u32),
) -> Option<usize> {
    match f.get(key) {
        None => Some(default),
        Some(n) => fields::integer(c, n, range.0, range.1).map(|v| v as usize),
    }
}

/// A whole number from 1 to `max`, with a plainer message for 0 than the range (whose
/// end is the type's maximum) would give.
fn at_least_one<T>(c: &mut Collector, node: &Node, key: &str, max: T) -> Option<T>
where
    T: Copy + Default + Into<i128> + TryFrom<i128> + std::fmt::Display,
{
    let n = fields::integer(c, node, T::default(), max)?;
    if n.into() == 0 {
        c.error(node.pos, format!("`{key}` must be at least 1"));
        return None;
    }
    Some(n)
}

pub fn pool(c: &mut Collector, node: &Node) -> PoolConfig {
    let d = PoolConfig::default();
    let Some(f) = Fields::new(c, node, "pool", POOL_KEYS) else {
        return d;
    };
    let warm = count(c, &f, "warm", d.warm, (0, MAX_POOL));
    let max = count(c, &f, "max", d.max, (1, MAX_POOL));
    if let (Some(warm), Some(max)) = (warm, max)
        && warm > max
    {
        let pos = f.get("warm").or(f.get("max")).map_or(f.pos, |n| n.pos);
        c.error_hint(
            pos,
            format!("pool.warm ({warm}) is more than pool.max ({max})"),
            "warm jails count toward max: lower warm or raise max",
        );
    }
    PoolConfig {
        warm: warm.unwrap_or(d.warm),
        max: max.unwrap_or(d.max),
        queue: count(c, &f, "queue", d.queue, (0, MAX_QUEUE)).unwrap_or(d.queue),
        recycle_calls: f.read(c, "recycle_calls", d.recycle_calls, |c, n| {
            at_least_one(c, n, "recycle_calls", u64::MAX).map(Some)
        }),
        recycle_time: f.read(c, "recycle_time", d.recycle_time, |c, n| {
            fields::duration(c, n).map(Some)
        }),
    }
}

pub fn restart(c: &mut Collector, node: &Node) -> RestartConfig {
    let d = RestartConfig::default();
    let Some(f) = Fields::new(c, node, "restart", RESTART_KEYS) else {
        return d;
    };
    let mut duration = |key: &str, default| match f.get(key) {
        None => Some(default),
        Some(n) => fields::duration(c, n),
    };
    let backoff = duration("backoff", d.backoff);
    let backoff_max = duration("backoff_max", d.backoff_max);
    if let (Some(b), Some(m)) = (backoff, backoff_max)
        && b > m
    {
        let pos = f
            .get("backoff")
            .or(f.get("backoff_max"))
            .map_or(f.pos, |n| n.pos);
        c.error_hint(
            pos,
            format!(
                "restart.backoff ({}) is longer than restart.backoff_max ({})",
                format_duration(b),
                format_duration(m)
            ),
            "the delay starts at backoff and doubles up to backoff_max",
        );
    }
    RestartConfig {
        backoff: backoff.unwrap_or(d.backoff),
        backoff_max: backoff_max.unwrap_or(d.backoff_max),
        budget: f.read(c, "budget", d.budget, |c, n| {
            at_least_one(c, n, "budget", u32::MAX)
        }),
        window: f.read(c, "window", d.window, fields::duration),
    }
}

pub fn health(c: &mut Collector, node: &Node) -> Option<HealthCheck> {
    let f = Fields::new(c, node, "health", HEALTH_KEYS)?;
    let input = f.read(c, "input", String::new(), fields::string);
    let Some(m) = f.get("method") else {
        c.error_hint(
            node.pos,
            "`health` has no `method`",
            "for example `{method: greet, input: \"ping\"}`",
        );
        return None;
    };
    let method = fields::string(c, m)?;
    if check_name(method.as_bytes()).is_none() {
        c.error_hint(
            m.pos,
            format!("{method:?} is not a valid method name"),
            "1 to 255 bytes, no control characters",
        );
        return None;
    }
    Some(HealthCheck {
        method,
        input: input.into_bytes(),
    })
}

/// `shm`: shared-memory calls. `shm: {}` takes every default.
pub fn shm(c: &mut Collector, node: &Node) -> Option<ShmOptions> {
    let d = ShmOptions::default();
    let f = Fields::new(c, node, "shm", SHM_KEYS)?;
    let spin = f.read(c, "spin_us", d.spin, |c, n| {
        fields::integer(c, n, 0, MAX_SPIN_US).map(|us| Duration::from_micros(us.into()))
    });
    let arena = f.read(c, "arena", d.arena, |c, n| {
        let bytes = fields::size(c, n)?;
        if !(MIN_ARENA as u64..=MAX_ARENA).contains(&bytes) {
            c.error_hint(
                n.pos,
                format!("an arena of {bytes} bytes is out of range"),
                format!("from {}K to {}M", MIN_ARENA >> 10, MAX_ARENA >> 20),
            );
            return None;
        }
        usize::try_from(bytes).ok()
    });
    Some(ShmOptions {
        spin,
        arena,
        scrub_inputs: f.read(c, "scrub_inputs", d.scrub_inputs, fields::boolean),
    })
}
