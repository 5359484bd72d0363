//! The hub half of the engine: a fleet of long-lived agents on a WebSocket /
//! Socket.IO hub, commanders pushing commands through it, connection storms
//! and reconnect waves. It plays the plan's `agents` and `commanders`
//! workloads, alongside the HTTP users of [`super::driver`].
//!
//! # Layout
//! - [`session`]: one hub connection (either protocol): open, read, send,
//!   close gracefully or reset.
//! - [`agent`]: an agent's life: connect → register → heartbeat / status /
//!   answer commands → (dropped) → reconnect with backoff.
//! - [`commander`]: sends commands at the phases' rate, through the hub or
//!   the API, and measures fan-out and round trips.
//! - [`manager`]: plays the phases' agent workload (population, connect
//!   rate, drops).
//! - [`fleet`]: the fleet's shared state (control slots, gauges, drops,
//!   commands); [`recovery`]: drop events and their recovery;
//!   [`commands`]: commands on their way; [`admin`]: the hub's kick call.
//! - [`series`]: the metric series and their `kind` tags.
//! - [`clock`]: this process's clock offset against the hub, from the
//!   acks that carry the hub's time.
//! - this module: [`run`], which starts the players and settles the books
//!   at the end.
//!
//! # Control
//! Every agent has a one-byte slot (`Fleet::slots`): its state (idle,
//! connecting, registered, waiting to reconnect, gone) and requests from
//! the manager (drop by close, drop by reset, leave). The manager sets
//! request bits and bumps a `watch` channel; every agent wakes, reads its
//! own slot and acts. So a drop selects *exactly* `round(fraction ×
//! registered)` agents among those registered at that moment, with a
//! seeded choice (a segmented run: see `# Segments`).
//!
//! # Recovery
//! A drop is a [`DropEvent`]: when it happened and how many agents it took
//! down. So is a wave nobody planned: a registered agent that loses its
//! connection without a scenario drop claiming it joins the wave gathering
//! then (or starts one, [`Fleet::lost_unplanned`]); once the wave's
//! `within` is over it is a disruption if it lost at least `min` agents
//! and `lost` of the registered fleet (`[hub] disruption`), with cause
//! `action` when it started within 10 s of a fault action, else
//! `detected`. Each of those agents, once registered again, counts itself back;
//! when `recovered` (default 99 %) of them are back, `hub.recovery` records
//! the time since the drop. For `how = "server"` the hub decides who goes:
//! agents whose connection the server closes within a few seconds of the
//! kick request are attributed to it, up to the number the hub reports
//! (`{"kicked": n}`). An event that never recovers counts in
//! `hub.unrecovered`, and an SLO on `hub.recovery` then fails. Every event
//! keeps when each of its agents came back; [`run`] returns them as
//! [`Records`] (one `Disruption` per drop, in every run), with the
//! [`clock`] offset against the hub.
//!
//! # Segments
//! A segmented run (`plan.segment` = `i/n`, n > 1) plays its share of the
//! whole fleet; the n segments together play exactly the unsegmented run,
//! against one hub.
//!
//! - **Agents by global id.** The unsegmented fleet's agents are ids
//!   `0..N`; segment `i` runs the ids it owns (`id mod n = i`). An agent's
//!   `{{ agent.id }}`, population, feeder rows and random choices are
//!   keyed by its global id, so it behaves alike in whichever segment
//!   plays it. The manager plays the unsegmented connect schedule (the
//!   same due times, a storm alike) and starts only its own ids: another
//!   segment's id is skipped at its instant, never delayed, so connects
//!   stay striped as arrivals are. A scale-down sends its own ids away.
//!   Slots and the `hub.connected` / `hub.registered` gauges are the
//!   process's own (a merge adds gauges).
//! - **Client drops** (close / reset) choose, with the same seeded shuffle
//!   in every segment, exactly `round(fraction × N)` ids of the phase's
//!   planned fleet `0..N`; each segment drops those it owns that are
//!   registered. The union is the scenario's fraction of the whole fleet,
//!   exact when every agent is registered (an unsegmented run picks
//!   `round(fraction × registered)` among the registered, as it always
//!   did: the planned fleet is the only count every segment knows alike).
//! - **Server drops** (kick): one kick for the whole fleet, so only
//!   segment 0 calls the hub's kick endpoint; the hub kicks that fraction
//!   of *all* its connections, every segment's. The hub's `{"kicked": n}`
//!   is the whole fleet's count, not segment 0's, so no segment takes it:
//!   each attributes the server closes its agents see within the window to
//!   its own event, and the attributed count is its `lost`.
//! - **Recovery.** Each segment records `hub.recovery` from its own agents
//!   (its share of the wave); the whole fleet's time to the `recovered`
//!   fraction is for the merge, from the segments' back times (a
//!   [`Disruption`](super::records::Disruption) per drop, with the same
//!   ordinal in every segment: every segment plays every drop).
//! - **Commanders** send their stripe of the schedule (`Schedule::of_plan`
//!   stripes it). A command's id is `{commander}-{n}`, n its number in the
//!   whole schedule, so ids are unique fleet-wide and those of an
//!   unsegmented run. Its data's random choices are seeded by n as well.
//!   `to = { sample = k }` is resolved by the hub, which samples among
//!   every agent registered with it: the whole fleet's, since every
//!   segment's agents are on it (the built-in hub picks among its whole
//!   registry; under `stampede target --processes N` each worker has its
//!   own registry, so a sample is of that worker's agents). Commands reach
//!   agents of every segment through the hub.
//! - **Command log.** A segment sees only its own agents' receipts: its
//!   local `hub.command.fanout` covers those, and it does not count a
//!   command short of the fleet's expected receipts as undelivered. It
//!   keeps a [`CommandLog`](super::records::CommandLog) instead (every
//!   command sent, every command id received with its count and last
//!   receipt), from which the merge computes fan-out (send → the last
//!   receipt in any segment) and shortfalls across segments. Its memory
//!   is bounded by the commands of the run.

