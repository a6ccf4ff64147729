//! Sizes (`64M`), durations (`2s`) and errno names as profiles write them.

use std::time::Duration;

const SIZE_UNITS: [(&str, u64); 5] = [
    ("T", 1 << 40),
    ("G", 1 << 30),
    ("M", 1 << 20),
    ("K", 1 << 10),
    ("", 1),
];

/// Parses a byte size: a whole number with an optional binary suffix `K`, `M`, `G`, `T`
/// (also written `KiB`, `MiB`, …, or with a trailing `B`).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, suffix) = t.split_at(digits_end);
    if number.is_empty() {
        return Err(format!("`{text}` is not a size"));
    }
    let unit = suffix
        .strip_suffix("iB")
        .or_else(|| suffix.strip_suffix('B'));
    let unit = unit.unwrap_or(suffix);
    let Some(&(_, factor)) = SIZE_UNITS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(unit))
    else {
        return Err(format!("`{text}` has an unknown size unit `{suffix}`"));
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    n.checked_mul(factor)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// The shortest exact spelling of `bytes` that [`parse_size`] reads back.
pub fn format_size(bytes: u64) -> String {
    for (name, factor) in SIZE_UNITS {
        if factor > 1 && bytes != 0 && bytes.is_multiple_of(factor) {
            return format!("{}{name}", bytes / factor);
        }
    }
    bytes.to_string()
}

pub use crate::protocol::units::{DURATION_UNITS, format_duration};

/// Parses a duration: a number followed by `ms`, `s`, `m` or `h` (`500ms`, `2s`, `1.5m`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit; write for example `{t}s` or `{t}ms`"))?;
    let (number, unit) = t.split_at(split);
    let Some(&(_, millis)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit) else {
        return Err(format!(
            "`{text}` has an unknown duration unit `{unit}` (use ms, s, m or h)"
        ));
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration"))?;
    let total_ms = n * millis as f64;
    if !total_ms.is_finite() || total_ms > 1e12 {
        return Err(format!("`{text}` is too long"));
    }
    if total_ms.fract() != 0.0 {
        return Err(format!("`{text}` is finer than a millisecond"));
    }
    // A float has no lossless conversion to an integer; this one is a whole number in
    // 0..=10^12 (only digits and `.` were parsed, then checked above), which u64 holds
    // exactly.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let ms = total_ms as u64;
    Ok(Duration::from_millis(ms))
}

/// The errno values a seccomp `errno` default action may return.
pub const ERRNOS: [(&str, i32); 5] = [
    ("EPERM", libc::EPERM),
    ("EACCES", libc::EACCES),
    ("ENOSYS", libc::ENOSYS),
    ("EINVAL", libc::EINVAL),
    ("EOPNOTSUPP", libc::EOPNOTSUPP),
];

pub fn errno_name(value: i32) -> Option<&'static str> {
    ERRNOS.iter().find(|(_, v)| *v == value).map(|(n, _)| *n)
}

pub fn errno_value(name: &str) -> Option<i32> {
    ERRNOS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(
            parse_size("64Q"),
            Err("`64Q` has an unknown size unit `Q`".to_string())
        );
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(format_size(64 << 20), "64M");
        assert_eq!(format_size(1000), "1000");
        assert_eq!(format_size(0), "0");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2").unwrap_err().contains("no unit"));
        assert!(parse_duration("2 days").is_err());
        assert!(parse_duration("0.5ms").is_err());
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(format_duration(Duration::from_secs(7200)), "2h");
    }

    #[test]
    fn errnos_round_trip() {
        for (name, value) in ERRNOS {
            assert_eq!(errno_value(name), Some(value));
            assert_eq!(errno_name(value), Some(name));
        }
    }
}
