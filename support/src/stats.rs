//! Latency statistics: medians and nearest-rank percentiles of samples (ms), and HDR
//! histograms of microseconds with their p50/p90/p99/max in ms.

use hdrhistogram::Histogram;

/// The median of `values` (the mean of the middle two of an even count); NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The nearest-rank `p`th percentile of `values` (any order); NaN when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    percentile_of_sorted(&v, p)
}

/// [`percentile`] of values already sorted ascending.
pub fn percentile_of_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The largest of `values`; NaN when empty.
pub fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NAN, f64::max)
}

/// A histogram of 1 µs … 10 min, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, 600_000_000, 3) {
        Ok(h) => h,
        // Constant bounds that hdrhistogram accepts: this cannot happen.
        Err(e) => panic!("histogram bounds: {e}"),
    }
}

/// The figures of a histogram of µs, in ms.
#[derive(Clone, Debug, Default)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    pub count: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Self {
        let ms = |v: u64| v as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
            mean: h.mean() / 1000.0,
            count: h.len(),
        }
    }

    /// `p50 / p90 / p99`.
    pub fn render(&self) -> String {
        format!("{:.2} / {:.2} / {:.2}", self.p50, self.p90, self.p99)
    }
}
