//! The engine: plays a [`Plan`] (HTTP users, and agents and commanders on
//! a hub) against resolved endpoints and records every outcome into
//! [`Metrics`]. It reads its schedule from the plan only; the scenario
//! gives it what each player does (steps, agent specs, hub settings).
//!
//! # Layout
//! - [`driver`]: the one driver of HTTP users. Work reaches VUs as
//!   [`Arrival`]s; the open model's dispatcher makes them on the rate
//!   curve's schedule, the closed model's VUs make their own. Both feed the
//!   same VU loop.
//! - [`schedule`]: the one open-loop scheduler: events at their due times
//!   on a rate curve, with their lateness (arrivals, commands, agent
//!   connections).
//! - [`user`]: a VU walking a journey: render, send, read, check, extract,
//!   record; poll a step `until` its condition holds; time the journey.
//! - [`hub`]: agents and commanders on a WebSocket / Socket.IO hub.
//! - [`ids`]: the metric series of a run, registered before it starts.
//! - [`actions`]: the scenario's fault actions (commands, admin calls),
//!   each at its time.
//! - [`records`]: raw events a merge of segments needs (disruptions and
//!   their recovery, commands and their receipts).
//!
//! A segment of a split run (`--segment i/n`) is the same engine playing
//! the segment's plan: its schedules are striped ([`schedule`]), its VUs
//! carry the whole run's ids and its random choices follow each arrival's
//! global number ([`driver`]), so the segments together make the whole
//! run's events and choices.
//!
//! The live gauges are atomics inside the engine; the rest of the program
//! reads them as a [`LiveSnapshot`] ([`Engine::snapshot`]).
//!
//! Stopping: [`Live::finish`] (end of plan) or [`Live::interrupt`] (Ctrl-C,
//! `abort_on_fail`) stops new arrivals; in-flight journeys drain up to a grace period; what is
//! still in flight then is cancelled and counted (`cancelled`), never lost.

pub mod actions;
pub mod driver;
pub mod hub;
pub mod ids;
pub mod records;
pub mod schedule;
pub mod timer;
pub mod user;

use crate::metrics::Metrics;
use crate::plan::Plan;
use crate::protocol::http::{Client, Endpoint};
use crate::scenario::Scenario;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

pub use driver::Arrival;
pub use ids::Ids;

/// Live numbers (gauges, read through [`Live::snapshot`]) and the stop
/// signal. Every field is an atomic: no lock on the hot path. Only the
/// engine touches the gauges.
#[derive(Default)]
pub struct Live {
    /// Journeys being walked right now.
    in_flight: AtomicUsize,
    /// Arrivals waiting for a free VU (open model).
    queued: AtomicUsize,
    /// VU tasks alive (open pool + closed).
    vus: AtomicUsize,
    /// Open-model VUs waiting for work.
    idle: AtomicUsize,
    /// Arrivals made so far (offered load).
    arrivals: AtomicU64,
    /// Set by an interruption (Ctrl-C, SIGTERM, `abort_on_fail`): queued
    /// arrivals are dropped, in-flight journeys get the grace period.
    interrupted: AtomicBool,
    /// Set at the plan's end or an interruption: no new arrivals or iterations.
    over: AtomicBool,
    over_notify: Notify,
    /// A second interruption: stop draining now.
    hurry: Notify,
    /// Index of the phase the timeline is in.
    phase: AtomicUsize,
}

/// The engine's live gauges at one moment, as plain values: what the
/// aggregator samples once per interval and the progress line shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveSnapshot {
    /// Index (in the plan) of the phase the timeline is in.
    pub phase: usize,
    /// Journeys being walked.
    pub in_flight: usize,
    /// Arrivals waiting for a free VU (open model).
    pub queued: usize,
    /// VU tasks alive (open pool + closed).
    pub vus: usize,
    /// Arrivals made so far (offered load).
    pub arrivals: u64,
    /// Agents whose connection is up (0 without agents).
    pub connected: i64,
    /// Agents registered (0 without agents).
    pub registered: i64,
    /// Disruptions of the agent fleet so far (0 without agents).
    pub disruptions: u64,
}

impl Live {
    /// The user gauges now (no hub: see [`Engine::snapshot`]).
    pub fn snapshot(&self) -> LiveSnapshot {
        LiveSnapshot {
            phase: self.phase.load(Ordering::Relaxed),
            in_flight: self.in_flight.load(Ordering::Relaxed),
            queued: self.queued.load(Ordering::Relaxed),
            vus: self.vus.load(Ordering::Relaxed),
            arrivals: self.arrivals.load(Ordering::Relaxed),
            connected: 0,
            registered: 0,
            disruptions: 0,
        }
    }

