//! Classic cumulative-bucket histograms for the live Prometheus endpoint.
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

/// Upper bounds of histograms of counts (reconnect attempts, polls).
pub const COUNT_BOUNDS: [u64; 10] = [0, 1, 2, 3, 5, 10, 20, 50, 100, 1_000];

/// The bounds a histogram series of `metric` is bucketed by.
pub fn bounds_of(metric: &str) -> &'static [u64] {
    match metric_kind(metric) {
        MetricKind::CountHistogram => &COUNT_BOUNDS,
        _ => &LATENCY_BOUNDS_US,
    }
}

/// One series in one phase: counts per bucket (not cumulative; the last
/// entry is the overflow, above the highest bound), their sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketCounts {
    /// `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
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
                sum: 0.0,
                count: 0,
            })
            .collect();
        Buckets {
            dims,
            bounds,
            series,
        }
    }

    /// Count `h` into the series at flat index `flat`.
    pub(crate) fn add(&mut self, flat: usize, h: &Histogram<u64>) {
        let Some(series) = self.series.get_mut(flat) else {
            return;
        };
        let bounds = self.bounds[flat % self.dims.hists];
        for v in h.iter_recorded() {
            let value = v.value_iterated_to();
            let n = v.count_at_value();
            let bucket = bounds.partition_point(|&bound| bound < value);
            series.counts[bucket] += n;
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
