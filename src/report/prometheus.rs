//! The live metrics of a run in the OpenMetrics text format (which
//! Prometheus scrapes), encoded by the `prometheus-client` crate.
//!
//! # Names
//! Every series of the run's [`Layout`] is exported under its catalogue
//! name with the dots turned to underscores and a `stampede_` prefix:
//! - latency-like histograms as histograms in seconds:
//!   `http.latency` → `stampede_http_latency_seconds` (`_bucket`, `_sum`,
//!   `_count`), bounds [`LATENCY_BOUNDS_US`](crate::metrics::buckets::LATENCY_BOUNDS_US);
//! - histograms of counts without a unit: `hub.reconnect.attempts` →
//!   `stampede_hub_reconnect_attempts`;
//! - counters with `_total`: `http.requests` → `stampede_http_requests_total`,
//!   `http.errors` → `stampede_http_errors_total{kind="timeout"}`;
//! - the per-second gauges under names of their own ([`GAUGES`]):
//!   `stampede_hub_agents_connected`, `stampede_users_vus`, …;
//! - the run itself: `stampede_run_phase{phase}` (1 for the phase the
//!   timeline is in), `stampede_run_elapsed_seconds`,
//!   `stampede_run_finished` (1 once the final counts are in) and, with
//!   agents, `stampede_hub_disruptions_total`.
//!
//! # Labels
//! Every sample has `scenario` and `segment` (`i/n`, `0/1` for a whole run),
//! so the segments of a distributed run add up in PromQL:
//! `sum by (le) (rate(stampede_http_latency_seconds_bucket[1m]))`. Series of
//! the layout add `population`, `step` and `phase` (and `kind` for error
//! counters). Latency is never exported as precomputed quantiles: those
//! cannot be combined across processes; buckets can.
//!
//! Counts are cumulative from the run's start and per phase, read from
//! the same totals `summary.json` is written from; the latest interval
//! (1 s) is what a scrape sees. Every series of every phase is exported
//! from 0 from the start (the monitor publishes an empty snapshot before
//! the first interval), not from its first event, so `rate()` and
//! `increase()` count that first event too.

use crate::metrics::buckets::NATIVE_SCHEMA;
use crate::metrics::{catalogue, Buckets, HistId, Layout};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, NativeHistogram, NativeHistogramBuckets,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::time::Duration;

/// The `Content-Type` of [`Exposition::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `Content-Type` of [`Exposition::encode_protobuf`]: what a
/// Prometheus with native histograms enabled asks for first.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The per-second gauges exported: layout name, exported name, the factor
/// from the recorded value to the exported one, help.
pub const GAUGES: [(&str, &str, f64, &str); 6] = [
    (
        "hub.connected",
        "stampede_hub_agents_connected",
        1.0,
        "Agents whose connection to the hub is up.",
    ),
    (
        "hub.registered",
        "stampede_hub_agents_registered",
        1.0,
        "Agents registered on the hub.",
    ),
    (
        "users.vus",
        "stampede_users_vus",
        1.0,
        "HTTP virtual users alive (open pool and closed model).",
    ),
    (
        "users.in_flight",
        "stampede_users_in_flight",
        1.0,
        "HTTP journeys being walked.",
    ),
    (
        "users.queued",
        "stampede_users_queued",
        1.0,
        "Arrivals waiting for a free virtual user (open model).",
    ),
    (
        "generator.cpu",
        "stampede_generator_cpu_ratio",
        0.01,
        "CPU the generator used in the last second, in cores (1 = one core busy).",
    ),
];

/// One moment of a run, as the monitor publishes it once per interval.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Counters, cumulative, flat `phase * n_counters + id`.
    pub counters: Vec<u64>,
    /// Every histogram series × phase, bucketed.
    pub buckets: Buckets,
    /// The last interval's gauges (index = GaugeId).
    pub gauges: Vec<f64>,
    /// Index of the phase the timeline is in.
    pub phase: usize,
    pub elapsed: Duration,
    /// The run is over: these are the final counts.
    pub finished: bool,
    /// Disruptions of the agent fleet so far (None without agents).
    pub disruptions: Option<u64>,
    /// Arrivals made so far (offered load of the open model).
    pub arrivals: u64,
}

impl Snapshot {
    /// Counter `id` in `phase`.
    fn counter(&self, n_counters: usize, id: usize, phase: usize) -> u64 {
        self.counters
            .get(phase * n_counters + id)
            .copied()
            .unwrap_or(0)
    }
}

/// Where the monitor publishes the latest [`Snapshot`] and the endpoint
/// reads it.
#[derive(Debug, Default)]
pub struct Published(parking_lot::Mutex<Option<Arc<Snapshot>>>);

