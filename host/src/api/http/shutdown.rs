//! `POST /v1.0/shutdown`: the app asks its sidecar to stop.

use super::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

/// Fires `ApiContext::shutdown` and answers 204 (a graceful server shutdown
/// still sends this answer).
///
/// Both `notify_waiters` and `notify_one` are called: the first wakes every
/// task already waiting on `notified()`, the second leaves a permit behind so
/// that a task that starts waiting only later still returns at once.
pub async fn shutdown(State(state): State<Arc<HttpState>>) -> StatusCode {
    tracing::info!("shutdown requested through the HTTP API");
    state.ctx.shutdown.notify_waiters();
    state.ctx.shutdown.notify_one();
    StatusCode::NO_CONTENT
}
