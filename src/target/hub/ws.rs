//! The hub's plain-WebSocket protocol at `/ws`: JSON text frames with a
//! `type` (see the [hub docs](super) for the messages). Each connection
//! is one task that reads frames, writes replies and forwards what the
//! registry queues for it (commands, results), until the peer leaves or a
//! kill switch fires.

use std::sync::Arc;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::command::agent_id;
use super::faults::refused;
use super::kill::KillSwitch;
use super::registry::{Link, Origin};
use super::{Core, Hub, St, AGENTS_ROOM, MAX_MESSAGE, READ_BUFFER, WS_QUEUE};
use crate::target::state::unix_ms;

pub(super) async fn ws_entry(State(hub): St, ws: WebSocketUpgrade) -> Response {
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
                Err(e) => err(e.to_string()),
            }
        }
        other => err(format!(
            "unknown type `{other}`: expected register, heartbeat, status, result or command"
        )),
    }
}
