//! [`PubSubBlock`]: Dapr's publish API over whatever [`Broker`] the catalog
//! holds.
//!
//! The block is the one place that knows Dapr's publish rules, so the HTTP
//! and gRPC codecs cannot drift apart:
//! - the component and topic are checked in Dapr's order (no component at
//!   all, empty name, unknown component, empty topic);
//! - `metadata.rawPayload` and `metadata.ttlInSeconds` are parsed; the TTL
//!   becomes the envelope's `expiration` and the broker's own TTL;
//! - payloads are wrapped as CloudEvents ([`cloudevent`]) unless raw;
//! - component failures become [`PubSubError`]s carrying Dapr's error code,
//!   bulk failures per entry;
//! - after a publish, subscribers of the topic in this sidecar are woken
//!   ([`PublishSignals`]).

use super::cloudevent::{self, CLOUD_EVENT_CONTENT_TYPE, EnvelopeContext, TraceHeaders};
use super::error::{FailedEntry, PubSubError};
use super::{Broker, Metadata, OutgoingMessage, PublishSignals};
use crate::blocks::catalog::LoadStatus;
use crate::blocks::{Catalog, ComponentError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::SystemTime;

/// The request metadata key that publishes the payload as it is, unwrapped.
pub const RAW_PAYLOAD_METADATA_KEY: &str = "rawPayload";

/// The request metadata key that sets a message's time to live.
pub const TTL_METADATA_KEY: &str = "ttlInSeconds";

/// One publish (`POST /v1.0/publish/...`, `PublishEvent`).
#[derive(Debug, Clone, Default)]
pub struct PublishRequest {
    /// The pub/sub component.
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// The payload as the app sent it.
    pub data: Vec<u8>,
    /// The payload's content type as the app declared it (may be empty).
    pub content_type: String,
    /// The request's metadata: options for the sidecar and the broker.
    pub metadata: Metadata,
    /// The request's W3C trace context.
    pub trace: TraceHeaders,
}

/// A bulk publish (`POST /v1.0[-alpha1]/publish/bulk/...`, `BulkPublishEvent`).
#[derive(Debug, Clone, Default)]
pub struct BulkPublishRequest {
    /// The pub/sub component.
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// The events, in order.
    pub entries: Vec<BulkPublishEntry>,
    /// Metadata for every entry (an entry's own metadata wins per key);
    /// `rawPayload` is read from here only.
    pub metadata: Metadata,
    /// The request's W3C trace context, carried by every event.
    pub trace: TraceHeaders,
}

/// One event of a bulk publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkPublishEntry {
    /// The app's id for the entry, unique within the request; failures name it.
    pub entry_id: String,
    /// The event's bytes.
    pub event: Vec<u8>,
    /// The event's content type (may be empty).
    pub content_type: String,
    /// The entry's own metadata.
    pub metadata: Metadata,
}

/// The pub/sub building block for one app: validation and CloudEvent
/// wrapping in front of the catalog's brokers.
pub struct PubSubBlock {
    app_id: String,
    catalog: Arc<Catalog>,
    signals: Arc<PublishSignals>,
}

/// The sidecar's own options of a publish, parsed from its metadata.
struct Options {
    raw_payload: bool,
    ttl_seconds: Option<u32>,
}

impl PubSubBlock {
    /// The block for `app_id` (the `source` of its events), publishing to the
    /// brokers `catalog` holds at each call and waking local subscribers
    /// through `signals`.
    pub fn new(app_id: &str, catalog: Arc<Catalog>, signals: Arc<PublishSignals>) -> Self {
        PubSubBlock {
            app_id: app_id.to_owned(),
            catalog,
            signals,
        }
    }

