//! The hub half of the scenario file as written (serde model): `[hub]`,
//! `[[agents]]`, `[[commanders]]` and the phases' `agents` / `commanders`
//! loads. Unknown keys are refused; values with units are parsed by
//! [`crate::units`] while deserializing, so their errors carry the value's
//! span. A few enums ([`HubProtocol`], [`ConnectRate`], [`DropHow`]) are
//! used unchanged by the runtime form.

use crate::scenario::backoff::{Backoff, Jitter};
use crate::units::{Dur, DurRange, Fraction, PositiveDur, RateCurve};
use serde::{Deserialize, Deserializer};
use std::time::Duration;
use toml::Spanned;

/// `[hub]`: settings shared by every agent and hub commander.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    /// Limit of each handshake step (TCP, upgrade, open, CONNECT) and of each ack.
    pub timeout: PositiveDur,
    /// Source addresses: a count (`4` → 127.0.0.1..127.0.0.4), a list
    /// (`"127.0.0.1,127.0.0.2"`) or a range (`"127.0.0.1-127.0.0.8"`).
    #[schemars(with = "Option<SourcesSpec>")]
    pub sources: Option<Spanned<SourcesSpec>>,
    /// `hub.recovery`: from a drop until this fraction of the dropped agents
    /// are registered again.
    pub recovered: Fraction,
    /// What counts as a disruption nobody planned (a hub crash, a deploy):
    /// `{ lost = "5%", min = 5, within = "2s" }`.
    pub disruption: DisruptionSpec,
}

impl Default for HubSection {
    fn default() -> Self {
        HubSection {
            timeout: PositiveDur(Duration::from_secs(10)),
            sources: None,
            recovered: Fraction(0.99),
            disruption: DisruptionSpec::default(),
        }
    }
}

/// `[hub] disruption`: a wave of agents lost without a scenario drop is a
/// disruption when, within `within` of its first loss, at least `min`
/// agents and at least `lost` of the registered fleet were lost.
#[derive(Debug, Clone, Copy, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DisruptionSpec {
    /// At least this share of the registered fleet lost …
    pub lost: Fraction,
    /// … and at least this many agents …
    pub min: u32,
    /// … within this long of the first loss.
    pub within: PositiveDur,
}

impl Default for DisruptionSpec {
    fn default() -> Self {
        DisruptionSpec {
            lost: Fraction(0.05),
            min: 5,
            within: PositiveDur(Duration::from_secs(2)),
        }
    }
}

/// `sources = 4` or `sources = "127.0.0.1-127.0.0.8"`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum SourcesSpec {
    Count(u32),
    Text(String),
}

/// The wire protocol of an agent or hub commander.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
pub enum HubProtocol {
    /// Engine.IO v4 over WebSocket + Socket.IO v5.
    #[default]
    #[serde(rename = "socketio")]
    SocketIo,
    /// Plain WebSocket, JSON text frames tagged by `type_key`.
    #[serde(rename = "websocket")]
    WebSocket,
}

impl HubProtocol {
    pub fn name(self) -> &'static str {
        match self {
            HubProtocol::SocketIo => "socketio",
            HubProtocol::WebSocket => "websocket",
        }
    }
    pub(super) fn default_path(self) -> &'static str {
        match self {
            HubProtocol::SocketIo => "/socket.io/",
            HubProtocol::WebSocket => "/ws",
        }
    }
}

/// `ack = true` (Socket.IO ack id) or `ack = "registered"` (WebSocket: the
/// reply's type).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum AckSpec {
    Flag(bool),
    Reply(String),
}

/// A message an agent sends (register, heartbeat, status).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// The event (Socket.IO) or message type (WebSocket); `heartbeat` and
    /// `status` default to their own name.
    #[schemars(with = "Option<String>")]
    pub event: Option<Spanned<String>>,
    /// The payload (templates allowed).
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
    /// `true`: wait for the Socket.IO ack; a string: wait for a WebSocket
    /// reply of that type.
    #[schemars(with = "Option<AckSpec>")]
    pub ack: Option<Spanned<AckSpec>>,
    /// The ack (its first argument) must contain these keys and values.
    #[serde(rename = "match")]
    #[schemars(with = "Option<serde_json::Value>")]
    pub matches: Option<Spanned<toml::Value>>,
    /// Periodic messages: the period.
    pub every: Option<PositiveDur>,
    /// Periodic messages: each period varies by up to this fraction.
    pub jitter: Option<Fraction>,
}

/// `on_command`: how agents answer commands.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OnCommandSpec {
    /// The event (type) commands arrive as.
    #[serde(default = "default_command_event")]
    pub event: String,
    /// Event (type) of the reply; none: commands are only received.
    pub reply: Option<String>,
    /// Time between receipt and reply.
    pub delay: Option<DurRange>,
    /// Extra fields of the reply payload.
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
}

fn default_command_event() -> String {
    "command".into()
}
fn default_result_event() -> String {
    "result".into()
}
fn default_weight() -> u32 {
    1
}

/// `reconnect = { base, max, factor, jitter, max_attempts }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ReconnectSpec {
    /// The delay of the first retry (before jitter).
    pub base: PositiveDur,
    /// The cap of every delay.
    pub max: PositiveDur,
    /// Growth per attempt (2.0 doubles).
    pub factor: f64,
    /// How delays are spread: `none`, `full`, `equal` or `decorrelated`.
    pub jitter: Jitter,
    /// Attempts allowed after a drop; absent: for ever.
    pub max_attempts: Option<u32>,
}