impl Published {
    pub fn publish(&self, snapshot: Snapshot) {
        *self.0.lock() = Some(Arc::new(snapshot));
    }
    pub fn latest(&self) -> Option<Arc<Snapshot>> {
        self.0.lock().clone()
    }
}

/// What stays the same for a whole run: its layout and its labels.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
}

impl Exposition {
    /// The exposition of a run named `scenario`, segment `segment`
    /// (`i/n`), with `layout`, reading snapshots from `published`.
    pub fn new(scenario: &str, segment: &str, layout: Layout, published: Arc<Published>) -> Self {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(RunCollector {
            scenario: scenario.to_string(),
            segment: segment.to_string(),
            layout,
            published,
        }));
        Exposition { registry }
    }

    /// The Prometheus protobuf exposition (length-delimited
    /// `MetricFamily` messages) of the latest snapshot: classic and native
    /// buckets.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        prometheus_client::encoding::prometheus_protobuf::encode_to_vec(&self.registry)
            .expect("the snapshot's metrics encode")
    }

    /// The OpenMetrics text of the latest snapshot (only `# EOF` before
    /// the first).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// Native buckets as the protobuf format wants them: spans of consecutive
/// indices (`(offset from the previous span's end, length)`, the first
/// offset absolute) and each count as a delta from the previous one.
fn native_spans(native: &std::collections::BTreeMap<i32, u64>) -> (Vec<(i32, u32)>, Vec<i64>) {
    let mut spans: Vec<(i32, u32)> = Vec::new();
    let mut deltas = Vec::with_capacity(native.len());
    let (mut next, mut previous) = (None::<i32>, 0i64);
    for (&index, &count) in native {
        match (next, spans.last_mut()) {
            (Some(expected), Some(last)) if expected == index => last.1 += 1,
            (Some(expected), _) => spans.push((index - expected, 1)),
            (None, _) => spans.push((index, 1)),
        }
        next = Some(index + 1);
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        deltas.push(count - previous);
        previous = count;
    }
    (spans, deltas)
}

/// The exported name of a catalogued metric, without unit or suffix.
pub fn exported_name(metric: &str) -> String {
    format!("stampede_{}", metric.replace('.', "_"))
}

#[derive(Debug)]
struct RunCollector {
    scenario: String,
    segment: String,
    layout: Layout,
    published: Arc<Published>,
}

