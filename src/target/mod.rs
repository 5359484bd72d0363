//! The built-in reference target: a small JSON HTTP API with a real
//! capacity knee, served on loopback by `stampede target` and by
//! `api = "builtin"` scenarios, and used by the tests.
//!
//! # Endpoints
//!
//! - `GET /health` → `{"status":"ok"}` (exempt from the knobs).
//! - `POST /api/login`, `GET|POST /api/servers`, `POST /api/jobs`,
//!   `GET /api/jobs/{id}` — see [`api`] for bodies and errors.
//!   `POST`s to servers and jobs require `Authorization: Bearer tok-…`
//!   (a token from login); the `GET`s are open. Jobs go through a real
//!   queue: `job_workers` workers take them in FIFO order and run each for
//!   a time drawn from `job_duration` (`queued` → `running` → `done`, with
//!   timestamps; see [`jobs`]). Created servers are kept in a bounded store (10,000, oldest
//!   evicted), so memory stays flat under long load.
//! - `/admin/*` — read and change the knobs, start a stall, read counters
//!   (exempt from the knobs); see [`admin`].
//! - The hub agents connect to: Socket.IO at `/socket.io/`, plain
//!   WebSocket at `/ws`, `POST /api/commands` (under the knobs) and
//!   `/admin/hub/*`; see [`hub`] and [`hub::http`].
//!
//! # Knobs
//!
//! Applied to matched `/api/*` routes, in this order:
//! 1. **stall** — while a stall is active every request waits for its end;
//! 2. **concurrency** — a semaphore of `concurrency` permits with at most
//!    `queue` requests waiting (first in, first served); beyond that
//!    `503 {"error":"overloaded"}` at once. As in a real server, a request
//!    whose client gave up (closed its connection) keeps its place in the
//!    queue and, once admitted, holds its permit for its service time: a
//!    backlog is worked off even when nobody waits for the answers;
//! 3. **latency** — service time slept *while holding the permit*, so the
//!    capacity is `concurrency / mean latency`: a real knee;
//! 4. **error_rate** — that fraction is answered `500 {"error":"injected"}`.
//!
//! `stampede target --processes N` serves from N worker processes on one
//! port ([`workers`]).
//!
//! See [`TargetConfig`] for the knobs and [`Latency`] / [`parse_duration`]
//! for their text forms.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod admin;
pub mod api;
pub mod hub;
pub mod jobs;
pub mod knobs;
pub mod state;
pub mod workers;

pub use hub::{BadCommand, Hub, HubStats};
pub use knobs::{format_duration, parse_duration, ConfigPatch, KnobError, Latency, TargetConfig};
pub use state::{TargetState, TargetStats};

/// The target's routes (`/health`, `/api/*`, `/admin/*`, the hub) over
/// `state` and a new [`Hub`], with the knobs layered onto `/api/*` only.
/// Merge other routers onto it to share one listener, then serve with
/// [`serve_router`].
pub fn router(state: Arc<TargetState>) -> Router {
    let hub = Hub::new(&state.config());
    router_with_hub(state, hub)
}

/// Like [`router`], over an existing hub.
pub fn router_with_hub(state: Arc<TargetState>, hub: Arc<Hub>) -> Router {
    let api = Router::new()
        .route("/api/login", post(api::login))
        .route(
            "/api/servers",
            get(api::list_servers).post(api::create_server),
        )
        .route("/api/jobs", post(api::submit_job))
        .route("/api/jobs/{id}", get(api::job))
        .route(
            "/api/commands",
            post(hub::post_command).with_state(hub.clone()),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            api::knobs,
        ));
    Router::new()
        .route("/health", get(api::health))
        .route(
            "/admin/config",
            get(admin::get_config).post(admin::post_config),
        )
        .route("/admin/stall", post(admin::post_stall))
        .route("/admin/stats", get(admin::get_stats))
        .route("/admin/crash", post(admin::post_crash))
        .merge(api)
        .with_state(state)
        .merge(hub.routes())
}

