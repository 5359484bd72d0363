//! HTTP client connections, one per VU and origin. HTTP/1.1 (plain and over
//! TLS) goes through stampede's own lean codec ([`super::h1`]); HTTP/2 (over
//! TLS by ALPN, or over plain TCP by prior knowledge, h2c) through hyper's
//! low-level connection API. TLS is rustls with the webpki roots;
//! verification is on unless `insecure`.
//!
//! Why not reqwest here: a `reqwest::Client` owns a connection pool shared by
//! every task that clones it, so "keep-alive per VU" and "a fresh connection
//! per journey" would need one `Client` per VU, each building its own TLS
//! configuration and pool. And why not hyper for HTTP/1.1: measured against
//! nginx on one pinned core, hyper's per-request machinery (dispatch
//! channel, oneshot, a connection task woken twice per request) cost ~4 µs
//! of user CPU per request where wrk spends 0.87 µs (kernel time was equal);
//! see `benches/vs-wrk.sh`.

use super::h1::{H1Conn, H1Error};
use super::origin::{HttpVersion, Origin};
use crate::error::ErrorKind;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A request as the engine builds it: reused by its VU from one request to
/// the next, so building one allocates nothing in the steady state.
#[derive(Debug, Default, Clone)]
pub struct OutRequest {
    pub method: Method,
    /// Origin form: `/path?query` (checked: visible ASCII only).
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// A response: status, headers (only when asked for) and body (likewise).
#[derive(Debug)]
pub struct InResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The default response body limit, `[http] max_body`: far above any API
/// answer, low enough that a VU cannot be made to hold gigabytes.
pub const DEFAULT_MAX_BODY: u64 = 16 * 1024 * 1024;

/// Shared, immutable client settings (one per run).
pub struct Client {
    version: HttpVersion,
    connect_timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
    /// Longest response body read (`[http] max_body`).
    max_body: u64,
}

/// A resolved origin: where to connect and what to put in the request line.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub origin: Origin,
    /// Resolved once at start; connects try them in order.
    pub addrs: Vec<SocketAddr>,
    /// `Host` header value (HTTP/1.1).
    pub host: HeaderValue,
    /// `scheme://authority` prefix for HTTP/2 absolute URIs.
    pub prefix: String,
    server_name: Option<rustls::pki_types::ServerName<'static>>,
}

impl Endpoint {
    /// The TLS server name (for `https` origins).
    pub fn server_name(&self) -> Option<&rustls::pki_types::ServerName<'static>> {
        self.server_name.as_ref()
    }

    /// Resolve `origin` (DNS once, here).
    pub async fn resolve(origin: &Origin) -> std::io::Result<Endpoint> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(origin.authority()).await?.collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{} resolves to no address", origin.host),
            ));
        }
        let authority = origin.authority();
        let server_name = if origin.is_tls() {
            Some(
                rustls::pki_types::ServerName::try_from(origin.host.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            )
        } else {
            None
        };
        Ok(Endpoint {
            origin: origin.clone(),
            addrs,
            host: HeaderValue::from_str(&authority)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            prefix: format!("{}://{}", origin.scheme, authority),
            server_name,
        })
    }
}

/// Why a request failed below HTTP.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect: {0}")]
    Connect(std::io::Error),
    #[error("connect timed out")]
    ConnectTimeout,
    #[error("tls: {0}")]
    Tls(std::io::Error),
    #[error("{0}")]
    Hyper(#[from] hyper::Error),
    #[error("{0}")]
    H1(#[from] H1Error),
    #[error("bad request: {0}")]
    Request(String),
    /// An HTTP/2 body longer than `max_body` (HTTP/1.1 has its own).
    #[error("response body larger than {0} bytes (max_body)")]
    BodyTooLarge(u64),
}

impl HttpError {
    /// The kind it is counted under.
    pub fn kind(&self) -> ErrorKind {
        match self {
            HttpError::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                ErrorKind::ConnectRefused
            }
            HttpError::Connect(_) => ErrorKind::Connect,
            HttpError::ConnectTimeout => ErrorKind::Timeout,
            HttpError::Tls(_) => ErrorKind::Tls,
            HttpError::Request(_) => ErrorKind::Protocol,
            HttpError::BodyTooLarge(_) | HttpError::H1(H1Error::BodyTooLarge { .. }) => {
                ErrorKind::BodyTooLarge
            }
            HttpError::H1(H1Error::Closed { .. } | H1Error::NotSent(_)) => ErrorKind::Reset,
            HttpError::H1(H1Error::Parse(_)) => ErrorKind::Protocol,
            HttpError::H1(H1Error::Io(e)) => io_kind(e),
            HttpError::Hyper(e) => {
                if e.is_timeout() {
                    ErrorKind::Timeout
                } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
                    ErrorKind::Reset
                } else if e.is_parse() || e.is_parse_status() || e.is_user() {
                    ErrorKind::Protocol
                } else {
                    io_source(e).map_or(ErrorKind::Protocol, io_kind)
                }
            }
        }
    }
}

