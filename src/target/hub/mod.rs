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
//! The heartbeat ack's `ts` (both protocols) is the hub's wall clock in
//! whole Unix milliseconds: stampede's agents measure their clock offset
//! against it (`engine::hub::clock`, `meta.clock` of a run), which bounds
//! the clock skew of a run split across hosts. It stays a whole number, as
//! clients may read it as an integer.
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
//! `/api` knobs) → 202 `{"id":…,"delivered":n}`. The admin endpoints
//! (kick, restart, stats) are in [`http`].
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
//!
//! # Layout
//!
//! - This file: the limits, [`HubStats`], the shared core (counters, the
//!   refusal deadline, the registry lock) and [`Hub`], which builds the
//!   Socket.IO server and the routes.
//! - `registry.rs`: who is connected, as which agent, and where a
//!   command's results go back to.
//! - `command.rs`: commands (the `to` forms, ids) resolved against the
//!   registry and fanned out; results routed back to their sender.
//! - `socketio.rs`: the Socket.IO namespaces' event handlers and the
//!   `/socket.io/` entry that wraps WebSocket upgrades with a kill switch.
//! - `ws.rs`: the plain-WebSocket protocol at `/ws`.
//! - `kill.rs`: kill switches, and the stream wrapper a kill ends abruptly.
//! - `faults.rs`: kicks, restarts and shutdown: the hub's fault knobs.
//! - `http.rs`: `POST /api/commands` and the `/admin/hub/*` endpoints.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::routing::{any, get, post};
use axum::Router;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use socketioxide::handler::ConnectHandler;
use socketioxide::service::SocketIoService;
use socketioxide::SocketIo;

use super::knobs::TargetConfig;

mod command;
mod faults;
pub mod http;
mod kill;
mod registry;
mod socketio;
mod ws;

pub use command::BadCommand;
pub(crate) use http::post_command;
use registry::{Origin, Registry};
use socketio::{sio_admit, sio_connected, sio_entry, NotFound};
use ws::ws_entry;

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

/// What every part of the hub shares: the counters, the refusal deadline
/// and the registry. Socketioxide hands it to the Socket.IO handlers as
/// their state; the rest reach it through [`Hub`].
pub(crate) struct Core {
    /// The clock `refuse_until` counts from.
    start: Instant,
    /// Refuse new connections until this many ns after `start`; 0 = no.
    refuse_until: AtomicU64,
    /// Commands received ([`HubStats::commands`]).
    commands: AtomicU64,
    /// Command messages handed to agents ([`HubStats::delivered`]).
    delivered: AtomicU64,
    /// Results received ([`HubStats::results`]).
    results: AtomicU64,
    /// Heartbeats received ([`HubStats::heartbeats`]).
    heartbeats: AtomicU64,
    /// Status messages received ([`HubStats::statuses`]).
    statuses: AtomicU64,
    /// The number in the next generated command id (`cmd-<n>`).
    next_command: AtomicU64,
    /// The connections, agents and command senders; one lock, held briefly.
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
}

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

    /// Fans out a command (`{id, to, data, …}`) as the HTTP endpoint does;
    /// returns its id and how many agents it reached.
    pub async fn send_command(&self, command: Value) -> Result<(String, u64), BadCommand> {
        self.core.command(&self.io, command, Origin::Http).await
    }

    /// The hub's own routes: `/ws`, `/socket.io/`, `/admin/hub/*`.
    /// (`POST /api/commands` is added with the `/api` routes, under the knobs.)
    pub(crate) fn routes(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/ws", get(ws_entry))
            .route("/socket.io", any(sio_entry))
            .route("/socket.io/", any(sio_entry))
            .route("/admin/hub/kick", post(http::kick))
            .route("/admin/hub/restart", post(http::restart))
            .route("/admin/hub/stats", get(http::stats))
            .with_state(self.clone())
    }
}

type St = State<Arc<Hub>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hub_is_built_outside_a_runtime() {
        let hub = Hub::new(&TargetConfig::default());
        assert_eq!(hub.stats().connected, 0);
        assert!(!hub.is_refusing());
        assert!(hub.kick(2.0).is_err());
        assert_eq!(hub.kick(1.0), Ok(0));
    }
}
