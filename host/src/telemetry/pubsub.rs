//! Pub/sub delivery: what became of each message pulled for the app, per
//! pub/sub component and topic.

use super::labels::LabelValues;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use std::sync::Arc;

/// Distinct topics kept as labels; the rest count as `other`.
const MAX_TOPICS: usize = 128;

/// What became of a message.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Settled {
    /// The app handled it; acked.
    Delivered,
    /// Given back to the broker, to be delivered again.
    Retried,
    /// Acked without the app handling it (its answer, or no route, expired,
    /// not a CloudEvent), with no dead-letter topic to send it to.
    Dropped,
    /// Published to the subscription's dead-letter topic, then acked.
    DeadLettered,
}

impl EncodeLabelValue for Settled {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        let outcome = match self {
            Settled::Delivered => "delivered",
            Settled::Retried => "retried",
            Settled::Dropped => "dropped",
            Settled::DeadLettered => "dead_lettered",
        };
        EncodeLabelValue::encode(&outcome, encoder)
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    pubsub: Arc<str>,
    topic: Arc<str>,
    outcome: Settled,
}

/// The delivery family.
#[derive(Debug)]
pub struct PubSubMetrics {
    messages: Family<MessageLabels, Counter>,
    components: Arc<LabelValues>,
    topics: LabelValues,
}

impl PubSubMetrics {
    /// Registers the family in `registry`; pub/sub names are bounded by `components`.
    pub(super) fn register(registry: &mut Registry, components: Arc<LabelValues>) -> Self {
        let metrics = PubSubMetrics {
            messages: Family::default(),
            components,
            topics: LabelValues::new(MAX_TOPICS),
        };
        registry.register(
            "pubsub_messages",
            "Messages pulled for the app, by pub/sub, topic and outcome: delivered, retried, dropped, dead_lettered",
            metrics.messages.clone(),
        );
        metrics
    }

    /// A message of `topic` on `pubsub` was settled.
    pub fn settled(&self, pubsub: &str, topic: &str, outcome: Settled) {
        let labels = MessageLabels {
            pubsub: self.components.get(pubsub),
            topic: self.topics.get(topic),
            outcome,
        };
        self.messages.get_or_create(&labels).inc();
    }
}