pub mod admin;
pub mod agent;
pub mod clock;
pub mod commander;
pub mod commands;
pub mod fleet;
pub mod manager;
pub mod recovery;
pub mod series;
pub mod session;

pub use commands::Sweep;
pub use fleet::{max_agents, slot, Fleet};
pub use recovery::DropEvent;
pub use series::{AgentIds, CommanderIds, DisconnectKind, HubErrorKind, HubIds};

use super::records::Records;
use super::Shared;
use crate::metrics::{CounterId, HistId};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::task::JoinSet;

/// Microseconds since the Unix epoch, read from the monotonic clock
/// anchored once to the wall clock: command send times (`sent_us`) and
/// receipts compare without the wall clock's steps.
pub fn unix_us_now() -> u64 {
    static ANCHOR: OnceLock<(std::time::Instant, u64)> = OnceLock::new();
    let (at, us) = ANCHOR.get_or_init(|| {
        let us = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        (std::time::Instant::now(), us)
    });
    us + at.elapsed().as_micros() as u64
}

fn record(shared: &Shared, id: HistId, value: u64) {
    let phase = shared.live.phase.load(Ordering::Relaxed);
    shared.metrics.with(|s| s.record(id, phase, value));
}

fn count(shared: &Shared, id: CounterId) {
    let phase = shared.live.phase.load(Ordering::Relaxed);
    shared.metrics.with(|s| s.add(id, phase, 1));
}

/// Play the hub part of the plan: agents and commanders until the plan is
/// over, then close every connection (bounded) and settle the books.
/// Returns the raw records a merge of segments needs.
pub async fn run(shared: Arc<Shared>, fleet: Arc<Fleet>) -> Records {
    let mut commanders = JoinSet::new();
    for index in 0..shared.scenario.commanders.len() {
        commanders.spawn(commander::run(shared.clone(), fleet.clone(), index));
    }
    let mut agents: JoinSet<()> = JoinSet::new();
    manager::manage(&shared, &fleet, &mut agents).await;

    // The end: every agent closes gracefully, within a bound.
    fleet.stopping.store(true, Ordering::Release);
    fleet.wake_all();
    let limit = shared
        .scenario
        .hub_settings
        .timeout
        .min(Duration::from_secs(5))
        + Duration::from_secs(1);
    let all_closed = tokio::time::timeout(limit, async {
        join_all(&mut agents).await;
        join_all(&mut commanders).await;
    })
    .await
    .is_ok();
    if !all_closed {
        agents.abort_all();
        commanders.abort_all();
        join_all(&mut agents).await;
        join_all(&mut commanders).await;
    }
    fleet.sweep_commands(&shared, Sweep::Every);
    let last_phase = shared.plan.phases.len().saturating_sub(1);
    for event in fleet.events.lock().iter() {
        event.settle();
        if event.unrecovered(&shared, &fleet.ids) {
            shared
                .metrics
                .with(|s| s.add(fleet.ids.unrecovered, last_phase, 1));
        }
    }
    fleet.records(&shared)
}

/// A task that panicked re-raises its panic here: a bug must not pass for
/// a quiet agent (and a run that lost its agents must not pass its SLOs).
fn reraise(result: Result<(), tokio::task::JoinError>) {
    if let Err(e) = result {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
    }
}

async fn join_all(set: &mut JoinSet<()>) {
    while let Some(result) = set.join_next().await {
        reraise(result);
    }
}
