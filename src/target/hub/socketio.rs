//! The hub's Socket.IO side (served by socketioxide): the namespace
//! handlers (admission, `register`, `heartbeat`, `status`, `result`,
//! `command`, disconnect) and the `/socket.io/` entry. The entry performs
//! WebSocket upgrades itself so the upgraded stream can be wrapped in a
//! [`Killable`] before socketioxide gets it; every other request (the
//! long-polling transport) goes to socketioxide as is, with a compacted
//! request head.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use socketioxide::extract::{AckSender, SocketRef, State as SioState, TryData};
use socketioxide::socket::Sid;
use socketioxide::SocketIo;

use super::command::agent_id;
use super::faults::refused;
use super::kill::{KillHandle, KillSwitch, Killable, TransportGuard};
use super::registry::{Link, Ns, Origin};
use super::{Core, Hub, St, AGENTS_ROOM};
use crate::target::api::error;
use crate::target::state::unix_ms;

impl Core {
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
}

#[derive(Debug)]
pub(super) struct Rejected(&'static str);

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Runs before the namespace CONNECT is answered: checks the auth payload
/// and installs the event handlers, so none of the client's first events
/// can arrive before them.
pub(super) async fn sio_admit(
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

pub(super) async fn sio_connected(s: SocketRef, SioState(core): SioState<Arc<Core>>) {
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
            Err(e) => json!({ "delivered": 0, "error": e.to_string() }),
        },
        Err(e) => json!({ "delivered": 0, "error": e }),
    };
    let _ = ack.send(&reply);
}

/// What socketioxide answers for paths outside its own (never reached: it
/// is only routed `/socket.io/`).
#[derive(Debug, Clone, Copy)]
pub(super) struct NotFound;

impl<B> hyper::service::Service<axum::http::Request<B>> for NotFound {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Response, Self::Error>>;

    fn call(&self, _: axum::http::Request<B>) -> Self::Future {
        std::future::ready(Ok(error(StatusCode::NOT_FOUND, "not found")))
    }
}

// The entry: WebSocket upgrades are done here so the stream can be
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

pub(super) async fn sio_entry(State(hub): St, mut req: Request) -> Response {
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
