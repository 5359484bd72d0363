//! The fleet's shared state: every agent's control slot, the connection
//! gauges, the drop events and the command table. The manager writes
//! requests into the slots; agents read their own (see `# Control` in
//! [`super`]).
//!
//! Slots and gauges are this process's: in a segmented run the fleet holds
//! a slot for each agent id the segment owns (global id `k` of segment
//! `i/n` lives in slot `k / n`), and the gauges count its own agents (a
//! merge adds the segments' gauges).

use super::clock::Sampler;
use super::commands::{CommandTable, Sent, Sweep};
use super::recovery::DropEvent;
use super::HubIds;
use crate::engine::driver::Weights;
use crate::engine::records::Records;
use crate::engine::Shared;
use crate::plan::{Plan, Segment};
use crate::protocol::http::Endpoint;
use crate::protocol::net::SourceAddrs;
use crate::scenario::Scenario;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, Ordering};
use std::sync::Arc;
use tokio::sync::watch;

/// Slot states and requests (one byte per agent).
pub mod slot {
    pub const IDLE: u8 = 0;
    pub const CONNECTING: u8 = 1;
    /// Registered (or connected, without a register message).
    pub const UP: u8 = 2;
    pub const WAITING: u8 = 3;
    pub const GONE: u8 = 4;
    pub const STATE: u8 = 0x0f;
    pub const DROP_CLOSE: u8 = 0x10;
    pub const DROP_RESET: u8 = 0x20;
    pub const LEAVE: u8 = 0x40;
    pub const DROP: u8 = DROP_CLOSE | DROP_RESET;
}

/// The fleet's shared state.
pub struct Fleet {
    pub endpoint: Endpoint,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub sources: Option<SourceAddrs>,
    /// The kick endpoint and its path (`how = "server"`).
    pub admin: Option<(Endpoint, String)>,
    pub ids: HubIds,
    /// The share of the fleet this process plays (by global agent id).
    pub(super) segment: Segment,
    /// One byte per agent this process owns: its [`slot`] state and the
    /// manager's requests (see [`Fleet::slot`]).
    slots: Vec<AtomicU8>,
    weights: Weights,
    /// Bumped to wake every agent (they then read their own slot).
    ctl: watch::Sender<u64>,
    /// Set at the run's end: every agent and commander closes.
    pub(super) stopping: AtomicBool,
    /// Agents whose connection is up (gauge `hub.connected`).
    pub(in crate::engine) connected: AtomicI64,
    /// Agents registered (gauge `hub.registered`).
    pub(in crate::engine) registered: AtomicI64,
    /// The drop event selected agents belong to (client drops).
    pub(super) client_drop: Mutex<Option<Arc<DropEvent>>>,
    /// The server kick being attributed.
    pub(super) server_drop: Mutex<Option<Arc<DropEvent>>>,
    /// The wave of unplanned losses gathering now, if any (see
    /// [`Fleet::lost_unplanned`]).
    pub(super) detecting: Mutex<Option<Arc<DropEvent>>>,
    /// The last fault action started and when (opens a disruption window).
    pub(super) last_action: Mutex<Option<(String, tokio::time::Instant)>>,
    /// Every drop of the run, settled at its end.
    pub(super) events: Mutex<Vec<Arc<DropEvent>>>,
    commands: CommandTable,
    /// The agents' clock samples against the hub, folded in as their
    /// sessions end (see [`super::clock`]).
    pub(super) clock: Mutex<Sampler>,
}

