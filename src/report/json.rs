//! `summary.json`: the machine-readable result of a run — metadata, phases,
//! every histogram (summary numbers plus the lossless HdrHistogram V2
//! encoding), every counter, the time series and the SLO verdicts. Other
//! reports (`report`, `compare`, `merge`) are rebuilt from this file.
//!
//! # Schema (version 1)
//!
//! Top level:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `schema_version` | integer | `1`; readers refuse other versions |
//! | `meta` | object | the run, see [`RunMeta`] below |
//! | `phases` | array | phases that ran: `{ "name", "start_s", "end_s", "model" }`, seconds since the start; `model` (phases with users) `"open"` (latency from the intended start) or `"closed"` (from the actual send) |
//! | `layout` | object | every series: `{ "phases": [name], "hists": [series], "counters": [series], "gauges": [name] }`; a series is `{ "metric", "population", "step", "kind" }` (`""` / `null` when not applicable) |
//! | `histograms` | array | see below |
//! | `counters` | array | see below |
//! | `series` | array | one point per interval (1 s): `{ "elapsed_s", "hists": [{ "count", "p50", "p95", "p99", "max" }], "counters": [increment], "gauges": [value] }`, arrays indexed like `layout.hists` / `layout.counters` / `layout.gauges` |
//! | `disruptions` | array | (when any) waves of lost agents: `{ "ordinal", "phase", "cause", "action", "at_unix_us", "lost", "recovered_fraction", "back_unix_us": [µs] }`, `cause` one of `drop`, `server`, `action` (with `action`, its name), `detected`; see `engine::records::Disruption` |
//! | `actions` | array | (when any) fault actions: `{ "name", "phase", "kind", "at_unix_us", "duration_us", "exit_status" \| "http_status", "ok", "error", "output" }`, see `engine::records::ActionRecord` |
//! | `http_disruptions` | array | (when any) HTTP error bursts: `{ "phase", "cause", "action", "start_s", "bad_s", "recovery_s" }` (`recovery_s` `null`: not recovered), see `slo::recovery` |
//! | `commands` | object | (segmented hub runs) `{ "sent": [{ "id", "commander", "phase", "sent_unix_us", "expected" }], "received": [{ "id", "count", "last_unix_us" }] }`, see `engine::records::CommandLog` |
//! | `generator` | object | the generator's health: `{ "mode": "warn" \| "error" \| "fail", "figures": { "wall_s", "cpu_s", "cpus_allowed", "cpus_affinity", "cpu_quota", "run_queue_s", "slices", "lag_p99_us", "latency_p50_us", "latency_mean_us", "service_mean_us", "arrivals", "dropped", "queued_peak", "max_in_flight" }, "causes": [{ "kind", "figure", "threshold", "fix", "segment" }], "segments": [{ "segment", "figures", "causes" }] }`; `causes` empty: healthy; a merged result has `segments` instead of `figures`; see `report::generator` |
//! | `verdicts` | array | one per SLO: `{ "slo": { "key", "target", "metric", "population", "step", "phase", "stat", "op", "threshold" }, "measured", "measured_text", "pass" }`; `measured` is `null` when there was no data; units of `threshold` / `measured`: µs, a fraction (error rate), per second, or a count |
//!
//! `meta`:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `name` | string | scenario name |
//! | `scenario_path` | string | the scenario file as given |
//! | `scenario_hash` | string | hex SHA-256 of the scenario file |
//! | `stampede_version` | string | version that ran it |
//! | `started_at`, `ended_at` | string | RFC 3339, UTC |
//! | `duration_s` | number | measured length of the run, seconds |
//! | `host` | string | host name of the load generator |
//! | `command_line` | array of strings | the command, secrets redacted |
//! | `seed` | integer | random seed |
//! | `interrupted` | bool | the run was cut short (Ctrl-C) |
//! | `exit_code` | integer | the process exit code |
//! | `notes` | array of strings | warnings, e.g. generator saturated, closed-model latency |
//! | `segment` | object | (segmented runs) `{ "index", "count" }`, 0-based |
//! | `start_at` | string | (when given) the common start, RFC 3339 |
//! | `merged` | object | (merged results) `{ "count", "sources": [{ "segment", "host", "started_at", "dir", "interrupted", "exit_code", "clock" }], "missing": [index], "hosts_differ" }`; a source's `clock` is its `meta.clock` (when measured) |
//! | `clock` | object | (runs with a hub whose heartbeat acks carry its time `ts`) this process's clock offset against the hub: `{ "offset_ms", "uncertainty_ms", "rtt_min_ms", "samples", "against" }`; `offset_ms` = the hub's clock − this process's (positive: the hub is ahead), from the ack with the smallest round trip, true within ± `uncertainty_ms` (half that round trip plus `ts`'s resolution); see `engine::hub::clock` |
//!
//! `histograms[]` — one entry per histogram series per phase, plus one with
//! `"phase": null` merging all phases; series × phase combinations without a
//! sample are left out. Values are microseconds.
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `id` | integer | index into `layout.hists` |
//! | `metric`, `population`, `step` | string | the series |
//! | `phase` | string or null | phase name; `null` = all phases |
//! | `count` | integer | samples |
//! | `min`, `max` | integer | µs |
//! | `mean` | number | µs |
//! | `p50`, `p90`, `p95`, `p99`, `p99_9` | integer | µs (highest equivalent value, 3 significant digits) |
//! | `hdr` | string | base64 (standard alphabet, padded) of the histogram in HdrHistogram V2 form, uncompressed (`V2Serializer`); `hdrhistogram::serialization::Deserializer` (or any HdrHistogram implementation) decodes it back to the exact histogram — see [`decode_histogram`] |
//!
//! `counters[]` — one entry per counter series:
//!
//! | field | type | meaning |
//! |---|---|---|
//! | `id` | integer | index into `layout.counters` |
//! | `metric`, `population`, `step` | string | the series |
//! | `kind` | string or null | error kind for error counters |
//! | `total` | integer | over the whole run |
//! | `phases` | object | phase name → count in that phase (every phase of the layout) |

