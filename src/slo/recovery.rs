//! `http.recovery`: how long HTTP took to be healthy again after an error
//! burst or a fault action, read from the run's per-second series against
//! the scenario's own SLOs.
//!
//! # The rule
//! Each 1-second interval of the series is judged on its own:
//! - **bad** when its error rate breaks an `http.errors…rate` SLO (the
//!   errors and requests of the series the SLO's tags select, in that
//!   interval; a phase-scoped SLO judges only intervals inside its phase),
//!   or — when the scenario has no error-rate SLO — when it has any error;
//!   or when a latency SLO (`http.latency…` / `http.service_time…`) breaks
//!   in it: the interval's p50 / p95 / p99 / max of the worst matching
//!   series, a percentile SLO reading the next stat up (p90 → p95,
//!   p99.9 → max; `mean` reads p50);
//! - **idle** when it has no request (it neither starts nor ends a burst);
//! - **good** otherwise.
//!
//! A **burst** starts at the start of a bad interval whose *errors* break
//! the rule (a latency-only interval does not start one), or, when a fault
//! action started within [`ACTION_WINDOW_S`] before the end of any bad
//! interval (errors or latency), at that action's start (cause `action`).
//! Every fault action that comes while no burst is open opens one at its
//! own time (cause `action`) if its second has requests, even when nothing
//! breaks: a failover the service absorbed then measures the steady
//! seconds, about 3 s (its own second, begun before it, is not counted as
//! steady), with 0 bad seconds. Such a window that is still open at the
//! end of the run with nothing bad in it (the run ended too soon after the
//! action) is dropped, not counted as unrecovered.
//! It is **recovered** at the end of the [`STEADY_INTERVALS`]-th
//! consecutive good interval after it: `http.recovery` = that − its start.
//! So a burst of D seconds measures about D + 3 s, within the intervals'
//! 1-s precision. A burst still open at the end of the run is not
//! recovered (`http.unrecovered`; an SLO on `http.recovery` then fails).
//! After recovery a new burst may start.
//!
//! A merge of segments computes it again on the merged per-second series.

use super::{PhaseSpan, Slo, Stat};
use crate::metrics::catalogue::{HTTP_ERRORS, HTTP_LATENCY, HTTP_REQUESTS, HTTP_SERVICE_TIME};
use crate::metrics::{IntervalStats, Point, TagFilter, Totals};

/// Consecutive good seconds that mean recovered.
pub const STEADY_INTERVALS: usize = 3;
/// A burst starting this soon after a fault action is measured from it.
pub const ACTION_WINDOW_S: f64 = 10.0;
/// `http.unrecovered`: bursts still open at the end of the run.
pub const HTTP_UNRECOVERED: &str = "http.unrecovered";

/// One HTTP disruption (summary.json `http_disruptions`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HttpDisruption {
    /// Phase it started in.
    pub phase: String,
    /// `errors` (an interval broke the error rule) or `action`.
    pub cause: String,
    /// The fault action, when `cause` is `action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// Its start, seconds from the run's start.
    pub start_s: f64,
    /// Seconds with bad intervals (errors or latency) before recovery.
    pub bad_s: f64,
    /// Start → the end of the steady seconds, seconds; None: not recovered
    /// by the end of the run.
    pub recovery_s: Option<f64>,
}

/// A fault action on the run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionMark {
    pub name: String,
    /// Seconds from the run's start.
    pub at_s: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Health {
    Idle,
    Good,
    /// `errors`: the error rule broke (else only latency did).
    Bad {
        errors: bool,
    },
}

