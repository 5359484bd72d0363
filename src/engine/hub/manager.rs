//! The manager: plays the plan's agent workload phase after phase. It
//! starts agents at the phase's `connect_rate` (due times from the engine's
//! [`Schedule`]; `max` is a storm), sends agents past a lower target away,
//! and drops agents at the phase's `drop.at`: a client drop picks exactly
//! `round(fraction × registered)` registered agents with a seeded shuffle;
//! a server drop asks the hub's admin endpoint ([`super::admin`]).

use super::recovery::DropEvent;
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
    for (index, planned) in shared.plan.phases.iter().enumerate() {
        let phase_start = start + planned.start;
        let phase_end = start + planned.end();
        let Some(load) = &planned.agents else {
            if !wait_until(&live, phase_end).await {
                return;
            }
            continue;
        };
        // Scale down: agents past the target leave.
        if load.connected < started {
            for id in load.connected..started {
                fleet.slots[id as usize].fetch_or(slot::LEAVE, Ordering::AcqRel);
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
                    do_drop(shared, fleet, d.how, d.fraction, index, &mut rng).await;
                    continue;
                }
            }
            let now = Instant::now();
            if spawn_due.is_some_and(|due| due <= now) {
                // Start every agent that is due (a storm starts them all).
                while connects.take_due(now).is_some() {
                    let id = started;
                    started += 1;
                    // A slot may be reused after a scale-down: clear it.
                    fleet.slots[id as usize].store(slot::IDLE, Ordering::Release);
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
/// hub's admin endpoint.
async fn do_drop(
    shared: &Arc<Shared>,
    fleet: &Arc<Fleet>,
    how: DropHow,
    fraction: f64,
    phase: usize,
    rng: &mut SmallRng,
) {
    let recovered = shared.scenario.hub_settings.recovered;
    if how == DropHow::Server {
        let event = Arc::new(DropEvent::new(how, u64::MAX, recovered, phase));
        *fleet.server_drop.lock() = Some(event.clone());
        fleet.events.lock().push(event.clone());
        let kicked = admin::kick(shared, fleet, fraction).await;
        match kicked {
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
    // Client drops: exactly round(fraction × registered) of the registered
    // agents, picked by a seeded shuffle.
    let mut up: Vec<u32> = (0..fleet.slots.len() as u32)
        .filter(|&id| fleet.slots[id as usize].load(Ordering::Acquire) & slot::STATE == slot::UP)
        .collect();
    let n = (fraction * up.len() as f64).round() as usize;
    for i in 0..n.min(up.len()) {
        let j = rng.gen_range(i..up.len());
        up.swap(i, j);
    }
    let chosen = &up[..n.min(up.len())];
    let event = Arc::new(DropEvent::new(how, chosen.len() as u64, recovered, phase));
    *fleet.client_drop.lock() = Some(event.clone());
    fleet.events.lock().push(event);
    let bit = if how == DropHow::Reset {
        slot::DROP_RESET
    } else {
        slot::DROP_CLOSE
    };
    for &id in chosen {
        fleet.slots[id as usize].fetch_or(bit, Ordering::AcqRel);
    }
    fleet.wake_all();
}