/// Serves `app` on `listener` (HTTP/1.1 and h2c, `TCP_NODELAY` on every
/// connection) until `shutdown` completes, then drains gracefully.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::trace!("could not set TCP_NODELAY: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Serves the target with these knobs on `listener` until `shutdown`
/// completes. A config that fails [`TargetConfig::validate`] is an
/// `InvalidInput` error.
pub async fn serve(
    listener: TcpListener,
    config: TargetConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let state = TargetState::new(config).map_err(invalid)?;
    serve_state(listener, state, shutdown).await
}

/// Like [`serve`], over an existing state (so the caller can read stats
/// or change knobs directly). On shutdown any stall is ended so held
/// requests can finish, and the hub closes its connections.
pub async fn serve_state(
    listener: TcpListener,
    state: Arc<TargetState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let hub = Hub::new(&state.config());
    serve_with_hub(listener, state, hub, shutdown).await
}

/// Like [`serve_state`], over an existing hub too.
pub async fn serve_with_hub(
    listener: TcpListener,
    state: Arc<TargetState>,
    hub: Arc<Hub>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router_with_hub(state.clone(), hub.clone());
    serve_router(listener, app, async move {
        shutdown.await;
        state.end_stall();
        state.close_jobs();
        hub.shutdown().await;
    })
    .await
}

fn invalid(e: KnobError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

/// A target serving in the background. Dropping it starts a graceful
/// shutdown (without waiting for it); [`RunningTarget::shutdown`] waits.
#[derive(Debug)]
pub struct RunningTarget {
    /// The address it listens on (the real port when bound to port 0).
    pub addr: SocketAddr,
    state: Arc<TargetState>,
    hub: Arc<Hub>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl RunningTarget {
    /// `http://<addr>`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The live state: knobs and counters.
    pub fn state(&self) -> &Arc<TargetState> {
        &self.state
    }

    /// The hub: connections, counters, kicks and restarts.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s, then
    /// the server task is aborted) and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(Duration::from_secs(5), &mut task).await {
                Ok(Ok(Err(e))) => tracing::warn!("built-in target stopped with an error: {e}"),
                Ok(_) => {}
                Err(_) => task.abort(),
            }
        }
    }
}

impl Drop for RunningTarget {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Listen backlog: a connection storm of thousands of agents arrives in a
/// few milliseconds; the default 1024 would drop SYNs (and cost the
/// clients a 1 s retransmit) before the hub ever saw them. The kernel caps
/// it at `net.core.somaxconn`.
pub const BACKLOG: u32 = 8192;

/// Bind a listener with [`BACKLOG`].
pub fn bind_listener(listen: SocketAddr) -> io::Result<TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(BACKLOG)
}

/// Binds `listen` and serves the target on the current runtime. Does not
/// check the address: callers exposing it to users run [`check_listen`]
/// first.
pub async fn spawn(listen: SocketAddr, config: TargetConfig) -> io::Result<RunningTarget> {
    let state = TargetState::new(config).map_err(invalid)?;
    let hub = Hub::new(&state.config());
    let listener = bind_listener(listen)?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve_with_hub(
        listener,
        state.clone(),
        hub.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    Ok(RunningTarget {
        addr,
        state,
        hub,
        stop: Some(stop),
        task: Some(task),
    })
}

/// Refuses a non-loopback listen address unless `allow_non_loopback`.
pub fn check_listen(addr: SocketAddr, allow_non_loopback: bool) -> Result<(), String> {
    if allow_non_loopback || addr.ip().to_canonical().is_loopback() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {addr}: it is not a loopback address, so other machines could \
         reach the built-in target, whose unauthenticated /admin endpoints change its behaviour; \
         listen on 127.0.0.1 or ::1, or pass --allow-non-loopback if you really mean it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_listen_allows_only_loopback_by_default() {
        let ok = [
            "127.0.0.1:0",
            "127.0.0.2:80",
            "[::1]:0",
            "[::ffff:127.0.0.1]:0",
        ];
        for a in ok {
            assert!(check_listen(a.parse().unwrap(), false).is_ok(), "{a}");
        }
        for a in ["0.0.0.0:0", "10.0.0.1:80", "[::]:0", "192.168.1.1:8080"] {
            let addr: SocketAddr = a.parse().unwrap();
            let e = check_listen(addr, false).unwrap_err();
            assert!(e.contains("--allow-non-loopback"), "{e}");
            assert!(check_listen(addr, true).is_ok());
        }
    }
}
