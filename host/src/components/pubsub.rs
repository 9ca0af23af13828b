//! The `pubsub` world behind [`Broker`](crate::blocks::pubsub::Broker):
//! conversions between the block's domain types and the generated bindings.

use super::call::{component_error, invoke, invoke_on};
use crate::bindings::pubsub::{self as wit, PubsubPre};
use crate::bindings::types as wit_types;
use crate::blocks::ComponentError;
use crate::blocks::pubsub::{
    Broker, BrokerSubscription, IncomingMessage, OutgoingMessage, PublishFailure,
};
use crate::runtime::pool::{Affinity, CallFuture, InstancePool, PooledInstance};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

super::call::pooled_world!(wit::Pubsub, PubsubPre);

/// The instance each subscription (topic and consumer group) pulls from.
type PullAffinities = Mutex<HashMap<(String, String), Arc<Affinity>>>;

/// A broker served by a pool of component instances.
pub struct WasmBroker {
    pool: InstancePool<wit::Pubsub>,
    /// With sticky pulls, each subscription's affinity; `None` lets every
    /// pull take any instance.
    pull_affinities: Option<PullAffinities>,
    /// Whether the messages live only in the instance (see
    /// [`Broker::volatile_messages`]).
    volatile_messages: bool,
}

impl WasmBroker {
    /// Wraps a started pool; with `sticky_pulls`, each subscription's pulls
    /// keep to one instance (for guests that hold a consumer session on one
    /// instance's connection); `volatile_messages` for a broker whose
    /// messages live in its instance.
    pub fn new(
        pool: InstancePool<wit::Pubsub>,
        sticky_pulls: bool,
        volatile_messages: bool,
    ) -> Self {
        WasmBroker {
            pool,
            pull_affinities: sticky_pulls.then(Mutex::default),
            volatile_messages,
        }
    }

    /// The affinity of `subscription`'s pulls, when pulls are sticky.
    fn pull_affinity(&self, subscription: &BrokerSubscription) -> Option<Arc<Affinity>> {
        let affinities = self.pull_affinities.as_ref()?;
        let key = (
            subscription.topic.clone(),
            subscription.consumer_group.clone(),
        );
        let mut affinities = affinities.lock().ok()?;
        Some(Arc::clone(affinities.entry(key).or_default()))
    }

    async fn invoke<T, F>(&self, operation: &'static str, call: F) -> Result<T, ComponentError>
    where
        F: for<'a> FnOnce(
            &'a mut PooledInstance<wit::Pubsub>,
        ) -> CallFuture<'a, Result<T, wit_types::Error>>,
    {
        invoke(&self.pool, operation, call).await
    }
}

#[async_trait::async_trait]
impl Broker for WasmBroker {
    async fn publish(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), Vec<PublishFailure>> {
        let count = messages.len();
        let topic = topic.to_owned();
        let messages: Vec<wit::OutgoingMessage> = messages.into_iter().map(outgoing).collect();
        let answer = self
            .pool
            .call("publish", move |i| {
                Box::pin(async move {
                    i.bindings
                        .outrig_component_broker()
                        .call_publish(&mut i.store, &topic, &messages)
                        .await
                })
            })
            .await;
        match answer {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refused)) => Err(refused
                .failed
                .into_iter()
                .map(|failure| PublishFailure {
                    index: failure.index as usize,
                    error: component_error(failure.error),
                })
                .collect()),
            Err(err) => {
                let error = super::call::runtime_error(self.pool.name(), err);
                Err((0..count)
                    .map(|index| PublishFailure {
                        index,
                        error: error.clone(),
                    })
                    .collect())
            }
        }
    }

    async fn pull(
        &self,
        subscription: &BrokerSubscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>, ComponentError> {
        let affinity = self.pull_affinity(subscription);
        let subscription = wit::Subscription {
            topic: subscription.topic.clone(),
            consumer_group: subscription.consumer_group.clone(),
            metadata: subscription.metadata.clone(),
        };
        let wait_ms = u32::try_from(wait.as_millis()).unwrap_or(u32::MAX);
        let messages = invoke_on(&self.pool, "pull", affinity.as_deref(), move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_broker()
                    .call_pull(&mut i.store, &subscription, max, wait_ms)
                    .await
            })
        })
        .await?;
        Ok(messages.into_iter().map(incoming).collect())
    }

    fn volatile_messages(&self) -> bool {
        self.volatile_messages
    }

    async fn ack(&self, ids: Vec<String>) -> Result<(), ComponentError> {
        self.invoke("ack", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_broker()
                    .call_ack(&mut i.store, &ids)
                    .await
            })
        })
        .await
    }

    async fn nack(
        &self,
        ids: Vec<String>,
        redeliver_after: Duration,
    ) -> Result<(), ComponentError> {
        let after_ms = u32::try_from(redeliver_after.as_millis()).unwrap_or(u32::MAX);
        self.invoke("nack", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_broker()
                    .call_nack(&mut i.store, &ids, after_ms)
                    .await
            })
        })
        .await
    }
}

fn outgoing(message: OutgoingMessage) -> wit::OutgoingMessage {
    wit::OutgoingMessage {
        data: message.data,
        content_type: message.content_type,
        metadata: message.metadata.into_iter().collect(),
        ttl_seconds: message.ttl_seconds,
    }
}

fn incoming(message: wit::IncomingMessage) -> IncomingMessage {
    IncomingMessage {
        id: message.id,
        topic: message.topic,
        data: message.data,
        content_type: message.content_type,
        metadata: message.metadata.into_iter().collect(),
        attempt: message.attempt,
    }
}
