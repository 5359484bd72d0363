//! `stampede compare BASELINE CURRENT`: did this build get slower?
//!
//! For every latency-like metric × population × step present in either
//! run: p50, p95 and p99 over the whole run; for every HTTP step the
//! throughput (requests per second) and the error rate; for every agent
//! population the hub error rate (errors / connects). Each change gets a
//! verdict against a tolerance (`--max-regression p95=10%,errors=0.05pp`
//! or the scenario's `[compare]` table).
//!
//! # The noise rule
//!
//! Two runs cannot show their own run-to-run spread, but each run's
//! 1-second time series shows how much the value moves from one interval
//! to the next. For a percentile we take the per-interval values of that
//! percentile (intervals with samples), their standard deviation `s` and
//! count `n` in each run, and call the difference noise-level when it is
//! within `2·√(s_b²/n_b + s_c²/n_c)` — two standard errors of the
//! difference of the interval means, a ~95 % band (Welch). Throughput uses
//! the per-interval request counts the same way. A change is flagged only
//! when it is larger than **both** the tolerance and that band: a 12 % p95
//! rise over a run whose p95 swings by 30 % between seconds is not called a
//! regression; a 12 % rise over a flat run is. Error rates use a
//! two-proportion z-test instead (a change counts when it exceeds the
//! tolerance in percentage points **and** z > 2), because errors are rare
//! events whose per-interval spread is mostly zero.
//!
//! Results of different scenarios (content hash) are compared, with a
//! warning; a series present on one side only is reported as missing.
//!
//! This module computes the [`Comparison`] (and its verdicts for `run
//! --baseline`); [`crate::report::compare`] renders it as Markdown or text.

use crate::metrics::IntervalStats;
use crate::report::json::{CounterEntry, HistogramEntry, Summary};
use std::collections::BTreeMap;
// The renderers moved to `report::compare`; re-exported for callers of
// `compare::markdown` / `compare::text`.
use crate::report::compare::{change_text, series_name, value};
// The result types live with their renderers in `report::compare` (a
// report is a layer below the commands); re-exported here.
pub use crate::report::compare::{markdown, text, Change, Comparison, Row};

/// Latency-like metrics compared by percentile.
pub const LATENCY_METRICS: [&str; 11] = [
    "http.latency",
    "http.wait",
    "http.journey",
    "hub.connect",
    "hub.register",
    "hub.message.rtt",
    "hub.reconnect",
    "hub.recovery",
    "hub.command.delivery",
    "hub.command.fanout",
    "hub.command.rtt",
];

pub use crate::scenario::Tolerances;

type Key = (String, String, String);

fn overall<'a>(entries: &'a [HistogramEntry], metric: &str) -> BTreeMap<Key, &'a HistogramEntry> {
    entries
        .iter()
        .filter(|h| h.metric == metric && h.phase.is_none())
        .map(|h| ((h.metric.clone(), h.population.clone(), h.step.clone()), h))
        .collect()
}

/// Per-interval values of one histogram series (intervals with samples).
fn interval_values(summary: &Summary, id: u32, pick: fn(&IntervalStats) -> u64) -> Vec<f64> {
    summary
        .series
        .iter()
        .filter_map(|p| p.hists.get(id as usize))
        .filter(|s| s.count > 0)
        .map(|s| pick(s) as f64)
        .collect()
}

fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.len() < 2 {
        return (values.first().copied().unwrap_or(0.0), 0.0);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var)
}

/// Two standard errors of the difference of the interval means.
pub fn noise_band(baseline: &[f64], current: &[f64]) -> f64 {
    let (_, vb) = mean_var(baseline);
    let (_, vc) = mean_var(current);
    let nb = baseline.len().max(1) as f64;
    let nc = current.len().max(1) as f64;
    2.0 * (vb / nb + vc / nc).sqrt()
}

/// z of the difference of two proportions (pooled).
pub fn two_proportion_z(errors_b: u64, n_b: u64, errors_c: u64, n_c: u64) -> f64 {
    if n_b == 0 || n_c == 0 {
        return 0.0;
    }
    let pb = errors_b as f64 / n_b as f64;
    let pc = errors_c as f64 / n_c as f64;
    let pooled = (errors_b + errors_c) as f64 / (n_b + n_c) as f64;
    let se = (pooled * (1.0 - pooled) * (1.0 / n_b as f64 + 1.0 / n_c as f64)).sqrt();
    if se == 0.0 {
        return 0.0;
    }
    (pc - pb) / se
}

