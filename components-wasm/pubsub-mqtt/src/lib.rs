//! `pubsub.mqtt3` (also `pubsub.mqtt`): an MQTT 3.1.1 broker as an Outrig
//! broker component, speaking MQTT itself (`wire`, `conn`) over the TCP
//! connections the host grants (the maintained Rust clients need tokio or a
//! C library, which a wasm32-wasip2 guest with blocking sockets has not),
//! with Dapr's metadata names: `url` (`tcp://` or `mqtt://`, user and
//! password in it; TLS and `caCert`/`clientCert`/`clientKey` are refused),
//! `qos` (0 or 1, default 1; 2 is read as 1, since delivery to the app is
//! at least once anyway), `retain`, `cleanSession` (default false) and
//! `consumerID`.
//!
//! **Publishing.** A topic is an MQTT topic. Each instance publishes on a
//! connection of its own with a clean session; at QoS 1 (the default) a
//! publish returns once the broker has sent `PUBACK` for every message, so
//! a published message is stored. Each message's `retain` metadata (as in
//! Dapr) overrides the component's `retain`; a bad value fails that entry
//! alone. MQTT 3.1.1 has no headers, so the content type is not carried and
//! messages are delivered with an empty one (the host publishes CloudEvents
//! JSON and recognises it, as Dapr does); `ttl-seconds` is ignored (MQTT
//! 3.1.1 has no expiry; the host enforces the CloudEvent's `expiration`).
//! Delivered messages carry Dapr's `retained` metadata (`true`/`false`).
//!
//! **Consumer groups.** A group reads through a shared subscription,
//! `$share/<group>/<topic>` (Mosquitto 2 and other brokers of the MQTT 5
//! era accept it from 3.1.1 clients): each message goes to one session of
//! the group, and every group gets every message. A group receives what is
//! published after its first pull. The consumer session's client id is
//! `<consumerID or group>-<hash of group and topic>`: the same in every
//! instance and across restarts, and per replica when `consumerID` names the
//! replica. That stability is what makes the session persistent in fact:
//! Mosquitto hands a shared subscription's messages in turn to every session
//! of the group, connected or not, and keeps an absent session's share until
//! that client id comes back. A session named after a random instance name
//! would keep its share forever once its instance was gone; a stable one is
//! resumed by the next instance to pull, which gets what was published
//! meanwhile and what was in flight (marked DUP: attempt 2). So replicas
//! that should share a group's load need distinct, stable `consumerID`s; with
//! none, all replicas of an app use one session and one of them consumes at
//! a time. A `consumerID` that changes on every start needs `cleanSession`.
//!
//! **One holder per session.** MQTT gives a client id to one connection at
//! a time (a second connection takes the session over), so instances agree
//! on who holds a session through a retained holder record, deleted by the
//! holder's will when its connection drops (`holder`). A pull on an instance
//! that finds the session held by another live instance waits up to its
//! `wait-ms` for it to come free, then returns nothing. So a subscription's
//! pulls must keep reaching the instance that holds its session (Outrig's
//! host keeps each subscription's pulls on one instance for this
//! component): a holder no longer pulled keeps the session, unread, until
//! the broker drops its silent connection (one and a half keep-alives).
//!
//! **Ack and nack.** A QoS 1 message is settled by `PUBACK` on its
//! session's connection, so nothing is acknowledged before the host acks.
//! An id names the session, the instance that handed the message out, the
//! broker's packet id and the hand-out (`settle`). An ack or nack reaching
//! another instance is published to the session's settle topic
//! (`<controlTopicPrefix>/<client id>/settle`), which the holder reads while
//! it pulls and applies. The holder subscribes to it at QoS 0, which the
//! broker's in-flight window does not hold back: a window full of messages
//! waiting for the very acks relayed to it would otherwise stall the
//! session for good. An ack for a hand-out that is no longer current (a
//! retry, or the holder changed and the message was delivered again) does
//! nothing: delivery is at least once. MQTT has no nack: a nacked message
//! stays unacknowledged in the holder, which hands it out again, attempt
//! plus one, from a pull after the delay. It still counts against the
//! broker's in-flight window (Mosquitto's `max_inflight_messages`, 20 by
//! default): with that many held back or unacked, no new message reaches
//! the session until one is settled.
//! If the holder goes away, the broker sends its unacknowledged messages to
//! the next holder at once, delays forgotten.
//!
//! `cleanSession: true` makes the broker discard a session when its
//! connection ends, with what it had in flight or queued: nothing is kept
//! while no instance holds it, and a holder that goes away loses its
//! unacknowledged messages.
//!
//! Broker settings that matter: `persistence` to keep sessions over broker
//! restarts, and `max_queued_messages` (1000 by default) bounds what a
//! session keeps while no instance holds it. The control topics (holder
//! records and settle topics, under `controlTopicPrefix`, `outrig/mqtt3` by
//! default) must be allowed by the broker's ACL for every client of the
//! component, and a subscription whose wildcard covers them receives them
//! as messages.
//!
//! Connections are opened on first use and dropped after any I/O or
//! protocol error, so the next call starts clean; long pulls send
//! `PINGREQ` to keep the connection alive. This crate knows nothing of the
//! host beyond the SDK's contract.

