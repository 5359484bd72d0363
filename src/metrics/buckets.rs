//! Histogram buckets for the live Prometheus endpoint: classic ones with
//! fixed bounds, and native (exponential, [`NATIVE_SCHEMA`]) ones.
//!
//! Prometheus aggregates histograms across processes by adding bucket
//! counts, which only works when every process uses the same bucket
//! bounds; quantiles computed per process (k6's Prometheus output) cannot
//! be combined at all. So every histogram series of a run is also counted
//! into fixed bounds here: [`LATENCY_BOUNDS_US`] for durations,
//! [`COUNT_BOUNDS`] for histograms of plain counts.
//!
//! The [`super::Aggregator`] feeds [`Buckets`] from each shard's interval
//! histograms as it harvests them (one pass over the recorded values of
//! each, not per sample), so recording costs nothing more. A value lands
//! in the first bucket whose bound is at least its HDR bucket's highest
//! equivalent value: the value a percentile of that histogram reports, so
//! the live buckets and the run's own percentiles read the same numbers.

use super::catalogue::{metric_kind, MetricKind};
use super::{Dims, HistId, Layout};
use hdrhistogram::Histogram;

/// Upper bounds (µs) of the latency buckets: 0.5 ms to 60 s, closer
/// together where latency SLOs usually sit (10 ms – 1 s).
pub const LATENCY_BOUNDS_US: [u64; 27] = [
    500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000, 15_000, 20_000, 30_000, 50_000, 75_000,
    100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000, 750_000, 1_000_000, 1_500_000,
    2_000_000, 3_000_000, 5_000_000, 10_000_000, 60_000_000,
];

/// Schema of the native (exponential) buckets: bucket `i` holds
/// `(2^((i-1)/8), 2^(i/8)]` in the exported unit (seconds, or a count),
/// each about 9 % wide (the Prometheus clients' default resolution).
pub const NATIVE_SCHEMA: i32 = 3;

/// Upper bounds of histograms of counts (reconnect attempts, polls).
pub const COUNT_BOUNDS: [u64; 10] = [0, 1, 2, 3, 5, 10, 20, 50, 100, 1_000];

/// The bounds a histogram series of `metric` is bucketed by.
pub fn bounds_of(metric: &str) -> &'static [u64] {
    match metric_kind(metric) {
        MetricKind::CountHistogram => &COUNT_BOUNDS,
        _ => &LATENCY_BOUNDS_US,
    }
}

/// What a recorded value of `metric` is divided by for export: µs →
/// seconds for durations, 1 for counts.
pub fn divisor_of(metric: &str) -> f64 {
    match metric_kind(metric) {
        MetricKind::CountHistogram => 1.0,
        _ => 1e6,
    }
}

/// The native bucket ([`NATIVE_SCHEMA`]) of `value` (> 0); None for 0,
/// which the zero bucket holds.
pub fn native_index(value: f64) -> Option<i32> {
    (value > 0.0).then(|| (value.log2() * f64::from(1u32 << NATIVE_SCHEMA)).ceil() as i32)
}

/// One series in one phase: counts per bucket (not cumulative; the last
/// entry is the overflow, above the highest bound), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketCounts {
    /// `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Native buckets ([`NATIVE_SCHEMA`]): index → count, only those used.
    pub native: std::collections::BTreeMap<i32, u64>,
    /// Values of 0 (the native zero bucket).
    pub zero: u64,
    /// Sum of the values, in the series' unit (µs or a count), each value
    /// taken at the middle of its HDR bucket.
    pub sum: f64,
    /// Values counted.
    pub count: u64,
}

/// Every histogram series × phase of a run, bucketed (flat storage as in
/// [`super::Totals`]: `phase * n_hists + id`).
#[derive(Debug, Clone)]
pub struct Buckets {
    dims: Dims,
    /// Per histogram series (index = HistId).
    bounds: Vec<&'static [u64]>,
    /// Per histogram series: recorded value → exported unit (1e6 for µs →
    /// seconds, 1 for counts).
    divisors: Vec<f64>,
    series: Vec<BucketCounts>,
}

impl Buckets {
    /// Empty buckets for every histogram series of `layout`.
    pub fn new(layout: &Layout) -> Buckets {
        let dims = Dims::of(layout);
        let bounds: Vec<&'static [u64]> =
            layout.hists.iter().map(|h| bounds_of(&h.metric)).collect();
        let series = (0..dims.phases * dims.hists)
            .map(|flat| BucketCounts {
                counts: vec![0; bounds[flat % dims.hists].len() + 1],
                ..BucketCounts::default()
            })
            .collect();
        let divisors = layout.hists.iter().map(|h| divisor_of(&h.metric)).collect();
        Buckets {
            dims,
            bounds,
            divisors,
            series,
        }
    }

