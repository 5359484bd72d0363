//! The hub's admin call: a server-side drop (`how = "server"`) asks the
//! hub's kick endpoint to close a fraction of its connections, and reads
//! back how many it closed.

use super::recovery::KICKED_UNKNOWN;
use super::Fleet;
use crate::engine::Shared;
use crate::protocol::http::{Conn, HttpError, OutRequest};
use std::time::Duration;

/// Why the kick failed (the run goes on; the drop counts no agents).
#[derive(Debug, thiserror::Error)]
pub enum KickError {
    #[error("no admin endpoint")]
    NoEndpoint,
    #[error("timed out")]
    TimedOut { timeout: Duration },
    #[error(transparent)]
    Send(#[from] HttpError),
    #[error("HTTP {status}")]
    Status { status: u16 },
}

/// POST `{"fraction": f}` to the kick endpoint; the number kicked
/// ([`KICKED_UNKNOWN`] when the answer does not say).
pub(super) async fn kick(shared: &Shared, fleet: &Fleet, fraction: f64) -> Result<u64, KickError> {
    let (endpoint, path) = fleet.admin.as_ref().ok_or(KickError::NoEndpoint)?;
    let mut conn = Conn::default();
    let mut request = OutRequest {
        method: http::Method::POST,
        path: path.clone(),
        ..Default::default()
    };
    request.headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    request.body = format!("{{\"fraction\":{fraction}}}");
    let timeout = shared.scenario.hub_settings.timeout;
    let response =
        tokio::time::timeout(timeout, conn.send(&shared.client, endpoint, &request, true))
            .await
            .map_err(|_| KickError::TimedOut { timeout })??;
    if !(200..300).contains(&response.status) {
        return Err(KickError::Status {
            status: response.status,
        });
    }
    let body: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or_default();
    // The built-in hub answers {"kicked": n}; another hub may not say.
    Ok(body
        .get("kicked")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(KICKED_UNKNOWN))
}
