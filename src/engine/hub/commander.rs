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
//! the Unix epoch>, "data": …}`. `n` is the command's number in the
//! commander's whole schedule (`Due::seq + 1`), not a count of what this
//! process sent: in a segmented run each segment sends its stripe of the
//! schedule, and the ids stay unique fleet-wide and the same as an
//! unsegmented run gives (a command due while the connection is down is
//! not sent, and its number is skipped). The data's random choices are
//! seeded by that number too, so a command carries the same data
//! whichever segment sends it.
//!
//! One loop ([`run`]) plays both kinds: the commands' due times come from
//! the engine's [`Schedule`]; a `Transport` is the difference (how a
//! command leaves, what comes back, whether there is a connection to keep).

use super::commands::Sent;
use super::session::{In, Session, Wire};
use super::{count, record, CommanderIds, DisconnectKind, Fleet, HubErrorKind};
use crate::engine::driver::mix_seed;
use crate::engine::schedule::{Due, Schedule};
use crate::engine::Shared;
use crate::error::ErrorKind;
use crate::protocol::http::{Conn, OutRequest};
use crate::scenario::backoff::Backoff;
use crate::scenario::hub::{CommandVia, Commander, HubProtocol};
use crate::scenario::template::{RenderCtx, Template};
use parking_lot::Mutex;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

/// How often outstanding commands are checked against their timeout.
const SWEEP: Duration = Duration::from_millis(100);

struct Books<'a> {
    shared: &'a Arc<Shared>,
    fleet: &'a Fleet,
    commander: &'a Commander,
    index: usize,
    ids: &'a CommanderIds,
    /// Backoff jitter.
    rng: SmallRng,
    /// Seeds each command's data rng (with the command's number).
    data_seed: u64,
    /// The number of the last command sent.
    sent: u64,
    scratch: String,
    /// Commands awaiting their first result: id → sent.
    awaiting: HashMap<String, Instant>,
}

impl Books<'_> {
    /// Build the payload of command number `n` (1-based, its number in the
    /// unsegmented run: see the module docs) into `scratch`; returns its
    /// id and its `sent_us`.
    fn payload(&mut self, n: u64) -> (String, u64) {
        self.sent = n;
        let id = command_id(&self.commander.name, n);
        let sent_us = super::unix_us_now();
        self.scratch.clear();
        self.scratch.push_str("{\"id\":");
        crate::protocol::socketio::push_json_string(&mut self.scratch, &id);
        self.scratch.push_str(",\"to\":");
        self.scratch.push_str(&self.commander.to);
        self.scratch.push_str(",\"sent_us\":");
        self.scratch.push_str(&sent_us.to_string());
        self.scratch.push_str(",\"data\":");
        match &self.commander.data {
            Some(data) => {
                // Keyed by the command's number: the same data whichever
                // segment sends it.
                let mut rng = SmallRng::seed_from_u64(mix_seed(self.data_seed, n));
                let mut ctx = RenderCtx {
                    vu_id: self.index as u64,
                    iteration: n,
                    rng: &mut rng,
                    vars: &[],
                    feeders: &self.shared.scenario.feeders,
                    rows: &[],
                };
                data.render(&mut ctx, &mut self.scratch);
            }
            None => self.scratch.push_str("{}"),
        }
        self.scratch.push('}');
        (id, sent_us)
    }

    fn sent_now(&mut self, id: String, sent_us: u64, phase: usize) {
        self.shared
            .metrics
            .with(|s| s.add(self.ids.commands, phase, 1));
        let phase_name = self.shared.plan.phases[phase].name.as_str();
        self.fleet.command_sent(Sent {
            id: id.clone(),
            commander: self.index,
            phase,
            sent_unix_us: sent_us,
            expected: self.commander.expected,
            names: (&self.commander.name, phase_name),
        });
        if matches!(self.commander.via, CommandVia::Hub { .. }) {
            self.awaiting.insert(id, Instant::now());
        }
    }

    /// Command `due` was not sent (the connection was down). A segmented
    /// run logs it as a command expecting at least one receipt and getting
    /// none, so the merge, which recomputes `hub.command.undelivered` from
    /// the logs, counts it as this run does.
    fn unsent(&self, due: Due) {
        if let Some(sent) = self.fleet.logs_commands().then(|| Sent {
            id: command_id(&self.commander.name, due.seq + 1),
            commander: self.index,
            phase: due.phase,
            sent_unix_us: super::unix_us_now(),
            expected: Some(self.commander.expected.unwrap_or(1).max(1)),
            names: (
                &self.commander.name,
                &self.shared.plan.phases[due.phase].name,
            ),
        }) {
            self.fleet.command_unsent(sent);
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
        self.fleet.sweep_commands(
            self.shared,
            super::Sweep::OlderThan {
                commander: self.index,
                timeout,
            },
        );
        self.awaiting.retain(|_, sent| sent.elapsed() < timeout);
    }
}