use crate::engine::records::{ActionRecord, ClockOffset, CommandLog, Disruption};
use crate::metrics::{CounterId, HistId, Layout, Point, Totals};
use crate::plan::Segment;
use crate::slo::{PhaseSpan, Verdict};
use anyhow::Context as _;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The schema version this module writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The end of the note a segment's result carries (`segment i/n …`);
/// a merge leaves it out of the merged notes.
pub const SEGMENT_NOTE: &str =
    "of a split run: its numbers are its share; `stampede merge` gives the whole";

/// File name of the summary inside a result directory.
pub const FILE_NAME: &str = "summary.json";

/// The whole of `summary.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    pub meta: RunMeta,
    /// Phases that ran, on the run's timeline.
    pub phases: Vec<PhaseEntry>,
    /// Every series of the run; ids in `histograms`, `counters` and
    /// `series` index into it.
    pub layout: Layout,
    pub histograms: Vec<HistogramEntry>,
    pub counters: Vec<CounterEntry>,
    /// The time series, one point per interval.
    pub series: Vec<Point>,
    pub verdicts: Vec<Verdict>,
    /// Waves of lost agents and when each agent came back (merging
    /// segments recomputes `hub.recovery` from them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disruptions: Vec<Disruption>,
    /// A segmented run's commands and receipts (merging segments recomputes
    /// `hub.command.fanout` across them); None otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<CommandLog>,
    /// The fault actions run (segment 0's in a segmented run; a merge
    /// keeps them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<ActionRecord>,
    /// HTTP error bursts and their recovery (`http.recovery`; a merge
    /// computes them again on the merged series).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub http_disruptions: Vec<crate::slo::recovery::HttpDisruption>,
    /// The generator's health: its figures and why it is flagged (see
    /// [`super::generator`]); None in results written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<super::generator::GeneratorHealth>,
}