fn io_kind(e: &std::io::Error) -> ErrorKind {
    match e.kind() {
        std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::ConnectionAborted
        | std::io::ErrorKind::BrokenPipe
        | std::io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
        std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => ErrorKind::Protocol,
    }
}

/// Whether a failure on a reused HTTP/1.1 connection means the server had
/// closed it (nothing of a response arrived). For an idempotent request one
/// retry on a fresh connection is what clients do (RFC 9110 §9.2.2), not an
/// error of the target; a POST or PATCH is not resent: the server may have
/// acted on it before it went away (an instance killed mid-request), so
/// that is an error of kind `reset`. A connection the server closed while
/// it sat idle is caught before it is reused ([`closed_by_peer`]),
/// so the retry is rarely needed for those. A request of which not one
/// byte could be written ([`H1Error::NotSent`]: the reset was already
/// there) never reached the server, so it is resent whatever its method.
fn closed_while_idle(e: &H1Error) -> bool {
    match e {
        H1Error::Closed { before_response } => *before_response,
        H1Error::NotSent(_) => true,
        H1Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        H1Error::Parse(_) | H1Error::BodyTooLarge { .. } => false,
    }
}

fn io_source(e: &hyper::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = s.source();
    }
    None
}

type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

enum Sender {
    H1(H1Conn<TcpStream>),
    H1Tls(Box<H1Conn<TlsStream>>),
    /// HTTP/2 via hyper; its connection runs in a task of its own.
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One VU's connection to one origin. Connects lazily; a broken or closed
/// connection is replaced on the next request.
#[derive(Default)]
pub struct Conn {
    sender: Option<Sender>,
    /// Requests served on the current connection.
    served: u64,
    /// When its last response ended.
    idle_since: Option<tokio::time::Instant>,
}

/// A keep-alive connection idle at least this long is checked for a close
/// by the server before it is reused (one non-blocking read): long enough
/// that back-to-back requests never pay for the check, short enough that a
/// VU thinking between steps does not send into a connection whose server
/// has gone (restarted, crashed, idle timeout) and count that as an error.
const IDLE_CHECK: Duration = Duration::from_millis(50);

/// Methods a client may resend after a reused connection failed before any
/// of the response arrived (RFC 9110 §9.2.2).
fn idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Whether the peer has closed (or reset) an idle connection, or sent
/// something unasked: either way it must not carry the next request. One
/// non-blocking read on the TCP socket; under TLS the raw bytes are read,
/// which is harmless since a connection that had any is dropped.
fn closed_by_peer(tcp: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tcp.try_read(&mut byte) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => false,
        Ok(_) | Err(_) => true,
    }
}

impl Client {
    pub fn new(
        version: HttpVersion,
        connect_timeout: Duration,
        insecure: bool,
        needs_tls: bool,
    ) -> Client {
        let tls = needs_tls.then(|| {
            let alpn = match version {
                HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
                HttpVersion::Http2 => vec![b"h2".to_vec()],
            };
            tls_connector(insecure, alpn)
        });
        Client {
            version,
            connect_timeout,
            tls,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// The same client refusing response bodies longer than `limit` bytes
    /// (error `body_too_large`; default [`DEFAULT_MAX_BODY`]).
    pub fn with_max_body(mut self, limit: u64) -> Client {
        self.max_body = limit;
        self
    }

    async fn connect(&self, endpoint: &Endpoint) -> Result<Sender, HttpError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(&endpoint.addrs[..]),
        )
        .await
        .map_err(|_| HttpError::ConnectTimeout)?
        .map_err(HttpError::Connect)?;
        let _ = stream.set_nodelay(true);
        match (&self.tls, &endpoint.server_name) {
            (Some(tls), Some(name)) => {
                let stream =
                    tokio::time::timeout(self.connect_timeout, tls.connect(name.clone(), stream))
                        .await
                        .map_err(|_| HttpError::ConnectTimeout)?
                        .map_err(HttpError::Tls)?;
                if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                    h2_handshake(TokioIo::new(stream)).await
                } else {
                    let conn = H1Conn::new(stream).with_max_body(self.max_body);
                    Ok(Sender::H1Tls(Box::new(conn)))
                }
            }
            _ if self.version == HttpVersion::Http2 => h2_handshake(TokioIo::new(stream)).await,
            _ => Ok(Sender::H1(H1Conn::new(stream).with_max_body(self.max_body))),
        }
    }
}

/// A rustls connector with the webpki roots (or no verification when
/// `insecure`) offering `alpn`.
pub fn tls_connector(insecure: bool, alpn: Vec<Vec<u8>>) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
            .with_no_client_auth()
    } else {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn;
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

async fn h2_handshake<IO>(io: TokioIo<IO>) -> Result<Sender, HttpError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(Sender::H2(sender))
}

