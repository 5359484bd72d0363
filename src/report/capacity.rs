//! Capacity, as the reports show it: the capacity estimate of
//! `report.html` (the highest load the target sustained for [`WINDOW`]
//! seconds with the offered load achieved and every SLO met), and the
//! reports of `stampede capacity` ([`search`]; the search itself is the
//! `capacity` command's).
//!
//! # Definition
//! The run's time series is cut into every window of [`WINDOW`] consecutive
//! 1-second intervals (sliding by one interval). In a window:
//!
//! - **offered** (requests/s) = journeys started (the increments of the
//!   `users.arrivals` gauge) × requests per journey (see
//!   [`Timeline::requests_per_journey`]) ÷ the window's length;
//! - **achieved** (requests/s) = `http.requests` − `http.errors` (responses
//!   that passed their checks; dropped arrivals are counted in both, so they
//!   are not achieved) ÷ the window's length.
//!
//! (In a closed-model phase journeys start when a virtual user is free, so
//! offered follows achieved and the estimate is simply the highest
//! throughput with the SLOs met.)
//!
//! A window **qualifies** when offered > 0, achieved ≥ [`ACHIEVED_SHARE`] ×
//! offered (5 % slack for journeys straddling the window's edges), the
//! generator kept up (every interval's `generator.lag` p99 ≤
//! [`SATURATED_LAG_P99_US`]: a late generator did not offer the planned
//! load) and every SLO is met on the window's data. The estimate is the
//! qualifying window with the highest achieved rate (the earliest on a tie).
//! [`Window::limit`] says what stopped it: why the window offering the
//! least load above the estimate's failed. When no window offering more
//! failed, the run never pushed the target past what it handled and the
//! estimate is a lower bound.
//!
//! # SLOs on a window
//! `summary.json` keeps per-interval stats (count, p50, p95, p99, max), not
//! per-interval histograms, so a window's percentile cannot be computed
//! exactly. Each SLO is judged on a value that is never in its favour:
//!
//! - a histogram percentile `pNN` under `<` / `<=` takes the **highest**
//!   per-interval `pK` over the window's intervals and the SLO's series,
//!   with `pK` the first tracked stat at or above `pNN` (p50, p95, p99, else
//!   max). This is an upper bound on the window's true `pNN`: if every part
//!   has a share NN of its samples at or below a value, so does their union.
//!   Under `>` / `>=` it takes the **lowest** per-interval `pK` with `pK` the
//!   last tracked stat at or below `pNN` (a lower bound); below p50 there is
//!   none and the run's verdict is used.
//! - `max` (and `p100`): the highest per-interval max (exact), under any
//!   operator.
//! - counter `rate` (e.g. `http.requests.rate`): the window's increments ÷
//!   its length (exact); error `rate` (`http.errors.rate`,
//!   `hub.errors.rate`): failures ÷ requests (or connects) in the window
//!   (exact).
//! - `count`, `min` and `mean` describe the whole run (or need data the
//!   series lacks): the run's verdict is used.
//! - a `phase`-scoped SLO is judged on the window's intervals in that phase;
//!   an SLO with no samples in the window is not judged there (a window
//!   without responses already fails the achieved rule).
//! - `hub.recovery` also fails a window in which a drop event was counted
//!   as never recovered.

pub mod search;
pub use search::{curve_svg, html, load_text, markdown, rules, CoolDown, SearchReport, Step};

use crate::metrics::{IntervalStats, TagFilter};
use crate::report::console::SATURATED_LAG_P99_US;
use crate::report::json::Summary;
use crate::report::timeline::Timeline;
use crate::slo::{self, Op, Stat, Verdict};
use std::ops::Range;

/// Length of a window, in 1-second intervals.
pub const WINDOW: usize = 10;

/// Share of the offered load that must be achieved.
pub const ACHIEVED_SHARE: f64 = 0.95;

