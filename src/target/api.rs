//! The `/api/*` endpoints and the knobs middleware in front of them.
//!
//! | endpoint                | ok  | errors                                  |
//! |-------------------------|-----|-----------------------------------------|
//! | `POST /api/login`       | 200 | 400 no `user`                           |
//! | `GET /api/servers`      | 200 | 400 bad `page` / `per_page`             |
//! | `POST /api/servers`     | 201 | 401 no token, 400 no `name`             |
//! | `POST /api/jobs`        | 202 | 401 no token, 400 body not JSON, 503 queue full |
//! | `GET /api/jobs/{id}`    | 200 | 404 unknown, forgotten or malformed id  |
//!
//! Every error body is `{"error": "..."}` (built by `error`, also for the
//! admin and hub endpoints, which parse their bodies with `parse_json` /
//! `request_body`). Knobs (stall, concurrency, latency, errors) apply to
//! matched `/api/*` routes only.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::jobs::Refused;
use super::knobs::MAX_PAGE_SIZE;
use super::state::{with_rng, Admission, Live, Server, TargetState};

type St = State<Arc<TargetState>>;

/// `{"error": message}` with this status.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    ApiError(status, message.into()).into_response()
}

/// An error answer: `{"error": message}` with this status.
pub(crate) struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// The knobs, in order: stall, concurrency permit (bounded queue, else
/// 503), service time held with the permit, error injection, then the
/// handler.
///
/// With a concurrency limit, the admission (the place in the FIFO queue)
/// and the service time run in a detached task ([`serve_slot`]) that the
/// handler awaits: a request whose client gives up (its connection closes,
/// so the handler's future is dropped) keeps its place in the queue and,
/// once admitted, holds its permit for its whole service time, as a real
/// server's worker would. A backlog therefore outlives the clients that
/// made it, as it does in servers that queue. The permit is released as
/// the service time ends (the answer itself is built after), so a slot is
/// busy for the service time only, and the capacity is `concurrency /
/// mean latency`.
pub(crate) async fn knobs(State(state): St, req: Request, next: Next) -> Response {
    state.count_request();
    state.wait_stall().await;
    let live = state.live();
    if live.limiter.is_some() {
        match tokio::spawn(serve_slot(state.clone(), live.clone())).await {
            Ok(true) => {}
            Ok(false) => return error(StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        }
    } else {
        let _in_flight = state.in_flight();
        service_time(&live).await;
    }
    let _in_flight = state.in_flight();
    let config = &live.config;
    if config.error_rate > 0.0 && with_rng(|rng| rng.gen::<f64>() < config.error_rate) {
        state.count_injected();
        return error(StatusCode::INTERNAL_SERVER_ERROR, "injected");
    }
    next.run(req).await
}

/// A limited request's place in the queue and its service time, run as a
/// task of its own so that it completes even when the client has gone.
/// False: refused (the queue was full).
async fn serve_slot(state: Arc<TargetState>, live: Arc<Live>) -> bool {
    match state.admit(&live).await {
        Admission::Admitted(_permit) => {
            let _in_flight = state.in_flight();
            service_time(&live).await;
            true
        }
        Admission::Overloaded => false,
    }
}

/// Sleeps for one draw of the latency knob.
async fn service_time(live: &Live) {
    let config = &live.config;
    if !config.latency.is_none() {
        let service = with_rng(|rng| config.latency.sample(rng));
        if !service.is_zero() {
            tokio::time::sleep(service).await;
        }
    }
}

/// `GET /health` — exempt from every knob.
pub(crate) async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// A request body that must be JSON; otherwise a 400 saying so.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("body is not valid JSON: {e}"),
        )
    })
}

/// An admin request body: `T` as JSON, or a 400 `bad <what>: <why>
/// (expected <example>)`.
pub(crate) fn request_body<T: DeserializeOwned>(
    body: &[u8],
    what: &str,
    example: &str,
) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError(
            StatusCode::BAD_REQUEST,
            format!("bad {what}: {e} (expected {example})"),
        )
    })
}

fn non_empty_str<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}

/// Requires `Authorization: Bearer tok-…`.
fn authorized(headers: &HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t.len() > "tok-".len() && t.starts_with("tok-"));
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or invalid token: send `Authorization: Bearer <token>` with a token from POST /api/login".into(),
        ))
    }
}

/// `POST /api/login` `{"user": "...", "password": "..."}` → `{"token": "tok-<user>-<n>"}`.
pub(crate) async fn login(State(state): St, body: Bytes) -> ApiResult {
    let body = parse_json(&body)?;
    let user = non_empty_str(&body, "user").ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "`user` (a non-empty string) is required".into(),
        )
    })?;
    Ok(Json(json!({ "token": state.token(user) })).into_response())
}

#[derive(Serialize)]
struct ServerPage {
    items: Vec<Server>,
    page: usize,
    per_page: usize,
    total: usize,
}

/// `GET /api/servers?page=N&per_page=M` (page from 1; per_page 1..=1000,
/// default `page_size`).
pub(crate) async fn list_servers(State(state): St, RawQuery(query): RawQuery) -> Response {
    let mut page = 1usize;
    let mut per_page = None;
    for pair in query.as_deref().unwrap_or("").split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let target = match key {
            "page" => &mut page,
            "per_page" => per_page.insert(0),
            _ => continue,
        };
        match value.parse::<usize>() {
            Ok(n) if n >= 1 => *target = n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("`{key}` must be a whole number of at least 1, got `{value}`"),
                )
            }
        }
    }
    let per_page = match per_page {
        Some(n) if n > MAX_PAGE_SIZE => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("`per_page` must be at most {MAX_PAGE_SIZE}, got {n}"),
            )
        }
        Some(n) => n,
        None => state.live().config.page_size,
    };
    let (items, total) = state.list_servers(page, per_page);
    Json(ServerPage {
        items,
        page,
        per_page,
        total,
    })
    .into_response()
}

/// `POST /api/servers` `{"name": "..."}` → 201 `{"id", "name", "status"}`.
pub(crate) async fn create_server(State(state): St, headers: HeaderMap, body: Bytes) -> ApiResult {
    authorized(&headers)?;
    let body = parse_json(&body)?;
    let name = non_empty_str(&body, "name").ok_or_else(|| {
        ApiError(
            StatusCode::BAD_REQUEST,
            "`name` (a non-empty string) is required".into(),
        )
    })?;
    Ok((StatusCode::CREATED, Json(state.create_server(name))).into_response())
}

/// `POST /api/jobs` (any JSON body, or none) → 202 `{"id": "job-<ms>-<seq>", "status": "queued"}`;
/// 503 `job queue full` when [`MAX_JOBS`](super::jobs::MAX_JOBS) jobs are unfinished.
pub(crate) async fn submit_job(State(state): St, headers: HeaderMap, body: Bytes) -> ApiResult {
    authorized(&headers)?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        parse_json(&body)?;
    }
    let id = state.new_job().map_err(|refused| {
        let why = match refused {
            Refused::Full => "job queue full",
            Refused::Closed => "shutting down",
        };
        ApiError(StatusCode::SERVICE_UNAVAILABLE, why.into())
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued" })),
    )
        .into_response())
}

/// `GET /api/jobs/{id}` → `{"id", "status": "queued" | "running" | "done",
/// "queued_at", "started_at", "done_at", "queue_ms", "run_ms"}`: times in
/// Unix ms (null until then), time queued and time running so far.
pub(crate) async fn job(State(state): St, Path(id): Path<String>) -> Response {
    match state.jobs.get(&id) {
        Some(view) => Json(view).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("no job `{id}`")),
    }
}
