//! One hub connection, either protocol: open it (TCP, upgrade, Engine.IO
//! open, namespace CONNECT), turn incoming frames into [`In`] events, send
//! events, close it gracefully or reset it.
//!
//! Frame handling is synchronous ([`Session::handle_read`]) and the only await
//! on the read side is [`Session::next_frame`] (the stream's `next`, which
//! is cancel-safe), so the agent loop can `select!` on it against its
//! timers without losing a frame or half-sending a pong.

use super::{DisconnectKind, HubErrorKind};
use crate::protocol::http::Endpoint;
use crate::protocol::socketio::{self, Decoder, EioPacket, SioKind, SioPacket};
use crate::protocol::ws::{self, Ws, WsConnectError};
use crate::scenario::hub::HubProtocol;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};

/// Wire settings of a session.
pub struct Wire<'a> {
    pub protocol: HubProtocol,
    pub path: &'a str,
    pub namespace: &'a str,
    pub type_key: &'a str,
}

/// What an incoming frame meant.
#[derive(Debug)]
pub enum In {
    /// Nothing for the agent (a ping answered, a pong, noise, a part of a
    /// binary packet).
    Nothing,
    /// Socket.IO ping: answer with [`Session::pong`].
    Ping,
    /// An event: Socket.IO event name and first argument; WebSocket: the
    /// message's type and the whole object.
    Event {
        name: String,
        arg: Value,
        ack_id: Option<u64>,
    },
    /// A Socket.IO ack: id and first argument.
    Ack { id: u64, arg: Value },
    /// The server ended the session (Engine.IO close, Socket.IO
    /// DISCONNECT, WebSocket close, end of stream) or it broke.
    Closed(DisconnectKind),
}

enum Proto {
    SocketIo {
        decoder: Decoder,
        ping_deadline: Duration,
    },
    WebSocket,
}

/// An open session.
pub struct Session {
    ws: Ws,
    proto: Proto,
    /// Reused for every outgoing frame.
    pub out: String,
    next_ack: u64,
    /// Socket.IO: when the last ping (or the open) arrived.
    last_ping: Instant,
    /// The namespace CONNECT's answer, while the handshake waits for it.
    connect_result: Option<Result<(), HubErrorKind>>,
}

fn connect_error(e: WsConnectError) -> HubErrorKind {
    match e {
        WsConnectError::Refused => HubErrorKind::ConnectRefused,
        WsConnectError::Connect(_) => HubErrorKind::Connect,
        WsConnectError::Timeout => HubErrorKind::Timeout,
        WsConnectError::Tls(_) => HubErrorKind::Tls,
        WsConnectError::Handshake(_) => HubErrorKind::Handshake,
    }
}

/// What a read error says about how the connection ended.
fn read_error(e: &tungstenite::Error) -> DisconnectKind {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => {
            DisconnectKind::ServerClose
        }
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            DisconnectKind::ServerClose
        }
        tungstenite::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::UnexpectedEof => DisconnectKind::ServerClose,
            _ => DisconnectKind::Reset,
        },
        _ => DisconnectKind::Protocol,
    }
}

impl Session {
    /// Open a session: TCP, upgrade, and for Socket.IO the Engine.IO open
    /// packet and the namespace CONNECT (with `auth`), each within
    /// `timeout`.
    pub async fn open(
        endpoint: &Endpoint,
        wire: &Wire<'_>,
        auth: Option<&str>,
        source: Option<IpAddr>,
        tls: Option<&tokio_rustls::TlsConnector>,
        timeout: Duration,
    ) -> Result<Session, HubErrorKind> {
        let path = match wire.protocol {
            HubProtocol::SocketIo => {
                let sep = if wire.path.contains('?') { '&' } else { '?' };
                format!("{}{sep}EIO=4&transport=websocket", wire.path)
            }
            HubProtocol::WebSocket => wire.path.to_string(),
        };
        let ws = ws::connect(endpoint, &path, source, tls, timeout)
            .await
            .map_err(connect_error)?;
        let mut session = Session {
            ws,
            proto: Proto::WebSocket,
            out: String::new(),
            next_ack: 0,
            last_ping: Instant::now(),
            connect_result: None,
        };
        if wire.protocol == HubProtocol::SocketIo {
            let deadline = Instant::now() + timeout;
            session
                .socketio_handshake(wire.namespace, auth, deadline)
                .await?;
        }
        Ok(session)
    }