/// "Sustained", the one rule `report.html`'s estimate and `stampede
/// capacity` share: something was offered and at least [`ACHIEVED_SHARE`]
/// of it was achieved (successful requests of those offered; for agents,
/// registered of those asked for).
pub fn sustained(offered: f64, achieved: f64) -> bool {
    offered > 0.0 && achieved >= ACHIEVED_SHARE * offered
}

/// "The generator kept up", the other half of sustained: no second's
/// `generator.lag` p99 (µs; `None`: no arrival that second) above
/// [`SATURATED_LAG_P99_US`]. A late generator did not offer the planned
/// load, so what it measured says nothing about the target.
pub fn generator_kept_up(lag_p99_per_second: impl IntoIterator<Item = Option<u64>>) -> bool {
    lag_p99_per_second
        .into_iter()
        .all(|l| l.is_none_or(|l| l <= SATURATED_LAG_P99_US))
}

/// The sentence both capacity outputs print: what "sustained" and "met the
/// SLOs" mean ([`sustained`], [`generator_kept_up`]); `stretch` names the
/// data judged (the measured phase of a step, or a window of a run).
pub fn rule_sentence(stretch: &str) -> String {
    format!(
        "A load counts as sustained when successful requests were at least {share}% of those offered (agents: registered of those asked for) and the generator kept up (its scheduling lag p99 at most {lag} in every second); it met the SLOs when every SLO of the scenario held on {stretch}.",
        share = (ACHIEVED_SHARE * 100.0).round(),
        lag = crate::units::format::latency(SATURATED_LAG_P99_US),
    )
}

/// The outcome of the estimate.
#[derive(Debug, Clone, PartialEq)]
pub enum Estimate {
    /// No user load to measure: no `users.arrivals` gauge, or no journey
    /// started.
    NoUserLoad,
    /// The run has fewer intervals than one window.
    TooShort {
        intervals: usize,
    },
    /// No window qualified. Windows are counted by the first rule they
    /// broke, in the order: load not achieved, generator behind, an SLO
    /// (most frequent first).
    NotFound {
        windows: usize,
        not_achieved: usize,
        generator_behind: usize,
        slo_failed: Vec<(String, usize)>,
    },
    Found(Window),
}

/// The window that qualified with the highest achieved rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Seconds since the run started.
    pub start_s: f64,
    pub end_s: f64,
    /// Phases the window overlaps, in order.
    pub phases: Vec<String>,
    /// Requests per second offered.
    pub offered_per_s: f64,
    /// Requests per second that succeeded.
    pub achieved_per_s: f64,
    /// Journeys started per second.
    pub arrivals_per_s: f64,
    /// The requests-per-journey factor used for `offered_per_s`.
    pub requests_per_journey: f64,
    /// Why the window offering the least load above this one's did not
    /// qualify. None when no window offered more load and failed: the run
    /// did not find the limit, and the capacity is at least this.
    pub limit: Option<Limit>,
    /// Every SLO as judged on this window.
    pub checks: Vec<SloCheck>,
}

/// The rule a window broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// Achieved below [`ACHIEVED_SHARE`] of offered.
    NotAchieved,
    /// The generator fell behind: the load offered is not the planned one.
    GeneratorBehind,
    /// This SLO (its key) was not met.
    Slo(String),
}

/// One SLO judged on one window.
#[derive(Debug, Clone, PartialEq)]
pub struct SloCheck {
    /// The key as written in the scenario.
    pub key: String,
    /// The target as written.
    pub target: String,
    /// In the SLO's canonical unit; None when not judged on the window.
    pub measured: Option<f64>,
    pub measured_text: String,
    pub basis: Basis,
    pub pass: bool,
}

