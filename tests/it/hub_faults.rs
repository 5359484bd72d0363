//! Fault tests of the agent engine: each test starts a small misbehaving hub
//! on 127.0.0.1:0 (raw tokio TCP, tokio-tungstenite for the WebSocket, the
//! Engine.IO / Socket.IO side spoken by hand), runs a few seconds of Socket.IO
//! agents against it and checks what the engine counted against what the hub
//! saw.
//!
//! Every scenario: 4 agents, `[hub] timeout = "300ms"`, reconnect 50ms
//! doubling to 200ms, no jitter, `max_attempts = 3`: an agent whose every
//! attempt fails tries 1 + 3 times (waiting 50 + 100 + 200 ms in between)
//! and then gives up, well inside the phase.
//!
//! The fake hubs report what they see (connections, request heads, packets,
//! pings, pongs, closes, with the time) through a channel; tests wait on
//! those reports (bounded) instead of sleeping.
//!
//! Time: every test runs under tokio's paused clock (current-thread
//! runtime, `start_paused`): the fake hubs, the engine's agents and the
//! test share one runtime, whose clock jumps to the next timer whenever
//! every task waits. Timeouts, backoff delays, ping intervals and deadlines
//! are therefore exact, whatever the load of the machine, and so are the
//! times the hubs report: an attempt that times out closes exactly 300 ms
//! after its upgrade, the next one starts exactly 50 ms later. The I/O is
//! real loopback TCP, where a write is in the peer's receive queue when
//! `write` returns; the tests rely on the runtime seeing that readiness
//! before its clock jumps, and check it: a jump while a packet is on its
//! way would show as an early timeout, a missing pong or an off time in
//! the exact assertions below, never as a pass. For the same reason the
//! hubs and the raw clients set `TCP_NODELAY`, as the engine does: Nagle's
//! algorithm would hold a small write back for a delayed ACK, 40 ms of
//! *real* time that the paused clock does not wait for. The run's
//! aggregator thread keeps the wall clock; the totals the tests read do
//! not depend on it.

use crate::common::{count, Fixture};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stampede::error::ExitStatus;
use stampede::metrics::{TagFilter, Totals};
use stampede::scenario::Overrides;
use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

/// Agents per scenario.
const AGENTS: u64 = 4;
/// The same, to compare with what the hub saw.
const N_AGENTS: usize = AGENTS as usize;
/// `reconnect.max_attempts` of every scenario.
const MAX_ATTEMPTS: u64 = 3;
/// Attempts of an agent that never gets in: the first one and every retry.
const TRIES: u64 = 1 + MAX_ATTEMPTS;
/// Attempts of all agents together when none gets in.
const ALL_TRIES: usize = N_AGENTS * TRIES as usize;
/// `[hub] timeout` of every scenario.
const TIMEOUT: Duration = Duration::from_millis(300);
/// The reconnect delays of every scenario, in order: base 50 ms, doubling
/// (`factor = 2`), at most 200 ms, no jitter; `max_attempts` of them.
const BACKOFF: [Duration; MAX_ATTEMPTS as usize] = [
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(200),
];
/// How long a test waits (paused clock) for the fake hub to see something.
const WAIT: Duration = Duration::from_secs(5);
/// How long a run may take at most (paused clock; its phases last 2–3 s).
const RUN_BOUND: Duration = Duration::from_secs(15);

/// A valid Engine.IO open packet that leaves the server's pings far away.
const OPEN: &str =
    r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
/// An open packet asking for a ping every 100 ms, 100 ms of grace.
const OPEN_FAST_PINGS: &str =
    r#"0{"sid":"x","upgrades":[],"pingInterval":100,"pingTimeout":100,"maxPayload":1000000}"#;
/// How long a client may go without a ping after [`OPEN_FAST_PINGS`]:
/// pingInterval + pingTimeout.
const PING_DEADLINE: Duration = Duration::from_millis(200);
/// How often the hubs that do ping, ping (well inside [`PING_DEADLINE`]).
const PING_EVERY: Duration = Duration::from_millis(30);

// ---- the fake hub ----------------------------------------------------------

/// Something a fake hub saw or did on one connection.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// The TCP connection was accepted.
    Accepted,
    /// The HTTP request head, as received (raw TCP hubs) or rebuilt from the
    /// parsed request (WebSocket hubs): request line, then `name: value` lines.
    /// A connection that never sends one (the run's reachability probe, a
    /// bare TCP connect) reports nothing after [`Seen::Accepted`]: the
    /// attempts are the connections with a request.
    Request(String),
    /// The WebSocket upgrade completed.
    Upgraded,
    /// The hub sent its Engine.IO open packet.
    Opened,
    /// A text frame from the client (pongs excluded).
    Packet(String),
    /// The hub sent an Engine.IO ping (`2`).
    Ping,
    /// A binary frame from the client.
    Binary(usize),
    /// An Engine.IO pong (`3`).
    Pong,
    /// The connection ended (either side; once per connection that sent a
    /// request).
    Closed,
}

/// One report: connection number (accept order, from 0), when, what.
#[derive(Debug, Clone)]
struct Event {
    conn: usize,
    at: Instant,
    what: Seen,
}

/// A connection's reporter.
#[derive(Clone)]
struct Tap {
    conn: usize,
    tx: mpsc::UnboundedSender<Event>,
}

impl Tap {
    fn note(&self, what: Seen) {
        let _ = self.tx.send(Event {
            conn: self.conn,
            at: Instant::now(),
            what,
        });
    }
}

