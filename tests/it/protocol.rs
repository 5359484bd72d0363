//! HTTP versions and TLS against real servers on 127.0.0.1:0: HTTP/2 by
//! prior knowledge (h2c) on the built-in target; a TLS server with a
//! self-signed certificate: refused by default (kind `tls`), accepted with
//! `insecure`, where ALPN picks HTTP/2.

use crate::common::{api, count, Fixture};
use hyper_util::rt::{TokioExecutor, TokioIo};
use stampede::error::ExitStatus;
use stampede::scenario::Overrides;
use stampede::target::{self, TargetConfig, TargetState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const ONE_STEP: &str = r#"
name = "proto"
[target]
api = "http://127.0.0.1:9"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers", check = { status = 200 } }]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "20/s" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_h2c() {
    let target = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .unwrap();
    let fixture = Fixture::new(&format!("{ONE_STEP}[http]\nversion = \"2\"\n"));
    let outcome = fixture.run(api(target.addr)).await;
    assert_eq!(count(&outcome.totals, "http.requests", None), 20);
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_connection_per_journey_works() {
    let target = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .unwrap();
    let fixture = Fixture::new(&format!("{ONE_STEP}[http]\nkeep_alive = false\n"));
    let outcome = fixture.run(api(target.addr)).await;
    assert_eq!(count(&outcome.totals, "http.requests", None), 20);
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
}

/// A TLS server (self-signed for `localhost`) in front of the built-in API
/// router; counts connections that negotiated h2.
async fn tls_server() -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = target::router(TargetState::new(TargetConfig::default()).unwrap());
    let h2_connections = Arc::new(AtomicU64::new(0));
    let h2 = h2_connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let router = router.clone();
            let h2 = h2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    h2.fetch_add(1, Ordering::Relaxed);
                }
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, h2_connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_by_default() {
    let (addr, _) = tls_server().await;
    let fixture = Fixture::new(ONE_STEP);
    let overrides = Overrides {
        api: Some(format!("https://localhost:{}", addr.port())),
        ..Overrides::default()
    };
    let outcome = fixture.run(overrides).await;
    // A self-signed certificate is not trusted: every request fails as `tls`.
    assert_eq!(count(&outcome.totals, "http.errors", Some("tls")), 20);
    assert_eq!(outcome.exit, ExitStatus::Passed, "no SLOs declared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_verification_and_alpn_picks_h2() {
    let (addr, h2_connections) = tls_server().await;
    let fixture = Fixture::new(ONE_STEP);
    let overrides = Overrides {
        api: Some(format!("https://localhost:{}", addr.port())),
        insecure: true,
        ..Overrides::default()
    };
    let outcome = fixture.run(overrides).await;
    assert_eq!(count(&outcome.totals, "http.requests", None), 20);
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
    assert!(
        h2_connections.load(Ordering::Relaxed) >= 1,
        "ALPN negotiated h2"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_when_asked() {
    let (addr, h2_connections) = tls_server().await;
    let fixture = Fixture::new(&format!("{ONE_STEP}[http]\nversion = \"1.1\"\n"));
    let overrides = Overrides {
        api: Some(format!("https://localhost:{}", addr.port())),
        insecure: true,
        ..Overrides::default()
    };
    let outcome = fixture.run(overrides).await;
    assert_eq!(count(&outcome.totals, "http.requests", None), 20);
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
    assert_eq!(
        h2_connections.load(Ordering::Relaxed),
        0,
        "ALPN offered only http/1.1"
    );
}

/// A raw HTTP/1.1 server for the reused-connection rules: on every
/// connection it answers the first request (200, keep-alive) and then, by
/// `mode`, either closes right after that answer (an idle close) or reads
/// the next request and closes without answering (an instance that died
/// mid-request). Counts connections and requests; `closed` says when it
/// closed a connection after answering.
mod raw_server {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    #[derive(Clone, Copy, PartialEq)]
    pub enum Mode {
        CloseWhenIdle,
        /// Like `CloseWhenIdle` with a reset (RST) instead of a close.
        ResetWhenIdle,
        DieMidRequest,
    }

    #[derive(Default)]
    pub struct Seen {
        pub connections: AtomicU64,
        pub requests: AtomicU64,
    }

    /// Read one request head (and a Content-Length body); false at EOF.
    async fn read_request(s: &mut TcpStream) -> bool {
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(1) => buf.push(byte[0]),
                _ => return false,
            }
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0);
        let mut body = vec![0; len];
        s.read_exact(&mut body).await.is_ok()
    }

    pub async fn start(
        mode: Mode,
    ) -> (
        std::net::SocketAddr,
        Arc<Seen>,
        tokio::sync::mpsc::UnboundedReceiver<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let (closed_tx, closed_rx) = tokio::sync::mpsc::unbounded_channel();
        let counts = seen.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                counts.connections.fetch_add(1, Ordering::SeqCst);
                let counts = counts.clone();
                let closed_tx = closed_tx.clone();
                tokio::spawn(async move {
                    if !read_request(&mut s).await {
                        return;
                    }
                    counts.requests.fetch_add(1, Ordering::SeqCst);
                    s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                        .await
                        .unwrap();
                    if mode == Mode::DieMidRequest && read_request(&mut s).await {
                        counts.requests.fetch_add(1, Ordering::SeqCst);
                    }
                    if mode == Mode::ResetWhenIdle {
                        // A zero linger does not block: close() sends RST.
                        #[allow(deprecated)]
                        s.set_linger(Some(std::time::Duration::ZERO)).unwrap();
                    }
                    drop(s);
                    let _ = closed_tx.send(());
                });
            }
        });
        (addr, seen, closed_rx)
    }
}