/// About the run (filled in by the caller).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunMeta {
    /// Scenario name.
    pub name: String,
    /// The scenario file as given on the command line.
    pub scenario_path: String,
    /// Hex SHA-256 of the scenario file.
    pub scenario_hash: String,
    pub stampede_version: String,
    /// RFC 3339, UTC.
    pub started_at: String,
    /// RFC 3339, UTC.
    pub ended_at: String,
    /// Measured length of the run, seconds.
    pub duration_s: f64,
    /// Host name of the load generator.
    pub host: String,
    /// The command, already redacted.
    pub command_line: Vec<String>,
    pub seed: u64,
    /// Cut short (Ctrl-C); the results cover what ran.
    pub interrupted: bool,
    pub exit_code: i32,
    /// Warnings for the reader (generator saturated, closed-model latency…).
    pub notes: Vec<String>,
    /// The share this process played (`--segment i/n`); None for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<Segment>,
    /// The common start it was given (`--start-at`), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// A merged result: what it was merged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedFrom>,
    /// This process's clock offset against the hub, measured from the
    /// heartbeat acks that carry the hub's time; None without a hub, when
    /// its acks carry no `ts`, and in a merged result (its sources have
    /// theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}

/// Where a merged result came from (`stampede merge`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergedFrom {
    /// The segment count every input declared.
    pub count: u32,
    /// One entry per segment merged, in segment order.
    pub sources: Vec<MergedSource>,
    /// Segments missing from the inputs: the result is partial.
    pub missing: Vec<u32>,
    /// The segments ran on more than one host, so cross-segment latencies
    /// (command delivery and fan-out, recovery) include the hosts' clock
    /// skew (the merge's note bounds it by the sources' `clock` offsets).
    pub hosts_differ: bool,
}

/// How the note of a partial merge (a segment missing) begins; reports
/// that show it as a banner of their own leave the note out.
pub const PARTIAL_NOTE: &str = "PARTIAL RESULT";

impl MergedFrom {
    /// The missing segments as `i/n`, e.g. `1/3, 2/3`; None when complete.
    pub fn missing_text(&self) -> Option<String> {
        (!self.missing.is_empty()).then(|| {
            (self.missing.iter())
                .map(|i| format!("{i}/{}", self.count))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }
}

impl MergedFrom {
    /// The segments as a table for people (console, Markdown, HTML): a
    /// header row, then per segment its `i/n`, host, start, clock offset
    /// against the hub (`+0.412 ms ±0.650 ms`, or `not measured`) and exit
    /// code (`3 (interrupted)`).
    pub fn sources_table(&self) -> Vec<[String; 5]> {
        let header = ["segment", "host", "started", "clock vs hub", "exit code"].map(String::from);
        let rows = self.sources.iter().map(|s| {
            [
                s.segment.to_string(),
                s.host.clone(),
                s.started_at.clone(),
                s.clock
                    .as_ref()
                    .map_or_else(|| "not measured".to_string(), ClockOffset::text),
                if s.interrupted {
                    format!("{} (interrupted)", s.exit_code)
                } else {
                    s.exit_code.to_string()
                },
            ]
        });
        std::iter::once(header).chain(rows).collect()
    }
}

/// One segment of a merged result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MergedSource {
    pub segment: Segment,
    pub host: String,
    pub started_at: String,
    /// The result directory it was read from, as given.
    pub dir: String,
    pub interrupted: bool,
    pub exit_code: i32,
    /// Its clock offset against the hub (its `meta.clock`), when measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock: Option<ClockOffset>,
}

/// A phase on the run's timeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseEntry {
    pub name: String,
    /// Seconds since the run started.
    pub start_s: f64,
    pub end_s: f64,
    /// Its user load's model, which says what its latencies count from:
    /// open (the intended start) or closed (the actual send); None without
    /// user load (and in results written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PhaseModel>,
}

/// The user model of a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseModel {
    /// Arrivals at a rate: latency from the intended start (corrected for
    /// coordinated omission).
    Open,
    /// VUs looping: latency from the actual send.
    Closed,
}

/// What latencies count from, said in the reports' headers.
pub const FROM_INTENDED_START: &str = "from the intended start";
/// The closed model's.
pub const FROM_ACTUAL_SEND: &str = "from the actual send";

impl Summary {
    /// What the run's `http.latency` counts from: [`FROM_INTENDED_START`]
    /// (open-model phases, or not recorded), [`FROM_ACTUAL_SEND`] (every
    /// phase with users is closed), or, mixed, which phases are which.
    pub fn latency_from(&self) -> String {
        let names = |model: PhaseModel| -> Vec<&str> {
            (self.phases.iter())
                .filter(|p| p.model == Some(model))
                .map(|p| p.name.as_str())
                .collect()
        };
        let (open, closed) = (names(PhaseModel::Open), names(PhaseModel::Closed));
        match (open.is_empty(), closed.is_empty()) {
            (_, true) => FROM_INTENDED_START.to_string(),
            (true, false) => FROM_ACTUAL_SEND.to_string(),
            (false, false) => format!(
                "{FROM_INTENDED_START} in open-model phases ({}), {FROM_ACTUAL_SEND} in closed-model phases ({})",
                open.join(", "),
                closed.join(", ")
            ),
        }
    }