/// A hub on 127.0.0.1:0 running one handler task per connection; dropping
/// it stops the listener and every connection.
struct FakeHub {
    addr: SocketAddr,
    rx: mpsc::UnboundedReceiver<Event>,
    /// Everything received from `rx` so far.
    log: Vec<Event>,
    server: JoinHandle<()>,
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeHub {
    /// `handler` gets each accepted connection.
    async fn tcp<F, Fut>(handler: F) -> FakeHub
    where
        F: Fn(TcpStream, Tap) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let server = tokio::spawn(async move {
            // Owned here: aborting the accept loop drops (aborts) them all.
            let mut conns = JoinSet::new();
            for conn in 0.. {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                // No Nagle: see the module's comment on time.
                stream.set_nodelay(true).expect("TCP_NODELAY");
                let tap = Tap {
                    conn,
                    tx: tx.clone(),
                };
                tap.note(Seen::Accepted);
                conns.spawn(handler(stream, tap));
                while conns.try_join_next().is_some() {}
            }
        });
        FakeHub {
            addr,
            rx,
            log: Vec::new(),
            server,
        }
    }

    /// Accepts WebSocket upgrades (any path) and hands each session to `script`.
    async fn socketio<F, Fut>(script: F) -> FakeHub
    where
        F: Fn(Sio) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let script = Arc::new(script);
        FakeHub::tcp(move |stream, tap| {
            let script = Arc::clone(&script);
            async move {
                if let Some(sio) = Sio::accept(stream, tap).await {
                    script(sio).await;
                }
            }
        })
        .await
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Moves what has arrived into the log.
    fn drain(&mut self) {
        while let Ok(e) = self.rx.try_recv() {
            self.log.push(e);
        }
    }

    /// Waits (at most [`WAIT`]) until `done` holds for the log; returns the log.
    async fn until(&mut self, what: &str, done: impl Fn(&[Event]) -> bool) -> &[Event] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.drain();
            if done(&self.log) {
                return &self.log;
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(e)) => self.log.push(e),
                Ok(None) => panic!("the fake hub stopped while waiting for {what}"),
                Err(_) => panic!(
                    "the fake hub did not see {what} within {WAIT:?}; it saw:\n{}",
                    show(&self.log)
                ),
            }
        }
    }

    /// Waits until the hub has seen exactly `n` events matching `pick`
    /// (at least `n` within [`WAIT`], and then not more); returns the log.
    async fn until_n(&mut self, n: usize, what: &str, pick: fn(&Seen) -> bool) -> &[Event] {
        let seen = |log: &[Event]| log.iter().filter(|e| pick(&e.what)).count();
        self.until(&format!("{n} × {what}"), |log| seen(log) >= n)
            .await;
        assert_eq!(
            seen(&self.log),
            n,
            "{what}: the hub saw more than expected:\n{}",
            show(&self.log)
        );
        &self.log
    }
}

