//! Durations as plugjail writes them (`500ms`, `2s`, `10m`): in profiles and in verdicts,
//! by plugjail and by host libraries alike.

use std::time::Duration;

/// The duration units, smallest first, with their length in milliseconds.
pub const DURATION_UNITS: [(&str, u64); 4] =
    [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];

/// The shortest exact spelling of `d` (to the millisecond), as profiles write it.
pub fn format_duration(d: Duration) -> String {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    for (name, factor) in DURATION_UNITS.iter().rev() {
        if ms != 0 && ms.is_multiple_of(*factor) {
            return format!("{}{name}", ms / factor);
        }
    }
    "0ms".to_string()
}
