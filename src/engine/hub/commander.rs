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
//!
//! One loop ([`run`]) plays both kinds: the commands' due times come from
//! the engine's [`Schedule`]; a `Transport` is the difference (how a
//! command leaves, what comes back, whether there is a connection to keep).

use super::session::{In, Session, Wire};
use super::{count, record, CommanderIds, DisconnectKind, Fleet, HubErrorKind};
use crate::engine::driver::mix_seed;
use crate::engine::schedule::Schedule;
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
                transport.send(&mut books, made.due.phase).await;
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

    /// Send the next command (of `phase`).
    async fn send(&mut self, books: &mut Books<'_>, phase: usize) {
        let id = books.payload();
        books.sent_now(id.clone(), phase);
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
