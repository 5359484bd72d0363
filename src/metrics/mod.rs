//! Metrics: per-thread recorders, the interval aggregator, totals, the
//! in-memory time series and the HdrHistogram interval log.
//!
//! Recording never sends a message: every worker thread owns a shard (HDR
//! histograms in microseconds, 3 significant digits, and counters) behind an
//! uncontended lock that the aggregator takes once per interval (1 s) to swap
//! the interval data out. Totals are kept per series × phase; the time series
//! keeps a few numbers per series per interval; interval histograms stream to
//! the `.hlog` file, so memory stays flat as a run gets longer.
//!
//! CONTRACT (stub): helper implements; the public signatures are fixed.

use std::io::Write;
use std::time::{Duration, SystemTime};

/// Highest value a histogram tracks, in microseconds (1 hour); larger
/// values are clamped (saturating record), never dropped.
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// One series of a run: a metric name and its tags.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct SeriesDesc {
    /// e.g. `http.latency`, `http.requests`, `http.errors`.
    pub metric: String,
    /// Population (users / agents group) name; "" when not applicable.
    pub population: String,
    /// Step name; "" when not applicable.
    pub step: String,
    /// For error counters: the error kind (`timeout`, `http_5xx`…); else None.
    pub kind: Option<String>,
}

/// Index of a histogram series in the [`Layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HistId(pub u32);
/// Index of a counter series in the [`Layout`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterId(pub u32);
/// Index of a gauge (a value sampled once per interval, e.g. `generator.cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GaugeId(pub u32);

/// Every series a run records, fixed before it starts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// Phase names, in order; samples carry a phase index into this list.
    pub phases: Vec<String>,
    pub hists: Vec<SeriesDesc>,
    pub counters: Vec<SeriesDesc>,
    /// Gauge names (`generator.cpu`, `users.in_flight`, `users.vus`…).
    pub gauges: Vec<String>,
}

impl Layout {
    pub fn add_hist(&mut self, metric: &str, population: &str, step: &str) -> HistId {
        let _ = (metric, population, step);
        todo!()
    }
    pub fn add_counter(&mut self, metric: &str, population: &str, step: &str, kind: Option<&str>) -> CounterId {
        let _ = (metric, population, step, kind);
        todo!()
    }
    pub fn add_gauge(&mut self, name: &str) -> GaugeId {
        let _ = name;
        todo!()
    }
}

/// The recording handle of a run (cheap to clone; shared by all tasks).
#[derive(Clone)]
pub struct Metrics {}

/// This thread's interval data, locked for the duration of [`Metrics::with`].
pub struct Shard {}

impl Shard {
    /// Record one value (µs) into histogram `id` for `phase`.
    #[inline]
    pub fn record(&mut self, id: HistId, phase: usize, micros: u64) {
        let _ = (id, phase, micros);
        todo!()
    }
    /// Add `n` to counter `id` for `phase`.
    #[inline]
    pub fn add(&mut self, id: CounterId, phase: usize, n: u64) {
        let _ = (id, phase, n);
        todo!()
    }
}

impl Metrics {
    pub fn new(layout: Layout) -> Metrics {
        let _ = layout;
        todo!()
    }
    pub fn layout(&self) -> &Layout {
        todo!()
    }
    /// Run `f` on this thread's shard (one uncontended lock; several runs in
    /// one process each get their own shards).
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let _ = f;
        todo!()
    }
}

/// Tag filter used to select series (SLOs, reports). `None` matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagFilter {
    pub population: Option<String>,
    pub step: Option<String>,
    /// Phase index.
    pub phase: Option<usize>,
}

/// Summary numbers of one histogram series in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntervalStats {
    pub count: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// One interval of the time series.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// Seconds since the run started, at the end of the interval.
    pub elapsed_s: f64,
    /// Index = HistId.
    pub hists: Vec<IntervalStats>,
    /// Index = CounterId; the interval's increments.
    pub counters: Vec<u64>,
    /// Index = GaugeId.
    pub gauges: Vec<f64>,
}

/// Everything recorded, merged.
pub struct Totals {}

impl Totals {
    pub fn layout(&self) -> &Layout {
        todo!()
    }
    /// Histogram `id`, for one phase or merged over all phases.
    pub fn hist(&self, id: HistId, phase: Option<usize>) -> hdrhistogram::Histogram<u64> {
        let _ = (id, phase);
        todo!()
    }
    pub fn counter(&self, id: CounterId, phase: Option<usize>) -> u64 {
        let _ = (id, phase);
        todo!()
    }
    /// Merge of every histogram series of `metric` matching `filter`; None when no series matches.
    pub fn select_hist(&self, metric: &str, filter: &TagFilter) -> Option<hdrhistogram::Histogram<u64>> {
        let _ = (metric, filter);
        todo!()
    }
    /// Sum of every counter of `metric` (of `kind` when given) matching `filter`.
    pub fn sum_counters(&self, metric: &str, kind: Option<&str>, filter: &TagFilter) -> u64 {
        let _ = (metric, kind, filter);
        todo!()
    }
    /// The time series, one point per interval.
    pub fn series(&self) -> &[Point] {
        todo!()
    }
}

/// Swaps shards out once per interval and keeps totals, series and the hlog.
pub struct Aggregator {}

impl Aggregator {
    /// `hlog`: where interval histograms stream (HdrHistogram interval log,
    /// one tag per histogram series), or None.
    pub fn new(metrics: Metrics, hlog: Option<Box<dyn Write + Send>>, started_at: SystemTime) -> Aggregator {
        let _ = (metrics, hlog, started_at);
        todo!()
    }
    /// Close the interval ending at `elapsed` (since start): swap every
    /// shard out, merge into totals, append a point with `gauges`
    /// (index = GaugeId), write hlog entries.
    pub fn tick(&mut self, elapsed: Duration, gauges: &[f64]) -> &Point {
        let _ = (elapsed, gauges);
        todo!()
    }
    pub fn totals(&self) -> &Totals {
        todo!()
    }
    /// Final tick is the caller's job; this flushes the hlog and returns totals.
    pub fn finish(self) -> std::io::Result<Totals> {
        todo!()
    }
}
