//! The one open-loop scheduler: events at their due times, whatever the
//! target does.
//!
//! A [`Schedule`] is a list of [`Stretch`]es, each a rate laid on the run's
//! timeline (a phase's curve from the phase's start, or an agent
//! population's connect rate from where the last one left off). Event `k`
//! of a stretch is due when the curve's integral reaches `k`
//! ([`crate::plan::arrival_offset`], the single source of due times).
//! [`Schedule::next`] waits for the next one and says how late it was made;
//! it ends with the schedule or with the run ([`Live::ended`]).
//!
//! Three players use it:
//! - the open-model dispatcher ([`super::driver::dispatch_open`]): users'
//!   arrivals, their lateness recorded as `generator.lag`;
//! - every commander ([`super::hub::commander`]): commands at the phases'
//!   `commanders` rate;
//! - the agent manager ([`super::hub::manager`]): connections at each
//!   phase's `connect_rate`, a storm ([`Pace::AtOnce`]) for `max`.
//!
//! # Segments
//!
//! A schedule can be **striped** ([`Schedule::striped`]; [`Schedule::of_plan`]
//! takes the plan's segment): it keeps numbering every event of the whole
//! schedule ([`Due::seq`] is the global number) but hands over only those
//! its [`Segment`] owns (`seq mod n == i`), each at the same intended time
//! as in the whole schedule. So the `n` segments together make exactly the
//! whole schedule's events, and a rate is never divided (dividing it would
//! make every segment fire at the same instants).
//!
//! Waiting is cancel-safe: nothing is taken until the wait is over, so a
//! player can `select!` on [`Schedule::next`] against its other work
//! without losing or repeating an event. Nothing here allocates per event.
//!
//! # Timing
//!
//! Each schedule waits with its own [`super::timer::Timer`]: with the real
//! clock a Linux `timerfd` in tokio's reactor (microsecond precision, no
//! thread, no spin); under tokio's paused clock (tests) tokio's own timer,
//! which the paused clock moves (1 ms wheel). Events already due when a
//! wait ends are taken at once, without a timer. An event is never handed
//! over before it is due, and [`Made::lag`] is read from the clock at the
//! hand-over, so `generator.lag` stays the truth whichever timer waited.
//!
//! Measured with `benches/scheduler.sh` (nginx on one core, stampede
//! pinned to the other of an otherwise idle 2-core host, 10 s per run):
//! at 20,000 arrivals/s `generator.lag` p50 12 µs, p99 45 µs, p99.9
//! 3.9 ms (tokio's timer: 656 µs, 4.4 ms, 9.9 ms), latency p50 0.07 ms
//! (1.41 ms); the cost is a wake of the runtime per event instead of one
//! per millisecond: 0.66 CPU-seconds per second of run against 0.37
//! (about 15 µs of CPU per arrival more). At 5,000/s: lag p50 14 µs, p99
//! 33 µs, 0.23 CPU-s/s against 0.13. The tail follows what else shares
//! the core: on a host at load 12 the p99 was 0.7–4 ms, like tokio's
//! timer's (the generator-health verdict flags such a run).

use super::timer::Timer;
use super::Live;
use crate::plan::{arrival_offset, Plan, PlannedPhase, Segment};
use crate::units::RateCurve;
use std::time::Duration;
use tokio::time::Instant;

/// How a stretch spaces its events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Event `k` is due when the curve's integral reaches `k`.
    Curve(RateCurve),
    /// Every event is due at the stretch's start (a connection storm).
    AtOnce,
}

/// One stretch of a schedule: a pace laid on the run's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Stretch {
    /// The phase its events belong to (tags what they produce).
    pub phase: usize,
    /// When its event 0 is due.
    pub start: Instant,
    /// How long it lasts: no event is due at or past `start + length`
    /// ([`Duration::MAX`]: open-ended, the player stops it).
    pub length: Duration,
    pub pace: Pace,
    /// At most this many events (`u64::MAX`: as many as the pace carries).
    pub limit: u64,
}

impl Stretch {
    /// When event `k` is due, by the pace alone (no limit).
    fn due(&self, k: u64) -> Option<Instant> {
        match self.pace {
            Pace::AtOnce => Some(self.start),
            Pace::Curve(rate) => arrival_offset(rate, self.length, k).map(|o| self.start + o),
        }
    }
}