fn show(log: &[Event]) -> String {
    let Some(t0) = log.first().map(|e| e.at) else {
        return "  (nothing)".into();
    };
    log.iter()
        .map(|e| {
            format!(
                "  {:>6.1} ms  #{:<3} {:?}",
                e.at.duration_since(t0).as_secs_f64() * 1e3,
                e.conn,
                e.what
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_closed(s: &Seen) -> bool {
    matches!(s, Seen::Closed)
}
fn is_request(s: &Seen) -> bool {
    matches!(s, Seen::Request(_))
}
fn is_pong(s: &Seen) -> bool {
    matches!(s, Seen::Pong)
}
fn is_ping(s: &Seen) -> bool {
    matches!(s, Seen::Ping)
}

/// When connection `conn` first saw `what`.
fn at(log: &[Event], conn: usize, what: &Seen) -> Instant {
    log.iter()
        .find(|e| e.conn == conn && e.what == *what)
        .map(|e| e.at)
        .unwrap_or_else(|| panic!("#{conn} {what:?}:\n{}", show(log)))
}

/// When connection `conn` sent its request.
fn request_at(log: &[Event], conn: usize) -> Instant {
    log.iter()
        .find(|e| e.conn == conn && is_request(&e.what))
        .map(|e| e.at)
        .unwrap_or_else(|| panic!("#{conn}: no request:\n{}", show(log)))
}

/// Per agent (register id), its sessions' connections in order.
fn sessions_by_agent(log: &[Event]) -> Vec<(String, Vec<usize>)> {
    let mut agents: Vec<(String, Vec<usize>)> = Vec::new();
    for (conn, p) in packets(log) {
        let Some((_, args)) = sio_event(p) else {
            continue;
        };
        if args[0] != "register" {
            continue;
        }
        let id = args[1]["id"].as_str().expect("register id").to_string();
        match agents.iter_mut().find(|(a, _)| *a == id) {
            Some((_, conns)) => conns.push(conn),
            None => agents.push((id, vec![conn])),
        }
    }
    agents.sort();
    agents
}

/// Every agent that never gets in makes 1 + max_attempts attempts, all
/// starting together: attempt k + 1 starts exactly `fails_after` (how long
/// an attempt takes to fail) + the k-th backoff delay after attempt k.
/// Checks the hub saw exactly that schedule.
fn assert_attempt_schedule(log: &[Event], fails_after: Duration) {
    let mut starts: Vec<Instant> = attempts(log)
        .into_iter()
        .map(|c| request_at(log, c))
        .collect();
    starts.sort();
    let first = starts[0];
    let offsets: Vec<Duration> = starts.iter().map(|t| *t - first).collect();
    let mut expected = vec![Duration::ZERO; N_AGENTS];
    let mut next = Duration::ZERO;
    for delay in BACKOFF {
        next += fails_after + delay;
        expected.extend([next; N_AGENTS]);
    }
    assert_eq!(
        offsets,
        expected,
        "attempt start times (failing after {fails_after:?}):\n{}",
        show(log)
    );
}

/// The connections that sent a request (attempts), in accept order.
fn attempts(log: &[Event]) -> Vec<usize> {
    log.iter()
        .filter(|e| is_request(&e.what))
        .map(|e| e.conn)
        .collect()
}

/// Text packets of the log, with their connection.
fn packets(log: &[Event]) -> impl Iterator<Item = (usize, &str)> {
    log.iter().filter_map(|e| match &e.what {
        Seen::Packet(p) => Some((e.conn, p.as_str())),
        _ => None,
    })
}

/// Payloads of the Socket.IO CONNECT packets (root namespace) clients sent.
fn connects_sent(log: &[Event]) -> Vec<&str> {
    packets(log)
        .filter_map(|(_, p)| p.strip_prefix("40"))
        .collect()
}

/// Client EVENTs named `name` (root namespace): their first argument.
fn events_named(log: &[Event], name: &str) -> Vec<Value> {
    packets(log)
        .filter_map(|(_, p)| sio_event(p))
        .filter(|(_, args)| args[0] == name)
        .map(|(_, args)| args[1].clone())
        .collect()
}

/// A root-namespace Socket.IO EVENT `42[<ack id>][...]`: (ack id, array).
fn sio_event(packet: &str) -> Option<(Option<u64>, Value)> {
    let rest = packet.strip_prefix("42")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let ack = (digits > 0).then(|| rest[..digits].parse().expect("ack id"));
    let args: Value = serde_json::from_str(&rest[digits..]).ok()?;
    args.as_array().filter(|a| !a.is_empty())?;
    Some((ack, args))
}

/// Reads an HTTP request head (up to the blank line, at most 16 KiB).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() > 16 * 1024 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

/// Reads until the client closes (or resets) the connection.
async fn read_to_eof(stream: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// The hub side of one Engine.IO session over a WebSocket.
struct Sio {
    ws: WebSocketStream<TcpStream>,
    tap: Tap,
    closed: bool,
}

impl Sio {
    async fn accept(stream: TcpStream, tap: Tap) -> Option<Sio> {
        let mut head = String::new();
        // The callback's signature is tungstenite's.
        #[allow(clippy::result_large_err)]
        let record = |req: &Request, resp: Response| {
            head = format!("{} {}\r\n", req.method(), req.uri());
            for (name, value) in req.headers() {
                head += &format!("{name}: {}\r\n", value.to_str().unwrap_or("?"));
            }
            Ok::<_, tungstenite::handshake::server::ErrorResponse>(resp)
        };
        let accepted = tokio_tungstenite::accept_hdr_async(stream, record).await;
        if head.is_empty() {
            return None; // no request: not an attempt
        }
        tap.note(Seen::Request(head));
        match accepted {
            Ok(ws) => {
                tap.note(Seen::Upgraded);
                Some(Sio {
                    ws,
                    tap,
                    closed: false,
                })
            }
            Err(_) => {
                tap.note(Seen::Closed);
                None
            }
        }
    }

    fn ended(&mut self) {
        if !self.closed {
            self.closed = true;
            self.tap.note(Seen::Closed);
        }
    }

    async fn send(&mut self, text: &str) {
        if text.starts_with('0') {
            self.tap.note(Seen::Opened);
        }
        if self.ws.send(Message::text(text)).await.is_err() {
            self.ended();
        }
    }

    async fn send_binary(&mut self, bytes: &'static [u8]) {
        if self.ws.send(Message::binary(bytes)).await.is_err() {
            self.ended();
        }
    }

    /// The next text packet from the client (pongs are noted and skipped);
    /// None once the connection has ended.
    async fn recv(&mut self) -> Option<String> {
        while !self.closed {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) if t.as_str() == "3" => self.tap.note(Seen::Pong),
                Some(Ok(Message::Text(t))) => {
                    self.tap.note(Seen::Packet(t.as_str().to_string()));
                    return Some(t.as_str().to_string());
                }
                Some(Ok(Message::Binary(b))) => self.tap.note(Seen::Binary(b.len())),
                Some(Ok(Message::Close(_)) | Err(_)) | None => self.ended(),
                Some(Ok(_)) => {}
            }
        }
        None
    }

    /// Reads (and reports) everything until the client goes away.
    async fn hold(&mut self) {
        while self.recv().await.is_some() {}
    }

    /// As [`Sio::hold`], sending an Engine.IO ping every `every`.
    async fn hold_pinging(&mut self, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            let ping = tokio::select! {
                _ = tick.tick() => true,
                p = self.recv() => if p.is_some() { false } else { return },
            };
            if ping {
                self.tap.note(Seen::Ping);
                self.send("2").await;
            }
        }
    }

    /// Waits for the client's CONNECT to the root namespace: its payload.
    async fn expect_connect(&mut self) -> Option<String> {
        loop {
            if let Some(auth) = self.recv().await?.strip_prefix("40") {
                return Some(auth.to_string());
            }
        }
    }

    /// Waits for a `register` EVENT: (ack id, agent id).
    async fn expect_register(&mut self) -> Option<(Option<u64>, String)> {
        loop {
            let p = self.recv().await?;
            if let Some((ack, args)) = sio_event(&p) {
                if args[0] == "register" {
                    let id = args[1]["id"].as_str().unwrap_or_default().to_string();
                    return Some((ack, id));
                }
            }
        }
    }

    /// Open, CONNECT answered, `register` acked `{"ok": true}`: the agent id.
    async fn serve_until_registered(&mut self, open: &str) -> Option<String> {
        self.send(open).await;
        self.expect_connect().await?;
        let sid = format!(r#"40{{"sid":"s{}"}}"#, self.tap.conn);
        self.send(&sid).await;
        let (ack, id) = self.expect_register().await?;
        if let Some(ack) = ack {
            self.send(&format!(r#"43{ack}[{{"ok":true,"id":"{id}"}}]"#))
                .await;
        }
        Some(id)
    }
}

// ---- the hubs of the tests -------------------------------------------------

/// Answers every request with `403 Forbidden`.
async fn hub_refusing_upgrade() -> FakeHub {
    FakeHub::tcp(|mut stream, tap| async move {
        if let Some(head) = read_head(&mut stream).await {
            tap.note(Seen::Request(head));
            let _ = stream
                .write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 9\r\nconnection: close\r\n\r\nforbidden")
                .await;
            let _ = stream.shutdown().await;
            read_to_eof(&mut stream).await;
            tap.note(Seen::Closed);
        }
    })
    .await
}

/// Reads the request head, then closes without a word.
async fn hub_closing_mid_handshake() -> FakeHub {
    FakeHub::tcp(|mut stream, tap| async move {
        if let Some(head) = read_head(&mut stream).await {
            tap.note(Seen::Request(head));
            drop(stream);
            tap.note(Seen::Closed);
        }
    })
    .await
}

/// Upgrades, sends `first` and then only listens.
async fn hub_sending_after_upgrade(first: &'static str) -> FakeHub {
    FakeHub::socketio(move |mut s| async move {
        s.send(first).await;
        s.hold().await;
    })
    .await
}

/// Sends a valid open packet, answers the namespace CONNECT with `answer`
/// (or never, when None) and then only listens.
async fn hub_answering_connect(answer: Option<&'static str>) -> FakeHub {
    FakeHub::socketio(move |mut s| async move {
        s.send(OPEN).await;
        if s.expect_connect().await.is_none() {
            return;
        }
        if let Some(answer) = answer {
            s.send(answer).await;
        }
        s.hold().await;
    })
    .await
}

/// What goes wrong in the first session of each agent.
#[derive(Clone, Copy)]
enum FirstSession {
    /// After the register ack, this text packet.
    Sends(&'static str),
    /// The open packet promises pings every 100 ms (100 ms of grace); none
    /// ever comes.
    NoPings,
}

/// Serves agents properly (told apart by their register id) except in each
/// one's first session, where `fault` happens after the register ack. Later
/// sessions answer the same way and then keep quiet (`Sends`) or ping every
/// [`PING_EVERY`] from the register ack on, well inside the announced
/// 100 + 100 ms (`NoPings`).
async fn hub_faulty_first_session(fault: FirstSession) -> FakeHub {
    let known = Arc::new(Mutex::new(HashSet::new()));
    FakeHub::socketio(move |mut s| {
        let known = Arc::clone(&known);
        async move {
            let open = match fault {
                FirstSession::Sends(_) => OPEN,
                FirstSession::NoPings => OPEN_FAST_PINGS,
            };
            let Some(id) = s.serve_until_registered(open).await else {
                return;
            };
            let first = known.lock().unwrap().insert(id);
            match (fault, first) {
                (FirstSession::Sends(garbage), true) => {
                    s.send(garbage).await;
                    s.hold().await;
                }
                (FirstSession::NoPings, true) | (FirstSession::Sends(_), false) => s.hold().await,
                (FirstSession::NoPings, false) => s.hold_pinging(PING_EVERY).await,
            }
        }
    })
    .await
}

/// The binary attachment of command `c1`.
const ATTACHMENT: &[u8] = &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x01];

fn now_us() -> u64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(since.as_micros()).unwrap()
}

/// A proper hub that, after each register ack, sends command `c1` as a
/// BINARY_EVENT with one attachment (its `data`), then command `c2` as a
/// plain EVENT, and listens.
async fn hub_sending_binary_command() -> FakeHub {
    FakeHub::socketio(|mut s| async move {
        if s.serve_until_registered(OPEN).await.is_none() {
            return;
        }
        let c1 = json!(["command", {"id": "c1", "to": "agents", "sent_us": now_us(),
            "data": {"_placeholder": true, "num": 0}}]);
        s.send(&format!("451-{c1}")).await;
        s.send_binary(ATTACHMENT).await;
        let c2 = json!(["command", {"id": "c2", "to": "agents", "sent_us": now_us(),
            "data": {"op": "after"}}]);
        s.send(&format!("42{c2}")).await;
        s.hold().await;
    })
    .await
}

// ---- running the engine against them ---------------------------------------

/// Panics seen by the hook, with the name of their thread.
fn panics() -> &'static Mutex<Vec<String>> {
    static PANICS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    PANICS.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current().name().unwrap_or("?").to_string();
            if let Ok(mut seen) = panics().lock() {
                seen.push(format!("{thread}: {info}"));
            }
            previous(info);
        }));
        Mutex::new(Vec::new())
    })
}

