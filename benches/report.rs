//! Cost of `report.html` for a one-hour run: 3,600 one-second intervals,
//! ten histogram series (five HTTP steps, four hub events, the generator's
//! lag) with their counters and gauges, five phases, SLO verdicts — built
//! the way a run builds it (per-interval HDR histograms merged into totals,
//! `json::build`). Goal: render in at most 2 s, a file under 5 MB.
//!
//! `cargo bench --bench report -- --warm-up-time 1 --measurement-time 10`
//!
//! Prints the document's size and one timed render before criterion's
//! figures; `render_one_hour` is `html::render` alone, `read_and_render`
//! adds parsing summary.json (what `stampede report DIR` does). Set
//! `STAMPEDE_BENCH_REPORT=path.html` to keep the document and look at it.
//!
//! Measured on the 2-core development machine: render ≈ 15 ms, read and
//! render ≈ 27 ms, report.html 0.44 MB with 10 charts (summary.json 2.9 MB).
//! Drawing downsamples each line to the lowest and highest point of every
//! pixel column (`charts::downsample`), so the SVG stays the same size
//! however long the run.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use stampede::metrics::{new_histogram, IntervalStats, Layout, Point, Totals};
use stampede::report::{html, json};
use stampede::slo::{self, PhaseSpan};
use std::time::{Duration, Instant};

const SECONDS: u64 = 3600;

/// (name, length in seconds, journeys per second at its start and end).
const PHASES: [(&str, u64, f64, f64); 5] = [
    ("warm-up", 300, 20.0, 100.0),
    ("ramp", 900, 100.0, 600.0),
    ("steady", 1800, 600.0, 600.0),
    ("spike", 300, 1500.0, 1500.0),
    ("cool-down", 300, 600.0, 50.0),
];