/// An event of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The phase of its stretch.
    pub phase: usize,
    /// Its number in the whole (unsegmented) schedule, from 0: striped
    /// schedules number the events they skip too.
    pub seq: u64,
    /// When it was due.
    pub intended: Instant,
}

/// An event made: when it was due and how late it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Made {
    pub due: Due,
    /// Time between `due.intended` and the moment it was handed over.
    pub lag: Duration,
}

/// Events on a timeline, in order. See the module docs.
#[derive(Debug, Clone)]
pub struct Schedule {
    stretches: Vec<Stretch>,
    /// The stretch holding the next event.
    at: usize,
    /// The next event's number within its stretch.
    k: u64,
    /// The next event's number in the whole schedule.
    seq: u64,
    /// The events handed over: those this segment owns.
    segment: Segment,
    /// The next event, once computed.
    next: Option<Due>,
    /// After the plan's normal end, still hand over the events that fell
    /// due before it (see [`Schedule::finishing`]).
    finishing: bool,
    /// Waits to the next event's due time (see [`super::timer`]).
    timer: Timer,
}

impl Schedule {
    /// Every event of `stretches` (unstriped).
    pub fn new(stretches: Vec<Stretch>) -> Schedule {
        Schedule {
            stretches,
            at: 0,
            k: 0,
            seq: 0,
            segment: Segment::WHOLE,
            next: None,
            finishing: false,
            timer: Timer::default(),
        }
    }

    /// Events already due when the plan ends normally are still handed
    /// over (late, with their lag) rather than lost: a generator that fell
    /// behind under load still makes every arrival of the plan, and the
    /// lateness shows in `generator.lag` and the latencies. Only an
    /// interruption (Ctrl-C, `abort_on_fail`) stops it at once. For
    /// schedules whose events all fall before the plan's end (the users'
    /// arrivals: each stretch is bounded by its phase).
    pub fn finishing(self) -> Schedule {
        Schedule {
            finishing: true,
            ..self
        }
    }

    /// Only the events `segment` owns, numbered and timed as in the whole
    /// schedule (see the module docs).
    pub fn striped(self, segment: Segment) -> Schedule {
        Schedule {
            segment,
            next: None,
            ..self
        }
    }

    /// One stretch per phase of `plan` that has a rate (`rate` picks the
    /// workload: users, commanders), each over its phase, from `start`;
    /// striped for the plan's segment.
    pub fn of_plan(
        plan: &Plan,
        start: Instant,
        rate: impl Fn(&PlannedPhase) -> Option<RateCurve>,
    ) -> Schedule {
        let stretches = plan
            .phases
            .iter()
            .enumerate()
            .filter_map(|(phase, p)| {
                rate(p).map(|curve| Stretch {
                    phase,
                    start: start + p.start,
                    length: p.duration,
                    pace: Pace::Curve(curve),
                    limit: u64::MAX,
                })
            })
            .collect();
        Schedule::new(stretches).striped(plan.segment)
    }

    /// The next event, without taking it (None: the schedule is over).
    pub fn peek(&mut self) -> Option<Due> {
        while self.next.is_none() {
            let stretch = self.stretches.get(self.at)?;
            let exists = |k: u64| k < stretch.limit && stretch.due(k).is_some();
            let skip = self.segment.skip_from(self.seq);
            if skip > 0 {
                // Due times only grow with k, so when the event `skip`
                // further on exists, so do the ones in between: jump.
                // Otherwise step one by one to the stretch's end, numbering
                // what is skipped.
                let step = if exists(self.k + skip) {
                    skip
                } else if exists(self.k) {
                    1
                } else {
                    0
                };
                if step > 0 {
                    self.k += step;
                    self.seq += step;
                    continue;
                }
            } else if self.k < stretch.limit {
                if let Some(intended) = stretch.due(self.k) {
                    self.next = Some(Due {
                        phase: stretch.phase,
                        seq: self.seq,
                        intended,
                    });
                    break;
                }
            }
            // The last stretch stays current, for `resume_at`.
            if self.at + 1 >= self.stretches.len() {
                return None;
            }
            self.at += 1;
            self.k = 0;
        }
        self.next
    }