/// The scenario: 4 Socket.IO agents against `hub`, one phase of `duration`.
fn scenario(name: &str, hub: &FakeHub, duration: &str, extra_agent_keys: &str) -> String {
    r#"
name = "NAME"
seed = 7

[target]
hub = "HUB"

[hub]
timeout = "300ms"

[[agents]]
name = "agent"
protocol = "socketio"
auth = { token = "t-{{ agent.id }}" }
register = { event = "register", data = { id = "agent-{{ agent.id }}" }, ack = true, match = { ok = true } }
reconnect = { base = "50ms", max = "200ms", factor = 2.0, jitter = "none", max_attempts = MAX_ATTEMPTS }
EXTRA

[[phases]]
name = "faulty"
duration = "DURATION"
agents = { connected = AGENTS, connect_rate = "max" }
"#
    .replace("NAME", name)
    .replace("HUB", &hub.url())
    .replace("MAX_ATTEMPTS", &MAX_ATTEMPTS.to_string())
    .replace("EXTRA", extra_agent_keys)
    .replace("DURATION", duration)
    .replace("AGENTS", &AGENTS.to_string())
}

/// Runs the scenario (bounded by [`RUN_BOUND`]); checks it ended normally
/// and nothing panicked on this test's thread (the current-thread runtime
/// runs the engine's tasks here too). Returns the totals.
async fn run_agents(name: &str, hub: &FakeHub, duration: &str, extra_agent_keys: &str) -> Totals {
    let panics = panics();
    let me = std::thread::current().name().unwrap_or("?").to_string();
    let fixture = Fixture::new(&scenario(name, hub, duration, extra_agent_keys));
    let outcome = tokio::time::timeout(RUN_BOUND, fixture.run(Overrides::default()))
        .await
        .unwrap_or_else(|_| panic!("the run did not end within {RUN_BOUND:?}"));
    let mine: Vec<String> = panics
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.starts_with(&format!("{me}: ")))
        .cloned()
        .collect();
    assert!(mine.is_empty(), "the run panicked:\n{}", mine.join("\n"));
    assert_eq!(
        outcome.exit,
        ExitStatus::Passed,
        "no SLO, so nothing can fail"
    );
    outcome.totals
}