    /// Record each phase's model (by name; phases not named keep theirs).
    pub fn set_models(&mut self, model: impl Fn(&str) -> Option<PhaseModel>) {
        for phase in &mut self.phases {
            if let Some(m) = model(&phase.name) {
                phase.model = Some(m);
            }
        }
    }
}

/// One histogram series in one phase (or all phases).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramEntry {
    /// Index into `layout.hists`.
    pub id: u32,
    pub metric: String,
    pub population: String,
    pub step: String,
    /// Phase name; None = merged over all phases.
    pub phase: Option<String>,
    pub count: u64,
    /// Values in µs.
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p95: u64,
    pub p99: u64,
    pub p99_9: u64,
    pub max: u64,
    /// Base64 of the HdrHistogram V2 (uncompressed) encoding; see [`decode_histogram`].
    pub hdr: String,
}

/// One counter series.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CounterEntry {
    /// Index into `layout.counters`.
    pub id: u32,
    pub metric: String,
    pub population: String,
    pub step: String,
    pub kind: Option<String>,
    pub total: u64,
    /// Phase name → count in that phase.
    pub phases: BTreeMap<String, u64>,
}

/// Assemble the summary of a finished (or interrupted) run.
pub fn build(
    meta: RunMeta,
    phases: &[PhaseSpan],
    totals: &Totals,
    verdicts: &[Verdict],
) -> Summary {
    let layout = totals.layout();
    let mut histograms = Vec::new();
    for (index, desc) in layout.hists.iter().enumerate() {
        let id = HistId(index as u32);
        let per_phase = layout
            .phases
            .iter()
            .enumerate()
            .map(|(p, name)| (Some(name.clone()), Some(p)));
        for (phase, selector) in per_phase.chain([(None, None)]) {
            let h = totals.hist(id, selector);
            if h.is_empty() {
                continue;
            }
            histograms.push(HistogramEntry {
                id: id.0,
                metric: desc.metric.clone(),
                population: desc.population.clone(),
                step: desc.step.clone(),
                phase,
                count: h.len(),
                min: h.min(),
                mean: h.mean(),
                p50: h.value_at_quantile(0.50),
                p90: h.value_at_quantile(0.90),
                p95: h.value_at_quantile(0.95),
                p99: h.value_at_quantile(0.99),
                p99_9: h.value_at_quantile(0.999),
                max: h.max(),
                hdr: encode_histogram(&h),
            });
        }
    }
    let counters = layout
        .counters
        .iter()
        .enumerate()
        .map(|(index, desc)| {
            let id = CounterId(index as u32);
            CounterEntry {
                id: id.0,
                metric: desc.metric.clone(),
                population: desc.population.clone(),
                step: desc.step.clone(),
                kind: desc.kind.clone(),
                total: totals.counter(id, None),
                phases: (layout.phases.iter().enumerate())
                    .map(|(p, name)| (name.clone(), totals.counter(id, Some(p))))
                    .collect(),
            }
        })
        .collect();
    Summary {
        schema_version: SCHEMA_VERSION,
        meta,
        phases: phases
            .iter()
            .map(|p| PhaseEntry {
                name: p.name.clone(),
                start_s: p.start.as_secs_f64(),
                end_s: p.end.as_secs_f64(),
                model: None,
            })
            .collect(),
        layout: layout.clone(),
        histograms,
        counters,
        series: totals.series(),
        verdicts: verdicts.to_vec(),
        disruptions: Vec::new(),
        actions: Vec::new(),
        http_disruptions: Vec::new(),
        commands: None,
        generator: None,
    }
}

/// The [`Exporter`](super::Exporter) of `summary.json`.
pub struct Json;

impl super::Exporter for Json {
    fn file_name(&self) -> &'static str {
        FILE_NAME
    }
    fn render(&self, summary: &Summary) -> anyhow::Result<String> {
        Ok(to_text(summary)?)
    }
}