impl Fleet {
    /// A fleet of `plan`'s peak number of agents (this segment's share of
    /// them), of `scenario`'s agent populations (by weight).
    pub fn new(
        scenario: &Scenario,
        plan: &Plan,
        endpoint: Endpoint,
        tls: Option<tokio_rustls::TlsConnector>,
        sources: Option<SourceAddrs>,
        admin: Option<(Endpoint, String)>,
        ids: HubIds,
    ) -> Fleet {
        let segment = plan.segment;
        let max = segment.share(plan.peak_agents()) as usize;
        Fleet {
            endpoint,
            tls,
            sources,
            admin,
            ids,
            segment,
            slots: (0..max).map(|_| AtomicU8::new(slot::IDLE)).collect(),
            weights: Weights::new(scenario.agents.iter().map(|a| a.weight)),
            ctl: watch::channel(0).0,
            stopping: AtomicBool::new(false),
            connected: AtomicI64::new(0),
            registered: AtomicI64::new(0),
            client_drop: Mutex::new(None),
            server_drop: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            last_action: Mutex::new(None),
            detecting: Mutex::new(None),
            commands: CommandTable::new(!segment.is_whole()),
            clock: Mutex::new(Sampler::default()),
        }
    }

    /// The control slot of agent `id` (a global id this process owns).
    pub(super) fn slot(&self, id: u32) -> &AtomicU8 {
        debug_assert!(self.segment.owns(u64::from(id)), "agent {id} is not ours");
        &self.slots[(id / self.segment.count.max(1)) as usize]
    }

    /// The global ids of this process's agents that are up (registered, or
    /// connected without a register message) right now, ascending.
    pub fn up_ids(&self) -> Vec<u32> {
        self.own_slots()
            .filter(|(_, s)| s.load(Ordering::Acquire) & slot::STATE == slot::UP)
            .map(|(id, _)| id)
            .collect()
    }

    /// The global ids of this process's agents in `state` (one of the
    /// [`slot`] states) right now, ascending.
    pub fn ids_in(&self, state: u8) -> Vec<u32> {
        self.own_slots()
            .filter(|(_, s)| s.load(Ordering::Acquire) & slot::STATE == state)
            .map(|(id, _)| id)
            .collect()
    }

    /// The global ids of this process's slots, with their slots.
    pub(super) fn own_slots(&self) -> impl Iterator<Item = (u32, &AtomicU8)> {
        let (index, count) = (self.segment.index, self.segment.count.max(1));
        self.slots
            .iter()
            .enumerate()
            .map(move |(local, s)| (local as u32 * count + index, s))
    }

    pub fn population_of(&self, id: u32) -> usize {
        self.weights.at(u64::from(id))
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.ctl.subscribe()
    }

    pub(super) fn wake_all(&self) {
        self.ctl.send_modify(|v| *v += 1);
    }

