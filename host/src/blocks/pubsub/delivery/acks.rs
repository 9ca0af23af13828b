//! Acks of one subscription, coalesced: the events the app answered at
//! about the same time are acked in one broker call rather than one each.
//!
//! Acking is half the broker calls of a delivered event, and a component
//! serves one call per instance at a time, so one call per batch lets the
//! broker's instances (the in-process broker has one) spend their time on
//! pulls and publishes. No ack waits for a timer: the first event answered
//! acks at once, and those answered while that call runs go together in the
//! next one, made by the same task. An event is still acked only after the
//! app answered it.
//!
//! A swapped component's events are acked on the version that handed them
//! out: a batch holds one call per version.

use crate::blocks::pubsub::Broker;
use std::sync::{Arc, Mutex};

/// The acks waiting for a broker call, and whether a task is making one.
#[derive(Default)]
pub struct AckBatcher {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    acks: Vec<(Arc<dyn Broker>, String)>,
    flushing: bool,
}

impl AckBatcher {
    /// Acks message `id` on `broker` (of `topic`, for the log): in a call
    /// made now, or in the one after the call already under way. Returns
    /// once the id is in a call made or due: the task making the calls is
    /// the one that found none under way, and it makes them until nothing
    /// waits, so waiting for every settling task waits for every ack.
    pub async fn ack(&self, broker: &Arc<dyn Broker>, id: String, topic: &str) {
        {
            let Ok(mut pending) = self.pending.lock() else {
                return;
            };
            pending.acks.push((Arc::clone(broker), id));
            if pending.flushing {
                return;
            }
            pending.flushing = true;
        }
        loop {
            let batch = match self.pending.lock() {
                Ok(mut pending) if pending.acks.is_empty() => {
                    pending.flushing = false;
                    return;
                }
                Ok(mut pending) => std::mem::take(&mut pending.acks),
                Err(_) => return,
            };
            for (broker, ids) in by_version(batch) {
                let count = ids.len();
                if let Err(err) = broker.ack(ids).await {
                    tracing::warn!(%topic, count, error = %err, "cannot ack events with the broker; they may be delivered again");
                }
            }
        }
    }
}

/// `acks` grouped by the broker version that handed them out, in order.
fn by_version(acks: Vec<(Arc<dyn Broker>, String)>) -> Vec<(Arc<dyn Broker>, Vec<String>)> {
    let mut groups: Vec<(Arc<dyn Broker>, Vec<String>)> = Vec::new();
    for (broker, id) in acks {
        let same = |(known, _): &&mut (Arc<dyn Broker>, Vec<String>)| {
            std::ptr::addr_eq(Arc::as_ptr(known), Arc::as_ptr(&broker))
        };
        match groups.iter_mut().find(same) {
            Some((_, ids)) => ids.push(id),
            None => groups.push((broker, vec![id])),
        }
    }
    groups
}
