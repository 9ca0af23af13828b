//! Message ids, and settlements sent between instances.
//!
//! An id names the consumer session (its client id), the instance that
//! handed the message out, the message within that session and the hand-out.
//! MQTT settles a QoS 1 message only with a `PUBACK` on a connection of its
//! own session, which one instance holds at a time; an instance that gets an
//! ack or nack for a message another instance handed out publishes the
//! settlement to that session's settle topic, where the holder reads it and
//! settles the message itself.

use crate::inbox::Key;
use outrig_sdk::pubsub::{pack_id, unpack_id};

/// What an id stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    /// The consumer session, whose holder alone can settle the message.
    pub client_id: String,
    /// The instance that handed it out.
    pub instance: String,
    /// The message within the session.
    pub key: Key,
    /// The hand-out, so a stale ack settles nothing.
    pub seq: u64,
}

impl MessageId {
    /// The opaque id handed to the host.
    pub fn encode(&self) -> String {
        pack_id(&[
            &self.client_id,
            &self.instance,
            &self.key.to_string(),
            &self.seq.to_string(),
        ])
    }

    /// The id's fields, or `None` for an id this component did not make
    /// (which ack and nack ignore).
    pub fn decode(id: &str) -> Option<Self> {
        let fields = unpack_id(id)?;
        let [client_id, instance, key, seq] = fields[..] else {
            return None;
        };
        let plain = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
        if !plain(client_id) || !plain(instance) {
            return None;
        }
        Some(MessageId {
            client_id: client_id.to_string(),
            instance: instance.to_string(),
            key: key.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// What to do with a handed-out message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Settle it for good.
    Ack,
    /// Hand it out again after this many milliseconds.
    Nack { after_ms: u64 },
}

/// One settlement for the holder of a session: the id's instance, key and
/// hand-out, and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The instance that handed the message out: only it holds the hand-out.
    pub instance: String,
    /// As in [`MessageId`].
    pub key: Key,
    /// As in [`MessageId`].
    pub seq: u64,
    /// Ack, or nack with a delay.
    pub action: Action,
}

/// Settlements as a message payload: one line each, `ack <instance> <key>
/// <seq>` or `nack <instance> <key> <seq> <after ms>`.
pub fn encode(settlements: &[Settlement]) -> Vec<u8> {
    let mut out = String::new();
    for s in settlements {
        let (verb, after) = match s.action {
            Action::Ack => ("ack", String::new()),
            Action::Nack { after_ms } => ("nack", format!(" {after_ms}")),
        };
        out.push_str(&format!(
            "{verb} {} {} {}{after}\n",
            s.instance, s.key, s.seq
        ));
    }
    out.into_bytes()
}

/// The settlements in a payload, skipping lines that do not parse (the
/// settle topic is open to any client of the broker).
pub fn decode(payload: &[u8]) -> Vec<Settlement> {
    let text = String::from_utf8_lossy(payload);
    text.lines().filter_map(decode_line).collect()
}

fn decode_line(line: &str) -> Option<Settlement> {
    let words: Vec<&str> = line.split(' ').collect();
    let (action, instance, key, seq) = match words[..] {
        ["ack", instance, key, seq] => (Action::Ack, instance, key, seq),
        ["nack", instance, key, seq, after] => {
            let after_ms = after.parse().ok()?;
            (Action::Nack { after_ms }, instance, key, seq)
        }
        _ => return None,
    };
    Some(Settlement {
        instance: instance.to_string(),
        key: key.parse().ok()?,
        seq: seq.parse().ok()?,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_foreign_ones_are_refused() {
        let id = MessageId {
            client_id: "app-00ff".into(),
            instance: "9a".into(),
            key: Key::Packet(12),
            seq: 3,
        };
        assert_eq!(MessageId::decode(&id.encode()), Some(id));
        let foreign = [
            "x".to_string(),
            pack_id(&["a", "b", "p1"]),
            pack_id(&["a", "b", "q1", "1"]),
            pack_id(&["a", "b", "p1", "-1"]),
            pack_id(&["a b", "i", "p1", "1"]),
            pack_id(&["a", "i\n", "p1", "1"]),
            pack_id(&["", "i", "p1", "1"]),
        ];
        for id in foreign {
            assert_eq!(MessageId::decode(&id), None, "{id:?}");
        }
    }

    #[test]
    fn settlements_round_trip_and_junk_lines_are_skipped() {
        let settlements = vec![
            Settlement {
                instance: "9a".into(),
                key: Key::Packet(1),
                seq: 4,
                action: Action::Ack,
            },
            Settlement {
                instance: "9a".into(),
                key: Key::Local(2),
                seq: 5,
                action: Action::Nack { after_ms: 250 },
            },
        ];
        let mut payload = encode(&settlements);
        assert_eq!(decode(&payload), settlements);
        payload.extend(b"ack\nnack 9a p1 4\nack 9a p1 x\nhello\n\xff\n");
        assert_eq!(decode(&payload), settlements);
    }
}