/// The file's text: pretty-printed, ending in a line break.
fn to_text(summary: &Summary) -> serde_json::Result<String> {
    let mut text = serde_json::to_string_pretty(summary)?;
    text.push('\n');
    Ok(text)
}

/// Write `dir/summary.json` atomically (temp file + rename); returns its path.
pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<PathBuf> {
    let path = dir.join(FILE_NAME);
    let text = to_text(summary).map_err(std::io::Error::other)?;
    crate::report::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Read a `summary.json` (schema version 1).
pub fn read(path: &Path) -> anyhow::Result<Summary> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // Look at the version first, so a future schema gets a clear message
    // rather than a complaint about some field.
    #[derive(serde::Deserialize)]
    struct Version {
        schema_version: u32,
    }
    let version: Version = serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a stampede summary", path.display()))?;
    anyhow::ensure!(
        version.schema_version == SCHEMA_VERSION,
        "{}: schema_version {} is not supported (this stampede reads {SCHEMA_VERSION})",
        path.display(),
        version.schema_version
    );
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not a valid summary", path.display()))
}

/// Encode `h` as the `hdr` field: base64 of its V2 serialization.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    // V2 fails only on counts beyond i64 or lengths beyond usize; an empty
    // string then decodes as an error rather than as wrong data.
    if V2Serializer::new().serialize(h, &mut bytes).is_err() {
        return String::new();
    }
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decode an `hdr` field back into the exact histogram.
pub fn decode_histogram(b64: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .context("histogram is not valid base64")?;
    crate::metrics::decode_histogram(&mut Deserializer::new(), &bytes)
        .map_err(|e| anyhow::anyhow!("histogram is not a valid HdrHistogram encoding: {e}"))
}

impl Summary {
    /// Rebuild the totals (per-phase histograms, counters, series) the
    /// summary was built from, e.g. to re-judge SLOs or merge segments.
    pub fn to_totals(&self) -> anyhow::Result<Totals> {
        let mut totals = Totals::new(self.layout.clone());
        // A layout without phases keeps everything in phase 0, which only
        // the all-phases entries describe.
        let phaseless = self.layout.phases.is_empty();
        for entry in &self.histograms {
            let index = match (&entry.phase, phaseless) {
                (None, true) => 0,
                (Some(phase), false) => self.phase_index(phase)?,
                _ => continue,
            };
            anyhow::ensure!(
                (entry.id as usize) < self.layout.hists.len(),
                "histogram id {} out of range",
                entry.id
            );
            let h = decode_histogram(&entry.hdr).with_context(|| {
                format!(
                    "histogram {} ({})",
                    entry.metric,
                    entry.phase.as_deref().unwrap_or("all phases")
                )
            })?;
            totals.merge_hist(HistId(entry.id), index, &h);
        }
        for entry in &self.counters {
            anyhow::ensure!(
                (entry.id as usize) < self.layout.counters.len(),
                "counter id {} out of range",
                entry.id
            );
            let id = CounterId(entry.id);
            if phaseless {
                totals.add_counter(id, 0, entry.total);
            }
            for (phase, n) in &entry.phases {
                totals.add_counter(id, self.phase_index(phase)?, *n);
            }
        }
        for point in &self.series {
            totals.push_point(point.clone());
        }
        Ok(totals)
    }

    /// The phases that ran, as [`PhaseSpan`]s.
    pub fn phase_spans(&self) -> Vec<PhaseSpan> {
        self.phases
            .iter()
            .map(|p| PhaseSpan {
                name: p.name.clone(),
                start: Duration::try_from_secs_f64(p.start_s).unwrap_or_default(),
                end: Duration::try_from_secs_f64(p.end_s).unwrap_or_default(),
            })
            .collect()
    }

