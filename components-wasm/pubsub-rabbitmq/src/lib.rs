//! `pubsub.rabbitmq`: RabbitMQ as an Outrig broker component, speaking
//! AMQP 0-9-1 itself over one TCP connection per instance (the AMQP crates
//! need an async runtime or mio, which a `wasm32-wasip2` guest with blocking
//! std sockets does not have).
//!
//! **Topology** is Dapr's: a topic is an exchange (`exchangeKind`, fanout by
//! default); a consumer group's queue is `<consumerID>-<topic>` (the group
//! when `consumerID` is unset), bound to it, so each group gets every
//! message and the instances pulling for one group share them. With
//! `enableDeadLetter` the queue dead-letters (expired, overflowing
//! messages) into `dlx-<queue>`, bound to `dlq-<queue>`. Queues are created
//! on a group's first pull: a message published before any group's queue
//! exists is dropped by the exchange, as with Dapr.
//!
//! **Publishing** waits for RabbitMQ's publisher confirm of every message,
//! so published means stored (persisted too with `deliveryMode: 2` on
//! durable queues); entries of a batch fail one by one. `ttl-seconds` (or
//! `ttlInSeconds`) becomes the message's `expiration`.
//!
//! **Pulling** takes what waits with `basic.get`; when nothing does and the
//! host will wait, a consumer allowed `max` unacknowledged deliveries is
//! started and cancelled as soon as a message arrives or the wait ends, so
//! nothing is prefetched into an instance that is not asking (a standing
//! consumer would hold messages back from the group's other instances).
//! Heartbeats are sent during long waits.
//!
//! **Settling**: delivery tags only mean something on their own channel, so
//! an id names the connection holding the message; any other instance
//! relays the ack or nack to that connection through a queue of its own
//! (see [`settle`]). A nack publishes a copy (attempt counted on) straight
//! back to the queue, or after a delay through a retry queue, then acks the
//! original. The attempt is exact for nacks; a message that came back
//! because its connection dropped counts as one more delivery (exactly as
//! many as returned on quorum queues, `queueType: quorum`).
//!
//! **At least once**: a message stays unacknowledged, invisible to the
//! rest of its group, on the connection that pulled it until settled. A
//! relayed ack or nack takes effect when the owning instance next runs (any
//! call; at once if it is waiting in a pull). If the owner's connection
//! drops first (the instance is discarded, the network fails, or the
//! instance sits idle for about one to two `heartBeat` intervals, 60 s by
//! default, so the broker gives up on it: between calls a component runs
//! no code and sends no heartbeats), RabbitMQ returns the message to its
//! queue and it is delivered again, even if an ack for it was relayed and
//! not yet applied. `heartBeat: 0` keeps idle connections, and what they
//! hold, until their next call; RabbitMQ's `consumer_timeout` (30 minutes by
//! default) may still close a channel holding a message that long, which
//! returns everything it held.
//!
//! The connection is opened on first use and dropped after any I/O or
//! protocol error, so the next call starts clean. This crate knows nothing
//! of the host beyond the SDK's contract.

mod client;
mod config;
mod content;
mod handshake;
mod messages;
mod methods;
mod session;
mod settle;
#[cfg(test)]
mod tests;
mod topology;
mod transport;
mod wire;

use client::{Client, Held, refused};
use config::RabbitConfig;
use outrig_sdk::lazy::Lazy;
use outrig_sdk::pubsub::*;
use outrig_sdk::{Error, Metadata, Result, net};
use session::{Answer, Refusal};
use settle::Verdict;
use std::io;
use std::net::TcpStream;
use std::time::Duration;
use topology::Route;

/// The component's state: its configuration and its one connection.
pub struct RabbitBroker {
    config: RabbitConfig,
    conn: Lazy<Client<TcpStream>>,
}

/// Opens a TCP connection to the broker and logs in.
fn open(config: &RabbitConfig) -> io::Result<Client<TcpStream>> {
    let stream = net::connect(
        &config.address,
        config.connect_timeout,
        config.login.io_timeout,
    )?;
    Client::open(stream, &config.login)
}

/// The contract's error for a refused request.
fn refusal_error(refusal: Refusal) -> Error {
    Error::internal(format!(
        "rabbitmq refused: {} ({})",
        refusal.text, refusal.code
    ))
}

impl RabbitBroker {
    /// Runs `f` on the connection (see [`Lazy::run`]), mapping a failed
    /// connection to `unavailable` and a refusal to `internal`.
    fn call<T>(
        &mut self,
        retry_if_closed: bool,
        f: impl Fn(&mut Client<TcpStream>) -> io::Result<Answer<T>>,
    ) -> Result<T> {
        let config = &self.config;
        // Acks queued during the call reach the server before it returns.
        let f = |client: &mut Client<TcpStream>| {
            let answer = f(client)?;
            client.send_settled()?;
            Ok(answer)
        };
        self.conn
            .run(|| open(config), retry_if_closed, f)
            .map_err(|err| {
                net::unavailable("rabbitmq", &config.address, config.login.io_timeout, err)
            })?
            .map_err(refusal_error)
    }

