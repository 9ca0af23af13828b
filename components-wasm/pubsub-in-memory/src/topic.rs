//! One topic: a log of messages, trimmed once every consumer group has read
//! past them, and per group a cursor plus the messages handed out and not
//! yet acknowledged. Plain data over [`Instant`]s, so tests drive the clock.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A published message, shared between the log and the groups holding it.
#[derive(Debug)]
pub struct Message {
    pub data: Vec<u8>,
    pub content_type: String,
    /// When the message stops being worth delivering (from `ttl-seconds`).
    pub expires_at: Option<Instant>,
}

impl Message {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// A message handed out by [`Topic::pull`].
#[derive(Debug)]
pub struct Delivery {
    pub seq: u64,
    pub attempt: u32,
    pub message: Rc<Message>,
}

/// A message a group has handed out and not yet had acknowledged.
#[derive(Debug)]
struct Pending {
    message: Rc<Message>,
    attempt: u32,
    /// When it may be handed out again: after a nack's delay, or when the
    /// consumer has held it longer than the processing timeout.
    visible_at: Instant,
}

/// One consumer group's position in a topic.
#[derive(Debug, Default)]
struct Group {
    /// The sequence number of the next message this group has not seen.
    cursor: u64,
    pending: BTreeMap<u64, Pending>,
}

/// A topic's retained messages and its consumer groups.
#[derive(Debug)]
pub struct Topic {
    /// Messages not yet read by every group, oldest first, with contiguous
    /// sequence numbers starting at `first_seq`.
    log: VecDeque<Rc<Message>>,
    first_seq: u64,
    groups: HashMap<String, Group>,
    /// The most messages kept for a group that falls behind (or for no group
    /// at all); older ones are dropped.
    max_retained: usize,
}

impl Topic {
    /// An empty topic keeping at most `max_retained` unread messages.
    pub fn new(max_retained: usize) -> Self {
        Topic {
            log: VecDeque::new(),
            first_seq: 0,
            groups: HashMap::new(),
            max_retained: max_retained.max(1),
        }
    }

    fn end_seq(&self) -> u64 {
        self.first_seq + self.log.len() as u64
    }

    /// Appends a message; returns how many old messages were dropped to stay
    /// within the retention bound.
    pub fn publish(&mut self, message: Message) -> usize {
        self.log.push_back(Rc::new(message));
        let mut dropped = 0;
        while self.log.len() > self.max_retained {
            self.log.pop_front();
            self.first_seq += 1;
            dropped += 1;
        }
        let first = self.first_seq;
        for group in self.groups.values_mut() {
            group.cursor = group.cursor.max(first);
        }
        dropped
    }

    /// Hands out up to `max` messages to `group`: first those due again
    /// (nacked, or held past `processing_timeout`), then unread ones. A group
    /// seen for the first time gets what is published from then on; the first
    /// group of a topic also gets the messages published before any group
    /// existed, so publishes that race a subscriber's start are not lost.
    pub fn pull(
        &mut self,
        group: &str,
        max: usize,
        processing_timeout: Duration,
        now: Instant,
    ) -> Vec<Delivery> {
        let first_seq = self.first_seq;
        let end_seq = self.end_seq();
        let start = if self.groups.is_empty() {
            first_seq
        } else {
            end_seq
        };
        let group = self.groups.entry(group.to_string()).or_insert(Group {
            cursor: start,
            pending: BTreeMap::new(),
        });
        let mut out = Vec::new();
        group
            .pending
            .retain(|_, pending| !pending.message.expired(now));
        for (&seq, pending) in group.pending.iter_mut() {
            if out.len() >= max {
                break;
            }
            if pending.visible_at <= now {
                pending.attempt += 1;
                pending.visible_at = now + processing_timeout;
                out.push(Delivery {
                    seq,
                    attempt: pending.attempt,
                    message: pending.message.clone(),
                });
            }
        }
        while out.len() < max && group.cursor < end_seq {
            let seq = group.cursor;
            group.cursor += 1;
            let Some(message) = self.log.get((seq - first_seq) as usize) else {
                break;
            };
            if message.expired(now) {
                continue;
            }
            group.pending.insert(
                seq,
                Pending {
                    message: message.clone(),
                    attempt: 1,
                    visible_at: now + processing_timeout,
                },
            );
            out.push(Delivery {
                seq,
                attempt: 1,
                message: message.clone(),
            });
        }
        self.trim();
        out
    }

    /// Settles a message for good; an unknown one is ignored.
    pub fn ack(&mut self, group: &str, seq: u64) {
        if let Some(group) = self.groups.get_mut(group) {
            group.pending.remove(&seq);
        }
    }

    /// Makes a handed-out message due again at `visible_at`.
    pub fn nack(&mut self, group: &str, seq: u64, visible_at: Instant) {
        if let Some(pending) = self
            .groups
            .get_mut(group)
            .and_then(|group| group.pending.get_mut(&seq))
        {
            pending.visible_at = visible_at;
        }
    }

    /// Drops the messages every group has read (pending ones live on in the
    /// groups that hold them).
    fn trim(&mut self) {
        let Some(oldest_cursor) = self.groups.values().map(|group| group.cursor).min() else {
            return;
        };
        while self.first_seq < oldest_cursor && self.log.pop_front().is_some() {
            self.first_seq += 1;
        }
    }

    /// How many messages are retained unread by some group (for tests).
    #[cfg(test)]
    pub fn retained(&self) -> usize {
        self.log.len()
    }
}