impl Conn {
    /// Send `request`, connecting first when needed, and read the response
    /// to its end. Headers and body are kept only when `keep` (checks and
    /// extractors need them); the connection stays usable either way.
    pub async fn send(
        &mut self,
        client: &Client,
        endpoint: &Endpoint,
        request: &OutRequest,
        keep: bool,
    ) -> Result<InResponse, HttpError> {
        let check = self.idle_since.is_some_and(|t| t.elapsed() >= IDLE_CHECK);
        let reusable = match &self.sender {
            Some(Sender::H1(c)) => c.is_reusable() && !(check && closed_by_peer(c.stream())),
            Some(Sender::H1Tls(c)) => {
                c.is_reusable() && !(check && closed_by_peer(c.stream().get_ref().0))
            }
            Some(Sender::H2(s)) => !s.is_closed(),
            None => false,
        };
        if !reusable {
            self.sender = None;
        }
        let result = match self.try_send(client, endpoint, request, keep).await {
            Err(HttpError::H1(e))
                if self.served > 0
                    && (matches!(e, H1Error::NotSent(_))
                        || closed_while_idle(&e) && idempotent(&request.method)) =>
            {
                self.sender = None;
                self.try_send(client, endpoint, request, keep).await
            }
            other => other,
        };
        match &result {
            Ok(_) => {
                self.served += 1;
                self.idle_since = Some(tokio::time::Instant::now());
            }
            Err(_) => self.sender = None,
        }
        result
    }

    async fn try_send(
        &mut self,
        client: &Client,
        endpoint: &Endpoint,
        request: &OutRequest,
        keep: bool,
    ) -> Result<InResponse, HttpError> {
        if self.sender.is_none() {
            self.served = 0;
            // Boxed: the connect path (TCP, TLS, HTTP/2 handshake) is ~9 KB of
            // future state. Inline, it made every request's future that large,
            // and moving it cost ~10% of the CPU per request (measured with
            // perf against nginx); boxed, only a (re)connect pays for it.
            self.sender = Some(Box::pin(client.connect(endpoint)).await?);
        }
        let body = request.body.as_bytes();
        let (head, body) = match self.sender.as_mut().expect("connected above") {
            Sender::H1(c) => {
                c.send(
                    &request.method,
                    &request.path,
                    &endpoint.host,
                    &request.headers,
                    body,
                    keep,
                )
                .await?
            }
            Sender::H1Tls(c) => {
                c.send(
                    &request.method,
                    &request.path,
                    &endpoint.host,
                    &request.headers,
                    body,
                    keep,
                )
                .await?
            }
            Sender::H2(s) => return send_h2(s, endpoint, request, keep, client.max_body).await,
        };
        Ok(InResponse {
            status: head.status,
            headers: head.headers,
            body,
        })
    }

    /// Drop the connection (fresh connection per journey, or after a timeout
    /// left it in an unknown state).
    pub fn close(&mut self) {
        self.sender = None;
    }
}

async fn send_h2(
    sender: &mut hyper::client::conn::http2::SendRequest<Full<Bytes>>,
    endpoint: &Endpoint,
    request: &OutRequest,
    keep: bool,
    max_body: u64,
) -> Result<InResponse, HttpError> {
    sender.ready().await?;
    let mut out = http::Request::builder()
        .method(request.method.clone())
        .uri(format!("{}{}", endpoint.prefix, request.path))
        .body(Full::new(Bytes::copy_from_slice(request.body.as_bytes())))
        .map_err(|e| HttpError::Request(e.to_string()))?;
    *out.headers_mut() = request.headers.clone();
    let response = sender.send_request(out).await?;
    let (parts, body) = response.into_parts();
    let status = parts.status.as_u16();
    let declared = parts.headers.get(http::header::CONTENT_LENGTH);
    let declared = declared.and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        // Dropping the body resets the stream: the rest is not read.
        return Err(HttpError::BodyTooLarge(max_body));
    }
    let body = read_body(body, keep, max_body).await?;
    let headers = if keep {
        parts.headers
    } else if super::h1::is_redirect(status) {
        let mut only = HeaderMap::new();
        if let Some(location) = parts.headers.get(http::header::LOCATION) {
            only.insert(http::header::LOCATION, location.clone());
        }
        only
    } else {
        HeaderMap::new()
    };
    Ok(InResponse {
        status,
        headers,
        body,
    })
}

/// Read a response body to the end (keep-alive needs it), at most
/// `max_body` bytes. Returns the bytes when `keep` is true, else discards
/// them as they arrive.
pub async fn read_body(body: Incoming, keep: bool, max_body: u64) -> Result<Bytes, HttpError> {
    let mut body = body;
    let mut kept = Vec::new();
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            total += data.len() as u64;
            if total > max_body {
                return Err(HttpError::BodyTooLarge(max_body));
            }
            if keep {
                kept.extend_from_slice(&data);
            }
        }
    }
    Ok(Bytes::from(kept))
}

/// `--insecure`: accept any certificate (signatures are still checked so the
/// handshake completes with the server's real key).
#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
