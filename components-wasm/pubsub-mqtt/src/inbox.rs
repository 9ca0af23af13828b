//! What a consumer session has received and not settled: messages waiting
//! to be handed out, handed out and awaiting ack or nack, or nacked and
//! waiting out their delay. Pure bookkeeping, no I/O, so the rules are
//! tested on their own.
//!
//! A QoS 1 message is known by the broker's packet id, which stays its own
//! until the client sends `PUBACK`; the broker sends it again (marked DUP)
//! on every reconnect until then, and a message already held is not taken
//! twice. A QoS 0 message gets a local key: the broker forgets it at once.
//! Every hand-out gets a new sequence number, so an ack or nack meant for an
//! earlier hand-out (a retried ack, or one crossing a redelivery) settles
//! nothing.
//!
//! Between two connections of this instance another instance may have held
//! the session and settled some of these messages, freeing their packet ids
//! for new messages. So a reconnect is a resume ([`Inbox::resume`]): the
//! broker resends everything still in flight right after `CONNACK`, and what
//! it does not resend before answering the `SUBSCRIBE` that follows is no
//! longer this session's to settle.

use crate::wire::Publish;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::time::Instant;

/// Which received message: the broker's packet id, or a local number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A QoS 1 message: the broker's packet id, settled by `PUBACK`.
    Packet(u16),
    /// A QoS 0 message: numbered here, as the broker keeps nothing.
    Local(u64),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Packet(id) => write!(f, "p{id}"),
            Key::Local(n) => write!(f, "l{n}"),
        }
    }
}

impl FromStr for Key {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s.split_at_checked(1) {
            Some(("p", id)) => id.parse().map(Key::Packet).map_err(|_| ()),
            Some(("l", n)) => n.parse().map(Key::Local).map_err(|_| ()),
            _ => Err(()),
        }
    }
}

/// A message handed out by [`Inbox::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which message, for its id.
    pub key: Key,
    /// This hand-out's number, which its ack or nack must name.
    pub seq: u64,
    /// 1 on first delivery; a message the broker resent after a reconnect
    /// (DUP) counts as delivered once before.
    pub attempt: u32,
    /// The topic it was published to (a wildcard subscription's matches
    /// differ).
    pub topic: String,
    /// The payload, byte for byte.
    pub payload: Vec<u8>,
    /// Whether the broker sent it as a retained message.
    pub retained: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Ready,
    Out { seq: u64 },
    Delayed { until: Instant },
}

struct Entry {
    message: Publish,
    handed_out: u32,
    state: State,
}

/// The unsettled messages of one consumer session.
#[derive(Default)]
pub struct Inbox {
    entries: HashMap<Key, Entry>,
    ready: VecDeque<Key>,
    next_seq: u64,
    next_local: u64,
    /// During a resume: the packet ids held and not yet resent.
    unconfirmed: Option<HashSet<u16>>,
}

impl Inbox {
    /// Takes a message from the broker; `false` when it is one already held
    /// (the broker resending after a reconnect), which is left as it is. A
    /// different message under a held packet id replaces the one held.
    pub fn receive(&mut self, message: Publish) -> bool {
        let key = match message.packet_id {
            Some(id) => Key::Packet(id),
            None => {
                self.next_local += 1;
                Key::Local(self.next_local)
            }
        };
        if let (Key::Packet(id), Some(unconfirmed)) = (key, &mut self.unconfirmed) {
            unconfirmed.remove(&id);
        }
        if let Some(entry) = self.entries.get(&key) {
            let same =
                entry.message.topic == message.topic && entry.message.payload == message.payload;
            if same {
                return false;
            }
            // Another message under a held id: the one held was settled
            // elsewhere and its id reused.
            self.ready.retain(|k| *k != key);
        }
        let handed_out = u32::from(message.dup);
        self.entries.insert(
            key,
            Entry {
                message,
                handed_out,
                state: State::Ready,
            },
        );
        self.ready.push_back(key);
        true
    }

