//! The time series of a [`Summary`] read by metric name: the per-interval
//! sums of counters, gauges and histogram interval stats that the HTML
//! report charts and the capacity estimate ([`super::capacity`]) judge.
//!
//! Interval `i` ends at `series[i].elapsed_s` and starts where interval
//! `i - 1` ended (0 for the first). It belongs to the phase that contains
//! its midpoint. A last interval shorter than [`MIN_LAST_INTERVAL_S`] (the
//! run ended just after a tick) is left out: its counts are in the run's
//! totals, and a rate over a few milliseconds means nothing.

use crate::metrics::{IntervalStats, SeriesDesc};
use crate::report::json::Summary;

/// A last interval shorter than this, in seconds, is left out.
pub const MIN_LAST_INTERVAL_S: f64 = 0.5;

/// Shortest interval width used to turn a count into a rate. The last
/// interval of a run can be a sliver (the run ended between two ticks); a
/// handful of responses in 5 ms is not a rate of thousands per second.
pub const MIN_RATE_WIDTH_S: f64 = 0.25;

/// A summary's time series, addressed by metric name.
pub struct Timeline<'a> {
    pub summary: &'a Summary,
    /// Start of each interval, seconds since the run started.
    pub starts: Vec<f64>,
    /// End of each interval.
    pub ends: Vec<f64>,
    /// Index into `summary.phases` of the phase holding each interval's
    /// midpoint; None outside every phase (e.g. the drain after the plan).
    pub phases: Vec<Option<usize>>,
}

impl<'a> Timeline<'a> {
    pub fn new(summary: &'a Summary) -> Timeline<'a> {
        let mut ends: Vec<f64> = summary.series.iter().map(|p| p.elapsed_s).collect();
        if let [.., before, last] = ends[..] {
            if last - before < MIN_LAST_INTERVAL_S {
                ends.pop();
            }
        }
        let starts: Vec<f64> = std::iter::once(0.0)
            .chain(ends.iter().copied())
            .take(ends.len())
            .collect();
        let phases = starts
            .iter()
            .zip(&ends)
            .map(|(s, e)| {
                let mid = (s + e) / 2.0;
                summary
                    .phases
                    .iter()
                    .position(|p| p.start_s <= mid && mid < p.end_s)
            })
            .collect();
        Timeline {
            summary,
            starts,
            ends,
            phases,
        }
    }

    /// Number of intervals.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Width of interval `i` in seconds, for rates (at least
    /// [`MIN_RATE_WIDTH_S`]).
    pub fn rate_width(&self, i: usize) -> f64 {
        (self.ends[i] - self.starts[i]).max(MIN_RATE_WIDTH_S)
    }

    /// Ids (indices into `layout.counters`) of the counters `keep` selects.
    pub fn counters(&self, keep: impl Fn(&SeriesDesc) -> bool) -> Vec<usize> {
        (self.summary.layout.counters.iter().enumerate())
            .filter(|(_, d)| keep(d))
            .map(|(i, _)| i)
            .collect()
    }

    /// Ids (indices into `layout.hists`) of the histograms `keep` selects.
    pub fn hists(&self, keep: impl Fn(&SeriesDesc) -> bool) -> Vec<usize> {
        (self.summary.layout.hists.iter().enumerate())
            .filter(|(_, d)| keep(d))
            .map(|(i, _)| i)
            .collect()
    }

    /// Ids of every counter of `metric`.
    pub fn counters_of(&self, metric: &str) -> Vec<usize> {
        self.counters(|d| d.metric == metric)
    }

    /// Sum of counters `ids` in interval `i`.
    pub fn count(&self, i: usize, ids: &[usize]) -> u64 {
        let counters = &self.summary.series[i].counters;
        ids.iter()
            .filter_map(|&id| counters.get(id))
            .fold(0, |a, &b| a.saturating_add(b))
    }

    /// Sum of counters `ids` per interval.
    pub fn counts(&self, ids: &[usize]) -> Vec<u64> {
        (0..self.len()).map(|i| self.count(i, ids)).collect()
    }

    /// Sum of counters `ids` per interval, per second.
    pub fn rates(&self, ids: &[usize]) -> Vec<f64> {
        (0..self.len())
            .map(|i| self.count(i, ids) as f64 / self.rate_width(i))
            .collect()
    }

    /// Total of counters `ids` over the run.
    pub fn total(&self, ids: &[usize]) -> u64 {
        self.counts(ids).iter().fold(0, |a, &b| a.saturating_add(b))
    }

    /// Gauge `name` per interval; None when the layout has no such gauge.
    pub fn gauge(&self, name: &str) -> Option<Vec<f64>> {
        let id = self.summary.layout.gauges.iter().position(|g| g == name)?;
        Some(
            self.summary
                .series
                .iter()
                .map(|p| p.gauges.get(id).copied().unwrap_or(0.0))
                .collect(),
        )
    }

    /// Interval stats of histogram `id` in interval `i` (empty when absent).
    pub fn stats(&self, i: usize, id: usize) -> IntervalStats {
        self.summary.series[i]
            .hists
            .get(id)
            .copied()
            .unwrap_or_default()
    }

    /// Per interval, the highest value `pick` reads from the stats of the
    /// histograms `ids` that have samples in it; None where none has.
    pub fn worst(&self, ids: &[usize], pick: impl Fn(&IntervalStats) -> u64) -> Vec<Option<u64>> {
        (0..self.len())
            .map(|i| {
                ids.iter()
                    .map(|&id| self.stats(i, id))
                    .filter(|s| s.count > 0)
                    .map(|s| pick(&s))
                    .max()
            })
            .collect()
    }

    /// Offered load per interval: the increments of the cumulative
    /// `users.arrivals` gauge (journeys started, open or closed model).
    /// None without the gauge.
    pub fn arrivals(&self) -> Option<Vec<f64>> {
        let cumulative = self.gauge("users.arrivals")?;
        let mut last = 0.0;
        Some(
            cumulative
                .into_iter()
                .map(|c| {
                    let n = (c - last).max(0.0);
                    last = c.max(last);
                    n
                })
                .collect(),
        )
    }

    /// Requests a journey sends when every step succeeds, averaged over the
    /// populations in the proportion their journeys started: each
    /// population's first step counts its journeys (dropped arrivals
    /// included), and it has as many steps as it has `http.requests`
    /// series. None when no journey started.
    pub fn requests_per_journey(&self) -> Option<f64> {
        let mut journeys = 0.0;
        let mut requests = 0.0;
        let mut seen: Vec<&str> = Vec::new();
        for entry in self
            .summary
            .counters
            .iter()
            .filter(|c| c.metric == "http.requests")
        {
            if seen.contains(&entry.population.as_str()) {
                continue;
            }
            seen.push(&entry.population);
            let steps = (self.summary.layout.counters.iter())
                .filter(|d| d.metric == "http.requests" && d.population == entry.population)
                .count();
            journeys += entry.total as f64;
            requests += entry.total as f64 * steps as f64;
        }
        (journeys > 0.0).then(|| requests / journeys)
    }
}
