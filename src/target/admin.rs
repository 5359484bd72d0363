//! Admin endpoints (exempt from every knob):
//!
//! - `GET /admin/config` → the knobs in force, as JSON.
//! - `POST /admin/config` with a partial JSON object, e.g.
//!   `{"latency":"5ms","error_rate":0.01,"concurrency":8,"queue":100}`
//!   (also `job_workers`, `job_duration`, `page_size`; `"concurrency": null` removes the
//!   limit; `hub_ping_interval` / `hub_ping_timeout` only unchanged, they
//!   are fixed when the target starts) → 200 with the new config, 400
//!   `bad config: …` on unknown keys or bad values (a [`KnobError`](super::KnobError)).
//! - `POST /admin/stall` with `{"duration":"500ms"}` → starts a stall now
//!   (`"0"` ends any stall) → 200 `{"stalled_for":"500ms"}`.
//! - `GET /admin/stats` → `{"requests","in_flight","queued","stalled","rejected","errors_injected",
//!   "jobs_queued","jobs_running"}`.
//! - `POST /admin/crash` → 202 `{"crashing": pid}`, then the process kills
//!   itself with SIGKILL a moment later (an instance lost as `kill -9`
//!   loses it: no graceful close, the kernel resets its connections). For
//!   failover tests against `stampede target --processes N --respawn D`,
//!   where one worker dies and is replaced. Only a target that runs as its
//!   own process allows it ([`allow_crash`]); a target inside `stampede
//!   run` answers 409, since the crash would end the run itself.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::api::{error, request_body};
use super::knobs::{duration_str, format_duration, ConfigPatch};
use super::state::TargetState;

type St = State<Arc<TargetState>>;

/// Whether `POST /admin/crash` may kill this process.
static CRASH_ALLOWED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Let `POST /admin/crash` kill this process: set by `stampede target`
/// (standalone or a worker), never by a run's in-process target.
pub fn allow_crash(allowed: bool) {
    CRASH_ALLOWED.store(allowed, std::sync::atomic::Ordering::Release);
}

/// How long after answering a crash request the process dies: enough for
/// the answer to leave, short enough that nothing else is served.
const CRASH_AFTER: std::time::Duration = std::time::Duration::from_millis(20);

pub(crate) async fn post_crash() -> Response {
    if !CRASH_ALLOWED.load(std::sync::atomic::Ordering::Acquire) {
        return error(
            StatusCode::CONFLICT,
            "crash refused: this target runs inside the load generator's own process; \
             run it as `stampede target --processes N --respawn 1s` to lose an instance"
                .to_string(),
        );
    }
    let pid = std::process::id();
    // A thread, not a task: it fires even if the runtime is busy.
    std::thread::spawn(move || {
        std::thread::sleep(CRASH_AFTER);
        // SAFETY: kill(2) on our own pid with SIGKILL.
        unsafe {
            libc::kill(pid as libc::pid_t, libc::SIGKILL);
        }
    });
    (StatusCode::ACCEPTED, Json(json!({ "crashing": pid }))).into_response()
}

pub(crate) async fn get_config(State(state): St) -> Response {
    Json(state.config()).into_response()
}

pub(crate) async fn post_config(State(state): St, body: Bytes) -> Response {
    let patch: ConfigPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad config: {e}")),
    };
    match state.update_config(|current| patch.apply(current)) {
        Ok(config) => Json(config).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("bad config: {e}")),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StallRequest {
    #[serde(with = "duration_str")]
    duration: std::time::Duration,
}

pub(crate) async fn post_stall(State(state): St, body: Bytes) -> Response {
    let req: StallRequest = match request_body(&body, "stall", r#"{"duration": "500ms"}"#) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    state.stall(req.duration);
    Json(json!({ "stalled_for": format_duration(req.duration) })).into_response()
}

pub(crate) async fn get_stats(State(state): St) -> Response {
    Json(state.stats()).into_response()
}