fn counter_total(
    entries: &[CounterEntry],
    metric: &str,
    population: &str,
    step: &str,
) -> Option<u64> {
    let mut found = false;
    let total = entries
        .iter()
        .filter(|c| c.metric == metric && c.population == population && c.step == step)
        .inspect(|_| found = true)
        .map(|c| c.total)
        .sum();
    found.then_some(total)
}

fn counter_intervals(summary: &Summary, metric: &str, population: &str, step: &str) -> Vec<f64> {
    let ids: Vec<usize> = summary
        .counters
        .iter()
        .filter(|c| c.metric == metric && c.population == population && c.step == step)
        .map(|c| c.id as usize)
        .collect();
    summary
        .series
        .iter()
        .map(|p| ids.iter().filter_map(|&i| p.counters.get(i)).sum::<u64>() as f64)
        .collect()
}

/// Compare `current` against `baseline`.
pub fn compare(baseline: &Summary, current: &Summary, tolerances: &Tolerances) -> Comparison {
    let mut warnings = Vec::new();
    if baseline.meta.scenario_hash != current.meta.scenario_hash {
        warnings.push(format!(
            "the two results come from different scenarios (`{}` {} vs `{}` {}): the comparison may not mean much",
            baseline.meta.name,
            short(&baseline.meta.scenario_hash),
            current.meta.name,
            short(&current.meta.scenario_hash)
        ));
    }
    for (side, s) in [("baseline", baseline), ("current", current)] {
        if s.meta.interrupted {
            warnings.push(format!(
                "the {side} run was interrupted: it covers only part of its plan"
            ));
        }
    }
    let mut rows = Vec::new();
    type Pick = fn(&IntervalStats) -> u64;
    type Of = fn(&HistogramEntry) -> u64;
    let stats: [(&str, Pick, f64, Of); 3] = [
        ("p50", |s| s.p50, tolerances.p50, |h| h.p50),
        ("p95", |s| s.p95, tolerances.p95, |h| h.p95),
        ("p99", |s| s.p99, tolerances.p99, |h| h.p99),
    ];
    for metric in LATENCY_METRICS {
        let b = overall(&baseline.histograms, metric);
        let c = overall(&current.histograms, metric);
        let keys: std::collections::BTreeSet<&Key> = b.keys().chain(c.keys()).collect();
        for key in keys {
            let (hb, hc) = (
                b.get(key).filter(|h| h.count > 0),
                c.get(key).filter(|h| h.count > 0),
            );
            for (stat, pick, tolerance, of) in stats {
                let row = |baseline_v, current_v, change, noise, verdict| Row {
                    metric: key.0.clone(),
                    population: key.1.clone(),
                    step: key.2.clone(),
                    stat: stat.to_string(),
                    baseline: baseline_v,
                    current: current_v,
                    change,
                    noise,
                    tolerance,
                    verdict,
                };
                match (hb, hc) {
                    (Some(hb), Some(hc)) => {
                        let (vb, vc) = (of(hb) as f64, of(hc) as f64);
                        let band = noise_band(
                            &interval_values(baseline, hb.id, pick),
                            &interval_values(current, hc.id, pick),
                        );
                        let base = vb.max(1.0);
                        let change = (vc - vb) / base;
                        let noise = band / base;
                        let limit = tolerance.max(noise);
                        let verdict = if change > limit {
                            Change::Regression
                        } else if -change > limit {
                            Change::Improvement
                        } else {
                            Change::Same
                        };
                        rows.push(row(Some(vb), Some(vc), Some(change), noise, verdict));
                    }
                    (Some(hb), None) => rows.push(row(
                        Some(of(hb) as f64),
                        None,
                        None,
                        0.0,
                        Change::MissingInCurrent,
                    )),
                    (None, Some(hc)) => rows.push(row(
                        None,
                        Some(of(hc) as f64),
                        None,
                        0.0,
                        Change::MissingInBaseline,
                    )),
                    (None, None) => {}
                }
            }
        }
    }
    // Throughput and error rates of HTTP steps, error rates of hub populations.
    let mut steps: std::collections::BTreeSet<(String, String, &str, &str)> = Default::default();
    for s in [baseline, current] {
        for c in &s.counters {
            if c.metric == "http.requests" {
                steps.insert((
                    c.population.clone(),
                    c.step.clone(),
                    "http.requests",
                    "http.errors",
                ));
            }
            if c.metric == "hub.connects" {
                steps.insert((
                    c.population.clone(),
                    c.step.clone(),
                    "hub.connects",
                    "hub.errors",
                ));
            }
        }
    }
    for (population, step, total_metric, error_metric) in steps {
        let tb = counter_total(&baseline.counters, total_metric, &population, &step);
        let tc = counter_total(&current.counters, total_metric, &population, &step);
        let base_row = |stat: &str, tolerance: f64| Row {
            metric: total_metric.to_string(),
            population: population.clone(),
            step: step.clone(),
            stat: stat.to_string(),
            baseline: None,
            current: None,
            change: None,
            noise: 0.0,
            tolerance,
            verdict: Change::Same,
        };
        if total_metric == "http.requests" {
            let mut row = base_row("throughput", tolerances.throughput);
            let rate = |n: u64, s: &Summary| n as f64 / s.meta.duration_s.max(1e-9);
            match (tb, tc) {
                (Some(nb), Some(nc)) => {
                    let (rb, rc) = (rate(nb, baseline), rate(nc, current));
                    let band = noise_band(
                        &counter_intervals(baseline, total_metric, &population, &step),
                        &counter_intervals(current, total_metric, &population, &step),
                    );
                    let base = rb.max(1e-9);
                    let change = (rc - rb) / base;
                    let noise = band / base;
                    let limit = tolerances.throughput.max(noise);
                    row.baseline = Some(rb);
                    row.current = Some(rc);
                    row.change = Some(change);
                    row.noise = noise;
                    row.verdict = if -change > limit {
                        Change::Regression
                    } else if change > limit {
                        Change::Improvement
                    } else {
                        Change::Same
                    };
                }
                (Some(nb), None) => {
                    row.baseline = Some(rate(nb, baseline));
                    row.verdict = Change::MissingInCurrent;
                }
                (None, Some(nc)) => {
                    row.current = Some(rate(nc, current));
                    row.verdict = Change::MissingInBaseline;
                }
                (None, None) => continue,
            }
            rows.push(row);
        }
        let mut row = base_row("errors", tolerances.errors);
        row.metric = error_metric.to_string();
        match (tb, tc) {
            (Some(0), Some(0)) => continue,
            (Some(nb), Some(nc)) => {
                let eb = counter_total(&baseline.counters, error_metric, &population, &step)
                    .unwrap_or(0);
                let ec =
                    counter_total(&current.counters, error_metric, &population, &step).unwrap_or(0);
                let (pb, pc) = (eb as f64 / nb.max(1) as f64, ec as f64 / nc.max(1) as f64);
                let z = two_proportion_z(eb, nb, ec, nc);
                row.baseline = Some(pb);
                row.current = Some(pc);
                row.change = Some(pc - pb);
                row.noise = z;
                row.verdict = if pc - pb > tolerances.errors && z > 2.0 {
                    Change::Regression
                } else if pb - pc > tolerances.errors && z < -2.0 {
                    Change::Improvement
                } else {
                    Change::Same
                };
            }
            (Some(_), None) => row.verdict = Change::MissingInCurrent,
            (None, Some(_)) => row.verdict = Change::MissingInBaseline,
            (None, None) => continue,
        }
        rows.push(row);
    }
    let regressions = rows
        .iter()
        .filter(|r| r.verdict == Change::Regression)
        .count();
    Comparison {
        baseline: describe(baseline),
        current: describe(current),
        warnings,
        tolerances: tolerances.clone(),
        rows,
        regressions,
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

fn describe(s: &Summary) -> String {
    format!(
        "{} ({}, {})",
        s.meta.name,
        s.meta.started_at,
        short(&s.meta.scenario_hash)
    )
}

/// The comparison as SLO verdicts (for `run --baseline`): one per
/// regression, and one overall `baseline` verdict, so junit.xml, the
/// Markdown summary and the HTML report show it like any SLO.
pub fn verdicts(c: &Comparison) -> Vec<crate::slo::Verdict> {
    use crate::slo::{Op, Slo, Stat, Verdict};
    let mut out: Vec<Verdict> = c
        .rows
        .iter()
        .filter(|r| r.verdict == Change::Regression)
        .map(|r| {
            let stat = match r.stat.as_str() {
                "p50" => Stat::Percentile(50.0),
                "p95" => Stat::Percentile(95.0),
                "p99" => Stat::Percentile(99.0),
                _ => Stat::Rate,
            };
            let target = match r.stat.as_str() {
                "errors" => format!("<= +{:.3}pp vs baseline", r.tolerance * 100.0),
                "throughput" => format!(">= -{:.0}% vs baseline", r.tolerance * 100.0),
                _ => format!("<= +{:.0}% vs baseline", r.tolerance * 100.0),
            };
            Verdict {
                slo: Slo {
                    key: format!("baseline: {} {}", series_name(r), r.stat),
                    target,
                    metric: r.metric.clone(),
                    population: Some(r.population.clone()).filter(|p| !p.is_empty()),
                    step: Some(r.step.clone()).filter(|s| !s.is_empty()),
                    phase: None,
                    stat,
                    op: Op::Le,
                    threshold: r.tolerance,
                },
                measured: r.change,
                measured_text: format!(
                    "{} → {}: {}",
                    value(&r.stat, r.baseline),
                    value(&r.stat, r.current),
                    change_text(r)
                ),
                pass: false,
            }
        })
        .collect();
    out.push(Verdict {
        slo: Slo {
            key: "baseline: no regression".into(),
            target: format!("vs {}", c.baseline),
            metric: "baseline".into(),
            population: None,
            step: None,
            phase: None,
            stat: Stat::Count,
            op: Op::Le,
            threshold: 0.0,
        },
        measured: Some(c.regressions as f64),
        measured_text: format!(
            "{} regression(s) in {} compared values",
            c.regressions,
            c.rows.len()
        ),
        pass: c.regressions == 0,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, Layout, Point, Totals};
    use crate::report::json::{build, RunMeta};
    use crate::slo::PhaseSpan;
    use std::time::Duration;

    /// A 20-second run of one step: per-second p95 values `p95s` (each
    /// interval 100 samples: 90 at 1 ms, 10 at the interval's p95), `requests`
    /// per second, `errors` in total.
    fn run(hash: &str, p95s: &[u64], requests: u64, errors: u64, step: &str) -> Summary {
        let mut layout = Layout {
            phases: vec!["steady".into()],
            ..Layout::default()
        };
        let latency = layout.add_hist("http.latency", "u", step);
        let req = layout.add_counter("http.requests", "u", step, None);
        let err = layout.add_counter("http.errors", "u", step, Some("http_5xx"));
        let mut totals = Totals::new(layout);
        for (i, &p95) in p95s.iter().enumerate() {
            let mut h = new_histogram();
            h.record_n(1_000, 90).unwrap();
            h.record_n(p95, 10).unwrap();
            totals.merge_hist(latency, 0, &h);
            let mut counters = vec![0; 2 + 1];
            counters[req.0 as usize] = requests;
            totals.push_point(Point {
                elapsed_s: (i + 1) as f64,
                hists: vec![IntervalStats::of(&h)],
                counters,
                gauges: vec![],
            });
        }
        totals.add_counter(req, 0, requests * p95s.len() as u64);
        totals.add_counter(err, 0, errors);
        let meta = RunMeta {
            name: "s".into(),
            scenario_path: "s.toml".into(),
            scenario_hash: hash.into(),
            stampede_version: "0".into(),
            started_at: "2026-11-22T00:00:00Z".into(),
            ended_at: "2026-11-22T00:00:20Z".into(),
            duration_s: p95s.len() as f64,
            host: "h".into(),
            command_line: vec![],
            seed: 1,
            interrupted: false,
            exit_code: 0,
            notes: vec![],
            segment: None,
            start_at: None,
            merged: None,
            clock: None,
        };
        let spans = [PhaseSpan {
            name: "steady".into(),
            start: Duration::ZERO,
            end: Duration::from_secs(p95s.len() as u64),
        }];
        build(meta, &spans, &totals, &[])
    }

    fn row<'a>(c: &'a Comparison, metric: &str, stat: &str) -> &'a Row {
        c.rows
            .iter()
            .find(|r| r.metric == metric && r.stat == stat)
            .unwrap_or_else(|| panic!("no {metric} {stat} row in {:#?}", c.rows))
    }

    #[test]
    fn a_rise_beyond_the_tolerance_on_a_flat_run_is_a_regression() {
        let flat = [10_000u64; 20];
        let slower = [12_000u64; 20];
        let c = compare(
            &run("a", &flat, 100, 0, "list"),
            &run("a", &slower, 100, 0, "list"),
            &Tolerances::default(),
        );
        let p95 = row(&c, "http.latency", "p95");
        assert_eq!(p95.verdict, Change::Regression, "{p95:?}");
        assert!((p95.change.unwrap() - 0.2).abs() < 0.01);
        assert!(p95.noise < 0.01, "a flat run has no noise: {}", p95.noise);
        assert_eq!(row(&c, "http.latency", "p50").verdict, Change::Same);
        assert_eq!(c.regressions, 1);
        assert!(c.warnings.is_empty());
        // The other way round it is an improvement.
        let c = compare(
            &run("a", &slower, 100, 0, "list"),
            &run("a", &flat, 100, 0, "list"),
            &Tolerances::default(),
        );
        assert_eq!(row(&c, "http.latency", "p95").verdict, Change::Improvement);
        assert_eq!(c.regressions, 0);
    }

    #[test]
    fn waits_and_journeys_are_compared_like_latency() {
        let as_journey = |mut s: Summary| {
            for h in &mut s.histograms {
                h.metric = "http.journey".into();
                h.step.clear();
            }
            s
        };
        let c = compare(
            &as_journey(run("a", &[10_000u64; 20], 100, 0, "list")),
            &as_journey(run("a", &[12_000u64; 20], 100, 0, "list")),
            &Tolerances::default(),
        );
        let p95 = row(&c, "http.journey", "p95");
        assert_eq!(
            (p95.verdict, p95.population.as_str()),
            (Change::Regression, "u")
        );
        assert!(LATENCY_METRICS.contains(&"http.wait"));
    }

    #[test]
    fn a_rise_within_the_run_to_run_spread_is_not_flagged() {
        // p95 swings between 10 ms and 20 ms from second to second; the
        // current run is 12 % slower throughout.
        let noisy: Vec<u64> = (0..20)
            .map(|i| if i % 2 == 0 { 10_000 } else { 20_000 })
            .collect();
        let noisy_up: Vec<u64> = noisy.iter().map(|v| v * 112 / 100).collect();
        let b = run("a", &noisy, 100, 0, "list");
        let c = run("a", &noisy_up, 100, 0, "list");
        let p95 = row(
            &compare(&b, &c, &Tolerances::default()),
            "http.latency",
            "p95",
        )
        .clone();
        assert!(p95.change.unwrap() > 0.10, "{p95:?}");
        assert!(p95.noise > p95.change.unwrap(), "{p95:?}");
        assert_eq!(p95.verdict, Change::Same);
        // The same 12 % on a flat run is a regression.
        let flat = [10_000u64; 20];
        let flat_up = [11_200u64; 20];
        let c = compare(
            &run("a", &flat, 100, 0, "list"),
            &run("a", &flat_up, 100, 0, "list"),
            &Tolerances::default(),
        );
        assert_eq!(row(&c, "http.latency", "p95").verdict, Change::Regression);
    }

    #[test]
    fn error_rates_need_both_the_tolerance_and_significance() {
        let flat = [10_000u64; 20];
        // 0 of 20,000 → 100 of 20,000 (+0.5 pp, z ≫ 2): a regression.
        let c = compare(
            &run("a", &flat, 1000, 0, "list"),
            &run("a", &flat, 1000, 100, "list"),
            &Tolerances::default(),
        );
        let errors = row(&c, "http.errors", "errors");
        assert_eq!(errors.verdict, Change::Regression, "{errors:?}");
        assert!(errors.noise > 2.0);
        // 0 of 200 → 1 of 200 (+0.5 pp but z < 2): noise.
        let c = compare(
            &run("a", &flat, 10, 0, "list"),
            &run("a", &flat, 10, 1, "list"),
            &Tolerances::default(),
        );
        assert_eq!(row(&c, "http.errors", "errors").verdict, Change::Same);
    }

    #[test]
    fn throughput_drops_and_missing_series_and_other_scenarios_are_reported() {
        let flat = [10_000u64; 20];
        let c = compare(
            &run("a", &flat, 100, 0, "list"),
            &run("b", &flat, 70, 0, "browse"),
            &Tolerances::default(),
        );
        assert!(
            c.warnings[0].contains("different scenarios"),
            "{:?}",
            c.warnings
        );
        let list = c
            .rows
            .iter()
            .find(|r| r.step == "list" && r.stat == "p95")
            .unwrap();
        assert_eq!(list.verdict, Change::MissingInCurrent);
        let browse = c
            .rows
            .iter()
            .find(|r| r.step == "browse" && r.stat == "p95")
            .unwrap();
        assert_eq!(browse.verdict, Change::MissingInBaseline);
        let c = compare(
            &run("a", &flat, 100, 0, "list"),
            &run("a", &flat, 70, 0, "list"),
            &Tolerances::default(),
        );
        let t = row(&c, "http.requests", "throughput");
        assert_eq!(t.verdict, Change::Regression, "{t:?}");
        assert!((t.change.unwrap() + 0.3).abs() < 1e-9);
        let md = markdown(&c);
        assert!(
            md.contains("| http.requests u/list | throughput | 100.0/s | 70.0/s |"),
            "{md}"
        );
        assert!(md.contains("**REGRESSION**"));
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["regressions"], 1);
    }
}
