//! One agent: connect → register → heartbeat, status and answer commands →
//! (dropped or lost) → reconnect with backoff, until the run ends, the
//! manager sends it away, or its reconnect attempts are used up.
//!
//! A session is one event loop over three sources: the connection's frames,
//! one timer (the earliest of heartbeat, status, a delayed reply, an ack
//! deadline and the Socket.IO ping deadline) and the manager's control
//! channel. One timer and a few small vectors keep an idle agent cheap.
//!
//! An ack of a periodic message that carries the hub's time (`ts`) is a
//! clock sample (see [`super::clock`]): the agent keeps its best one and
//! folds it into the fleet's when the session ends, so acks take no lock.

use super::clock::{self, Sampler};
use super::session::{In, Session, Wire};
use super::{count, record, slot, DisconnectKind, DropEvent, Fleet, HubErrorKind};
use crate::engine::driver::mix_seed;
use crate::engine::Shared;
use crate::scenario::hub::{Ack, AgentPopulation, Message, Periodic};
use crate::scenario::template::{JsonTemplate, RenderCtx};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Pending acks per session, at most (older ones are given up as timeouts).
const MAX_PENDING: usize = 64;
/// Replies waiting for their delay, at most (more commands are not answered).
const MAX_REPLIES: usize = 1024;
/// How long a graceful close may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// What an ack answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    Register,
    /// Heartbeat (0) or status (1).
    Message(usize),
}

/// How an ack is recognised.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Id(u64),
    /// WebSocket: the reply's type (index: 0 register, 1 heartbeat, 2 status).
    Type(usize),
}

struct Pending {
    key: Key,
    what: What,
    sent: Instant,
    /// When it was sent, µs since the Unix epoch (taken just before the
    /// send: a clock sample's t1).
    sent_us: u64,
}

/// How a session ended.
enum End {
    /// The run is over, or the agent was sent away: do not reconnect.
    Stop,
    /// Failed before the agent was up (registration): an error, then backoff.
    Failed(HubErrorKind),
    /// Lost after being up (or connected): a disconnect, then backoff.
    Lost(DisconnectKind, Option<Arc<DropEvent>>),
}

/// Since when an agent is down, and why.
struct Down {
    at: Instant,
    event: Option<Arc<DropEvent>>,
    attempts: u64,
}

struct Agent<'a> {
    shared: &'a Shared,
    fleet: &'a Fleet,
    pop: &'a AgentPopulation,
    pop_index: usize,
    id: u32,
    rng: SmallRng,
    rows: Vec<usize>,
    iteration: u64,
    scratch: String,
    /// The current session got up (registered).
    session_up: bool,
    /// Clock samples of the current session's acks.
    clock: Sampler,
}

impl Agent<'_> {
    fn ids(&self) -> &super::AgentIds {
        &self.fleet.ids.agents[self.pop_index]
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            protocol: self.pop.protocol,
            path: &self.pop.path,
            namespace: &self.pop.namespace,
            type_key: &self.pop.type_key,
        }
    }

    /// Render a JSON template into `scratch`.
    fn render(&mut self, template: &JsonTemplate) {
        self.scratch.clear();
        self.iteration += 1;
        let mut ctx = RenderCtx {
            vu_id: u64::from(self.id),
            iteration: self.iteration,
            rng: &mut self.rng,
            vars: &[],
            feeders: &self.shared.scenario.feeders,
            rows: &self.rows,
        };
        template.render(&mut ctx, &mut self.scratch);
    }

    fn jittered(&mut self, p: &Periodic) -> Duration {
        if p.jitter <= 0.0 {
            return p.every;
        }
        let f = 1.0 + self.rng.gen_range(-p.jitter..=p.jitter);
        p.every.mul_f64(f.max(0.01))
    }
}

/// Resolves when this agent must stop (end of run, or sent away), or when a
/// drop request arrives (`drops`).
async fn control(ctl: &mut watch::Receiver<u64>, fleet: &Fleet, id: u32, drops: bool) {
    loop {
        if fleet.is_stopping() {
            return;
        }
        let requests = fleet.requests(id);
        if requests & slot::LEAVE != 0 || (drops && requests & slot::DROP != 0) {
            return;
        }
        if ctl.changed().await.is_err() {
            // The fleet is gone: nothing will ever wake us.
            std::future::pending::<()>().await;
        }
    }
}

