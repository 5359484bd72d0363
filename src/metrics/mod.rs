//! Metrics: per-thread recorders, the interval aggregator, totals, the
//! in-memory time series and the HdrHistogram interval log.
//!
//! Recording never sends a message: every worker thread owns a shard (HDR
//! histograms in microseconds, 3 significant digits, and counters) behind an
//! uncontended lock that the aggregator takes once per interval (1 s) to swap
//! the interval data out. Totals are kept per series × phase; the time series
//! keeps a few numbers per series per interval, compactly (~0.2 KiB a second
//! for a run of 15 histogram series and 46 counters: `series`); interval
//! histograms stream to the `.hlog` file, so memory stays nearly flat as a
//! run gets longer.
//!
//! # Layout
//! - [`Layout`]: every series of a run (histograms, counters, gauges) and the
//!   phase names, fixed before the run starts; series are addressed by index
//!   ([`HistId`], [`CounterId`], [`GaugeId`]) so the hot path never hashes a name.
//! - `recorder`: [`Metrics`] (the shared handle) and [`Shard`] (one thread's
//!   interval data). `metrics.with(|s| s.record(id, phase, micros))`.
//! - `aggregator`: [`Aggregator`], which harvests every shard once per
//!   interval into [`Totals`] and a [`Point`] of the time series.
//! - `totals`: [`Totals`], everything recorded, merged; queried by id or by
//!   metric name and [`TagFilter`].
//! - `series`: the time series as [`Totals`] holds it, a few bytes per
//!   series per interval (varints in fixed blocks), decoded when read.
//! - `hlog`: the HdrHistogram interval log writer; tag format in [`hlog_tag`].
//! - [`process`]: the generator process as the OS sees it: run-queue
//!   delay, CPU used, CPUs allowed (affinity, cgroup quota).
//! - [`buckets`]: classic and native buckets of every histogram series,
//!   for the live Prometheus endpoint.
//! - [`catalogue`]: the known metric names, their kinds, stats and units
//!   (read by the SLOs and the reports).
//!
//! # Storage indices
//! Histograms and counters of a shard or of the totals are stored flat, at
//! `phase * n_series + id`, where `n_series` is the number of histogram (or
//! counter) series of the layout. A layout without phases behaves as one with
//! a single unnamed phase 0.

mod aggregator;
pub mod buckets;
pub mod catalogue;
mod hlog;
pub mod process;
mod recorder;
mod series;
mod totals;

pub use aggregator::Aggregator;
pub use buckets::Buckets;
pub use hlog::{hlog_tag, HlogFailure, HlogInterval, HlogReadError, HlogReader, HlogWriter};
pub use recorder::{Metrics, Shard};
pub use totals::Totals;

use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

/// Highest value a histogram tracks, in microseconds (1 hour); larger
/// values are clamped (saturating record), never dropped.
pub const MAX_TRACKABLE_US: u64 = 3_600_000_000;

/// Significant decimal digits every histogram keeps.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty histogram with the bounds every series uses (1 µs ..
/// [`MAX_TRACKABLE_US`], 3 significant digits), so any two merge exactly.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_TRACKABLE_US, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Decode one HdrHistogram V2 encoding, plain or deflated, read from a
/// file (`metrics.hlog`, the `hdr` fields of `summary.json`).
///
/// The `hdrhistogram` crate allocates the payload length a header states
/// before it reads the payload, so a corrupt header (up to 4 GiB) would run
/// out of memory. Here the deflated form is inflated first and the stated
/// length checked against the bytes actually there; the error is the
/// crate's `DeserializeError` (Debug form) or says what is wrong.
pub fn decode_histogram(
    deserializer: &mut Deserializer,
    raw: &[u8],
) -> Result<Histogram<u64>, String> {
    use std::io::Read as _;
    /// The V2 cookies (`0x1c849303` / `0x1c849304`, word size 8 | 0x10).
    const V2: u32 = 0x1c84_9313;
    const V2_DEFLATE: u32 = 0x1c84_9314;
    /// Cookie, payload length, normalizing offset, digits, low, high, ratio.
    const HEADER: usize = 40;
    let word = |bytes: &[u8], at: usize| {
        let word = bytes.get(at..at + 4)?;
        Some(u32::from_be_bytes([word[0], word[1], word[2], word[3]]) as usize)
    };
    let inflated;
    let plain = if word(raw, 0) == Some(V2_DEFLATE as usize) {
        let len = word(raw, 4).ok_or("cut short in the header")?;
        let data = raw.get(8..).unwrap_or_default();
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&data[..len.min(data.len())])
            .read_to_end(&mut out)
            .map_err(|e| format!("the deflated histogram does not inflate: {e}"))?;
        if word(&out, 0) != Some(V2 as usize) {
            return Err("InvalidCookie".into());
        }
        inflated = out;
        &inflated[..]
    } else {
        raw
    };
    if word(plain, 0) == Some(V2 as usize) {
        let stated = word(plain, 4).unwrap_or(0);
        let there = plain.len().saturating_sub(HEADER);
        if stated > there {
            return Err(format!(
                "the header states a payload of {stated} bytes, {there} follow"
            ));
        }
        if plain
            .get(HEADER..HEADER + stated)
            .is_some_and(holds_min_zigzag)
        {
            return Err("a count or run of zeros out of range".into());
        }
    }
    deserializer
        .deserialize(&mut &plain[..])
        .map_err(|e| format!("{e:?}"))
}