/// Every HTTP disruption of a run, from its per-second series (see the
/// module docs).
pub fn http_disruptions(
    slos: &[Slo],
    totals: &Totals,
    phases: &[PhaseSpan],
    actions: &[ActionMark],
) -> Vec<HttpDisruption> {
    let judge = Judge::new(slos, totals);
    let phase_at = |t: f64| {
        phases
            .iter()
            .rev()
            .find(|p| p.start.as_secs_f64() <= t + 1e-9)
            .or(phases.first())
            .map_or_else(String::new, |p| p.name.clone())
    };
    let mut out = Vec::new();
    // (start, cause action, bad seconds, steady count)
    let mut open: Option<(f64, Option<String>, f64, usize)> = None;
    let mut from = 0.0f64;
    for point in &totals.series() {
        let (start, end) = (from, point.elapsed_s);
        from = end;
        let health = judge.health(point, start, end, phases);
        // A fault action opens a window of its own even when nothing
        // breaks: recovery is then the steady seconds after it. Its own
        // second, begun before it, does not count as steady.
        if open.is_none() && health != Health::Idle {
            let action = actions
                .iter()
                .filter(|a| start <= a.at_s && a.at_s < end)
                .max_by(|a, b| a.at_s.total_cmp(&b.at_s));
            if let Some(a) = action {
                let bad = match health {
                    Health::Bad { .. } => end - start,
                    _ => 0.0,
                };
                open = Some((a.at_s, Some(a.name.clone()), bad, 0));
                continue;
            }
        }
        match (&mut open, health) {
            (None, Health::Bad { errors }) => {
                let action = actions
                    .iter()
                    .filter(|a| a.at_s <= end && end - a.at_s <= ACTION_WINDOW_S + 1.0)
                    .max_by(|a, b| a.at_s.total_cmp(&b.at_s));
                match action {
                    Some(a) => open = Some((a.at_s, Some(a.name.clone()), end - start, 0)),
                    None if errors => open = Some((start, None, end - start, 0)),
                    None => {}
                }
            }
            (None, _) => {}
            (Some(burst), Health::Good) => {
                burst.3 += 1;
                if burst.3 == STEADY_INTERVALS {
                    let (at, action, bad, _) = open.take().expect("open");
                    out.push(disruption(&phase_at(at), at, action, bad, Some(end - at)));
                }
            }
            (Some(burst), Health::Bad { .. }) => {
                burst.2 += end - start;
                burst.3 = 0;
            }
            (Some(burst), Health::Idle) => burst.3 = 0,
        }
    }
    // Still open at the end: not recovered — unless it is an action's
    // window in which nothing broke (the run ended before its steady
    // seconds): nothing to measure then.
    if let Some((at, action, bad, _)) = open {
        if bad > 0.0 || action.is_none() {
            out.push(disruption(&phase_at(at), at, action, bad, None));
        }
    }
    out
}

fn disruption(
    phase: &str,
    start_s: f64,
    action: Option<String>,
    bad_s: f64,
    recovery_s: Option<f64>,
) -> HttpDisruption {
    HttpDisruption {
        phase: phase.to_string(),
        cause: if action.is_some() { "action" } else { "errors" }.to_string(),
        action,
        start_s,
        bad_s,
        recovery_s,
    }
}

