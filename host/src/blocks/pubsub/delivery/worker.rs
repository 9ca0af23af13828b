//! One subscription's delivery loop: pull as many events as there is room
//! for, deliver each (or each batch) to the app, settle it by the answer.

use super::acks::AckBatcher;
use super::settle::{self, Settlement, settle};
use super::versions::BrokerVersions;
use super::{ActiveSubscription, DeliveryContext, DeliverySettings};
use crate::appchannel::events::{BulkDelivery, BulkEntry, TopicDelivery, Verdict};
use crate::blocks::pubsub::cloudevent;
use crate::blocks::pubsub::{Broker, BrokerSubscription, IncomingMessage};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

/// How long to wait before pulling again after the broker failed, at most.
const MAX_FAILURE_PAUSE: Duration = Duration::from_secs(5);

/// The loop of one subscription.
pub struct Worker {
    ctx: DeliveryContext,
    subscription: Arc<ActiveSubscription>,
    settings: DeliverySettings,
    stopped: watch::Receiver<bool>,
    broker_subscription: BrokerSubscription,
    signal: Arc<Notify>,
    permits: Arc<Semaphore>,
    acks: Arc<AckBatcher>,
    versions: BrokerVersions,
}

impl Worker {
    /// A worker for `subscription`, stopping when `stopped` turns true.
    pub fn new(
        ctx: DeliveryContext,
        subscription: Arc<ActiveSubscription>,
        settings: DeliverySettings,
        stopped: watch::Receiver<bool>,
    ) -> Self {
        let spec = &subscription.spec;
        let broker_subscription = BrokerSubscription {
            topic: spec.topic.clone(),
            consumer_group: ctx.app_id.clone(),
            metadata: spec
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let signal = ctx.signals.subscribe(&spec.pubsub_name, &spec.topic);
        let in_flight = match spec.bulk {
            // One permit per batch: a batch is one call to the app.
            Some(_) => settings.concurrency.clamp(1, 4),
            None => settings.concurrency.max(1),
        };
        Worker {
            ctx,
            subscription,
            settings,
            stopped,
            broker_subscription,
            signal,
            permits: Arc::new(Semaphore::new(in_flight)),
            acks: Arc::default(),
            versions: BrokerVersions::default(),
        }
    }

    /// Subscribes, then pulls and delivers until stopped, then waits for the
    /// events in flight.
    pub async fn run(mut self) {
        self.subscribe().await;
        let mut in_flight = JoinSet::new();
        let mut failures: u32 = 0;
        while !*self.stopped.borrow() {
            while in_flight.try_join_next().is_some() {}
            let subscription = Arc::clone(&self.subscription);
            let pubsub = &subscription.spec.pubsub_name;
            let Some(current) = self.ctx.catalog.broker(pubsub) else {
                // Not loaded (yet, or any more): wait for a reload to bring it.
                self.pause(Duration::from_secs(1)).await;
                continue;
            };
            let broker = self.versions.pick(current, &subscription.spec.topic);
            let Some(mut room) = self.room().await else {
                break;
            };
            let (max, wait) = match subscription.spec.bulk {
                Some(bulk) => (
                    bulk.max_messages.max(1),
                    Duration::from_millis(u64::from(bulk.max_await_ms)),
                ),
                None => (
                    u32::try_from(room.num_permits())
                        .unwrap_or(u32::MAX)
                        .min(self.settings.pull_batch.max(1)),
                    self.settings.pull_wait,
                ),
            };
            let asked = Instant::now();
            let messages = match broker.pull(&self.broker_subscription, max, wait).await {
                Ok(messages) => {
                    failures = 0;
                    messages
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(%pubsub, topic = %subscription.spec.topic, error = %err, failures, "cannot pull from the broker");
                    }
                    drop(room);
                    let pause = self.settings.backoff.after(failures).min(MAX_FAILURE_PAUSE);
                    self.pause(pause).await;
                    continue;
                }
            };
            self.versions.pulled(&broker, messages.len());
            if messages.is_empty() {
                drop(room);
                if self.versions.draining() {
                    continue;
                }
                // A broker that waited has had its wait; one that could not
                // wait is asked again on a publish or after the idle poll.
                if asked.elapsed() < wait / 2 {
                    self.pause(self.settings.idle_poll).await;
                }
                continue;
            }
            let ctx = self.ctx.clone();
            let backoff = self.settings.backoff;
            if subscription.spec.bulk.is_some() {
                let acks = Arc::clone(&self.acks);
                in_flight.spawn(async move {
                    deliver_batch(&ctx, &subscription, broker, &acks, messages, &backoff).await;
                    drop(room);
                });
                continue;
            }
            for message in messages {
                let permit = room.split(1);
                let subscription = Arc::clone(&subscription);
                let ctx = ctx.clone();
                let broker = Arc::clone(&broker);
                let acks = Arc::clone(&self.acks);
                in_flight.spawn(async move {
                    deliver_one(&ctx, &subscription, broker, &acks, message, &backoff).await;
                    drop(permit);
                });
            }
        }
        let drain = async { while in_flight.join_next().await.is_some() {} };
        if tokio::time::timeout(self.settings.drain_timeout, drain)
            .await
            .is_err()
        {
            tracing::warn!(
                topic = %self.subscription.spec.topic,
                "events still in flight after {:?}; the broker will deliver them again",
                self.settings.drain_timeout
            );
        }
    }