async fn raw_client(
    addr: std::net::SocketAddr,
) -> (
    stampede::protocol::http::Client,
    stampede::protocol::http::Endpoint,
) {
    use stampede::protocol::http::{Client, Endpoint};
    let client = Client::new(
        stampede::protocol::HttpVersion::Http1,
        std::time::Duration::from_secs(5),
        false,
        false,
    );
    let origin = stampede::protocol::Origin::parse(&format!("http://{addr}")).unwrap();
    (client, Endpoint::resolve(&origin).await.unwrap())
}

fn request(method: http::Method) -> stampede::protocol::http::OutRequest {
    stampede::protocol::http::OutRequest {
        method,
        path: "/x".into(),
        body: "{}".into(),
        ..Default::default()
    }
}

/// An instance that dies with a POST in flight: the POST fails (`reset`)
/// and is not sent again (the server may have acted on it); the server saw
/// it exactly once.
#[tokio::test]
async fn a_post_cut_off_mid_request_is_an_error_not_resent() {
    use raw_server::Mode;
    let (addr, seen, _closed) = raw_server::start(Mode::DieMidRequest).await;
    let (client, endpoint) = raw_client(addr).await;
    let mut conn = stampede::protocol::http::Conn::default();
    let req = request(http::Method::GET);
    let first = conn.send(&client, &endpoint, &req, false).await;
    assert_eq!(first.unwrap().status, 200);
    let req = request(http::Method::POST);
    let post = conn.send(&client, &endpoint, &req, false).await;
    let err = post.unwrap_err();
    assert_eq!(err.kind(), stampede::error::ErrorKind::Reset, "{err}");
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

/// The same cut with a GET: resent once on a fresh connection, as clients
/// do for idempotent requests; the server saw it twice.
#[tokio::test]
async fn a_get_cut_off_on_a_reused_connection_is_resent_once() {
    use raw_server::Mode;
    let (addr, seen, _closed) = raw_server::start(Mode::DieMidRequest).await;
    let (client, endpoint) = raw_client(addr).await;
    let mut conn = stampede::protocol::http::Conn::default();
    for _ in 0..2 {
        let req = request(http::Method::GET);
        let r = conn.send(&client, &endpoint, &req, false).await;
        assert_eq!(r.unwrap().status, 200);
    }
    assert_eq!(seen.requests.load(Ordering::SeqCst), 3);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

/// A keep-alive connection the server closed while it sat idle is not
/// reused: the POST goes out on a fresh connection and succeeds.
#[tokio::test]
async fn a_connection_closed_while_idle_is_not_reused() {
    use raw_server::Mode;
    let (addr, seen, mut closed) = raw_server::start(Mode::CloseWhenIdle).await;
    let (client, endpoint) = raw_client(addr).await;
    let mut conn = stampede::protocol::http::Conn::default();
    let req = request(http::Method::GET);
    let first = conn.send(&client, &endpoint, &req, false).await;
    assert_eq!(first.unwrap().status, 200);
    closed.recv().await.unwrap();
    // Idle past the check's threshold (this is the condition under test,
    // not a synchronisation: the close was awaited above).
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let req = request(http::Method::POST);
    let post = conn.send(&client, &endpoint, &req, false).await;
    assert_eq!(post.unwrap().status, 200);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

/// A keep-alive connection the server reset, reused at once (before the
/// idle check would look): not one byte of the POST can be written, so the
/// server never saw it and it is resent on a fresh connection, whatever
/// its method.
#[tokio::test]
async fn a_post_into_a_connection_already_reset_is_resent() {
    use raw_server::Mode;
    let (addr, seen, mut closed) = raw_server::start(Mode::ResetWhenIdle).await;
    let (client, endpoint) = raw_client(addr).await;
    let mut conn = stampede::protocol::http::Conn::default();
    let req = request(http::Method::GET);
    let first = conn.send(&client, &endpoint, &req, false).await;
    assert_eq!(first.unwrap().status, 200);
    closed.recv().await.unwrap();
    let req = request(http::Method::POST);
    let post = conn.send(&client, &endpoint, &req, false).await;
    assert_eq!(post.unwrap().status, 200);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 2);
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}
