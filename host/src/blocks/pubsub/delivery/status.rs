//! What delivery tells the APIs: whether the app's subscriptions are in
//! place at the brokers (so `GET /v1.0/healthz` may say ready, as Dapr's
//! does only once it has subscribed), and which subscriptions there are
//! (Dapr's metadata lists them).
//!
//! Readiness waits for each subscription's first attempt to subscribe, not
//! for its success: a broker that is down is logged and retried, and must
//! not keep the whole sidecar unready. Once ready, the sidecar stays ready:
//! a subscription a reload adds later does not take it out of service.

use super::ActiveSubscription;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// Shared between the sidecar's delivery, its APIs and its workers.
pub struct DeliveryStatus {
    expects_app: bool,
    running: RwLock<Option<Vec<Arc<ActiveSubscription>>>>,
    became_ready: AtomicBool,
}

impl Default for DeliveryStatus {
    /// A sidecar without an app: nothing to wait for.
    fn default() -> Self {
        DeliveryStatus::new(false)
    }
}

impl DeliveryStatus {
    /// Status for a sidecar that delivers to an app (`expects_app`), or
    /// one that has no app to deliver to and so is ready at once.
    pub fn new(expects_app: bool) -> Self {
        DeliveryStatus {
            expects_app,
            running: RwLock::new(None),
            became_ready: AtomicBool::new(false),
        }
    }

    /// Delivery runs these subscriptions now (none if it could not start:
    /// the error was logged, and readiness must not wait forever).
    pub fn set_running(&self, subscriptions: Vec<Arc<ActiveSubscription>>) {
        if let Ok(mut running) = self.running.write() {
            *running = Some(subscriptions);
        }
    }

    /// Whether the app's subscriptions are in place: delivery started and
    /// every worker it started with has tried to subscribe once.
    pub fn is_ready(&self) -> bool {
        if !self.expects_app || self.became_ready.load(Ordering::Acquire) {
            return true;
        }
        let ready = self.running.read().is_ok_and(|running| {
            running.as_ref().is_some_and(|subscriptions| {
                subscriptions
                    .iter()
                    .all(|s| s.subscribe_attempted.load(Ordering::Acquire))
            })
        });
        if ready {
            self.became_ready.store(true, Ordering::Release);
        }
        ready
    }

    /// The subscriptions being delivered, in the order they started.
    pub fn subscriptions(&self) -> Vec<Arc<ActiveSubscription>> {
        self.running
            .read()
            .ok()
            .and_then(|running| running.clone())
            .unwrap_or_default()
    }
}