    /// Publishes one payload, wrapped as a CloudEvent unless raw.
    pub async fn publish(&self, request: PublishRequest) -> Result<(), PubSubError> {
        let broker = self.broker(&request.pubsub, &request.topic)?;
        let options = Options::parse(&request.pubsub, &request.metadata)?;
        let message = self.message(
            &request.pubsub,
            &request.topic,
            &request.trace,
            &options,
            request.data,
            request.content_type,
            request.metadata,
        )?;
        if let Err(failures) = broker.publish(&request.topic, vec![message]).await {
            let source = failures
                .into_iter()
                .next()
                .map(|failure| failure.error)
                .unwrap_or_else(refused_without_reason);
            return Err(PubSubError::Publish {
                pubsub: request.pubsub,
                topic: request.topic,
                source,
            });
        }
        self.signals.published(&request.pubsub, &request.topic);
        Ok(())
    }

    /// Publishes several events in one broker call. Entries are checked (and
    /// wrapped) first, so a malformed one fails the request before anything
    /// is published; afterwards, entries the broker refused are reported in
    /// [`PubSubError::BulkPublish`] while the others stay published.
    pub async fn bulk_publish(&self, request: BulkPublishRequest) -> Result<(), PubSubError> {
        let broker = self.broker(&request.pubsub, &request.topic)?;
        let options = Options::parse(&request.pubsub, &request.metadata)?;
        let (pubsub, topic) = (request.pubsub, request.topic);
        let mut seen = HashSet::new();
        let mut ids = Vec::with_capacity(request.entries.len());
        let mut messages = Vec::with_capacity(request.entries.len());
        for entry in request.entries {
            if entry.entry_id.is_empty() || !seen.insert(entry.entry_id.clone()) {
                return Err(PubSubError::BulkEntryInvalid {
                    pubsub,
                    topic,
                    reason: "entryId is duplicated or not present for entry".to_owned(),
                });
            }
            let mut metadata = request.metadata.clone();
            metadata.extend(entry.metadata);
            let options = Options {
                ttl_seconds: parse_ttl(&pubsub, &metadata)?,
                ..options
            };
            messages.push(self.message(
                &pubsub,
                &topic,
                &request.trace,
                &options,
                entry.event,
                entry.content_type,
                metadata,
            )?);
            ids.push(entry.entry_id);
        }
        if messages.is_empty() {
            return Ok(());
        }
        let count = messages.len();
        let Err(failures) = broker.publish(&topic, messages).await else {
            self.signals.published(&pubsub, &topic);
            return Ok(());
        };
        let mut failed: Vec<FailedEntry> = failures
            .into_iter()
            .filter_map(|failure| {
                ids.get(failure.index).map(|id| FailedEntry {
                    entry_id: id.clone(),
                    error: failure.error.to_string(),
                })
            })
            .collect();
        if failed.is_empty() {
            // The broker failed without naming an entry: none counts as published.
            let error = refused_without_reason().to_string();
            failed = ids
                .into_iter()
                .map(|entry_id| FailedEntry {
                    entry_id,
                    error: error.clone(),
                })
                .collect();
        }
        if failed.len() < count {
            self.signals.published(&pubsub, &topic);
        }
        Err(PubSubError::BulkPublish {
            pubsub,
            topic,
            failed,
        })
    }

    /// Checks that `pubsub` serves and `topic` is named, as a publish would,
    /// for codecs that must refuse a bad target before reading the body
    /// (Dapr's order).
    pub fn check_target(&self, pubsub: &str, topic: &str) -> Result<(), PubSubError> {
        self.broker(pubsub, topic).map(drop)
    }