/// How an SLO's window value was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// Sums of counts, or the highest max: the window's true value.
    Exact,
    /// The highest per-interval value of this stat (`p95`…): an upper bound.
    UpperBound(&'static str),
    /// The lowest per-interval value of this stat: a lower bound.
    LowerBound(&'static str),
    /// The run's verdict (count, min, mean).
    Run,
    /// No samples in the window: not judged there.
    NoData,
}

impl Basis {
    /// For people: how the value was read.
    pub fn describe(self) -> String {
        match self {
            Basis::Exact => "exact".into(),
            Basis::UpperBound(stat) => format!("upper bound: highest per-second {stat}"),
            Basis::LowerBound(stat) => format!("lower bound: lowest per-second {stat}"),
            Basis::Run => "whole run".into(),
            Basis::NoData => "no samples in the window".into(),
        }
    }
}

/// A stat of [`IntervalStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    P50,
    P95,
    P99,
    Max,
}

impl Tracked {
    fn read(self, s: &IntervalStats) -> u64 {
        match self {
            Tracked::P50 => s.p50,
            Tracked::P95 => s.p95,
            Tracked::P99 => s.p99,
            Tracked::Max => s.max,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Tracked::P50 => "p50",
            Tracked::P95 => "p95",
            Tracked::P99 => "p99",
            Tracked::Max => "max",
        }
    }
    /// The first tracked stat at or above percentile `p`.
    fn at_or_above(p: f64) -> Tracked {
        match p {
            p if p <= 50.0 => Tracked::P50,
            p if p <= 95.0 => Tracked::P95,
            p if p <= 99.0 => Tracked::P99,
            _ => Tracked::Max,
        }
    }
    /// The last tracked stat at or below percentile `p`.
    fn at_or_below(p: f64) -> Option<Tracked> {
        match p {
            p if p >= 100.0 => Some(Tracked::Max),
            p if p >= 99.0 => Some(Tracked::P99),
            p if p >= 95.0 => Some(Tracked::P95),
            p if p >= 50.0 => Some(Tracked::P50),
            _ => None,
        }
    }
}

/// How one SLO is measured on a window, prepared once per run.
enum Measure {
    Hist {
        ids: Vec<usize>,
        stat: Tracked,
        /// Highest (upper bound) or lowest (lower bound) over the window.
        highest: bool,
        basis: Basis,
        /// `hub.unrecovered` counters (for `hub.recovery`).
        unrecovered: Vec<usize>,
    },
    Rate {
        ids: Vec<usize>,
    },
    Ratio {
        failures: Vec<usize>,
        of: Vec<usize>,
    },
    Run,
}

struct Judge<'v> {
    verdict: &'v Verdict,
    /// None: every interval; Some(None): a phase that did not run.
    phase: Option<Option<usize>>,
    measure: Measure,
}

