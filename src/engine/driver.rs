//! The one driver. Every journey starts as an [`Arrival`] with an intended
//! start; where arrivals come from is the only difference between the load
//! models:
//!
//! - **open** (`rate`): [`dispatch_open`] makes each arrival at its due
//!   time on the plan's rate curves ([`super::schedule`]), whatever the
//!   target does. A pool of
//!   VUs (each keeping its own connection) takes them from a bounded queue;
//!   the pool grows while no VU is idle, up to `max_in_flight`. An arrival
//!   that finds the queue full, or that waited longer than `queue_timeout`,
//!   is dropped and counted. Latency is measured from the intended start, so
//!   queueing behind a stalled target shows in the percentiles.
//! - **closed** (`vus`): a controller keeps the number of looping VUs on the
//!   phase's curve; each VU makes its own next arrival when its previous
//!   journey (and think time) ends.
//!
//! Random choices follow the arrival, not the process playing it, so a run
//! split into segments (`--segment`) makes the same choices as a whole one:
//! an open-model arrival's population is a function of (seed, its global
//! number) ([`Weights::pick_for`]) and its journey's rng is seeded from the
//! same pair; a closed-model VU has its global id (the segment's VU `j` is
//! the whole run's VU `j·n + i`), which picks its population and seeds its
//! journeys. Open-model VUs are numbered the same way (`j·n + i`), so
//! `{{ vu.id }}` is unique across segments.

use super::schedule::{Made, Schedule};
use super::user::Vu;
use super::{EngineReport, Shared};
use crate::error::ErrorKind;
use crate::plan::{Plan, PlannedPhase};
use crate::scenario::UserLoad;
use rand::rngs::SmallRng;
use rand::Rng;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// One journey to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// When it was due. Latency of its first request counts from here.
    pub intended: Instant,
    /// Phase index (tags every sample it produces).
    pub phase: usize,
    /// Population index.
    pub population: usize,
    /// Sequence number; seeds the journey's rng, so random choices do not
    /// depend on which VU happened to take it.
    pub seq: u64,
}

