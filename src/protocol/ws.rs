//! WebSocket client connections for hub agents and commanders:
//! tokio-tungstenite over our own TCP connect (so connections can come from
//! several source addresses, see [`super::net`]) and, for `wss://` /
//! `https://` hubs, rustls.
//!
//! Buffers are small on purpose: tungstenite's defaults allocate 128 KiB
//! to read and buffer up to 128 KiB to write per connection, which is
//! ~2.5 GB for 10,000 idle agents. Agents exchange a few hundred bytes at a
//! time, so [`READ_BUFFER`] is 4 KiB (a larger message grows the buffer for
//! as long as it takes) and writes go out at once (`write_buffer_size = 0`).

use super::http::Endpoint;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// Read buffer per connection, bytes.
pub const READ_BUFFER: usize = 4096;
/// Largest message accepted from a hub (the Engine.IO default maxPayload).
pub const MAX_MESSAGE: usize = 1_000_000;

/// The transport under a hub WebSocket.
pub enum HubStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl HubStream {
    /// The TCP connection underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            HubStream::Plain(s) => s,
            HubStream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for HubStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HubStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            HubStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for HubStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            HubStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            HubStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HubStream::Plain(s) => Pin::new(s).poll_flush(cx),
            HubStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            HubStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            HubStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// A hub WebSocket.
pub type Ws = WebSocketStream<HubStream>;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum WsConnectError {
    #[error("connection refused")]
    Refused,
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("timed out")]
    Timeout,
    #[error("TLS: {0}")]
    Tls(io::Error),
    /// The upgrade was refused (a status other than 101) or the connection
    /// closed before it completed.
    #[error("WebSocket upgrade: {0}")]
    Handshake(String),
}

/// The small-buffer configuration of every hub connection.
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(MAX_MESSAGE * 2)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Open a WebSocket to `endpoint` at `path_and_query`, from `source` when
/// given; each step (TCP, TLS, upgrade) within `timeout`.
pub async fn connect(
    endpoint: &Endpoint,
    path_and_query: &str,
    source: Option<IpAddr>,
    tls: Option<&tokio_rustls::TlsConnector>,
    timeout: Duration,
) -> Result<Ws, WsConnectError> {
    let addr = endpoint.addrs[0];
    let tcp = tokio::time::timeout(timeout, super::net::connect(addr, source))
        .await
        .map_err(|_| WsConnectError::Timeout)?
        .map_err(|e| {
            if e.kind() == io::ErrorKind::ConnectionRefused {
                WsConnectError::Refused
            } else {
                WsConnectError::Connect(e)
            }
        })?;
    let stream = match (tls, endpoint.server_name()) {
        (Some(tls), Some(name)) => {
            let s = tokio::time::timeout(timeout, tls.connect(name.clone(), tcp))
                .await
                .map_err(|_| WsConnectError::Timeout)?
                .map_err(WsConnectError::Tls)?;
            HubStream::Tls(Box::new(s))
        }
        _ => HubStream::Plain(tcp),
    };
    let scheme = if endpoint.origin.is_tls() {
        "wss"
    } else {
        "ws"
    };
    let url = format!("{scheme}://{}{path_and_query}", endpoint.origin.authority());
    let request = url
        .into_client_request()
        .map_err(|e| WsConnectError::Handshake(e.to_string()))?;
    let (ws, _response) = tokio::time::timeout(
        timeout,
        tokio_tungstenite::client_async_with_config(request, stream, Some(config())),
    )
    .await
    .map_err(|_| WsConnectError::Timeout)?
    .map_err(|e| WsConnectError::Handshake(e.to_string()))?;
    Ok(ws)
}
