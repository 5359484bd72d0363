//! The built-in hub: the endpoint stampede's agents connect to, in two
//! flavours sharing one registry and one set of counters.
//!
//! # Socket.IO — `/socket.io/`, namespaces `/` and `/agents`
//!
//! Engine.IO v4 (WebSocket, and long-polling as socketioxide allows), ping
//! interval and timeout from [`TargetConfig::hub_ping_interval`] /
//! [`TargetConfig::hub_ping_timeout`]. The CONNECT auth payload is
//! accepted; `{"reject": true}` is refused with a CONNECT_ERROR.
//!
//! | event (client → hub)             | effect                                                  | ack (if asked)              |
//! |----------------------------------|---------------------------------------------------------|-----------------------------|
//! | `register` `{id, …}`             | agent `id` ↔ this socket, joins room `agents`           | `{"ok":true,"id":…}`        |
//! | `heartbeat` (any data)           | counted                                                 | `{"ok":true,"ts":<unix ms>}`|
//! | `status` (any data)              | counted                                                 | `{"ok":true}`               |
//! | `result` `{command_id, …}`       | counted; emitted as `result` to the command's sender    | `{"ok":true}`               |
//! | `command` `{id, to, data, …}`    | fanned out as `command` (same payload) to the targets   | `{"delivered":n}`           |
//!
//! `to` is `"agents"` (every registered agent; the default), a list of
//! agent ids, or `{"sample": n}` (n registered agents picked at random). A
//! command without an `id` gets one (`cmd-<n>`), added to the payload.
//!
//! # Plain WebSocket — `/ws`
//!
//! JSON text frames with a `type`: `register` `{id}` → `{"type":"registered","id":…}`;
//! `heartbeat` → `{"type":"heartbeat_ack","ts":…}`; `status` counted;
//! `result` `{command_id,…}` forwarded and counted; `command` (as above) →
//! `{"type":"command_ack","id":…,"delivered":n}`. Commands reach plain
//! agents as `{"type":"command", …payload}`, results reach a plain
//! commander as `{"type":"result", …}`. Anything else is answered
//! `{"type":"error","error":…}`. WebSocket pings are answered.
//!
//! # HTTP
//!
//! `POST /api/commands` (same JSON as the `command` event; under the
//! `/api` knobs) → 202 `{"id":…,"delivered":n}`. Admin endpoints are in
//! [`hub_admin`].
//!
//! # Kicks, restarts, memory
//!
//! Every WebSocket connection (both kinds) carries a kill switch: a kick or
//! a restart ends it abruptly (the TCP connection is closed without a
//! closing handshake, as when a hub dies), so clients see a transport
//! close and reconnect. Socket.IO sessions on long-polling cannot be cut
//! that way and are sent a namespace DISCONNECT instead. Connections are
//! unregistered when they end; remembered command senders are bounded
//! ([`MAX_PENDING_COMMANDS`], oldest forgotten first); per-connection
//! WebSocket buffers are small so 10,000 idle agents stay cheap.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, State as SioState, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::service::SocketIoService;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{mpsc, Notify};

use super::api::error;
use super::hub_admin;
use super::knobs::TargetConfig;
use super::state::with_rng;

/// At most this many command senders are remembered (to route results
/// back); the oldest are forgotten first.
pub const MAX_PENDING_COMMANDS: usize = 10_000;
/// Longest accepted agent or command id, in bytes.
pub const MAX_ID_LEN: usize = 256;
/// Largest accepted WebSocket message (both kinds), in bytes.
pub const MAX_MESSAGE: usize = 1 << 20;
/// Per-connection WebSocket read buffer, in bytes (small: idle agents are
/// the common case).
const READ_BUFFER: usize = 2048;
/// Messages queued for one plain-WebSocket agent before more are dropped.
const WS_QUEUE: usize = 32;
/// The Socket.IO namespaces served.
const NAMESPACES: [&str; 2] = ["/", "/agents"];
/// The room registered Socket.IO agents join.
const AGENTS_ROOM: &str = "agents";

/// A snapshot of the hub's counters, as served by `GET /admin/hub/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubStats {
    /// Live connections: plain WebSocket connections plus Socket.IO
    /// sockets (one per namespace joined), not counting ones being kicked.
    pub connected: u64,
    /// Connections registered as an agent.
    pub registered: u64,
    /// Commands received (Socket.IO, plain WebSocket and HTTP).
    pub commands: u64,
    /// Command messages handed to agents.
    pub delivered: u64,
    /// Results received from agents.
    pub results: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Status messages received.
    pub statuses: u64,
    /// True while a restart refuses new connections.
    pub refusing: bool,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Kill switches

/// Ends one connection from outside: wakes its reader (a Socket.IO
/// connection's wrapped stream) or its loop (a plain WebSocket).
#[derive(Default)]
pub(crate) struct KillSwitch {
    fired: AtomicBool,
    reader: Mutex<Option<Waker>>,
    notify: Notify,
}

impl KillSwitch {
    fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = self.reader.lock().take() {
            w.wake();
        }
        self.notify.notify_one();
    }

    fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.reader.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    async fn fired(&self) {
        while !self.is_fired() {
            self.notify.notified().await;
        }
    }
}

/// Put in the upgrade request's extensions so the Socket.IO handlers can
/// find the kill switch of the connection a socket rides on.
#[derive(Clone)]
struct KillHandle(Arc<KillSwitch>);

/// An upgraded stream that reads end-of-stream (and fails writes) once its
/// kill switch fires; dropping it closes the TCP connection.
struct Killable<T> {
    io: T,
    kill: Arc<KillSwitch>,
    _listed: TransportGuard,
}