    /// Count `h` into the series at flat index `flat`.
    pub(crate) fn add(&mut self, flat: usize, h: &Histogram<u64>) {
        let Some(series) = self.series.get_mut(flat) else {
            return;
        };
        let bounds = self.bounds[flat % self.dims.hists];
        let divisor = self.divisors[flat % self.dims.hists];
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let n = v.count_at_value();
            let bucket = bounds.partition_point(|&bound| bound < value);
            series.counts[bucket] += n;
            match native_index(value as f64 / divisor) {
                Some(index) => *series.native.entry(index).or_default() += n,
                None => series.zero += n,
            }
            series.sum += h.median_equivalent(value) as f64 * n as f64;
            series.count += n;
        }
    }

    /// The bounds of series `id` and its counts in `phase`.
    pub fn get(&self, id: HistId, phase: usize) -> (&'static [u64], &BucketCounts) {
        let index = self.dims.hist_index(id, phase);
        (self.bounds[id.0 as usize], &self.series[index])
    }

    /// Number of phases (at least 1).
    pub fn phases(&self) -> usize {
        self.dims.phases
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    #[test]
    fn values_land_in_the_first_bucket_at_or_above_them() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "u", "s");
        let mut buckets = Buckets::new(&layout);
        let mut h = new_histogram();
        // 0.4 ms, exactly 1 ms, 1.2 ms, 70 s (overflow).
        for v in [400, 1_000, 1_200, 70_000_000] {
            h.record(v).unwrap();
        }
        buckets.add(0, &h);
        let (bounds, counts) = buckets.get(id, 0);
        assert_eq!(bounds, &LATENCY_BOUNDS_US);
        assert_eq!(counts.count, 4);
        assert_eq!(counts.counts[0], 1, "400 µs ≤ 500 µs");
        assert_eq!(counts.counts[1], 1, "1000 µs ≤ 1 ms (bounds are inclusive)");
        assert_eq!(counts.counts[2], 1, "1.2 ms ≤ 2 ms");
        assert_eq!(counts.counts[LATENCY_BOUNDS_US.len()], 1, "70 s overflows");
        assert_eq!(counts.counts.iter().sum::<u64>(), 4);
        // The sum is exact to HDR precision (3 significant digits).
        let exact = (400 + 1_000 + 1_200 + 70_000_000) as f64;
        assert!((counts.sum - exact).abs() / exact < 1e-3, "{}", counts.sum);
    }

    #[test]
    fn native_buckets_are_exponential_with_upper_bounds_inclusive() {
        // 1 s is 2^0: the upper bound of bucket 0; just above is bucket 1.
        assert_eq!(native_index(1.0), Some(0));
        assert_eq!(native_index(1.01), Some(1));
        assert_eq!(native_index(2.0), Some(8));
        assert_eq!(native_index(0.5), Some(-8));
        assert_eq!(native_index(0.0), None);
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "u", "s");
        let mut buckets = Buckets::new(&layout);
        let mut h = new_histogram();
        h.record_n(1_000, 3).unwrap(); // 1 ms = 2^-9.97 s
        buckets.add(0, &h);
        let (_, counts) = buckets.get(id, 0);
        let bucket = native_index(1e-3).unwrap();
        assert_eq!(counts.native.get(&bucket), Some(&3));
        let upper = 2f64.powf(f64::from(bucket) / 8.0);
        let lower = 2f64.powf(f64::from(bucket - 1) / 8.0);
        assert!(lower < 1e-3 && 1e-3 <= upper, "{lower} {upper}");
        assert_eq!(counts.zero, 0);
    }

    #[test]
    fn every_phase_and_series_counts_apart_and_counts_use_count_bounds() {
        let mut layout = Layout {
            phases: vec!["warm".into(), "peak".into()],
            ..Layout::default()
        };
        let latency = layout.add_hist("http.latency", "u", "s");
        let attempts = layout.add_hist("hub.reconnect.attempts", "a", "");
        let mut buckets = Buckets::new(&layout);
        let dims = Dims::of(&layout);
        let mut h = new_histogram();
        h.record(3).unwrap();
        buckets.add(dims.hist_index(attempts, 1), &h);
        buckets.add(dims.hist_index(latency, 0), &h);
        let (bounds, peak) = buckets.get(attempts, 1);
        assert_eq!(bounds, &COUNT_BOUNDS);
        assert_eq!(peak.counts[3], 1, "3 attempts ≤ 3");
        assert_eq!(buckets.get(attempts, 0).1.count, 0);
        assert_eq!(buckets.get(latency, 0).1.counts[0], 1);
        assert_eq!(buckets.get(latency, 1).1.count, 0);
        assert_eq!(buckets.phases(), 2);
    }
}
