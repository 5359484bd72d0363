//! SLO evaluation: the value an [`Slo`] judges, read from the merged
//! [`Totals`] under its tags (a histogram's stat, a counter's count or rate,
//! a failure counter's share), and the [`Verdict`] it gets.

use std::time::Duration;

use super::{format_value, Op, PhaseSpan, Slo, Stat, Verdict};
use crate::metrics::catalogue::{
    metric_kind, MetricKind, HTTP_RECOVERY, HTTP_WAIT, HTTP_WAIT_OPEN, HUB_RECOVERY, UNRECOVERED,
};
use crate::metrics::{TagFilter, Totals};

/// The verdict's text for a recovery SLO in a run without disruptions.
pub const NOTHING_DISRUPTED: &str = "nothing was disrupted";

/// `hub.recovery` and `http.recovery`: measured only after a disruption.
fn is_recovery(metric: &str) -> bool {
    metric == HUB_RECOVERY || metric == HTTP_RECOVERY
}

/// Judge every SLO on the totals. `run_duration` is the measured length of
/// the run (for unscoped rates); a phase-scoped SLO uses that phase's span.
pub fn evaluate(
    slos: &[Slo],
    totals: &Totals,
    phases: &[PhaseSpan],
    run_duration: Duration,
) -> Vec<Verdict> {
    slos.iter()
        .map(|slo| {
            let measured = measure(slo, totals, phases, run_duration);
            // A drop event that never recovered has no recovery time: the
            // SLO fails, saying so, whatever the recovered events measured.
            let unrecovered = if slo.metric == HUB_RECOVERY {
                let filter = TagFilter {
                    population: slo.population.clone(),
                    ..TagFilter::default()
                };
                totals.sum_counters(UNRECOVERED, None, &filter)
            } else if slo.metric == HTTP_RECOVERY {
                totals.sum_counters(
                    super::recovery::HTTP_UNRECOVERED,
                    None,
                    &TagFilter::default(),
                )
            } else {
                0
            };
            if unrecovered > 0 {
                return Verdict {
                    slo: slo.clone(),
                    measured: None,
                    measured_text: format!(
                        "not recovered ({unrecovered} {}{})",
                        if slo.metric == HUB_RECOVERY {
                            "disruption"
                        } else {
                            "error burst"
                        },
                        if unrecovered == 1 { "" } else { "s" }
                    ),
                    pass: false,
                };
            }
            // A recovery SLO in a run where nothing was disrupted has no
            // time to judge: it holds (a gate on recovery passes when there
            // was nothing to recover from), and the verdict says why.
            if measured.is_none() && is_recovery(&slo.metric) {
                return Verdict {
                    slo: slo.clone(),
                    measured: None,
                    measured_text: NOTHING_DISRUPTED.to_owned(),
                    pass: true,
                };
            }
            let mut verdict = Verdict {
                slo: slo.clone(),
                measured,
                measured_text: measured
                    .map_or_else(|| "no data".to_owned(), |m| format_value(slo.unit(), m)),
                pass: measured.is_some_and(|m| slo.op.holds(m, slo.threshold)),
            };
            if slo.metric == HTTP_WAIT {
                open_waits(&mut verdict, totals);
            }
            verdict
        })
        .collect()
}

/// An SLO on `http.wait` judges the waits that ended; waits still open at
/// the run's end are left out of it, and its verdict says how many. Each
/// open wait will take at least as long as it had waited, so the stat of
/// the ended and open waits together (open ones at their time so far) is
/// a lower bound of the true one: an upper-bound SLO (`<`, `<=`) on a
/// percentile, `max`, `min` or `mean` that this bound already breaks
/// fails, whatever the ended waits measured.
fn open_waits(verdict: &mut Verdict, totals: &Totals) {
    let slo = &verdict.slo;
    let filter = filter(slo, totals);
    let Some(open) = totals
        .select_hist(HTTP_WAIT_OPEN, &filter)
        .filter(|h| !h.is_empty())
    else {
        return;
    };
    let n = open.len();
    let mut note = format!(
        " ({n} wait{} still open at the end, left out",
        if n == 1 { "" } else { "s" }
    );
    if matches!(slo.op, Op::Lt | Op::Le) && slo.stat != Stat::Count {
        let mut all = open.clone();
        if let Some(ended) = totals.select_hist(HTTP_WAIT, &filter) {
            let _ = all.add(&ended);
        }
        if let Some(bound) = hist_stat(&all, slo.stat) {
            if !slo.op.holds(bound, slo.threshold) {
                verdict.pass = false;
                note.push_str(&format!(
                    "; counting them: at least {}",
                    format_value(slo.unit(), bound)
                ));
            }
        }
    }
    note.push(')');
    verdict.measured_text.push_str(&note);
}

