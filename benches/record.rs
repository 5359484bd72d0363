//! Cost of recording a sample on the hot path: `Metrics::with` (thread-local
//! shard lookup + one uncontended lock) plus the histogram / counter update.
//! Target: under 50 ns per `with`.
//!
//! `cargo bench --bench record -- --warm-up-time 1 --measurement-time 3`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use stampede::metrics::{Aggregator, Layout, Metrics};
use std::time::{Duration, SystemTime};

fn record(c: &mut Criterion) {
    let mut layout = Layout {
        phases: vec!["warm-up".into(), "spike".into()],
        ..Layout::default()
    };
    let latency = layout.add_hist("http.latency", "shopper", "browse");
    let service = layout.add_hist("http.service_time", "shopper", "browse");
    let requests = layout.add_counter("http.requests", "shopper", "browse", None);
    let metrics = Metrics::new(layout);
    // A second live run, so the thread-local lookup is not trivially first.
    let other = Metrics::new(metrics.layout().clone());
    other.with(|s| s.add(requests, 0, 1));

    let mut value = 1_000u64;
    let mut next_value = move || {
        // Spread values over the histogram like real latencies.
        value = (value * 7 + 13) % 500_000 + 100;
        value
    };

    c.bench_function("with_record_one_value", |b| {
        b.iter(|| {
            let micros = next_value();
            metrics.with(|s| s.record(latency, 1, black_box(micros)))
        })
    });
    c.bench_function("with_record_latency_service_counter", |b| {
        b.iter(|| {
            let micros = next_value();
            metrics.with(|s| {
                s.record(latency, 1, black_box(micros));
                s.record(service, 1, black_box(micros / 2));
                s.add(requests, 1, 1);
            })
        })
    });

    // One tick: harvest this thread's shard (two non-empty histograms and
    // a counter), merge into totals, one point. The thread-spawning case is
    // left out: thread creation would dominate the figure.
    let mut agg = Aggregator::new(metrics.clone(), None, SystemTime::now());
    let mut elapsed = Duration::ZERO;
    c.bench_function("aggregator_tick", |b| {
        b.iter(|| {
            metrics.with(|s| {
                s.record(latency, 1, next_value());
                s.record(service, 1, next_value());
                s.add(requests, 1, 1);
            });
            elapsed += Duration::from_secs(1);
            agg.tick(elapsed, &[]).hists.len()
        })
    });
}

criterion_group!(benches, record);
criterion_main!(benches);