mod config;
mod conn;
mod consumer;
mod holder;
mod inbox;
mod names;
mod publisher;
mod settle;
#[cfg(test)]
mod tests;
mod wire;

use config::MqttConfig;
use conn::Connection;
use consumer::Consumer;
use holder::Claim;
use outrig_sdk::lazy::{Lazy, was_closed};
use outrig_sdk::pubsub::*;
use outrig_sdk::{Error, Metadata, Result, net};
use settle::{Action, MessageId, Settlement};
use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};
use wire::Publish;

/// How often a pull waiting for a session held by another instance looks
/// at the holder record again.
const CLAIM_RETRY: Duration = Duration::from_millis(250);

/// The component's state: configuration, connections, and the sessions it
/// has pulled from.
pub struct MqttBroker {
    config: MqttConfig,
    /// This instance's name, in holder records and message ids.
    instance: String,
    publisher: Lazy<Connection<TcpStream>>,
    /// Consumer sessions by client id.
    consumers: HashMap<String, Consumer>,
}

impl MqttBroker {
    /// Runs `f` on the publishing connection (see [`Lazy::run`]); every call
    /// on it is safe to repeat.
    fn on_publisher<T>(
        &mut self,
        f: impl Fn(&mut Connection<TcpStream>) -> io::Result<T>,
    ) -> Result<T> {
        let (config, instance) = (&self.config, self.instance.as_str());
        self.publisher
            .run(|| publisher::open(config, instance), true, f)
            .map_err(|err| unavailable(config, err))
    }

    /// Whether this instance may connect to the session whose holder record
    /// is retained on `holder_topic`.
    fn claim(&mut self, holder_topic: &str) -> Result<Claim> {
        let record = self.on_publisher(|conn| publisher::read_retained(conn, holder_topic))?;
        Ok(holder::claim(
            record.as_deref(),
            &self.instance,
            holder::now_ms(),
            self.config.lease,
        ))
    }

    /// Connects session `client_id` unless it is connected already, waiting
    /// until `deadline` for another holder to let it go; `false` if it did
    /// not (what this instance held of it is then forgotten) or the session
    /// was never pulled from here.
    fn hold(&mut self, client_id: &str, deadline: Instant) -> Result<bool> {
        loop {
            let holder_topic = match self.consumers.get(client_id) {
                None => return Ok(false),
                Some(consumer) if consumer.is_connected() => return Ok(true),
                Some(consumer) => consumer.holder_topic().to_string(),
            };
            let claim = self.claim(&holder_topic)?;
            let (config, instance) = (&self.config, self.instance.as_str());
            let Some(consumer) = self.consumers.get_mut(client_id) else {
                return Ok(false);
            };
            if claim != Claim::Taken {
                consumer
                    .connect(config, instance)
                    .map_err(|err| unavailable(config, err))?;
                return Ok(true);
            }
            consumer.abandon();
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            std::thread::sleep(CLAIM_RETRY.min(deadline - now));
        }
    }

    /// Runs `f` on session `client_id`, connecting it first; a connection
    /// reused from an earlier call and found closed (the broker drops idle
    /// ones) is replaced once. `None` when another instance holds it.
    fn on_session<T>(
        &mut self,
        client_id: &str,
        deadline: Instant,
        f: impl Fn(&mut Consumer, &MqttConfig, &str) -> io::Result<T>,
    ) -> Result<Option<T>> {
        let reused = self
            .consumers
            .get(client_id)
            .is_some_and(Consumer::is_connected);
        if !self.hold(client_id, deadline)? {
            return Ok(None);
        }
        let (config, instance) = (&self.config, self.instance.as_str());
        let Some(consumer) = self.consumers.get_mut(client_id) else {
            return Ok(None);
        };
        match f(consumer, config, instance) {
            Err(err) if reused && was_closed(&err) => {
                if !self.hold(client_id, deadline)? {
                    return Ok(None);
                }
                let (config, instance) = (&self.config, self.instance.as_str());
                let Some(consumer) = self.consumers.get_mut(client_id) else {
                    return Ok(None);
                };
                f(consumer, config, instance)
            }
            result => result,
        }
        .map(Some)
        .map_err(|err| unavailable(&self.config, err))
    }