    /// Hands out up to `max` messages: nacked ones whose delay is over
    /// first (oldest due first), then new ones in arrival order.
    pub fn take(&mut self, max: usize, now: Instant) -> Vec<Delivery> {
        let mut due: Vec<(Instant, Key)> = self
            .entries
            .iter()
            .filter_map(|(key, entry)| match entry.state {
                State::Delayed { until } if until <= now => Some((until, *key)),
                _ => None,
            })
            .collect();
        due.sort_by_key(|(until, _)| *until);
        let mut order: VecDeque<Key> = due.into_iter().map(|(_, key)| key).collect();
        order.append(&mut self.ready);
        let mut out = Vec::new();
        while out.len() < max {
            let Some(key) = order.pop_front() else { break };
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            self.next_seq += 1;
            entry.state = State::Out { seq: self.next_seq };
            entry.handed_out = entry.handed_out.saturating_add(1);
            out.push(Delivery {
                key,
                seq: self.next_seq,
                attempt: entry.handed_out,
                topic: entry.message.topic.clone(),
                payload: entry.message.payload.clone(),
                retained: entry.message.retain,
            });
        }
        // What was not taken keeps its place: due ones become ready.
        for key in &order {
            if let Some(entry) = self.entries.get_mut(key) {
                entry.state = State::Ready;
            }
        }
        self.ready = order;
        out
    }

    /// Settles hand-out `seq` of `key` for good; the packet id to `PUBACK`
    /// when it was a QoS 1 message. Anything else is ignored.
    pub fn ack(&mut self, key: Key, seq: u64) -> Option<u16> {
        if !self.is_out(key, seq) {
            return None;
        }
        self.entries.remove(&key);
        match key {
            Key::Packet(id) => Some(id),
            Key::Local(_) => None,
        }
    }

    /// Holds hand-out `seq` of `key` back until `until`, then hands it out
    /// again; `false` (and nothing done) for any other hand-out.
    pub fn nack(&mut self, key: Key, seq: u64, until: Instant) -> bool {
        let out = self.is_out(key, seq);
        if let Some(entry) = self.entries.get_mut(&key).filter(|_| out) {
            entry.state = State::Delayed { until };
        }
        out
    }

