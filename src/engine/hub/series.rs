//! The hub's metric series, registered before the run so agents and
//! commanders record by index, and the `kind` tags they carry: why a
//! connection attempt failed ([`HubErrorKind`], `hub.errors{kind}`) and how
//! a connection that was up ended ([`DisconnectKind`],
//! `hub.disconnects{kind}`).

use crate::metrics::{CounterId, GaugeId, HistId, Layout};
use crate::scenario::Scenario;

/// Why a connection attempt (or a registration) failed: `hub.errors{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubErrorKind {
    ConnectRefused,
    Connect,
    Timeout,
    Tls,
    /// The upgrade was refused or the connection closed during it.
    Handshake,
    /// Malformed Engine.IO / Socket.IO / JSON.
    Protocol,
    /// CONNECT_ERROR (or, for an API commander, a non-2xx answer).
    Rejected,
    /// The register ack did not match.
    Register,
    Reset,
}

impl HubErrorKind {
    pub const ALL: [HubErrorKind; 9] = [
        HubErrorKind::ConnectRefused,
        HubErrorKind::Connect,
        HubErrorKind::Timeout,
        HubErrorKind::Tls,
        HubErrorKind::Handshake,
        HubErrorKind::Protocol,
        HubErrorKind::Rejected,
        HubErrorKind::Register,
        HubErrorKind::Reset,
    ];
    pub fn name(self) -> &'static str {
        match self {
            HubErrorKind::ConnectRefused => "connect_refused",
            HubErrorKind::Connect => "connect",
            HubErrorKind::Timeout => "timeout",
            HubErrorKind::Tls => "tls",
            HubErrorKind::Handshake => "handshake",
            HubErrorKind::Protocol => "protocol",
            HubErrorKind::Rejected => "rejected",
            HubErrorKind::Register => "register",
            HubErrorKind::Reset => "reset",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a connection that was up ended: `hub.disconnects{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectKind {
    /// The server closed it (close frame, DISCONNECT, end of stream).
    ServerClose,
    Reset,
    /// The Socket.IO server stopped pinging.
    PingTimeout,
    Protocol,
    /// The scenario dropped it (`drop = { how = "close" | "reset" }`).
    Client,
}

impl DisconnectKind {
    pub const ALL: [DisconnectKind; 5] = [
        DisconnectKind::ServerClose,
        DisconnectKind::Reset,
        DisconnectKind::PingTimeout,
        DisconnectKind::Protocol,
        DisconnectKind::Client,
    ];
    pub fn name(self) -> &'static str {
        match self {
            DisconnectKind::ServerClose => "server_close",
            DisconnectKind::Reset => "reset",
            DisconnectKind::PingTimeout => "ping_timeout",
            DisconnectKind::Protocol => "protocol",
            DisconnectKind::Client => "client",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Series of one agent population.
#[derive(Debug, Clone)]
pub struct AgentIds {
    pub connects: CounterId,
    pub connect: HistId,
    pub errors: Vec<CounterId>,
    pub register: HistId,
    pub registrations: CounterId,
    /// `hub.message.rtt` of heartbeat (0) and status (1).
    pub rtt: [HistId; 2],
    pub disconnects: Vec<CounterId>,
    pub reconnect: HistId,
    pub reconnects: CounterId,
    pub attempts: HistId,
    pub delivery: HistId,
    pub received: CounterId,
}

/// Series of one commander.
#[derive(Debug, Clone)]
pub struct CommanderIds {
    pub connects: CounterId,
    pub connect: HistId,
    pub errors: Vec<CounterId>,
    pub disconnects: Vec<CounterId>,
    pub commands: CounterId,
    pub fanout: HistId,
    pub rtt: HistId,
    /// Commands fewer agents received than expected (by the timeout).
    pub undelivered: CounterId,
}

/// Every hub series of a run.
#[derive(Debug, Clone)]
pub struct HubIds {
    pub agents: Vec<AgentIds>,
    pub commanders: Vec<CommanderIds>,
    pub recovery: HistId,
    pub unrecovered: CounterId,
    pub connected: GaugeId,
    pub registered: GaugeId,
}

impl HubIds {
    /// Register the hub series (None when the scenario has no agents nor commanders).
    pub fn register(layout: &mut Layout, scenario: &Scenario) -> Option<HubIds> {
        if scenario.agents.is_empty() && scenario.commanders.is_empty() {
            return None;
        }
        let errors = |layout: &mut Layout, pop: &str| {
            HubErrorKind::ALL
                .iter()
                .map(|k| layout.add_counter("hub.errors", pop, "", Some(k.name())))
                .collect::<Vec<_>>()
        };
        let disconnects = |layout: &mut Layout, pop: &str| {
            DisconnectKind::ALL
                .iter()
                .map(|k| layout.add_counter("hub.disconnects", pop, "", Some(k.name())))
                .collect::<Vec<_>>()
        };
        let agents = scenario
            .agents
            .iter()
            .map(|a| {
                let pop = a.name.as_str();
                let hb = a
                    .heartbeat
                    .as_ref()
                    .map_or("heartbeat", |h| &h.message.event);
                let st = a.status.as_ref().map_or("status", |s| &s.message.event);
                AgentIds {
                    connects: layout.add_counter("hub.connects", pop, "", None),
                    connect: layout.add_hist("hub.connect", pop, ""),
                    errors: errors(layout, pop),
                    register: layout.add_hist("hub.register", pop, ""),
                    registrations: layout.add_counter("hub.registrations", pop, "", None),
                    rtt: [
                        layout.add_hist("hub.message.rtt", pop, hb),
                        layout.add_hist("hub.message.rtt", pop, st),
                    ],
                    disconnects: disconnects(layout, pop),
                    reconnect: layout.add_hist("hub.reconnect", pop, ""),
                    reconnects: layout.add_counter("hub.reconnects", pop, "", None),
                    attempts: layout.add_hist("hub.reconnect.attempts", pop, ""),
                    delivery: layout.add_hist("hub.command.delivery", pop, ""),
                    received: layout.add_counter("hub.command.received", pop, "", None),
                }
            })
            .collect();
        let commanders = scenario
            .commanders
            .iter()
            .map(|c| {
                let pop = c.name.as_str();
                CommanderIds {
                    connects: layout.add_counter("hub.connects", pop, "", None),
                    connect: layout.add_hist("hub.connect", pop, ""),
                    errors: errors(layout, pop),
                    disconnects: disconnects(layout, pop),
                    commands: layout.add_counter("hub.commands", pop, "", None),
                    fanout: layout.add_hist("hub.command.fanout", pop, ""),
                    rtt: layout.add_hist("hub.command.rtt", pop, ""),
                    undelivered: layout.add_counter("hub.command.undelivered", pop, "", None),
                }
            })
            .collect();
        Some(HubIds {
            agents,
            commanders,
            recovery: layout.add_hist("hub.recovery", "", ""),
            unrecovered: layout.add_counter(crate::slo::UNRECOVERED, "", "", None),
            connected: layout.add_gauge("hub.connected"),
            registered: layout.add_gauge("hub.registered"),
        })
    }
}
