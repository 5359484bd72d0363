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
