//! Starting delivery for an app: wait until it listens, ask for its
//! programmatic subscriptions, add the declarative ones, start the workers.

use super::{DeclaredDelivery, Delivery, DeliveryContext, DeliverySettings, DeliveryStatus};
use crate::appchannel::{self, AppChannelConfig};
use crate::blocks::Catalog;
use crate::blocks::pubsub::PublishSignals;
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use std::sync::Arc;
use tokio::sync::watch;

/// What delivery needs besides the app channel.
pub struct DeliveryPlan {
    /// The app id (the consumer group).
    pub app_id: String,
    /// The components.
    pub catalog: Arc<Catalog>,
    /// Publishes through this sidecar wake the workers of their topic.
    pub signals: Arc<PublishSignals>,
    /// The declarative subscriptions and retry policies, followed as
    /// reloads change them.
    pub declared: watch::Receiver<Arc<DeclaredDelivery>>,
    /// How delivery is paced.
    pub settings: DeliverySettings,
    /// Where delivery reports its subscriptions and readiness.
    pub status: Arc<DeliveryStatus>,
}

/// Waits for the app, then starts delivering to it. An app that cannot say
/// what it subscribes to still gets its declarative subscriptions.
pub async fn start_for_app(
    config: AppChannelConfig,
    plan: DeliveryPlan,
) -> anyhow::Result<Delivery> {
    let app: Arc<dyn appchannel::AppChannel> = Arc::from(appchannel::open(config).await?);
    let programmatic = match app.subscriptions().await {
        Ok(specs) => specs,
        Err(err) => {
            tracing::error!(error = %err, "cannot read the app's programmatic subscriptions");
            Vec::new()
        }
    };
    let ctx = DeliveryContext {
        app_id: plan.app_id,
        catalog: plan.catalog,
        app,
        signals: plan.signals,
        declared: plan.declared,
    };
    Ok(Delivery::start(
        ctx,
        programmatic,
        plan.settings,
        plan.status,
    ))
}

/// One subscription per (pub/sub, topic): the declarative one wins over the
/// app's own for the same topic, and repeats are logged and left out.
pub(super) fn merge(
    declarative: Vec<SubscriptionSpec>,
    programmatic: Vec<SubscriptionSpec>,
) -> Vec<SubscriptionSpec> {
    let mut merged: Vec<SubscriptionSpec> = Vec::new();
    for spec in declarative.into_iter().chain(programmatic) {
        let taken = merged
            .iter()
            .find(|s| s.pubsub_name == spec.pubsub_name && s.topic == spec.topic);
        match taken {
            Some(first) => tracing::warn!(
                pubsub = %spec.pubsub_name,
                topic = %spec.topic,
                kept = %first.origin,
                ignored = %spec.origin,
                "two subscriptions to one topic; the first is kept"
            ),
            None => merged.push(spec),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(topic: &str, origin: &str) -> SubscriptionSpec {
        SubscriptionSpec {
            pubsub_name: "pubsub".into(),
            topic: topic.into(),
            origin: origin.into(),
            ..SubscriptionSpec::default()
        }
    }

    #[test]
    fn declarative_subscriptions_win_and_repeats_are_left_out() {
        let merged = merge(
            vec![spec("a", "yaml"), spec("a", "yaml2")],
            vec![spec("a", "app"), spec("b", "app")],
        );
        let kept: Vec<(&str, &str)> = merged
            .iter()
            .map(|s| (s.topic.as_str(), s.origin.as_str()))
            .collect();
        assert_eq!(kept, [("a", "yaml"), ("b", "app")]);
    }
}
