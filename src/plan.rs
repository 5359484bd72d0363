//! The plan: phases laid end to end on one timeline, each with every
//! workload it carries (users, agents, commanders) as real durations and
//! rates. The engine plays the plan and reads no schedule from anywhere
//! else. The open-model arrival arithmetic lives here too, pure, so it is
//! testable without a clock; `engine::schedule` waits on it.
//!
//! Arrivals are evenly spaced along the rate curve (as wrk2 and k6's
//! arrival-rate executors do): arrival k of a phase is due when the curve's
//! integral reaches k, so a phase of `r/s` over `d` carries `ceil(r·d)`
//! arrivals and a ramp `a -> b` carries `ceil((a+b)/2·d)`.
//!
//! # Segments
//!
//! `--segment i/n` (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`) makes a
//! process play one share of the plan ([`Plan::segment`]); the `n` shares
//! together are exactly the whole plan:
//! - open-model arrivals (and commanders' sends) are **striped**: the
//!   unsegmented schedule's event `k` (numbered across all phases) belongs
//!   to segment `k mod n` and is due at the same intended time. Rates stay
//!   as written; each segment skips the events that are not its own
//!   ([`crate::engine::schedule::Schedule`]), so no two segments fire at
//!   the same instant unless the whole schedule did;
//! - closed-model VUs are split: at every instant the segment's VU target
//!   is its [`Segment::share`] of the whole curve's target there (so the
//!   shares sum to the whole at every point of a ramp, where splitting the
//!   ends of the ramp and rounding each would not). The segment's local VU
//!   `j` is the whole run's VU `j·n + i` ([`Segment::global`]);
//! - agents are partitioned by global id the same way ([`Segment::owns`]).

use crate::scenario::hub::AgentLoad;
use crate::scenario::{Scenario, UserLoad};
use crate::units::{RateCurve, VuCurve};
use std::time::Duration;

/// Which share of the whole run this process plays: segment `index`
/// (0-based, as Kubernetes' `JOB_COMPLETION_INDEX`) of `count`. Written
/// `i/n` on the command line (`--segment 0/3` … `--segment 2/3`).
///
/// The rule every workload follows: event `k` of the unsegmented plan
/// (arrival, agent id, command) belongs to segment `k mod count`, at the
/// same intended time; counts (closed-model VUs) are split with the
/// remainder going to the first segments. So the `count` segments together
/// play exactly the unsegmented plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Segment {
    pub index: u32,
    pub count: u32,
}

impl Segment {
    /// The whole run in one process.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// Parse `i/n` (0-based: `0/3`, `1/3`, `2/3`). `3/3` is refused with a
    /// hint, since 1-based numbering is the likely mistake.
    pub fn parse(text: &str) -> Result<Segment, String> {
        let bad = || format!("--segment {text:?}: write INDEX/COUNT, 0-based (e.g. 0/3, 1/3, 2/3)");
        let (i, n) = text.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 {
            return Err(format!("--segment {text:?}: the count must be at least 1"));
        }
        if index == count {
            return Err(format!(
                "--segment {text:?}: segments are numbered from 0 (0/{count} … {}/{count}); \
                 did you mean {}/{count}?",
                count - 1,
                count - 1
            ));
        }
        if index > count {
            return Err(format!(
                "--segment {text:?}: the index must be below the count (0/{count} … {}/{count})",
                count - 1
            ));
        }
        Ok(Segment { index, count })
    }

    /// True for the whole run (`0/1`).
    pub fn is_whole(&self) -> bool {
        self.count <= 1
    }

    /// Does event `k` of the unsegmented plan belong to this segment?
    pub fn owns(&self, k: u64) -> bool {
        self.count <= 1 || k % u64::from(self.count) == u64::from(self.index)
    }

    /// This segment's share of `total` things split as evenly as possible,
    /// the remainder going to the first segments.
    pub fn share(&self, total: u32) -> u32 {
        if self.count <= 1 {
            return total;
        }
        total / self.count + u32::from(self.index < total % self.count)
    }