impl<'v> Judge<'v> {
    fn new(verdict: &'v Verdict, timeline: &Timeline) -> Judge<'v> {
        let slo = &verdict.slo;
        let filter = TagFilter {
            population: slo.population.clone(),
            step: slo.step.clone(),
            phase: None,
        };
        let hists = |metric: &str| timeline.hists(|d| d.metric == metric && filter.matches(d));
        let counters =
            |metric: &str| timeline.counters(|d| d.metric == metric && filter.matches(d));
        let highest = matches!(slo.op, Op::Lt | Op::Le);
        let measure = match slo.stat {
            Stat::Count | Stat::Min | Stat::Mean => Measure::Run,
            Stat::Rate => match slo::ratio_denominator(&slo.metric) {
                Some(of) => Measure::Ratio {
                    failures: counters(&slo.metric),
                    of: counters(of),
                },
                None => Measure::Rate {
                    ids: counters(&slo.metric),
                },
            },
            Stat::Max | Stat::Percentile(_) => {
                // The window's max is the highest per-interval max, whatever
                // the operator; a percentile takes a bound against the SLO.
                let exact = match slo.stat {
                    Stat::Percentile(p) => p >= 100.0,
                    _ => true,
                };
                let stat = match slo.stat {
                    _ if exact => Some(Tracked::Max),
                    Stat::Percentile(p) if highest => Some(Tracked::at_or_above(p)),
                    Stat::Percentile(p) => Tracked::at_or_below(p),
                    _ => Some(Tracked::Max),
                };
                match stat {
                    None => Measure::Run,
                    Some(stat) => Measure::Hist {
                        ids: hists(&slo.metric),
                        stat,
                        highest: highest || exact,
                        basis: match (exact, highest) {
                            (true, _) => Basis::Exact,
                            (false, true) => Basis::UpperBound(stat.name()),
                            (false, false) => Basis::LowerBound(stat.name()),
                        },
                        unrecovered: if slo.metric == "hub.recovery" {
                            timeline.counters(|d| {
                                d.metric == slo::UNRECOVERED
                                    && filter
                                        .population
                                        .as_ref()
                                        .is_none_or(|p| *p == d.population)
                            })
                        } else {
                            Vec::new()
                        },
                    },
                }
            }
        };
        let phase = slo
            .phase
            .as_ref()
            .map(|name| timeline.summary.phases.iter().position(|p| p.name == *name));
        Judge {
            verdict,
            phase,
            measure,
        }
    }

    fn check(&self, timeline: &Timeline, window: Range<usize>) -> SloCheck {
        let slo = &self.verdict.slo;
        let intervals: Vec<usize> = window
            .filter(|&i| {
                self.phase
                    .is_none_or(|phase| phase.is_some() && timeline.phases[i] == phase)
            })
            .collect();
        let judged = |measured: Option<f64>, basis: Basis| {
            let (text, pass) = match measured {
                Some(m) => (
                    crate::slo::format_value(slo.unit(), m),
                    slo.op.holds(m, slo.threshold),
                ),
                None => ("-".to_string(), true),
            };
            SloCheck {
                key: slo.key.clone(),
                target: slo.target.clone(),
                measured,
                measured_text: text,
                basis: if measured.is_some() {
                    basis
                } else {
                    Basis::NoData
                },
                pass,
            }
        };
        let sum =
            |ids: &[usize]| -> u64 { intervals.iter().map(|&i| timeline.count(i, ids)).sum() };
        match &self.measure {
            Measure::Run => SloCheck {
                key: slo.key.clone(),
                target: slo.target.clone(),
                measured: self.verdict.measured,
                measured_text: self.verdict.measured_text.clone(),
                basis: Basis::Run,
                pass: self.verdict.pass,
            },
            Measure::Hist {
                ids,
                stat,
                highest,
                basis,
                unrecovered,
            } => {
                if sum(unrecovered) > 0 {
                    return SloCheck {
                        key: slo.key.clone(),
                        target: slo.target.clone(),
                        measured: None,
                        measured_text: "not recovered".into(),
                        basis: Basis::Exact,
                        pass: false,
                    };
                }
                let values = intervals.iter().flat_map(|&i| {
                    ids.iter()
                        .map(move |&id| timeline.stats(i, id))
                        .filter(|s| s.count > 0)
                        .map(|s| stat.read(&s))
                });
                let value = if *highest { values.max() } else { values.min() };
                judged(value.map(|v| v as f64), *basis)
            }
            Measure::Rate { ids } => {
                let seconds: f64 = intervals
                    .iter()
                    .map(|&i| timeline.ends[i] - timeline.starts[i])
                    .sum();
                let measured =
                    (!ids.is_empty() && seconds > 0.0).then(|| sum(ids) as f64 / seconds);
                judged(measured, Basis::Exact)
            }
            Measure::Ratio { failures, of } => {
                let total = sum(of);
                let measured = (total > 0).then(|| sum(failures) as f64 / total as f64);
                judged(measured, Basis::Exact)
            }
        }
    }
}

/// The capacity estimate of a run (see the module docs for the rules).
pub fn estimate(summary: &Summary) -> Estimate {
    let timeline = Timeline::new(summary);
    let (Some(arrivals), Some(per_journey)) =
        (timeline.arrivals(), timeline.requests_per_journey())
    else {
        return Estimate::NoUserLoad;
    };
    if arrivals.iter().all(|&a| a <= 0.0) {
        return Estimate::NoUserLoad;
    }
    let n = timeline.len();
    if n < WINDOW {
        return Estimate::TooShort { intervals: n };
    }
    let requests = timeline.counts(&timeline.counters_of("http.requests"));
    let errors = timeline.counts(&timeline.counters_of("http.errors"));
    let achieved: Vec<f64> = (requests.iter().zip(&errors))
        .map(|(r, e)| r.saturating_sub(*e) as f64)
        .collect();
    let lag = timeline.worst(&timeline.hists(|d| d.metric == "generator.lag"), |s| s.p99);
    let judges: Vec<Judge> = (summary.verdicts.iter())
        .map(|v| Judge::new(v, &timeline))
        .collect();

    let mut best: Option<Window> = None;
    let (mut not_achieved, mut generator_behind) = (0, 0);
    let mut slo_failed: Vec<(String, usize)> = Vec::new();
    // Every window that did not qualify: its offered load and why.
    let mut failed: Vec<(f64, Limit)> = Vec::new();
    for start in 0..=n - WINDOW {
        let range = start..start + WINDOW;
        let seconds = (timeline.ends[range.end - 1] - timeline.starts[start]).max(1e-9);
        let journeys: f64 = arrivals[range.clone()].iter().sum();
        let offered = journeys * per_journey / seconds;
        let achieved = achieved[range.clone()].iter().sum::<f64>() / seconds;
        if !sustained(offered, achieved) {
            not_achieved += 1;
            failed.push((offered, Limit::NotAchieved));
            continue;
        }
        if !generator_kept_up(lag[range.clone()].iter().copied()) {
            generator_behind += 1;
            failed.push((offered, Limit::GeneratorBehind));
            continue;
        }
        let checks: Vec<SloCheck> = judges
            .iter()
            .map(|j| j.check(&timeline, range.clone()))
            .collect();
        if let Some(check) = checks.iter().find(|c| !c.pass) {
            match slo_failed.iter_mut().find(|(k, _)| *k == check.key) {
                Some((_, n)) => *n += 1,
                None => slo_failed.push((check.key.clone(), 1)),
            }
            failed.push((offered, Limit::Slo(check.key.clone())));
            continue;
        }
        if best.as_ref().is_some_and(|b| b.achieved_per_s >= achieved) {
            continue;
        }
        let mut phases: Vec<String> = Vec::new();
        for phase in timeline.phases[range.clone()].iter().flatten() {
            let name = &summary.phases[*phase].name;
            if !phases.contains(name) {
                phases.push(name.clone());
            }
        }
        best = Some(Window {
            start_s: timeline.starts[start],
            end_s: timeline.ends[range.end - 1],
            phases,
            offered_per_s: offered,
            achieved_per_s: achieved,
            arrivals_per_s: journeys / seconds,
            requests_per_journey: per_journey,
            limit: None,
            checks,
        });
    }
    match best {
        Some(mut window) => {
            window.limit = failed
                .into_iter()
                .filter(|(offered, _)| *offered > window.offered_per_s)
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, limit)| limit);
            Estimate::Found(window)
        }
        None => {
            slo_failed.sort_by_key(|f| std::cmp::Reverse(f.1));
            Estimate::NotFound {
                windows: n - WINDOW + 1,
                not_achieved,
                generator_behind,
                slo_failed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, IntervalStats, Layout, Point, Totals};
    use crate::report::json::{self, RunMeta};
    use crate::slo::PhaseSpan;
    use std::time::Duration;

    /// One second of a crafted run.
    #[derive(Clone, Copy)]
    struct Second {
        /// Journeys started.
        arrivals: u64,
        /// Responses (all passed).
        ok: u64,
        errors: u64,
        /// p95 latency, µs (p50 = p95 / 2, p99 = max = p95 × 2).
        p95: u64,
        /// generator.lag p99, µs.
        lag: u64,
    }

    fn meta() -> RunMeta {
        RunMeta {
            name: "crafted".into(),
            scenario_path: "crafted.toml".into(),
            scenario_hash: "00".repeat(32),
            stampede_version: "0.1.0".into(),
            started_at: "2024-01-01T00:00:00Z".into(),
            ended_at: "2024-01-01T00:01:00Z".into(),
            duration_s: 60.0,
            host: "test".into(),
            command_line: vec!["stampede".into()],
            seed: 1,
            interrupted: false,
            exit_code: 0,
            notes: vec![],
            segment: None,
            start_at: None,
            merged: None,
            clock: None,
        }
    }

    /// A one-step run: phases `ramp` (first half) and `spike`; one point
    /// per second; SLOs judged on the totals as a real run would.
    fn summary(seconds: &[Second], slos: &[(&str, &str)]) -> Summary {
        let mut layout = Layout {
            phases: vec!["ramp".into(), "spike".into()],
            ..Layout::default()
        };
        let latency = layout.add_hist("http.latency", "web", "home");
        let lag = layout.add_hist("generator.lag", "", "");
        let requests = layout.add_counter("http.requests", "web", "home", None);
        let errors = layout.add_counter("http.errors", "web", "home", Some("timeout"));
        layout.add_gauge("users.arrivals");
        let mut totals = Totals::new(layout);
        let half = seconds.len() / 2;
        let mut arrived = 0;
        for (i, s) in seconds.iter().enumerate() {
            let phase = usize::from(i >= half);
            let mut h = new_histogram();
            h.record_n(s.p95, s.ok + s.errors).unwrap();
            totals.merge_hist(latency, phase, &h);
            let mut l = new_histogram();
            l.record(s.lag.max(1)).unwrap();
            totals.merge_hist(lag, phase, &l);
            totals.add_counter(requests, phase, s.ok + s.errors);
            totals.add_counter(errors, phase, s.errors);
            arrived += s.arrivals;
            let stats = |count: u64, p95: u64| IntervalStats {
                count,
                p50: p95 / 2,
                p95,
                p99: p95 * 2,
                max: p95 * 2,
            };
            totals.push_point(Point {
                elapsed_s: (i + 1) as f64,
                hists: vec![stats(s.ok + s.errors, s.p95), stats(1, s.lag)],
                counters: vec![s.ok + s.errors, s.errors],
                gauges: vec![arrived as f64],
            });
        }
        let spans = vec![
            PhaseSpan {
                name: "ramp".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(half as u64),
            },
            PhaseSpan {
                name: "spike".into(),
                start: Duration::from_secs(half as u64),
                end: Duration::from_secs(seconds.len() as u64),
            },
        ];
        let slos: Vec<_> = slos
            .iter()
            .map(|(k, t)| crate::slo::parse(k, t).unwrap())
            .collect();
        let run = Duration::from_secs(seconds.len() as u64);
        let verdicts = crate::slo::evaluate(&slos, &totals, &spans, run);
        json::build(meta(), &spans, &totals, &verdicts)
    }

    /// Arrivals ramp 10/s per second (10, 20, … 600); the target serves at
    /// most 300/s; p95 is 10 ms up to 250/s and 500 ms above.
    fn ramp() -> Vec<Second> {
        (1..=60u64)
            .map(|t| {
                let offered = 10 * t;
                Second {
                    arrivals: offered,
                    ok: offered.min(300),
                    errors: 0,
                    p95: if offered <= 250 { 10_000 } else { 500_000 },
                    lag: 100,
                }
            })
            .collect()
    }

    fn found(estimate: Estimate) -> Window {
        match estimate {
            Estimate::Found(w) => w,
            other => panic!("expected a window, got {other:?}"),
        }
    }

    #[test]
    fn without_slos_the_highest_window_whose_load_was_achieved() {
        // Window (e-10, e]: offered Σ10t, achieved Σmin(10t, 300). Up to
        // e = 35 the shortfall (10+…+50 = 150 of 3050) is within 5 %; at
        // e = 36 (210 of 3150) it is not, and it only grows after.
        let w = found(estimate(&summary(&ramp(), &[])));
        assert_eq!((w.start_s, w.end_s), (25.0, 35.0));
        assert!(
            (w.offered_per_s - 305.0).abs() < 1e-9,
            "{}",
            w.offered_per_s
        );
        assert!(
            (w.achieved_per_s - 290.0).abs() < 1e-9,
            "{}",
            w.achieved_per_s
        );
        assert!((w.arrivals_per_s - 305.0).abs() < 1e-9);
        assert_eq!(w.requests_per_journey, 1.0);
        assert_eq!(w.phases, vec!["ramp".to_string(), "spike".to_string()]);
        assert_eq!(w.limit, Some(Limit::NotAchieved));
        // A steady load the target keeps up with: capacity is at least that.
        let steady: Vec<Second> = ramp()
            .into_iter()
            .map(|s| Second {
                arrivals: 100,
                ok: 100,
                p95: 10_000,
                ..s
            })
            .collect();
        let w = found(estimate(&summary(&steady, &[])));
        assert_eq!((w.start_s, w.achieved_per_s), (0.0, 100.0));
        assert_eq!(w.limit, None);
    }

    #[test]
    fn a_latency_slo_caps_the_estimate_where_it_stops_holding() {
        // p95 < 100 ms holds only while offered ≤ 250/s: the last window
        // entirely below is (15, 25], achieved Σ160..250 / 10 = 205/s.
        let s = summary(&ramp(), &[("http.latency.p95", "< 100ms")]);
        assert!(!s.verdicts[0].pass, "the run as a whole fails the SLO");
        let w = found(estimate(&s));
        assert_eq!((w.start_s, w.end_s), (15.0, 25.0));
        assert!((w.achieved_per_s - 205.0).abs() < 1e-9);
        assert_eq!(w.limit, Some(Limit::Slo("http.latency.p95".into())));
        assert_eq!(w.checks.len(), 1);
        let check = &w.checks[0];
        assert!(check.pass);
        assert_eq!(check.measured, Some(10_000.0));
        assert_eq!(check.basis, Basis::UpperBound("p95"));
    }

    #[test]
    fn percentiles_between_tracked_ones_use_a_bound_against_the_slo() {
        // p90 under `<` reads p95 (above it); p99.9 reads max (p99 × 2 here).
        let s = summary(
            &ramp(),
            &[
                ("http.latency.p90", "< 100ms"),
                ("http.latency.p99.9", "< 100ms"),
                ("http.latency.max", "< 1s"),
            ],
        );
        let w = found(estimate(&s));
        let bases: Vec<Basis> = w.checks.iter().map(|c| c.basis).collect();
        assert_eq!(
            bases,
            vec![
                Basis::UpperBound("p95"),
                Basis::UpperBound("max"),
                Basis::Exact
            ]
        );
        assert_eq!(w.checks[1].measured, Some(20_000.0));
        // A `>` percentile reads the tracked stat below it, the lowest one.
        let s = summary(&ramp(), &[("http.latency.p97", "> 1ms")]);
        let w = found(estimate(&s));
        assert_eq!(w.checks[0].basis, Basis::LowerBound("p95"));
        assert_eq!(w.end_s, 35.0);
        assert_eq!(w.checks[0].measured, Some(500_000.0));
        // The max is exact under `>` too: the highest per-second max.
        let s = summary(&ramp(), &[("http.latency.max", "> 1ms")]);
        let w = found(estimate(&s));
        assert_eq!(w.checks[0].basis, Basis::Exact);
        assert_eq!(w.checks[0].measured, Some(1_000_000.0));
        // Below p50 a `>` has no bound: the run's verdict decides.
        let s = summary(&ramp(), &[("http.latency.p10", "> 1ms")]);
        assert_eq!(found(estimate(&s)).checks[0].basis, Basis::Run);
    }

    #[test]
    fn error_rates_and_request_rates_are_judged_on_the_window() {
        // ~2 % errors from t = 21 on (4 of 210 … 4 of 240, then 5 of 250):
        // the window ending at 24 has 16 in 1,950 requests (0.82 %), the one
        // ending at 25 has 21 in 2,050 (1.02 %).
        let seconds: Vec<Second> = ramp()
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                if i >= 20 {
                    s.errors = s.ok / 50;
                    s.ok -= s.errors;
                }
                s
            })
            .collect();
        let s = summary(&seconds, &[("http.errors.rate", "< 1%")]);
        let w = found(estimate(&s));
        assert_eq!(w.end_s, 24.0);
        assert_eq!(w.checks[0].measured, Some(16.0 / 1950.0));
        assert_eq!(w.checks[0].basis, Basis::Exact);
        // A request-rate floor rules out the low windows but not the best.
        let s = summary(&ramp(), &[("http.requests.rate", ">= 200/s")]);
        let w = found(estimate(&s));
        assert_eq!(w.end_s, 35.0);
        assert!((w.checks[0].measured.unwrap() - 290.0).abs() < 1e-9);
        // ... and a floor no window reaches leaves none.
        let s = summary(&ramp(), &[("http.requests.rate", ">= 400/s")]);
        assert!(matches!(estimate(&s), Estimate::NotFound { .. }));
    }

    #[test]
    fn a_phase_scoped_slo_is_judged_only_in_its_phase() {
        // Only the spike (t > 30) is judged: there p95 is 500 ms, so the
        // windows reaching into it fail; ramp-only windows pass.
        let s = summary(&ramp(), &[("http.latency{phase=spike}.p95", "< 100ms")]);
        let w = found(estimate(&s));
        assert_eq!(w.end_s, 30.0);
        assert_eq!(w.checks[0].basis, Basis::NoData);
        assert!(w.checks[0].pass);
    }

    #[test]
    fn a_lagging_generator_disqualifies_its_windows() {
        let seconds: Vec<Second> = ramp()
            .into_iter()
            .enumerate()
            .map(|(i, mut s)| {
                if i == 33 {
                    s.lag = 50_000;
                }
                s
            })
            .collect();
        // Windows ending at 34 and 35 hold second 34: the best is (23, 33].
        let w = found(estimate(&summary(&seconds, &[])));
        assert_eq!(w.end_s, 33.0);
        assert_eq!(w.limit, Some(Limit::GeneratorBehind));
    }

    #[test]
    fn no_window_says_why() {
        let seconds: Vec<Second> = ramp()
            .into_iter()
            .map(|s| Second { p95: 500_000, ..s })
            .collect();
        let s = summary(&seconds, &[("http.latency.p95", "< 100ms")]);
        match estimate(&s) {
            Estimate::NotFound {
                windows,
                not_achieved,
                generator_behind,
                slo_failed,
            } => {
                assert_eq!(windows, 51);
                // Windows ending at 36..=60 fall short of the offered load.
                assert_eq!(not_achieved, 25);
                assert_eq!(generator_behind, 0);
                assert_eq!(slo_failed, vec![("http.latency.p95".to_string(), 26)]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_runs_and_runs_without_users() {
        let s = summary(&ramp()[..5], &[]);
        assert_eq!(estimate(&s), Estimate::TooShort { intervals: 5 });
        let mut s = summary(&ramp(), &[]);
        s.layout.gauges.clear();
        assert_eq!(estimate(&s), Estimate::NoUserLoad);
        let idle: Vec<Second> = ramp()
            .into_iter()
            .map(|s| Second { arrivals: 0, ..s })
            .collect();
        assert_eq!(estimate(&summary(&idle, &[])), Estimate::NoUserLoad);
    }
}
