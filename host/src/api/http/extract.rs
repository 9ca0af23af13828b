//! Request extractors that fail with Dapr's error body.
//!
//! Axum's own extractors reject with plain-text bodies; these wrap them so a
//! bad path, query or body is always answered as Dapr answers it.

use super::HttpState;
use super::error::ApiError;
use crate::blocks::state::Metadata;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// The prefix of query parameters that are passed to the component as metadata.
const METADATA_PREFIX: &str = "metadata.";

/// The request body, read whole within the body limit.
pub struct Body(pub Bytes);

impl FromRequest<Arc<HttpState>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &Arc<HttpState>) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Body(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::body_too_large(state.max_body_bytes))
            }
            Err(rejection) => Err(ApiError::body_read(rejection.body_text())),
        }
    }
}

impl Body {
    /// The body parsed as JSON; borrowed fields (such as `RawValue`s) point into it.
    pub fn json<'a, T: Deserialize<'a>>(&'a self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.0).map_err(ApiError::malformed)
    }
}

/// Path parameters; a parameter that is not valid percent-encoded UTF-8 is a 400.
pub struct PathParams<T>(pub T);

impl<T, S> FromRequestParts<S> for PathParams<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|rejection| ApiError::bad_parameter(rejection.body_text()))
    }
}

/// The query string as ordered name/value pairs.
pub struct QueryArgs(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryArgs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| QueryArgs(pairs))
            .map_err(|rejection| ApiError::bad_parameter(rejection.body_text()))
    }
}

impl QueryArgs {
    /// The first value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether parameter `name` is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// The `metadata.*` parameters without their prefix (the first value of each wins).
    pub fn metadata(&self) -> Metadata {
        let mut metadata = Metadata::new();
        for (key, value) in &self.0 {
            if let Some(name) = key.strip_prefix(METADATA_PREFIX) {
                metadata
                    .entry(name.to_owned())
                    .or_insert_with(|| value.clone());
            }
        }
        metadata
    }
}
