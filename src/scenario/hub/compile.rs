//! Model → runtime for the hub half: [`HubCompiler`] compiles an agent or a
//! commander (messages, templates, acks, reconnect policy), collecting every
//! error with its span for the scenario compiler to locate; [`sources`]
//! reads `[hub] sources`.

use super::model::{
    AckSpec, AgentSpec, CommanderSpec, HubProtocol, MessageSpec, SourcesSpec, ToSpec,
};
use super::runtime::{Ack, AgentPopulation, CommandVia, Commander, Message, OnCommand, Periodic};
use crate::protocol::net::SourceAddrs;
use crate::scenario::backoff::Backoff;
use crate::scenario::template::{JsonTemplate, Symbols, Template};
use crate::units::DurRange;
use std::time::Duration;
use toml::Spanned;

/// Compile messages of an agent or commander; errors as (span, message, help).
pub(crate) struct HubCompiler<'a> {
    pub symbols: Symbols<'a>,
    pub errors: Vec<(std::ops::Range<usize>, String, Option<String>)>,
}

impl HubCompiler<'_> {
    fn err(&mut self, span: std::ops::Range<usize>, msg: impl Into<String>, help: Option<&str>) {
        self.errors
            .push((span, msg.into(), help.map(str::to_owned)));
    }

    fn json(&mut self, value: &Spanned<toml::Value>, what: &str) -> Option<JsonTemplate> {
        match JsonTemplate::compile(value.get_ref(), &self.symbols) {
            Ok(t) => Some(t),
            Err(e) => {
                self.err(value.span(), format!("{what}: {e}"), None);
                None
            }
        }
    }

    fn object(&mut self, value: &Spanned<toml::Value>, what: &str) -> Option<JsonTemplate> {
        if !value.get_ref().is_table() {
            self.err(
                value.span(),
                format!("{what} is a table of fields, e.g. {{ id = \"a-{{{{ agent.id }}}}\" }}"),
                None,
            );
            return None;
        }
        self.json(value, what)
    }

    fn path(&mut self, path: &Option<Spanned<String>>, protocol: HubProtocol) -> String {
        match path {
            None => protocol.default_path().to_string(),
            Some(p) => {
                let text = p.get_ref();
                if !text.starts_with('/') || text.contains(char::is_whitespace) {
                    self.err(p.span(), format!("path `{text}` must start with `/`"), None);
                }
                text.clone()
            }
        }
    }

    fn namespace(&mut self, ns: &Option<Spanned<String>>, protocol: HubProtocol) -> String {
        match ns {
            None => "/".into(),
            Some(n) => {
                if protocol != HubProtocol::SocketIo {
                    self.err(n.span(), "`namespace` is for socketio agents only", None);
                }
                if let Err(e) = crate::protocol::socketio::validate_namespace(n.get_ref()) {
                    self.err(
                        n.span(),
                        e.to_string(),
                        Some("e.g. namespace = \"/agents\""),
                    );
                }
                n.get_ref().clone()
            }
        }
    }

    fn message(
        &mut self,
        spec: &MessageSpec,
        agent: &str,
        what: &str,
        default_event: &str,
        protocol: HubProtocol,
        anchor: std::ops::Range<usize>,
    ) -> Option<Message> {
        let event = spec
            .event
            .as_ref()
            .map_or(default_event.to_string(), |e| e.get_ref().clone());
        if event.is_empty() {
            let span = spec.event.as_ref().map_or(anchor.clone(), |e| e.span());
            self.err(
                span,
                format!("agents `{agent}`: {what}: the event is empty"),
                None,
            );
        }
        let data = match &spec.data {
            None => None,
            Some(d) if protocol == HubProtocol::WebSocket => {
                self.object(d, &format!("agents `{agent}`: {what} data"))
            }
            Some(d) => self.json(d, &format!("agents `{agent}`: {what} data")),
        };
        let ack = match &spec.ack {
            None => Ack::None,
            Some(a) => {
                match (a.get_ref(), protocol) {
                    (AckSpec::Flag(false), _) => Ack::None,
                    (AckSpec::Flag(true), HubProtocol::SocketIo) => Ack::SocketIo,
                    (AckSpec::Reply(t), HubProtocol::WebSocket) if !t.is_empty() => {
                        Ack::Reply(t.clone())
                    }
                    (_, HubProtocol::SocketIo) => {
                        self.err(
                        a.span(),
                        format!("agents `{agent}`: {what}: socketio acks are `ack = true` (Socket.IO ack ids)"),
                        None,
                    );
                        Ack::None
                    }
                    (_, HubProtocol::WebSocket) => {
                        self.err(
                        a.span(),
                        format!("agents `{agent}`: {what}: a websocket agent names the reply's type"),
                        Some("e.g. ack = \"registered\""),
                    );
                        Ack::None
                    }
                }
            }
        };
        let matches = match &spec.matches {
            None => None,
            Some(m) => {
                if ack == Ack::None {
                    self.err(
                        m.span(),
                        format!("agents `{agent}`: {what}: `match` needs an ack to match"),
                        Some("add ack = true (socketio) or ack = \"reply-type\" (websocket)"),
                    );
                }
                match serde_json::to_value(m.get_ref()) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        self.err(
                            m.span(),
                            format!("agents `{agent}`: {what}: match: {e}"),
                            None,
                        );
                        None
                    }
                }
            }
        };
        Some(Message {
            event,
            data,
            ack,
            matches,
        })
    }

    fn periodic(
        &mut self,
        spec: &Option<MessageSpec>,
        agent: &str,
        what: &str,
        protocol: HubProtocol,
        anchor: std::ops::Range<usize>,
    ) -> Option<Periodic> {
        let spec = spec.as_ref()?;
        let Some(every) = spec.every else {
            self.err(
                anchor,
                format!("agents `{agent}`: {what} needs `every` (e.g. every = \"25s\")"),
                None,
            );
            return None;
        };
        let message = self.message(spec, agent, what, what, protocol, anchor)?;
        Some(Periodic {
            every: every.0,
            jitter: spec.jitter.map_or(0.0, |j| j.0),
            message,
        })
    }

    pub fn agent(&mut self, spec: &AgentSpec) -> Option<AgentPopulation> {
        let name = spec.name.get_ref().clone();
        let anchor = spec.name.span();
        if name.trim().is_empty() {
            self.err(anchor.clone(), "an agent population's name is empty", None);
        }
        if spec.weight == 0 {
            self.err(
                anchor.clone(),
                format!("agents `{name}`: weight must be at least 1"),
                None,
            );
        }
        let protocol = spec.protocol;
        let path = self.path(&spec.path, protocol);
        let namespace = self.namespace(&spec.namespace, protocol);
        let auth = match &spec.auth {
            None => None,
            Some(a) => {
                if protocol != HubProtocol::SocketIo {
                    self.err(
                        a.span(),
                        "`auth` is the Socket.IO CONNECT payload: socketio agents only",
                        None,
                    );
                }
                self.object(a, &format!("agents `{name}`: auth"))
            }
        };
        if spec.type_key.is_some() && protocol != HubProtocol::WebSocket {
            self.err(
                anchor.clone(),
                format!("agents `{name}`: `type_key` is for websocket agents only"),
                None,
            );
        }
        let register = match &spec.register {
            None => None,
            Some(r) => {
                if r.every.is_some() || r.jitter.is_some() {
                    self.err(anchor.clone(), format!("agents `{name}`: register is sent once; `every` / `jitter` belong to heartbeat and status"), None);
                }
                self.message(r, &name, "register", "register", protocol, anchor.clone())
            }
        };
        let heartbeat = self.periodic(
            &spec.heartbeat,
            &name,
            "heartbeat",
            protocol,
            anchor.clone(),
        );
        let status = self.periodic(&spec.status, &name, "status", protocol, anchor.clone());
        let on_command = spec.on_command.as_ref().map(|c| OnCommand {
            event: c.event.clone(),
            reply: c.reply.clone(),
            delay: c.delay.unwrap_or(DurRange {
                min: Duration::ZERO,
                max: Duration::ZERO,
            }),
            data: c
                .data
                .as_ref()
                .and_then(|d| self.object(d, &format!("agents `{name}`: on_command data"))),
        });
        let r = &spec.reconnect;
        if !(r.factor.is_finite() && r.factor >= 1.0) {
            self.err(
                anchor.clone(),
                format!(
                    "agents `{name}`: reconnect factor must be at least 1.0 (got {})",
                    r.factor
                ),
                None,
            );
        }
        if r.base.0 > r.max.0 {
            self.err(
                anchor.clone(),
                format!("agents `{name}`: reconnect base is above its max"),
                None,
            );
        }
        Some(AgentPopulation {
            name,
            weight: spec.weight.max(1),
            protocol,
            path,
            namespace,
            auth,
            type_key: spec.type_key.clone().unwrap_or_else(|| "type".into()),
            register,
            heartbeat,
            status,
            on_command,
            reconnect: Backoff {
                base: r.base.0,
                max: r.max.0,
                factor: r.factor,
                jitter: r.jitter,
                max_attempts: r.max_attempts,
            },
        })
    }

    pub fn commander(
        &mut self,
        spec: &CommanderSpec,
        has_api: bool,
        has_hub: bool,
        default_timeout: Duration,
    ) -> Option<Commander> {
        let name = spec.name.get_ref().clone();
        let anchor = spec.name.span();
        let protocol = spec.protocol;
        let send = &spec.send;
        let via = match (&send.event, &send.post) {
            (Some(event), None) => {
                if !has_hub {
                    self.err(
                        anchor.clone(),
                        format!(
                            "commanders `{name}` sends through the hub, but [target] has no `hub`"
                        ),
                        Some("set hub = \"builtin\" or a hub URL"),
                    );
                }
                CommandVia::Hub {
                    protocol,
                    path: self.path(&spec.path, protocol),
                    namespace: self.namespace(&spec.namespace, protocol),
                    type_key: spec.type_key.clone().unwrap_or_else(|| "type".into()),
                    event: event.clone(),
                }
            }
            (None, Some(post)) => {
                if !has_api {
                    self.err(
                        post.span(),
                        format!("commanders `{name}` posts to the API, but [target] has no `api`"),
                        Some("set api = \"builtin\" or an API URL"),
                    );
                }
                if !post.get_ref().starts_with('/') {
                    self.err(post.span(), format!("commanders `{name}`: post = \"{}\" must be a path relative to [target] api", post.get_ref()), None);
                }
                let path = match Template::compile(post.get_ref(), &self.symbols) {
                    Ok(t) => t,
                    Err(e) => {
                        self.err(post.span(), format!("commanders `{name}`: {e}"), None);
                        return None;
                    }
                };
                CommandVia::Api { path }
            }
            _ => {
                self.err(anchor.clone(), format!("commanders `{name}`: send has exactly one of `event` (through the hub) or `post` (through the API)"), Some("e.g. send = { event = \"command\", to = \"agents\" }"));
                return None;
            }
        };
        let (to, expected) = match send.to.as_ref().map(|t| (t.get_ref(), t.span())) {
            None => ("\"agents\"".to_string(), None),
            Some((ToSpec::All(s), _)) if s == "agents" => ("\"agents\"".to_string(), None),
            Some((ToSpec::All(s), span)) => {
                self.err(span, format!("commanders `{name}`: to = \"{s}\": write \"agents\" (all registered agents), {{ sample = n }} or a list of agent ids"), None);
                ("\"agents\"".to_string(), None)
            }
            Some((ToSpec::Sample { sample }, span)) => {
                if *sample == 0 {
                    self.err(
                        span,
                        format!("commanders `{name}`: sample must be at least 1"),
                        None,
                    );
                }
                (format!("{{\"sample\":{sample}}}"), Some(u64::from(*sample)))
            }
            Some((ToSpec::Ids(ids), _)) => (
                serde_json::to_string(ids).unwrap_or_else(|_| "[]".into()),
                Some(ids.len() as u64),
            ),
        };
        let data = send
            .data
            .as_ref()
            .and_then(|d| self.json(d, &format!("commanders `{name}`: data")));
        Some(Commander {
            name,
            via,
            to,
            expected,
            data,
            result: spec.result.clone(),
            timeout: spec.timeout.map_or(default_timeout, |t| t.0),
        })
    }
}