/// Run commander `index` until the fleet stops: commands on the schedule,
/// answers as they come, outstanding commands swept at their timeout.
pub async fn run(shared: Arc<Shared>, fleet: Arc<Fleet>, index: usize) {
    let commander = &shared.scenario.commanders[index];
    let mut books = Books {
        shared: &shared,
        fleet: &fleet,
        commander,
        index,
        ids: &fleet.ids.commanders[index],
        rng: SmallRng::seed_from_u64(mix_seed(shared.scenario.seed ^ 0xC044, index as u64)),
        data_seed: mix_seed(shared.scenario.seed ^ 0xDA7A, index as u64),
        sent: 0,
        scratch: String::new(),
        awaiting: HashMap::new(),
    };
    let mut transport = Transport::new(&commander.via);
    let mut ctl = fleet.subscribe();
    let mut schedule = Schedule::of_plan(&shared.plan, shared.start, |p| p.commanders);
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        if !transport.connect(&mut books, &mut schedule, &mut ctl).await {
            break;
        }
        tokio::select! {
            biased;
            _ = stopped(&fleet, &mut ctl) => {
                transport.close().await;
                break;
            }
            answer = transport.answer() => transport.handle(answer, &mut books).await,
            Some(made) = schedule.next(&shared.live) => {
                transport.send(&mut books, made.due).await;
            }
            _ = sweep.tick() => {
                books.sweep();
                transport.reap();
            }
        }
    }
}

