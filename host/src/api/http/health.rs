//! Health probes: `GET /v1.0/healthz` and `GET /v1.0/healthz/outbound`.
//!
//! The HTTP server only serves once the sidecar has loaded its components,
//! so the outbound probe (what the app may call) answers 204 from the
//! start. The full probe also waits, as Dapr's does, until the app listens
//! and its pub/sub subscriptions are in place at the brokers, so what is
//! published once it says ready reaches the app.

use super::HttpState;
use super::error::ApiError;
use super::extract::QueryArgs;
use axum::extract::State;
use axum::http::StatusCode;
use std::sync::Arc;

/// `GET /v1.0/healthz[?appid=ID]`: 204, or Dapr's 500 when `appid` names
/// another app (name resolvers use it to spot a replaced app) or while
/// delivery to the app is not in place yet.
pub async fn healthz(
    State(state): State<Arc<HttpState>>,
    query: QueryArgs,
) -> Result<StatusCode, ApiError> {
    if query.has("appid") && query.get("appid") != Some(state.ctx.app_id.as_str()) {
        return Err(ApiError::health_app_id_mismatch());
    }
    if !state.ctx.delivery.is_ready() {
        return Err(ApiError::health_not_ready());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1.0/healthz/outbound`: 204 (the outbound side needs no app).
pub async fn outbound() -> StatusCode {
    StatusCode::NO_CONTENT
}
