//! `POST /v1.0/shutdown`: the app asks its sidecar to stop.

use super::HttpState;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

/// Fires `ApiContext::shutdown` and answers 204 (a graceful server shutdown
/// still sends this answer).
pub async fn shutdown(State(state): State<Arc<HttpState>>) -> StatusCode {
    tracing::info!("shutdown requested through the HTTP API");
    state.ctx.request_shutdown();
    StatusCode::NO_CONTENT
}