/// An agent's whole life.
pub async fn run(shared: Arc<Shared>, fleet: Arc<Fleet>, id: u32) {
    let pop_index = fleet.population_of(id);
    let pop = &shared.scenario.agents[pop_index];
    let mut ctl = fleet.subscribe();
    let mut agent = Agent {
        shared: &shared,
        fleet: &fleet,
        pop,
        pop_index,
        id,
        rng: SmallRng::seed_from_u64(mix_seed(shared.scenario.seed ^ 0xA6E7, u64::from(id))),
        rows: Vec::new(),
        iteration: 0,
        scratch: String::new(),
        session_up: false,
        clock: Sampler::default(),
    };
    agent.rows = (0..shared.scenario.feeders.len())
        .map(|f| shared.scenario.feeders[f].pick(u64::from(id), &mut agent.rng))
        .collect();
    let mut attempt: u32 = 0;
    let mut previous = Duration::ZERO;
    let mut down: Option<Down> = None;
    loop {
        if fleet.is_stopping() || fleet.requests(id) & slot::LEAVE != 0 {
            break;
        }
        fleet.set_state(id, slot::CONNECTING);
        count(&shared, agent.ids().connects);
        if let Some(d) = &mut down {
            d.attempts += 1;
        }
        let auth = pop.auth.as_ref().map(|t| {
            agent.render(t);
            agent.scratch.clone()
        });
        let source = fleet.sources.as_ref().and_then(|s| s.next());
        let t0 = Instant::now();
        let wire = agent.wire();
        let opened = tokio::select! {
            r = Session::open(
                &fleet.endpoint,
                &wire,
                auth.as_deref(),
                source,
                fleet.tls.as_ref(),
                shared.scenario.hub_settings.timeout,
            ) => r,
            _ = control(&mut ctl, &fleet, id, false) => break,
        };
        let end = match opened {
            Err(kind) => End::Failed(kind),
            Ok(session) => {
                record(
                    &shared,
                    agent.ids().connect,
                    t0.elapsed().as_micros() as u64,
                );
                fleet.connected.fetch_add(1, Ordering::Relaxed);
                let end = session_loop(&mut agent, session, &mut ctl, &mut down).await;
                fleet.connected.fetch_sub(1, Ordering::Relaxed);
                if agent.clock.samples() > 0 {
                    fleet.clock.lock().fold(&mut agent.clock);
                }
                end
            }
        };
        match end {
            End::Stop => break,
            End::Failed(kind) => {
                count(&shared, agent.ids().errors[kind.index()]);
            }
            End::Lost(kind, event) => {
                count(&shared, agent.ids().disconnects[kind.index()]);
                // A session that was up: the agent is down from here (a
                // session lost before registering again keeps the earlier
                // moment, and its event).
                if agent.session_up && down.is_none() {
                    down = Some(Down {
                        at: Instant::now(),
                        event,
                        attempts: 0,
                    });
                }
            }
        }
        if std::mem::take(&mut agent.session_up) {
            attempt = 0;
            previous = Duration::ZERO;
        }
        // Backoff.
        fleet.set_state(id, slot::WAITING);
        let Some(delay) = pop.reconnect.delay(attempt, previous, &mut agent.rng) else {
            break; // attempts used up
        };
        let delay = crate::scenario::backoff::ceil_millis(delay);
        attempt += 1;
        previous = delay;
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = control(&mut ctl, &fleet, id, false) => break,
        }
    }
    fleet.set_state(id, slot::GONE);
}

/// Send one of the agent's messages; the ack to wait for, if any.
async fn send_message(
    agent: &mut Agent<'_>,
    session: &mut Session,
    message: &Message,
    what: What,
) -> Result<Option<Pending>, ()> {
    if let Some(data) = &message.data {
        agent.render(data);
    } else {
        agent.scratch.clear();
    }
    let wire = agent.wire();
    let data = (!agent.scratch.is_empty()).then_some(agent.scratch.as_str());
    let sent_us = super::unix_us_now();
    let ack_id = session
        .send_event(&wire, &message.event, data, message.ack == Ack::SocketIo)
        .await
        .map_err(|_| ())?;
    let key = match (&message.ack, ack_id) {
        (Ack::SocketIo, Some(id)) => Key::Id(id),
        (Ack::Reply(_), _) => Key::Type(match what {
            What::Register => 0,
            What::Message(i) => i + 1,
        }),
        _ => return Ok(None),
    };
    Ok(Some(Pending {
        key,
        what,
        sent: Instant::now(),
        sent_us,
    }))
}

