//! `DAPR_API_TOKEN`: when the sidecar has a token, every request but the
//! health probes must present it in the `dapr-api-token` header.

use super::HttpState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The header apps send the token in.
pub const API_TOKEN_HEADER: &str = "dapr-api-token";

/// Paths reachable without the token (GET only), as in Dapr: orchestrators
/// probe them without knowing the app's secret.
const PUBLIC_PATHS: [&str; 2] = ["/v1.0/healthz", "/v1.0/healthz/outbound"];

/// Middleware refusing requests without the right token (401, Dapr's
/// `invalid api token` message). The header is removed once checked so that it is
/// never passed on (e.g. to an invoked app).
pub async fn require_api_token(
    State(state): State<Arc<HttpState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(API_TOKEN_HEADER)
        .map(|value| value.as_bytes());
    let accepted = state.ctx.accepts_token(presented);
    if !accepted && !is_public(&request) {
        return ApiError::invalid_api_token().into_response();
    }
    request.headers_mut().remove(API_TOKEN_HEADER);
    next.run(request).await
}

fn is_public(request: &Request) -> bool {
    let path = request.uri().path().trim_end_matches('/');
    request.method() == Method::GET && PUBLIC_PATHS.contains(&path)
}