    /// Settles messages: those this instance handed out on their session's
    /// connection, the others by way of their session's settle topic.
    fn settle(&mut self, ids: Vec<String>, action: Action) -> Result<()> {
        let mut by_session: BTreeMap<String, Vec<Settlement>> = BTreeMap::new();
        for id in ids.iter().filter_map(|id| MessageId::decode(id)) {
            by_session
                .entry(id.client_id)
                .or_default()
                .push(Settlement {
                    instance: id.instance,
                    key: id.key,
                    seq: id.seq,
                    action,
                });
        }
        for (client_id, settlements) in by_session {
            let (mine, theirs): (Vec<Settlement>, Vec<Settlement>) = settlements
                .into_iter()
                .partition(|s| s.instance == self.instance);
            if !mine.is_empty() {
                // Not connected and held elsewhere: the broker redelivers
                // these to the holder, so there is nothing left to settle.
                self.on_session(&client_id, Instant::now(), |consumer, config, instance| {
                    consumer.settle(config, instance, &mine)
                })?;
            }
            if !theirs.is_empty() {
                let forward = Publish {
                    topic: names::settle_topic(&self.config.control_prefix, &client_id),
                    qos: 1,
                    packet_id: None,
                    dup: false,
                    retain: false,
                    payload: settle::encode(&theirs),
                };
                self.on_publisher(|conn| publisher::publish(conn, std::slice::from_ref(&forward)))?;
            }
        }
        Ok(())
    }

    /// The `PUBLISH` for one outgoing message, or why it cannot be sent.
    fn outgoing(&self, topic: &str, message: &OutgoingMessage) -> Result<Publish> {
        let retain = Metadata::from(message.metadata.clone()).flag("retain", self.config.retain)?;
        let publish = Publish {
            topic: topic.to_string(),
            qos: self.config.qos,
            packet_id: (self.config.qos > 0).then_some(1),
            dup: false,
            retain,
            payload: message.data.clone(),
        };
        // Checked here, so an oversized entry fails alone.
        wire::Packet::Publish(publish.clone())
            .encode()
            .map_err(|err| Error::invalid(err.to_string()))?;
        Ok(publish)
    }
}

/// The contract's error for a failed connection.
fn unavailable(config: &MqttConfig, err: io::Error) -> Error {
    net::unavailable("mqtt", &config.address, config.io_timeout, err)
}

impl PubSub for MqttBroker {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(MqttBroker {
            config: MqttConfig::from_metadata(&metadata)?,
            instance: net::instance_name(""),
            publisher: Lazy::default(),
            consumers: HashMap::new(),
        })
    }

    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError> {
        let count = messages.len();
        names::check_topic_name(&topic).map_err(|err| PublishError::all(count, err))?;
        let mut outcomes: Vec<Result<()>> = Vec::with_capacity(count);
        let mut ready = Vec::new();
        for message in &messages {
            match self.outgoing(&topic, message) {
                Ok(publish) => {
                    ready.push((outcomes.len(), publish));
                    outcomes.push(Ok(()));
                }
                Err(err) => outcomes.push(Err(err)),
            }
        }
        for window in ready.chunks(publisher::WINDOW) {
            let batch: Vec<Publish> = window.iter().map(|(_, p)| p.clone()).collect();
            if let Err(err) = self.on_publisher(|conn| publisher::publish(conn, &batch)) {
                for (index, _) in window {
                    outcomes[*index] = Err(err.clone());
                }
            }
        }
        PublishError::from_outcomes(outcomes)
    }

    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>> {
        names::check_topic_filter(&subscription.topic)?;
        // Asked for nothing: only join the session (and so subscribe).
        let wait = if max == 0 { Duration::ZERO } else { wait };
        let deadline = Instant::now() + wait;
        let (topic, group) = (&subscription.topic, &subscription.consumer_group);
        let client_id = names::consumer_client_id(self.config.consumer_id.as_deref(), group, topic);
        if !self.consumers.contains_key(&client_id) {
            let consumer = Consumer::new(&self.config, &client_id, topic, group);
            self.consumers.insert(client_id.clone(), consumer);
        }
        let max = usize::try_from(max).unwrap_or(usize::MAX);
        let deliveries = self
            .on_session(&client_id, deadline, |consumer, config, instance| {
                consumer.pull(config, instance, max, deadline)
            })?
            .unwrap_or_default();
        Ok(deliveries
            .into_iter()
            .map(|delivery| IncomingMessage {
                id: MessageId {
                    client_id: client_id.clone(),
                    instance: self.instance.clone(),
                    key: delivery.key,
                    seq: delivery.seq,
                }
                .encode(),
                topic: delivery.topic,
                data: delivery.payload,
                content_type: String::new(),
                metadata: vec![("retained".into(), delivery.retained.to_string())],
                attempt: delivery.attempt,
            })
            .collect())
    }

    fn ack(&mut self, ids: Vec<String>) -> Result<()> {
        self.settle(ids, Action::Ack)
    }

    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()> {
        let after_ms = u64::try_from(redeliver_after.as_millis()).unwrap_or(u64::MAX);
        self.settle(ids, Action::Nack { after_ms })
    }
}

outrig_sdk::export_pubsub!(MqttBroker);
