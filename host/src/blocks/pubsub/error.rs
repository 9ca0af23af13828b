//! What a publish can fail with, typed so that every wire codec maps it the
//! same way.
//!
//! [`PubSubError`] carries the Dapr error code (`ERR_PUBSUB_NOT_FOUND`, …)
//! and an [`ErrorKind`], which follows the gRPC code Dapr answers with. Dapr's
//! HTTP statuses for pub/sub do not all follow from the gRPC code (an unknown
//! component is `INVALID_ARGUMENT` but 404), so the HTTP codec keeps those
//! exceptions in its one mapping. The messages follow Dapr's wording.

use super::cloudevent::CloudEventError;
use crate::blocks::ComponentError;
use crate::blocks::state::ErrorKind;

/// One entry of a bulk publish that was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// The entry's `entryId`, as the app gave it.
    pub entry_id: String,
    /// Why it was not published (the component's words).
    pub error: String,
}

/// A failed publish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PubSubError {
    /// No pub/sub component is loaded at all.
    #[error("pubsub {pubsub} is not configured")]
    NotConfigured {
        /// The component the request named.
        pubsub: String,
    },
    /// The request names no component.
    #[error("pubsub name is empty")]
    NameEmpty,
    /// Some pub/sub components are loaded, but not this one.
    #[error("pubsub {pubsub} is not found")]
    NotFound {
        /// The component the request named.
        pubsub: String,
    },
    /// The request names no topic.
    #[error("topic is empty in pubsub {pubsub}")]
    TopicEmpty {
        /// The component the request named.
        pubsub: String,
    },
    /// A metadata value the sidecar interprets is invalid (`rawPayload`,
    /// `ttlInSeconds`).
    #[error("failed deserializing metadata. Error: {reason}")]
    InvalidMetadata {
        /// The component the request named.
        pubsub: String,
        /// Which value is wrong and how.
        reason: String,
    },
    /// The payload could not be made into a CloudEvent (a malformed event
    /// sent as `application/cloudevents+json`).
    #[error("cannot create cloudevent: {source}")]
    CloudEvent {
        /// The component the request named.
        pubsub: String,
        /// The topic the request named.
        topic: String,
        /// What is wrong with the event.
        source: CloudEventError,
    },
    /// A bulk publish request that is not a list of entries.
    #[error("error when unmarshaling the request for topic {topic} pubsub {pubsub}: {reason}")]
    BulkUnreadable {
        /// The component the request named.
        pubsub: String,
        /// The topic the request named.
        topic: String,
        /// What is wrong with the request.
        reason: String,
    },
    /// A bulk publish entry that cannot be published as given (no or a
    /// repeated `entryId`, an event that does not match its content type).
    #[error("error marshaling events to bytes for topic {topic} pubsub {pubsub}. error: {reason}")]
    BulkEntryInvalid {
        /// The component the request named.
        pubsub: String,
        /// The topic the request named.
        topic: String,
        /// Which entry and what is wrong with it.
        reason: String,
    },
    /// The component (or the runtime running it) failed the publish; its
    /// own words are kept.
    #[error("error when publishing to topic {topic} in pubsub {pubsub}: {source}")]
    Publish {
        /// The component the request named.
        pubsub: String,
        /// The topic the request named.
        topic: String,
        /// What the component or runtime reported.
        source: ComponentError,
    },
    /// Some entries of a bulk publish were not published; the others were.
    #[error(
        "error when publishing to topic {topic} in pubsub {pubsub}: {}",
        bulk_summary(failed)
    )]
    BulkPublish {
        /// The component the request named.
        pubsub: String,
        /// The topic the request named.
        topic: String,
        /// Every entry not published, in request order.
        failed: Vec<FailedEntry>,
    },
}