/// Does `ack` contain every key and value of `pattern`?
pub fn contains(ack: &Value, pattern: &Value) -> bool {
    match (ack, pattern) {
        (Value::Object(a), Value::Object(p)) => p
            .iter()
            .all(|(k, pv)| a.get(k).is_some_and(|av| contains(av, pv))),
        (a, p) => a == p,
    }
}

/// The reply type a WebSocket ack key stands for.
fn reply_type(pop: &AgentPopulation, index: usize) -> Option<&str> {
    let message = match index {
        0 => pop.register.as_ref(),
        1 => pop.heartbeat.as_ref().map(|p| &p.message),
        _ => pop.status.as_ref().map(|p| &p.message),
    }?;
    match &message.ack {
        Ack::Reply(t) => Some(t),
        _ => None,
    }
}

/// One session, from open to end.
async fn session_loop(
    agent: &mut Agent<'_>,
    mut session: Session,
    ctl: &mut watch::Receiver<u64>,
    down: &mut Option<Down>,
) -> End {
    let shared = agent.shared;
    let fleet = agent.fleet;
    let pop = agent.pop;
    let id = agent.id;
    let timeout = shared.scenario.hub_settings.timeout;
    let mut registered = false;
    let mut pending: Vec<Pending> = Vec::new();
    let mut replies: Vec<(Instant, String)> = Vec::new();
    let mut heartbeat_due: Option<Instant> = None;
    let mut status_due: Option<Instant> = None;

    macro_rules! lost {
        ($kind:expr) => {{
            return lose(agent, registered, $kind);
        }};
    }

    // Register (or be up at once).
    match &pop.register {
        Some(message) => match send_message(agent, &mut session, message, What::Register).await {
            Err(()) => lost!(DisconnectKind::Reset),
            Ok(Some(p)) => pending.push(p),
            Ok(None) => {
                up(agent, &mut registered, down, Duration::ZERO);
            }
        },
        None => up(agent, &mut registered, down, Duration::ZERO),
    }
    if registered {
        schedule(agent, &mut heartbeat_due, &mut status_due);
    }

    let sleep = tokio::time::sleep_until(Instant::now() + Duration::from_secs(3600));
    tokio::pin!(sleep);
    loop {
        let deadline = [
            heartbeat_due,
            status_due,
            replies.iter().map(|r| r.0).min(),
            pending.iter().map(|p| p.sent + timeout).min(),
            session.ping_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            biased;
            _ = control(ctl, fleet, id, true) => {
                if fleet.is_stopping() {
                    session.close(&pop.namespace, CLOSE_LIMIT).await;
                    return release(agent, registered, End::Stop);
                }
                let requests = fleet.take_requests(id);
                if requests & slot::LEAVE != 0 {
                    // Sent away: leave for good (the slot keeps LEAVE).
                    session.close(&pop.namespace, CLOSE_LIMIT).await;
                    return release(agent, registered, End::Stop);
                }
                let event = fleet.client_drop();
                if requests & slot::DROP_RESET != 0 {
                    session.reset();
                } else {
                    session.close(&pop.namespace, CLOSE_LIMIT).await;
                }
                return release(agent, registered, End::Lost(DisconnectKind::Client, event));
            }
            frame = session.next_frame() => {
                match session.handle_read(frame, &pop.type_key) {
                    In::Nothing => {}
                    In::Ping => {
                        if session.pong().await.is_err() {
                            lost!(DisconnectKind::Reset);
                        }
                    }
                    In::Closed(kind) => lost!(kind),
                    In::Ack { id: ack, arg } => {
                        if let Some(i) = pending.iter().position(|p| p.key == Key::Id(ack)) {
                            let p = pending.swap_remove(i);
                            if let Some(end) = acked(agent, p, &arg, &mut registered, down, &mut heartbeat_due, &mut status_due) {
                                session.close(&pop.namespace, CLOSE_LIMIT).await;
                                return release(agent, registered, end);
                            }
                        }
                    }
                    In::Event { name, arg, ack_id } => {
                        // WebSocket acks are replies of a given type.
                        let reply = pending
                            .iter()
                            .enumerate()
                            .filter(|(_, p)| matches!(p.key, Key::Type(t) if reply_type(pop, t) == Some(name.as_str())))
                            .min_by_key(|(_, p)| p.sent)
                            .map(|(i, _)| i);
                        if let Some(i) = reply {
                            let p = pending.remove(i);
                            if let Some(end) = acked(agent, p, &arg, &mut registered, down, &mut heartbeat_due, &mut status_due) {
                                session.close(&pop.namespace, CLOSE_LIMIT).await;
                                return release(agent, registered, end);
                            }
                        } else if pop.on_command.as_ref().is_some_and(|c| c.event == name) {
                            command(agent, &arg, &mut replies);
                        }
                        if let Some(ack) = ack_id {
                            if session.send_ack(&pop.namespace, ack, "").await.is_err() {
                                lost!(DisconnectKind::Reset);
                            }
                        }
                    }
                }
            }
            _ = &mut sleep => {
                let now = Instant::now();
                if session.ping_deadline().is_some_and(|d| d <= now) {
                    session.reset();
                    return lose(agent, registered, DisconnectKind::PingTimeout);
                }
                // Ack deadlines.
                let mut i = 0;
                while i < pending.len() {
                    if pending[i].sent + timeout <= now {
                        let p = pending.swap_remove(i);
                        if p.what == What::Register {
                            session.close(&pop.namespace, CLOSE_LIMIT).await;
                            return release(agent, registered, End::Failed(HubErrorKind::Timeout));
                        }
                        count(shared, agent.ids().errors[HubErrorKind::Timeout.index()]);
                    } else {
                        i += 1;
                    }
                }
                // Delayed replies.
                let mut i = 0;
                while i < replies.len() {
                    if replies[i].0 <= now {
                        let (_, payload) = replies.swap_remove(i);
                        let event = pop.on_command.as_ref().and_then(|c| c.reply.as_deref()).unwrap_or("result");
                        let wire = agent.wire();
                        if session.send_event(&wire, event, Some(&payload), false).await.is_err() {
                            lost!(DisconnectKind::Reset);
                        }
                    } else {
                        i += 1;
                    }
                }
                // Periodic messages.
                for (index, due) in [(0usize, &mut heartbeat_due), (1, &mut status_due)] {
                    if !due.is_some_and(|d| d <= now) {
                        continue;
                    }
                    let periodic = if index == 0 { pop.heartbeat.as_ref() } else { pop.status.as_ref() };
                    let Some(periodic) = periodic else { continue };
                    *due = Some(now + agent.jittered(periodic));
                    match send_message(agent, &mut session, &periodic.message, What::Message(index)).await {
                        Err(()) => lost!(DisconnectKind::Reset),
                        Ok(Some(p)) => {
                            if pending.len() >= MAX_PENDING {
                                pending.remove(0);
                                count(shared, agent.ids().errors[HubErrorKind::Timeout.index()]);
                            }
                            pending.push(p);
                        }
                        Ok(None) => {}
                    }
                }
            }
        }
    }
}

