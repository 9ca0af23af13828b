//! `pubsub.jetstream` (also `pubsub.nats`): NATS JetStream as an Outrig
//! broker component, speaking the NATS text protocol over one TCP connection
//! per instance.
//!
//! A topic is a subject. Publishing waits for JetStream's acknowledgement, so
//! a published message is stored. A message over the server's `max_payload`
//! (from its `INFO`, 1 MiB by default) is refused alone, as `invalid-argument`
//! naming both sizes, without being sent: the server would close the
//! connection on it. The stream a topic lives in is `streamName`
//! when set (created if missing, the topic's subject added to it), else the
//! stream whose subjects capture the topic, else a new stream named after
//! the topic. A consumer group is a durable pull consumer filtered on the
//! topic and named `<group or durableName>__<topic>` (both escaped to the
//! characters NATS allows), so replicas of one app share its messages and
//! each app gets all of them. Pulls are `CONSUMER.MSG.NEXT` requests: what is
//! there at once, or the first message within `wait-ms`. Acks are `+ACK`; a
//! nack is `-NAK` with the delay, and a message not settled within `ackWait`
//! is redelivered by JetStream itself, with its delivery count as the
//! attempt.
//!
//! Publish metadata and `ttl-seconds` are not stored (per-message TTL needs
//! NATS 2.11; the host enforces the CloudEvent's `expiration`).
//!
//! The connection is opened on first use and dropped after any I/O or
//! protocol error, so the next call starts clean. This crate knows nothing
//! of the host beyond the SDK's contract.

mod config;
mod js;
#[cfg(test)]
mod tests;
mod wire;

use config::NatsConfig;
use js::{Answer, ApiError, ConsumerSpec, Published};
use outrig_sdk::lazy::Lazy;
use outrig_sdk::pubsub::*;
use outrig_sdk::{Error, Metadata, Result, net};
use std::collections::{HashMap, HashSet};
use std::io;
use std::net::TcpStream;
use std::time::Duration;
use wire::{Client, Login};

/// The component's state: configuration, connection, and what it has learnt.
pub struct NatsBroker {
    config: NatsConfig,
    conn: Lazy<Client<TcpStream>>,
    /// This instance's inbox prefix, where replies and fetched messages land.
    inbox: String,
    /// The stream each topic seen so far lives in.
    streams: HashMap<String, String>,
    /// Durable consumers known to exist, by stream and name.
    consumers: HashSet<(String, String)>,
}

/// Opens a TCP connection to the server and logs in.
fn open(config: &NatsConfig, inbox: &str) -> io::Result<Client<TcpStream>> {
    let stream = net::connect(&config.address, config.connect_timeout, config.io_timeout)?;
    let login = Login {
        user: config.user.clone(),
        password: config.password.clone(),
        token: config.token.clone(),
    };
    Client::handshake(stream, &login, inbox.to_string())
}

/// Runs `f` on the connection (see [`Lazy::run`]), mapping a failed
/// connection to `unavailable` and a refused request to [`api_error`].
fn call<T>(
    conn: &mut Lazy<Client<TcpStream>>,
    config: &NatsConfig,
    inbox: &str,
    f: impl Fn(&mut Client<TcpStream>) -> io::Result<Answer<T>>,
) -> Result<T> {
    conn.run(|| open(config, inbox), true, f)
        .map_err(|err| unavailable(config, err))?
        .map_err(api_error)
}

/// The contract's error for a failed connection.
fn unavailable(config: &NatsConfig, err: io::Error) -> Error {
    net::unavailable("nats", &config.address, config.io_timeout, err)
}

/// The contract's error for a JetStream refusal: no JetStream at all is
/// `unavailable`, anything else `internal` with JetStream's words.
fn api_error(error: ApiError) -> Error {
    match error.code {
        0 => Error::unavailable(format!("jetstream: {}", error.description)),
        code => Error::internal(format!("jetstream: {} (code {code})", error.description)),
    }
}

/// The contract's error for a message the server would not take: the
/// request is at fault (a retry cannot succeed), and the words say why.
fn too_large(size: usize, limit: usize) -> Error {
    Error::invalid(format!(
        "the message is {size} bytes (headers and payload), over the NATS server's \
         max_payload of {limit} bytes"
    ))
}

