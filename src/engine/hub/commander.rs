//! A commander: sends commands at the phases' `commanders` rate, through
//! its own hub connection (an event, acked with the number delivered) or
//! through the API (HTTP POST, answered with the number delivered), and
//! measures what happens to them:
//!
//! - `hub.command.fanout`: send → the last agent that received it (known
//!   when as many agents as expected have it — from the hub's answer or
//!   the `to` sample — or at the commander's `timeout`);
//! - `hub.command.rtt`: send → the first result back at the commander
//!   (hub commanders; a hub routes results to the command's sender).
//!
//! The payload: `{"id": "<commander>-<n>", "to": …, "sent_us": <µs since
//! the Unix epoch>, "data": …}`.

use super::session::{In, Session, Wire};
use super::{count, record, CommanderIds, DisconnectKind, Fleet, HubErrorKind};
use crate::engine::driver::mix_seed;
use crate::engine::Shared;
use crate::error::ErrorKind;
use crate::plan::arrival_offset;
use crate::protocol::http::{Conn, OutRequest};
use crate::scenario::backoff::Backoff;
use crate::scenario::hub::{CommandVia, Commander, HubProtocol};
use crate::scenario::template::RenderCtx;
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often outstanding commands are checked against their timeout.
const SWEEP: Duration = Duration::from_millis(100);

/// The commands' due times, phase after phase.
struct Schedule {
    phase: usize,
    k: u64,
}

impl Schedule {
    fn next(&mut self, shared: &Shared) -> Option<(Instant, usize)> {
        while self.phase < shared.plan.phases.len() {
            let planned = &shared.plan.phases[self.phase];
            if let Some(rate) = shared.scenario.phases[self.phase].commanders {
                if let Some(offset) = arrival_offset(rate, planned.duration, self.k) {
                    self.k += 1;
                    return Some((shared.start + planned.start + offset, self.phase));
                }
            }
            self.phase += 1;
            self.k = 0;
        }
        None
    }
}

struct Books<'a> {
    shared: &'a Arc<Shared>,
    fleet: &'a Fleet,
    commander: &'a Commander,
    index: usize,
    ids: &'a CommanderIds,
    rng: SmallRng,
    sent: u64,
    scratch: String,
    /// Commands awaiting their first result: id → sent.
    awaiting: HashMap<String, Instant>,
}

impl Books<'_> {
    /// Build command number `sent`'s payload; returns its id.
    fn payload(&mut self) -> String {
        self.sent += 1;
        let id = format!("{}-{}", self.commander.name, self.sent);
        self.scratch.clear();
        self.scratch.push_str("{\"id\":");
        crate::protocol::socketio::push_json_string(&mut self.scratch, &id);
        self.scratch.push_str(",\"to\":");
        self.scratch.push_str(&self.commander.to);
        self.scratch.push_str(",\"sent_us\":");
        self.scratch.push_str(&super::unix_us_now().to_string());
        self.scratch.push_str(",\"data\":");
        match &self.commander.data {
            Some(data) => {
                let mut ctx = RenderCtx {
                    vu_id: self.index as u64,
                    iteration: self.sent,
                    rng: &mut self.rng,
                    vars: &[],
                    feeders: &self.shared.scenario.feeders,
                    rows: &[],
                };
                data.render(&mut ctx, &mut self.scratch);
            }
            None => self.scratch.push_str("{}"),
        }
        self.scratch.push('}');
        id
    }

    fn sent_now(&mut self, id: String, phase: usize) {
        self.shared
            .metrics
            .with(|s| s.add(self.ids.commands, phase, 1));
        self.fleet
            .command_sent(id.clone(), self.index, phase, self.commander.expected);
        if matches!(self.commander.via, CommandVia::Hub { .. }) {
            self.awaiting.insert(id, Instant::now());
        }
    }

    /// A result or an answer saying how many agents got a command.
    fn incoming(&mut self, name: &str, arg: &Value) {
        if name == self.commander.result {
            let id = match arg.get("command_id") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => return,
            };
            if let Some(sent) = self.awaiting.remove(&id) {
                record(self.shared, self.ids.rtt, sent.elapsed().as_micros() as u64);
            }
            return;
        }
        // A WebSocket hub's answer: {"type": "...", "id": …, "delivered": n}.
        if let (Some(id), Some(n)) = (
            arg.get("id").and_then(Value::as_str),
            arg.get("delivered").and_then(Value::as_u64),
        ) {
            self.fleet.command_expected(self.shared, id, n);
        }
    }

    fn sweep(&mut self) {
        let timeout = self.commander.timeout;
        self.fleet
            .sweep_commands(self.shared, Some((timeout, self.index)));
        self.awaiting.retain(|_, sent| sent.elapsed() < timeout);
    }
}