    fn phase_index(&self, name: &str) -> anyhow::Result<usize> {
        self.layout
            .phase_index(name)
            .with_context(|| format!("phase `{name}` is not in the layout"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Aggregator, Metrics};
    use crate::slo;
    use std::time::SystemTime;

    fn meta() -> RunMeta {
        RunMeta {
            name: "black-friday".into(),
            scenario_path: "scenarios/black-friday.toml".into(),
            scenario_hash: "ab".repeat(32),
            stampede_version: "0.1.0".into(),
            started_at: "2024-11-29T10:00:00Z".into(),
            ended_at: "2024-11-29T10:00:04Z".into(),
            duration_s: 4.0,
            host: "loadgen-1".into(),
            command_line: vec![
                "stampede".into(),
                "run".into(),
                "--header".into(),
                "<redacted>".into(),
            ],
            seed: 7,
            interrupted: false,
            exit_code: 1,
            notes: vec!["generator saturated in phase spike".into()],
            segment: None,
            start_at: None,
            merged: None,
            clock: None,
        }
    }

    /// A two-phase run recorded through the real recorder and aggregator.
    fn recorded() -> (Totals, Vec<PhaseSpan>) {
        let mut layout = Layout {
            phases: vec!["warm-up".into(), "spike".into()],
            ..Layout::default()
        };
        let browse = layout.add_hist("http.latency", "shopper", "browse");
        layout.add_hist("http.latency", "shopper", "checkout"); // never recorded
        let lag = layout.add_hist("generator.lag", "", "");
        let requests = layout.add_counter("http.requests", "shopper", "browse", None);
        let timeouts = layout.add_counter("http.errors", "shopper", "browse", Some("timeout"));
        layout.add_gauge("generator.cpu");
        let metrics = Metrics::new(layout);
        let mut agg = Aggregator::new(metrics.clone(), None, SystemTime::now());
        for second in 0..4u64 {
            let phase = usize::from(second >= 2);
            metrics.with(|s| {
                for v in 0..100 {
                    s.record(browse, phase, 1_000 + v * 10 + phase as u64 * 50_000);
                }
                s.record(lag, phase, 20);
                s.add(requests, phase, 100);
                s.add(timeouts, phase, phase as u64);
            });
            agg.tick(Duration::from_secs(second + 1), &[0.25 * second as f64]);
        }
        let spans = vec![
            PhaseSpan {
                name: "warm-up".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(2),
            },
            PhaseSpan {
                name: "spike".into(),
                start: Duration::from_secs(2),
                end: Duration::from_secs(4),
            },
        ];
        (agg.finish().unwrap(), spans)
    }

    fn slos() -> Vec<slo::Slo> {
        vec![
            slo::parse("http.latency.p95", "< 40ms").unwrap(),
            slo::parse("http.errors{phase=spike}.rate", "< 0.5%").unwrap(),
            slo::parse("http.requests.rate", ">= 100/s").unwrap(),
        ]
    }

    #[test]
    fn every_report_says_what_latency_counts_from_by_the_phases_model() {
        let (totals, spans) = recorded();
        let mut summary = build(meta(), &spans, &totals, &[]);
        let names: Vec<String> = summary.phases.iter().map(|p| p.name.clone()).collect();
        assert!(names.len() >= 2, "{names:?}");
        let reports = |s: &Summary| {
            [
                crate::report::console::final_report(s),
                crate::report::markdown::render(s),
                crate::report::html::render(s).unwrap(),
            ]
        };
        // Not recorded (older results) or open: from the intended start.
        assert_eq!(summary.latency_from(), FROM_INTENDED_START);
        summary.set_models(|_| Some(PhaseModel::Open));
        assert_eq!(summary.latency_from(), FROM_INTENDED_START);
        let [console, md, html] = reports(&summary);
        assert!(
            console.contains("latency (from intended start) over"),
            "{console}"
        );
        assert!(
            md.contains("**HTTP steps** (latency from the intended start)"),
            "{md}"
        );
        assert!(html.contains("Latency from the intended start (corrected"));
        assert!(!html.contains(FROM_ACTUAL_SEND));
        // Every phase closed: from the actual send, nowhere the intended start.
        summary.set_models(|_| Some(PhaseModel::Closed));
        assert_eq!(summary.latency_from(), FROM_ACTUAL_SEND);
        for report in reports(&summary) {
            assert!(report.contains("from the actual send"), "{report}");
            assert!(!report.contains("intended start)"), "{report}");
        }
        let [console, md, _] = reports(&summary);
        assert!(
            console.contains("latency (from the actual send) over"),
            "{console}"
        );
        assert!(
            md.contains("**HTTP steps** (latency from the actual send)"),
            "{md}"
        );
        // Mixed: each phase named under its model.
        let first = names[0].clone();
        summary.set_models(|n| {
            Some(if n == first {
                PhaseModel::Open
            } else {
                PhaseModel::Closed
            })
        });
        let mixed = summary.latency_from();
        assert_eq!(
            mixed,
            format!(
                "from the intended start in open-model phases ({first}), from the actual send in closed-model phases ({})",
                names[1..].join(", ")
            )
        );
        for report in reports(&summary) {
            assert!(report.contains("in closed-model phases ("), "{report}");
        }
        // The model survives summary.json, and a summary without it reads.
        let json = serde_json::to_string(&summary).unwrap();
        let back: Summary = serde_json::from_str(&json).unwrap();
        assert_eq!(back.phases, summary.phases);
        let old = json
            .replace(",\"model\":\"open\"", "")
            .replace(",\"model\":\"closed\"", "");
        let old: Summary = serde_json::from_str(&old).unwrap();
        assert!(old.phases.iter().all(|p| p.model.is_none()));
    }

    #[test]
    fn build_lists_each_series_per_phase_and_overall() {
        let (totals, spans) = recorded();
        let verdicts = slo::evaluate(&slos(), &totals, &spans, Duration::from_secs(4));
        let summary = build(meta(), &spans, &totals, &verdicts);
        assert_eq!(summary.schema_version, 1);
        assert_eq!(
            summary.phases[1],
            PhaseEntry {
                name: "spike".into(),
                start_s: 2.0,
                end_s: 4.0,
                model: None,
            }
        );
        // browse and lag × (warm-up, spike, all); checkout never recorded.
        let keys: Vec<(u32, Option<&str>, u64)> = summary
            .histograms
            .iter()
            .map(|h| (h.id, h.phase.as_deref(), h.count))
            .collect();
        assert_eq!(
            keys,
            vec![
                (0, Some("warm-up"), 200),
                (0, Some("spike"), 200),
                (0, None, 400),
                (2, Some("warm-up"), 2),
                (2, Some("spike"), 2),
                (2, None, 4),
            ]
        );
        let warm = &summary.histograms[0];
        assert_eq!(
            (warm.metric.as_str(), warm.step.as_str()),
            ("http.latency", "browse")
        );
        assert_eq!((warm.min, warm.p50), (1_000, 1_490));
        assert!(
            warm.p90 <= warm.p95
                && warm.p95 <= warm.p99
                && warm.p99 <= warm.p99_9
                && warm.p99_9 <= warm.max
        );
        let errors = &summary.counters[1];
        assert_eq!((errors.kind.as_deref(), errors.total), (Some("timeout"), 2));
        assert_eq!(
            errors.phases,
            BTreeMap::from([("warm-up".into(), 0), ("spike".into(), 2)])
        );
        assert_eq!(summary.series.len(), 4);
        assert_eq!(summary.series[3].gauges, vec![0.75]);
        // p95 over both phases is in the spike's ~51 ms: fails; 2/200 = 1 % errors: fails.
        let passes: Vec<bool> = summary.verdicts.iter().map(|v| v.pass).collect();
        assert_eq!(passes, vec![false, false, true]);
    }

    #[test]
    fn written_summary_reads_back_identically() {
        let (totals, spans) = recorded();
        let verdicts = slo::evaluate(&slos(), &totals, &spans, Duration::from_secs(4));
        let summary = build(meta(), &spans, &totals, &verdicts);
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &summary).unwrap();
        assert_eq!(path, dir.path().join("summary.json"));
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            files,
            vec![std::ffi::OsString::from("summary.json")],
            "no temp file left"
        );

        let back = read(&path).unwrap();
        assert_eq!(back.meta, summary.meta);
        assert_eq!(back.phases, summary.phases);
        assert_eq!(back.histograms, summary.histograms);
        assert_eq!(back.counters, summary.counters);
        assert_eq!(back.series, summary.series);
        assert_eq!(back.verdicts, summary.verdicts);
        assert_eq!(back.layout.hists, summary.layout.hists);

        // The hdr field is the exact histogram.
        for entry in &back.histograms {
            let h = decode_histogram(&entry.hdr).unwrap();
            let phase = entry
                .phase
                .as_ref()
                .map(|p| back.layout.phase_index(p).unwrap());
            let original = totals.hist(HistId(entry.id), phase);
            assert_eq!(h.len(), entry.count);
            assert_eq!(h, original, "{:?} {:?}", entry.metric, entry.phase);
        }

        // Rebuilt totals judge the SLOs the same way.
        let rebuilt = back.to_totals().unwrap();
        assert_eq!(rebuilt.counter(CounterId(0), Some(1)), 200);
        assert_eq!(rebuilt.hist(HistId(0), None), totals.hist(HistId(0), None));
        let again = slo::evaluate(
            &slos(),
            &rebuilt,
            &back.phase_spans(),
            Duration::from_secs(4),
        );
        assert_eq!(again, verdicts);
    }

