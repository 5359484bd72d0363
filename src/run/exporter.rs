//! `run --metrics-listen ADDR` / `[metrics] listen`: the live Prometheus
//! endpoint. `GET /metrics` answers the OpenMetrics text of the latest
//! interval ([`crate::report::prometheus`]); it is bound before the run
//! starts (a taken port is bad input, exit 2, before any load) and only on
//! the address given.
//!
//! The server runs on a thread of its own with a one-thread tokio runtime,
//! like the monitor beside the engine's runtime, so a saturated engine
//! cannot make a scrape late, and scrapes cost the engine nothing. After
//! the run it stays up for `[metrics] linger` (default 5 s; Ctrl-C ends it
//! early) so the last scrape sees the final counts, then stops.

use crate::error::CommandError;
use crate::report::prometheus::{Exposition, CONTENT_TYPE, PROTOBUF_CONTENT_TYPE};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running endpoint; stops when dropped.
pub struct Endpoint {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Endpoint {
    /// Bind `addr` and serve `exposition` on it.
    pub fn start(addr: SocketAddr, exposition: Exposition) -> Result<Endpoint, CommandError> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| {
            CommandError::BadInput(format!(
                "metrics endpoint: cannot listen on {addr}: {e} (choose another \
                 `--metrics-listen` / `[metrics] listen`, or port 0 for any free one)"
            ))
        })?;
        let bound = listener
            .local_addr()
            .and_then(|a| listener.set_nonblocking(true).map(|()| a))
            .map_err(|e| CommandError::Failed(anyhow::anyhow!("metrics endpoint {addr}: {e}")))?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let exposition = Arc::new(exposition);
        let thread = std::thread::Builder::new()
            .name("stampede-metrics".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a one-thread tokio runtime");
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!("metrics endpoint {bound}: {e}");
                            return;
                        }
                    };
                    let app = router(exposition);
                    tokio::select! {
                        served = axum::serve(listener, app) => {
                            if let Err(e) = served {
                                tracing::error!("metrics endpoint {bound}: {e}");
                            }
                        }
                        _ = stopped => {}
                    }
                });
                // Open keep-alive connections (a Prometheus between scrapes)
                // are dropped with the runtime, not waited for.
                runtime.shutdown_background();
            })
            .map_err(|e| CommandError::Failed(anyhow::anyhow!("metrics endpoint thread: {e}")))?;
        Ok(Endpoint {
            addr: bound,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The URL to scrape.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Serve the final counts for `linger` more (Ctrl-C or SIGTERM ends
    /// it early), then stop.
    pub async fn linger(self, linger: Duration) {
        if !linger.is_zero() {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            let terminated = async {
                match term.as_mut() {
                    Some(term) => {
                        term.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(linger) => {}
                _ = tokio::signal::ctrl_c() => {}
                _ = terminated => {}
            }
        }
        drop(self);
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn router(exposition: Arc<Exposition>) -> axum::Router {
    use axum::http::header::CONTENT_TYPE as HEADER;
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let exposition = exposition.clone();
                async move {
                    // Content negotiation: the protobuf format (with native
                    // histograms) only to a scraper that asks for it.
                    let protobuf = headers
                        .get(axum::http::header::ACCEPT)
                        .and_then(|a| a.to_str().ok())
                        .is_some_and(|a| a.contains("application/vnd.google.protobuf"));
                    if protobuf {
                        (
                            [(HEADER, PROTOBUF_CONTENT_TYPE)],
                            exposition.encode_protobuf(),
                        )
                    } else {
                        ([(HEADER, CONTENT_TYPE)], exposition.encode().into_bytes())
                    }
                }
            }),
        )
        .route(
            "/",
            axum::routing::get(|| async {
                "stampede: live metrics of this run at /metrics (OpenMetrics text)\n"
            }),
        )
}