fn total(t: &Totals, metric: &str) -> u64 {
    count(t, metric, None)
}

/// Samples in a histogram metric (0 when it has none).
fn samples(t: &Totals, metric: &str) -> u64 {
    t.select_hist(metric, &TagFilter::default())
        .map_or(0, |h| h.len())
}

/// The checks shared by every fault where no attempt ever gets in: each
/// agent tried 1 + max_attempts times, every attempt failed with `kind`,
/// nothing connected, registered or disconnected, and the hub saw every
/// attempt and every connection closed, each attempt `fails_after` its
/// start and the next one after exactly the backoff delay.
async fn assert_never_in(t: &Totals, hub: &mut FakeHub, kind: &str, fails_after: Duration) {
    let tries = AGENTS * TRIES;
    assert_eq!(total(t, "hub.connects"), tries, "1 + max_attempts each");
    assert_eq!(
        count(t, "hub.errors", Some(kind)),
        tries,
        "hub.errors{{{kind}}}"
    );
    assert_eq!(total(t, "hub.errors"), tries, "only {kind} errors");
    assert_eq!(samples(t, "hub.connect"), 0, "no attempt succeeded");
    assert_eq!(
        total(t, "hub.connects"),
        samples(t, "hub.connect") + total(t, "hub.errors"),
        "attempts = successes + failures"
    );
    assert_eq!(total(t, "hub.registrations"), 0);
    assert_eq!(samples(t, "hub.register"), 0);
    assert_eq!(total(t, "hub.disconnects"), 0, "never connected");
    assert_eq!(total(t, "hub.reconnects"), 0);
    hub.until_n(ALL_TRIES, "upgrade requests", is_request).await;
    let log = hub
        .until_n(ALL_TRIES, "closed connections", is_closed)
        .await;
    for conn in attempts(log) {
        let lasted = at(log, conn, &Seen::Closed) - request_at(log, conn);
        assert_eq!(lasted, fails_after, "#{conn}:\n{}", show(log));
    }
    assert_attempt_schedule(log, fails_after);
}

/// A WebSocket upgrade to the Engine.IO endpoint (head as a [`Seen::Request`]).
fn assert_upgrade_request(head: &str) {
    let lower = head.to_ascii_lowercase();
    let line = lower.lines().next().unwrap_or_default();
    assert!(
        line.starts_with("get /socket.io/?")
            && line.contains("eio=4")
            && line.contains("transport=websocket"),
        "not an Engine.IO WebSocket request: {head}"
    );
    assert!(lower.contains("upgrade: websocket"), "no upgrade: {head}");
    assert!(lower.contains("sec-websocket-key: "), "no key: {head}");
}

// ---- the tests -------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn upgrade_refused_is_a_handshake_error_retried_max_attempts_times() {
    let mut hub = hub_refusing_upgrade().await;
    let t = run_agents("refused", &hub, "2s", "").await;
    assert_never_in(&t, &mut hub, "handshake", Duration::ZERO).await;
    let heads: Vec<String> = hub
        .until_n(ALL_TRIES, "requests", is_request)
        .await
        .iter()
        .filter_map(|e| match &e.what {
            Seen::Request(h) => Some(h.clone()),
            _ => None,
        })
        .collect();
    for head in heads {
        assert_upgrade_request(&head);
    }
}

#[tokio::test(start_paused = true)]
async fn close_mid_handshake_is_a_handshake_error_retried_max_attempts_times() {
    let mut hub = hub_closing_mid_handshake().await;
    let t = run_agents("mid-handshake", &hub, "2s", "").await;
    assert_never_in(&t, &mut hub, "handshake", Duration::ZERO).await;
}

#[tokio::test(start_paused = true)]
async fn malformed_open_packet_is_a_protocol_error() {
    let mut hub = hub_sending_after_upgrade("0{not json").await;
    let t = run_agents("bad-open", &hub, "2s", "").await;
    assert_never_in(&t, &mut hub, "protocol", Duration::ZERO).await;
    let log = hub
        .until_n(ALL_TRIES, "upgrades", |s| *s == Seen::Upgraded)
        .await;
    assert_eq!(
        connects_sent(log).len(),
        0,
        "no namespace CONNECT on a broken session"
    );
}