    /// How many of the events `0..end` this segment owns (the 64-bit
    /// [`Segment::share`]: the same split, since event `k` goes to `k mod n`).
    pub fn owned_below(&self, end: u64) -> u64 {
        let n = u64::from(self.count.max(1));
        end / n + u64::from(u64::from(self.index) < end % n)
    }

    /// The whole run's number of this segment's `local`-th thing (VU,
    /// agent): `local·n + i`, the `local`-th number it owns.
    pub fn global(&self, local: u64) -> u64 {
        local * u64::from(self.count.max(1)) + u64::from(self.index)
    }

    /// How many of the whole plan's events to skip from event `k` to reach
    /// the next one this segment owns (0 when it owns `k`).
    pub fn skip_from(&self, k: u64) -> u64 {
        let n = u64::from(self.count.max(1));
        (u64::from(self.index) + n - k % n) % n
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One phase on the timeline.
#[derive(Debug, Clone)]
pub struct PlannedPhase {
    pub name: String,
    /// Offset of the phase's start from the run's start.
    pub start: Duration,
    pub duration: Duration,
    /// HTTP users: an arrival rate (open model) or a VU count (closed).
    pub users: Option<UserLoad>,
    /// The agent population: target size, connect rate and drop (carried
    /// over from earlier phases when the phase does not say); None before
    /// the first phase that declares agents.
    pub agents: Option<AgentLoad>,
    /// Commands per second each commander sends.
    pub commanders: Option<RateCurve>,
}

impl PlannedPhase {
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }

    /// The open-model arrival rate (None for closed-model or no users).
    pub fn arrival_rate(&self) -> Option<RateCurve> {
        match self.users {
            Some(UserLoad::Open(rate)) => Some(rate),
            _ => None,
        }
    }
}

/// The whole run's timeline.
#[derive(Debug, Clone)]
pub struct Plan {
    pub phases: Vec<PlannedPhase>,
    pub total: Duration,
    /// The share of the whole plan this process plays ([`Segment::WHOLE`]
    /// unless `--segment` says otherwise).
    pub segment: Segment,
}

impl Plan {
    pub fn new(scenario: &Scenario) -> Plan {
        let mut start = Duration::ZERO;
        let phases = scenario
            .phases
            .iter()
            .map(|p| {
                let planned = PlannedPhase {
                    name: p.name.clone(),
                    start,
                    duration: p.duration,
                    users: p.users,
                    agents: p.agents.clone(),
                    commanders: p.commanders,
                };
                start += p.duration;
                planned
            })
            .collect();
        Plan {
            phases,
            total: start,
            segment: Segment::WHOLE,
        }
    }

    /// This plan's share as `segment` (see the module docs): the phases
    /// stay as written, the segment decides which of their events and how
    /// many of their VUs this process plays.
    pub fn segment(&self, segment: Segment) -> Plan {
        Plan {
            segment,
            ..self.clone()
        }
    }

    /// Highest open-model arrival rate (journeys per second).
    pub fn peak_rate(&self) -> Option<f64> {
        self.phases
            .iter()
            .filter_map(|p| match p.users {
                Some(UserLoad::Open(r)) => Some(r.from.max(r.to)),
                _ => None,
            })
            .reduce(f64::max)
    }

    /// Highest closed-model VU count (this segment's share of it).
    pub fn peak_vus(&self) -> Option<u32> {
        self.phases
            .iter()
            .filter_map(|p| match p.users {
                Some(UserLoad::Closed(v)) => Some(v.from.max(v.to)),
                _ => None,
            })
            .max()
            .map(|peak| self.segment.share(peak))
    }

    /// The closed-model VU target at `offset` into the run: this segment's
    /// share of the whole curve's target there (0 outside closed phases).
    pub fn vu_target(&self, offset: Duration) -> u32 {
        let Some(phase) = self.phases.get(self.phase_at(offset)) else {
            return 0;
        };
        match phase.users {
            Some(UserLoad::Closed(curve)) => self.segment.share(vus_at(
                curve,
                phase.duration,
                offset.saturating_sub(phase.start),
            )),
            _ => 0,
        }
    }

