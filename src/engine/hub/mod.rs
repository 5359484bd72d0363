//! The hub half of the engine: a fleet of long-lived agents on a WebSocket /
//! Socket.IO hub, commanders pushing commands through it, connection storms
//! and reconnect waves.
//!
//! # Layout
//! - [`session`]: one hub connection (either protocol): open, read, send,
//!   close gracefully or reset.
//! - [`agent`]: an agent's life: connect → register → heartbeat / status /
//!   answer commands → (dropped) → reconnect with backoff.
//! - [`commander`]: sends commands at the phases' rate, through the hub or
//!   the API, and measures fan-out and round trips.
//! - this module: the fleet's shared state, the manager that plays the
//!   phases (population curve, connect rate, drops) and the metric series.
//!
//! # Control
//! Every agent has a one-byte slot ([`Fleet::slots`]): its state (idle,
//! connecting, registered, waiting to reconnect, gone) and requests from
//! the manager (drop by close, drop by reset, leave). The manager sets
//! request bits and bumps a `watch` channel; every agent wakes, reads its
//! own slot and acts. So a drop selects *exactly* `round(fraction ×
//! registered)` agents among those registered at that moment, with a
//! seeded choice.
//!
//! # Recovery
//! A drop is a [`DropEvent`]: when it happened and how many agents it took
//! down. Each of those agents, once registered again, counts itself back;
//! when `recovered` (default 99 %) of them are back, `hub.recovery` records
//! the time since the drop. For `how = "server"` the hub decides who goes:
//! agents whose connection the server closes within a few seconds of the
//! kick request are attributed to it, up to the number the hub reports
//! (`{"kicked": n}`). An event that never recovers counts in
//! `hub.unrecovered`, and an SLO on `hub.recovery` then fails.

pub mod agent;
pub mod commander;
pub mod session;