#[tokio::test(start_paused = true)]
async fn garbage_instead_of_the_connect_answer_is_a_protocol_error() {
    // `4` (message) + an unknown Socket.IO type.
    let mut hub = hub_answering_connect(Some("4Zxx")).await;
    let t = run_agents("bad-connect-answer", &hub, "2s", "").await;
    assert_never_in(&t, &mut hub, "protocol", Duration::ZERO).await;
    let log = &hub.log;
    let auths = connects_sent(log);
    assert_eq!(
        auths.len(),
        ALL_TRIES,
        "every attempt sent CONNECT:\n{}",
        show(log)
    );
    let tokens: HashSet<String> = auths
        .iter()
        .map(|a| {
            let v: Value = serde_json::from_str(a).expect("CONNECT payload is JSON");
            let token = v["token"].as_str().expect("auth.token");
            assert!(token.starts_with("t-"), "{v}");
            token.to_string()
        })
        .collect();
    assert_eq!(tokens.len(), N_AGENTS, "one auth per agent: {tokens:?}");
}

#[tokio::test(start_paused = true)]
async fn malformed_event_after_connect_is_a_protocol_disconnect() {
    // An unterminated EVENT after the register ack, in each agent's first
    // session only: each agent is dropped once and comes back.
    let mut hub = hub_faulty_first_session(FirstSession::Sends("42[")).await;
    let t = run_agents("bad-event", &hub, "2s", "").await;
    assert_eq!(count(&t, "hub.disconnects", Some("protocol")), AGENTS);
    assert_eq!(total(&t, "hub.disconnects"), AGENTS, "only those");
    assert_eq!(count(&t, "hub.errors", Some("protocol")), 0, "not an error");
    assert_eq!(total(&t, "hub.errors"), 0);
    assert_back_once(&t, &mut hub).await;
}

#[tokio::test(start_paused = true)]
async fn a_hub_that_never_answers_connect_times_out() {
    let mut hub = hub_answering_connect(None).await;
    // 4 × 300 ms + 50 + 100 + 200 ms = 1.55 s of attempts per agent.
    let t = run_agents("silent", &hub, "3s", "").await;
    // Each attempt waited for the answer (the timeout: 300 ms for the open
    // packet and the CONNECT answer together, from the upgrade) and then
    // hung up, exactly then.
    assert_never_in(&t, &mut hub, "timeout", TIMEOUT).await;
    let log = &hub.log;
    for conn in attempts(log) {
        let waited = at(log, conn, &Seen::Closed) - at(log, conn, &Seen::Upgraded);
        assert_eq!(waited, TIMEOUT, "#{conn}:\n{}", show(log));
    }
    assert_eq!(connects_sent(log).len(), ALL_TRIES);
}

#[tokio::test(start_paused = true)]
async fn a_hub_that_stops_pinging_is_a_ping_timeout_and_agents_reconnect() {
    let mut hub = hub_faulty_first_session(FirstSession::NoPings).await;
    let t = run_agents("no-pings", &hub, "2s", "").await;
    assert_eq!(count(&t, "hub.disconnects", Some("ping_timeout")), AGENTS);
    assert_eq!(total(&t, "hub.disconnects"), AGENTS, "only those");
    assert_eq!(total(&t, "hub.errors"), 0);
    assert_back_once(&t, &mut hub).await;

    // The first sessions ended exactly pingInterval + pingTimeout after the
    // open packet (no ping ever came); the second ones answered every ping
    // of the hub, sent every 30 ms from the register ack until the run
    // closed them at the end of the 2 s phase.
    let phase_end = hub.log[0].at + Duration::from_secs(2);
    let log = &hub.log;
    for (agent, conns) in sessions_by_agent(log) {
        let [first, second] = conns[..] else {
            panic!("{agent}: sessions {conns:?}")
        };
        let lasted = at(log, first, &Seen::Closed) - at(log, first, &Seen::Opened);
        assert_eq!(lasted, PING_DEADLINE, "{agent}, #{first}:\n{}", show(log));
        let of = |conn: usize, pick: fn(&Seen) -> bool| -> Vec<Instant> {
            log.iter()
                .filter(|e| e.conn == conn && pick(&e.what))
                .map(|e| e.at)
                .collect()
        };
        assert_eq!(of(first, is_ping), [], "{agent}: no ping in #{first}");
        assert_eq!(of(first, is_pong), [], "{agent}: no pong in #{first}");
        let pings = of(second, is_ping);
        let expected: Vec<Instant> = (0u32..)
            .map(|k| at(log, second, &Seen::Opened) + PING_EVERY * k)
            .take_while(|t| *t < phase_end)
            .collect();
        assert_eq!(pings, expected, "{agent}, #{second}:\n{}", show(log));
        assert_eq!(
            of(second, is_pong),
            pings,
            "{agent}, #{second}: every ping answered at once"
        );
    }
}

