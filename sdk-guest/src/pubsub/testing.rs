//! Helpers for brokers' tests (feature `conformance`): messages, a
//! subscription, and the views of pulled messages that assertions compare.

use super::{IncomingMessage, OutgoingMessage, Subscription};

/// A `text/plain` message with `data` as its payload, no TTL.
pub fn message(data: &str) -> OutgoingMessage {
    OutgoingMessage {
        data: data.as_bytes().to_vec(),
        content_type: "text/plain".into(),
        metadata: Vec::new(),
        ttl_seconds: None,
    }
}

/// A subscription to `topic` as consumer group `group`.
pub fn subscription(topic: &str, group: &str) -> Subscription {
    Subscription {
        topic: topic.into(),
        consumer_group: group.into(),
        metadata: Vec::new(),
    }
}

/// The payloads of `messages`, as text.
pub fn payloads(messages: &[IncomingMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}

/// The ids of `messages`, for ack and nack.
pub fn ids(messages: &[IncomingMessage]) -> Vec<String> {
    messages.iter().map(|m| m.id.clone()).collect()
}
