//! Settling messages from any instance of the component.
//!
//! AMQP settles a delivery by its tag, and a tag means something only on
//! the channel it was delivered on. So a message id names the connection
//! that holds the message (its relay queue, a name the server made for that
//! connection alone) and the tag. An instance settles ids of its own
//! connection itself; for others it publishes a *relay* (`ack <tag>` or
//! `nack <tag> <ms>` lines) to the owner's relay queue, which the owner
//! consumes and applies at its next call, or at once if it is waiting in a
//! pull. If the owner's connection is gone, so is its relay queue: the relay
//! is dropped unrouted, and the message has already gone back to its queue
//! with the connection (it will be delivered again: at least once).
//!
//! A nack publishes a copy of the message (its attempt counted on) and then
//! acks the original: straight back to the subscription's queue when there
//! is no delay, else into a retry queue that hands it back after the delay
//! (see [`RetryQueue`]), so the delay is kept by the broker, not by an
//! instance that might be idle. Should the copy not be stored (or the retry
//! queue's name be too long for AMQP), the original is rejected back to its
//! queue at once instead.

use crate::client::{Client, Held};
use crate::content::Properties;
use crate::messages::{check_short, redelivery_properties};
use crate::methods::Request;
use crate::session::{Answer, Publication};
use crate::topology::RetryQueue;
use crate::transport::Socket;
use outrig_sdk::pubsub::{pack_id, unpack_id};
use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

/// The first field of this component's message ids.
const ID_MARK: &str = "amqp";
/// How many rounds of relays one call applies; relays arriving while the
/// last round is settled wait for the next call.
const RELAY_ROUNDS: usize = 4;

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ack,
    /// Redeliver, no sooner than after this delay.
    Nack(Duration),
}

/// The id of the message delivered with `tag` to the connection whose
/// relay queue is `relay_queue`.
pub fn message_id(relay_queue: &str, tag: u64) -> String {
    pack_id(&[ID_MARK, relay_queue, &tag.to_string()])
}

/// The relay queue and tag in a message id; `None` for an id this
/// component did not make.
pub fn parse_id(id: &str) -> Option<(String, u64)> {
    match unpack_id(id)?.as_slice() {
        [ID_MARK, relay_queue, tag] if !relay_queue.is_empty() => {
            Some((relay_queue.to_string(), tag.parse().ok()?))
        }
        _ => None,
    }
}

/// A relay's body: one `ack <tag>` or `nack <tag> <ms>` line per message.
fn relay_body(tags: &[u64], verdict: Verdict) -> Vec<u8> {
    tags.iter()
        .map(|tag| match verdict {
            Verdict::Ack => format!("ack {tag}\n"),
            Verdict::Nack(delay) => format!("nack {tag} {}\n", delay.as_millis()),
        })
        .collect::<String>()
        .into_bytes()
}

/// The verdicts in a relay; lines that do not parse are skipped.
fn parse_relay(body: &[u8]) -> Vec<(u64, Verdict)> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (kind, tag) = (words.next()?, words.next()?.parse().ok()?);
            let verdict = match (kind, words.next()) {
                ("ack", None) => Verdict::Ack,
                ("nack", Some(ms)) => Verdict::Nack(Duration::from_millis(ms.parse().ok()?)),
                _ => return None,
            };
            Some((tag, verdict))
        })
        .collect()
}

/// Settles `ids` (relay queue and tag): this connection's own messages
/// directly, every other connection's through its relay queue. Returns
/// once the server has the acks and the relays.
pub fn settle_ids<S: Socket>(
    client: &mut Client<S>,
    ids: &[(String, u64)],
    verdict: Verdict,
    durable: bool,
) -> io::Result<Answer<()>> {
    let mut foreign: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut own = Vec::new();
    for (owner, tag) in ids {
        if *owner == client.relay_queue {
            own.push((*tag, verdict));
        } else {
            foreign.entry(owner.as_str()).or_default().push(*tag);
        }
    }
    settle_own(client, own, durable)?;
    let relays: Vec<Publication> = foreign
        .into_iter()
        .map(|(owner, tags)| Publication {
            exchange: String::new(),
            routing_key: owner.to_string(),
            properties: Properties {
                content_type: Some("text/plain".into()),
                ..Properties::default()
            },
            body: relay_body(&tags, verdict),
        })
        .collect();
    if !relays.is_empty()
        && let Some(refused) = client.publish(&relays)?.into_iter().find_map(Result::err)
    {
        return Ok(Err(refused));
    }
    apply_relays(client, durable)?;
    client.sync()?;
    Ok(Ok(()))
}