    /// Subscribes at the broker (a pull for nothing creates the group,
    /// durable consumer or session), so what is published from now on is
    /// kept for the app; retried until it works or the worker stops.
    /// Readiness waits only for the first try.
    async fn subscribe(&mut self) {
        let mut failures: u32 = 0;
        while !*self.stopped.borrow() {
            let spec = &self.subscription.spec;
            let outcome = match self.ctx.catalog.broker(&spec.pubsub_name) {
                None => Err(format!(
                    "no pub/sub component named `{}` is loaded",
                    spec.pubsub_name
                )),
                Some(broker) => broker
                    .pull(&self.broker_subscription, 0, Duration::ZERO)
                    .await
                    .map(drop)
                    .map_err(|err| err.to_string()),
            };
            self.subscription
                .subscribe_attempted
                .store(true, Ordering::Release);
            match outcome {
                Ok(()) => {
                    tracing::info!(
                        pubsub = %spec.pubsub_name,
                        topic = %spec.topic,
                        origin = %spec.origin,
                        bulk = spec.bulk.is_some(),
                        "subscribed"
                    );
                    return;
                }
                Err(err) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(pubsub = %spec.pubsub_name, topic = %spec.topic, error = %err, failures, "cannot subscribe; retrying");
                    }
                    let pause = self.settings.backoff.after(failures).min(MAX_FAILURE_PAUSE);
                    self.pause(pause).await;
                }
            }
        }
    }

    /// Permits for as many events as there is room for (at least one),
    /// waiting for the first; `None` once stopped.
    async fn room(&mut self) -> Option<OwnedSemaphorePermit> {
        let first = tokio::select! {
            permit = Arc::clone(&self.permits).acquire_owned() => permit.ok()?,
            _ = self.stopped.wait_for(|stopped| *stopped) => return None,
        };
        let mut room = first;
        let more = self.permits.available_permits();
        if more > 0
            && let Ok(extra) = Arc::clone(&self.permits)
                .try_acquire_many_owned(u32::try_from(more).unwrap_or(u32::MAX))
        {
            room.merge(extra);
        }
        Some(room)
    }

    /// Waits `pause`, or less if something is published to the topic here
    /// or the worker is stopped.
    async fn pause(&mut self, pause: Duration) {
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = self.signal.notified() => {}
            _ = self.stopped.wait_for(|stopped| *stopped) => {}
        }
    }
}