impl PubSubError {
    /// The Dapr error code, e.g. `ERR_PUBSUB_NOT_FOUND`.
    pub fn code(&self) -> &'static str {
        match self {
            PubSubError::NotConfigured { .. } => "ERR_PUBSUB_NOT_CONFIGURED",
            PubSubError::NameEmpty => "ERR_PUBSUB_EMPTY",
            PubSubError::NotFound { .. } => "ERR_PUBSUB_NOT_FOUND",
            PubSubError::TopicEmpty { .. } => "ERR_TOPIC_NAME_EMPTY",
            PubSubError::InvalidMetadata { .. } => "ERR_PUBSUB_REQUEST_METADATA",
            PubSubError::CloudEvent { .. } => "ERR_PUBSUB_CLOUD_EVENTS_SER",
            PubSubError::BulkUnreadable { .. } | PubSubError::BulkEntryInvalid { .. } => {
                "ERR_PUBSUB_EVENTS_SER"
            }
            PubSubError::Publish { .. } | PubSubError::BulkPublish { .. } => {
                "ERR_PUBSUB_PUBLISH_MESSAGE"
            }
        }
    }

    /// What sort of failure this is: the gRPC code Dapr answers with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PubSubError::NotConfigured { .. } => ErrorKind::FailedPrecondition,
            PubSubError::NameEmpty
            | PubSubError::NotFound { .. }
            | PubSubError::TopicEmpty { .. }
            | PubSubError::InvalidMetadata { .. }
            | PubSubError::CloudEvent { .. }
            | PubSubError::BulkUnreadable { .. }
            | PubSubError::BulkEntryInvalid { .. } => ErrorKind::InvalidArgument,
            PubSubError::Publish { .. } | PubSubError::BulkPublish { .. } => ErrorKind::Internal,
        }
    }

    /// The entries a bulk publish did not publish; empty for every other error.
    pub fn failed_entries(&self) -> &[FailedEntry] {
        match self {
            PubSubError::BulkPublish { failed, .. } => failed,
            _ => &[],
        }
    }
}

/// How many entries failed, and the first one's reason.
fn bulk_summary(failed: &[FailedEntry]) -> String {
    match failed {
        [] => "no entry was published".to_owned(),
        [only] => format!("entry {}: {}", only.entry_id, only.error),
        [first, rest @ ..] => format!(
            "{} entries failed, the first ({}): {}",
            rest.len() + 1,
            first.entry_id,
            first.error
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_kinds_and_messages_follow_dapr() {
        let cases: Vec<(PubSubError, &str, ErrorKind, &str)> = vec![
            (
                PubSubError::NotConfigured { pubsub: "p".into() },
                "ERR_PUBSUB_NOT_CONFIGURED",
                ErrorKind::FailedPrecondition,
                "pubsub p is not configured",
            ),
            (
                PubSubError::NameEmpty,
                "ERR_PUBSUB_EMPTY",
                ErrorKind::InvalidArgument,
                "pubsub name is empty",
            ),
            (
                PubSubError::NotFound { pubsub: "p".into() },
                "ERR_PUBSUB_NOT_FOUND",
                ErrorKind::InvalidArgument,
                "pubsub p is not found",
            ),
            (
                PubSubError::TopicEmpty { pubsub: "p".into() },
                "ERR_TOPIC_NAME_EMPTY",
                ErrorKind::InvalidArgument,
                "topic is empty in pubsub p",
            ),
            (
                PubSubError::InvalidMetadata {
                    pubsub: "p".into(),
                    reason: "ttlInSeconds value must be a valid integer: actual is 'x'".into(),
                },
                "ERR_PUBSUB_REQUEST_METADATA",
                ErrorKind::InvalidArgument,
                "failed deserializing metadata. Error: ttlInSeconds value must be a valid integer: actual is 'x'",
            ),
            (
                PubSubError::CloudEvent {
                    pubsub: "p".into(),
                    topic: "t".into(),
                    source: CloudEventError::NotAnObject,
                },
                "ERR_PUBSUB_CLOUD_EVENTS_SER",
                ErrorKind::InvalidArgument,
                "cannot create cloudevent: the event is not a JSON object",
            ),
            (
                PubSubError::BulkEntryInvalid {
                    pubsub: "p".into(),
                    topic: "t".into(),
                    reason: "entryId is duplicated or not present for entry".into(),
                },
                "ERR_PUBSUB_EVENTS_SER",
                ErrorKind::InvalidArgument,
                "error marshaling events to bytes for topic t pubsub p. error: entryId is duplicated or not present for entry",
            ),
            (
                PubSubError::Publish {
                    pubsub: "p".into(),
                    topic: "t".into(),
                    source: ComponentError::Unavailable("connection refused".into()),
                },
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                ErrorKind::Internal,
                "error when publishing to topic t in pubsub p: backend unavailable: connection refused",
            ),
            (
                PubSubError::BulkPublish {
                    pubsub: "p".into(),
                    topic: "t".into(),
                    failed: vec![
                        FailedEntry {
                            entry_id: "a".into(),
                            error: "full".into(),
                        },
                        FailedEntry {
                            entry_id: "b".into(),
                            error: "full".into(),
                        },
                    ],
                },
                "ERR_PUBSUB_PUBLISH_MESSAGE",
                ErrorKind::Internal,
                "error when publishing to topic t in pubsub p: 2 entries failed, the first (a): full",
            ),
        ];
        for (error, code, kind, message) in cases {
            assert_eq!(error.code(), code, "{error:?}");
            assert_eq!(error.kind(), kind, "{error:?}");
            assert_eq!(error.to_string(), message, "{error:?}");
        }
    }
}