/// After one drop each: every agent registered twice, came back once, and
/// the hub saw two sessions per agent and every one closed.
async fn assert_back_once(t: &Totals, hub: &mut FakeHub) {
    assert_eq!(total(t, "hub.connects"), 2 * AGENTS);
    assert_eq!(samples(t, "hub.connect"), 2 * AGENTS);
    assert_eq!(
        total(t, "hub.connects"),
        samples(t, "hub.connect") + total(t, "hub.errors"),
        "attempts = successes + failures"
    );
    assert_eq!(total(t, "hub.registrations"), 2 * AGENTS);
    assert_eq!(total(t, "hub.reconnects"), AGENTS);
    assert_eq!(samples(t, "hub.reconnect"), AGENTS);
    let needed = t
        .select_hist("hub.reconnect.attempts", &TagFilter::default())
        .expect("hub.reconnect.attempts");
    assert_eq!(needed.len(), AGENTS);
    assert_eq!(needed.max(), 1, "each came back at the first attempt");
    // Down at the drop, up again after the first backoff delay (the new
    // session's open, CONNECT and register take no time on the paused clock).
    let back = t
        .select_hist("hub.reconnect", &TagFilter::default())
        .expect("hub.reconnect");
    let backoff_us = BACKOFF[0].as_micros() as u64;
    for (what, us) in [("fastest", back.min()), ("slowest", back.max())] {
        assert!(
            back.equivalent(us, backoff_us),
            "{what} reconnect took {us} µs, expected {backoff_us} µs"
        );
    }
    let log = hub
        .until_n(2 * N_AGENTS, "closed sessions", is_closed)
        .await;
    let registers = events_named(log, "register");
    assert_eq!(registers.len(), 2 * N_AGENTS);
    let ids: HashSet<String> = registers.iter().map(|r| r["id"].to_string()).collect();
    assert_eq!(ids.len(), N_AGENTS, "{ids:?}");
    assert_eq!(attempts(log).len(), 2 * N_AGENTS);
    // The hub saw each agent come back exactly one backoff delay after it
    // dropped it.
    let agents = sessions_by_agent(log);
    assert_eq!(agents.len(), N_AGENTS);
    for (agent, conns) in agents {
        let [first, second] = conns[..] else {
            panic!("{agent}: sessions {conns:?}")
        };
        let gap = request_at(log, second) - at(log, first, &Seen::Closed);
        assert_eq!(gap, BACKOFF[0], "{agent}:\n{}", show(log));
    }
}