/// The agent is up: registered (or connected, without a register message).
fn up(agent: &mut Agent<'_>, registered: &mut bool, down: &mut Option<Down>, took: Duration) {
    let shared = agent.shared;
    let fleet = agent.fleet;
    *registered = true;
    agent.session_up = true;
    record(shared, agent.ids().register, took.as_micros() as u64);
    count(shared, agent.ids().registrations);
    fleet.registered.fetch_add(1, Ordering::Relaxed);
    fleet.set_state(agent.id, slot::UP);
    if let Some(d) = down.take() {
        record(
            shared,
            agent.ids().reconnect,
            d.at.elapsed().as_micros() as u64,
        );
        count(shared, agent.ids().reconnects);
        record(shared, agent.ids().attempts, d.attempts.max(1));
        if let Some(event) = d.event {
            event.came_back(shared, &fleet.ids);
        }
    }
}

fn schedule(agent: &mut Agent<'_>, heartbeat: &mut Option<Instant>, status: &mut Option<Instant>) {
    let now = Instant::now();
    let pop = agent.pop;
    *heartbeat = pop.heartbeat.as_ref().map(|p| now + agent.jittered(p));
    *status = pop.status.as_ref().map(|p| now + agent.jittered(p));
}

/// An ack arrived for `p`. Some(end) when the session must end.
fn acked(
    agent: &mut Agent<'_>,
    p: Pending,
    arg: &Value,
    registered: &mut bool,
    down: &mut Option<Down>,
    heartbeat: &mut Option<Instant>,
    status: &mut Option<Instant>,
) -> Option<End> {
    let took = p.sent.elapsed();
    match p.what {
        What::Register => {
            let matches = agent
                .pop
                .register
                .as_ref()
                .and_then(|r| r.matches.as_ref())
                .is_none_or(|pattern| contains(arg, pattern));
            if !matches {
                return Some(End::Failed(HubErrorKind::Register));
            }
            up(agent, registered, down, took);
            schedule(agent, heartbeat, status);
            None
        }
        What::Message(i) => {
            record(agent.shared, agent.ids().rtt[i], took.as_micros() as u64);
            if let Some(ts) = clock::ack_ts(arg) {
                agent.clock.add(p.sent_us, super::unix_us_now(), ts);
            }
            None
        }
    }
}