/// `name` in the characters NATS allows in stream and consumer names: ASCII
/// letters, digits and `-` stay, every other byte becomes `_` and two hex
/// digits. Injective, and never produces `__`.
fn escape(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            other => format!("_{other:02x}"),
        })
        .collect()
}

impl NatsBroker {
    /// The stream `topic` lives in, found or created on first use.
    fn stream_for(&mut self, topic: &str) -> Result<String> {
        if let Some(stream) = self.streams.get(topic) {
            return Ok(stream.clone());
        }
        let (config, inbox) = (&self.config, &self.inbox);
        let stream = match &config.stream_name {
            Some(name) => name.clone(),
            None => call(&mut self.conn, config, inbox, |client| {
                js::find_stream(client, topic)
            })?
            .unwrap_or_else(|| escape(topic)),
        };
        call(&mut self.conn, config, inbox, |client| {
            js::ensure_stream(client, &stream, topic)
        })?;
        self.streams.insert(topic.to_string(), stream.clone());
        Ok(stream)
    }

    /// The durable consumer for a subscription, created on first use.
    fn consumer_for(&mut self, subscription: &Subscription, stream: &str) -> Result<String> {
        let base = self
            .config
            .durable_name
            .as_deref()
            .unwrap_or(&subscription.consumer_group);
        let durable = format!("{}__{}", escape(base), escape(&subscription.topic));
        let key = (stream.to_string(), durable.clone());
        if !self.consumers.contains(&key) {
            let spec = ConsumerSpec {
                stream,
                durable: &durable,
                filter_subject: &subscription.topic,
                ack_wait: self.config.ack_wait,
                max_deliver: self.config.max_deliver,
            };
            call(&mut self.conn, &self.config, &self.inbox, |client| {
                js::ensure_consumer(client, &spec)
            })?;
            self.consumers.insert(key);
        }
        Ok(durable)
    }
}

impl PubSub for NatsBroker {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(NatsBroker {
            config: NatsConfig::from_metadata(&metadata)?,
            conn: Lazy::default(),
            inbox: net::instance_name("_INBOX."),
            streams: HashMap::new(),
            consumers: HashSet::new(),
        })
    }

    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError> {
        let count = messages.len();
        self.stream_for(&topic)
            .map_err(|err| PublishError::all(count, err))?;
        let batch: Vec<(&str, &[u8])> = messages
            .iter()
            .map(|m| (m.content_type.as_str(), m.data.as_slice()))
            .collect();
        let outcomes = call(&mut self.conn, &self.config, &self.inbox, |client| {
            js::publish(client, &topic, &batch).map(Ok)
        })
        .map_err(|err| PublishError::all(count, err))?;
        PublishError::from_outcomes(outcomes.into_iter().map(|outcome| match outcome {
            Published::Answered(answer) => answer.map_err(api_error),
            Published::TooLarge { size, limit } => Err(too_large(size, limit)),
        }))
    }

    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>> {
        let stream = self.stream_for(&subscription.topic)?;
        let durable = self.consumer_for(&subscription, &stream)?;
        if max == 0 {
            return Ok(Vec::new());
        }
        let io_timeout = self.config.io_timeout;
        let fetched = call(&mut self.conn, &self.config, &self.inbox, |client| {
            // The socket must outwait the server's expiry; best effort.
            let _ = client
                .stream_mut()
                .set_read_timeout(Some(io_timeout + wait));
            let fetched = js::fetch(client, &stream, &durable, max, wait)?;
            let _ = client.stream_mut().set_read_timeout(Some(io_timeout));
            Ok(fetched)
        });
        if fetched.is_err() {
            // The consumer may have been deleted: make sure of it next time.
            self.consumers.remove(&(stream, durable));
        }
        Ok(fetched?
            .into_iter()
            .map(|message| IncomingMessage {
                id: message.ack_subject,
                topic: subscription.topic.clone(),
                data: message.data,
                content_type: message.content_type,
                metadata: Vec::new(),
                attempt: message.attempt,
            })
            .collect())
    }

    fn ack(&mut self, ids: Vec<String>) -> Result<()> {
        call(&mut self.conn, &self.config, &self.inbox, |client| {
            js::settle(client, &ids, None).map(Ok)
        })
    }

    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()> {
        call(&mut self.conn, &self.config, &self.inbox, |client| {
            js::settle(client, &ids, Some(redeliver_after)).map(Ok)
        })
    }
}

outrig_sdk::export_pubsub!(NatsBroker);