/// Run commander `index` until its schedule ends and the fleet stops.
pub async fn run(shared: Arc<Shared>, fleet: Arc<Fleet>, index: usize) {
    let commander = &shared.scenario.commanders[index];
    let books = Books {
        shared: &shared,
        fleet: &fleet,
        commander,
        index,
        ids: &fleet.ids.commanders[index],
        rng: SmallRng::seed_from_u64(mix_seed(shared.scenario.seed ^ 0xC044, index as u64)),
        sent: 0,
        scratch: String::new(),
        awaiting: HashMap::new(),
    };
    match &commander.via {
        CommandVia::Hub {
            protocol,
            path,
            namespace,
            type_key,
            event,
        } => {
            let wire = Wire {
                protocol: *protocol,
                path,
                namespace,
                type_key,
            };
            through_hub(books, &wire, event).await;
        }
        CommandVia::Api { path } => through_api(books, path).await,
    }
}

async fn stopped(fleet: &Fleet, ctl: &mut tokio::sync::watch::Receiver<u64>) {
    while !fleet.is_stopping() {
        if ctl.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

async fn through_hub(mut books: Books<'_>, wire: &Wire<'_>, event: &str) {
    let shared = books.shared;
    let fleet = books.fleet;
    let ids = books.ids;
    let mut ctl = fleet.subscribe();
    let mut schedule = Schedule { phase: 0, k: 0 };
    let mut next = schedule.next(shared);
    let backoff = Backoff {
        base: Duration::from_millis(100),
        max: Duration::from_secs(5),
        ..Backoff::default()
    };
    let mut attempt = 0u32;
    let mut previous = Duration::ZERO;
    // Ack id → command id (Socket.IO).
    let mut acks: HashMap<u64, String> = HashMap::new();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    'connect: loop {
        if fleet.is_stopping() {
            break;
        }
        count(shared, ids.connects);
        let t0 = Instant::now();
        let opened = tokio::select! {
            r = Session::open(&fleet.endpoint, wire, None, None, fleet.tls.as_ref(), shared.scenario.hub_settings.timeout) => r,
            _ = stopped(fleet, &mut ctl) => break,
        };
        let mut session = match opened {
            Ok(s) => {
                record(shared, ids.connect, t0.elapsed().as_micros() as u64);
                attempt = 0;
                previous = Duration::ZERO;
                s
            }
            Err(kind) => {
                count(shared, ids.errors[kind.index()]);
                let delay = backoff
                    .delay(attempt, previous, &mut books.rng)
                    .unwrap_or(backoff.max);
                attempt += 1;
                previous = delay;
                // Commands due meanwhile are not sent: undelivered.
                let until = Instant::now() + delay;
                while let Some((due, phase)) = next.filter(|(due, _)| *due <= until) {
                    let _ = due;
                    shared.metrics.with(|s| s.add(ids.undelivered, phase, 1));
                    next = schedule.next(shared);
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => continue 'connect,
                    _ = stopped(fleet, &mut ctl) => break 'connect,
                }
            }
        };
        let far = Instant::now() + Duration::from_secs(3600 * 24);
        loop {
            let due = next.map_or(far, |(at, _)| at);
            tokio::select! {
                biased;
                _ = stopped(fleet, &mut ctl) => {
                    session.close(wire.namespace, Duration::from_secs(1)).await;
                    break 'connect;
                }
                frame = session.next_frame() => match session.handle_read(frame, wire.type_key) {
                    In::Nothing => {}
                    In::Ping => {
                        if session.pong().await.is_err() {
                            count(shared, ids.disconnects[DisconnectKind::Reset.index()]);
                            continue 'connect;
                        }
                    }
                    In::Closed(kind) => {
                        count(shared, ids.disconnects[kind.index()]);
                        continue 'connect;
                    }
                    In::Ack { id, arg } => {
                        if let Some(command) = acks.remove(&id) {
                            if let Some(n) = arg.get("delivered").and_then(Value::as_u64) {
                                fleet.command_expected(shared, &command, n);
                            }
                        }
                    }
                    In::Event { name, arg, ack_id } => {
                        books.incoming(&name, &arg);
                        if let Some(ack) = ack_id {
                            let _ = session.send_ack(wire.namespace, ack, "").await;
                        }
                    }
                },
                _ = tokio::time::sleep_until(due) => {
                    let (_, phase) = next.expect("a due command");
                    next = schedule.next(shared);
                    let id = books.payload();
                    books.sent_now(id.clone(), phase);
                    let ask = wire.protocol == HubProtocol::SocketIo;
                    match session.send_event(wire, event, Some(&books.scratch), ask).await {
                        Ok(Some(ack)) => {
                            acks.insert(ack, id);
                            if acks.len() > 10_000 {
                                acks.clear();
                            }
                        }
                        Ok(None) => {}
                        Err(_) => {
                            count(shared, ids.disconnects[DisconnectKind::Reset.index()]);
                            continue 'connect;
                        }
                    }
                }
                _ = sweep.tick() => books.sweep(),
            }
        }
    }
}

async fn through_api(mut books: Books<'_>, path: &crate::scenario::template::Template) {
    let shared = books.shared;
    let fleet = books.fleet;
    let mut ctl = fleet.subscribe();
    let mut schedule = Schedule { phase: 0, k: 0 };
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, mut done_rx) =
        tokio::sync::mpsc::unbounded_channel::<(String, Result<Option<u64>, HubErrorKind>, usize)>(
        );
    let mut tasks = tokio::task::JoinSet::new();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut next = schedule.next(shared);
    let far = Instant::now() + Duration::from_secs(3600 * 24);
    loop {
        let due = next.map_or(far, |(at, _)| at);
        tokio::select! {
            biased;
            _ = stopped(fleet, &mut ctl) => break,
            Some((id, outcome, phase)) = done_rx.recv() => match outcome {
                Ok(Some(n)) => fleet.command_expected(shared, &id, n),
                Ok(None) => {}
                Err(kind) => shared.metrics.with(|s| s.add(books.ids.errors[kind.index()], phase, 1)),
            },
            _ = tokio::time::sleep_until(due) => {
                let (_, phase) = next.expect("a due command");
                next = schedule.next(shared);
                let id = books.payload();
                books.sent_now(id.clone(), phase);
                let mut request = OutRequest {
                    method: http::Method::POST,
                    ..Default::default()
                };
                let mut ctx = RenderCtx {
                    vu_id: books.index as u64,
                    iteration: books.sent,
                    rng: &mut books.rng,
                    vars: &[],
                    feeders: &shared.scenario.feeders,
                    rows: &[],
                };
                path.render(&mut ctx, &mut request.path);
                request.headers.insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                request.body = books.scratch.clone();
                let pool = pool.clone();
                let tx = done_tx.clone();
                let timeout = books.commander.timeout;
                let shared_arc = shared.clone();
                tasks.spawn(async move {
                    let mut conn = pool.lock().pop().unwrap_or_default();
                    let endpoint = &shared_arc.endpoints[0];
                    let outcome = match tokio::time::timeout(timeout, conn.send(&shared_arc.client, endpoint, &request, true)).await {
                        Err(_) => Err(HubErrorKind::Timeout),
                        Ok(Err(e)) => Err(match e.kind() {
                            ErrorKind::ConnectRefused => HubErrorKind::ConnectRefused,
                            ErrorKind::Connect => HubErrorKind::Connect,
                            ErrorKind::Timeout => HubErrorKind::Timeout,
                            ErrorKind::Tls => HubErrorKind::Tls,
                            ErrorKind::Reset => HubErrorKind::Reset,
                            _ => HubErrorKind::Protocol,
                        }),
                        Ok(Ok(r)) if (200..300).contains(&r.status) => {
                            pool.lock().push(conn);
                            let body: Value = serde_json::from_slice(&r.body).unwrap_or_default();
                            // Without a count in the answer, fan-out settles at the timeout.
                            Ok(body.get("delivered").and_then(Value::as_u64))
                        }
                        Ok(Ok(_)) => {
                            pool.lock().push(conn);
                            Err(HubErrorKind::Rejected)
                        }
                    };
                    let _ = tx.send((id, outcome, phase));
                });
            }
            _ = sweep.tick() => {
                books.sweep();
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    tasks.abort_all();
}
