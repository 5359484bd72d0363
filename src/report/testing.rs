//! Test fixtures for the report renderers: a real [`Summary`] built by
//! [`json::build`] from totals filled in by hand, with SLOs judged by
//! [`slo::evaluate`].

use super::json::{self, RunMeta, Summary};
use crate::metrics::{new_histogram, IntervalStats, Layout, Point, Totals};
use crate::slo::{self, PhaseSpan};
use std::time::Duration;

/// What varies between fixtures.
pub struct SummaryOptions {
    pub name: String,
    pub population: String,
    pub step: String,
    /// `(key, target)` as in `[slo]`.
    pub slos: Vec<(String, String)>,
    pub interrupted: bool,
    pub notes: Vec<String>,
    pub command_line: Vec<String>,
    /// Add an agent population `edge` with hub series.
    pub hub: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        SummaryOptions {
            name: "black-friday".into(),
            population: "shopper".into(),
            step: "browse".into(),
            slos: vec![
                ("http.latency.p95".into(), "< 40ms".into()),
                ("http.errors{phase=spike}.rate".into(), "< 0.5%".into()),
                ("http.requests.rate".into(), ">= 100/s".into()),
            ],
            interrupted: false,
            notes: vec!["generator saturated in phase spike".into()],
            command_line: vec!["stampede".into(), "run".into(), "bf.toml".into()],
            hub: false,
        }
    }
}

/// A two-phase, four-second run: 200 requests per phase on one step,
/// 1.00–1.99 ms in `warm-up` and 51.00–51.99 ms in `spike`; two timeouts in
/// `spike`. With the default SLOs: p95 (~51 ms) fails `< 40ms`, the spike's
/// error rate (1 %) fails `< 0.5%`, 100 requests/s holds `>= 100/s`.
pub fn summary_with(options: SummaryOptions) -> Summary {
    let SummaryOptions {
        name,
        population,
        step,
        slos,
        interrupted,
        notes,
        command_line,
        hub,
    } = options;
    let mut layout = Layout {
        phases: vec!["warm-up".into(), "spike".into()],
        ..Layout::default()
    };
    let latency = layout.add_hist("http.latency", &population, &step);
    layout.add_hist("http.latency", &population, "never-ran");
    let lag = layout.add_hist("generator.lag", "", "");
    let requests = layout.add_counter("http.requests", &population, &step, None);
    let timeouts = layout.add_counter("http.errors", &population, &step, Some("timeout"));
    layout.add_gauge("generator.cpu");
    let hub_ids = hub.then(|| {
        (
            layout.add_hist("hub.connect", "edge", ""),
            layout.add_hist("hub.reconnect.attempts", "edge", ""),
            layout.add_counter("hub.connects", "edge", "", None),
            layout.add_counter("hub.errors", "edge", "", Some("refused")),
        )
    });
    let mut totals = Totals::new(layout.clone());
    for second in 0..4u64 {
        let phase = usize::from(second >= 2);
        let mut h = new_histogram();
        for v in 0..100 {
            h.record(1_000 + v * 10 + phase as u64 * 50_000).unwrap();
        }
        totals.merge_hist(latency, phase, &h);
        let mut lag_h = new_histogram();
        lag_h.record(20).unwrap();
        totals.merge_hist(lag, phase, &lag_h);
        totals.add_counter(requests, phase, 100);
        totals.add_counter(timeouts, phase, phase as u64);
        let mut hists = vec![IntervalStats::default(); layout.hists.len()];
        hists[latency.0 as usize] = IntervalStats::of(&h);
        hists[lag.0 as usize] = IntervalStats::of(&lag_h);
        let mut counters = vec![0; layout.counters.len()];
        counters[requests.0 as usize] = 100;
        counters[timeouts.0 as usize] = phase as u64;
        if let Some((connect, attempts, connects, errors)) = hub_ids {
            let mut c = new_histogram();
            c.record(3_000 + second * 1_000).unwrap();
            totals.merge_hist(connect, phase, &c);
            hists[connect.0 as usize] = IntervalStats::of(&c);
            let mut a = new_histogram();
            a.record(second + 1).unwrap();
            totals.merge_hist(attempts, phase, &a);
            totals.add_counter(connects, phase, 1);
            totals.add_counter(errors, phase, 1);
            counters[connects.0 as usize] = 1;
            counters[errors.0 as usize] = 1;
        }
        totals.push_point(Point {
            elapsed_s: (second + 1) as f64,
            hists,
            counters,
            gauges: vec![0.25 * second as f64],
        });
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
    let slos: Vec<slo::Slo> = slos
        .iter()
        .map(|(key, target)| slo::parse(key, target).unwrap())
        .collect();
    let verdicts = slo::evaluate(&slos, &totals, &spans, Duration::from_secs(4));
    let exit_code = if interrupted {
        3
    } else if verdicts.iter().any(|v| !v.pass) {
        1
    } else {
        0
    };
    let meta = RunMeta {
        name,
        scenario_path: "scenarios/black-friday.toml".into(),
        scenario_hash: "ab".repeat(32),
        stampede_version: "0.1.0".into(),
        started_at: "2024-11-29T10:00:00.000Z".into(),
        ended_at: "2024-11-29T10:00:04.000Z".into(),
        duration_s: 4.0,
        host: "loadgen-1".into(),
        command_line,
        seed: 7,
        interrupted,
        exit_code,
        notes,
        segment: None,
        start_at: None,
        merged: None,
        clock: None,
    };
    json::build(meta, &spans, &totals, &verdicts)
}
