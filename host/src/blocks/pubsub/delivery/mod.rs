//! At-least-once delivery: the host's half of the pull-based broker contract.
//!
//! One [`worker`] per subscription pulls from the broker, hands each event to
//! the app and settles it by the app's answer ([`verdict`]): ack on success,
//! nack with a growing backoff on retry, dead-letter (publish, then ack) or
//! ack on drop. Nothing is acked before the app answered. The broker is
//! looked up in the catalog on every pull, so a hot-swapped component keeps
//! its subscriptions: pulls move to the new version while events pulled
//! from the old one are settled on the version that handed them out.
//!
//! Backpressure: a worker holds one permit per event in flight and never
//! pulls more than it has permits for, so a slow app slows the pulls rather
//! than filling memory. Stopping stops the pulls, lets the events in flight
//! finish and be settled, and nacks nothing the app has seen.
//!
//! A [`supervisor`] keeps one worker per subscription and follows the
//! [`declared`] subscriptions and retry policies as hot reload changes them.

mod acks;
pub mod declared;
mod settle;
pub mod startup;
pub mod status;
mod supervisor;
#[cfg(test)]
mod tests;
mod versions;
mod worker;

pub use declared::{DeclaredDelivery, DeclaredFeed};
pub use settle::Backoff;
pub use status::DeliveryStatus;

use super::PublishSignals;
use super::routing::RouteTable;
use super::subscription::SubscriptionSpec;
use crate::appchannel::AppChannel;
use crate::blocks::Catalog;
use crate::blocks::resiliency::RetryPolicy;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use supervisor::Supervisor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every worker needs from the sidecar.
#[derive(Clone)]
pub struct DeliveryContext {
    /// The app id: the consumer group of every subscription, so replicas of
    /// one app share its messages and different apps each get them all.
    pub app_id: String,
    /// Where the brokers are looked up, on every pull.
    pub catalog: Arc<Catalog>,
    /// How events reach the app.
    pub app: Arc<dyn AppChannel>,
    /// Wakes a worker when this sidecar publishes to its topic.
    pub signals: Arc<PublishSignals>,
    /// The declared subscriptions and retry policies, as reload keeps them.
    pub declared: watch::Receiver<Arc<DeclaredDelivery>>,
}

impl DeliveryContext {
    /// `pubsub`'s inbound retry policy as declared now.
    pub fn retry_policy(&self, pubsub: &str) -> Option<RetryPolicy> {
        self.declared.borrow().inbound_retries.get(pubsub).copied()
    }
}

/// How delivery is paced.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Events of one subscription in flight to the app at once.
    pub concurrency: usize,
    /// The most events one pull asks for.
    pub pull_batch: u32,
    /// How long one pull may wait inside the broker for a first message.
    pub pull_wait: Duration,
    /// How long to wait after an empty pull from a broker that cannot wait
    /// (a publish through this sidecar wakes the worker sooner).
    pub idle_poll: Duration,
    /// When an event the app asked to retry is delivered again.
    pub backoff: Backoff,
    /// How long stopping waits for events in flight.
    pub drain_timeout: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            concurrency: 64,
            pull_batch: 64,
            pull_wait: Duration::from_millis(1000),
            idle_poll: Duration::from_millis(100),
            backoff: Backoff::default(),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// A subscription ready to run: its spec and its compiled routing rules.
pub struct ActiveSubscription {
    /// What the app asked for.
    pub spec: SubscriptionSpec,
    /// Its routes, compiled once.
    pub routes: RouteTable,
    /// Whether its worker has tried to subscribe at the broker (readiness
    /// waits for that first try).
    pub subscribe_attempted: AtomicBool,
}

impl ActiveSubscription {
    /// Compiles `spec`'s routing rules; a rule that does not compile refuses
    /// the subscription, naming where it came from.
    pub fn compile(spec: SubscriptionSpec) -> Result<Self, String> {
        let routes = RouteTable::compile(&spec.routes).map_err(|err| {
            format!(
                "{}: subscription to topic `{}` on `{}`: {err}",
                spec.origin, spec.topic, spec.pubsub_name
            )
        })?;
        Ok(ActiveSubscription {
            spec,
            routes,
            subscribe_attempted: AtomicBool::new(false),
        })
    }
}

/// Delivery to the app: the supervisor of its workers.
pub struct Delivery {
    stop: watch::Sender<bool>,
    supervisor: JoinHandle<()>,
}

impl Delivery {
    /// Starts one worker per subscription, the declared ones (which follow
    /// reloads) merged with the app's `programmatic` ones, and reports them
    /// to `status`. Subscriptions whose rules do not compile are logged and
    /// skipped; the others run.
    pub fn start(
        ctx: DeliveryContext,
        programmatic: Vec<SubscriptionSpec>,
        settings: DeliverySettings,
        status: Arc<DeliveryStatus>,
    ) -> Self {
        let (stop, stopped) = watch::channel(false);
        let supervisor = Supervisor::start(ctx, programmatic, settings, status);
        Delivery {
            stop,
            supervisor: tokio::spawn(supervisor.run(stopped)),
        }
    }

    /// Stops pulling and waits until the events in flight are settled.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Err(err) = self.supervisor.await {
            tracing::warn!(error = %err, "pub/sub delivery ended abnormally");
        }
    }
}
