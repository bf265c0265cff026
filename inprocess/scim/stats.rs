//! Durations in ms and their summary.

use super::*;

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn summary(values: &[f64]) -> String {
    format!(
        "median {:>8.2} ms  p90 {:>8.2} ms  max {:>8.2} ms  (n={})",
        median(values),
        percentile(values, 90.0),
        max(values),
        values.len()
    )
}
