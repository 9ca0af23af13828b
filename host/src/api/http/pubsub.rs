//! The publish API's HTTP codec: `/v1.0/publish/...` and bulk publish
//! (`/v1.0-alpha1/publish/bulk/...`, `/v1.0/publish/bulk/...`).
//!
//! Handlers read Dapr's wire format (the body, its `Content-Type`, the
//! `traceparent`/`tracestate` headers, `metadata.*` query parameters) into the
//! block's requests and call [`PubSubBlock`](crate::blocks::pubsub::PubSubBlock).
//! A bulk entry's `event` is JSON in the request; it becomes bytes by its
//! `contentType` as Dapr converts it: JSON (and CloudEvents) as written, text
//! as the string's bytes, `application/octet-stream` base64-decoded.

use super::HttpState;
use super::error::ApiError;
use super::extract::{Body, PathParams, QueryArgs};
use crate::blocks::pubsub::cloudevent::{CLOUD_EVENT_CONTENT_TYPE, TraceHeaders, has_media_type};
use crate::blocks::pubsub::{
    BulkPublishEntry, BulkPublishRequest, Metadata, PubSubError, PublishRequest,
};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::sync::Arc;

/// Dapr's reason when an entry's event does not fit its content type.
const MISMATCH: &str = "error: mismatch between contentType and event";

/// One entry of a bulk publish body.
#[derive(Deserialize)]
struct WireBulkEntry<'a> {
    #[serde(default, rename = "entryId")]
    entry_id: String,
    #[serde(default, borrow)]
    event: Option<&'a RawValue>,
    #[serde(default, rename = "contentType")]
    content_type: String,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// `POST /v1.0/publish/{pubsub}/{topic}`: publishes the body; 204.
pub async fn publish(
    State(state): State<Arc<HttpState>>,
    PathParams((pubsub, topic)): PathParams<(String, String)>,
    query: QueryArgs,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request = PublishRequest {
        pubsub,
        topic,
        data: body.0.to_vec(),
        content_type: header_text(&headers, header::CONTENT_TYPE.as_str()),
        metadata: query.metadata(),
        trace: trace_headers(&headers),
    };
    state.pubsub.publish(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0/publish/{pubsub}` (or with a trailing `/`), and the bulk
/// publish routes without a topic: Dapr answers these with its own error
/// (no component, unknown component, empty topic) rather than a missing
/// route.
pub async fn publish_without_topic(
    State(state): State<Arc<HttpState>>,
    PathParams(pubsub): PathParams<String>,
) -> Result<StatusCode, ApiError> {
    state.pubsub.check_target(&pubsub, "")?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1.0[-alpha1]/publish/bulk/{pubsub}/{topic}`: publishes a JSON
/// array of `{entryId, event, contentType, metadata}`; 204 when every entry
/// was published, else 500 with the failed entries (in `error`).
pub async fn bulk_publish(
    State(state): State<Arc<HttpState>>,
    PathParams((pubsub, topic)): PathParams<(String, String)>,
    query: QueryArgs,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // Dapr checks the target before it reads the body.
    state.pubsub.check_target(&pubsub, &topic)?;
    let wire: Vec<WireBulkEntry<'_>> = match serde_json::from_slice(&body.0) {
        Ok(entries) => entries,
        Err(err) => {
            return Err(PubSubError::BulkUnreadable {
                pubsub,
                topic,
                reason: err.to_string(),
            }
            .into());
        }
    };
    let mut entries = Vec::with_capacity(wire.len());
    for entry in wire {
        let raw = entry.event.map_or("null", RawValue::get);
        let event = match event_bytes(raw, &entry.content_type) {
            Ok(event) => event,
            Err(reason) => {
                return Err(PubSubError::BulkEntryInvalid {
                    pubsub,
                    topic,
                    reason: format!("entry {}: {reason}", entry.entry_id),
                }
                .into());
            }
        };
        entries.push(BulkPublishEntry {
            entry_id: entry.entry_id,
            event,
            content_type: entry.content_type,
            metadata: entry.metadata.unwrap_or_default(),
        });
    }
    let request = BulkPublishRequest {
        pubsub,
        topic,
        entries,
        metadata: query.metadata(),
        trace: trace_headers(&headers),
    };
    state.pubsub.bulk_publish(request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An entry's event (JSON text) as the bytes to publish, by its content
/// type, as Dapr's `ConvertEventToBytes` does.
fn event_bytes(event: &str, content_type: &str) -> Result<Vec<u8>, String> {
    let text = || serde_json::from_str::<String>(event).map_err(|_| MISMATCH.to_owned());
    if has_media_type(content_type, "application/octet-stream") {
        base64::engine::general_purpose::STANDARD
            .decode(text()?)
            .map_err(|err| {
                format!("error: unable to decode base64 application/octect-stream data: {err}")
            })
    } else if content_type.to_ascii_lowercase().starts_with("text/")
        || has_media_type(content_type, "application/xml")
    {
        text().map(String::into_bytes)
    } else if has_media_type(content_type, "application/json")
        || has_media_type(content_type, CLOUD_EVENT_CONTENT_TYPE)
    {
        Ok(event.as_bytes().to_vec())
    } else {
        Err(MISMATCH.to_owned())
    }
}

/// The W3C trace context headers of the request.
fn trace_headers(headers: &HeaderMap) -> TraceHeaders {
    let get = |name: &str| Some(header_text(headers, name)).filter(|value| !value.is_empty());
    TraceHeaders {
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
    }
}

/// A header's value as text; empty when absent or not text.
fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