    pub fn is_interrupted(&self) -> bool {
        self.interrupted.load(Ordering::Acquire)
    }

    pub fn is_over(&self) -> bool {
        self.over.load(Ordering::Acquire)
    }

    /// Stop the run before its end (idempotent): no new arrivals, queued
    /// ones dropped, in-flight ones drained for the grace period.
    pub fn interrupt(&self) {
        self.interrupted.store(true, Ordering::Release);
        self.finish();
    }

    /// The plan is over: no new arrivals or iterations; work in flight and
    /// queued finishes.
    pub fn finish(&self) {
        self.over.store(true, Ordering::Release);
        self.over_notify.notify_waiters();
    }

    /// Stop waiting for in-flight work (a second Ctrl-C): what is still in
    /// flight is cancelled and counted.
    pub fn hurry(&self) {
        self.hurry.notify_one();
    }

    /// Resolves when [`Live::hurry`] is called (once).
    pub async fn hurried(&self) {
        self.hurry.notified().await;
    }

    /// Resolves once the plan is over or interrupted.
    pub async fn ended(&self) {
        let notified = self.over_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.is_over() {
            return;
        }
        notified.await;
    }
}

/// Everything the VU tasks share, immutable but for [`Live`].
pub struct Shared {
    pub scenario: Arc<Scenario>,
    pub plan: Plan,
    pub client: Client,
    /// Index 0 is `[target] api` (when set); then `extra_origins` in order.
    pub endpoints: Vec<Endpoint>,
    pub metrics: Metrics,
    pub ids: Ids,
    pub live: Arc<Live>,
    /// The run's time zero (tokio clock, so tests can pause it).
    pub start: Instant,
    /// The agent fleet, when the scenario has agents or commanders.
    pub hub: Option<Arc<hub::Fleet>>,
    /// Where fault actions write their output and send.
    pub actions: actions::ActionSetup,
}

impl Shared {
    pub fn endpoint(&self, origin: crate::scenario::OriginRef) -> usize {
        match origin {
            crate::scenario::OriginRef::Api => 0,
            crate::scenario::OriginRef::Extra(i) => i + 1,
        }
    }
}

/// How the engine run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineReport {
    /// Measured length, from start to the last drained journey.
    pub elapsed: Duration,
    /// True when it stopped before the plan's end.
    pub stopped_early: bool,
    /// Journeys in flight when the drain limit ran out (counted as `cancelled`).
    pub cancelled: usize,
    /// Disruptions and commands, for the summary (and a merge).
    pub records: records::Records,
}

/// A configured run, ready to play. Cloning it is cheap (a handle on the
/// same run), so another thread can take [`Engine::snapshot`]s.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl Engine {
    pub fn new(shared: Shared) -> Engine {
        Engine {
            shared: Arc::new(shared),
        }
    }

    pub fn live(&self) -> Arc<Live> {
        self.shared.live.clone()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The live gauges now, users' and agents'.
    pub fn snapshot(&self) -> LiveSnapshot {
        let mut snapshot = self.shared.live.snapshot();
        if let Some(fleet) = &self.shared.hub {
            snapshot.connected = fleet.connected.load(Ordering::Relaxed);
            snapshot.registered = fleet.registered.load(Ordering::Relaxed);
            snapshot.disruptions = fleet.disruptions();
        }
        snapshot
    }

    /// Play the plan to its end (or until stopped), then drain in-flight
    /// journeys for at most `grace` after a stop (after a normal end, for
    /// the longest step timeout).
    pub async fn run(&self, grace: Duration) -> EngineReport {
        let fleet = self.shared.hub.clone().map(|fleet| {
            let shared = self.shared.clone();
            tokio::spawn(hub::run(shared, fleet))
        });
        let actions = tokio::spawn(actions::run(self.shared.clone()));
        let mut report = driver::run(self.shared.clone(), grace).await;
        if let Some(task) = fleet {
            match task.await {
                Ok(records) => report.records = records,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        match actions.await {
            Ok(outcome) => {
                report.records.actions = outcome.records;
                report.records.aborted_by = outcome.aborted_by;
            }
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => {}
        }
        report
    }
}
