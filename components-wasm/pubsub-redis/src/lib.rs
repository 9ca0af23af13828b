//! `pubsub.redis`: Dapr's Redis Streams broker as an Outrig component.
//!
//! A topic is a stream of that name; entries carry the payload in the `data`
//! field as Dapr writes it (plus `contentType`), so Dapr and Outrig apps can
//! share topics. A consumer group is a stream consumer group, created from
//! the stream's first entry on the first pull (`XGROUP CREATE ... 0
//! MKSTREAM`); each component instance is one consumer of it, under a random
//! name. Pulls `XREADGROUP ... BLOCK wait-ms`; acks are `XACK`.
//!
//! A message never acked stays in the group's pending list. Pulls scan that
//! list (`XAUTOCLAIM`, at most every `redeliverInterval`) for entries held
//! longer than `processingTimeout` — by a consumer that crashed, or nacked —
//! and hand them out again with their delivery count as the attempt. A nack
//! claims the entries with their idle time set so they fall due after the
//! nack's delay; since Redis keeps one idle clock per entry, a delay longer
//! than `processingTimeout` is cut to it.
//!
//! Publish metadata and `ttl-seconds` are not stored: Redis Streams have no
//! per-entry expiry (the host enforces the CloudEvent's `expiration`).
//!
//! The component keeps one connection per instance, opened on first use and
//! dropped after any I/O or protocol error. It knows nothing of the host
//! beyond the SDK's contract.

mod config;
mod streams;
#[cfg(test)]
mod tests;

use config::BrokerConfig;
use outrig_sdk::pubsub::*;
use outrig_sdk::{Metadata, Result, net};
use redis_wire::{Connection, Endpoint, Lazy, server_error};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use streams::{Answer, Entry};

/// A topic and a consumer group: the unit streams are read and settled in.
type Route = (String, String);

/// Where the scan for pending entries of one route stands.
struct Scan {
    next_at: Instant,
    cursor: String,
}

/// The component's state: configuration, connection, and what it has learnt.
pub struct RedisBroker {
    config: BrokerConfig,
    conn: Lazy<Connection<TcpStream>>,
    /// This instance's consumer name within every group.
    consumer: String,
    /// Routes whose group is known to exist.
    groups: HashSet<Route>,
    scans: HashMap<Route, Scan>,
}

/// Runs `f` on the connection (see [`Lazy::run`]), mapping a failed
/// connection to `unavailable` and a refused command to the server's error.
fn call<T>(
    conn: &mut Lazy<Connection<TcpStream>>,
    endpoint: &Endpoint,
    retry_if_closed: bool,
    f: impl Fn(&mut Connection<TcpStream>) -> io::Result<Answer<T>>,
) -> Result<T> {
    let open = || Connection::open(endpoint, &[]).map(|(conn, _)| conn);
    conn.run(open, retry_if_closed, f)
        .map_err(|err| endpoint.unavailable(err))?
        .map_err(|message| server_error(&message))
}

impl RedisBroker {
    /// The group a subscription reads as: `consumerID` when set, else the
    /// subscription's own (never empty: the SDK's glue refuses that).
    fn route(&self, subscription: &Subscription) -> Route {
        let group = self
            .config
            .consumer_group
            .clone()
            .unwrap_or_else(|| subscription.consumer_group.clone());
        (subscription.topic.clone(), group)
    }

    fn ensure_group(&mut self, route: &Route) -> Result<()> {
        if !self.groups.contains(route) {
            let (topic, group) = route;
            call(&mut self.conn, &self.config.endpoint, true, |conn| {
                streams::ensure_group(conn, topic, group)
            })?;
            self.groups.insert(route.clone());
        }
        Ok(())
    }

    /// Reclaims entries due again, if this route's scan is due.
    fn reclaim(&mut self, route: &Route, max: u32) -> Result<Vec<(Entry, u32)>> {
        let now = Instant::now();
        let scan = self.scans.entry(route.clone()).or_insert_with(|| Scan {
            next_at: now,
            cursor: "0-0".into(),
        });
        if scan.next_at > now {
            return Ok(Vec::new());
        }
        let (topic, group) = route;
        let (consumer, cursor) = (&self.consumer, scan.cursor.clone());
        let timeout = self.config.processing_timeout;
        let (next, entries) = call(&mut self.conn, &self.config.endpoint, true, |conn| {
            streams::reclaim(conn, topic, group, consumer, timeout, &cursor, max)
        })?;
        scan.next_at = now + self.config.redeliver_interval;
        scan.cursor = next;
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = entries.iter().map(|entry| entry.id.as_str()).collect();
        let counts = call(&mut self.conn, &self.config.endpoint, true, |conn| {
            streams::delivery_counts(conn, topic, group, &ids).map(Ok)
        })?;
        Ok(entries.into_iter().zip(counts).collect())
    }