    /// `meta.clock` and a source's `clock` round-trip; a summary written
    /// before they existed (neither field) still reads, as not measured.
    #[test]
    fn the_clock_offset_round_trips_and_older_summaries_read_without_it() {
        let clock = ClockOffset {
            offset_ms: -1.25,
            uncertainty_ms: 1.5,
            rtt_min_ms: 1.0,
            samples: 42,
            against: "http://hub:80".into(),
        };
        let mut meta = meta();
        meta.clock = Some(clock.clone());
        meta.merged = Some(MergedFrom {
            count: 1,
            sources: vec![MergedSource {
                segment: Segment { index: 0, count: 1 },
                host: "loadgen-1".into(),
                started_at: "2024-11-29T10:00:00Z".into(),
                dir: "seg-0".into(),
                interrupted: false,
                exit_code: 0,
                clock: Some(clock),
            }],
            missing: vec![],
            hosts_differ: false,
        });
        let text = serde_json::to_string(&meta).unwrap();
        assert_eq!(serde_json::from_str::<RunMeta>(&text).unwrap(), meta);
        let mut old: serde_json::Value = serde_json::from_str(&text).unwrap();
        old.as_object_mut().unwrap().remove("clock");
        old["merged"]["sources"][0]
            .as_object_mut()
            .unwrap()
            .remove("clock");
        let back: RunMeta = serde_json::from_value(old).unwrap();
        assert_eq!(back.clock, None);
        assert_eq!(back.merged.unwrap().sources[0].clock, None);
        // Not measured: no field at all.
        let text = serde_json::to_string(&super::tests::meta()).unwrap();
        assert!(!text.contains("clock"), "{text}");
    }