/// Parse `[hub] sources`.
pub(crate) fn sources(spec: &SourcesSpec) -> Result<SourceAddrs, String> {
    match spec {
        SourcesSpec::Count(0) => Err("sources must be at least 1".into()),
        SourcesSpec::Count(n) if *n > 65_000 => Err(format!("sources = {n}: at most 65000")),
        SourcesSpec::Count(n) => Ok(SourceAddrs::loopback(*n)),
        SourcesSpec::Text(t) => SourceAddrs::parse(t).map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::scenario::hub::{Ack, ConnectRate, DropHow, HubProtocol};
    use crate::scenario::{load_str, HubTarget, Overrides, Scenario};
    use std::path::Path;
    use std::time::Duration;

    fn load(text: &str) -> Result<Scenario, String> {
        load_str(
            Path::new("s.toml"),
            Path::new("."),
            text,
            &Overrides::default(),
        )
        .map_err(|e| e.to_string())
    }

    const HEAD: &str = "name = \"h\"\n[target]\nhub = \"builtin\"\n";

    fn with(body: &str) -> String {
        format!("{HEAD}{body}")
    }

    const AGENT: &str = "[[agents]]\nname = \"a\"\n";
    const PHASE: &str =
        "[[phases]]\nname = \"p\"\nduration = \"1s\"\nagents = { connected = 10 }\n";

    #[test]
    fn a_full_agent_compiles_with_defaults_filled_in() {
        let s = load(&with(
            r#"
[[agents]]
name = "srv"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true, match = { ok = true } }
heartbeat = { every = "25s", jitter = "20%", ack = true }
status = { every = "10s", data = { load = "{{ rand(0, 100) }}" } }
on_command = { event = "command", reply = "result", delay = "5ms..50ms" }
reconnect = { base = "1s", max = "1m", factor = 3.0, jitter = "decorrelated", max_attempts = 7 }
[[agents]]
name = "plain"
protocol = "websocket"
register = { event = "register", ack = "registered" }
[[phases]]
name = "up"
duration = "10s"
agents = { connected = 100, connect_rate = "50/s" }
[[phases]]
name = "wave"
duration = "10s"
agents = { drop = { fraction = "33%", how = "server", at = "2s" } }
[[phases]]
name = "storm"
duration = "10s"
agents = { connected = 200, connect_rate = "max" }
"#,
        ))
        .unwrap();
        assert!(matches!(s.hub, Some(HubTarget::Builtin(_))));
        let srv = &s.agents[0];
        assert_eq!(
            (srv.protocol, srv.path.as_str(), srv.namespace.as_str()),
            (HubProtocol::SocketIo, "/socket.io/", "/")
        );
        let register = srv.register.as_ref().unwrap();
        assert_eq!(register.ack, Ack::SocketIo);
        assert_eq!(register.matches, Some(serde_json::json!({ "ok": true })));
        assert_eq!(srv.heartbeat.as_ref().unwrap().message.event, "heartbeat");
        assert_eq!(srv.heartbeat.as_ref().unwrap().jitter, 0.2);
        assert_eq!(srv.status.as_ref().unwrap().message.event, "status");
        assert_eq!(srv.reconnect.max_attempts, Some(7));
        assert_eq!(srv.reconnect.max, Duration::from_secs(60));
        let plain = &s.agents[1];
        assert_eq!(plain.path, "/ws");
        assert_eq!(
            plain.register.as_ref().unwrap().ack,
            Ack::Reply("registered".into())
        );
        // Phases carry the population over; a drop belongs to its phase only.
        let loads: Vec<_> = s.phases.iter().map(|p| p.agents.clone().unwrap()).collect();
        assert_eq!(loads[0].connected, 100);
        assert_eq!(loads[0].connect_rate, ConnectRate::PerSecond(50.0));
        assert_eq!(loads[1].connected, 100);
        let drop = loads[1].drop.unwrap();
        assert_eq!(
            (drop.how, drop.at),
            (DropHow::Server, Duration::from_secs(2))
        );
        assert!((drop.fraction - 0.33).abs() < 1e-9);
        assert_eq!(
            (loads[2].connected, loads[2].connect_rate),
            (200, ConnectRate::Max)
        );
        assert!(loads[2].drop.is_none());
    }

    #[test]
    fn hub_mistakes_are_located_and_explained() {
        let cases: [(String, &str); 12] = [
            (format!("name = \"h\"\n[target]\n{AGENT}{PHASE}"), "has no `hub`"),
            (with(&format!("{AGENT}protocol = \"mqtt\"\n{PHASE}")), "unknown variant `mqtt`"),
            (with(&format!("{AGENT}protocol = \"websocket\"\nregister = {{ event = \"r\", ack = true }}\n{PHASE}")), "names the reply's type"),
            (with(&format!("{AGENT}register = {{ event = \"r\", ack = \"ok\" }}\n{PHASE}")), "socketio acks are `ack = true`"),
            (with(&format!("{AGENT}register = {{ event = \"r\", match = {{ ok = true }} }}\n{PHASE}")), "`match` needs an ack"),
            (with(&format!("{AGENT}heartbeat = {{ ack = true }}\n{PHASE}")), "heartbeat needs `every`"),
            (with(&format!("{AGENT}[[phases]]\nname = \"p\"\nduration = \"1s\"\nagents = {{ connect_rate = \"fast\" }}\n")), "or \"max\""),
            (with(&format!("{AGENT}[[phases]]\nname = \"p\"\nduration = \"1s\"\nagents = {{ connect_rate = \"max\" }}\n")), "set `connected`"),
            (with("[[phases]]\nname = \"p\"\nduration = \"1s\"\nagents = { connected = 3 }\n"), "no [[agents]]"),
            (format!("name = \"h\"\n[target]\nhub = \"ws://127.0.0.1:9\"\n{AGENT}[[phases]]\nname = \"p\"\nduration = \"1s\"\nagents = {{ connected = 3, drop = {{ fraction = 0.5, how = \"server\" }} }}\n"), "no hub_admin"),
            (with(&format!("{AGENT}[[commanders]]\nname = \"c\"\nsend = {{ post = \"/api/commands\" }}\n{PHASE}")), "has no `api`"),
            (with(&format!("{AGENT}{PHASE}[slo]\n\"hub.recovery{{population=b}}.max\" = \"< 1s\"\n")), "no population is named `b`"),
        ];
        for (text, expected) in cases {
            let err = load(&text).expect_err(&text);
            assert!(
                err.contains(expected),
                "expected {expected:?} in:\n{err}\n--- for:\n{text}"
            );
            assert!(err.contains("s.toml:"), "not located: {err}");
        }
    }

    #[test]
    fn hub_urls_map_ws_to_http() {
        let s = load(&format!(
            "name = \"h\"\n[target]\nhub = \"wss://hub.example:8443\"\n{AGENT}{PHASE}"
        ))
        .unwrap();
        match s.hub {
            Some(HubTarget::Url(o)) => {
                assert_eq!(
                    (o.scheme.as_str(), o.host.as_str(), o.port),
                    ("https", "hub.example", 8443)
                )
            }
            other => panic!("{other:?}"),
        }
        let err = load("name = \"h\"\n[target]\nhub = \"mqtt://h:1\"\n").unwrap_err();
        assert!(err.contains("ws, wss, http or https"), "{err}");
    }
}