/// The series each rule reads, found once.
struct Judge<'a> {
    requests: Vec<usize>,
    errors: Vec<usize>,
    /// Error-rate SLOs: (slo, its error series, its request series).
    error_slos: Vec<(&'a Slo, Vec<usize>, Vec<usize>)>,
    /// Latency SLOs: (slo, its histogram series).
    latency_slos: Vec<(&'a Slo, Vec<usize>)>,
}

impl<'a> Judge<'a> {
    fn new(slos: &'a [Slo], totals: &Totals) -> Judge<'a> {
        let layout = totals.layout();
        let tags = |slo: &Slo| TagFilter {
            population: slo.population.clone(),
            step: slo.step.clone(),
            phase: None,
        };
        let counters = |metric: &str, filter: &TagFilter| -> Vec<usize> {
            (layout.counters.iter().enumerate())
                .filter(|(_, d)| d.metric == metric && filter.matches(d))
                .map(|(i, _)| i)
                .collect()
        };
        let all = TagFilter::default();
        Judge {
            requests: counters(HTTP_REQUESTS, &all),
            errors: counters(HTTP_ERRORS, &all),
            error_slos: (slos.iter())
                .filter(|s| s.metric == HTTP_ERRORS && s.stat == Stat::Rate)
                .map(|s| {
                    (
                        s,
                        counters(HTTP_ERRORS, &tags(s)),
                        counters(HTTP_REQUESTS, &tags(s)),
                    )
                })
                .collect(),
            latency_slos: (slos.iter())
                .filter(|s| {
                    (s.metric == HTTP_LATENCY || s.metric == HTTP_SERVICE_TIME)
                        && !matches!(s.stat, Stat::Min | Stat::Count | Stat::Rate)
                })
                .map(|s| {
                    let filter = tags(s);
                    let ids = (layout.hists.iter().enumerate())
                        .filter(|(_, d)| d.metric == s.metric && filter.matches(d))
                        .map(|(i, _)| i)
                        .collect();
                    (s, ids)
                })
                .collect(),
        }
    }

    fn health(&self, point: &Point, start: f64, end: f64, phases: &[PhaseSpan]) -> Health {
        let sum = |ids: &[usize]| -> u64 {
            ids.iter()
                .map(|&i| point.counters.get(i).copied().unwrap_or(0))
                .sum()
        };
        if sum(&self.requests) == 0 {
            return Health::Idle;
        }
        // A phase-scoped SLO judges only the intervals of its phase.
        let applies = |slo: &Slo| match &slo.phase {
            None => true,
            Some(name) => phases.iter().any(|p| {
                &p.name == name
                    && start + 1e-9 >= p.start.as_secs_f64()
                    && end <= p.end.as_secs_f64() + 1.0
            }),
        };
        let errors = if self.error_slos.is_empty() {
            sum(&self.errors) > 0
        } else {
            self.error_slos.iter().any(|(slo, errors, requests)| {
                let requests = sum(requests);
                applies(slo)
                    && requests > 0
                    && !slo
                        .op
                        .holds(sum(errors) as f64 / requests as f64, slo.threshold)
            })
        };
        let latency = self.latency_slos.iter().any(|(slo, ids)| {
            let worst = ids
                .iter()
                .filter_map(|&i| point.hists.get(i))
                .filter(|h| h.count > 0)
                .map(|h| stat_of(h, slo.stat))
                .max();
            applies(slo) && worst.is_some_and(|v| !slo.op.holds(v as f64, slo.threshold))
        });
        if errors || latency {
            Health::Bad { errors }
        } else {
            Health::Good
        }
    }
}

/// The interval stat an SLO's stat reads (the next one up).
fn stat_of(h: &IntervalStats, stat: Stat) -> u64 {
    match stat {
        Stat::Percentile(p) if p <= 50.0 => h.p50,
        Stat::Percentile(p) if p <= 95.0 => h.p95,
        Stat::Percentile(p) if p <= 99.0 => h.p99,
        Stat::Mean => h.p50,
        _ => h.max,
    }
}

/// Record `disruptions` into `totals`: each recovery time in
/// `http.recovery` (its phase), each one not recovered as one
/// `http.unrecovered` (the last phase, as the run counts it at its end).
/// Nothing when the layout lacks the series (no HTTP users).
pub fn record(totals: &mut Totals, disruptions: &[HttpDisruption]) {
    let layout = totals.layout().clone();
    let hist =
        (layout.hists.iter()).position(|d| d.metric == crate::metrics::catalogue::HTTP_RECOVERY);
    let counter = (layout.counters.iter()).position(|d| d.metric == HTTP_UNRECOVERED);
    let (Some(hist), Some(counter)) = (hist, counter) else {
        return;
    };
    let last = layout.phases.len().saturating_sub(1);
    for d in disruptions {
        let phase = layout.phase_index(&d.phase).unwrap_or(last);
        match d.recovery_s {
            Some(s) => {
                let mut h = crate::metrics::new_histogram();
                h.saturating_record((s * 1e6).round() as u64);
                totals.merge_hist(crate::metrics::HistId(hist as u32), phase, &h);
            }
            None => totals.add_counter(crate::metrics::CounterId(counter as u32), last, 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Layout;
    use std::time::Duration;

    /// One step's series; each second: (requests, errors, p95 µs).
    fn run(seconds: &[(u64, u64, u64)]) -> Totals {
        let mut layout = Layout {
            phases: vec!["p".into()],
            ..Layout::default()
        };
        layout.add_hist(HTTP_LATENCY, "u", "s");
        layout.add_counter(HTTP_REQUESTS, "u", "s", None);
        layout.add_counter(HTTP_ERRORS, "u", "s", Some("http_5xx"));
        layout.add_hist(crate::metrics::catalogue::HTTP_RECOVERY, "", "");
        layout.add_counter(HTTP_UNRECOVERED, "", "", None);
        let mut totals = Totals::new(layout);
        for (i, &(requests, errors, p95)) in seconds.iter().enumerate() {
            let latency = IntervalStats {
                count: requests,
                p50: p95 / 2,
                p95,
                p99: p95,
                max: p95,
            };
            totals.push_point(Point {
                elapsed_s: (i + 1) as f64,
                hists: vec![latency, IntervalStats::default()],
                counters: vec![requests, errors, 0],
                gauges: Vec::new(),
            });
        }
        totals
    }

    fn phases(n: usize) -> Vec<PhaseSpan> {
        vec![PhaseSpan {
            name: "p".into(),
            start: Duration::ZERO,
            end: Duration::from_secs(n as u64),
        }]
    }

    fn slo(key: &str, target: &str) -> Slo {
        super::super::parse(key, target).unwrap()
    }

    const OK: (u64, u64, u64) = (100, 0, 10_000);
    const FAILING: (u64, u64, u64) = (100, 50, 10_000);
    const SLOW: (u64, u64, u64) = (100, 0, 900_000);

    #[test]
    fn a_burst_recovers_at_the_end_of_three_steady_seconds() {
        let series = [OK, OK, FAILING, FAILING, OK, OK, OK, OK];
        let totals = run(&series);
        let slos = [slo("http.errors.rate", "< 1%")];
        let found = http_disruptions(&slos, &totals, &phases(series.len()), &[]);
        assert_eq!(found.len(), 1);
        let d = &found[0];
        assert_eq!((d.cause.as_str(), d.start_s, d.bad_s), ("errors", 2.0, 2.0));
        // Burst of 2 s (from 2 s), steady 4..7: recovered at 7 s.
        assert_eq!(d.recovery_s, Some(5.0));
        let mut totals = totals;
        record(&mut totals, &found);
        let h = totals
            .select_hist(
                crate::metrics::catalogue::HTTP_RECOVERY,
                &TagFilter::default(),
            )
            .unwrap();
        assert_eq!((h.len(), h.max()), (1, h.highest_equivalent(5_000_000)));
    }

    #[test]
    fn errors_within_the_slo_are_no_burst_but_any_error_is_without_one() {
        let few = (100, 1, 10_000);
        let series = [OK, few, OK, OK, OK];
        let totals = run(&series);
        let within = [slo("http.errors.rate", "< 5%")];
        assert!(http_disruptions(&within, &totals, &phases(5), &[]).is_empty());
        let found = http_disruptions(&[], &totals, &phases(5), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].start_s, found[0].recovery_s), (1.0, Some(4.0)));
    }

    #[test]
    fn slow_seconds_delay_recovery_but_do_not_start_a_burst_alone() {
        let slos = [
            slo("http.errors.rate", "< 1%"),
            slo("http.latency.p95", "< 500ms"),
        ];
        // Slow only: nothing.
        let totals = run(&[OK, SLOW, SLOW, OK, OK, OK]);
        assert!(http_disruptions(&slos, &totals, &phases(6), &[]).is_empty());
        // Errors, then slow: recovered only after the slow seconds.
        let totals = run(&[OK, FAILING, SLOW, OK, SLOW, OK, OK, OK]);
        let found = http_disruptions(&slos, &totals, &phases(8), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].bad_s, found[0].recovery_s), (3.0, Some(7.0)));
    }

    #[test]
    fn a_fault_action_starts_the_clock_and_an_open_burst_is_unrecovered() {
        let series = [OK, OK, SLOW, FAILING, OK, OK, OK];
        let totals = run(&series);
        let slos = [slo("http.latency.p99", "< 500ms")];
        let kill = [ActionMark {
            name: "kill".into(),
            at_s: 1.5,
        }];
        let found = http_disruptions(&slos, &totals, &phases(7), &kill);
        assert_eq!(found.len(), 1);
        let d = &found[0];
        assert_eq!(
            (d.cause.as_str(), d.action.as_deref()),
            ("action", Some("kill"))
        );
        assert_eq!((d.start_s, d.recovery_s), (1.5, Some(5.5)));
        // Still failing at the end: not recovered, counted.
        let mut totals = run(&[OK, FAILING, OK, FAILING]);
        let found = http_disruptions(&slos, &totals, &phases(4), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].recovery_s, None);
        record(&mut totals, &found);
        assert_eq!(
            totals.sum_counters(HTTP_UNRECOVERED, None, &TagFilter::default()),
            1
        );
    }

    #[test]
    fn a_fault_action_that_breaks_nothing_measures_the_steady_seconds() {
        let slos = [slo("http.latency.p99", "< 500ms")];
        let restart = [ActionMark {
            name: "restart".into(),
            at_s: 1.25,
        }];
        let totals = run(&[OK, OK, OK, OK, OK, OK]);
        let found = http_disruptions(&slos, &totals, &phases(6), &restart);
        assert_eq!(found.len(), 1);
        let d = &found[0];
        assert_eq!(d.action.as_deref(), Some("restart"));
        // Its own second [1, 2) is not steady; [2, 5) are: recovered at 5.
        assert_eq!((d.start_s, d.bad_s, d.recovery_s), (1.25, 0.0, Some(3.75)));
        // Too close to the end for three steady seconds: nothing measured.
        let late = [ActionMark {
            name: "late".into(),
            at_s: 4.5,
        }];
        assert!(http_disruptions(&slos, &totals, &phases(6), &late).is_empty());
    }

    #[test]
    fn idle_seconds_neither_start_nor_finish_a_recovery() {
        let idle = (0, 0, 0);
        let totals = run(&[FAILING, idle, idle, OK, OK, idle, OK]);
        let found = http_disruptions(&[], &totals, &phases(7), &[]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[0].recovery_s, None,
            "never three steady seconds in a row"
        );
    }
}