    #[test]
    fn a_phaseless_run_round_trips_through_the_all_phases_entries() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "", "");
        let requests = layout.add_counter("http.requests", "", "", None);
        let metrics = Metrics::new(layout);
        let mut agg = Aggregator::new(metrics.clone(), None, SystemTime::now());
        metrics.with(|s| {
            s.record(id, 0, 5);
            s.add(requests, 0, 3);
        });
        agg.tick(Duration::from_secs(1), &[]);
        let totals = agg.finish().unwrap();
        let summary = build(meta(), &[], &totals, &[]);
        assert_eq!(summary.histograms.len(), 1);
        let rebuilt = summary.to_totals().unwrap();
        assert_eq!(rebuilt.hist(id, None).len(), 1);
        assert_eq!(rebuilt.counter(requests, None), 3);
    }

    #[test]
    fn read_refuses_other_versions_and_non_summaries() {
        let dir = tempfile::tempdir().unwrap();
        let future = dir.path().join("future.json");
        std::fs::write(&future, r#"{"schema_version": 2, "whatever": true}"#).unwrap();
        let err = format!("{:#}", read(&future).unwrap_err());
        assert!(err.contains("schema_version 2 is not supported"), "{err}");
        let junk = dir.path().join("junk.json");
        std::fs::write(&junk, "[1, 2]").unwrap();
        assert!(format!("{:#}", read(&junk).unwrap_err()).contains("is not a stampede summary"));
        let missing = dir.path().join("missing.json");
        assert!(format!("{:#}", read(&missing).unwrap_err()).contains("cannot read"));
    }

    #[test]
    fn decode_histogram_rejects_bad_input() {
        assert!(format!("{:#}", decode_histogram("not base64!").unwrap_err()).contains("base64"));
        let not_hdr = base64::engine::general_purpose::STANDARD.encode(b"hello world");
        assert!(format!("{:#}", decode_histogram(&not_hdr).unwrap_err()).contains("HdrHistogram"));
    }
}