type Labels = Vec<(&'static str, String)>;

impl RunCollector {
    fn labels(&self) -> Labels {
        vec![
            ("scenario", self.scenario.clone()),
            ("segment", self.segment.clone()),
        ]
    }

    fn series_labels(&self, desc: &crate::metrics::SeriesDesc, phase: usize) -> Labels {
        let mut labels = self.labels();
        labels.push(("population", desc.population.clone()));
        labels.push(("step", desc.step.clone()));
        labels.push((
            "phase",
            self.layout.phases.get(phase).cloned().unwrap_or_default(),
        ));
        if let Some(kind) = &desc.kind {
            labels.push(("kind", kind.clone()));
        }
        labels
    }

    fn histograms(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        snap: &Snapshot,
    ) -> Result<(), std::fmt::Error> {
        for metric in distinct(self.layout.hists.iter().map(|h| h.metric.as_str())) {
            let counted = catalogue::metric_kind(metric) == catalogue::MetricKind::CountHistogram;
            let unit = (!counted).then_some(Unit::Seconds);
            let divisor = crate::metrics::buckets::divisor_of(metric);
            let name = exported_name(metric);
            let help = format!("stampede `{metric}`: {}", help_of(metric));
            let mut family =
                encoder.encode_descriptor(&name, &help, unit.as_ref(), MetricType::Histogram)?;
            for (id, desc) in self.layout.hists.iter().enumerate() {
                if desc.metric != metric {
                    continue;
                }
                for phase in 0..snap.buckets.phases() {
                    let (bounds, counts) = snap.buckets.get(HistId(id as u32), phase);
                    let buckets: Vec<(f64, u64)> = bounds
                        .iter()
                        .map(|&b| b as f64 / divisor)
                        .chain([f64::INFINITY])
                        .zip(counts.counts.iter().copied())
                        .collect();
                    let labels = self.series_labels(desc, phase);
                    let (spans, deltas) = native_spans(&counts.native);
                    let native = NativeHistogram {
                        schema: NATIVE_SCHEMA,
                        zero_threshold: 0.0,
                        zero_count: counts.zero,
                        negative: NativeHistogramBuckets {
                            spans: &[],
                            deltas: &[],
                        },
                        positive: NativeHistogramBuckets {
                            spans: &spans,
                            deltas: &deltas,
                        },
                        created: None,
                    };
                    // The text format writes the classic buckets only; the
                    // protobuf format carries both.
                    family
                        .encode_family(&labels)?
                        .encode_histogram_with_native::<Labels>(
                            counts.sum / divisor,
                            counts.count,
                            &buckets,
                            None,
                            native,
                        )?;
                }
            }
        }
        Ok(())
    }

    fn counters(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        snap: &Snapshot,
    ) -> Result<(), std::fmt::Error> {
        let n = self.layout.counters.len();
        let phases = self.layout.phases.len().max(1);
        for metric in distinct(self.layout.counters.iter().map(|c| c.metric.as_str())) {
            let name = exported_name(metric);
            let help = format!("stampede `{metric}`: {}", help_of(metric));
            let mut family = encoder.encode_descriptor(&name, &help, None, MetricType::Counter)?;
            for (id, desc) in self.layout.counters.iter().enumerate() {
                if desc.metric != metric {
                    continue;
                }
                for phase in 0..phases {
                    let value = snap.counter(n, id, phase);
                    let labels = self.series_labels(desc, phase);
                    ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    fn gauges(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        snap: &Snapshot,
    ) -> Result<(), std::fmt::Error> {
        let labels = self.labels();
        for (layout_name, name, factor, help) in GAUGES {
            let Some(index) = self.layout.gauges.iter().position(|g| g == layout_name) else {
                continue;
            };
            let value = snap.gauges.get(index).copied().unwrap_or(0.0) * factor;
            let family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            encode_labelled_gauge(family, &labels, value)?;
        }
        let family = encoder.encode_descriptor(
            "stampede_users_arrivals",
            "HTTP arrivals made so far (the open model's offered load).",
            None,
            MetricType::Counter,
        )?;
        encode_labelled_counter(family, &labels, snap.arrivals)?;
        if let Some(disruptions) = snap.disruptions {
            let family = encoder.encode_descriptor(
                "stampede_hub_disruptions",
                "Disruptions of the agent fleet so far (drops, kicks, fault actions, \
                 detected waves of losses).",
                None,
                MetricType::Counter,
            )?;
            encode_labelled_counter(family, &labels, disruptions)?;
        }
        let mut family = encoder.encode_descriptor(
            "stampede_run_phase",
            "1 for the phase the run's timeline is in, 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for (index, phase) in self.layout.phases.iter().enumerate() {
            let mut labels = labels.clone();
            labels.push(("phase", phase.clone()));
            let on = i64::from(index == snap.phase && !snap.finished);
            ConstGauge::new(on).encode(family.encode_family(&labels)?)?;
        }
        let family = encoder.encode_descriptor(
            "stampede_run_elapsed",
            "Time since the run started.",
            Some(&Unit::Seconds),
            MetricType::Gauge,
        )?;
        encode_labelled_gauge(family, &labels, snap.elapsed.as_secs_f64())?;
        let family = encoder.encode_descriptor(
            "stampede_run_finished",
            "1 once the run is over and these are its final counts.",
            None,
            MetricType::Gauge,
        )?;
        encode_labelled_gauge(family, &labels, f64::from(u8::from(snap.finished)))
    }
}

fn encode_labelled_gauge(
    mut family: prometheus_client::encoding::MetricEncoder<'_>,
    labels: &Labels,
    value: f64,
) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(family.encode_family(labels)?)
}

fn encode_labelled_counter(
    mut family: prometheus_client::encoding::MetricEncoder<'_>,
    labels: &Labels,
    value: u64,
) -> Result<(), std::fmt::Error> {
    ConstCounter::new(value).encode(family.encode_family(labels)?)
}

impl Collector for RunCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(snap) = self.published.latest() else {
            return Ok(());
        };
        self.histograms(&mut encoder, &snap)?;
        self.counters(&mut encoder, &snap)?;
        self.gauges(&mut encoder, &snap)
    }
}

/// Names in first-seen order, each once.
fn distinct<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen: Vec<&str> = Vec::new();
    for name in names {
        if !seen.contains(&name) {
            seen.push(name);
        }
    }
    seen
}

/// One line of help per catalogued metric.
fn help_of(metric: &str) -> &'static str {
    use catalogue::*;
    match metric {
        HTTP_LATENCY => "HTTP latency from the intended start (coordinated omission corrected).",
        HTTP_SERVICE_TIME => "HTTP latency from the actual send.",
        HTTP_WAIT => "time a polling step waited for its condition.",
        HTTP_WAIT_POLLS => "polls a polling step sent per wait.",
        HTTP_WAIT_OPEN => "waits still open at the run's end: how long they had waited.",
        HTTP_JOURNEY => "time of a whole journey, think times included.",
        GENERATOR_LAG => "how late the open-model generator started requests.",
        HTTP_REQUESTS => "HTTP requests completed.",
        HTTP_ERRORS => "HTTP requests that failed, by kind.",
        HUB_CONNECT => "hub connection set-up time.",
        HUB_REGISTER => "hub registration time.",
        HUB_MESSAGE_RTT => "hub message round trip.",
        HUB_RECONNECT => "time to reconnect after a drop.",
        HUB_RECONNECT_ATTEMPTS => "reconnect attempts per recovery.",
        HUB_RECOVERY => "time from a disruption until its agents were back.",
        HUB_COMMAND_DELIVERY => "command delivery time to one agent.",
        HUB_COMMAND_FANOUT => "time for a command to reach every addressed agent.",
        HUB_COMMAND_RTT => "command round trip as the commander sees it.",
        HUB_CONNECTS => "hub connections attempted.",
        HUB_ERRORS => "hub connections or messages that failed, by kind.",
        HUB_DISCONNECTS => "hub disconnects.",
        HUB_REGISTRATIONS => "hub registrations.",
        HUB_RECONNECTS => "hub reconnects.",
        HUB_COMMANDS => "commands sent.",
        HUB_COMMAND_RECEIVED => "commands received by agents.",
        UNRECOVERED => "drops whose agents never came back.",
        HTTP_RECOVERY => "time from an HTTP error burst until errors and latency were back.",
        ACTIONS => "fault actions run.",
        ACTIONS_ERRORS => "fault actions that failed.",
        _ => "see the README's metric catalogue.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::new_histogram;

    fn layout() -> Layout {
        let mut layout = Layout {
            phases: vec!["warm".into(), "peak".into()],
            ..Layout::default()
        };
        layout.add_hist("http.latency", "shopper", "list");
        layout.add_counter("http.requests", "shopper", "list", None);
        layout.add_counter("http.errors", "shopper", "list", Some("timeout"));
        layout.add_counter("http.errors", "shopper", "list", Some("http_5xx"));
        layout.add_gauge("users.vus");
        layout
    }

    fn encoded(snapshot: Snapshot) -> String {
        let published = Arc::new(Published::default());
        let exposition = Exposition::new("shop", "1/3", layout(), published.clone());
        assert_eq!(
            exposition.encode(),
            "# EOF\n",
            "nothing before the first interval"
        );
        published.publish(snapshot);
        exposition.encode()
    }

    #[test]
    fn native_buckets_become_spans_and_deltas() {
        let native = [(-3, 2), (-2, 5), (0, 1), (4, 4)].into_iter().collect();
        let (spans, deltas) = native_spans(&native);
        assert_eq!(spans, [(-3, 2), (1, 1), (3, 1)]);
        assert_eq!(deltas, [2, 3, -4, 3]);
        assert_eq!(native_spans(&Default::default()), (vec![], vec![]));
    }

    #[test]
    fn series_are_named_and_labelled_for_promql() {
        let layout = layout();
        let mut buckets = Buckets::new(&layout);
        let mut h = new_histogram();
        h.record(12_000).unwrap();
        buckets.add(0, &h);
        // Counters flat: phase 0 = [requests, timeout, 5xx].
        let text = encoded(Snapshot {
            counters: vec![5, 0, 2, 0, 0, 0],
            buckets,
            gauges: vec![7.0],
            phase: 0,
            elapsed: Duration::from_millis(1500),
            finished: false,
            disruptions: None,
            arrivals: 5,
        });
        let labels =
            r#"scenario="shop",segment="1/3",population="shopper",step="list",phase="warm""#;
        for line in [
            "# TYPE stampede_http_latency_seconds histogram".to_string(),
            format!("stampede_http_latency_seconds_count{{{labels}}} 1"),
            format!("stampede_http_latency_seconds_bucket{{le=\"0.01\",{labels}}} 0"),
            format!("stampede_http_latency_seconds_bucket{{le=\"0.015\",{labels}}} 1"),
            format!("stampede_http_requests_total{{{labels}}} 5"),
            format!("stampede_http_errors_total{{{labels},kind=\"http_5xx\"}} 2"),
            r#"stampede_users_vus{scenario="shop",segment="1/3"} 7.0"#.to_string(),
            r#"stampede_run_phase{scenario="shop",segment="1/3",phase="warm"} 1"#.to_string(),
            r#"stampede_run_phase{scenario="shop",segment="1/3",phase="peak"} 0"#.to_string(),
            r#"stampede_run_finished{scenario="shop",segment="1/3"} 0.0"#.to_string(),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        // Every series of every phase is there from 0 (so `rate()` sees
        // its first event).
        let peak = labels.replace("warm", "peak");
        for line in [
            format!("stampede_http_errors_total{{{labels},kind=\"timeout\"}} 0"),
            format!("stampede_http_requests_total{{{peak}}} 0"),
            format!("stampede_http_latency_seconds_count{{{peak}}} 0"),
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing `{line}` in\n{text}"
            );
        }
        assert!(!text.contains("quantile"), "histograms, never quantiles");
        assert!(text.ends_with("# EOF\n"));
    }
}