async fn stopped(fleet: &Fleet, ctl: &mut watch::Receiver<u64>) {
    while !fleet.is_stopping() {
        if ctl.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// An API command's outcome: its id, the number delivered (when the answer
/// says) or why it failed, and its phase.
type Done = (String, Result<Option<u64>, HubErrorKind>, usize);

/// How a commander's commands leave.
// One per commander, for its whole life: the hub variant's size costs nothing.
#[allow(clippy::large_enum_variant)]
enum Transport<'a> {
    /// Its own hub connection, reopened with backoff when it breaks;
    /// answers are Socket.IO acks or events.
    Hub {
        wire: Wire<'a>,
        event: &'a str,
        session: Option<Session>,
        /// Ack id → command id (Socket.IO).
        acks: HashMap<u64, String>,
        backoff: Backoff,
        attempt: u32,
        previous: Duration,
    },
    /// An HTTP POST per command, each in its own task (so a slow API does
    /// not hold the schedule); outcomes come back on a channel.
    Api {
        path: &'a Template,
        pool: Arc<Mutex<Vec<Conn>>>,
        done_tx: mpsc::UnboundedSender<Done>,
        done_rx: mpsc::UnboundedReceiver<Done>,
        /// Dropped (so aborted) when the commander ends.
        tasks: JoinSet<()>,
    },
}

/// What came back to a commander.
enum Answer {
    /// A hub frame (None: the stream ended).
    Frame(Option<Result<Message, tungstenite::Error>>),
    /// An API command's outcome.
    Done(Option<Done>),
}

impl<'a> Transport<'a> {
    fn new(via: &'a CommandVia) -> Transport<'a> {
        match via {
            CommandVia::Hub {
                protocol,
                path,
                namespace,
                type_key,
                event,
            } => Transport::Hub {
                wire: Wire {
                    protocol: *protocol,
                    path,
                    namespace,
                    type_key,
                },
                event,
                session: None,
                acks: HashMap::new(),
                backoff: Backoff {
                    base: Duration::from_millis(100),
                    max: Duration::from_secs(5),
                    ..Backoff::default()
                },
                attempt: 0,
                previous: Duration::ZERO,
            },
            CommandVia::Api { path } => {
                let (done_tx, done_rx) = mpsc::unbounded_channel();
                Transport::Api {
                    path,
                    pool: Arc::new(Mutex::new(Vec::new())),
                    done_tx,
                    done_rx,
                    tasks: JoinSet::new(),
                }
            }
        }
    }

    /// Hub: open the connection if it is not up, retrying with backoff;
    /// commands due while it is down are not sent (undelivered). False when
    /// the fleet stopped first.
    async fn connect(
        &mut self,
        books: &mut Books<'_>,
        schedule: &mut Schedule,
        ctl: &mut watch::Receiver<u64>,
    ) -> bool {
        let Transport::Hub {
            wire,
            session,
            backoff,
            attempt,
            previous,
            ..
        } = self
        else {
            return true;
        };
        let (shared, fleet, ids) = (books.shared, books.fleet, books.ids);
        while session.is_none() {
            if fleet.is_stopping() {
                return false;
            }
            count(shared, ids.connects);
            let t0 = Instant::now();
            let opened = tokio::select! {
                r = Session::open(&fleet.endpoint, wire, None, None, fleet.tls.as_ref(), shared.scenario.hub_settings.timeout) => r,
                _ = stopped(fleet, ctl) => return false,
            };
            match opened {
                Ok(s) => {
                    record(shared, ids.connect, t0.elapsed().as_micros() as u64);
                    *attempt = 0;
                    *previous = Duration::ZERO;
                    *session = Some(s);
                }
                Err(kind) => {
                    count(shared, ids.errors[kind.index()]);
                    let delay = backoff
                        .delay(*attempt, *previous, &mut books.rng)
                        .unwrap_or(backoff.max);
                    *attempt += 1;
                    *previous = delay;
                    // Commands due meanwhile are not sent: undelivered.
                    let until = Instant::now() + delay;
                    while let Some(due) = schedule.take_due(until) {
                        shared
                            .metrics
                            .with(|s| s.add(ids.undelivered, due.phase, 1));
                        books.unsent(due);
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stopped(fleet, ctl) => return false,
                    }
                }
            }
        }
        true
    }

    /// The next answer (cancel-safe). Hub: only while connected.
    async fn answer(&mut self) -> Answer {
        match self {
            Transport::Hub { session, .. } => Answer::Frame(
                session
                    .as_mut()
                    .expect("connected before reading")
                    .next_frame()
                    .await,
            ),
            Transport::Api { done_rx, .. } => Answer::Done(done_rx.recv().await),
        }
    }

    async fn handle(&mut self, answer: Answer, books: &mut Books<'_>) {
        let (shared, fleet, ids) = (books.shared, books.fleet, books.ids);
        match (self, answer) {
            (
                Transport::Hub {
                    wire,
                    session: connected,
                    acks,
                    ..
                },
                Answer::Frame(frame),
            ) => {
                let session = connected.as_mut().expect("connected before reading");
                match session.handle_read(frame, wire.type_key) {
                    In::Nothing => {}
                    In::Ping => {
                        if session.pong().await.is_err() {
                            count(shared, ids.disconnects[DisconnectKind::Reset.index()]);
                            *connected = None;
                        }
                    }
                    In::Closed(kind) => {
                        count(shared, ids.disconnects[kind.index()]);
                        *connected = None;
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
                }
            }
            (_, Answer::Done(Some((id, outcome, phase)))) => match outcome {
                Ok(Some(n)) => fleet.command_expected(shared, &id, n),
                Ok(None) => {}
                Err(kind) => shared
                    .metrics
                    .with(|s| s.add(ids.errors[kind.index()], phase, 1)),
            },
            _ => {}
        }
    }

    /// Send the command `due` stands for.
    async fn send(&mut self, books: &mut Books<'_>, due: Due) {
        let phase = due.phase;
        let (id, sent_us) = books.payload(due.seq + 1);
        books.sent_now(id.clone(), sent_us, phase);
        match self {
            Transport::Hub {
                wire,
                event,
                session: connected,
                acks,
                ..
            } => {
                let session = connected.as_mut().expect("connected before sending");
                let ask = wire.protocol == HubProtocol::SocketIo;
                match session
                    .send_event(wire, event, Some(&books.scratch), ask)
                    .await
                {
                    Ok(Some(ack)) => {
                        acks.insert(ack, id);
                        if acks.len() > 10_000 {
                            acks.clear();
                        }
                    }
                    Ok(None) => {}
                    Err(_) => {
                        count(
                            books.shared,
                            books.ids.disconnects[DisconnectKind::Reset.index()],
                        );
                        *connected = None;
                    }
                }
            }
            Transport::Api {
                path,
                pool,
                done_tx,
                tasks,
                ..
            } => {
                let shared = books.shared;
                let mut request = OutRequest {
                    method: http::Method::POST,
                    ..Default::default()
                };
                // Seeded by the command's number, as its data.
                let mut rng =
                    SmallRng::seed_from_u64(mix_seed(books.data_seed ^ 0x9A7, books.sent));
                let mut ctx = RenderCtx {
                    vu_id: books.index as u64,
                    iteration: books.sent,
                    rng: &mut rng,
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
                let shared = shared.clone();
                tasks.spawn(async move {
                    let outcome = post(&shared, &pool, &request, timeout).await;
                    let _ = tx.send((id, outcome, phase));
                });
            }
        }
    }

    /// API: forget finished tasks.
    fn reap(&mut self) {
        if let Transport::Api { tasks, .. } = self {
            while tasks.try_join_next().is_some() {}
        }
    }

    /// The fleet stops. Hub: close the connection gracefully (bounded).
    async fn close(&mut self) {
        match self {
            Transport::Hub { wire, session, .. } => {
                if let Some(session) = session.take() {
                    session.close(wire.namespace, Duration::from_secs(1)).await;
                }
            }
            Transport::Api { tasks, .. } => tasks.abort_all(),
        }
    }
}

/// One API command: POST it on a pooled connection; the number delivered
/// when the answer says.
async fn post(
    shared: &Shared,
    pool: &Mutex<Vec<Conn>>,
    request: &OutRequest,
    timeout: Duration,
) -> Result<Option<u64>, HubErrorKind> {
    let mut conn = pool.lock().pop().unwrap_or_default();
    let endpoint = &shared.endpoints[0];
    match tokio::time::timeout(timeout, conn.send(&shared.client, endpoint, request, true)).await {
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
    }
}

/// The id of command number `n` (1-based) of commander `name`.
pub fn command_id(name: &str, n: u64) -> String {
    format!("{name}-{n}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_id_is_its_commander_and_global_number() {
        assert_eq!(command_id("ops", 1), "ops-1");
        assert_eq!(command_id("fleet-ops", 42), "fleet-ops-42");
    }
}