    async fn read_until(&mut self, deadline: Instant) -> Result<Message, HubErrorKind> {
        match tokio::time::timeout_at(deadline, self.ws.next()).await {
            Err(_) => Err(HubErrorKind::Timeout),
            Ok(None) => Err(HubErrorKind::Handshake),
            Ok(Some(Err(e))) => Err(match read_error(&e) {
                DisconnectKind::Protocol => HubErrorKind::Protocol,
                DisconnectKind::Reset => HubErrorKind::Reset,
                _ => HubErrorKind::Handshake,
            }),
            Ok(Some(Ok(m))) => Ok(m),
        }
    }

    async fn socketio_handshake(
        &mut self,
        ns: &str,
        auth: Option<&str>,
        deadline: Instant,
    ) -> Result<(), HubErrorKind> {
        // The open packet.
        let info = loop {
            match self.read_until(deadline).await? {
                Message::Text(t) => match socketio::parse_eio_text(&t) {
                    Ok(EioPacket::Open(info)) => break info,
                    _ => return Err(HubErrorKind::Protocol),
                },
                Message::Close(_) => return Err(HubErrorKind::Handshake),
                Message::Ping(_) | Message::Pong(_) => continue,
                _ => return Err(HubErrorKind::Protocol),
            }
        };
        let mut decoder = Decoder::new(info.max_payload);
        decoder.set_max_payload(info.max_payload.max(ws::MAX_MESSAGE));
        self.proto = Proto::SocketIo {
            decoder,
            ping_deadline: info.ping_deadline(),
        };
        self.last_ping = Instant::now();
        socketio::encode_connect(ns, auth, &mut self.out);
        self.flush_out().await.map_err(|_| HubErrorKind::Reset)?;
        // The CONNECT answer (pings may come first).
        loop {
            let message = self.read_until(deadline).await?;
            match self.handle(message) {
                In::Ping => {
                    self.pong().await.map_err(|_| HubErrorKind::Reset)?;
                }
                In::Nothing => {}
                In::Closed(DisconnectKind::Protocol) => return Err(HubErrorKind::Protocol),
                In::Closed(_) => return Err(HubErrorKind::Handshake),
                In::Event { .. } | In::Ack { .. } => {
                    // Events before CONNECT: protocol error.
                    return Err(HubErrorKind::Protocol);
                }
            }
            match self.take_connect_result() {
                Some(Ok(())) => return Ok(()),
                Some(Err(kind)) => return Err(kind),
                None => {}
            }
        }
    }

    /// During the handshake, [`Session::handle`] stashes CONNECT /
    /// CONNECT_ERROR here.
    fn take_connect_result(&mut self) -> Option<Result<(), HubErrorKind>> {
        std::mem::take(&mut self.connect_result)
    }

    /// The next frame (cancel-safe). `None`: the stream ended.
    pub async fn next_frame(&mut self) -> Option<Result<Message, tungstenite::Error>> {
        self.ws.next().await
    }

    /// When the Socket.IO server is overdue with its ping (None for WebSocket).
    pub fn ping_deadline(&self) -> Option<Instant> {
        match &self.proto {
            Proto::SocketIo { ping_deadline, .. } => Some(self.last_ping + *ping_deadline),
            Proto::WebSocket => None,
        }
    }

    /// Interpret a read result.
    pub fn handle_read(
        &mut self,
        frame: Option<Result<Message, tungstenite::Error>>,
        type_key: &str,
    ) -> In {
        match frame {
            None => In::Closed(DisconnectKind::ServerClose),
            Some(Err(e)) => In::Closed(read_error(&e)),
            Some(Ok(m)) => match &self.proto {
                Proto::WebSocket => self.handle_ws(m, type_key),
                Proto::SocketIo { .. } => self.handle(m),
            },
        }
    }

    fn handle_ws(&mut self, message: Message, type_key: &str) -> In {
        match message {
            Message::Text(t) => match serde_json::from_str::<Value>(&t) {
                Ok(Value::Object(map)) => {
                    let name = map
                        .get(type_key)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    In::Event {
                        name,
                        arg: Value::Object(map),
                        ack_id: None,
                    }
                }
                _ => In::Closed(DisconnectKind::Protocol),
            },
            Message::Close(_) => In::Closed(DisconnectKind::ServerClose),
            _ => In::Nothing,
        }
    }

