//! The pub/sub building block: Dapr's publish API and at-least-once delivery
//! over any [`Broker`].
//!
//! A broker is pull-based with explicit acknowledgement (DESIGN §2): the
//! block wraps payloads as CloudEvents and publishes them; the delivery loop
//! pulls, hands each event to the app, and acks, nacks or dead-letters it by
//! the app's answer. The broker never calls back and never interprets an
//! answer, so the host alone decides what "delivered" means. Nothing here
//! knows HTTP, gRPC or wasmtime.

pub mod cloudevent;
pub mod delivery;
pub mod error;
pub mod routing;
pub mod service;
pub mod subscription;

pub use error::{FailedEntry, PubSubError};
pub use service::{BulkPublishEntry, BulkPublishRequest, PubSubBlock, PublishRequest};

use super::ComponentError;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// Options a request or subscription carries (`metadata.*` in Dapr's API).
pub type Metadata = BTreeMap<String, String>;

/// One message handed to a broker for publishing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutgoingMessage {
    /// The payload, stored and delivered byte for byte (a CloudEvent's JSON,
    /// unless the publisher asked for a raw payload).
    pub data: Vec<u8>,
    /// The payload's media type.
    pub content_type: String,
    /// The publish request's metadata: options for the broker.
    pub metadata: Metadata,
    /// Discard the message if it is not delivered within this many seconds.
    pub ttl_seconds: Option<u32>,
}

/// One entry of a batch that the broker did not publish, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishFailure {
    /// The entry's position in the batch.
    pub index: usize,
    /// Why it was not published.
    pub error: ComponentError,
}

/// What the host asks a broker to receive from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BrokerSubscription {
    /// The topic.
    pub topic: String,
    /// Subscribers of one group share the messages; groups each get all of
    /// them. The app id unless the subscription names another.
    pub consumer_group: String,
    /// The subscription's metadata, passed to the broker.
    pub metadata: Vec<(String, String)>,
}

/// One message received and not yet settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// The broker's token for `ack`/`nack`; any instance can settle it.
    pub id: String,
    /// The topic it was published to.
    pub topic: String,
    /// The payload as published.
    pub data: Vec<u8>,
    /// The content type given at publish; empty when the broker keeps none.
    pub content_type: String,
    /// Attributes the broker attached.
    pub metadata: Metadata,
    /// How many times it has been handed out, this time included (1 first).
    pub attempt: u32,
}

/// A Dapr pub/sub broker: publish, and the pull/ack/nack half that the
/// delivery loop drives.
#[async_trait::async_trait]
pub trait Broker: Send + Sync {
    /// Publishes `messages` to `topic` in order. On failure, names every
    /// entry not published; the others were.
    async fn publish(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), Vec<PublishFailure>>;

    /// Receives up to `max` messages, waiting up to `wait` for the first one
    /// (brokers that cannot wait return at once, possibly empty).
    async fn pull(
        &self,
        subscription: &BrokerSubscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>, ComponentError>;

    /// Settles messages for good.
    async fn ack(&self, ids: Vec<String>) -> Result<(), ComponentError>;

    /// Gives messages back for redelivery no sooner than `redeliver_after`.
    async fn nack(&self, ids: Vec<String>, redeliver_after: Duration)
    -> Result<(), ComponentError>;

    /// Whether its messages live only in this version of the component (an
    /// in-process broker): when a hot swap replaces it, delivery pulls what
    /// it still holds before moving to the new version.
    fn volatile_messages(&self) -> bool {
        false
    }
}

/// Wakes the subscribers of a topic when this sidecar publishes to it, so a
/// broker that cannot long-poll (the in-process one) is pulled at once
/// instead of on the next timed poll.
#[derive(Default)]
pub struct PublishSignals {
    topics: Mutex<HashMap<TopicKey, Vec<Weak<Notify>>>>,
}

/// A topic of a component: (pub/sub name, topic).
type TopicKey = (String, String);

impl PublishSignals {
    /// A signal of its own for one subscriber of `topic` on component
    /// `pubsub`; dropping it unregisters. A publish between two waits is
    /// not lost: it leaves a permit for the next wait.
    pub fn subscribe(&self, pubsub: &str, topic: &str) -> Arc<Notify> {
        let signal = Arc::new(Notify::new());
        let mut topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let waiters = topics
            .entry((pubsub.to_owned(), topic.to_owned()))
            .or_default();
        waiters.retain(|w| w.strong_count() > 0);
        waiters.push(Arc::downgrade(&signal));
        signal
    }

    /// Tells every subscriber of `topic` on `pubsub` that something was published.
    pub fn published(&self, pubsub: &str, topic: &str) {
        let topics = self.topics.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(waiters) = topics.get(&(pubsub.to_owned(), topic.to_owned())) else {
            return;
        };
        for signal in waiters.iter().filter_map(Weak::upgrade) {
            signal.notify_one();
        }
    }
}
