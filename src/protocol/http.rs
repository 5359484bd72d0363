//! HTTP client connections, one per VU and origin, on hyper's low-level
//! connection API: HTTP/1.1, HTTP/2 over TLS by ALPN, and HTTP/2 over plain
//! TCP by prior knowledge (h2c). TLS is rustls with the webpki roots;
//! verification is on unless `insecure`.
//!
//! Why not reqwest here: a `reqwest::Client` owns a connection pool shared by
//! every task that clones it, so "keep-alive per VU" and "a fresh connection
//! per journey" would need one `Client` per VU, each building its own TLS
//! configuration and pool. hyper's `client::conn` (what reqwest is built on)
//! gives exactly one connection per owner with nothing in between; the
//! per-request path is a request build, `send_request` and reading the body.

use crate::error::ErrorKind;
use crate::scenario::model::HttpVersion;
use crate::scenario::Origin;
use bytes::Bytes;
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// A request as the engine builds it.
pub type OutRequest = Request<Full<Bytes>>;

/// Shared, immutable client settings (one per run).
pub struct Client {
    version: HttpVersion,
    connect_timeout: Duration,
    tls: Option<tokio_rustls::TlsConnector>,
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
    #[error("bad request: {0}")]
    Request(String),
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
            HttpError::Hyper(e) => {
                if e.is_timeout() {
                    ErrorKind::Timeout
                } else if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
                    ErrorKind::Reset
                } else if e.is_parse() || e.is_parse_status() || e.is_user() {
                    ErrorKind::Protocol
                } else {
                    match io_source(e).map(|io| io.kind()) {
                        Some(
                            std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                            | std::io::ErrorKind::UnexpectedEof,
                        ) => ErrorKind::Reset,
                        _ => ErrorKind::Protocol,
                    }
                }
            }
        }
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

/// The connection itself runs in a task of its own. (Driving an HTTP/1.1
/// connection inside the VU's task instead was measured at ~0.8 µs more CPU
/// per request against nginx: the dispatcher is then polled at every step of
/// every request rather than only when its socket is ready.)
enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

/// One VU's connection to one origin. Connects lazily; a broken or closed
/// connection is replaced on the next request.
#[derive(Default)]
pub struct Conn {
    sender: Option<Sender>,
}

impl Client {
    pub fn new(
        version: HttpVersion,
        connect_timeout: Duration,
        insecure: bool,
        needs_tls: bool,
    ) -> Client {
        let tls = needs_tls.then(|| {
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
            config.alpn_protocols = match version {
                HttpVersion::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
                HttpVersion::Http1 => vec![b"http/1.1".to_vec()],
                HttpVersion::Http2 => vec![b"h2".to_vec()],
            };
            tokio_rustls::TlsConnector::from(Arc::new(config))
        });
        Client {
            version,
            connect_timeout,
            tls,
        }
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
                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                handshake(TokioIo::new(stream), h2).await
            }
            _ => handshake(TokioIo::new(stream), self.version == HttpVersion::Http2).await,
        }
    }
}

async fn handshake<IO>(io: TokioIo<IO>, h2: bool) -> Result<Sender, HttpError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender))
    }
}

impl Conn {
    /// Send `request` (its URI in origin form, `/path?query`), connecting
    /// first when needed, and read the response body to its end (keeping the
    /// bytes when `keep_body`). Sets `Host` for HTTP/1.1 and the absolute URI
    /// for HTTP/2.
    pub async fn send(
        &mut self,
        client: &Client,
        endpoint: &Endpoint,
        mut request: OutRequest,
        keep_body: bool,
    ) -> Result<(http::response::Parts, Bytes), HttpError> {
        if let Some(sender) = &mut self.sender {
            let usable = match sender {
                Sender::H1(s) => !s.is_closed() && s.ready().await.is_ok(),
                Sender::H2(s) => !s.is_closed() && s.ready().await.is_ok(),
            };
            if !usable {
                self.sender = None;
            }
        }
        if self.sender.is_none() {
            // Boxed: the connect path (TCP, TLS, HTTP/2 handshake) is ~9 KB of
            // future state. Inline, it made every request's future that large,
            // and moving it cost ~10% of the CPU per request (measured with
            // perf against nginx); boxed, only a (re)connect pays for it.
            self.sender = Some(Box::pin(client.connect(endpoint)).await?);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let result = match sender {
            Sender::H1(s) => {
                request
                    .headers_mut()
                    .insert(http::header::HOST, endpoint.host.clone());
                match s.send_request(request).await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        read_body(body, keep_body).await.map(|b| (parts, b))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Sender::H2(s) => {
                let path = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let absolute = format!("{}{}", endpoint.prefix, path);
                *request.uri_mut() = absolute
                    .parse()
                    .map_err(|e: http::uri::InvalidUri| HttpError::Request(e.to_string()))?;
                match s.send_request(request).await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        read_body(body, keep_body).await.map(|b| (parts, b))
                    }
                    Err(e) => Err(e.into()),
                }
            }
        };
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    /// Drop the connection (fresh connection per journey, or after a timeout
    /// left it in an unknown state).
    pub fn close(&mut self) {
        self.sender = None;
    }
}

/// Read a response body to the end (keep-alive needs it). Returns the bytes
/// when `keep` is true, else discards them as they arrive.
pub async fn read_body(body: Incoming, keep: bool) -> Result<Bytes, HttpError> {
    if keep {
        Ok(body.collect().await?.to_bytes())
    } else {
        let mut body = body;
        while let Some(frame) = body.frame().await {
            frame?;
        }
        Ok(Bytes::new())
    }
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
