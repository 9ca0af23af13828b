//! `pubsub.in-memory`: Dapr's in-process broker as an Outrig component, the
//! embedded default.
//!
//! Messages live in this component instance only: they are lost when it is
//! dropped, and another instance of the component sees none of them. The host
//! must therefore run it as a single instance (`maxInstances: 1`). Consumer
//! groups behave as on a durable broker: each group gets every message
//! published after its first pull (the first group of a topic also gets what
//! was published before any group existed), the
//! members of a group share them, and a message stays with its group until
//! acked, coming back after a nack's delay or after being held longer than
//! `processingTimeout`.
//!
//! `pull` never waits: publishes reach this same single-threaded instance, so
//! nothing can arrive while it blocks. The host paces its pulls instead.
//!
//! Metadata: `processingTimeout` (default `60s`) and `maxMessagesPerTopic`
//! (default 100000: messages no group has read yet, beyond which the oldest
//! are dropped so a stalled subscriber cannot exhaust the instance's memory).

#[cfg(test)]
mod tests;
mod topic;

use outrig_sdk::pubsub::*;
use outrig_sdk::{Metadata, Result, log};
use std::collections::HashMap;
use std::time::{Duration, Instant};
use topic::{Message, Topic};

/// The broker: topics by name.
pub struct InMemory {
    topics: HashMap<String, Topic>,
    processing_timeout: Duration,
    max_retained: usize,
}

impl InMemory {
    fn topic(&mut self, name: &str) -> &mut Topic {
        let max_retained = self.max_retained;
        self.topics
            .entry(name.to_string())
            .or_insert_with(|| Topic::new(max_retained))
    }

    /// Applies `settle` to each id this component issued; others are ignored.
    fn settle(&mut self, ids: Vec<String>, settle: impl Fn(&mut Topic, &str, u64)) {
        for id in &ids {
            let Some(fields) = unpack_id(id) else {
                continue;
            };
            let [topic, group, seq] = fields[..] else {
                continue;
            };
            let (Some(topic), Ok(seq)) = (self.topics.get_mut(topic), seq.parse()) else {
                continue;
            };
            settle(topic, group, seq);
        }
    }
}

impl PubSub for InMemory {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(InMemory {
            topics: HashMap::new(),
            processing_timeout: metadata.duration("processingTimeout", Duration::from_secs(60))?,
            max_retained: metadata.parse_or("maxMessagesPerTopic", 100_000)?,
        })
    }

    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError> {
        let now = Instant::now();
        let topic_log = self.topic(&topic);
        let dropped: usize = messages
            .into_iter()
            .map(|message| {
                topic_log.publish(Message {
                    expires_at: message
                        .ttl_seconds
                        .map(|ttl| now + Duration::from_secs(u64::from(ttl))),
                    data: message.data,
                    content_type: message.content_type,
                })
            })
            .sum();
        if dropped > 0 {
            log::warn(format!(
                "topic `{topic}`: dropped {dropped} unread messages beyond maxMessagesPerTopic"
            ));
        }
        Ok(())
    }

    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        _wait: Duration,
    ) -> Result<Vec<IncomingMessage>> {
        let timeout = self.processing_timeout;
        let topic_name = subscription.topic;
        let group = subscription.consumer_group;
        let deliveries =
            self.topic(&topic_name)
                .pull(&group, max as usize, timeout, Instant::now());
        Ok(deliveries
            .into_iter()
            .map(|delivery| IncomingMessage {
                id: pack_id(&[&topic_name, &group, &delivery.seq.to_string()]),
                topic: topic_name.clone(),
                data: delivery.message.data.clone(),
                content_type: delivery.message.content_type.clone(),
                metadata: Vec::new(),
                attempt: delivery.attempt,
            })
            .collect())
    }

    fn ack(&mut self, ids: Vec<String>) -> Result<()> {
        self.settle(ids, |topic, group, seq| topic.ack(group, seq));
        Ok(())
    }

    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()> {
        let visible_at = Instant::now() + redeliver_after;
        self.settle(ids, |topic, group, seq| topic.nack(group, seq, visible_at));
        Ok(())
    }
}

outrig_sdk::export_pubsub!(InMemory);
