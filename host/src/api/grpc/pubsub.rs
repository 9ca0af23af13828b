//! The publish API's gRPC codec: `PublishEvent`, `BulkPublishEvent` and
//! `BulkPublishEventAlpha1` (the same call under the name older SDKs use).
//!
//! Each function turns Dapr's messages (and the call's `traceparent` /
//! `tracestate` metadata) into the block's requests and calls
//! [`PubSubBlock`]; failures become statuses through `From<PubSubError>` in
//! `error`. A bulk publish that leaves entries unpublished fails with
//! `INTERNAL`, as in Dapr, naming them in the status details.

use super::proto::runtime;
use crate::blocks::pubsub::cloudevent::TraceHeaders;
use crate::blocks::pubsub::{
    BulkPublishEntry, BulkPublishRequest, Metadata, PubSubBlock, PubSubError, PublishRequest,
};
use std::collections::HashMap;
use tonic::metadata::MetadataMap;

/// `PublishEvent`: publishes `data`, wrapped as a CloudEvent unless raw.
pub async fn publish(
    block: &PubSubBlock,
    request: runtime::PublishEventRequest,
    trace: TraceHeaders,
) -> Result<(), PubSubError> {
    let publish = PublishRequest {
        pubsub: request.pubsub_name,
        topic: request.topic,
        data: request.data,
        content_type: request.data_content_type,
        metadata: metadata(request.metadata),
        trace,
    };
    block.publish(publish).await
}

/// `BulkPublishEvent[Alpha1]`: publishes every entry; an empty
/// `failedEntries` on success.
pub async fn bulk_publish(
    block: &PubSubBlock,
    request: runtime::BulkPublishRequest,
    trace: TraceHeaders,
) -> Result<runtime::BulkPublishResponse, PubSubError> {
    let entries = request
        .entries
        .into_iter()
        .map(|entry| BulkPublishEntry {
            entry_id: entry.entry_id,
            event: entry.event,
            content_type: entry.content_type,
            metadata: metadata(entry.metadata),
        })
        .collect();
    let publish = BulkPublishRequest {
        pubsub: request.pubsub_name,
        topic: request.topic,
        entries,
        metadata: metadata(request.metadata),
        trace,
    };
    block.bulk_publish(publish).await?;
    Ok(runtime::BulkPublishResponse::default())
}

/// The W3C trace context the caller sent as call metadata.
pub fn trace_headers(call: &MetadataMap) -> TraceHeaders {
    let get = |name: &str| {
        call.get(name)
            .and_then(|value| value.to_str().ok())
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    TraceHeaders {
        traceparent: get("traceparent"),
        tracestate: get("tracestate"),
    }
}

fn metadata(map: HashMap<String, String>) -> Metadata {
    map.into_iter().collect()
}