/// The event a message carries, or what to do with it when it has none
/// that may reach the app.
fn event_of(
    subscription: &ActiveSubscription,
    message: &IncomingMessage,
) -> Result<(Value, String), Settlement> {
    let spec = &subscription.spec;
    let event = if spec.raw_payload() {
        cloudevent::from_raw_payload(
            &message.data,
            &message.content_type,
            &message.topic,
            &spec.pubsub_name,
        )
    } else {
        match cloudevent::parse(&message.data) {
            Ok(event) => event,
            Err(err) => {
                tracing::warn!(topic = %message.topic, error = %err, "the message is not a CloudEvent; dropped (subscribe with rawPayload for raw messages)");
                return Err(settle::dropped(spec.dead_letter_topic.as_deref()));
            }
        }
    };
    if cloudevent::expired(&event, SystemTime::now()) {
        tracing::info!(topic = %message.topic, "the event expired before delivery; dropped");
        return Err(Settlement::Drop);
    }
    let Some(route) = subscription.routes.route(&event) else {
        tracing::debug!(topic = %message.topic, "no route matches the event; dropped");
        return Err(Settlement::Drop);
    };
    let route = route.to_owned();
    Ok((event, route))
}

/// Delivers one event and settles it by the app's answer.
async fn deliver_one(
    ctx: &DeliveryContext,
    subscription: &ActiveSubscription,
    broker: Arc<dyn Broker>,
    acks: &AckBatcher,
    message: IncomingMessage,
    backoff: &settle::Backoff,
) {
    let spec = &subscription.spec;
    let settlement = match event_of(subscription, &message) {
        Err(settlement) => settlement,
        Ok((event, route)) => {
            let delivery = TopicDelivery {
                pubsub: &spec.pubsub_name,
                topic: &message.topic,
                route: &route,
                event: &event,
            };
            let verdict = match ctx.app.deliver(delivery).await {
                Ok(verdict) => verdict,
                Err(err) => {
                    tracing::warn!(topic = %message.topic, %route, error = %err, "cannot deliver an event to the app; it will be retried");
                    Verdict::Retry
                }
            };
            if verdict == Verdict::Drop {
                tracing::warn!(topic = %message.topic, %route, "the app dropped an event");
            }
            settle::settlement(
                verdict,
                message.attempt,
                spec.dead_letter_topic.as_deref(),
                ctx.retry_policy(&spec.pubsub_name).as_ref(),
                backoff,
            )
        }
    };
    settle(&broker, acks, spec, &message, settlement, backoff).await;
}

/// Delivers a batch (bulk subscribe): one call per route the batch's events
/// take, each event settled by its own status.
async fn deliver_batch(
    ctx: &DeliveryContext,
    subscription: &ActiveSubscription,
    broker: Arc<dyn Broker>,
    acks: &AckBatcher,
    messages: Vec<IncomingMessage>,
    backoff: &settle::Backoff,
) {
    let spec = &subscription.spec;
    let mut by_route: Vec<(String, Vec<(IncomingMessage, Value)>)> = Vec::new();
    for message in messages {
        match event_of(subscription, &message) {
            Err(settlement) => settle(&broker, acks, spec, &message, settlement, backoff).await,
            Ok((event, route)) => match by_route.iter_mut().find(|(r, _)| *r == route) {
                Some((_, group)) => group.push((message, event)),
                None => by_route.push((route, vec![(message, event)])),
            },
        }
    }
    for (route, group) in by_route {
        let entries = group
            .iter()
            .enumerate()
            .map(|(index, (_, event))| BulkEntry {
                entry_id: index.to_string(),
                event,
            })
            .collect();
        let delivery = BulkDelivery {
            pubsub: &spec.pubsub_name,
            topic: &spec.topic,
            route: &route,
            entries,
        };
        let verdicts = match ctx.app.deliver_bulk(delivery).await {
            Ok(verdicts) => verdicts,
            Err(err) => {
                tracing::warn!(topic = %spec.topic, %route, error = %err, "cannot deliver a batch to the app; it will be retried");
                vec![Verdict::Retry; group.len()]
            }
        };
        // Settled together, so the batch's acks share broker calls.
        let retry = ctx.retry_policy(&spec.pubsub_name);
        let settles = group.iter().zip(verdicts).map(|((message, _), verdict)| {
            let settlement = settle::settlement(
                verdict,
                message.attempt,
                spec.dead_letter_topic.as_deref(),
                retry.as_ref(),
                backoff,
            );
            settle(&broker, acks, spec, message, settlement, backoff)
        });
        futures::future::join_all(settles).await;
    }
}