/// Standard normal quantiles and their weights: a latency distribution is
/// recorded as `base × exp(0.45 z)` with these weights (~40 values per
/// series per second rather than one `record` per request).
fn lognormal_points() -> Vec<(f64, f64)> {
    (0..40)
        .map(|k| {
            let z = -3.0 + 6.5 * k as f64 / 39.0;
            (z, (-z * z / 2.0).exp())
        })
        .collect()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The summary of a generated one-hour run.
fn one_hour() -> json::Summary {
    let mut layout = Layout {
        phases: PHASES.iter().map(|p| p.0.to_string()).collect(),
        ..Layout::default()
    };
    let steps = ["login", "browse", "search", "cart", "checkout"];
    let step_ids: Vec<_> = steps
        .iter()
        .map(|step| {
            let latency = layout.add_hist("http.latency", "shopper", step);
            let requests = layout.add_counter("http.requests", "shopper", step, None);
            let errors: Vec<_> = ["timeout", "http_5xx", "connect", "dropped"]
                .iter()
                .map(|k| layout.add_counter("http.errors", "shopper", step, Some(k)))
                .collect();
            (latency, requests, errors)
        })
        .collect();
    let hub_hists: Vec<_> = [
        ("hub.connect", ""),
        ("hub.register", ""),
        ("hub.message.rtt", "heartbeat"),
        ("hub.reconnect", ""),
    ]
    .iter()
    .map(|(metric, step)| layout.add_hist(metric, "agent", step))
    .collect();
    let lag = layout.add_hist("generator.lag", "", "");
    let connects = layout.add_counter("hub.connects", "agent", "", None);
    let reconnects = layout.add_counter("hub.reconnects", "agent", "", None);
    let disconnects = layout.add_counter("hub.disconnects", "agent", "", Some("reset"));
    let hub_errors = layout.add_counter("hub.errors", "agent", "", Some("timeout"));
    for gauge in [
        "generator.cpu",
        "users.in_flight",
        "users.vus",
        "users.queued",
        "users.arrivals",
        "hub.connected",
        "hub.registered",
    ] {
        layout.add_gauge(gauge);
    }
    let n_hists = layout.hists.len();
    let n_counters = layout.counters.len();
    let mut totals = Totals::new(layout);
    let shape = lognormal_points();
    let mut rng = Rng(42);
    let mut scratch = new_histogram();
    let mut arrivals = 0.0;
    let mut phase_start = 0;
    let mut spans = Vec::new();
    for (phase, (name, length, from, to)) in PHASES.iter().enumerate() {
        spans.push(PhaseSpan {
            name: name.to_string(),
            start: Duration::from_secs(phase_start),
            end: Duration::from_secs(phase_start + length),
        });
        for t in 0..*length {
            let second = phase_start + t;
            let rate = from + (to - from) * t as f64 / *length as f64;
            let overload = (rate / 1000.0).powi(3);
            let mut point = Point {
                elapsed_s: (second + 1) as f64,
                hists: vec![IntervalStats::default(); n_hists],
                counters: vec![0; n_counters],
                gauges: Vec::new(),
            };
            let mut record = |id: stampede::metrics::HistId, samples: f64, base_us: f64| {
                scratch.reset();
                let total_weight: f64 = shape.iter().map(|p| p.1).sum();
                for (z, weight) in &shape {
                    let n = (samples * weight / total_weight).round() as u64;
                    if n > 0 {
                        let value = (base_us * (0.45 * z).exp()) as u64;
                        scratch.saturating_record_n(value.max(1), n);
                    }
                }
                // A rare straggler, so maxima and the tail look real.
                if rng.next() < 0.05 {
                    scratch.saturating_record((base_us * (8.0 + 40.0 * rng.next())) as u64);
                }
                point.hists[id.0 as usize] = IntervalStats::of(&scratch);
                totals.merge_hist(id, phase, &scratch);
            };
            for (i, (latency, _, _)) in step_ids.iter().enumerate() {
                let base = 3_000.0 * (1.0 + i as f64 * 0.4) * (1.0 + 6.0 * overload);
                // Steps of a journey run about as often as journeys start.
                record(*latency, rate * (1.0 - 0.01 * i as f64), base);
            }
            let reconnect_wave = (1800..1830).contains(&second);
            record(hub_hists[0], if second < 120 { 80.0 } else { 2.0 }, 2_000.0);
            record(hub_hists[1], if second < 120 { 80.0 } else { 2.0 }, 800.0);
            record(hub_hists[2], 400.0, 300.0 * (1.0 + overload));
            if reconnect_wave {
                record(hub_hists[3], 200.0, 400_000.0);
            }
            record(lag, rate, 300.0 * (1.0 + 40.0 * overload * overload));
            for (_, requests, errors) in &step_ids {
                let n = rate.round() as u64;
                let failed = (n as f64 * 0.02 * overload * rng.next()).round() as u64;
                point.counters[requests.0 as usize] = n;
                point.counters[errors[0].0 as usize] = failed;
                point.counters[errors[1].0 as usize] = u64::from(rng.next() < 0.01);
                totals.add_counter(*requests, phase, n);
                totals.add_counter(errors[0], phase, failed);
                totals.add_counter(errors[1], phase, point.counters[errors[1].0 as usize]);
            }
            let (c, r, d) = if reconnect_wave {
                (200, 200, if second == 1800 { 6000 } else { 0 })
            } else if second < 120 {
                (80, 0, 0)
            } else {
                (2, 0, 0)
            };
            for (id, n) in [(connects, c), (reconnects, r), (disconnects, d)] {
                point.counters[id.0 as usize] = n;
                totals.add_counter(id, phase, n);
            }
            point.counters[hub_errors.0 as usize] = u64::from(reconnect_wave);
            totals.add_counter(hub_errors, phase, u64::from(reconnect_wave));
            arrivals += rate;
            let registered = if second < 120 {
                80.0 * second as f64
            } else if (1800..1830).contains(&second) {
                9600.0 - 6000.0 + 200.0 * (second - 1800) as f64
            } else {
                9600.0
            };
            point.gauges = vec![
                30.0 + 60.0 * overload.min(1.0) + 5.0 * rng.next(),
                rate * 0.02 * (1.0 + 5.0 * overload),
                rate * 0.05 + 10.0,
                0.0,
                arrivals.round(),
                registered,
                registered,
            ];
            totals.push_point(point);
        }
        phase_start += length;
    }
    let slos: Vec<_> = [
        ("http.latency.p95", "< 150ms"),
        ("http.latency{step=checkout}.p99", "< 500ms"),
        ("http.errors.rate", "< 0.5%"),
        ("http.requests{phase=spike}.rate", ">= 5000/s"),
        ("hub.connect.p99", "< 1s"),
        ("hub.reconnect.p99", "< 30s"),
    ]
    .iter()
    .map(|(key, target)| slo::parse(key, target).expect("valid SLO"))
    .collect();
    let run = Duration::from_secs(SECONDS);
    let verdicts = slo::evaluate(&slos, &totals, &spans, run);
    let meta = json::RunMeta {
        name: "one-hour".into(),
        scenario_path: "scenarios/one-hour.toml".into(),
        scenario_hash: "5e".repeat(32),
        stampede_version: env!("CARGO_PKG_VERSION").into(),
        started_at: "2024-11-29T10:00:00Z".into(),
        ended_at: "2024-11-29T11:00:00Z".into(),
        duration_s: SECONDS as f64,
        host: "loadgen-1".into(),
        command_line: vec!["stampede".into(), "run".into(), "one-hour.toml".into()],
        seed: 1,
        interrupted: false,
        exit_code: 1,
        notes: vec![],
        segment: None,
        start_at: None,
        merged: None,
        clock: None,
    };
    json::build(meta, &spans, &totals, &verdicts)
}

fn report(c: &mut Criterion) {
    let started = Instant::now();
    let summary = one_hour();
    let text = serde_json::to_string(&summary).expect("serialise");
    println!(
        "one-hour summary: {} intervals, {} histogram series, {} counters, {} gauges; summary.json {:.1} MB; generated in {:.1?}",
        summary.series.len(),
        summary.layout.hists.len(),
        summary.layout.counters.len(),
        summary.layout.gauges.len(),
        text.len() as f64 / 1e6,
        started.elapsed()
    );
    let started = Instant::now();
    let document = html::render(&summary).expect("render");
    println!(
        "report.html: {:.2} MB, {} charts, rendered in {:.1?} (goals: < 5 MB, <= 2 s)",
        document.len() as f64 / 1e6,
        document.matches("<svg").count(),
        started.elapsed()
    );
    if let Ok(path) = std::env::var("STAMPEDE_BENCH_REPORT") {
        std::fs::write(&path, &document).expect("write the report");
        println!("written to {path}");
    }

    let mut group = c.benchmark_group("report_html");
    group.sample_size(10);
    group.bench_function("render_one_hour", |b| {
        b.iter(|| html::render(black_box(&summary)).expect("render"))
    });
    group.bench_function("read_and_render_one_hour", |b| {
        b.iter(|| {
            let summary: json::Summary = serde_json::from_str(black_box(&text)).expect("parse");
            html::render(&summary).expect("render")
        })
    });
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