    /// Acks or nacks `ids`, wherever they were pulled.
    fn settle(&mut self, ids: Vec<String>, verdict: Verdict) -> Result<()> {
        let ids: Vec<(String, u64)> = ids.iter().filter_map(|id| settle::parse_id(id)).collect();
        if ids.is_empty() {
            return Ok(());
        }
        let durable = self.config.durable;
        self.call(true, |client| {
            settle::settle_ids(client, &ids, verdict, durable)
        })
    }
}

impl PubSub for RabbitBroker {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(RabbitBroker {
            config: RabbitConfig::from_metadata(&metadata)?,
            conn: Lazy::default(),
        })
    }

    fn publish(
        &mut self,
        topic: String,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), PublishError> {
        let count = messages.len();
        messages::check_short("the topic", &topic).map_err(|err| PublishError::all(count, err))?;
        let prepared: Vec<Result<session::Publication>> = messages
            .iter()
            .map(|message| messages::publication(&self.config, &topic, message))
            .collect();
        let valid: Vec<session::Publication> = prepared
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let exchange = topology::topic_exchange(&self.config, &topic);
        let durable = self.config.durable;
        let answers = self
            .call(true, |client| {
                // Relays filed by earlier calls; those arriving during this
                // one wait for the next.
                settle::apply_relays(client, durable)?;
                refused!(client.declare_exchange(&exchange));
                let mut answers = client.publish(&valid)?;
                // The exchange was deleted since this connection declared it
                // (an auto-delete exchange loses its last queue): declare it
                // again and publish what was refused once more.
                let missing: Vec<usize> = (0..answers.len())
                    .filter(|&i| matches!(&answers[i], Err(refusal) if refusal.code == 404))
                    .collect();
                if !missing.is_empty() {
                    client.forget_declarations();
                    refused!(client.declare_exchange(&exchange));
                    let again: Vec<_> = missing.iter().map(|&i| valid[i].clone()).collect();
                    for (i, answer) in missing.into_iter().zip(client.publish(&again)?) {
                        answers[i] = answer;
                    }
                }
                Ok(Ok(answers))
            })
            .map_err(|err| PublishError::all(count, err))?;
        let mut answers = answers.into_iter();
        PublishError::from_outcomes(prepared.into_iter().map(|prepared| {
            prepared.and_then(|_| match answers.next() {
                Some(Ok(())) => Ok(()),
                Some(Err(refusal)) => Err(refusal_error(refusal)),
                None => Err(Error::internal("no answer for this message")),
            })
        }))
    }

    fn pull(
        &mut self,
        subscription: Subscription,
        max: u32,
        wait: Duration,
    ) -> Result<Vec<IncomingMessage>> {
        let route = Route::for_subscription(&self.config, &subscription)?;
        let (queue, max) = (route.queue.name.as_str(), max as usize);
        let durable = self.config.durable;
        self.call(true, |client| {
            settle::apply_relays(client, durable)?;
            refused!(client.ensure_route(&route));
            if max == 0 {
                return Ok(Ok(Vec::new()));
            }
            let mut got = client.get(queue, max)?;
            if got.is_empty() && !wait.is_zero() {
                got = client.wait_for(queue, max, wait, |c| {
                    settle::apply_relays(c, durable)?;
                    // Not left queued through the wait.
                    c.session.transport.write(&[])
                })?;
                if !got.is_empty() && got.len() < max {
                    got.extend(client.get(queue, max - got.len())?);
                }
            }
            settle::apply_relays(client, durable)?;
            let relay_queue = client.relay_queue.clone();
            Ok(Ok(got
                .into_iter()
                .map(|delivery| {
                    let attempt = messages::attempt(&delivery.properties, delivery.redelivered);
                    let held = Held {
                        queue: queue.to_string(),
                        attempt,
                        properties: delivery.properties.clone(),
                        body: delivery.body.clone(),
                    };
                    client.held.insert(delivery.delivery_tag, held);
                    let id = settle::message_id(&relay_queue, delivery.delivery_tag);
                    messages::incoming(&subscription.topic, id, attempt, delivery)
                })
                .collect()))
        })
    }

    fn ack(&mut self, ids: Vec<String>) -> Result<()> {
        self.settle(ids, Verdict::Ack)
    }

    fn nack(&mut self, ids: Vec<String>, redeliver_after: Duration) -> Result<()> {
        self.settle(ids, Verdict::Nack(redeliver_after))
    }
}

outrig_sdk::export_pubsub!(RabbitBroker);