/// Keeps a Socket.IO WebSocket transport in the registry's lists (so a
/// restart reaches sessions not yet in a namespace, and kicks reach
/// sessions upgraded from long-polling) until it ends.
struct TransportGuard {
    core: Arc<Core>,
    id: u64,
    /// The Engine.IO session it upgraded, if it was an upgrade.
    upgraded: Option<Sid>,
}

impl Drop for TransportGuard {
    fn drop(&mut self) {
        let mut reg = self.core.reg.lock();
        if let Some(kill) = reg.transports.remove(&self.id) {
            if let Some(sid) = self.upgraded {
                if reg
                    .upgraded
                    .get(&sid)
                    .is_some_and(|k| Arc::ptr_eq(k, &kill))
                {
                    reg.upgraded.remove(&sid);
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Killable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.is_fired() {
            return Poll::Ready(Ok(()));
        }
        self.kill.register(cx.waker());
        if self.kill.is_fired() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Killable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------
// Registry

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Ns {
    Root,
    Agents,
}

impl Ns {
    fn of(path: &str) -> Ns {
        if path == "/agents" {
            Ns::Agents
        } else {
            Ns::Root
        }
    }

    fn path(self) -> &'static str {
        match self {
            Ns::Root => NAMESPACES[0],
            Ns::Agents => NAMESPACES[1],
        }
    }
}

enum Link {
    Ws(mpsc::Sender<Utf8Bytes>),
    Sio(Ns, Sid),
}

struct Conn {
    link: Link,
    /// `None` for a Socket.IO socket on long-polling.
    kill: Option<Arc<KillSwitch>>,
    agent: Option<Box<str>>,
    closing: bool,
}

/// Who sent a command, to route its results back.
#[derive(Debug, Clone, Copy)]
enum Origin {
    Http,
    Ws(u64),
    Sio(Ns, Sid),
}

/// Where to send something, resolved under the lock and used after it.
enum Sink {
    Ws(mpsc::Sender<Utf8Bytes>),
    Sio(Ns, Sid),
}

/// How to end a connection, resolved under the lock.
enum Ender {
    Kill(Arc<KillSwitch>),
    Disconnect(Ns, Sid),
}

#[derive(Default)]
struct Registry {
    next_seq: u64,
    conns: BTreeMap<u64, Conn>,
    sio: HashMap<(Ns, Sid), u64>,
    agents: HashMap<Box<str>, u64>,
    /// Registered Socket.IO agents per namespace (root, agents).
    sio_agents: [u64; 2],
    closing: u64,
    pending: HashMap<Box<str>, Origin>,
    pending_order: VecDeque<Box<str>>,
    /// Live Socket.IO WebSocket transports, in a namespace or not.
    transports: HashMap<u64, Arc<KillSwitch>>,
    next_transport: u64,
    /// Transports of sessions upgraded from long-polling, by session id
    /// (which socketioxide also gives the session's sockets).
    upgraded: HashMap<Sid, Arc<KillSwitch>>,
}

impl Registry {
    fn insert(&mut self, link: Link, kill: Option<Arc<KillSwitch>>) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Link::Sio(ns, sid) = link {
            self.sio.insert((ns, sid), seq);
        }
        self.conns.insert(
            seq,
            Conn {
                link,
                kill,
                agent: None,
                closing: false,
            },
        );
        seq
    }

    fn unregister(&mut self, seq: u64) {
        let Some(conn) = self.conns.get_mut(&seq) else {
            return;
        };
        if let Some(id) = conn.agent.take() {
            self.agents.remove(&id);
            if let Link::Sio(ns, _) = conn.link {
                self.sio_agents[ns as usize] -= 1;
            }
        }
    }

    fn remove(&mut self, seq: u64) {
        self.unregister(seq);
        if let Some(conn) = self.conns.remove(&seq) {
            if conn.closing {
                self.closing -= 1;
            }
            if let Link::Sio(ns, sid) = conn.link {
                self.sio.remove(&(ns, sid));
            }
        }
    }

    /// Registers `seq` as agent `id`; returns the Socket.IO socket that
    /// held that id before (so it can leave the room), if any.
    fn register(&mut self, seq: u64, id: &str) -> Result<Option<(Ns, Sid)>, String> {
        match self.conns.get(&seq) {
            None => return Err("connection closed".into()),
            Some(c) if c.closing => return Err("connection closing".into()),
            Some(c) if c.agent.as_deref() == Some(id) => return Ok(None),
            Some(_) => {}
        }
        self.unregister(seq);
        let mut superseded = None;
        if let Some(old) = self.agents.get(id).copied() {
            if let Some(Link::Sio(ns, sid)) = self.conns.get(&old).map(|c| &c.link) {
                superseded = Some((*ns, *sid));
            }
            self.unregister(old);
        }
        let id: Box<str> = id.into();
        self.agents.insert(id.clone(), seq);
        let conn = self.conns.get_mut(&seq).expect("checked above");
        if let Link::Sio(ns, _) = conn.link {
            self.sio_agents[ns as usize] += 1;
        }
        conn.agent = Some(id);
        Ok(superseded)
    }

    /// The kill switch of a connection's WebSocket transport, if it has one.
    fn kill_switch(&self, conn: &Conn) -> Option<Arc<KillSwitch>> {
        match (&conn.kill, &conn.link) {
            (Some(k), _) => Some(k.clone()),
            (None, Link::Sio(_, sid)) => self.upgraded.get(sid).cloned(),
            (None, Link::Ws(_)) => None,
        }
    }

    fn mark_closing(&mut self, seq: u64) -> Option<Ender> {
        self.unregister(seq);
        let conn = self.conns.get(&seq)?;
        let ender = match (self.kill_switch(conn), &conn.link) {
            (Some(k), _) => Some(Ender::Kill(k)),
            (None, Link::Sio(ns, sid)) => Some(Ender::Disconnect(*ns, *sid)),
            (None, Link::Ws(_)) => None,
        };
        let conn = self.conns.get_mut(&seq)?;
        if !conn.closing {
            conn.closing = true;
            self.closing += 1;
        }
        ender
    }

    fn sink(&self, seq: u64) -> Option<Sink> {
        let conn = self.conns.get(&seq)?;
        Some(match &conn.link {
            Link::Ws(tx) => Sink::Ws(tx.clone()),
            Link::Sio(ns, sid) => Sink::Sio(*ns, *sid),
        })
    }

    fn remember(&mut self, id: &str, origin: Origin) {
        if self.pending.insert(id.into(), origin).is_none() {
            self.pending_order.push_back(id.into());
            while self.pending_order.len() > MAX_PENDING_COMMANDS {
                if let Some(old) = self.pending_order.pop_front() {
                    self.pending.remove(&old);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Commands

/// The targets of a command.
#[derive(Debug, Clone, PartialEq)]
enum To {
    All,
    Ids(Vec<String>),
    Sample(usize),
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.len() <= MAX_ID_LEN => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_to(v: Option<&Value>) -> Result<To, String> {
    const FORMS: &str = "`to` must be \"agents\", a list of agent ids or {\"sample\": n}";
    match v {
        None | Some(Value::Null) => Ok(To::All),
        Some(Value::String(s)) if s == AGENTS_ROOM => Ok(To::All),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|i| id_text(i).ok_or_else(|| format!("{FORMS}; bad agent id {i}")))
            .collect::<Result<_, _>>()
            .map(To::Ids),
        Some(Value::Object(o)) if o.len() == 1 => match o.get("sample").and_then(Value::as_u64) {
            Some(n) => Ok(To::Sample(n.min(usize::MAX as u64) as usize)),
            None => Err(FORMS.into()),
        },
        Some(_) => Err(FORMS.into()),
    }
}

/// The resolved targets of one command.
#[derive(Default)]
struct Targets {
    ws: Vec<mpsc::Sender<Utf8Bytes>>,
    sio: Vec<(Ns, Sid)>,
    /// Broadcast to room `agents` of these namespaces, expecting this many.
    rooms: Vec<(Ns, u64)>,
}

// ---------------------------------------------------------------------------
// Shared core (reachable from the Socket.IO handlers)

pub(crate) struct Core {
    start: Instant,
    /// Refuse new connections until this many ns after `start`; 0 = no.
    refuse_until: AtomicU64,
    commands: AtomicU64,
    delivered: AtomicU64,
    results: AtomicU64,
    heartbeats: AtomicU64,
    statuses: AtomicU64,
    next_command: AtomicU64,
    reg: Mutex<Registry>,
}

impl Core {
    fn now_nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn refusing(&self) -> bool {
        self.refuse_until.load(Ordering::Acquire) > self.now_nanos()
    }

    fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The registry entry of a Socket.IO socket, created if needed; `None`
    /// once the socket is gone (and then no entry is left behind).
    ///
    /// Called from the connect handler and from event handlers, which
    /// socketioxide runs as separate tasks, so it may run after the
    /// disconnect handler: that one marks the socket [`Gone`] before
    /// removing its entry, and this checks the mark after inserting.
    fn ensure_sio(&self, s: &SocketRef) -> Option<u64> {
        let ns = Ns::of(s.ns());
        let seq = {
            let mut reg = self.reg.lock();
            match reg.sio.get(&(ns, s.id)) {
                Some(seq) => *seq,
                None => {
                    let kill = s
                        .req_parts()
                        .extensions
                        .get::<KillHandle>()
                        .map(|k| k.0.clone());
                    reg.insert(Link::Sio(ns, s.id), kill)
                }
            }
        };
        if s.extensions.get::<Gone>().is_some() {
            self.remove_sio(ns, s.id);
            return None;
        }
        Some(seq)
    }

    fn remove_sio(&self, ns: Ns, sid: Sid) {
        let mut reg = self.reg.lock();
        if let Some(seq) = reg.sio.get(&(ns, sid)).copied() {
            reg.remove(seq);
        }
    }

    fn resolve(&self, reg: &Registry, to: &To) -> Targets {
        let mut t = Targets::default();
        let add = |seq: u64, t: &mut Targets| match reg.conns.get(&seq).map(|c| &c.link) {
            Some(Link::Ws(tx)) => t.ws.push(tx.clone()),
            Some(Link::Sio(ns, sid)) => t.sio.push((*ns, *sid)),
            None => {}
        };
        match to {
            To::All => {
                for conn in reg.conns.values() {
                    if let (Link::Ws(tx), Some(_)) = (&conn.link, &conn.agent) {
                        t.ws.push(tx.clone());
                    }
                }
                for ns in [Ns::Root, Ns::Agents] {
                    let n = reg.sio_agents[ns as usize];
                    if n > 0 {
                        t.rooms.push((ns, n));
                    }
                }
            }
            To::Ids(ids) => {
                for id in ids {
                    if let Some(seq) = reg.agents.get(id.as_str()) {
                        add(*seq, &mut t);
                    }
                }
            }
            To::Sample(n) => {
                let all: Vec<u64> = reg.agents.values().copied().collect();
                let picked: Vec<u64> =
                    with_rng(|rng| all.choose_multiple(rng, *n).copied().collect());
                for seq in picked {
                    add(seq, &mut t);
                }
            }
        }
        t
    }

    /// Fans a command out; returns its id and how many agents it reached.
    async fn command(
        &self,
        io: &SocketIo,
        payload: Value,
        origin: Origin,
    ) -> Result<(String, u64), String> {
        let Value::Object(mut payload) = payload else {
            return Err("a command is a JSON object {id, to, data}".into());
        };
        let to = parse_to(payload.get("to"))?;
        let id = match payload.get("id") {
            None | Some(Value::Null) => {
                let id = format!("cmd-{}", self.next_command.fetch_add(1, Ordering::Relaxed));
                payload.insert("id".into(), Value::String(id.clone()));
                id
            }
            Some(v) => id_text(v).ok_or_else(|| {
                format!(
                    "`id` must be a non-empty string of at most {MAX_ID_LEN} bytes, or a number"
                )
            })?,
        };
        self.count(&self.commands);
        let targets = {
            let mut reg = self.reg.lock();
            reg.remember(&id, origin);
            self.resolve(&reg, &to)
        };
        let mut delivered = 0u64;
        if !targets.ws.is_empty() {
            let mut framed = payload.clone();
            framed.insert("type".into(), Value::String("command".into()));
            let text = Utf8Bytes::from(Value::Object(framed).to_string());
            for tx in &targets.ws {
                if tx.try_send(text.clone()).is_ok() {
                    delivered += 1;
                }
            }
        }
        let payload = Value::Object(payload);
        for (ns, sid) in &targets.sio {
            let sent = io
                .of(ns.path())
                .and_then(|op| op.get_socket(*sid))
                .is_some_and(|s| s.emit("command", &payload).is_ok());
            delivered += u64::from(sent);
        }
        for (ns, expected) in &targets.rooms {
            let Some(op) = io.of(ns.path()) else { continue };
            delivered += match op.to(AGENTS_ROOM).emit("command", &payload).await {
                Ok(()) => *expected,
                Err(BroadcastError::Socket(failed)) => expected.saturating_sub(failed.len() as u64),
                Err(_) => 0,
            };
        }
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        Ok((id, delivered))
    }

    /// Counts a result and forwards it to its command's sender (as a
    /// Socket.IO `result` event or a `{"type":"result",…}` frame).
    fn result(&self, io: &SocketIo, mut payload: Value) {
        self.count(&self.results);
        let Some(obj) = payload.as_object_mut() else {
            return;
        };
        obj.remove("type");
        let Some(key) = obj.get("command_id").and_then(id_text) else {
            return;
        };
        let sink = {
            let reg = self.reg.lock();
            match reg.pending.get(key.as_str()) {
                Some(Origin::Ws(seq)) => reg.sink(*seq),
                Some(Origin::Sio(ns, sid)) => Some(Sink::Sio(*ns, *sid)),
                Some(Origin::Http) | None => None,
            }
        };
        match sink {
            Some(Sink::Ws(tx)) => {
                obj.insert("type".into(), Value::String("result".into()));
                let _ = tx.try_send(Utf8Bytes::from(payload.to_string()));
            }
            Some(Sink::Sio(ns, sid)) => {
                if let Some(s) = io.of(ns.path()).and_then(|op| op.get_socket(sid)) {
                    let _ = s.emit("result", &payload);
                }
            }
            None => {}
        }
    }

    /// Ends these connections; returns how many.
    fn end(&self, io: &SocketIo, enders: Vec<Ender>) -> usize {
        let n = enders.len();
        for e in enders {
            match e {
                Ender::Kill(k) => k.fire(),
                Ender::Disconnect(ns, sid) => {
                    if let Some(s) = io.of(ns.path()).and_then(|op| op.get_socket(sid)) {
                        let _ = s.disconnect();
                    }
                }
            }
        }
        n
    }
}

fn agent_id(data: &Value) -> Result<String, String> {
    data.get("id").and_then(id_text).ok_or_else(|| {
        format!(
            "register needs an `id`: a non-empty string of at most {MAX_ID_LEN} bytes, or a number"
        )
    })
}

// ---------------------------------------------------------------------------
// Socket.IO handlers

#[derive(Debug)]
struct Rejected(&'static str);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Runs before the namespace CONNECT is answered: checks the auth payload
/// and installs the event handlers, so none of the client's first events
/// can arrive before them.
async fn sio_admit(
    s: SocketRef,
    SioState(core): SioState<Arc<Core>>,
    TryData(auth): TryData<Value>,
) -> Result<(), Rejected> {
    if auth
        .as_ref()
        .is_ok_and(|a| a.get("reject").and_then(Value::as_bool) == Some(true))
    {
        return Err(Rejected("rejected by request (auth.reject = true)"));
    }
    if core.refusing() {
        return Err(Rejected("hub restarting"));
    }
    s.on("register", sio_register);
    s.on("heartbeat", sio_heartbeat);
    s.on("status", sio_status);
    s.on("result", sio_result);
    s.on("command", sio_command);
    s.on_disconnect(sio_disconnect);
    Ok(())
}

async fn sio_connected(s: SocketRef, SioState(core): SioState<Arc<Core>>) {
    core.ensure_sio(&s);
}

/// Marks a Socket.IO socket whose disconnect handler has run.
#[derive(Clone)]
struct Gone;

async fn sio_disconnect(s: SocketRef, SioState(core): SioState<Arc<Core>>) {
    s.extensions.insert(Gone);
    core.remove_sio(Ns::of(s.ns()), s.id);
}

async fn sio_register(
    s: SocketRef,
    io: SocketIo,
    SioState(core): SioState<Arc<Core>>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let id = match data.map_err(|e| e.to_string()).and_then(|d| agent_id(&d)) {
        Ok(id) => id,
        Err(e) => {
            let _ = ack.send(&json!({ "ok": false, "error": e }));
            return;
        }
    };
    let Some(seq) = core.ensure_sio(&s) else {
        return;
    };
    let outcome = core.reg.lock().register(seq, &id);
    match outcome {
        Ok(superseded) => {
            s.join(AGENTS_ROOM);
            if let Some((ns, sid)) = superseded {
                if let Some(old) = io.of(ns.path()).and_then(|op| op.get_socket(sid)) {
                    old.leave(AGENTS_ROOM);
                }
            }
            let _ = ack.send(&json!({ "ok": true, "id": id }));
        }
        Err(e) => {
            let _ = ack.send(&json!({ "ok": false, "error": e }));
        }
    }
}

async fn sio_heartbeat(SioState(core): SioState<Arc<Core>>, ack: AckSender) {
    core.count(&core.heartbeats);
    let _ = ack.send(&json!({ "ok": true, "ts": unix_ms() }));
}

async fn sio_status(SioState(core): SioState<Arc<Core>>, ack: AckSender) {
    core.count(&core.statuses);
    let _ = ack.send(&json!({ "ok": true }));
}

async fn sio_result(
    io: SocketIo,
    SioState(core): SioState<Arc<Core>>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    core.result(&io, data.unwrap_or(Value::Null));
    let _ = ack.send(&json!({ "ok": true }));
}

async fn sio_command(
    s: SocketRef,
    io: SocketIo,
    SioState(core): SioState<Arc<Core>>,
    TryData(data): TryData<Value>,
    ack: AckSender,
) {
    let origin = Origin::Sio(Ns::of(s.ns()), s.id);
    let reply = match data.map_err(|e| e.to_string()) {
        Ok(payload) => match core.command(&io, payload, origin).await {
            Ok((id, n)) => json!({ "id": id, "delivered": n }),
            Err(e) => json!({ "delivered": 0, "error": e }),
        },
        Err(e) => json!({ "delivered": 0, "error": e }),
    };
    let _ = ack.send(&reply);
}

// ---------------------------------------------------------------------------
// The hub

/// The hub: registry, counters, the Socket.IO server and its routes. One
/// per target; see the [module docs](self).
pub struct Hub {
    core: Arc<Core>,
    io: SocketIo,
    svc: SocketIoService<NotFound>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// A hub with the ping settings of `config` (they are fixed for its
    /// lifetime).
    pub fn new(config: &TargetConfig) -> Arc<Hub> {
        let core = Arc::new(Core {
            start: Instant::now(),
            refuse_until: AtomicU64::new(0),
            commands: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            results: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            statuses: AtomicU64::new(0),
            next_command: AtomicU64::new(1),
            reg: Mutex::new(Registry::default()),
        });
        let (svc, io) = SocketIo::builder()
            .ping_interval(config.hub_ping_interval)
            .ping_timeout(config.hub_ping_timeout)
            .ws_read_buffer_size(READ_BUFFER)
            .ws_max_message_size(MAX_MESSAGE)
            .max_payload(MAX_MESSAGE as u64)
            .with_state(core.clone())
            .build_with_inner_svc(NotFound);
        for ns in NAMESPACES {
            io.ns(ns, sio_connected.with(sio_admit));
        }
        Arc::new(Hub { core, io, svc })
    }

    /// The counters now.
    pub fn stats(&self) -> HubStats {
        let c = &self.core;
        let (connected, registered) = {
            let reg = c.reg.lock();
            (
                reg.conns.len() as u64 - reg.closing,
                reg.agents.len() as u64,
            )
        };
        HubStats {
            connected,
            registered,
            commands: c.commands.load(Ordering::Relaxed),
            delivered: c.delivered.load(Ordering::Relaxed),
            results: c.results.load(Ordering::Relaxed),
            heartbeats: c.heartbeats.load(Ordering::Relaxed),
            statuses: c.statuses.load(Ordering::Relaxed),
            refusing: c.refusing(),
        }
    }

    /// True while a restart refuses new connections.
    pub fn is_refusing(&self) -> bool {
        self.core.refusing()
    }

    /// Disconnects `fraction` (0..=1, rounded to the nearest whole
    /// connection) of the live connections of both kinds, spread evenly
    /// over them in connection order; returns how many.
    pub fn kick(&self, fraction: f64) -> Result<usize, String> {
        if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
            return Err(format!("fraction must be between 0 and 1, got {fraction}"));
        }
        let enders = {
            let mut reg = self.core.reg.lock();
            let live: Vec<u64> = reg
                .conns
                .iter()
                .filter(|(_, c)| !c.closing)
                .map(|(seq, _)| *seq)
                .collect();
            let n = live.len();
            let k = ((fraction * n as f64).round() as usize).min(n);
            let mut enders = Vec::with_capacity(k);
            for (i, seq) in live.iter().enumerate() {
                // Picks exactly k of n, evenly spaced (every n/k-th).
                if (i + 1) * k / n > i * k / n {
                    enders.extend(reg.mark_closing(*seq));
                }
            }
            enders
        };
        Ok(self.core.end(&self.io, enders))
    }

    /// Closes every hub connection and refuses new ones (HTTP 503) for
    /// `refuse_for`; returns how many were closed.
    pub fn restart(&self, refuse_for: Duration) -> usize {
        let until = self
            .core
            .now_nanos()
            .saturating_add(refuse_for.as_nanos().min(u64::MAX as u128) as u64);
        self.core.refuse_until.fetch_max(until, Ordering::AcqRel);
        self.close_all()
    }

    /// Ends every connection: plain WebSockets, Socket.IO WebSocket
    /// transports (each once, in a namespace or not) and long-polling
    /// sockets; returns how many.
    fn close_all(&self) -> usize {
        let enders = {
            let mut reg = self.core.reg.lock();
            let seqs: Vec<u64> = reg.conns.keys().copied().collect();
            let mut enders = Vec::with_capacity(seqs.len());
            for seq in seqs {
                let via_transport = reg.conns.get(&seq).is_some_and(|c| {
                    matches!(c.link, Link::Sio(..)) && reg.kill_switch(c).is_some()
                });
                if let Some(e) = reg.mark_closing(seq) {
                    if !via_transport {
                        enders.push(e);
                    }
                }
            }
            enders.extend(reg.transports.values().map(|k| Ender::Kill(k.clone())));
            enders
        };
        self.core.end(&self.io, enders)
    }

    /// Fans out a command (`{id, to, data, …}`) as the HTTP endpoint does;
    /// returns its id and how many agents it reached.
    pub async fn send_command(&self, command: Value) -> Result<(String, u64), String> {
        self.core.command(&self.io, command, Origin::Http).await
    }

    /// Refuses new connections for good and closes every connection
    /// (including long-polling Engine.IO sessions), waiting at most 2 s.
    pub async fn shutdown(&self) {
        self.core.refuse_until.store(u64::MAX, Ordering::Release);
        self.close_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.close()).await;
    }

    /// The hub's own routes: `/ws`, `/socket.io/`, `/admin/hub/*`.
    /// (`POST /api/commands` is added with the `/api` routes, under the knobs.)
    pub(crate) fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/ws", get(ws_entry))
            .route("/socket.io", any(sio_entry))
            .route("/socket.io/", any(sio_entry))
            .route("/admin/hub/kick", post(hub_admin::kick))
            .route("/admin/hub/restart", post(hub_admin::restart))
            .route("/admin/hub/stats", get(hub_admin::stats))
            .with_state(self.clone())
    }
}

type St = State<Arc<Hub>>;

/// What socketioxide answers for paths outside its own (never reached: it
/// is only routed `/socket.io/`).
#[derive(Debug, Clone, Copy)]
struct NotFound;

impl<B> hyper::service::Service<axum::http::Request<B>> for NotFound {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response, Self::Error>>;

    fn call(&self, _: axum::http::Request<B>) -> Self::Future {
        std::future::ready(Ok(error(StatusCode::NOT_FOUND, "not found")))
    }
}

fn refused() -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "hub restarting");
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// `POST /api/commands` → 202 `{"id", "delivered"}`, 400 on a bad command.
pub(crate) async fn post_command(State(hub): St, body: Bytes) -> Response {
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("body is not valid JSON: {e}"),
            )
        }
    };
    match hub.send_command(payload).await {
        Ok((id, n)) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "delivered": n })),
        )
            .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e),
    }
}

