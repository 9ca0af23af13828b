//! Which instance a call gets: the pool's bookkeeping of its instances
//! (idle or checked out) and of the affinities pinned to them, kept apart
//! from wasmtime so the choice can be tested on its own.
//!
//! Without affinities the choice is the pool's plain one: the most recently
//! returned idle instance, else a new one. A call with an
//! [`Affinity`](crate::runtime::pool::Affinity) goes to the instance it is pinned to,
//! waiting for it while another call has it, so a guest that keeps state
//! for those calls on one instance (a broker session on its connection)
//! keeps being called there. When it has none yet (or its instance is
//! gone) it is pinned to an instance no other affinity holds, if there is
//! one or room for one; calls without an affinity likewise stay off pinned
//! instances while others are free, so they do not keep a pinned one busy.

use std::collections::{HashMap, HashSet};

/// Instance ids start here: 0 means "none" in an affinity.
const FIRST_ID: u64 = 1;

/// What a call should do to get an instance.
#[derive(Debug, PartialEq, Eq)]
pub enum Take<T> {
    /// Use this idle instance.
    Idle(u64, T),
    /// Create an instance under this id (already counted as alive; call
    /// [`Slots::discard`] if creating it fails).
    New(u64),
    /// The pinned instance is checked out by another call: wait for it to
    /// come back, then try again.
    Busy,
}

/// The instances of one pool.
#[derive(Debug)]
pub struct Slots<T> {
    /// Idle instances by id, the most recently returned last.
    idle: Vec<(u64, T)>,
    /// Every instance alive, idle or checked out (or being created).
    live: HashSet<u64>,
    /// How many affinities are pinned to each instance.
    pins: HashMap<u64, usize>,
    next_id: u64,
    max: usize,
}

impl<T> Slots<T> {
    /// No instances yet; at most `max` alive.
    pub fn new(max: usize) -> Self {
        Slots {
            idle: Vec::new(),
            live: HashSet::new(),
            pins: HashMap::new(),
            next_id: FIRST_ID,
            max: max.max(1),
        }
    }

    /// Picks an instance for a call holding one of the pool's permits.
    /// `preferred` is the call's affinity (`None` for a call without one or
    /// one not pinned yet); `pinning` says whether the call pins what it
    /// gets. A preferred instance that is gone counts as none.
    pub fn take(&mut self, preferred: Option<u64>, pinning: bool) -> Take<T> {
        if let Some(id) = preferred.filter(|id| self.live.contains(id)) {
            return match self.idle.iter().position(|(idle, _)| *idle == id) {
                Some(index) => {
                    let (id, instance) = self.idle.remove(index);
                    Take::Idle(id, instance)
                }
                None => Take::Busy,
            };
        }
        let unpinned = self
            .idle
            .iter()
            .rposition(|(id, _)| self.pins.get(id).copied().unwrap_or(0) == 0);
        let take = match unpinned {
            Some(index) => {
                let (id, instance) = self.idle.remove(index);
                Take::Idle(id, instance)
            }
            None if self.live.len() < self.max || self.idle.is_empty() => {
                let id = self.next_id;
                self.next_id += 1;
                self.live.insert(id);
                Take::New(id)
            }
            None => match self.idle.pop() {
                Some((id, instance)) => Take::Idle(id, instance),
                None => Take::Busy,
            },
        };
        if pinning && let Take::Idle(id, _) | Take::New(id) = &take {
            *self.pins.entry(*id).or_default() += 1;
        }
        take
    }

    /// An instance comes back, idle and fit for reuse.
    pub fn put(&mut self, id: u64, instance: T) {
        self.idle.push((id, instance));
    }

    /// An instance is gone (its call failed, or it could not be created):
    /// affinities pinned to it pick another next time.
    pub fn discard(&mut self, id: u64) {
        self.live.remove(&id);
        self.pins.remove(&id);
        self.idle.retain(|(idle, _)| *idle != id);
    }

    /// How many instances are alive (idle, checked out or being created).
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// How many instances are idle.
    pub fn idle(&self) -> usize {
        self.idle.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Takes for a plain call (no affinity) and checks it got an id.
    fn plain(slots: &mut Slots<&'static str>) -> Take<&'static str> {
        slots.take(None, false)
    }

    #[test]
    fn plain_calls_reuse_the_most_recently_returned_instance_then_grow() {
        let mut slots = Slots::new(2);
        assert_eq!(plain(&mut slots), Take::New(1));
        assert_eq!(plain(&mut slots), Take::New(2));
        slots.put(1, "a");
        slots.put(2, "b");
        assert_eq!(plain(&mut slots), Take::Idle(2, "b"));
        assert_eq!(plain(&mut slots), Take::Idle(1, "a"));
        assert_eq!(slots.live(), 2);
    }

    #[test]
    fn an_affinity_keeps_to_its_instance_and_waits_while_it_is_busy() {
        let mut slots = Slots::new(4);
        // The first pinned call gets an instance of its own and pins it.
        assert_eq!(slots.take(None, true), Take::New(1));
        slots.put(1, "pinned");
        // Plain calls keep off it while they can grow the pool.
        assert_eq!(plain(&mut slots), Take::New(2));
        slots.put(2, "plain");
        // The most recently returned is the plain one, yet the affinity
        // gets its own.
        assert_eq!(slots.take(Some(1), true), Take::Idle(1, "pinned"));
        // Checked out: the next call with that affinity waits for it
        // rather than going elsewhere.
        assert_eq!(slots.take(Some(1), true), Take::Busy);
        slots.put(1, "pinned");
        assert_eq!(slots.take(Some(1), true), Take::Idle(1, "pinned"));
    }

    #[test]
    fn affinities_spread_over_instances_and_share_only_when_the_pool_is_full() {
        let mut slots = Slots::new(2);
        assert_eq!(slots.take(None, true), Take::New(1));
        slots.put(1, "a");
        // A second affinity is not pinned to the first one's instance.
        assert_eq!(slots.take(None, true), Take::New(2));
        slots.put(2, "b");
        // A third, with the pool full, shares the most recently returned.
        assert_eq!(slots.take(None, true), Take::Idle(2, "b"));
        slots.put(2, "b");
        // Plain calls use pinned instances only when nothing else is left.
        assert_eq!(plain(&mut slots), Take::Idle(2, "b"));
        assert_eq!(plain(&mut slots), Take::Idle(1, "a"));
        assert_eq!(
            plain(&mut slots),
            Take::New(3),
            "over the cap only if nothing is idle"
        );
    }

    #[test]
    fn an_instance_gone_frees_its_affinities() {
        let mut slots = Slots::new(2);
        assert_eq!(slots.take(None, true), Take::New(1));
        slots.discard(1);
        // Its affinity takes another instance (and pins it) instead of
        // waiting for one that will not come back.
        assert_eq!(slots.take(Some(1), true), Take::New(2));
        slots.put(2, "b");
        assert_eq!(slots.take(Some(2), true), Take::Idle(2, "b"));
        assert_eq!(slots.live(), 1);
    }
}
