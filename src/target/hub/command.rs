//! Commands and results: a command's `to` (`"agents"`, a list of ids,
//! `{"sample": n}`) and `id` are checked, resolved against the registry
//! and fanned out to plain WebSockets, single Socket.IO sockets and the
//! `agents` rooms; a result is routed back to its command's sender. The
//! same path serves the Socket.IO `command` event, the plain `command`
//! frame and `POST /api/commands`.

use std::sync::atomic::Ordering;

use axum::extract::ws::Utf8Bytes;
use rand::seq::SliceRandom;
use serde_json::Value;
use socketioxide::socket::Sid;
use socketioxide::{BroadcastError, SocketIo};
use tokio::sync::mpsc;

use super::registry::{Link, Ns, Origin, Registry, Sink};
use super::{Core, AGENTS_ROOM, MAX_ID_LEN};
use crate::target::state::with_rng;

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

/// The forms `to` takes, as error messages name them.
const TO_FORMS: &str = "`to` must be \"agents\", a list of agent ids or {\"sample\": n}";

/// Why a command was refused, with the offending field as sent (JSON
/// text). Display is the message the sender gets: the ack's or the
/// `command_ack` frame's `error`, or the 400 body of `POST /api/commands`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadCommand {
    /// The command is not a JSON object.
    #[error("a command is a JSON object {{id, to, data}}")]
    NotAnObject,
    /// `to` is none of its forms.
    #[error("{}", TO_FORMS)]
    To { value: String },
    /// An item of a `to` list is not an agent id.
    #[error("{}; bad agent id {value}", TO_FORMS)]
    AgentId { value: String },
    /// `id` is neither a short non-empty string nor a number.
    #[error(
        "`id` must be a non-empty string of at most {} bytes, or a number",
        MAX_ID_LEN
    )]
    Id { value: String },
}

fn parse_to(v: Option<&Value>) -> Result<To, BadCommand> {
    let bad_to = |v: &Value| BadCommand::To {
        value: v.to_string(),
    };
    match v {
        None | Some(Value::Null) => Ok(To::All),
        Some(Value::String(s)) if s == AGENTS_ROOM => Ok(To::All),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|i| {
                id_text(i).ok_or_else(|| BadCommand::AgentId {
                    value: i.to_string(),
                })
            })
            .collect::<Result<_, _>>()
            .map(To::Ids),
        Some(v @ Value::Object(o)) if o.len() == 1 => {
            match o.get("sample").and_then(Value::as_u64) {
                Some(n) => Ok(To::Sample(n.min(usize::MAX as u64) as usize)),
                None => Err(bad_to(v)),
            }
        }
        Some(v) => Err(bad_to(v)),
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

impl Core {
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
    pub(super) async fn command(
        &self,
        io: &SocketIo,
        payload: Value,
        origin: Origin,
    ) -> Result<(String, u64), BadCommand> {
        let Value::Object(mut payload) = payload else {
            return Err(BadCommand::NotAnObject);
        };
        let to = parse_to(payload.get("to"))?;
        let id = match payload.get("id") {
            None | Some(Value::Null) => {
                let id = format!("cmd-{}", self.next_command.fetch_add(1, Ordering::Relaxed));
                payload.insert("id".into(), Value::String(id.clone()));
                id
            }
            Some(v) => id_text(v).ok_or_else(|| BadCommand::Id {
                value: v.to_string(),
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
    pub(super) fn result(&self, io: &SocketIo, mut payload: Value) {
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
}

pub(super) fn agent_id(data: &Value) -> Result<String, String> {
    data.get("id").and_then(id_text).ok_or_else(|| {
        format!(
            "register needs an `id`: a non-empty string of at most {MAX_ID_LEN} bytes, or a number"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn bad_commands_carry_the_field_and_read_as_before() {
        let forms = "`to` must be \"agents\", a list of agent ids or {\"sample\": n}";
        let e = parse_to(Some(&json!("everyone"))).unwrap_err();
        assert_eq!(
            e,
            BadCommand::To {
                value: r#""everyone""#.into()
            }
        );
        assert_eq!(e.to_string(), forms);
        let e = parse_to(Some(&json!(["a1", {}]))).unwrap_err();
        assert_eq!(e, BadCommand::AgentId { value: "{}".into() });
        assert_eq!(e.to_string(), format!("{forms}; bad agent id {{}}"));
        let e = BadCommand::Id {
            value: "\"\"".into(),
        };
        assert_eq!(
            e.to_string(),
            "`id` must be a non-empty string of at most 256 bytes, or a number"
        );
        assert_eq!(
            BadCommand::NotAnObject.to_string(),
            "a command is a JSON object {id, to, data}"
        );
    }
}