/// Whether a V2 payload holds the varint `u64::MAX`, whose zig-zag
/// decoding `i64::MIN` the hdrhistogram crate negates (an overflow: a panic
/// where overflow checks are on). Its varints: up to eight bytes of 7 bits
/// with the high bit as continuation, then a ninth of 8 bits.
fn holds_min_zigzag(payload: &[u8]) -> bool {
    let mut at = 0;
    while at < payload.len() {
        let mut value = 0u64;
        let mut len = 0;
        loop {
            let Some(&b) = payload.get(at + len) else {
                // Cut short: the crate refuses it.
                return false;
            };
            if len == 8 {
                value |= u64::from(b) << 56;
                len += 1;
                break;
            }
            value |= u64::from(b & 0x7f) << (7 * len);
            len += 1;
            if b & 0x80 == 0 {
                break;
            }
        }
        if value == u64::MAX {
            return true;
        }
        at += len;
    }
    false
}

/// Add `source` into `target`. Every histogram here is built by
/// [`new_histogram`], so the bucket layouts match and addition cannot fail;
/// should a foreign histogram (e.g. decoded from a file) exceed the range,
/// its values are clamped rather than lost.
pub(crate) fn merge_into(target: &mut Histogram<u64>, source: &Histogram<u64>) {
    if target.add(source).is_err() {
        for value in source.iter_recorded() {
            target.saturating_record_n(value.value_iterated_to(), value.count_at_value());
        }
    }
}

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
    /// Histogram series; index = [`HistId`].
    pub hists: Vec<SeriesDesc>,
    /// Counter series; index = [`CounterId`].
    pub counters: Vec<SeriesDesc>,
    /// Gauge names (`generator.cpu`, `users.in_flight`, `users.vus`…).
    pub gauges: Vec<String>,
}

impl Layout {
    /// Add a histogram series (values in µs) and return its id.
    pub fn add_hist(&mut self, metric: &str, population: &str, step: &str) -> HistId {
        self.hists.push(SeriesDesc {
            metric: metric.to_owned(),
            population: population.to_owned(),
            step: step.to_owned(),
            kind: None,
        });
        HistId(index_u32(self.hists.len() - 1))
    }
    /// Add a counter series and return its id.
    pub fn add_counter(
        &mut self,
        metric: &str,
        population: &str,
        step: &str,
        kind: Option<&str>,
    ) -> CounterId {
        self.counters.push(SeriesDesc {
            metric: metric.to_owned(),
            population: population.to_owned(),
            step: step.to_owned(),
            kind: kind.map(str::to_owned),
        });
        CounterId(index_u32(self.counters.len() - 1))
    }
    /// Add a gauge and return its id.
    pub fn add_gauge(&mut self, name: &str) -> GaugeId {
        self.gauges.push(name.to_owned());
        GaugeId(index_u32(self.gauges.len() - 1))
    }
    /// Index of phase `name`, if the layout has it.
    pub fn phase_index(&self, name: &str) -> Option<usize> {
        self.phases.iter().position(|p| p == name)
    }
}

fn index_u32(index: usize) -> u32 {
    u32::try_from(index).expect("fewer than 2^32 series")
}

/// Sizes of the flat storage of a layout (see "Storage indices" above).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Dims {
    /// Number of phases, at least 1.
    pub phases: usize,
    /// Number of histogram series.
    pub hists: usize,
    /// Number of counter series.
    pub counters: usize,
}

impl Dims {
    pub fn of(layout: &Layout) -> Dims {
        Dims {
            phases: layout.phases.len().max(1),
            hists: layout.hists.len(),
            counters: layout.counters.len(),
        }
    }
    /// Flat index of histogram `id` in `phase`. A phase past the last one is
    /// counted in the last phase (a caller bug, but data is never dropped).
    #[inline]
    pub fn hist_index(&self, id: HistId, phase: usize) -> usize {
        debug_assert!(phase < self.phases, "phase {phase} out of range");
        phase.min(self.phases - 1) * self.hists + id.0 as usize
    }
    /// Flat index of counter `id` in `phase` (same clamping as hists).
    #[inline]
    pub fn counter_index(&self, id: CounterId, phase: usize) -> usize {
        debug_assert!(phase < self.phases, "phase {phase} out of range");
        phase.min(self.phases - 1) * self.counters + id.0 as usize
    }
}

/// Tag filter used to select series (SLOs, reports). `None` matches all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TagFilter {
    /// Population name, exact match.
    pub population: Option<String>,
    /// Step name, exact match.
    pub step: Option<String>,
    /// Phase index.
    pub phase: Option<usize>,
}

impl TagFilter {
    /// Whether `desc`'s population and step match (the phase is not part of
    /// a series; it selects which per-phase totals are read).
    pub fn matches(&self, desc: &SeriesDesc) -> bool {
        self.population
            .as_ref()
            .is_none_or(|p| *p == desc.population)
            && self.step.as_ref().is_none_or(|s| *s == desc.step)
    }
}

/// Summary numbers of one histogram series in one interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntervalStats {
    /// Samples recorded in the interval.
    pub count: u64,
    /// Percentiles and maximum, µs (0 when count is 0).
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

impl IntervalStats {
    /// The stats of `h` (all zero for an empty histogram).
    pub fn of(h: &Histogram<u64>) -> IntervalStats {
        if h.is_empty() {
            return IntervalStats::default();
        }
        IntervalStats {
            count: h.len(),
            p50: h.value_at_quantile(0.50),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        }
    }
}

/// One interval of the time series.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
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