    /// Take the next event if it is due at or before `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Due> {
        let due = self.peek().filter(|d| d.intended <= now)?;
        self.next = None;
        self.k += 1;
        self.seq += 1;
        Some(due)
    }

    /// When the current stretch's next event would be due were it
    /// unlimited: where a following stretch at the same pace picks up.
    pub fn resume_at(&self) -> Option<Instant> {
        self.stretches.get(self.at)?.due(self.k)
    }

    /// Wait for the next event and take it. None when the schedule is over
    /// or the run ended (then nothing is taken). Cancel-safe.
    pub async fn next(&mut self, live: &Live) -> Option<Made> {
        let due = self.peek()?;
        let finishing = self.finishing;
        let stop = |live: &Live| live.is_interrupted() || (live.is_over() && !finishing);
        // Already due (at 20,000/s, events are 50 µs apart: a late wake
        // finds the next ones due): taken at once, no wait, no timer.
        if Instant::now() < due.intended {
            let ended = tokio::select! {
                _ = self.timer.sleep_until(due.intended) => false,
                _ = live.ended() => true,
            };
            if ended {
                if stop(live) {
                    return None;
                }
                // Finishing: the event falls before the plan's end.
                self.timer.sleep_until(due.intended).await;
            }
        }
        if stop(live) {
            return None;
        }
        let now = Instant::now();
        let taken = self.take_due(now);
        debug_assert_eq!(taken, Some(due));
        Some(Made {
            due,
            lag: now.saturating_duration_since(due.intended),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn phase(name: &str, start: u64, secs: u64, from: f64, to: f64) -> PlannedPhase {
        PlannedPhase {
            name: name.into(),
            start: Duration::from_secs(start),
            duration: Duration::from_secs(secs),
            users: Some(crate::scenario::UserLoad::Open(RateCurve { from, to })),
            agents: None,
            commanders: None,
        }
    }

    fn users(p: &PlannedPhase) -> Option<RateCurve> {
        match p.users {
            Some(crate::scenario::UserLoad::Open(r)) => Some(r),
            _ => None,
        }
    }

    /// A schedule of one steady phase of `secs` at `rate`/s, from now.
    fn steady(secs: u64, rate: f64) -> (Instant, Schedule) {
        let start = Instant::now();
        let plan = Plan {
            phases: vec![phase("steady", 0, secs, rate, rate)],
            total: Duration::from_secs(secs),
            segment: crate::plan::Segment::WHOLE,
        };
        (start, Schedule::of_plan(&plan, start, users))
    }

    async fn drain(schedule: &mut Schedule, live: &Live) -> Vec<(Made, Instant)> {
        let mut out = Vec::new();
        while let Some(made) = schedule.next(live).await {
            out.push((made, Instant::now()));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn a_constant_rate_is_due_exactly_every_period() {
        let (start, mut schedule) = steady(2, 50.0);
        let live = Live::default();
        let made = drain(&mut schedule, &live).await;
        assert_eq!(made.len(), 100);
        for (k, (m, at)) in made.iter().enumerate() {
            assert_eq!(m.due.intended, start + Duration::from_millis(20 * k as u64));
            assert_eq!(m.due.seq, k as u64);
            assert_eq!(m.due.phase, 0);
            assert_eq!(*at - m.due.intended, m.lag);
            assert_eq!(m.lag, Duration::ZERO);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ramp_across_two_phases_follows_the_integral() {
        let start = Instant::now();
        let plan = Plan {
            phases: vec![phase("up", 0, 4, 0.0, 10.0), phase("down", 4, 4, 10.0, 0.0)],
            total: Duration::from_secs(8),
            segment: crate::plan::Segment::WHOLE,
        };
        let live = Live::default();
        let made = drain(&mut Schedule::of_plan(&plan, start, users), &live).await;
        let ramp = |from, to| RateCurve { from, to };
        let d = Duration::from_secs(4);
        // 0 -> 10/s over 4 s carries 20; 10 -> 0/s over 4 s carries 20.
        assert_eq!(made.len(), 40);
        for (i, (m, _)) in made.iter().enumerate() {
            let (phase, k, curve, at) = if i < 20 {
                (0, i as u64, ramp(0.0, 10.0), start)
            } else {
                (1, i as u64 - 20, ramp(10.0, 0.0), start + d)
            };
            assert_eq!(m.due.phase, phase);
            assert_eq!(m.due.seq, i as u64);
            assert_eq!(m.due.intended, at + arrival_offset(curve, d, k).unwrap());
            // tokio's timer wheel has a 1 ms resolution.
            assert!(m.lag < Duration::from_millis(1), "{i}: {:?}", m.lag);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_finishing_schedule_still_makes_what_fell_due_before_a_normal_end() {
        // 10 events in 1 s; the consumer is stuck until 1.5 s, after the
        // plan ended normally at 1 s.
        for finishing in [false, true] {
            let (start, schedule) = steady(1, 10.0);
            let mut schedule = if finishing {
                schedule.finishing()
            } else {
                schedule
            };
            let live = Live::default();
            let first = schedule.next(&live).await.unwrap();
            assert_eq!(first.due.intended, start);
            tokio::time::sleep(Duration::from_millis(1500)).await;
            live.finish();
            let rest = drain(&mut schedule, &live).await;
            if finishing {
                assert_eq!(rest.len(), 9, "every event due before the end is made");
                for (k, (m, _)) in rest.iter().enumerate() {
                    let intended = start + Duration::from_millis(100 * (k as u64 + 1));
                    assert_eq!(m.due.intended, intended);
                    assert_eq!(m.lag, start + Duration::from_millis(1500) - intended);
                }
            } else {
                assert!(rest.is_empty());
            }
        }
        // An interruption stops even a finishing schedule at once.
        let (_, schedule) = steady(1, 10.0);
        let mut schedule = schedule.finishing();
        let live = Live::default();
        tokio::time::sleep(Duration::from_millis(500)).await;
        live.interrupt();
        assert!(schedule.next(&live).await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_consumer_gets_late_events_with_their_lateness() {
        let (start, mut schedule) = steady(1, 10.0);
        let live = Live::default();
        let mut made = Vec::new();
        while let Some(m) = schedule.next(&live).await {
            made.push(m);
            // Each event takes 250 ms to handle: four periods and a half.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // None lost, none repeated: all ten, in order, each as late as the
        // consumer made it.
        assert_eq!(made.len(), 10);
        for (k, m) in made.iter().enumerate() {
            let k = k as u64;
            assert_eq!(m.due.seq, k);
            assert_eq!(m.due.intended, start + Duration::from_millis(100 * k));
            assert_eq!(m.lag, Duration::from_millis(150 * k));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_runs_end_stops_it_promptly_and_takes_nothing() {
        let (start, mut schedule) = steady(10, 1.0);
        let live = Arc::new(Live::default());
        let stopper = live.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2500)).await;
            stopper.interrupt();
        });
        let made = drain(&mut schedule, &live).await;
        assert_eq!(made.len(), 3);
        assert_eq!(Instant::now() - start, Duration::from_millis(2500));
        // The event it was waiting for is still next.
        assert_eq!(schedule.peek().map(|d| d.seq), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_loses_nothing() {
        let (_, mut schedule) = steady(1, 10.0);
        let live = Live::default();
        let mut seqs = Vec::new();
        let mut poke = tokio::time::interval(Duration::from_millis(30));
        loop {
            tokio::select! {
                made = schedule.next(&live) => match made {
                    Some(m) => seqs.push(m.due.seq),
                    None => break,
                },
                _ = poke.tick() => {}
            }
        }
        assert_eq!(seqs, (0..10).collect::<Vec<_>>());
    }

    /// With the real clock the precise timer waits (see [`super::super::timer`]):
    /// on both runtimes, a 20,000/s schedule (events 50 µs apart) striped
    /// 2/3, polled against a ticking `select!` branch, makes every event of
    /// its stripe once, in order, never before it is due, and its lag is the
    /// time from due to hand-over. Correctness only: how late is the bench's
    /// business (`benches/scheduler.sh`).
    #[test]
    fn with_the_real_clock_events_are_never_early_nor_lost() {
        for multi in [false, true] {
            let mut builder = if multi {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = builder.worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let start = Instant::now() + Duration::from_millis(5);
                let stretches = vec![Stretch {
                    phase: 0,
                    start,
                    length: Duration::from_millis(30),
                    pace: Pace::Curve(RateCurve {
                        from: 20_000.0,
                        to: 20_000.0,
                    }),
                    limit: u64::MAX,
                }];
                let segment = Segment { index: 1, count: 3 };
                let mut schedule = Schedule::new(stretches).striped(segment);
                let live = Live::default();
                let mut poke = tokio::time::interval(Duration::from_micros(700));
                let mut made = Vec::new();
                loop {
                    tokio::select! {
                        m = schedule.next(&live) => match m {
                            Some(m) => made.push((m, Instant::now())),
                            None => break,
                        },
                        _ = poke.tick() => {}
                    }
                }
                // 20,000/s over 30 ms: 600 events, every third from 1.
                let seqs: Vec<u64> = made.iter().map(|(m, _)| m.due.seq).collect();
                assert_eq!(
                    seqs,
                    (1..600).step_by(3).collect::<Vec<_>>(),
                    "multi {multi}"
                );
                let rate = RateCurve {
                    from: 20_000.0,
                    to: 20_000.0,
                };
                for (m, after) in &made {
                    let k = m.due.seq;
                    let offset = arrival_offset(rate, Duration::from_millis(30), k).unwrap();
                    assert_eq!(m.due.intended, start + offset);
                    // Handed over no earlier than due (an early wake would
                    // find nothing to take), the lag up to the hand-over.
                    assert!(*after >= m.due.intended, "{k}");
                    assert!(m.due.intended + m.lag <= *after, "{k}");
                }
            });
        }
    }

    #[test]
    fn a_striped_schedule_numbers_across_stretches_and_keeps_due_times() {
        let start = Instant::now();
        let stretches = vec![
            Stretch {
                phase: 0,
                start,
                length: Duration::from_secs(1),
                pace: Pace::Curve(RateCurve { from: 5.0, to: 5.0 }),
                limit: u64::MAX,
            },
            Stretch {
                phase: 1,
                start: start + Duration::from_secs(1),
                length: Duration::MAX,
                pace: Pace::AtOnce,
                limit: 5,
            },
        ];
        let end = start + Duration::from_secs(10);
        let whole: Vec<Due> = {
            let mut s = Schedule::new(stretches.clone());
            std::iter::from_fn(|| s.take_due(end)).collect()
        };
        assert_eq!(whole.len(), 10);
        for count in 1..=4u32 {
            let mut union = Vec::new();
            for index in 0..count {
                let segment = Segment { index, count };
                let mut s = Schedule::new(stretches.clone()).striped(segment);
                let mine: Vec<Due> = std::iter::from_fn(|| s.take_due(end)).collect();
                assert!(mine.iter().all(|d| segment.owns(d.seq)));
                union.extend(mine);
            }
            union.sort_by_key(|d| d.seq);
            assert_eq!(union, whole, "{count} segments");
        }
        // Segment 2/3 takes 2 (at 400 ms), then 5 and 8 of the storm.
        let mut s = Schedule::new(stretches).striped(Segment { index: 2, count: 3 });
        let taken: Vec<(usize, u64, Duration)> = std::iter::from_fn(|| s.take_due(end))
            .map(|d| (d.phase, d.seq, d.intended - start))
            .collect();
        let ms = Duration::from_millis;
        assert_eq!(taken, [(0, 2, ms(400)), (1, 5, ms(1000)), (1, 8, ms(1000))]);
    }

    #[test]
    fn a_storm_is_all_due_at_once_up_to_its_limit_and_resumes_there() {
        let start = Instant::now();
        let mut storm = Schedule::new(vec![Stretch {
            phase: 2,
            start,
            length: Duration::MAX,
            pace: Pace::AtOnce,
            limit: 3,
        }]);
        let taken: Vec<u64> = std::iter::from_fn(|| storm.take_due(start))
            .map(|d| d.seq)
            .collect();
        assert_eq!(taken, [0, 1, 2]);
        assert_eq!(storm.peek(), None);
        let mut paced = Schedule::new(vec![Stretch {
            phase: 0,
            start,
            length: Duration::MAX,
            pace: Pace::Curve(RateCurve { from: 4.0, to: 4.0 }),
            limit: 2,
        }]);
        assert!(paced.take_due(start).is_some());
        assert_eq!(paced.take_due(start), None, "the second is due at 250 ms");
        let later = start + Duration::from_millis(250);
        assert!(paced.take_due(later).is_some());
        assert_eq!(paced.peek(), None, "limited to two");
        // Past its limit it says where the same pace would go on.
        assert_eq!(paced.resume_at(), Some(start + Duration::from_millis(500)));
    }
}
