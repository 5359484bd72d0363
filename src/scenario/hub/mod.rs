//! The hub half of a scenario: `[hub]`, `[[agents]]`, `[[commanders]]` and
//! the phases' `agents` / `commanders` loads — the serde model as written
//! and its compiled, runtime form.
//!
//! # Layout
//! - `model`: the serde model, as written.
//! - `runtime`: the compiled form the engine plays.
//! - `compile`: model → runtime, with located errors.
//!
//! ```toml
//! [hub]
//! timeout = "10s"        # connect + upgrade + open + namespace CONNECT; each ack
//! sources = 4            # agent connections from 127.0.0.1 .. 127.0.0.4
//! recovered = "99%"      # hub.recovery: drop -> this fraction registered again
//!
//! [[agents]]
//! name = "agent"
//! protocol = "socketio"  # or "websocket": JSON text frames {"type": event, ...data}
//! register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true, match = { ok = true } }
//! heartbeat = { every = "25s", jitter = "20%", ack = true }
//! status = { every = "10s", data = { load = "{{ rand(0, 100) }}" } }
//! on_command = { event = "command", reply = "result", delay = "5ms..50ms" }
//! reconnect = { base = "500ms", max = "30s", factor = 2.0, jitter = "full" }
//!
//! [[commanders]]
//! name = "ops"
//! send = { event = "command", to = "agents", data = { op = "update" } }
//!
//! [[phases]]
//! agents = { connected = 2000, connect_rate = "500/s" }   # or "max"
//! commanders = { rate = "5/s" }
//! # later: agents = { drop = { fraction = 0.33, how = "reset" } }
//! ```

mod compile;
mod model;
mod runtime;

pub(crate) use compile::{sources, HubCompiler};
pub use model::{
    AckSpec, AgentSpec, AgentsLoadSpec, CommanderSpec, CommandersLoadSpec, ConnectRate, DropHow,
    DropSpec, HubProtocol, HubSection, MessageSpec, OnCommandSpec, ReconnectSpec, SendSpec,
    SourcesSpec, ToSpec,
};
pub use runtime::{
    Ack, AgentLoad, AgentPopulation, CommandVia, Commander, Drop, HubSettings, Message, OnCommand,
    Periodic, SourcesAddrs,
};
