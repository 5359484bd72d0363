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
    pub lost: Fraction,
    pub min: u32,
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
    #[schemars(with = "Option<String>")]
    pub event: Option<Spanned<String>>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
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
    pub base: PositiveDur,
    pub max: PositiveDur,
    pub factor: f64,
    pub jitter: Jitter,
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
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub protocol: HubProtocol,
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub auth: Option<Spanned<toml::Value>>,
    pub type_key: Option<String>,
    pub register: Option<MessageSpec>,
    pub heartbeat: Option<MessageSpec>,
    pub status: Option<MessageSpec>,
    pub on_command: Option<OnCommandSpec>,
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
    pub event: Option<String>,
    #[schemars(with = "Option<String>")]
    pub post: Option<Spanned<String>>,
    #[schemars(with = "Option<ToSpec>")]
    pub to: Option<Spanned<ToSpec>>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub data: Option<Spanned<toml::Value>>,
}

/// `[[commanders]]`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommanderSpec {
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub protocol: HubProtocol,
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    pub type_key: Option<String>,
    pub send: SendSpec,
    #[serde(default = "default_result_event")]
    pub result: String,
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
    pub fraction: Fraction,
    pub how: DropHow,
    /// Offset into the phase (default: its start).
    pub at: Option<Dur>,
}

/// A phase's `agents = { connected, connect_rate, drop }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentsLoadSpec {
    pub connected: Option<u32>,
    pub connect_rate: Option<ConnectRate>,
    pub drop: Option<DropSpec>,
}

/// A phase's `commanders = { rate }`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandersLoadSpec {
    pub rate: RateCurve,
}