    /// Reads entries never delivered to the group, waiting up to `wait`.
    fn read_new(&mut self, route: &Route, max: u32, wait: Duration) -> Result<Vec<Entry>> {
        let (topic, group) = route;
        let consumer = self.consumer.clone();
        let io_timeout = self.config.endpoint.io_timeout;
        let block = (!wait.is_zero()).then_some(wait);
        let read = |conn: &mut Connection<TcpStream>| {
            // The socket must outwait the server's BLOCK; best effort, as
            // in `Endpoint::connect`.
            let _ = conn.stream_mut().set_read_timeout(Some(io_timeout + wait));
            let entries = streams::read_new(conn, topic, group, &consumer, max, block)?;
            let _ = conn.stream_mut().set_read_timeout(Some(io_timeout));
            Ok(entries)
        };
        let answer = call(&mut self.conn, &self.config.endpoint, true, |conn| {
            read(conn).map(Ok)
        })?;
        match answer {
            Ok(entries) => Ok(entries),
            // The stream or group was deleted behind our back: recreate it.
            Err(message) if message.starts_with("NOGROUP") => {
                self.groups.remove(route);
                self.ensure_group(route)?;
                call(&mut self.conn, &self.config.endpoint, true, read)
            }
            Err(message) => Err(server_error(&message)),
        }
    }

    /// Settles ids this component issued, one command per route; foreign
    /// ids are ignored.
    fn settle(
        &mut self,
        ids: &[String],
        command: impl Fn(&mut Connection<TcpStream>, &str, &str, &[&str]) -> io::Result<Answer<()>>,
    ) -> Result<()> {
        let mut by_route: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
        for fields in ids.iter().filter_map(|id| unpack_id(id)) {
            if let [topic, group, entry] = fields[..] {
                by_route.entry((topic, group)).or_default().push(entry);
            }
        }
        for ((topic, group), entries) in by_route {
            call(&mut self.conn, &self.config.endpoint, true, |conn| {
                command(conn, topic, group, &entries)
            })?;
        }
        Ok(())
    }
}

impl PubSub for RedisBroker {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(RedisBroker {
            config: BrokerConfig::from_metadata(&metadata)?,
            conn: Lazy::default(),
            consumer: net::instance_name("outrig-"),
            groups: HashSet::new(),
            scans: HashMap::new(),
        })
    }

    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError> {
        let count = messages.len();
        let max_len = self.config.max_len_approx;
        // Not retried on a closed connection: the entries may have been added.
        let answers = call(&mut self.conn, &self.config.endpoint, false, |conn| {
            streams::publish(conn, &topic, &messages, max_len).map(Ok)
        })
        .map_err(|err| PublishError::all(count, err))?;
        PublishError::from_outcomes(
            answers
                .into_iter()
                .map(|answer| answer.map_err(|message| server_error(&message))),
        )
    }

    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>> {
        let route = self.route(&subscription);
        self.ensure_group(&route)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let mut delivered = self.reclaim(&route, max)?;
        if delivered.is_empty() {
            let entries = self.read_new(&route, max, wait)?;
            delivered = entries.into_iter().map(|entry| (entry, 1)).collect();
        }
        let (topic, group) = &route;
        Ok(delivered
            .into_iter()
            .map(|(entry, attempt)| IncomingMessage {
                id: pack_id(&[topic, group, &entry.id]),
                topic: topic.clone(),
                data: entry.data,
                content_type: entry.content_type,
                metadata: Vec::new(),
                attempt,
            })
            .collect())
    }

    fn ack(&mut self, ids: Vec<String>) -> Result<()> {
        self.settle(&ids, streams::ack)
    }

    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()> {
        let consumer = self.consumer.clone();
        let timeout = self.config.processing_timeout;
        self.settle(&ids, |conn, topic, group, entries| {
            streams::nack(
                conn,
                topic,
                group,
                &consumer,
                entries,
                redeliver_after,
                timeout,
            )
        })
    }
}

outrig_sdk::export_pubsub!(RedisBroker);
