//! [`Totals`]: everything a run recorded, merged per series × phase, plus the
//! time series. Built by the [`super::Aggregator`]; also buildable by hand
//! ([`Totals::new`], [`Totals::merge_hist`], [`Totals::add_counter`]) to
//! rebuild or merge results read back from `summary.json`.

use super::series::SeriesLog;
use super::{merge_into, new_histogram, CounterId, Dims, HistId, Layout, Point, TagFilter};
use hdrhistogram::Histogram;

/// Everything recorded, merged.
#[derive(Debug, Clone)]
pub struct Totals {
    layout: Layout,
    dims: Dims,
    /// Flat `phase * n_hists + id`; `None` until something is merged in.
    hists: Vec<Option<Histogram<u64>>>,
    /// Flat `phase * n_counters + id`.
    counters: Vec<u64>,
    /// One point per interval, in order, compactly.
    series: SeriesLog,
}

impl Totals {
    /// Empty totals for `layout`.
    pub fn new(layout: Layout) -> Totals {
        let dims = Dims::of(&layout);
        Totals {
            hists: (0..dims.phases * dims.hists).map(|_| None).collect(),
            counters: vec![0; dims.phases * dims.counters],
            series: SeriesLog::default(),
            layout,
            dims,
        }
    }
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
    /// Histogram `id`, for one phase or merged over all phases.
    ///
    /// Empty (never `None`) when nothing was recorded or the phase does not
    /// exist.
    pub fn hist(&self, id: HistId, phase: Option<usize>) -> hdrhistogram::Histogram<u64> {
        let mut merged = new_histogram();
        for h in self.hist_parts(id, phase) {
            merge_into(&mut merged, h);
        }
        merged
    }
    pub fn counter(&self, id: CounterId, phase: Option<usize>) -> u64 {
        self.phases(phase)
            .map(|p| self.counters[p * self.dims.counters + id.0 as usize])
            .fold(0, u64::saturating_add)
    }
    /// Merge of every histogram series of `metric` matching `filter`; None when no series matches.
    ///
    /// A filter naming a phase the layout does not have matches nothing.
    pub fn select_hist(
        &self,
        metric: &str,
        filter: &TagFilter,
    ) -> Option<hdrhistogram::Histogram<u64>> {
        if !self.phase_exists(filter.phase) {
            return None;
        }
        let mut merged: Option<Histogram<u64>> = None;
        for (index, desc) in self.layout.hists.iter().enumerate() {
            if desc.metric != metric || !filter.matches(desc) {
                continue;
            }
            let merged = merged.get_or_insert_with(new_histogram);
            for h in self.hist_parts(HistId(index as u32), filter.phase) {
                merge_into(merged, h);
            }
        }
        merged
    }
    /// Sum of every counter of `metric` (of `kind` when given) matching `filter`.
    pub fn sum_counters(&self, metric: &str, kind: Option<&str>, filter: &TagFilter) -> u64 {
        self.select_counters(metric, kind, filter).unwrap_or(0)
    }
    /// Like [`Totals::sum_counters`], but None when no counter series
    /// matches (so "zero" and "nothing to measure" stay apart).
    pub fn select_counters(
        &self,
        metric: &str,
        kind: Option<&str>,
        filter: &TagFilter,
    ) -> Option<u64> {
        if !self.phase_exists(filter.phase) {
            return None;
        }
        let mut sum = None;
        for (index, desc) in self.layout.counters.iter().enumerate() {
            if desc.metric != metric || !filter.matches(desc) {
                continue;
            }
            if kind.is_some_and(|k| desc.kind.as_deref() != Some(k)) {
                continue;
            }
            let value = self.counter(CounterId(index as u32), filter.phase);
            sum = Some(sum.unwrap_or(0u64).saturating_add(value));
        }
        sum
    }
    /// The time series, one point per interval, decoded from its compact
    /// form (a copy: read it once, at the end).
    pub fn series(&self) -> Vec<Point> {
        self.series.points().collect()
    }
    /// Intervals in the time series.
    pub fn series_len(&self) -> usize {
        self.series.len()
    }

    /// Gauge `name`, one value per interval (empty when the layout lacks it).
    pub fn gauge_values(&self, name: &str) -> Vec<f64> {
        let Some(id) = self.layout.gauges.iter().position(|g| g == name) else {
            return Vec::new();
        };
        self.series
            .points()
            .map(|p| p.gauges.get(id).copied().unwrap_or(0.0))
            .collect()
    }

    /// Merge `h` into histogram `id` of `phase` (clamped to the last phase).
    pub fn merge_hist(&mut self, id: HistId, phase: usize, h: &Histogram<u64>) {
        if h.is_empty() {
            return;
        }
        let index = self.dims.hist_index(id, phase);
        merge_into(self.hists[index].get_or_insert_with(new_histogram), h);
    }
    /// Add `n` to counter `id` of `phase` (clamped to the last phase).
    pub fn add_counter(&mut self, id: CounterId, phase: usize, n: u64) {
        let index = self.dims.counter_index(id, phase);
        self.counters[index] = self.counters[index].saturating_add(n);
    }
    /// Append one interval to the time series.
    pub fn push_point(&mut self, point: Point) {
        self.series.push(&point);
    }
    /// Like [`Totals::push_point`], without giving the point up.
    pub(super) fn push_point_ref(&mut self, point: &Point) {
        self.series.push(point);
    }

    /// Merge a flat-indexed histogram (the aggregator's harvest) in.
    pub(super) fn merge_flat(&mut self, index: usize, h: &Histogram<u64>) {
        merge_into(self.hists[index].get_or_insert_with(new_histogram), h);
    }
    /// Add to a flat-indexed counter (the aggregator's harvest).
    pub(super) fn add_flat(&mut self, index: usize, n: u64) {
        self.counters[index] = self.counters[index].saturating_add(n);
    }

    fn phase_exists(&self, phase: Option<usize>) -> bool {
        phase.is_none_or(|p| p < self.dims.phases)
    }
    /// The phases `phase` selects: that one (none if it does not exist), or all.
    fn phases(&self, phase: Option<usize>) -> std::ops::Range<usize> {
        match phase {
            Some(p) if p < self.dims.phases => p..p + 1,
            Some(_) => 0..0,
            None => 0..self.dims.phases,
        }
    }
    /// The stored (non-empty) per-phase histograms of `id` selected by `phase`.
    fn hist_parts(
        &self,
        id: HistId,
        phase: Option<usize>,
    ) -> impl Iterator<Item = &Histogram<u64>> + '_ {
        let n = self.dims.hists;
        self.phases(phase)
            .filter_map(move |p| self.hists[p * n + id.0 as usize].as_ref())
    }
}
