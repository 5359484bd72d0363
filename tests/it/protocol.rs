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
