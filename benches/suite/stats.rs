//! Order statistics over samples in nanoseconds: median, p99, min (and mean, count).

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub n: usize,
    pub median: f64,
    pub p99: f64,
    pub min: f64,
    pub mean: f64,
}

impl Summary {
    /// None for no samples. Percentiles are nearest-rank: p99 of fewer than 100 samples
    /// is the largest one.
    pub fn of(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        // A float has no lossless conversion to an integer: p is in 0..=1, so the rank is
        // in 0..=len, and `as` saturates anything else before the clamp.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = |p: f64| s[((p * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Some(Summary {
            n: s.len(),
            median: rank(0.5),
            p99: rank(0.99),
            min: s[0],
            mean: s.iter().sum::<f64>() / s.len() as f64,
        })
    }

    /// Each figure divided by `unit` (e.g. 1e3 for µs), as JSON.
    pub fn json(&self, unit: f64) -> Value {
        json!({
            "n": self.n,
            "median": round(self.median / unit),
            "p99": round(self.p99 / unit),
            "min": round(self.min / unit),
            "mean": round(self.mean / unit),
        })
    }
}

/// a / b, None when either is missing or b is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Three significant decimals are plenty for timings; keeps the JSON readable.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