/// The tags an SLO selects (a phase the layout lacks selects nothing).
fn filter(slo: &Slo, totals: &Totals) -> TagFilter {
    TagFilter {
        population: slo.population.clone(),
        step: slo.step.clone(),
        phase: slo
            .phase
            .as_ref()
            .map(|name| totals.layout().phase_index(name).unwrap_or(usize::MAX)),
    }
}

/// A histogram's stat (not `count` or `rate`); None when it is empty.
fn hist_stat(h: &hdrhistogram::Histogram<u64>, stat: Stat) -> Option<f64> {
    if h.is_empty() {
        return None;
    }
    match stat {
        Stat::Percentile(p) => Some(h.value_at_quantile(p / 100.0) as f64),
        Stat::Max => Some(h.max() as f64),
        Stat::Min => Some(h.min() as f64),
        Stat::Mean => Some(h.mean()),
        Stat::Count | Stat::Rate => None,
    }
}

/// The value an SLO judges, in its canonical unit; None when nothing matched.
pub fn measure(
    slo: &Slo,
    totals: &Totals,
    phases: &[PhaseSpan],
    run_duration: Duration,
) -> Option<f64> {
    let filter = filter(slo, totals);
    match (metric_kind(&slo.metric), slo.stat) {
        (MetricKind::Histogram | MetricKind::CountHistogram, stat) => {
            let h = totals.select_hist(&slo.metric, &filter)?;
            if stat == Stat::Count {
                return Some(h.len() as f64);
            }
            // `rate` is refused by `parse`; a hand-built Slo measures nothing.
            hist_stat(&h, stat)
        }
        (MetricKind::Counter, Stat::Rate) => {
            let n = totals.select_counters(&slo.metric, None, &filter)?;
            let span = match &slo.phase {
                Some(name) => phases
                    .iter()
                    .find(|p| p.name == *name)
                    .map(|p| p.end.saturating_sub(p.start))?,
                None => run_duration,
            };
            (!span.is_zero()).then(|| n as f64 / span.as_secs_f64())
        }
        (MetricKind::Counter, _) => totals
            .select_counters(&slo.metric, None, &filter)
            .map(|n| n as f64),
        (MetricKind::Ratio(denominator), Stat::Rate) => {
            let total = totals.select_counters(denominator, None, &filter)?;
            let failures = totals.sum_counters(&slo.metric, None, &filter);
            (total > 0).then(|| failures as f64 / total as f64)
        }
        (MetricKind::Ratio(denominator), _) => totals
            .select_counters(&slo.metric, None, &filter)
            // No failure series at all, but the denominator was counted: zero.
            .or_else(|| {
                totals
                    .select_counters(denominator, None, &filter)
                    .map(|_| 0)
            })
            .map(|n| n as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::ok;
    use super::*;
    use crate::metrics::{new_histogram, Layout};
    use crate::slo::Unit;

    /// Phases warm-up (0..10 s) and spike (10..14 s); a run of 20 s.
    struct Run {
        totals: Totals,
        phases: Vec<PhaseSpan>,
        run: Duration,
    }

    fn run() -> Run {
        let mut layout = Layout {
            phases: vec!["warm-up".into(), "spike".into()],
            ..Layout::default()
        };
        let browse = layout.add_hist("http.latency", "shopper", "browse");
        let checkout = layout.add_hist("http.latency", "shopper", "checkout");
        let service = layout.add_hist("http.service_time", "shopper", "browse");
        layout.add_hist("generator.lag", "", "");
        let req_browse = layout.add_counter("http.requests", "shopper", "browse", None);
        let req_checkout = layout.add_counter("http.requests", "shopper", "checkout", None);
        let err_timeout = layout.add_counter("http.errors", "shopper", "checkout", Some("timeout"));
        let err_5xx = layout.add_counter("http.errors", "shopper", "browse", Some("http_5xx"));
        let mut totals = Totals::new(layout);
        let hist = |values: &mut dyn Iterator<Item = u64>| {
            let mut h = new_histogram();
            values.for_each(|v| h.record(v).unwrap());
            h
        };
        // Browse: warm-up 1..=1000 µs; spike 1000 samples of 100 ms.
        totals.merge_hist(browse, 0, &hist(&mut (1..=1000)));
        totals.merge_hist(browse, 1, &hist(&mut std::iter::repeat_n(100_000, 1000)));
        totals.merge_hist(checkout, 1, &hist(&mut std::iter::repeat_n(300_000, 10)));
        totals.merge_hist(service, 0, &hist(&mut (1..=100)));
        totals.add_counter(req_browse, 0, 1000);
        totals.add_counter(req_browse, 1, 1000);
        totals.add_counter(req_checkout, 1, 2000);
        totals.add_counter(err_timeout, 1, 3);
        totals.add_counter(err_5xx, 1, 1);
        let secs = Duration::from_secs;
        Run {
            totals,
            phases: vec![
                PhaseSpan {
                    name: "warm-up".into(),
                    start: secs(0),
                    end: secs(10),
                },
                PhaseSpan {
                    name: "spike".into(),
                    start: secs(10),
                    end: secs(14),
                },
            ],
            run: secs(20),
        }
    }

    fn judge(run: &Run, key: &str, target: &str) -> Verdict {
        evaluate(&[ok(key, target)], &run.totals, &run.phases, run.run).remove(0)
    }

    /// (measured, text, pass) of one SLO.
    fn check(run: &Run, key: &str, target: &str) -> (Option<f64>, String, bool) {
        let v = judge(run, key, target);
        (v.measured, v.measured_text, v.pass)
    }

    #[test]
    fn histogram_slos_pass_fail_and_lack_data() {
        let r = run();
        // Warm-up browse p50 is 500 µs exactly (values < 2048 are exact).
        let v = check(&r, "http.latency{phase=warm-up}.p50", "< 1ms");
        assert_eq!(v, (Some(500.0), "500µs".into(), true));
        assert!(!check(&r, "http.latency{phase=warm-up}.p50", "< 500us").2);
        assert!(check(&r, "http.latency{phase=warm-up}.p50", "<= 500us").2);
        // Over the run, 2010 samples: p95 falls in the spike's 100 ms.
        let (measured, text, pass) = check(&r, "http.latency.p95", "< 100ms");
        let p95 = new_histogram().highest_equivalent(100_000) as f64;
        assert_eq!((measured, pass), (Some(p95), false));
        assert_eq!(text, format_value(Unit::Micros, p95));
        assert!(check(&r, "http.latency.p95", "< 101ms").2);
        let (max, _, pass) = check(&r, "http.latency{step=checkout}.max", "> 250ms");
        assert!(pass && max.unwrap() >= 300_000.0);
        assert_eq!(
            check(&r, "http.latency{step=browse,phase=warm-up}.min", ">= 1us").0,
            Some(1.0)
        );
        assert_eq!(check(&r, "http.service_time.mean", "< 1ms").0, Some(50.5));
        assert_eq!(
            check(&r, "http.latency{population=shopper}.count", ">= 2010").0,
            Some(2010.0)
        );

        // No data: a step nobody has, a phase the run lacks, an empty series.
        let none = (None, "no data".to_owned(), false);
        assert_eq!(check(&r, "http.latency{step=pay}.p99", "< 1s"), none);
        assert_eq!(check(&r, "http.latency{phase=cooldown}.p99", "< 1s"), none);
        assert_eq!(check(&r, "generator.lag.p99", "< 10ms"), none);
        assert_eq!(
            check(&r, "http.latency{step=checkout,phase=warm-up}.max", "< 1s"),
            none
        );
        // A count of an empty but existing series is a measured zero.
        assert_eq!(
            check(&r, "generator.lag.count", "<= 0"),
            (Some(0.0), "0".into(), true)
        );
    }

    /// `http.wait` of 10 waits that ended (1..=10 ms) and 2 still open
    /// (their 20 ms and 4 ms so far).
    fn waits() -> Totals {
        let mut layout = Layout {
            phases: vec!["one".into()],
            ..Layout::default()
        };
        let wait = layout.add_hist(HTTP_WAIT, "shopper", "status");
        let open = layout.add_hist(HTTP_WAIT_OPEN, "shopper", "status");
        let mut totals = Totals::new(layout);
        let mut h = new_histogram();
        (1..=10).for_each(|ms| h.record(ms * 1000).unwrap());
        totals.merge_hist(wait, 0, &h);
        let mut h = new_histogram();
        [20_000, 4_000]
            .into_iter()
            .for_each(|v| h.record(v).unwrap());
        totals.merge_hist(open, 0, &h);
        totals
    }

    #[test]
    fn open_waits_are_said_and_fail_an_upper_bound_they_already_break() {
        let totals = waits();
        let judge = |key: &str, target: &str| {
            let v = evaluate(&[ok(key, target)], &totals, &[], Duration::from_secs(1)).remove(0);
            (v.pass, v.measured_text)
        };
        let said = "(2 waits still open at the end, left out)";
        // The ended waits' max is 10 ms; the open one at 20 ms breaks < 15ms.
        let (pass, text) = judge("http.wait.max", "< 15ms");
        assert!(!pass, "{text}");
        assert!(
            text.starts_with("10") && text.contains("counting them: at least 20"),
            "{text}"
        );
        // Counting them the max is 20 ms: < 30ms holds, said.
        let (pass, text) = judge("http.wait.max", "< 30ms");
        assert!(pass && text.ends_with(said), "{text}");
        // The median of 12 (1..=10, 4, 20): 5 ms; < 6ms holds either way.
        assert!(judge("http.wait.p50", "< 6ms").0);
        // A lower bound or a count is not judged on them, only said.
        let (pass, text) = judge("http.wait.min", "> 500us");
        assert!(pass && text.ends_with(said), "{text}");
        let (pass, text) = judge("http.wait.count", "<= 10");
        assert!(pass && text == format!("10 {said}"), "{text}");
        // Another step's SLO does not see them.
        let (pass, text) = judge("http.wait{step=other}.max", "< 1s");
        assert_eq!((pass, text.as_str()), (false, "no data"));
    }

    #[test]
    fn request_rates_use_the_run_or_the_phase_span() {
        let r = run();
        // 4000 requests over the 20 s run.
        assert_eq!(
            check(&r, "http.requests.rate", ">= 200/s"),
            (Some(200.0), "200/s".into(), true)
        );
        assert!(!check(&r, "http.requests.rate", "> 200/s").2);
        // Spike: 3000 requests over its 4 s span.
        assert_eq!(
            check(&r, "http.requests{phase=spike}.rate", ">= 1000/s"),
            (Some(750.0), "750/s".into(), false)
        );
        assert_eq!(
            check(
                &r,
                "http.requests{phase=warm-up,step=browse}.rate",
                "> 50/s"
            )
            .0,
            Some(100.0)
        );
        assert_eq!(
            check(&r, "http.requests{step=checkout}.count", ">= 2000").0,
            Some(2000.0)
        );
        assert_eq!(
            check(&r, "http.requests{step=pay}.rate", "> 0").1,
            "no data"
        );
        assert_eq!(
            check(&r, "http.requests{phase=cooldown}.rate", "> 0").1,
            "no data"
        );
        // A phase in the layout but with no span (never reached): no data.
        let mut unreached = run();
        unreached.phases.pop();
        assert_eq!(
            check(&unreached, "http.requests{phase=spike}.rate", "> 0").1,
            "no data"
        );
    }

    #[test]
    fn error_rates_are_errors_over_requests() {
        let r = run();
        // 4 errors / 4000 requests = 0.1 %.
        let (rate, text, pass) = check(&r, "http.errors.rate", "< 0.1%");
        assert_eq!((rate, text.as_str(), pass), (Some(0.001), "0.1%", false));
        assert!(check(&r, "http.errors.rate", "<= 0.1%").2);
        // Checkout in the spike: 3 / 2000.
        assert_eq!(
            check(&r, "http.errors{step=checkout,phase=spike}.rate", "< 1%").0,
            Some(0.0015)
        );
        assert_eq!(
            check(&r, "http.errors{phase=warm-up}.rate", "< 1%"),
            (Some(0.0), "0%".into(), true)
        );
        assert_eq!(
            check(&r, "http.errors.count", "<= 4"),
            (Some(4.0), "4".into(), true)
        );
        assert!(!check(&r, "http.errors{step=checkout}.count", "< 3").2);
        // Zero requests: no rate to speak of.
        let mut quiet = Totals::new(r.totals.layout().clone());
        quiet.add_counter(crate::metrics::CounterId(2), 0, 0);
        let v = evaluate(&[ok("http.errors.rate", "< 1%")], &quiet, &r.phases, r.run).remove(0);
        assert_eq!(
            (v.measured, v.measured_text.as_str(), v.pass),
            (None, "no data", false)
        );
    }

    #[test]
    fn error_count_without_error_series_is_zero_when_requests_exist() {
        let mut layout = Layout::default();
        let requests = layout.add_counter("http.requests", "", "", None);
        let mut totals = Totals::new(layout);
        totals.add_counter(requests, 0, 10);
        let slos = [
            ok("http.errors.count", "< 1"),
            ok("http.errors.rate", "< 1%"),
        ];
        let verdicts = evaluate(&slos, &totals, &[], Duration::from_secs(1));
        assert_eq!(verdicts[0].measured, Some(0.0));
        assert_eq!(verdicts[1].measured, Some(0.0));
        assert!(verdicts.iter().all(|v| v.pass));
    }
}
