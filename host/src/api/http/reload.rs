//! `POST /v1.0/outrig/reload`: Outrig's own route, reloading the components
//! now and answering what changed (added, updated, removed, unchanged,
//! failed with messages) as JSON.

use super::HttpState;
use super::error::ApiError;
use crate::reload::ReloadCause;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// `POST /v1.0/outrig/reload`: 200 with the reload's report, even when some
/// changes failed (they are listed, and the old versions keep serving); 404
/// as any unknown route where the sidecar has no reloader (tests' routers).
pub async fn reload(State(state): State<Arc<HttpState>>) -> Response {
    match &state.reload {
        Some(trigger) => Json(trigger.reload(ReloadCause::Api).await).into_response(),
        None => ApiError::route_not_found().into_response(),
    }
}