    /// The most agents any phase asks for.
    pub fn peak_agents(&self) -> u32 {
        self.phases
            .iter()
            .filter_map(|p| p.agents.as_ref().map(|a| a.connected))
            .max()
            .unwrap_or(0)
    }

    /// The phases' names, in order (the metric layout's phase tags).
    pub fn phase_names(&self) -> impl Iterator<Item = &str> {
        self.phases.iter().map(|p| p.name.as_str())
    }

    /// Arrivals the open-model phases will start (in this segment).
    pub fn expected_arrivals(&self) -> u64 {
        self.owned_events(PlannedPhase::arrival_rate).iter().sum()
    }

    /// Per phase, how many events of the schedule `rate` lays over the
    /// phases (users' arrivals, one commander's sends) this segment owns:
    /// the events are numbered across all phases, as
    /// [`crate::engine::schedule::Schedule::of_plan`] numbers them.
    pub fn owned_events(&self, rate: impl Fn(&PlannedPhase) -> Option<RateCurve>) -> Vec<u64> {
        let mut before = 0u64;
        self.phases
            .iter()
            .map(|p| {
                let count = rate(p).map_or(0, |r| arrival_count(r, p.duration));
                let owned =
                    self.segment.owned_below(before + count) - self.segment.owned_below(before);
                before += count;
                owned
            })
            .collect()
    }