use super::driver::Weights;
use super::Shared;
use crate::metrics::{CounterId, GaugeId, HistId, Layout};
use crate::protocol::http::Endpoint;
use crate::protocol::net::SourceAddrs;
use crate::scenario::hub::{ConnectRate, DropHow};
use crate::scenario::Scenario;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Why a connection attempt (or a registration) failed: `hub.errors{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubErrorKind {
    ConnectRefused,
    Connect,
    Timeout,
    Tls,
    /// The upgrade was refused or the connection closed during it.
    Handshake,
    /// Malformed Engine.IO / Socket.IO / JSON.
    Protocol,
    /// CONNECT_ERROR (or, for an API commander, a non-2xx answer).
    Rejected,
    /// The register ack did not match.
    Register,
    Reset,
}

impl HubErrorKind {
    pub const ALL: [HubErrorKind; 9] = [
        HubErrorKind::ConnectRefused,
        HubErrorKind::Connect,
        HubErrorKind::Timeout,
        HubErrorKind::Tls,
        HubErrorKind::Handshake,
        HubErrorKind::Protocol,
        HubErrorKind::Rejected,
        HubErrorKind::Register,
        HubErrorKind::Reset,
    ];
    pub fn name(self) -> &'static str {
        match self {
            HubErrorKind::ConnectRefused => "connect_refused",
            HubErrorKind::Connect => "connect",
            HubErrorKind::Timeout => "timeout",
            HubErrorKind::Tls => "tls",
            HubErrorKind::Handshake => "handshake",
            HubErrorKind::Protocol => "protocol",
            HubErrorKind::Rejected => "rejected",
            HubErrorKind::Register => "register",
            HubErrorKind::Reset => "reset",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a connection that was up ended: `hub.disconnects{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectKind {
    /// The server closed it (close frame, DISCONNECT, end of stream).
    ServerClose,
    Reset,
    /// The Socket.IO server stopped pinging.
    PingTimeout,
    Protocol,
    /// The scenario dropped it (`drop = { how = "close" | "reset" }`).
    Client,
}

impl DisconnectKind {
    pub const ALL: [DisconnectKind; 5] = [
        DisconnectKind::ServerClose,
        DisconnectKind::Reset,
        DisconnectKind::PingTimeout,
        DisconnectKind::Protocol,
        DisconnectKind::Client,
    ];
    pub fn name(self) -> &'static str {
        match self {
            DisconnectKind::ServerClose => "server_close",
            DisconnectKind::Reset => "reset",
            DisconnectKind::PingTimeout => "ping_timeout",
            DisconnectKind::Protocol => "protocol",
            DisconnectKind::Client => "client",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Series of one agent population.
#[derive(Debug, Clone)]
pub struct AgentIds {
    pub connects: CounterId,
    pub connect: HistId,
    pub errors: Vec<CounterId>,
    pub register: HistId,
    pub registrations: CounterId,
    /// `hub.message.rtt` of heartbeat (0) and status (1).
    pub rtt: [HistId; 2],
    pub disconnects: Vec<CounterId>,
    pub reconnect: HistId,
    pub reconnects: CounterId,
    pub attempts: HistId,
    pub delivery: HistId,
    pub received: CounterId,
}

/// Series of one commander.
#[derive(Debug, Clone)]
pub struct CommanderIds {
    pub connects: CounterId,
    pub connect: HistId,
    pub errors: Vec<CounterId>,
    pub disconnects: Vec<CounterId>,
    pub commands: CounterId,
    pub fanout: HistId,
    pub rtt: HistId,
    /// Commands fewer agents received than expected (by the timeout).
    pub undelivered: CounterId,
}

/// Every hub series of a run.
#[derive(Debug, Clone)]
pub struct HubIds {
    pub agents: Vec<AgentIds>,
    pub commanders: Vec<CommanderIds>,
    pub recovery: HistId,
    pub unrecovered: CounterId,
    pub connected: GaugeId,
    pub registered: GaugeId,
}

impl HubIds {
    /// Register the hub series (None when the scenario has no agents nor commanders).
    pub fn register(layout: &mut Layout, scenario: &Scenario) -> Option<HubIds> {
        if scenario.agents.is_empty() && scenario.commanders.is_empty() {
            return None;
        }
        let errors = |layout: &mut Layout, pop: &str| {
            HubErrorKind::ALL
                .iter()
                .map(|k| layout.add_counter("hub.errors", pop, "", Some(k.name())))
                .collect::<Vec<_>>()
        };
        let disconnects = |layout: &mut Layout, pop: &str| {
            DisconnectKind::ALL
                .iter()
                .map(|k| layout.add_counter("hub.disconnects", pop, "", Some(k.name())))
                .collect::<Vec<_>>()
        };
        let agents = scenario
            .agents
            .iter()
            .map(|a| {
                let pop = a.name.as_str();
                let hb = a
                    .heartbeat
                    .as_ref()
                    .map_or("heartbeat", |h| &h.message.event);
                let st = a.status.as_ref().map_or("status", |s| &s.message.event);
                AgentIds {
                    connects: layout.add_counter("hub.connects", pop, "", None),
                    connect: layout.add_hist("hub.connect", pop, ""),
                    errors: errors(layout, pop),
                    register: layout.add_hist("hub.register", pop, ""),
                    registrations: layout.add_counter("hub.registrations", pop, "", None),
                    rtt: [
                        layout.add_hist("hub.message.rtt", pop, hb),
                        layout.add_hist("hub.message.rtt", pop, st),
                    ],
                    disconnects: disconnects(layout, pop),
                    reconnect: layout.add_hist("hub.reconnect", pop, ""),
                    reconnects: layout.add_counter("hub.reconnects", pop, "", None),
                    attempts: layout.add_hist("hub.reconnect.attempts", pop, ""),
                    delivery: layout.add_hist("hub.command.delivery", pop, ""),
                    received: layout.add_counter("hub.command.received", pop, "", None),
                }
            })
            .collect();
        let commanders = scenario
            .commanders
            .iter()
            .map(|c| {
                let pop = c.name.as_str();
                CommanderIds {
                    connects: layout.add_counter("hub.connects", pop, "", None),
                    connect: layout.add_hist("hub.connect", pop, ""),
                    errors: errors(layout, pop),
                    disconnects: disconnects(layout, pop),
                    commands: layout.add_counter("hub.commands", pop, "", None),
                    fanout: layout.add_hist("hub.command.fanout", pop, ""),
                    rtt: layout.add_hist("hub.command.rtt", pop, ""),
                    undelivered: layout.add_counter("hub.command.undelivered", pop, "", None),
                }
            })
            .collect();
        Some(HubIds {
            agents,
            commanders,
            recovery: layout.add_hist("hub.recovery", "", ""),
            unrecovered: layout.add_counter(crate::slo::UNRECOVERED, "", "", None),
            connected: layout.add_gauge("hub.connected"),
            registered: layout.add_gauge("hub.registered"),
        })
    }
}

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

/// A kick whose answer did not say how many connections it closed.
const KICKED_UNKNOWN: u64 = u64::MAX - 1;

/// One reconnect wave.
#[derive(Debug)]
pub struct DropEvent {
    pub at: Instant,
    pub how: DropHow,
    /// Agents it took down (`u64::MAX` while a server kick's answer is awaited).
    expected: AtomicU64,
    /// Server kicks: agents attributed so far.
    attributed: AtomicU64,
    /// Server kicks: attribution stops here.
    window_end: Instant,
    back: AtomicU64,
    recovered: f64,
    done: AtomicBool,
    phase: usize,
}

impl DropEvent {
    fn new(how: DropHow, expected: u64, recovered: f64, phase: usize) -> DropEvent {
        let at = Instant::now();
        DropEvent {
            at,
            how,
            expected: AtomicU64::new(expected),
            attributed: AtomicU64::new(0),
            window_end: at + Duration::from_secs(5),
            back: AtomicU64::new(0),
            recovered,
            done: AtomicBool::new(false),
            phase,
        }
    }

    fn threshold(&self) -> Option<u64> {
        let mut expected = self.expected.load(Ordering::Acquire);
        if expected == KICKED_UNKNOWN && Instant::now() > self.window_end {
            // The hub did not say how many it kicked: those it closed in
            // the attribution window.
            expected = self.attributed.load(Ordering::Acquire);
            self.expected.store(expected, Ordering::Release);
        }
        (expected < KICKED_UNKNOWN).then(|| (self.recovered * expected as f64).ceil() as u64)
    }

    /// Record `hub.recovery` once enough agents are back.
    fn check(&self, shared: &Shared, ids: &HubIds) {
        let Some(threshold) = self.threshold() else {
            return;
        };
        if self.back.load(Ordering::Acquire) >= threshold && !self.done.swap(true, Ordering::AcqRel)
        {
            let us = self.at.elapsed().as_micros() as u64;
            shared
                .metrics
                .with(|s| s.record(ids.recovery, self.phase, us));
        }
    }

    /// One of its agents is registered again.
    pub fn came_back(&self, shared: &Shared, ids: &HubIds) {
        self.back.fetch_add(1, Ordering::AcqRel);
        self.check(shared, ids);
    }

    /// A server kick: does a connection the server just closed belong to it?
    fn attribute(&self) -> bool {
        if Instant::now() > self.window_end {
            return false;
        }
        let n = self.attributed.fetch_add(1, Ordering::AcqRel);
        if n < self.expected.load(Ordering::Acquire) {
            true
        } else {
            self.attributed.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }
}

/// A command on its way (for `hub.command.fanout`).
#[derive(Debug)]
struct CommandState {
    sent: Instant,
    commander: usize,
    phase: usize,
    expected: Option<u64>,
    received: u64,
    last: Option<Instant>,
}

/// The fleet's shared state.
pub struct Fleet {
    pub endpoint: Endpoint,
    pub tls: Option<tokio_rustls::TlsConnector>,
    pub sources: Option<SourceAddrs>,
    /// The kick endpoint and its path (`how = "server"`).
    pub admin: Option<(Endpoint, String)>,
    pub ids: HubIds,
    slots: Vec<AtomicU8>,
    weights: Weights,
    ctl: watch::Sender<u64>,
    stopping: AtomicBool,
    pub connected: AtomicI64,
    pub registered: AtomicI64,
    /// The drop event selected agents belong to (client drops).
    client_drop: Mutex<Option<Arc<DropEvent>>>,
    /// The server kick being attributed.
    server_drop: Mutex<Option<Arc<DropEvent>>>,
    events: Mutex<Vec<Arc<DropEvent>>>,
    commands: Mutex<HashMap<String, CommandState>>,
}

impl Fleet {
    pub fn new(
        scenario: &Scenario,
        endpoint: Endpoint,
        tls: Option<tokio_rustls::TlsConnector>,
        sources: Option<SourceAddrs>,
        admin: Option<(Endpoint, String)>,
        ids: HubIds,
    ) -> Fleet {
        let max = max_agents(scenario) as usize;
        Fleet {
            endpoint,
            tls,
            sources,
            admin,
            ids,
            slots: (0..max).map(|_| AtomicU8::new(slot::IDLE)).collect(),
            weights: Weights::new(scenario.agents.iter().map(|a| a.weight)),
            ctl: watch::channel(0).0,
            stopping: AtomicBool::new(false),
            connected: AtomicI64::new(0),
            registered: AtomicI64::new(0),
            client_drop: Mutex::new(None),
            server_drop: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            commands: Mutex::new(HashMap::new()),
        }
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

    fn wake_all(&self) {
        self.ctl.send_modify(|v| *v += 1);
    }

    pub fn set_state(&self, id: u32, state: u8) {
        let s = &self.slots[id as usize];
        let _ = s.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
            Some((v & !slot::STATE) | state)
        });
    }

    /// Take this agent's pending drop requests (clears them; `LEAVE` stays).
    pub fn take_requests(&self, id: u32) -> u8 {
        self.slots[id as usize].fetch_and(slot::STATE | slot::LEAVE, Ordering::AcqRel)
            & !slot::STATE
    }

    /// Peek at this agent's requests without clearing them.
    pub fn requests(&self, id: u32) -> u8 {
        self.slots[id as usize].load(Ordering::Acquire) & !slot::STATE
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
        let mut table = self.commands.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.received += 1;
        state.last = Some(Instant::now());
        if state.expected.is_some_and(|e| state.received >= e) {
            let state = table.remove(id).expect("present");
            drop(table);
            self.finish_command(shared, &state);
        }
    }

    fn finish_command(&self, shared: &Shared, state: &CommandState) {
        let ids = &self.ids.commanders[state.commander];
        if let Some(last) = state.last {
            let us = last.saturating_duration_since(state.sent).as_micros() as u64;
            shared
                .metrics
                .with(|s| s.record(ids.fanout, state.phase, us));
        }
        if state.expected.is_some_and(|e| state.received < e) {
            shared
                .metrics
                .with(|s| s.add(ids.undelivered, state.phase, 1));
        }
    }

    /// A commander sent command `id`, expecting `expected` receipts when known.
    pub fn command_sent(&self, id: String, commander: usize, phase: usize, expected: Option<u64>) {
        self.commands.lock().insert(
            id,
            CommandState {
                sent: Instant::now(),
                commander,
                phase,
                expected,
                received: 0,
                last: None,
            },
        );
    }

    /// The hub said how many agents it delivered command `id` to.
    pub fn command_expected(&self, shared: &Shared, id: &str, delivered: u64) {
        let mut table = self.commands.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.expected = Some(delivered);
        if state.received >= delivered {
            let state = table.remove(id).expect("present");
            drop(table);
            self.finish_command(shared, &state);
        }
    }

    /// Finish commander `c`'s commands older than `timeout` (`Some((timeout, c))`),
    /// or every command (`None`).
    pub fn sweep_commands(&self, shared: &Shared, which: Option<(Duration, usize)>) {
        let now = Instant::now();
        let done: Vec<CommandState> = {
            let mut table = self.commands.lock();
            let old: Vec<String> = table
                .iter()
                .filter(|(_, s)| {
                    which.is_none_or(|(t, c)| s.commander == c && now.duration_since(s.sent) >= t)
                })
                .map(|(k, _)| k.clone())
                .collect();
            old.iter().filter_map(|k| table.remove(k)).collect()
        };
        for state in &done {
            self.finish_command(shared, state);
        }
    }
}

/// The most agents any phase asks for.
pub fn max_agents(scenario: &Scenario) -> u32 {
    scenario
        .phases
        .iter()
        .filter_map(|p| p.agents.as_ref().map(|a| a.connected))
        .max()
        .unwrap_or(0)
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
pub async fn run(shared: Arc<Shared>, fleet: Arc<Fleet>) {
    let mut commanders = JoinSet::new();
    for index in 0..shared.scenario.commanders.len() {
        commanders.spawn(commander::run(shared.clone(), fleet.clone(), index));
    }
    let mut agents: JoinSet<()> = JoinSet::new();
    manage(&shared, &fleet, &mut agents).await;

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
    fleet.sweep_commands(&shared, None);
    let last_phase = shared.plan.phases.len().saturating_sub(1);
    for event in fleet.events.lock().iter() {
        event.check(&shared, &fleet.ids);
        let expected = event.expected.load(Ordering::Acquire);
        if !event.done.load(Ordering::Acquire) && expected > 0 && expected < KICKED_UNKNOWN {
            shared
                .metrics
                .with(|s| s.add(fleet.ids.unrecovered, last_phase, 1));
        }
    }
}

/// The manager: walks the phases, starting agents at the connect rate,
/// sending surplus agents away, and dropping agents on schedule.
async fn manage(shared: &Arc<Shared>, fleet: &Arc<Fleet>, agents: &mut JoinSet<()>) {
    let live = shared.live.clone();
    let start = shared.start;
    let mut started: u32 = 0;
    let mut rng = SmallRng::seed_from_u64(super::driver::mix_seed(shared.scenario.seed, 0xD809));
    let mut next_spawn = start;
    for (index, phase) in shared.scenario.phases.iter().enumerate() {
        let planned = &shared.plan.phases[index];
        let phase_start = start + planned.start;
        let phase_end = start + planned.end();
        let Some(load) = &phase.agents else {
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
        next_spawn = next_spawn.max(phase_start);
        let mut drop = load.drop.map(|d| (phase_start + d.at, d));
        loop {
            let spawn_due = (started < load.connected).then_some(next_spawn);
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
            if started < load.connected && Instant::now() >= next_spawn {
                // Start every agent that is due (a storm starts them all).
                let now = Instant::now();
                while started < load.connected && next_spawn <= now {
                    let id = started;
                    started += 1;
                    // A slot may be reused after a scale-down: clear it.
                    fleet.slots[id as usize].store(slot::IDLE, Ordering::Release);
                    agents.spawn(agent::run(shared.clone(), fleet.clone(), id));
                    if let ConnectRate::PerSecond(rate) = load.connect_rate {
                        next_spawn += Duration::from_secs_f64(1.0 / rate);
                    }
                }
                if load.connect_rate == ConnectRate::Max {
                    next_spawn = now;
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
    }
    let _ = wait_until(&live, start + shared.plan.total).await;
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

/// Sleep until `at`; false when the run ended first.
async fn wait_until(live: &super::Live, at: Instant) -> bool {
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
        let kicked = kick(shared, fleet, fraction).await;
        match kicked {
            Ok(n) => {
                event.expected.store(n, Ordering::Release);
                event.check(shared, &fleet.ids);
            }
            Err(e) => {
                tracing::warn!("drop how = \"server\": the kick failed: {e}");
                eprintln!("stampede: drop how = \"server\": the hub's kick endpoint failed: {e}");
                event.expected.store(0, Ordering::Release);
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

/// POST `{"fraction": f}` to the kick endpoint; the number kicked.
async fn kick(shared: &Shared, fleet: &Fleet, fraction: f64) -> Result<u64, String> {
    let (endpoint, path) = fleet
        .admin
        .as_ref()
        .ok_or_else(|| "no admin endpoint".to_string())?;
    let mut conn = crate::protocol::http::Conn::default();
    let mut request = crate::protocol::http::OutRequest {
        method: http::Method::POST,
        path: path.clone(),
        ..Default::default()
    };
    request.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request.body = format!("{{\"fraction\":{fraction}}}");
    let response = tokio::time::timeout(
        shared.scenario.hub_settings.timeout,
        conn.send(&shared.client, endpoint, &request, true),
    )
    .await
    .map_err(|_| "timed out".to_string())?
    .map_err(|e| e.to_string())?;
    if !(200..300).contains(&response.status) {
        return Err(format!("HTTP {}", response.status));
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    // The built-in hub answers {"kicked": n}; another hub may not say.
    Ok(body
        .get("kicked")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(KICKED_UNKNOWN))
}