/// Applies the relays other instances sent this connection.
pub fn apply_relays<S: Socket>(client: &mut Client<S>, durable: bool) -> io::Result<()> {
    for _ in 0..RELAY_ROUNDS {
        let bodies = std::mem::take(&mut client.session.relays);
        if bodies.is_empty() {
            break;
        }
        let verdicts = bodies.iter().flat_map(|body| parse_relay(body)).collect();
        settle_own(client, verdicts, durable)?;
    }
    Ok(())
}

/// Settles messages this connection holds; tags it does not hold (already
/// settled, or never its own) are ignored, since acking an unknown tag
/// would make the server close the channel.
fn settle_own<S: Socket>(
    client: &mut Client<S>,
    verdicts: Vec<(u64, Verdict)>,
    durable: bool,
) -> io::Result<()> {
    let mut requests = Vec::new();
    let mut redeliveries: BTreeMap<(String, Duration), Vec<(u64, Held)>> = BTreeMap::new();
    for (tag, verdict) in verdicts {
        let Some(held) = client.held.remove(&tag) else {
            continue;
        };
        match verdict {
            Verdict::Ack => requests.push(Request::Ack { delivery_tag: tag }),
            Verdict::Nack(delay) => {
                let delay = if delay.is_zero() {
                    delay
                } else {
                    RetryQueue::round(delay)
                };
                redeliveries
                    .entry((held.queue.clone(), delay))
                    .or_default()
                    .push((tag, held));
            }
        }
    }
    for ((queue, delay), batch) in redeliveries {
        let stored = redeliver(client, &queue, delay, &batch, durable)?;
        for ((tag, _), stored) in batch.iter().zip(stored) {
            requests.push(match stored {
                true => Request::Ack { delivery_tag: *tag },
                false => Request::Reject {
                    delivery_tag: *tag,
                    requeue: true,
                },
            });
        }
    }
    client.settle(&requests)
}

/// Publishes the copies of `batch` for redelivery from `queue` after
/// `delay`: whether each was stored.
fn redeliver<S: Socket>(
    client: &mut Client<S>,
    queue: &str,
    delay: Duration,
    batch: &[(u64, Held)],
    durable: bool,
) -> io::Result<Vec<bool>> {
    let target = if delay.is_zero() {
        queue.to_string()
    } else {
        let spec = RetryQueue::spec(queue, delay, durable);
        // Declared before every use: that restarts its expiry. A name too
        // long for AMQP leaves the delay to chance: rejected back at once.
        if check_short("", &spec.name).is_err() || client.declare_queue(&spec, true)?.is_err() {
            return Ok(vec![false; batch.len()]);
        }
        spec.name
    };
    let copies: Vec<Publication> = batch
        .iter()
        .map(|(_, held)| Publication {
            exchange: String::new(),
            routing_key: target.clone(),
            properties: redelivery_properties(&held.properties, held.attempt),
            body: held.body.clone(),
        })
        .collect();
    Ok(client.publish(&copies)?.iter().map(Result::is_ok).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_name_the_connection_and_tag_and_refuse_foreign_ones() {
        let id = message_id("amq.gen-abc", 42);
        assert_eq!(parse_id(&id), Some(("amq.gen-abc".into(), 42)));
        let foreign = [
            "42".to_string(),
            pack_id(&["nats", "q", "1"]),
            pack_id(&[ID_MARK, "q", "x"]),
            pack_id(&[ID_MARK, "", "1"]),
            pack_id(&[ID_MARK, "q", "1", "extra"]),
        ];
        for id in foreign {
            assert_eq!(parse_id(&id), None, "{id}");
        }
    }

    #[test]
    fn relays_round_trip_and_skip_what_does_not_parse() {
        let body = relay_body(&[1, 2], Verdict::Nack(Duration::from_millis(1500)));
        assert_eq!(
            parse_relay(&body),
            [
                (1, Verdict::Nack(Duration::from_millis(1500))),
                (2, Verdict::Nack(Duration::from_millis(1500)))
            ]
        );
        let mixed = b"ack 7\nack\nnack 8\nfrob 9\nack x\nack 10 extra\nnack 11 0\n\xff";
        assert_eq!(
            parse_relay(mixed),
            [(7, Verdict::Ack), (11, Verdict::Nack(Duration::ZERO))]
        );
    }
}