    /// The message the broker gets for one payload: the CloudEvent (or the
    /// raw payload) with the request's metadata and TTL.
    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        pubsub: &str,
        topic: &str,
        trace: &TraceHeaders,
        options: &Options,
        data: Vec<u8>,
        content_type: String,
        metadata: Metadata,
    ) -> Result<OutgoingMessage, PubSubError> {
        let (data, content_type) = if options.raw_payload {
            (data, content_type)
        } else {
            let envelope = EnvelopeContext {
                app_id: &self.app_id,
                pubsub,
                topic,
                content_type: &content_type,
                trace,
                metadata: &metadata,
                ttl_seconds: options.ttl_seconds,
                now: SystemTime::now(),
            };
            let event =
                cloudevent::wrap(&data, &envelope).map_err(|source| PubSubError::CloudEvent {
                    pubsub: pubsub.to_owned(),
                    topic: topic.to_owned(),
                    source,
                })?;
            (event, CLOUD_EVENT_CONTENT_TYPE.to_owned())
        };
        Ok(OutgoingMessage {
            data,
            content_type,
            metadata,
            ttl_seconds: options.ttl_seconds,
        })
    }

    /// The loaded broker called `pubsub` for a publish to `topic`, checked in
    /// Dapr's order.
    fn broker(&self, pubsub: &str, topic: &str) -> Result<Arc<dyn Broker>, PubSubError> {
        let broker = self.catalog.broker(pubsub);
        if broker.is_none() && !self.has_brokers() {
            return Err(PubSubError::NotConfigured {
                pubsub: pubsub.to_owned(),
            });
        }
        if pubsub.is_empty() {
            return Err(PubSubError::NameEmpty);
        }
        let Some(broker) = broker else {
            return Err(PubSubError::NotFound {
                pubsub: pubsub.to_owned(),
            });
        };
        if topic.is_empty() {
            return Err(PubSubError::TopicEmpty {
                pubsub: pubsub.to_owned(),
            });
        }
        Ok(broker)
    }

    /// Whether any pub/sub component serves (Dapr tells "not configured"
    /// from "not found"). Components are `pubsub.*` by type, and an entry
    /// serves unless its load failed.
    fn has_brokers(&self) -> bool {
        self.catalog.infos().iter().any(|info| {
            info.component_type.starts_with("pubsub.")
                && !matches!(info.status, LoadStatus::Failed(_))
        })
    }
}

impl Options {
    /// `rawPayload` and `ttlInSeconds` of `metadata`, as Dapr reads them.
    fn parse(pubsub: &str, metadata: &Metadata) -> Result<Self, PubSubError> {
        Ok(Options {
            raw_payload: parse_raw_payload(pubsub, metadata)?,
            ttl_seconds: parse_ttl(pubsub, metadata)?,
        })
    }
}

/// `metadata.rawPayload`: a Go-style boolean (`true`, `1`, `t`, `false`, ...).
fn parse_raw_payload(pubsub: &str, metadata: &Metadata) -> Result<bool, PubSubError> {
    let Some(text) = metadata
        .get(RAW_PAYLOAD_METADATA_KEY)
        .filter(|text| !text.is_empty())
    else {
        return Ok(false);
    };
    match text.as_str() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(PubSubError::InvalidMetadata {
            pubsub: pubsub.to_owned(),
            reason: format!(
                "{RAW_PAYLOAD_METADATA_KEY} value must be a valid boolean: actual is '{text}'"
            ),
        }),
    }
}

/// `metadata.ttlInSeconds`: a positive integer; values past `u32::MAX`
/// seconds (136 years) are capped there.
fn parse_ttl(pubsub: &str, metadata: &Metadata) -> Result<Option<u32>, PubSubError> {
    let Some(text) = metadata
        .get(TTL_METADATA_KEY)
        .filter(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    let invalid = |reason: String| PubSubError::InvalidMetadata {
        pubsub: pubsub.to_owned(),
        reason,
    };
    let seconds: i64 = text.parse().map_err(|_| {
        invalid(format!(
            "{TTL_METADATA_KEY} value must be a valid integer: actual is '{text}'"
        ))
    })?;
    if seconds <= 0 {
        return Err(invalid(format!(
            "{TTL_METADATA_KEY} value must be higher than zero: actual is {seconds}"
        )));
    }
    Ok(Some(u32::try_from(seconds).unwrap_or(u32::MAX)))
}

/// What a broker's failure is reported as when it names no entry.
fn refused_without_reason() -> ComponentError {
    ComponentError::Internal("the broker refused the message without saying why".to_owned())
}

#[cfg(test)]
mod tests;
