//! The hub half of the runtime scenario: agent populations, commanders,
//! their messages and the per-phase agent load, compiled from the model
//! (templates compiled, defaults filled in) and read by the engine.

use super::model::{ConnectRate, DropHow, HubProtocol};
use crate::protocol::net::SourceAddrs;
use crate::scenario::backoff::Backoff;
use crate::scenario::template::{JsonTemplate, Template};
use crate::units::DurRange;
use std::time::Duration;

/// Hub settings after defaults.
#[derive(Debug, Clone)]
pub struct HubSettings {
    pub timeout: Duration,
    pub sources: Option<SourcesAddrs>,
    pub recovered: f64,
    /// `[hub] disruption`: what makes a wave of unplanned losses a
    /// disruption.
    pub disruption: super::model::DisruptionSpec,
}

/// Source addresses for agent connections.
pub type SourcesAddrs = SourceAddrs;

/// What an agent waits for after sending a message.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    None,
    /// Socket.IO: an ack id is attached, the ACK packet answers.
    SocketIo,
    /// WebSocket: the next message whose type is this.
    Reply(String),
}

/// A compiled outgoing message.
#[derive(Debug, Clone)]
pub struct Message {
    pub event: String,
    /// JSON payload (Socket.IO: the event's argument; WebSocket: an object
    /// whose fields are merged after the type key). None: no payload.
    pub data: Option<JsonTemplate>,
    pub ack: Ack,
    /// The ack must contain these (subset match).
    pub matches: Option<serde_json::Value>,
}

/// A periodic message.
#[derive(Debug, Clone)]
pub struct Periodic {
    pub every: Duration,
    /// 0..=1: each period is `every · (1 ± jitter)`, uniformly.
    pub jitter: f64,
    pub message: Message,
}

/// How agents answer commands.
#[derive(Debug, Clone)]
pub struct OnCommand {
    pub event: String,
    pub reply: Option<String>,
    pub delay: DurRange,
    /// Extra JSON object fields of the reply (rendered into the object).
    pub data: Option<JsonTemplate>,
}

/// One compiled `[[agents]]` population.
#[derive(Debug, Clone)]
pub struct AgentPopulation {
    pub name: String,
    pub weight: u32,
    pub protocol: HubProtocol,
    /// Request path of the upgrade (Socket.IO: the Engine.IO path).
    pub path: String,
    /// Socket.IO namespace.
    pub namespace: String,
    pub auth: Option<JsonTemplate>,
    pub type_key: String,
    pub register: Option<Message>,
    pub heartbeat: Option<Periodic>,
    pub status: Option<Periodic>,
    pub on_command: Option<OnCommand>,
    pub reconnect: Backoff,
}

/// Where a commander's commands go.
#[derive(Debug, Clone)]
pub enum CommandVia {
    /// An event (Socket.IO) / message type (WebSocket) on its own hub connection.
    Hub {
        protocol: HubProtocol,
        path: String,
        namespace: String,
        type_key: String,
        event: String,
    },
    /// HTTP POST to the API.
    Api { path: Template },
}

/// A compiled `[[commanders]]`.
#[derive(Debug, Clone)]
pub struct Commander {
    pub name: String,
    pub via: CommandVia,
    /// The `to` value as JSON text.
    pub to: String,
    /// `to = { sample = n }` / a list: how many agents should receive each
    /// command (None: all registered).
    pub expected: Option<u64>,
    pub data: Option<JsonTemplate>,
    pub result: String,
    pub timeout: Duration,
}

/// A phase's agent population settings (already carried over from earlier phases).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentLoad {
    /// Agents connected during this phase.
    pub connected: u32,
    pub connect_rate: ConnectRate,
    pub drop: Option<Drop>,
}

/// A reconnect wave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Drop {
    pub fraction: f64,
    pub how: DropHow,
    /// Offset into the phase.
    pub at: Duration,
}
