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
    for point in totals.series() {
        let (start, end) = (from, point.elapsed_s);
        from = end;
        let health = judge.health(point, start, end, phases);
        match (&mut open, health) {
            (None, Health::Bad { errors }) => {
                let action = actions
                    .iter()
                    .filter(|a| a.at_s <= end && end - a.at_s <= ACTION_WINDOW_S + 1.0)
                    .max_by(|a, b| a.at_s.total_cmp(&b.at_s));
                match action {
                    Some(a) => {
                        open = Some((a.at_s.min(start), Some(a.name.clone()), end - start, 0))
                    }
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
    if let Some((at, action, bad, _)) = open {
        out.push(disruption(&phase_at(at), at, action, bad, None));
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