/// A command arrived: count it, measure its delivery, schedule the reply.
fn command(agent: &mut Agent<'_>, arg: &Value, replies: &mut Vec<(Instant, String)>) {
    let shared = agent.shared;
    count(shared, agent.ids().received);
    let command_id = match arg.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let sent_us = arg.get("sent_us").and_then(Value::as_u64);
    if let Some(sent) = sent_us {
        record(
            shared,
            agent.ids().delivery,
            super::unix_us_now().saturating_sub(sent),
        );
    }
    if let Some(id) = &command_id {
        agent.fleet.command_received(shared, id);
    }
    let Some(on) = &agent.pop.on_command else {
        return;
    };
    if on.reply.is_none() || replies.len() >= MAX_REPLIES {
        return;
    }
    let delay = if on.delay.max > on.delay.min {
        agent.rng.gen_range(on.delay.min..=on.delay.max)
    } else {
        on.delay.min
    };
    let mut payload = String::with_capacity(96);
    payload.push_str("{\"command_id\":");
    payload.push_str(&serde_json::to_string(&command_id).unwrap_or_else(|_| "null".into()));
    payload.push_str(",\"sent_us\":");
    payload.push_str(&sent_us.map_or("null".to_string(), |s| s.to_string()));
    payload.push_str(",\"agent\":\"");
    payload.push_str(&agent.id.to_string());
    payload.push('"');
    if let Some(data) = &on.data {
        agent.render(data);
        if let Some(rest) = agent.scratch.trim().strip_prefix('{') {
            if rest.trim_start() != "}" {
                payload.push(',');
                payload.push_str(rest);
            } else {
                payload.push('}');
            }
        } else {
            payload.push('}');
        }
    } else {
        payload.push('}');
    }
    replies.push((Instant::now() + delay, payload));
}

/// The connection broke: settle the books, attribute the loss.
fn lose(agent: &mut Agent<'_>, registered: bool, kind: DisconnectKind) -> End {
    let fleet = agent.fleet;
    // Selected by a client drop but lost first: still that drop's.
    let requests = fleet.take_requests(agent.id);
    let event = if requests & slot::DROP != 0 {
        fleet.client_drop()
    } else if registered {
        // A server kick's, or else part of a wave nobody planned.
        let kicked = matches!(kind, DisconnectKind::ServerClose | DisconnectKind::Reset)
            .then(|| fleet.attribute_server_close())
            .flatten();
        kicked.or_else(|| Some(fleet.lost_unplanned(agent.shared)))
    } else {
        None
    };
    release(agent, registered, End::Lost(kind, event))
}

/// The session is over: the registered gauge goes down.
fn release(agent: &mut Agent<'_>, registered: bool, end: End) -> End {
    if registered {
        agent.fleet.registered.fetch_sub(1, Ordering::Relaxed);
    }
    end
}
