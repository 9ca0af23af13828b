//! `DAPR_API_TOKEN`: when the sidecar has a token, every request but the
//! health probes must present it in the `dapr-api-token` header.

use super::HttpState;
use super::error::ApiError;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
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
    let Some(expected) = state.ctx.api_token.as_deref().filter(|t| !t.is_empty()) else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(API_TOKEN_HEADER)
        .map(|value| value.as_bytes());
    let accepted = presented.is_some_and(|token| same_secret(token, expected.as_bytes()));
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

/// Compares two secrets in time independent of where they differ and of
/// their lengths: both are hashed, then every digest byte is compared.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cres"));
        assert!(!same_secret(b"s3cret", b"s3cret2"));
        assert!(!same_secret(b"", b"x"));
    }
}