    /// When the next nacked message falls due.
    pub fn next_due(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|entry| match entry.state {
                State::Delayed { until } => Some(until),
                _ => None,
            })
            .min()
    }

    /// Starts a resume: every QoS 1 message held must be resent by the
    /// broker before [`Inbox::finish_resume`] to stay.
    pub fn resume(&mut self) {
        let held = self.entries.keys().filter_map(|key| match key {
            Key::Packet(id) => Some(*id),
            Key::Local(_) => None,
        });
        self.unconfirmed = Some(held.collect());
    }

    /// Ends a resume: drops the QoS 1 messages the broker did not resend,
    /// which another holder of the session settled meanwhile.
    pub fn finish_resume(&mut self) {
        for id in self.unconfirmed.take().unwrap_or_default() {
            self.entries.remove(&Key::Packet(id));
            self.ready.retain(|key| *key != Key::Packet(id));
        }
    }

    /// Forgets everything: the session these messages belong to is gone or
    /// held by another instance, which the broker gives them to.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.ready.clear();
        self.unconfirmed = None;
    }

    /// How many messages are unsettled.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn is_out(&self, key: Key, seq: u64) -> bool {
        self.entries
            .get(&key)
            .is_some_and(|entry| entry.state == State::Out { seq })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn message(packet_id: Option<u16>, dup: bool, payload: &str) -> Publish {
        Publish {
            topic: "t".into(),
            qos: u8::from(packet_id.is_some()),
            packet_id,
            dup,
            retain: false,
            payload: payload.as_bytes().to_vec(),
        }
    }

    fn payloads(deliveries: &[Delivery]) -> Vec<String> {
        deliveries
            .iter()
            .map(|d| String::from_utf8_lossy(&d.payload).into_owned())
            .collect()
    }

    #[test]
    fn messages_are_handed_out_once_in_order_and_resends_are_not_taken_twice() {
        let mut inbox = Inbox::default();
        let now = Instant::now();
        assert!(inbox.receive(message(Some(1), false, "a")));
        assert!(inbox.receive(message(None, false, "b")));
        assert!(inbox.receive(message(Some(2), true, "c")));
        assert!(!inbox.receive(message(Some(1), true, "a")));
        let first = inbox.take(2, now);
        assert_eq!(payloads(&first), ["a", "b"]);
        assert_eq!(first[0].attempt, 1);
        let second = inbox.take(5, now);
        assert_eq!(payloads(&second), ["c"]);
        // Resent by the broker after a reconnect: delivered before.
        assert_eq!(second[0].attempt, 2);
        assert!(inbox.take(5, now).is_empty());
        assert!(!inbox.receive(message(Some(2), true, "c")));
        assert_eq!(inbox.len(), 3);
    }

    #[test]
    fn acks_settle_only_the_current_hand_out() {
        let mut inbox = Inbox::default();
        let now = Instant::now();
        inbox.receive(message(Some(7), false, "a"));
        inbox.receive(message(None, false, "b"));
        let out = inbox.take(5, now);
        let (a, b) = (&out[0], &out[1]);
        assert_eq!(inbox.ack(a.key, a.seq + 100), None);
        assert_eq!(inbox.ack(a.key, a.seq), Some(7));
        assert_eq!(inbox.ack(a.key, a.seq), None, "a retried ack");
        assert_eq!(inbox.ack(b.key, b.seq), None, "QoS 0: nothing to PUBACK");
        assert_eq!(inbox.len(), 0);
        // The packet id is free again: a new message may take it.
        inbox.receive(message(Some(7), false, "new"));
        assert_eq!(inbox.ack(a.key, a.seq), None);
        assert_eq!(payloads(&inbox.take(5, now)), ["new"]);
    }

    #[test]
    fn nacked_messages_come_back_when_due_with_the_attempt_counted() {
        let mut inbox = Inbox::default();
        let now = Instant::now();
        inbox.receive(message(Some(1), false, "late"));
        inbox.receive(message(Some(2), false, "soon"));
        let out = inbox.take(5, now);
        let later = now + Duration::from_secs(60);
        assert!(inbox.nack(out[0].key, out[0].seq, later));
        assert!(inbox.nack(out[1].key, out[1].seq, now));
        assert!(!inbox.nack(out[1].key, out[1].seq, now), "settled already");
        assert_eq!(inbox.next_due(), Some(now));
        inbox.receive(message(Some(3), false, "new"));
        let again = inbox.take(5, now);
        assert_eq!(payloads(&again), ["soon", "new"]);
        assert_eq!((again[0].attempt, again[1].attempt), (2, 1));
        assert!(
            inbox.ack(out[1].key, out[1].seq).is_none(),
            "an old hand-out"
        );
        assert_eq!(inbox.next_due(), Some(later));
        let last = inbox.take(5, later);
        assert_eq!((payloads(&last), last[0].attempt), (vec!["late".into()], 2));
        inbox.clear();
        assert_eq!((inbox.len(), inbox.next_due()), (0, None));
    }

    #[test]
    fn a_resume_keeps_what_the_broker_resends_and_drops_what_it_settled() {
        let mut inbox = Inbox::default();
        let now = Instant::now();
        for (id, payload) in [(1, "kept"), (2, "settled elsewhere"), (3, "id reused")] {
            inbox.receive(message(Some(id), false, payload));
        }
        inbox.receive(message(None, false, "qos 0"));
        let out = inbox.take(4, now);
        inbox.resume();
        assert!(!inbox.receive(message(Some(1), true, "kept")));
        assert!(inbox.receive(message(Some(3), true, "new under 3")));
        inbox.finish_resume();
        assert_eq!(inbox.len(), 3, "kept, new under 3, qos 0");
        assert_eq!(inbox.ack(out[1].key, out[1].seq), None, "gone");
        assert_eq!(inbox.ack(out[2].key, out[2].seq), None, "not that message");
        let again = inbox.take(4, now);
        assert_eq!(payloads(&again), ["new under 3"]);
        assert_eq!(inbox.ack(out[0].key, out[0].seq), Some(1), "still out");
        // Outside a resume nothing is dropped.
        inbox.finish_resume();
        assert_eq!(inbox.len(), 2);
    }

    #[test]
    fn keys_print_and_parse() {
        for key in [Key::Packet(0), Key::Packet(65_535), Key::Local(9)] {
            assert_eq!(key.to_string().parse::<Key>(), Ok(key));
        }
        for bad in ["", "p", "x1", "p65536", "l-1", "é"] {
            assert!(bad.parse::<Key>().is_err(), "{bad}");
        }
    }
}
