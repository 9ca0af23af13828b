//! What the resources declare for delivery to the app, kept current by hot
//! reload: the `Subscription`s in scope and each pub/sub component's inbound
//! retry policy (`Resiliency`).
//!
//! The reloader publishes a new declaration after it has published the
//! components it reloaded, so a new subscription finds its broker. Delivery
//! follows: workers read the retry policy at every settlement, and the
//! supervisor restarts only the subscriptions whose spec changed.

use crate::blocks::pubsub::subscription::SubscriptionSpec;
use crate::blocks::resiliency::RetryPolicy;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What the resources declare for pub/sub delivery to the app.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeclaredDelivery {
    /// The declarative subscriptions in scope.
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Each pub/sub component's inbound retry policy, by component name.
    pub inbound_retries: BTreeMap<String, RetryPolicy>,
}

/// The current declaration, published by whoever reads the resources and
/// followed by delivery.
#[derive(Debug)]
pub struct DeclaredFeed {
    current: watch::Sender<Arc<DeclaredDelivery>>,
}

impl DeclaredFeed {
    /// A feed starting at `initial`.
    pub fn new(initial: DeclaredDelivery) -> Self {
        DeclaredFeed {
            current: watch::Sender::new(Arc::new(initial)),
        }
    }

    /// Replaces the declaration; returns whether it changed (followers are
    /// woken only then).
    pub fn publish(&self, declared: DeclaredDelivery) -> bool {
        self.current.send_if_modified(|current| {
            let changed = **current != declared;
            if changed {
                *current = Arc::new(declared);
            }
            changed
        })
    }

    /// A follower, seeing the current declaration and every later one.
    pub fn follow(&self) -> watch::Receiver<Arc<DeclaredDelivery>> {
        self.current.subscribe()
    }
}