// ---------------------------------------------------------------------------
// Socket.IO entry: WebSocket upgrades are done here so the stream can be
// wrapped with a kill switch; everything else goes to socketioxide as is.

fn query_has(query: &str, key: &str, value: &str) -> bool {
    query
        .split('&')
        .any(|pair| pair.split_once('=') == Some((key, value)))
}

fn header_has_token(req: &Request, name: header::HeaderName, token: &str) -> bool {
    req.headers().get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// The request head with its own copies of the URI and headers, and no
/// extensions but hyper's upgrade handle. Engine.IO keeps the head of a session's first request for
/// the session's lifetime, and hyper's parsed URI and header values share
/// the connection's read buffer (8 to 16 KiB): copying them lets that
/// buffer go, which more than halves the memory an idle Socket.IO agent
/// costs.
fn compact(mut parts: axum::http::request::Parts) -> axum::http::request::Parts {
    let (mut fresh, ()) = axum::http::Request::new(()).into_parts();
    if let Some(upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() {
        fresh.extensions.insert(upgrade);
    }
    fresh.method = parts.method;
    fresh.version = parts.version;
    fresh.uri = axum::http::Uri::try_from(parts.uri.to_string()).unwrap_or_default();
    fresh.headers.reserve(parts.headers.len());
    let mut name = None;
    for (k, v) in parts.headers {
        // Repeated values of one header come with `None` as their name.
        if let Some(k) = k {
            name = Some(k);
        }
        let Some(k) = &name else { continue };
        let k = header::HeaderName::from_bytes(k.as_str().as_bytes());
        if let (Ok(k), Ok(v)) = (k, HeaderValue::from_bytes(v.as_bytes())) {
            fresh.headers.append(k, v);
        }
    }
    fresh
}

async fn sio_entry(State(hub): St, mut req: Request) -> Response {
    if hub.core.refusing() {
        return refused();
    }
    let query = req.uri().query().unwrap_or("");
    let ws = query_has(query, "transport", "websocket")
        && query_has(query, "EIO", "4")
        && req.method() == axum::http::Method::GET
        && header_has_token(&req, header::UPGRADE, "websocket")
        && header_has_token(&req, header::CONNECTION, "upgrade");
    // An upgrade from long-polling names its session.
    let upgraded = query
        .split('&')
        .find_map(|p| p.strip_prefix("sid="))
        .map(|sid| sid.parse::<Sid>());
    let key = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned();
    if let (true, Some(key), None | Some(Ok(_))) = (ws, key, &upgraded) {
        let upgraded = upgraded.and_then(Result::ok);
        let on_upgrade = hyper::upgrade::on(&mut req);
        let kill = Arc::new(KillSwitch::default());
        let listed = {
            let mut reg = hub.core.reg.lock();
            reg.next_transport += 1;
            let id = reg.next_transport;
            reg.transports.insert(id, kill.clone());
            if let Some(sid) = upgraded {
                reg.upgraded.insert(sid, kill.clone());
            }
            TransportGuard {
                core: hub.core.clone(),
                id,
                upgraded,
            }
        };
        let (parts, _) = req.into_parts();
        let mut parts = compact(parts);
        parts.extensions.insert(KillHandle(kill.clone()));
        let svc = hub.svc.clone();
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let io = Killable {
                        io: TokioIo::new(upgraded),
                        kill,
                        _listed: listed,
                    };
                    let req = axum::http::Request::from_parts(parts, ());
                    if let Err(e) = svc.call((io, req)).await {
                        tracing::debug!("hub: socket.io websocket refused: {e}");
                    }
                }
                Err(e) => tracing::debug!("hub: socket.io upgrade failed: {e}"),
            }
        });
        let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Body::empty())
            .expect("static headers");
    }
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(compact(parts), body);
    match svc_call(&hub, req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

async fn svc_call(hub: &Hub, req: Request) -> Result<Response, std::convert::Infallible> {
    let r = hub.svc.call(req).await?;
    Ok(r.map(Body::new))
}

// ---------------------------------------------------------------------------
// Plain WebSocket

async fn ws_entry(State(hub): St, ws: WebSocketUpgrade) -> Response {
    if hub.core.refusing() {
        return refused();
    }
    ws.read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_message_size(MAX_MESSAGE)
        .max_frame_size(MAX_MESSAGE)
        .on_upgrade(move |socket| ws_conn(hub, socket))
}

/// Removes a plain WebSocket connection from the registry when its task ends.
struct WsGuard {
    core: Arc<Core>,
    seq: u64,
}

impl Drop for WsGuard {
    fn drop(&mut self) {
        self.core.reg.lock().remove(self.seq);
    }
}

async fn ws_conn(hub: Arc<Hub>, mut socket: WebSocket) {
    if hub.core.refusing() {
        return;
    }
    let (tx, mut rx) = mpsc::channel(WS_QUEUE);
    let kill = Arc::new(KillSwitch::default());
    let seq = hub.core.reg.lock().insert(Link::Ws(tx), Some(kill.clone()));
    let _guard = WsGuard {
        core: hub.core.clone(),
        seq,
    };
    loop {
        tokio::select! {
            _ = kill.fired() => return,
            out = rx.recv() => match out {
                Some(text) => {
                    if socket.send(Message::Text(text)).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => {
                    if let Some(reply) = ws_message(&hub, seq, &text).await {
                        let reply = Utf8Bytes::from(reply.to_string());
                        if socket.send(Message::Text(reply)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    let reply = json!({ "type": "error", "error": "expected JSON text frames" });
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
            },
        }
    }
}

/// Handles one plain-WebSocket frame; returns the reply, if any.
async fn ws_message(hub: &Hub, seq: u64, text: &str) -> Option<Value> {
    let core = &hub.core;
    let err = |e: String| Some(json!({ "type": "error", "error": e }));
    let msg: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return err("expected a JSON object with a `type`".into()),
        Err(e) => return err(format!("not valid JSON: {e}")),
    };
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
    match kind {
        "register" => {
            let id = match agent_id(&msg) {
                Ok(id) => id,
                Err(e) => return err(e),
            };
            let outcome = core.reg.lock().register(seq, &id);
            match outcome {
                Ok(superseded) => {
                    if let Some((ns, sid)) = superseded {
                        if let Some(old) = hub.io.of(ns.path()).and_then(|op| op.get_socket(sid)) {
                            old.leave(AGENTS_ROOM);
                        }
                    }
                    Some(json!({ "type": "registered", "id": id }))
                }
                Err(e) => err(e),
            }
        }
        "heartbeat" => {
            core.count(&core.heartbeats);
            Some(json!({ "type": "heartbeat_ack", "ts": unix_ms() }))
        }
        "status" => {
            core.count(&core.statuses);
            None
        }
        "result" => {
            core.result(&hub.io, msg);
            None
        }
        "command" => {
            let mut payload = msg;
            if let Some(o) = payload.as_object_mut() {
                o.remove("type");
            }
            match core.command(&hub.io, payload, Origin::Ws(seq)).await {
                Ok((id, n)) => Some(json!({ "type": "command_ack", "id": id, "delivered": n })),
                Err(e) => err(e),
            }
        }
        other => err(format!(
            "unknown type `{other}`: expected register, heartbeat, status, result or command"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_parses_every_form() {
        assert_eq!(parse_to(None).unwrap(), To::All);
        assert_eq!(parse_to(Some(&json!("agents"))).unwrap(), To::All);
        assert_eq!(
            parse_to(Some(&json!(["a1", 7]))).unwrap(),
            To::Ids(vec!["a1".into(), "7".into()])
        );
        assert_eq!(
            parse_to(Some(&json!({"sample": 3}))).unwrap(),
            To::Sample(3)
        );
        for bad in [
            json!("everyone"),
            json!({"sample": -1}),
            json!({"sample": 1, "x": 2}),
            json!([{}]),
            json!(3),
        ] {
            assert!(parse_to(Some(&bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pending_commands_are_bounded() {
        let mut reg = Registry::default();
        for i in 0..MAX_PENDING_COMMANDS + 10 {
            reg.remember(&format!("c{i}"), Origin::Http);
        }
        assert_eq!(reg.pending.len(), MAX_PENDING_COMMANDS);
        assert_eq!(reg.pending_order.len(), MAX_PENDING_COMMANDS);
        assert!(!reg.pending.contains_key("c0"));
        assert!(reg.pending.contains_key("c10"));
    }

    #[test]
    fn registering_an_id_again_moves_it() {
        let mut reg = Registry::default();
        let (tx, _rx) = mpsc::channel(1);
        let a = reg.insert(Link::Ws(tx.clone()), Some(Arc::default()));
        let b = reg.insert(Link::Ws(tx), Some(Arc::default()));
        reg.register(a, "x").unwrap();
        reg.register(b, "x").unwrap();
        assert_eq!(reg.agents.len(), 1);
        assert_eq!(reg.agents["x"], b);
        assert!(reg.conns[&a].agent.is_none());
        reg.register(a, "y").unwrap();
        assert!(reg.mark_closing(a).is_some());
        assert_eq!(reg.agents.len(), 1);
        assert_eq!(reg.closing, 1);
        reg.remove(a);
        reg.remove(b);
        assert!(reg.conns.is_empty() && reg.agents.is_empty());
        assert_eq!(reg.closing, 0);
    }

    #[test]
    fn a_hub_is_built_outside_a_runtime() {
        let hub = Hub::new(&TargetConfig::default());
        assert_eq!(hub.stats().connected, 0);
        assert!(!hub.is_refusing());
        assert!(hub.kick(2.0).is_err());
        assert_eq!(hub.kick(1.0), Ok(0));
    }

    /// A hub holding `n` live connections (plain WebSockets and Socket.IO
    /// sockets alternating, as the registry holds them), and the kill
    /// switch of each, in connection order.
    fn hub_with(n: usize) -> (Arc<Hub>, Vec<Arc<KillSwitch>>, mpsc::Receiver<Utf8Bytes>) {
        let hub = Hub::new(&TargetConfig::default());
        let (tx, rx) = mpsc::channel(1);
        let mut kills = Vec::new();
        {
            let mut reg = hub.core.reg.lock();
            for i in 0..n {
                let kill = Arc::new(KillSwitch::default());
                let link = if i % 2 == 0 {
                    Link::Ws(tx.clone())
                } else {
                    Link::Sio(Ns::Root, Sid::new())
                };
                let seq = reg.insert(link, Some(kill.clone()));
                reg.register(seq, &format!("a{i}")).unwrap();
                kills.push(kill);
            }
        }
        assert_eq!(hub.stats().connected, n as u64);
        (hub, kills, rx)
    }

    fn fired(kills: &[Arc<KillSwitch>]) -> Vec<usize> {
        (0..kills.len()).filter(|&i| kills[i].is_fired()).collect()
    }

    /// `Hub::kick` on a real registry: round(fraction × n) connections (half
    /// away from zero), every n/k-th in connection order, their kill
    /// switches fired, the rest untouched; a second kick only reaches the
    /// connections still live.
    #[test]
    fn kick_ends_exactly_the_rounded_fraction_evenly_spread() {
        // (n, fraction, indices kicked): worked by hand from the doc comment.
        let cases: [(usize, f64, &[usize]); 16] = [
            (0, 0.5, &[]),
            (1, 0.49, &[]),
            (1, 0.5, &[0]),
            (3, 1.0 / 3.0, &[2]),
            (3, 0.5, &[1, 2]),
            (4, 0.0, &[]),
            (4, 0.1, &[]),
            (4, 0.125, &[3]),
            (4, 0.5, &[1, 3]),
            (5, 1.0, &[0, 1, 2, 3, 4]),
            (7, 0.5, &[1, 3, 5, 6]),
            (10, 0.25, &[3, 6, 9]),
            (10, 0.34, &[3, 6, 9]),
            (10, 0.9, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (30, 0.34, &[2, 5, 8, 11, 14, 17, 20, 23, 26, 29]),
            (30, 0.05, &[14, 29]),
        ];
        for (n, fraction, want) in cases {
            let (hub, kills, _rx) = hub_with(n);
            let what = format!("kick({fraction}) of {n}");
            assert_eq!(hub.kick(fraction), Ok(want.len()), "{what}");
            assert_eq!(fired(&kills), want, "{what}");
            let st = hub.stats();
            assert_eq!(st.connected, (n - want.len()) as u64, "{what}");
            assert_eq!(st.registered, (n - want.len()) as u64, "{what}");
            // Kicked connections are closing: a full kick reaches the others only.
            assert_eq!(hub.kick(1.0), Ok(n - want.len()), "{what}, then kick(1)");
            assert_eq!(fired(&kills), (0..n).collect::<Vec<_>>(), "{what}");
            assert_eq!(hub.stats().connected, 0, "{what}");
            assert_eq!(hub.kick(1.0), Ok(0), "{what}, nothing left");
        }
        let (hub, kills, _rx) = hub_with(4);
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(hub.kick(bad).is_err(), "{bad}");
        }
        assert_eq!(fired(&kills), Vec::<usize>::new());
        assert_eq!(hub.stats().connected, 4);
    }
}
