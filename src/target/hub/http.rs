//! The hub's HTTP endpoints.
//!
//! `POST /api/commands` (routed with the `/api` routes, under the knobs):
//! the body is a command as the `command` event takes it → 202
//! `{"id", "delivered"}`, 400 on a bad command.
//!
//! Admin endpoints (exempt from every knob):
//!
//! - `POST /admin/hub/kick` `{"fraction": 0.33}` → disconnects that
//!   fraction (0..=1, rounded) of the live hub connections of both kinds,
//!   every n/k-th in connection order → 200 `{"kicked": n}`.
//! - `POST /admin/hub/restart` `{"refuse_for": "2s"}` (body optional,
//!   default `"0"`) → closes every hub connection and answers new ones
//!   (the `/ws` upgrade, any `/socket.io/` request) 503 for that long →
//!   200 `{"closed": n, "refusing_for": "2s"}`.
//! - `GET /admin/hub/stats` → [`HubStats`](super::HubStats).

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

use super::St;
use crate::target::api::{error, parse_json, request_body};
use crate::target::knobs::{duration_str, format_duration};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KickRequest {
    fraction: f64,
}

pub(crate) async fn kick(State(hub): St, body: Bytes) -> Response {
    let req: KickRequest = match request_body(&body, "kick", r#"{"fraction": 0.33}"#) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match hub.kick(req.fraction) {
        Ok(n) => Json(json!({ "kicked": n })).into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("bad kick: {e}")),
    }
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RestartRequest {
    #[serde(with = "duration_str")]
    refuse_for: Duration,
}

pub(crate) async fn restart(State(hub): St, body: Bytes) -> Response {
    let req: RestartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RestartRequest::default()
    } else {
        match request_body(&body, "restart", r#"{"refuse_for": "2s"}"#) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    };
    let closed = hub.restart(req.refuse_for);
    Json(json!({ "closed": closed, "refusing_for": format_duration(req.refuse_for) }))
        .into_response()
}

pub(crate) async fn stats(State(hub): St) -> Response {
    Json(hub.stats()).into_response()
}

/// `POST /api/commands` → 202 `{"id", "delivered"}`, 400 on a bad command.
pub(crate) async fn post_command(State(hub): St, body: Bytes) -> Response {
    let payload = match parse_json(&body) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    match hub.send_command(payload).await {
        Ok((id, n)) => (
            StatusCode::ACCEPTED,
            Json(json!({ "id": id, "delivered": n })),
        )
            .into_response(),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}