/// SplitMix64: spreads a seed and a sequence number into an rng seed.
pub fn mix_seed(seed: u64, seq: u64) -> u64 {
    let mut z = seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Picks populations by weight.
pub struct Weights {
    cumulative: Vec<u64>,
}

impl Weights {
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Weights {
        let mut sum = 0u64;
        let cumulative = weights
            .into_iter()
            .map(|w| {
                sum += w as u64;
                sum
            })
            .collect();
        Weights { cumulative }
    }

    fn total(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }

    /// The population a number in `0..total` falls in.
    pub fn at(&self, n: u64) -> usize {
        self.cumulative
            .partition_point(|&c| c <= n % self.total().max(1))
    }

    pub fn pick(&self, rng: &mut SmallRng) -> usize {
        self.at(rng.gen_range(0..self.total().max(1)))
    }

    /// The population of arrival `seq` (its number in the whole run) of a
    /// run seeded with `seed`: the same whichever segment plays it.
    pub fn pick_for(&self, seed: u64, seq: u64) -> usize {
        let draw = mix_seed(mix_seed(seed, u64::MAX), seq);
        // Multiply-shift maps the 64-bit draw onto 0..total without a
        // division (bias below total / 2^64).
        let n = (u128::from(draw) * u128::from(self.total().max(1))) >> 64;
        self.at(n as u64)
    }
}

/// Make every open-model arrival of `plan` at its due time (relative to
/// `start`), handing each to `sink` together with how late it was made.
/// Returns early when `live` stops. The timing is [`Schedule`]'s (striped
/// for the plan's segment); this adds the population, picked by weight as a
/// function of `seed` and the arrival's global number.
pub async fn dispatch_open(
    plan: &Plan,
    start: Instant,
    seed: u64,
    weights: &Weights,
    live: &super::Live,
    mut sink: impl FnMut(Arrival, Duration),
) {
    let mut schedule = Schedule::of_plan(plan, start, PlannedPhase::arrival_rate).finishing();
    while let Some(Made { due, lag }) = schedule.next(live).await {
        sink(arrival_of(due, seed, weights), lag);
    }
}

/// The arrival an open-model schedule event makes.
pub fn arrival_of(due: super::schedule::Due, seed: u64, weights: &Weights) -> Arrival {
    Arrival {
        intended: due.intended,
        phase: due.phase,
        population: weights.pick_for(seed, due.seq),
        seq: due.seq,
    }
}

/// Play the whole plan: dispatcher, closed-model controller, phase clock;
/// then drain.
pub async fn run(shared: Arc<Shared>, grace: Duration) -> EngineReport {
    let live = shared.live.clone();
    let settings = &shared.scenario.http;
    let (tx, rx) = async_channel::bounded::<Arrival>(settings.queue.max(1));
    let mut vus: JoinSet<()> = JoinSet::new();
    let weights = Weights::new(shared.scenario.populations.iter().map(|p| p.weight));
    let start = shared.start;

    // The phase clock: moves `live.phase` along the timeline, ends the plan.
    let clock = {
        let shared = shared.clone();
        tokio::spawn(async move {
            for (i, phase) in shared.plan.phases.iter().enumerate() {
                shared.live.phase.store(i, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep_until(start + phase.end()) => {}
                    _ = shared.live.ended() => return false,
                }
            }
            shared.live.finish();
            true
        })
    };

    // Closed model: one controller for the whole run.
    let controller = {
        let shared = shared.clone();
        tokio::spawn(async move { control_closed(shared).await })
    };

    // Open model: the dispatcher runs here; VUs are spawned as needed.
    let mut next_vu_id = 0u64;
    let max_vus = settings.max_in_flight;
    let mut open_vus = 0usize;
    {
        let shared_d = shared.clone();
        let vus_ref = &mut vus;
        dispatch_open(
            &shared.plan,
            start,
            shared.scenario.seed,
            &weights,
            &live,
            |arrival, lag| {
                live.arrivals.fetch_add(1, Ordering::Relaxed);
                shared_d
                    .metrics
                    .with(|s| s.record(shared_d.ids.lag, arrival.phase, lag.as_micros() as u64));
                if live.idle.load(Ordering::Acquire) == 0 && open_vus < max_vus {
                    open_vus += 1;
                    let vu = Vu::new(shared_d.plan.segment.global(next_vu_id), &shared_d);
                    next_vu_id += 1;
                    vus_ref.spawn(open_vu(shared_d.clone(), vu, rx.clone()));
                }
                // Counted before it is sent: a VU on another thread may take
                // it (and count it out) before `try_send` even returns, and
                // the gauge must never wrap below zero.
                live.queued.fetch_add(1, Ordering::Relaxed);
                if tx.try_send(arrival).is_err() {
                    live.queued.fetch_sub(1, Ordering::Relaxed);
                    super::user::record_dropped(&shared_d, &arrival);
                }
            },
        )
        .await;
    }
    // No more arrivals: open VUs finish the queue, then see the channel closed.
    // `rx` stays: what is still queued when the VUs are aborted (a second
    // Ctrl-C before a new VU took its first arrival) is counted below.
    tx.close();

    let completed = clock.await.unwrap_or(false) && !live.is_interrupted();
    let _ = controller.await;

    // Drain: after a normal end, in-flight work finishes within its own
    // timeouts; after a stop, it gets `grace`.
    let limit = if completed {
        shared
            .scenario
            .populations
            .iter()
            .flat_map(|p| p.steps.iter().map(|s| s.timeout))
            .max()
            .unwrap_or(Duration::ZERO)
            .max(settings.queue_timeout)
            + Duration::from_secs(1)
    } else {
        grace
    };
    let drained = tokio::select! {
        done = tokio::time::timeout(limit, async {
            while vus.join_next().await.is_some() {}
        }) => done.is_ok(),
        _ = live.hurried() => false,
    };
    let mut cancelled = 0;
    if !drained {
        cancelled = live.in_flight.load(Ordering::Relaxed);
        vus.abort_all();
        while vus.join_next().await.is_some() {}
    }
    // Arrivals no VU took are dropped, and counted: never silently lost.
    while let Ok(arrival) = rx.try_recv() {
        live.queued.fetch_sub(1, Ordering::Relaxed);
        super::user::record_dropped(&shared, &arrival);
    }
    EngineReport {
        elapsed: start.elapsed(),
        stopped_early: !completed,
        cancelled,
        records: Default::default(),
    }
}

/// An open-model VU: takes arrivals until the queue closes.
async fn open_vu(shared: Arc<Shared>, mut vu: Vu, rx: async_channel::Receiver<Arrival>) {
    let live = &shared.live;
    live.vus.fetch_add(1, Ordering::Relaxed);
    let timeout = shared.scenario.http.queue_timeout;
    loop {
        live.idle.fetch_add(1, Ordering::AcqRel);
        let next = rx.recv().await;
        live.idle.fetch_sub(1, Ordering::AcqRel);
        let Ok(arrival) = next else { break };
        live.queued.fetch_sub(1, Ordering::Relaxed);
        // Too late to start honestly, or the run is being interrupted.
        if arrival.intended.elapsed() > timeout || live.is_interrupted() {
            super::user::record_dropped(&shared, &arrival);
            continue;
        }
        vu.journey(&shared, arrival, false).await;
    }
    live.vus.fetch_sub(1, Ordering::Relaxed);
}

/// Keeps the number of closed-model VUs on the current phase's curve.
async fn control_closed(shared: Arc<Shared>) {
    let plan = &shared.plan;
    if !plan
        .phases
        .iter()
        .any(|p| matches!(p.users, Some(UserLoad::Closed(_))))
    {
        return;
    }
    let wheel = Weights::new(shared.scenario.populations.iter().map(|p| p.weight));
    let live = shared.live.clone();
    let target = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut running: Vec<Arc<AtomicBool>> = Vec::new();
    let mut tasks = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = live.ended() => break,
        }
        let offset = shared.start.elapsed();
        if offset >= plan.total {
            break;
        }
        // This segment's share of the curve's target (the whole's when
        // unsegmented).
        let want = plan.vu_target(offset);
        target.store(want, Ordering::Release);
        for index in 0..want as usize {
            if index >= running.len() {
                running.push(Arc::new(AtomicBool::new(false)));
            }
            if !running[index].swap(true, Ordering::AcqRel) {
                // Population and journeys follow the whole run's VU id.
                let id = plan.segment.global(index as u64);
                tasks.spawn(closed_vu(
                    shared.clone(),
                    ClosedVu {
                        index,
                        id,
                        population: wheel.at(id),
                    },
                    target.clone(),
                    running[index].clone(),
                ));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    target.store(0, Ordering::Release);
    while tasks.join_next().await.is_some() {}
}

/// Who a closed-model VU is.
struct ClosedVu {
    /// Its place in this segment: it loops while this is under the target.
    index: usize,
    /// Its id in the whole run (`{{ vu.id }}`; seeds its journeys).
    id: u64,
    population: usize,
}

/// A closed-model VU: loops journeys while its index is under the target.
async fn closed_vu(
    shared: Arc<Shared>,
    who: ClosedVu,
    target: Arc<std::sync::atomic::AtomicU32>,
    running: Arc<AtomicBool>,
) {
    let ClosedVu {
        index,
        id,
        population,
    } = who;
    let live = shared.live.clone();
    live.vus.fetch_add(1, Ordering::Relaxed);
    let mut vu = Vu::new(id, &shared);
    let mut seq = id << 40;
    while (index as u32) < target.load(Ordering::Acquire) && !live.is_over() {
        let arrival = Arrival {
            intended: Instant::now(),
            phase: live.phase.load(Ordering::Relaxed),
            population,
            seq,
        };
        seq += 1;
        live.arrivals.fetch_add(1, Ordering::Relaxed);
        vu.journey(&shared, arrival, true).await;
    }
    running.store(false, Ordering::Release);
    live.vus.fetch_sub(1, Ordering::Relaxed);
}

/// Kinds that say the request never reached the target.
pub fn is_connect_failure(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectRefused | ErrorKind::Connect)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn weights_follow_the_declared_shares() {
        let w = Weights::new([9, 1]);
        assert_eq!((0..10).filter(|&n| w.at(n) == 0).count(), 9);
        assert_eq!(w.at(9), 1);
        let mut rng = SmallRng::seed_from_u64(7);
        let picks: Vec<usize> = (0..10_000).map(|_| w.pick(&mut rng)).collect();
        let second = picks.iter().filter(|&&p| p == 1).count();
        assert!((800..1200).contains(&second), "{second}");
    }

    #[test]
    fn a_population_follows_the_seed_and_the_arrival_number() {
        let w = Weights::new([9, 1]);
        let picks: Vec<usize> = (0..10_000).map(|k| w.pick_for(7, k)).collect();
        let second = picks.iter().filter(|&&p| p == 1).count();
        assert!((800..1200).contains(&second), "{second}");
        // A function of (seed, k): asked again, or out of order, the same.
        assert!((0..10_000u64)
            .rev()
            .all(|k| w.pick_for(7, k) == picks[k as usize]));
        let other: Vec<usize> = (0..10_000).map(|k| w.pick_for(8, k)).collect();
        assert_ne!(picks, other);
        assert!((0..100).all(|k| Weights::new([5]).pick_for(3, k) == 0));
    }

    #[test]
    fn seeds_are_spread() {
        assert_ne!(mix_seed(1, 0), mix_seed(1, 1));
        assert_ne!(mix_seed(1, 0), mix_seed(2, 0));
        assert_eq!(mix_seed(5, 9), mix_seed(5, 9));
    }
}
