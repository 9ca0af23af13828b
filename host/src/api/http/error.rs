//! The one place where failures become HTTP responses.
//!
//! Every handler, extractor and middleware returns [`ApiError`]; its
//! [`IntoResponse`] writes Dapr's body, `{"errorCode": "...", "message": "..."}`,
//! with the status Dapr uses. Block errors arrive through `From`, which maps
//! their [`ErrorKind`] with [`status_for`]; nothing else picks a status code.

use crate::blocks::pubsub::{FailedEntry, PubSubError};
use crate::blocks::state::error::ERR_MALFORMED_REQUEST;
use crate::blocks::state::{ErrorKind, StateError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Dapr's code for a request body that could not be read.
const ERR_BODY_READ: &str = "ERR_BODY_READ";

/// A failed request as the HTTP API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// The entries a bulk publish did not publish (`failedEntries`).
    failed_entries: Vec<FailedEntry>,
}

/// Dapr's error body; a failed bulk publish adds its `failedEntries`.
#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "errorCode")]
    error_code: &'a str,
    message: &'a str,
    #[serde(rename = "failedEntries", skip_serializing_if = "Vec::is_empty")]
    failed_entries: Vec<WireFailedEntry<'a>>,
}

/// One entry of `failedEntries`.
#[derive(Serialize)]
struct WireFailedEntry<'a> {
    #[serde(rename = "entryId")]
    entry_id: &'a str,
    error: &'a str,
}

impl ApiError {
    /// A body or parameter that is not what the route expects (400 `ERR_MALFORMED_REQUEST`).
    pub fn malformed(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ERR_MALFORMED_REQUEST,
            format!("failed deserializing HTTP body: {detail}"),
        )
    }

    /// A query or path parameter that is not valid (400 `ERR_MALFORMED_REQUEST`).
    pub fn bad_parameter(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ERR_MALFORMED_REQUEST,
            detail.to_string(),
        )
    }

    /// The body is larger than the sidecar accepts (413; Dapr's `--max-body-size`).
    pub fn body_too_large(limit_bytes: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ERR_BODY_READ,
            format!(
                "failed to read request body: the body is larger than the limit of {limit_bytes} bytes"
            ),
        )
    }

    /// The body could not be read for another reason (400 `ERR_BODY_READ`).
    pub fn body_read(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            ERR_BODY_READ,
            format!("failed to read request body: {detail}"),
        )
    }

    /// The sidecar failed to produce an answer (500 `ERR_INTERNAL`).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_INTERNAL",
            detail.to_string(),
        )
    }

    /// No route matches. Dapr sends every unmatched request to service
    /// invocation, which answers this when no target app id is given.
    pub fn route_not_found() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "ERR_DIRECT_INVOKE",
            "failed getting app id either from the URL path or the header dapr-app-id".to_owned(),
        )
    }

    /// The `dapr-api-token` header is missing or wrong: 401 with Dapr's
    /// message, in the same JSON body as every other error so clients need
    /// one error parser.
    pub fn invalid_api_token() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "ERR_UNAUTHENTICATED",
            "invalid api token".to_owned(),
        )
    }

    /// `/v1.0/healthz?appid=X` names another app.
    pub fn health_app_id_mismatch() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            "dapr app-id does not match".to_owned(),
        )
    }

    /// `/v1.0/healthz` before the app's subscriptions are in place.
    pub fn health_not_ready() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_NOT_READY",
            "dapr is not ready".to_owned(),
        )
    }

    fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        ApiError {
            status,
            code,
            message,
            failed_entries: Vec::new(),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The Dapr error code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The status Dapr uses for each kind of failure.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
        // Dapr has no 503 precedent for a busy component; its rate-limit
        // middleware answers 429, which also tells clients to back off.
        ErrorKind::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::FailedPrecondition
        | ErrorKind::Unimplemented
        | ErrorKind::Unavailable
        | ErrorKind::DeadlineExceeded
        | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<StateError> for ApiError {
    fn from(error: StateError) -> Self {
        ApiError::new(status_for(error.kind()), error.code(), error.to_string())
    }
}

impl From<PubSubError> for ApiError {
    fn from(error: PubSubError) -> Self {
        // Dapr's HTTP statuses for pub/sub, where they do not follow the kind.
        let status = match &error {
            PubSubError::NotConfigured { .. } => StatusCode::BAD_REQUEST,
            PubSubError::NameEmpty
            | PubSubError::NotFound { .. }
            | PubSubError::TopicEmpty { .. } => StatusCode::NOT_FOUND,
            PubSubError::CloudEvent { .. } => StatusCode::INTERNAL_SERVER_ERROR,
            _ => status_for(error.kind()),
        };
        let mut api = ApiError::new(status, error.code(), error.to_string());
        api.failed_entries = error.failed_entries().to_vec();
        api
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        tracing::debug!(status = %self.status, code = self.code, message = %self.message, "request failed");
        let body = ErrorBody {
            error_code: self.code,
            message: &self.message,
            failed_entries: self
                .failed_entries
                .iter()
                .map(|entry| WireFailedEntry {
                    entry_id: &entry.entry_id,
                    error: &entry.error,
                })
                .collect(),
        };
        match serde_json::to_vec(&body) {
            Ok(bytes) => (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                bytes,
            )
                .into_response(),
            // Serialising two strings cannot fail; answer something all the same.
            Err(_) => self.status.into_response(),
        }
    }
}
