//! Which version of a broker one subscription pulls from across hot swaps.
//!
//! A durable broker keeps its messages at the server, so after a swap the
//! new version pulls what the old one left. An in-process broker keeps them
//! in its instance ([`Broker::volatile_messages`]): the subscription then
//! drains each replaced version, oldest first, until a pull finds it empty,
//! and only then pulls from the version the catalog serves. What the old
//! version handed out is settled on it either way.

use crate::blocks::pubsub::Broker;
use std::collections::VecDeque;
use std::sync::Arc;

/// One subscription's view of the versions of its broker.
#[derive(Default)]
pub(super) struct BrokerVersions {
    /// The version the catalog served at the last pull.
    last: Option<Arc<dyn Broker>>,
    /// Replaced versions that still hold messages for it, oldest first.
    draining: VecDeque<Arc<dyn Broker>>,
}

impl BrokerVersions {
    /// The version to pull from, now that the catalog serves `current`.
    pub(super) fn pick(&mut self, current: Arc<dyn Broker>, topic: &str) -> Arc<dyn Broker> {
        if let Some(last) = self.last.take()
            && !same(&last, &current)
            && last.volatile_messages()
        {
            tracing::info!(%topic, "the broker was swapped; delivering what its old version holds first");
            self.draining.push_back(last);
        }
        self.last = Some(Arc::clone(&current));
        self.draining.front().cloned().unwrap_or(current)
    }

    /// Notes that a pull from `broker` returned `count` messages: a
    /// replaced version that has none left is done with.
    pub(super) fn pulled(&mut self, broker: &Arc<dyn Broker>, count: usize) {
        let drained = count == 0 && self.draining.front().is_some_and(|old| same(old, broker));
        if drained {
            self.draining.pop_front();
        }
    }

    /// Whether a replaced version is still being drained.
    pub(super) fn draining(&self) -> bool {
        !self.draining.is_empty()
    }
}

/// Whether `a` and `b` are the same version (the same object).
fn same(a: &Arc<dyn Broker>, b: &Arc<dyn Broker>) -> bool {
    std::ptr::addr_eq(Arc::as_ptr(a), Arc::as_ptr(b))
}