#[tokio::test(start_paused = true)]
async fn connect_error_is_a_rejected_error() {
    let mut hub = hub_answering_connect(Some(r#"44{"message":"not authorized"}"#)).await;
    let t = run_agents("rejected", &hub, "2s", "").await;
    assert_never_in(&t, &mut hub, "rejected", Duration::ZERO).await;
    assert_eq!(connects_sent(&hub.log).len(), ALL_TRIES);
}

#[tokio::test(start_paused = true)]
async fn binary_command_is_received_and_the_agent_keeps_going() {
    let mut hub = hub_sending_binary_command().await;
    let t = run_agents(
        "binary",
        &hub,
        "2s",
        r#"on_command = { event = "command", reply = "result", delay = "5ms..50ms" }"#,
    )
    .await;
    assert_eq!(total(&t, "hub.errors"), 0, "no protocol error");
    assert_eq!(total(&t, "hub.disconnects"), 0);
    assert_eq!(total(&t, "hub.connects"), AGENTS);
    assert_eq!(samples(&t, "hub.connect"), AGENTS);
    assert_eq!(total(&t, "hub.registrations"), AGENTS);
    // Both commands, the binary one and the one after it, reached every agent.
    assert_eq!(total(&t, "hub.command.received"), 2 * AGENTS);
    assert_eq!(samples(&t, "hub.command.delivery"), 2 * AGENTS);

    // …and every agent answered both.
    let log = hub
        .until("a result per command per agent", |log| {
            events_named(log, "result").len() >= 2 * N_AGENTS
        })
        .await;
    let results = events_named(log, "result");
    assert_eq!(results.len(), 2 * N_AGENTS, "{results:?}");
    let mut answered: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            assert!(r["sent_us"].as_u64().is_some(), "sent_us echoed: {r}");
            let agent = match &r["agent"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (r["command_id"].as_str().unwrap_or("?").to_string(), agent)
        })
        .collect();
    answered.sort();
    answered.dedup();
    assert_eq!(
        answered.len(),
        2 * N_AGENTS,
        "one result per command per agent: {answered:?}"
    );
    let commands: HashSet<&str> = answered.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(commands, HashSet::from(["c1", "c2"]));
    let registered: HashSet<String> = events_named(log, "register")
        .iter()
        .map(|r| r["id"].as_str().unwrap_or("?").to_string())
        .collect();
    let answering: HashSet<String> = answered
        .iter()
        .map(|(_, agent)| format!("agent-{agent}"))
        .collect();
    assert_eq!(
        answering, registered,
        "results come from the registered agents"
    );
}

// ---- the fake hubs themselves, against a raw client ------------------------

type Client = WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn raw_connect(hub: &FakeHub) -> Result<Client, tungstenite::Error> {
    let url = format!("ws://{}/socket.io/?EIO=4&transport=websocket", hub.addr);
    // No Nagle (see the module's comment on time).
    tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map(|(ws, _)| ws)
}

/// The next text or binary frame (None on close), within [`WAIT`].
async fn raw_next(ws: &mut Client) -> Option<Message> {
    loop {
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a frame in time")
        {
            Some(Ok(m @ (Message::Text(_) | Message::Binary(_)))) => return Some(m),
            Some(Ok(Message::Close(_)) | Err(_)) | None => return None,
            Some(Ok(_)) => {}
        }
    }
}

async fn raw_text(ws: &mut Client) -> String {
    match raw_next(ws).await {
        Some(Message::Text(t)) => t.as_str().to_string(),
        other => panic!("expected a text frame, got {other:?}"),
    }
}

async fn raw_send(ws: &mut Client, text: &str) {
    ws.send(Message::text(text)).await.expect("send");
}

/// Nothing but pings (answered) for `quiet`.
async fn raw_nothing_for(ws: &mut Client, quiet: Duration) -> usize {
    let mut pings = 0;
    let deadline = tokio::time::Instant::now() + quiet;
    while let Ok(m) = tokio::time::timeout_at(deadline, raw_next(ws)).await {
        match m {
            Some(Message::Text(t)) if t.as_str() == "2" => {
                pings += 1;
                raw_send(ws, "3").await;
            }
            other => panic!("expected silence, got {other:?}"),
        }
    }
    pings
}

/// Open, CONNECT, register as `id`: checks the hub's answers.
async fn raw_register(hub: &FakeHub, id: &str) -> Client {
    let mut ws = raw_connect(hub).await.expect("upgrade");
    let open = raw_text(&mut ws).await;
    let info: Value = serde_json::from_str(open.strip_prefix('0').expect("open")).unwrap();
    assert!(info["sid"].is_string(), "{open}");
    raw_send(&mut ws, r#"40{"token":"t"}"#).await;
    assert!(raw_text(&mut ws).await.starts_with(r#"40{"sid":"#));
    raw_send(&mut ws, &format!(r#"427["register",{{"id":"{id}"}}]"#)).await;
    let ack = raw_text(&mut ws).await;
    assert_eq!(ack, format!(r#"437[{{"ok":true,"id":"{id}"}}]"#));
    ws
}

#[tokio::test(start_paused = true)]
async fn fake_hubs_misbehave_as_scripted() {
    // Not a multiple of PING_EVERY: no ping falls on the end of a window.
    let quiet = Duration::from_millis(310);

    let mut hub = hub_refusing_upgrade().await;
    match raw_connect(&hub).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected a 403, got {:?}", other.map(|_| "a WebSocket")),
    }
    let log = hub.until_n(1, "closed", is_closed).await;
    match &log[1].what {
        Seen::Request(head) => assert_upgrade_request(head),
        other => panic!("{other:?}"),
    }

    let mut hub = hub_closing_mid_handshake().await;
    match raw_connect(&hub).await {
        Err(tungstenite::Error::Http(resp)) => panic!("an answer: {resp:?}"),
        Err(_) => {}
        Ok(_) => panic!("a WebSocket"),
    }
    hub.until_n(1, "request", is_request).await;

    let mut hub = hub_sending_after_upgrade("0{not json").await;
    let mut ws = raw_connect(&hub).await.expect("upgrade");
    assert_eq!(raw_text(&mut ws).await, "0{not json");
    drop(ws);
    hub.until_n(1, "closed", is_closed).await;

    for (answer, expected) in [
        (Some("4Zxx"), Some("4Zxx")),
        (
            Some(r#"44{"message":"not authorized"}"#),
            Some(r#"44{"message":"not authorized"}"#),
        ),
        (None, None),
    ] {
        let mut hub = hub_answering_connect(answer).await;
        let mut ws = raw_connect(&hub).await.expect("upgrade");
        assert_eq!(raw_text(&mut ws).await, OPEN);
        raw_send(&mut ws, r#"40{"token":"t-1"}"#).await;
        match expected {
            Some(e) => assert_eq!(raw_text(&mut ws).await, e),
            None => assert_eq!(raw_nothing_for(&mut ws, quiet).await, 0),
        }
        ws.close(None).await.unwrap();
        let log = hub.until_n(1, "closed", is_closed).await;
        assert_eq!(connects_sent(log), [r#"{"token":"t-1"}"#]);
    }

    // Garbage in the first session of `a` only.
    let mut hub = hub_faulty_first_session(FirstSession::Sends("42[")).await;
    let mut a1 = raw_register(&hub, "a").await;
    assert_eq!(raw_text(&mut a1).await, "42[");
    let mut b1 = raw_register(&hub, "b").await;
    assert_eq!(raw_text(&mut b1).await, "42[");
    let mut a2 = raw_register(&hub, "a").await;
    assert_eq!(raw_nothing_for(&mut a2, quiet).await, 0);
    drop((a1, b1, a2));
    hub.until_n(3, "closed", is_closed).await;

    // No pings in the first session of `a`; in the next, one with the
    // register ack and one every PING_EVERY after it: 0, 30, …, 300 ms.
    let mut hub = hub_faulty_first_session(FirstSession::NoPings).await;
    let mut a1 = raw_register(&hub, "a").await;
    assert_eq!(raw_nothing_for(&mut a1, quiet).await, 0);
    let mut a2 = raw_register(&hub, "a").await;
    let pings = raw_nothing_for(&mut a2, quiet).await;
    assert_eq!(pings, 11, "pings in {quiet:?}");
    drop((a1, a2));
    let log = hub.until_n(2, "closed", is_closed).await;
    let sent: Vec<Instant> = log
        .iter()
        .filter(|e| is_ping(&e.what))
        .map(|e| e.at)
        .collect();
    assert_eq!(sent.len(), pings, "every ping reported");
    for pair in sent.windows(2) {
        assert_eq!(pair[1] - pair[0], PING_EVERY, "{}", show(log));
    }
    assert_eq!(
        log.iter().filter(|e| is_pong(&e.what)).count(),
        pings,
        "every pong reported"
    );

    let mut hub = hub_sending_binary_command().await;
    let mut ws = raw_register(&hub, "a").await;
    let c1 = raw_text(&mut ws).await;
    let body = c1
        .strip_prefix("451-")
        .expect("a BINARY_EVENT with 1 attachment");
    let c1: Value = serde_json::from_str(body).unwrap();
    assert_eq!(c1[1]["id"], "c1");
    assert_eq!(c1[1]["data"], json!({"_placeholder": true, "num": 0}));
    assert!(c1[1]["sent_us"].as_u64().unwrap() > 1_600_000_000_000_000);
    match raw_next(&mut ws).await {
        Some(Message::Binary(b)) => assert_eq!(&b[..], ATTACHMENT),
        other => panic!("expected the attachment, got {other:?}"),
    }
    let (ack, c2) = sio_event(&raw_text(&mut ws).await).expect("an EVENT");
    assert_eq!((ack, &c2[1]["id"]), (None, &json!("c2")));
    raw_send(
        &mut ws,
        r#"42["result",{"command_id":"c1","sent_us":1,"agent":"a"}]"#,
    )
    .await;
    let log = hub
        .until("the result", |log| !events_named(log, "result").is_empty())
        .await;
    assert_eq!(events_named(log, "result")[0]["command_id"], "c1");
}