    pub fn set_state(&self, id: u32, state: u8) {
        let s = self.slot(id);
        let _ = s.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some((v & !slot::STATE) | state)
        });
    }

    /// Take this agent's pending drop requests (clears them; `LEAVE` stays).
    pub fn take_requests(&self, id: u32) -> u8 {
        self.slot(id)
            .fetch_and(slot::STATE | slot::LEAVE, Ordering::AcqRel)
            & !slot::STATE
    }

    /// Peek at this agent's requests without clearing them.
    pub fn requests(&self, id: u32) -> u8 {
        self.slot(id).load(Ordering::Acquire) & !slot::STATE
    }

    /// Disruptions so far: scenario drops and the waves of losses that
    /// reached the `[hub] disruption` threshold.
    pub fn disruptions(&self) -> u64 {
        self.events.lock().iter().filter(|e| e.qualifies()).count() as u64
    }

    /// A fault action started now: agents lost soon after are its doing.
    pub fn action_started(&self, name: &str) {
        *self.last_action.lock() = Some((name.to_string(), tokio::time::Instant::now()));
    }

    /// A registered agent lost its connection and no scenario drop claims
    /// it: it joins the wave of losses gathering now, or starts one (the
    /// `[hub] disruption` rule decides, once the wave's window is over,
    /// whether it was a disruption). A wave that starts within
    /// [`ACTION_WINDOW`](super::recovery::ACTION_WINDOW) of a fault
    /// action is that action's. The agent counts itself back to the wave.
    pub fn lost_unplanned(&self, shared: &Shared) -> Arc<DropEvent> {
        let mut detecting = self.detecting.lock();
        if let Some(event) = detecting.as_ref() {
            if event.is_open() && event.attribute() {
                return event.clone();
            }
        }
        let rule = shared.scenario.hub_settings.disruption;
        // This agent is still counted as registered.
        let registered = self.registered.load(Ordering::Relaxed).max(1) as f64;
        let count = u64::from(self.segment.count.max(1));
        let min = u64::from(rule.min).div_ceil(count);
        let min_lost = min.max((rule.lost.0 * registered).ceil() as u64);
        let action = self
            .last_action
            .lock()
            .as_ref()
            .filter(|(_, at)| at.elapsed() <= super::recovery::ACTION_WINDOW)
            .map(|(name, _)| name.clone());
        let event = Arc::new(DropEvent::detected(
            min_lost,
            rule.within.0,
            action,
            shared.scenario.hub_settings.recovered,
            shared.live.phase.load(Ordering::Relaxed),
        ));
        event.attribute();
        self.events.lock().push(event.clone());
        *detecting = Some(event.clone());
        event
    }

    /// The client drop event this agent was selected by.
    pub fn client_drop(&self) -> Option<Arc<DropEvent>> {
        self.client_drop.lock().clone()
    }

    /// A connection closed by the server: the server kick it belongs to, if any.
    pub fn attribute_server_close(&self) -> Option<Arc<DropEvent>> {
        let event = self.server_drop.lock().clone()?;
        event.attribute().then_some(event)
    }

    /// An agent received command `id`.
    pub fn command_received(&self, shared: &Shared, id: &str) {
        self.commands.received(shared, &self.ids, id);
    }

    /// A commander sent a command.
    pub fn command_sent(&self, sent: Sent<'_>) {
        self.commands.sent(sent);
    }

    /// Does this process keep a command log (a segmented run)?
    pub fn logs_commands(&self) -> bool {
        self.commands.logs()
    }

    /// A command due was not sent: logged only (see [`CommandTable`]).
    pub fn command_unsent(&self, sent: Sent<'_>) {
        self.commands.unsent(&sent);
    }

    /// The hub said how many agents it delivered command `id` to.
    pub fn command_expected(&self, shared: &Shared, id: &str, delivered: u64) {
        self.commands.expected(shared, &self.ids, id, delivered);
    }

    /// Finish the commands `which` selects (see [`Sweep`]).
    pub fn sweep_commands(&self, shared: &Shared, which: Sweep) {
        self.commands.sweep(shared, &self.ids, which);
    }

    /// The run's raw records (at its end): one [`Disruption`] per drop, in
    /// order, the command log (segmented runs) and the clock offset
    /// against the hub (when its acks carried its time).
    ///
    /// [`Disruption`]: crate::engine::records::Disruption
    pub(super) fn records(&self, shared: &Shared) -> Records {
        // Scenario drops are numbered in order (the same in every
        // segment); detected waves after every drop the plan has.
        let planned = shared
            .plan
            .phases
            .iter()
            .filter(|p| p.agents.as_ref().is_some_and(|a| a.drop.is_some()))
            .count() as u32;
        let (mut drops, mut detected) = (0u32, 0u32);
        let disruptions = self
            .events
            .lock()
            .iter()
            .filter(|event| event.qualifies())
            .map(|event| {
                let phase = shared
                    .plan
                    .phases
                    .get(event.phase())
                    .map_or("", |p| p.name.as_str());
                let ordinal = if event.is_detected() {
                    detected += 1;
                    planned + detected - 1
                } else {
                    drops += 1;
                    drops - 1
                };
                event.disruption(ordinal, phase)
            })
            .collect();
        Records {
            disruptions,
            actions: Vec::new(),
            aborted_by: None,
            commands: self.commands.take_log(),
            clock: self.clock.lock().estimate(&self.endpoint.prefix),
        }
    }
}

/// The most agents any phase of `scenario` asks for (for callers that have
/// no [`Plan`] yet; the engine reads [`Plan::peak_agents`]).
pub fn max_agents(scenario: &Scenario) -> u32 {
    Plan::new(scenario).peak_agents()
}