    /// Index of the phase at `offset` (the last one after the end).
    pub fn phase_at(&self, offset: Duration) -> usize {
        self.phases
            .iter()
            .position(|p| offset < p.end())
            .unwrap_or(self.phases.len().saturating_sub(1))
    }
}

/// Requests one journey of each population sends, weighted by population
/// weight: the mean number of requests per arrival.
pub fn requests_per_arrival(scenario: &Scenario) -> f64 {
    let total_weight: u64 = scenario.populations.iter().map(|p| p.weight as u64).sum();
    if total_weight == 0 {
        return 0.0;
    }
    scenario
        .populations
        .iter()
        .map(|p| p.weight as f64 * p.steps.len() as f64)
        .sum::<f64>()
        / total_weight as f64
}

/// Number of arrivals a rate curve starts over `duration`:
/// `ceil(∫rate)`, with arrival 0 at the phase's start.
pub fn arrival_count(rate: RateCurve, duration: Duration) -> u64 {
    let total = (rate.from + rate.to) / 2.0 * duration.as_secs_f64();
    // Guard float noise: 1000.0000000001 is 1000 arrivals, not 1001.
    let rounded = total.round();
    if (total - rounded).abs() < 1e-6 {
        rounded as u64
    } else {
        total.ceil() as u64
    }
}

/// When arrival `k` (0-based) of a phase is due, as an offset from the
/// phase's start: the time at which the integral of the rate reaches `k`.
/// `None` when it falls at or past the phase's end.
pub fn arrival_offset(rate: RateCurve, duration: Duration, k: u64) -> Option<Duration> {
    let d = duration.as_secs_f64();
    let (a, b) = (rate.from, rate.to);
    let k = k as f64;
    let t = if (b - a).abs() < 1e-12 {
        if a <= 0.0 {
            return None;
        }
        k / a
    } else {
        // N(t) = a·t + (b−a)·t²/(2d) = k  →  t = (−a + √(a² + 2·s·k)) / s, s = (b−a)/d
        let s = (b - a) / d;
        let disc = a * a + 2.0 * s * k;
        if disc < 0.0 {
            return None;
        }
        (-a + disc.sqrt()) / s
    };
    if t.is_finite() && t >= 0.0 && t < d - 1e-9 {
        Some(Duration::from_secs_f64(t))
    } else {
        None
    }
}

/// The VU target of a closed-model curve at `offset` into the phase.
pub fn vus_at(vus: VuCurve, duration: Duration, offset: Duration) -> u32 {
    let f = (offset.as_secs_f64() / duration.as_secs_f64()).clamp(0.0, 1.0);
    (vus.from as f64 + (vus.to as f64 - vus.from as f64) * f).round() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(from: f64, to: f64) -> RateCurve {
        RateCurve { from, to }
    }

    #[test]
    fn constant_rate_is_evenly_spaced_and_counted_exactly() {
        let d = Duration::from_secs(10);
        let r = rc(100.0, 100.0);
        assert_eq!(arrival_count(r, d), 1000);
        assert_eq!(arrival_offset(r, d, 0), Some(Duration::ZERO));
        assert_eq!(arrival_offset(r, d, 1), Some(Duration::from_millis(10)));
        assert!(arrival_offset(r, d, 999).is_some());
        assert_eq!(arrival_offset(r, d, 1000), None);
    }

    #[test]
    fn ramp_carries_its_integral_and_speeds_up() {
        let d = Duration::from_secs(10);
        let r = rc(0.0, 200.0);
        let n = arrival_count(r, d);
        assert_eq!(n, 1000);
        let offsets: Vec<Duration> = (0..n).map(|k| arrival_offset(r, d, k).unwrap()).collect();
        assert_eq!(arrival_offset(r, d, n), None);
        // Gaps shrink as the rate grows.
        let first_gap = offsets[2] - offsets[1];
        let last_gap = offsets[999] - offsets[998];
        assert!(last_gap < first_gap, "{first_gap:?} vs {last_gap:?}");
        // Half the arrivals come in the last ~29% of the ramp (t = d/√2).
        let half = offsets[500].as_secs_f64();
        assert!((half - 10.0 / 2f64.sqrt()).abs() < 0.01, "{half}");
    }

    #[test]
    fn ramp_down_is_mirrored() {
        let d = Duration::from_secs(4);
        let r = rc(100.0, 50.0);
        assert_eq!(arrival_count(r, d), 300);
        let last = arrival_offset(r, d, 299).unwrap();
        assert!(last < d);
        assert_eq!(arrival_offset(r, d, 300), None);
    }

    #[test]
    fn segments_share_the_load_exactly() {
        let plan = Plan {
            phases: vec![
                PlannedPhase {
                    name: "open".into(),
                    start: Duration::ZERO,
                    duration: Duration::from_secs(10),
                    users: Some(UserLoad::Open(rc(90.0, 300.0))),
                    agents: None,
                    commanders: None,
                },
                PlannedPhase {
                    name: "closed".into(),
                    start: Duration::from_secs(10),
                    duration: Duration::from_secs(10),
                    users: Some(UserLoad::Closed(VuCurve { from: 10, to: 7 })),
                    agents: None,
                    commanders: None,
                },
            ],
            total: Duration::from_secs(20),
            segment: Segment::WHOLE,
        };
        for count in 1..=5u32 {
            let parts: Vec<Plan> = (0..count)
                .map(|index| plan.segment(Segment { index, count }))
                .collect();
            let arrivals: u64 = parts.iter().map(|p| p.expected_arrivals()).sum();
            assert_eq!(arrivals, plan.expected_arrivals());
            // Per phase too, and each share within one of the others.
            for phase in 0..2 {
                let shares: Vec<u64> = parts
                    .iter()
                    .map(|p| p.owned_events(PlannedPhase::arrival_rate)[phase])
                    .collect();
                let whole = plan.owned_events(PlannedPhase::arrival_rate)[phase];
                assert_eq!(shares.iter().sum::<u64>(), whole);
                assert!(shares.iter().max().unwrap() - shares.iter().min().unwrap() <= 1);
            }
            // The closed ramp 10 -> 7: the VU targets add up to the whole
            // at every instant (every 10 ms), not only at the ends.
            for ms in (0..21_000).step_by(10) {
                let at = Duration::from_millis(ms);
                let sum: u32 = parts.iter().map(|p| p.vu_target(at)).sum();
                assert_eq!(sum, plan.vu_target(at), "{count} segments at {ms} ms");
            }
            let peaks: u32 = parts.iter().map(|p| p.peak_vus().unwrap()).sum();
            assert_eq!(peaks, 10);
        }
        // Whole: 750 + 0 open arrivals; the closed curve as written.
        assert_eq!(plan.expected_arrivals(), 1950);
        assert_eq!(plan.vu_target(Duration::from_secs(10)), 10);
        assert_eq!(plan.vu_target(Duration::from_secs(15)), 9); // 8.5 rounds up
        assert_eq!(plan.vu_target(Duration::from_secs(5)), 0);
        let third = plan.segment(Segment { index: 0, count: 3 });
        assert_eq!(third.vu_target(Duration::from_secs(10)), 4);
        assert_eq!(third.peak_vus(), Some(4));
    }

    #[test]
    fn a_segment_counts_skips_and_numbers_what_it_owns() {
        let seg = Segment { index: 1, count: 3 };
        // Owns 1, 4, 7, …
        assert_eq!(
            (0..10).map(|e| seg.owned_below(e)).collect::<Vec<_>>(),
            [0, 0, 1, 1, 1, 2, 2, 2, 3, 3]
        );
        assert_eq!(
            (0..6).map(|k| seg.skip_from(k)).collect::<Vec<_>>(),
            [1, 0, 2, 1, 0, 2]
        );
        assert_eq!((0..3).map(|j| seg.global(j)).collect::<Vec<_>>(), [1, 4, 7]);
        assert_eq!(Segment::WHOLE.global(5), 5);
        assert_eq!(Segment::WHOLE.skip_from(5), 0);
        assert_eq!(Segment::WHOLE.owned_below(5), 5);
        for total in 0..20u32 {
            assert_eq!(u64::from(seg.share(total)), seg.owned_below(total.into()));
        }
    }

    #[test]
    fn segment_parse_is_zero_based_and_refuses_one_based() {
        assert_eq!(Segment::parse("0/3"), Ok(Segment { index: 0, count: 3 }));
        assert_eq!(
            Segment::parse(" 2 / 3 "),
            Ok(Segment { index: 2, count: 3 })
        );
        let e = Segment::parse("3/3").unwrap_err();
        assert!(
            e.contains("numbered from 0") && e.contains("did you mean 2/3"),
            "{e}"
        );
        assert!(Segment::parse("4/3")
            .unwrap_err()
            .contains("below the count"));
        assert!(Segment::parse("0/0").unwrap_err().contains("at least 1"));
        for bad in ["", "1", "a/3", "1/b", "-1/3", "1/3/4"] {
            assert!(
                Segment::parse(bad).unwrap_err().contains("INDEX/COUNT"),
                "{bad}"
            );
        }
        assert_eq!(Segment::parse("1/4").unwrap().to_string(), "1/4");
    }

    #[test]
    fn segments_own_every_event_once_and_share_counts_exactly() {
        for count in 1..=5u32 {
            let segs: Vec<Segment> = (0..count).map(|index| Segment { index, count }).collect();
            for k in 0..100u64 {
                assert_eq!(
                    segs.iter().filter(|s| s.owns(k)).count(),
                    1,
                    "k {k} of {count}"
                );
            }
            for total in [0u32, 1, 2, 7, 10, 101] {
                let shares: Vec<u32> = segs.iter().map(|s| s.share(total)).collect();
                assert_eq!(shares.iter().sum::<u32>(), total);
                assert!(shares.windows(2).all(|w| w[0] >= w[1] && w[0] - w[1] <= 1));
            }
        }
        assert!(Segment::WHOLE.is_whole() && Segment::WHOLE.owns(7));
    }

    #[test]
    fn vu_curve_interpolates() {
        let v = VuCurve { from: 10, to: 110 };
        let d = Duration::from_secs(10);
        assert_eq!(vus_at(v, d, Duration::ZERO), 10);
        assert_eq!(vus_at(v, d, Duration::from_secs(5)), 60);
        assert_eq!(vus_at(v, d, Duration::from_secs(20)), 110);
    }
}
