//! The manager: plays the plan's agent workload phase after phase. It
//! starts agents at the phase's `connect_rate` (due times from the engine's
//! [`Schedule`]; `max` is a storm), sends agents past a lower target away,
//! and drops agents at the phase's `drop.at`: a client drop picks exactly
//! `round(fraction × registered)` registered agents with a seeded shuffle;
//! a server drop asks the hub's admin endpoint ([`super::admin`]).
//!
//! In a segmented run the manager still walks the whole fleet's schedule
//! (global agent ids, the same due times) and acts only on the ids its
//! segment owns; see `# Segments` in [`super`].

use super::recovery::{DropEvent, KICKED_UNKNOWN};
use super::{admin, agent, reraise, slot, Fleet};
use crate::engine::driver::mix_seed;
use crate::engine::schedule::{Pace, Schedule, Stretch};
use crate::engine::{Live, Shared};
use crate::scenario::hub::{ConnectRate, DropHow};
use crate::units::RateCurve;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Walk the plan's phases, starting agents at the connect rate, sending
/// surplus agents away and dropping agents on schedule, until the plan is
/// over (or the run ends).
pub(super) async fn manage(shared: &Arc<Shared>, fleet: &Arc<Fleet>, agents: &mut JoinSet<()>) {
    let live = shared.live.clone();
    let start = shared.start;
    let mut started: u32 = 0;
    let mut rng = SmallRng::seed_from_u64(mix_seed(shared.scenario.seed, 0xD809));
    // Where the connect pace picks up: a phase does not start agents closer
    // together than the previous phase's rate allowed.
    let mut resume = start;
    let segment = fleet.segment;
    for (index, planned) in shared.plan.phases.iter().enumerate() {
        let phase_start = start + planned.start;
        let phase_end = start + planned.end();
        let Some(load) = &planned.agents else {
            if !wait_until(&live, phase_end).await {
                return;
            }
            continue;
        };
        // Scale down: agents past the target leave (ours).
        if load.connected < started {
            for id in (load.connected..started).filter(|&id| segment.owns(u64::from(id))) {
                fleet.slot(id).fetch_or(slot::LEAVE, Ordering::AcqRel);
            }
            fleet.wake_all();
            started = load.connected;
        }
        let mut connects = Schedule::new(vec![Stretch {
            phase: index,
            start: resume.max(phase_start),
            // Open-ended: an agent due exactly at the phase's end still
            // starts; the loop below ends the phase.
            length: Duration::MAX,
            pace: match load.connect_rate {
                ConnectRate::Max => Pace::AtOnce,
                ConnectRate::PerSecond(rate) => Pace::Curve(RateCurve {
                    from: rate,
                    to: rate,
                }),
            },
            limit: u64::from(load.connected - started),
        }]);
        let mut drop = load.drop.map(|d| (phase_start + d.at, d));
        loop {
            let spawn_due = connects.peek().map(|due| due.intended);
            let drop_due = drop.map(|(at, _)| at);
            let next = [spawn_due, drop_due, Some(phase_end)]
                .into_iter()
                .flatten()
                .min()
                .expect("phase end");
            if !wait_until(&live, next).await {
                return;
            }
            if let Some((at, d)) = drop {
                if Instant::now() >= at {
                    drop = None;
                    let planned = load.connected;
                    do_drop(shared, fleet, d.how, d.fraction, index, planned, &mut rng).await;
                    continue;
                }
            }
            let now = Instant::now();
            if spawn_due.is_some_and(|due| due <= now) {
                // Start every agent that is due (a storm starts them all);
                // another segment's agents are skipped at the same instant.
                while connects.take_due(now).is_some() {
                    let id = started;
                    started += 1;
                    if !segment.owns(u64::from(id)) {
                        continue;
                    }
                    // A slot may be reused after a scale-down: clear it.
                    fleet.slot(id).store(slot::IDLE, Ordering::Release);
                    agents.spawn(agent::run(shared.clone(), fleet.clone(), id));
                }
                while let Some(result) = agents.try_join_next() {
                    reraise(result);
                }
                continue;
            }
            if Instant::now() >= phase_end {
                break;
            }
        }
        resume = connects.resume_at().unwrap_or(resume);
    }
    let _ = wait_until(&live, start + shared.plan.total).await;
}

/// Sleep until `at`; false when the run ended first.
async fn wait_until(live: &Live, at: Instant) -> bool {
    if live.is_over() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(at) => !live.is_over(),
        _ = live.ended() => false,
    }
}