    /// Socket.IO frame handling.
    fn handle(&mut self, message: Message) -> In {
        let Proto::SocketIo { decoder, .. } = &mut self.proto else {
            return In::Nothing;
        };
        let packet = match message {
            Message::Text(t) => match socketio::parse_eio_text(&t) {
                Ok(EioPacket::Ping(_)) => {
                    self.last_ping = Instant::now();
                    return In::Ping;
                }
                Ok(EioPacket::Message(payload)) => decoder.feed_text(payload),
                Ok(EioPacket::Close) => return In::Closed(DisconnectKind::ServerClose),
                Ok(EioPacket::Open(_)) => return In::Closed(DisconnectKind::Protocol),
                Ok(_) => return In::Nothing,
                Err(_) => return In::Closed(DisconnectKind::Protocol),
            },
            Message::Binary(b) => decoder.feed_binary(b),
            Message::Close(_) => return In::Closed(DisconnectKind::ServerClose),
            _ => return In::Nothing,
        };
        match packet {
            Err(_) => In::Closed(DisconnectKind::Protocol),
            Ok(None) => In::Nothing,
            Ok(Some(p)) => self.packet(p),
        }
    }

    fn packet(&mut self, p: SioPacket) -> In {
        match p.kind {
            SioKind::Connect => {
                self.connect_result = Some(Ok(()));
                In::Nothing
            }
            SioKind::ConnectError => {
                self.connect_result = Some(Err(HubErrorKind::Rejected));
                In::Nothing
            }
            SioKind::Disconnect => In::Closed(DisconnectKind::ServerClose),
            SioKind::Event | SioKind::BinaryEvent => {
                let name = p.event_name().unwrap_or_default().to_string();
                let arg = p.event_args().first().cloned().unwrap_or(Value::Null);
                In::Event {
                    name,
                    arg,
                    ack_id: p.ack_id,
                }
            }
            SioKind::Ack | SioKind::BinaryAck => {
                let arg = p.event_args().first().cloned().unwrap_or(Value::Null);
                match p.ack_id {
                    Some(id) => In::Ack { id, arg },
                    None => In::Nothing,
                }
            }
        }
    }

    async fn flush_out(&mut self) -> Result<(), tungstenite::Error> {
        self.ws.send(Message::text(self.out.as_str())).await
    }

    /// Answer a Socket.IO ping.
    pub async fn pong(&mut self) -> Result<(), tungstenite::Error> {
        socketio::pong(&mut self.out);
        self.flush_out().await
    }

    /// Send `event` with `data` (JSON text; WebSocket: an object whose
    /// fields follow the type key). Returns the Socket.IO ack id when `ack`.
    pub async fn send_event(
        &mut self,
        wire: &Wire<'_>,
        event: &str,
        data: Option<&str>,
        ack: bool,
    ) -> Result<Option<u64>, tungstenite::Error> {
        let mut ack_id = None;
        match wire.protocol {
            HubProtocol::SocketIo => {
                if ack {
                    ack_id = Some(self.next_ack);
                    self.next_ack += 1;
                }
                let mut out = std::mem::take(&mut self.out);
                socketio::encode_event(wire.namespace, event, data.unwrap_or(""), ack_id, &mut out);
                self.out = out;
            }
            HubProtocol::WebSocket => {
                self.out.clear();
                self.out.push('{');
                socketio::push_json_string(&mut self.out, wire.type_key);
                self.out.push(':');
                socketio::push_json_string(&mut self.out, event);
                if let Some(rest) = data
                    .map(str::trim)
                    .and_then(|d| d.strip_prefix('{'))
                    .filter(|rest| rest.trim_start() != "}")
                {
                    self.out.push(',');
                    self.out.push_str(rest);
                } else {
                    self.out.push('}');
                }
            }
        }
        self.flush_out().await?;
        Ok(ack_id)
    }

    /// Answer a Socket.IO event's ack id with `args` (JSON items).
    pub async fn send_ack(
        &mut self,
        ns: &str,
        id: u64,
        args: &str,
    ) -> Result<(), tungstenite::Error> {
        let mut out = std::mem::take(&mut self.out);
        socketio::encode_ack(ns, id, args, &mut out);
        self.out = out;
        self.flush_out().await
    }

    /// Close gracefully: Socket.IO DISCONNECT, WebSocket close; bounded.
    pub async fn close(mut self, namespace: &str, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            if matches!(self.proto, Proto::SocketIo { .. }) {
                let mut out = std::mem::take(&mut self.out);
                socketio::encode_disconnect(namespace, &mut out);
                self.out = out;
                let _ = self.flush_out().await;
            }
            let _ = self.ws.close(None).await;
            // Wait for the server's close (or the end of the stream).
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }

    /// Reset the TCP connection (RST, no goodbye).
    pub fn reset(self) {
        // Deprecated because a *positive* linger blocks the thread in
        // close(); a zero linger does not block: the kernel sends RST.
        #[allow(deprecated)]
        let _ = self.ws.get_ref().tcp().set_linger(Some(Duration::ZERO));
        drop(self);
    }
}