impl Default for ReconnectSpec {
    fn default() -> Self {
        let d = Backoff::default();
        ReconnectSpec {
            base: PositiveDur(d.base),
            max: PositiveDur(d.max),
            factor: d.factor,
            jitter: d.jitter,
            max_attempts: d.max_attempts,
        }
    }
}

/// `[[agents]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// The population's name (metric tag `population`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Share of the fleet.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// `"socketio"` (Engine.IO v4 + Socket.IO v5) or `"websocket"` (JSON text
    /// frames).
    #[serde(default)]
    pub protocol: HubProtocol,
    /// The endpoint's path: default `/socket.io/` (socketio) or `/ws`
    /// (websocket).
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// The Socket.IO namespace (socketio).
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// The Socket.IO CONNECT payload (templates allowed, e.g.
    /// `{ token = "t-{{ agent.id }}" }`).
    #[schemars(with = "Option<serde_json::Value>")]
    pub auth: Option<Spanned<toml::Value>>,
    /// WebSocket: the JSON key that tags a message with its type (default
    /// `type`).
    pub type_key: Option<String>,
    /// Sent once connected: `{ event, data, ack, match }`.
    pub register: Option<MessageSpec>,
    /// Sent every `every` (with `jitter`): `{ every = "25s", ack = true }`.
    pub heartbeat: Option<MessageSpec>,
    /// Sent every `every` (with `jitter`), like `heartbeat`.
    pub status: Option<MessageSpec>,
    /// How commands are answered: `{ event, reply, delay, data }`.
    pub on_command: Option<OnCommandSpec>,
    /// The backoff after a lost connection: `{ base, max, factor, jitter,
    /// max_attempts }`.
    #[serde(default)]
    pub reconnect: ReconnectSpec,
}

/// `to = "agents"`, `to = { sample = 10 }` or `to = ["a-1", "a-2"]`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ToSpec {
    All(String),
    Sample { sample: u32 },
    Ids(Vec<String>),
}

/// `send = { event | post, to, data }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendSpec {
    /// Send through the hub, as this event (its own connection).
    pub event: Option<String>,
    /// Send through the API: POST to this path.
    #[schemars(with = "Option<String>")]
    pub post: Option<Spanned<String>>,
    /// The addressees: `"agents"` (all), `{ sample = 10 }` or a list of ids.
    #[schemars(with = "Option<ToSpec>")]
    pub to: Option<Spanned<ToSpec>>,
    /// The command's payload (templates allowed).
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
}

/// `[[commanders]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommanderSpec {
    /// The population's name (metric tag `population`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// `"socketio"` or `"websocket"` (as for agents).
    #[serde(default)]
    pub protocol: HubProtocol,
    /// The endpoint's path (as for agents).
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// The Socket.IO namespace (socketio).
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// WebSocket: the JSON key that tags a message with its type.
    pub type_key: Option<String>,
    /// What each command is and where it goes.
    pub send: SendSpec,
    /// The event (type) of the agents' results.
    #[serde(default = "default_result_event")]
    pub result: String,
    /// How long a command's fan-out and first result are waited for
    /// (default: `[hub] timeout`, at least 10s).
    pub timeout: Option<PositiveDur>,
}

/// `connect_rate = "500/s"` or `"max"`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ConnectRate {
    Max,
    PerSecond(f64),
}

impl schemars::JsonSchema for ConnectRate {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ConnectRate".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        use crate::units::schema::{rate_body, ALL_ZERO_RATE};
        schemars::json_schema!({
            "description": "New connections per second, minute or hour (`\"500/s\"`), or \
                `\"max\"`: a connection storm, all at once.",
            "anyOf": [
                { "const": "max" },
                {
                    "type": "string",
                    "pattern": format!("^{}$", rate_body()),
                    "not": { "type": "string", "pattern": ALL_ZERO_RATE },
                },
            ],
            "examples": ["500/s", "max"],
        })
    }
}

impl<'de> Deserialize<'de> for ConnectRate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim() == "max" {
            return Ok(ConnectRate::Max);
        }
        let rate = crate::units::parse_rate(&text).map_err(|e| {
            serde::de::Error::custom(format!("{e} (or \"max\" for a connection storm)"))
        })?;
        if rate <= 0.0 {
            return Err(serde::de::Error::custom(format!(
                "invalid connect_rate `{text}`: must be above 0/s (or \"max\")"
            )));
        }
        Ok(ConnectRate::PerSecond(rate))
    }
}

/// How a drop disconnects agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DropHow {
    /// The agent closes gracefully (Socket.IO DISCONNECT, WebSocket close).
    Close,
    /// The agent's TCP connection is reset (RST, no goodbye).
    Reset,
    /// The hub's admin endpoint kicks them.
    Server,
}

impl DropHow {
    pub fn name(self) -> &'static str {
        match self {
            DropHow::Close => "close",
            DropHow::Reset => "reset",
            DropHow::Server => "server",
        }
    }
}

/// `drop = { fraction, how, at }`.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DropSpec {
    /// The share of the registered agents dropped.
    pub fraction: Fraction,
    /// `close`, `reset` or `server` (the hub's kick endpoint).
    pub how: DropHow,
    /// Offset into the phase (default: its start).
    pub at: Option<Dur>,
}

/// A phase's `agents = { connected, connect_rate, drop }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsLoadSpec {
    /// Agents connected during the phase (they stay across phases).
    pub connected: Option<u32>,
    /// How fast they connect: `"500/s"`, or `"max"` for a connection
    /// storm.
    pub connect_rate: Option<ConnectRate>,
    /// Disconnect a share of them: `{ fraction, how, at }`.
    pub drop: Option<DropSpec>,
}

/// A phase's `commanders = { rate }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandersLoadSpec {
    /// Commands per second (or a ramp).
    pub rate: RateCurve,
}