/// A drop: `fraction` of the registered agents, by close, reset or the
/// hub's admin endpoint. `planned`: the phase's fleet size (segmented runs
/// choose among the planned ids, see [`drop_choice`]).
#[allow(clippy::too_many_arguments)]
async fn do_drop(
    shared: &Arc<Shared>,
    fleet: &Arc<Fleet>,
    how: DropHow,
    fraction: f64,
    phase: usize,
    planned: u32,
    rng: &mut SmallRng,
) {
    let recovered = shared.scenario.hub_settings.recovered;
    let segment = fleet.segment;
    if how == DropHow::Server {
        // One kick for the whole fleet: segment 0 asks for it; every
        // segment attributes the closes its agents see in the window.
        let expected = if segment.is_whole() {
            u64::MAX
        } else {
            KICKED_UNKNOWN
        };
        let event = Arc::new(DropEvent::new(how, expected, recovered, phase));
        *fleet.server_drop.lock() = Some(event.clone());
        fleet.events.lock().push(event.clone());
        if segment.index != 0 {
            return;
        }
        let kicked = admin::kick(shared, fleet, fraction).await;
        match kicked {
            // The hub's count is the whole fleet's: not this segment's.
            Ok(_) if !segment.is_whole() => {}
            Ok(n) => {
                event.kicked(n);
                event.check(shared, &fleet.ids);
            }
            Err(e) => {
                tracing::warn!("drop how = \"server\": the kick failed: {e}");
                eprintln!("stampede: drop how = \"server\": the hub's kick endpoint failed: {e}");
                event.kicked(0);
            }
        }
        return;
    }
    let chosen: Vec<u32> = if segment.is_whole() {
        // Exactly round(fraction × registered) of the registered agents,
        // picked by a seeded shuffle.
        let mut up = fleet.up_ids();
        let n = (fraction * up.len() as f64).round() as usize;
        shuffle_prefix(&mut up, n, rng);
        up.truncate(n.min(up.len()));
        up
    } else {
        // The same choice in every segment among the planned fleet; each
        // drops the chosen agents it owns that are registered.
        drop_choice(planned, fraction, rng)
            .into_iter()
            .filter(|&id| {
                segment.owns(u64::from(id))
                    && fleet.slot(id).load(Ordering::Acquire) & slot::STATE == slot::UP
            })
            .collect()
    };
    let event = Arc::new(DropEvent::new(how, chosen.len() as u64, recovered, phase));
    *fleet.client_drop.lock() = Some(event.clone());
    fleet.events.lock().push(event);
    let bit = if how == DropHow::Reset {
        slot::DROP_RESET
    } else {
        slot::DROP_CLOSE
    };
    for &id in &chosen {
        fleet.slot(id).fetch_or(bit, Ordering::AcqRel);
    }
    fleet.wake_all();
}

/// Move a uniformly chosen `n` of `items` to its front (a partial
/// Fisher–Yates shuffle; the rest is left in some order).
fn shuffle_prefix(items: &mut [u32], n: usize, rng: &mut SmallRng) {
    for i in 0..n.min(items.len()) {
        let j = rng.gen_range(i..items.len());
        items.swap(i, j);
    }
}

/// A segmented run's client drop: `round(fraction × planned)` global ids
/// out of the planned fleet `0..planned`, by a seeded shuffle. Every
/// segment draws the same ids (its `rng` is seeded alike and drawn alike),
/// so the segments' shares (the ids each owns) are disjoint and together
/// exactly this choice.
pub fn drop_choice(planned: u32, fraction: f64, rng: &mut SmallRng) -> Vec<u32> {
    let mut ids: Vec<u32> = (0..planned).collect();
    let n = ((fraction * f64::from(planned)).round() as usize).min(ids.len());
    shuffle_prefix(&mut ids, n, rng);
    ids.truncate(n);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Segment;
    use std::collections::HashSet;

    #[test]
    fn segments_drop_exactly_the_fraction_of_the_whole_fleet() {
        for (planned, fraction) in [
            (30u32, 1.0 / 3.0),
            (31, 0.5),
            (7, 0.34),
            (100, 0.1),
            (5, 1.0),
        ] {
            let want = (fraction * f64::from(planned)).round() as usize;
            let whole = drop_choice(planned, fraction, &mut SmallRng::seed_from_u64(7));
            assert_eq!(whole.len(), want);
            assert_eq!(whole.iter().collect::<HashSet<_>>().len(), want, "distinct");
            assert!(whole.iter().all(|&id| id < planned));
            for count in 1..=4u32 {
                let mut union = Vec::new();
                for index in 0..count {
                    let segment = Segment { index, count };
                    // Every segment draws with the same seed.
                    let mine: Vec<u32> =
                        drop_choice(planned, fraction, &mut SmallRng::seed_from_u64(7))
                            .into_iter()
                            .filter(|&id| segment.owns(u64::from(id)))
                            .collect();
                    union.extend(mine);
                }
                union.sort_unstable();
                let mut expected = whole.clone();
                expected.sort_unstable();
                assert_eq!(
                    union, expected,
                    "{planned} × {fraction} in {count} segments"
                );
            }
        }
        // A later drop draws on: the same in every segment as long as each
        // draws the same sequence of choices.
        let mut a = SmallRng::seed_from_u64(1);
        let mut b = SmallRng::seed_from_u64(1);
        for _ in 0..3 {
            assert_eq!(drop_choice(40, 0.25, &mut a), drop_choice(40, 0.25, &mut b));
        }
        assert!(drop_choice(0, 0.5, &mut a).is_empty());
    }
}
