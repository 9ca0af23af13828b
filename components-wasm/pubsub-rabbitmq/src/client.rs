//! The broker operations one connection offers: declaring (with a cache of
//! what this connection declared), publishing with confirms, fetching with
//! `basic.get`, waiting for a message with a short-lived consumer, and
//! settling by delivery tag.
//!
//! Every `io::Error` from here means the connection must be dropped; a
//! refused declaration or publish comes back as the inner [`Answer`].

use crate::content::Properties;
use crate::handshake::{self, Login};
use crate::methods::{Reply, Request};
use crate::session::{Answer, DELIVERY, Delivery, Publication, Session, TOPOLOGY};
use crate::topology::{ExchangeSpec, QueueSpec, Route};
use crate::transport::Socket;
use crate::wire::violation;
use std::collections::{HashMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

/// Unwraps an `io::Result<Answer<_>>`, returning a refusal as this
/// function's answer.
macro_rules! refused {
    ($answer:expr) => {
        match $answer? {
            Ok(value) => value,
            Err(refusal) => return Ok(Err(refusal)),
        }
    };
}
pub(crate) use refused;

/// How many `basic.get`s are sent in one write.
const GET_BATCH: usize = 32;

/// A message this connection handed out and nobody has settled yet: what
/// a nack needs to publish it again.
#[derive(Debug, Clone)]
pub struct Held {
    /// The queue it came from.
    pub queue: String,
    /// Its delivery, this time counted.
    pub attempt: u32,
    pub properties: Properties,
    pub body: Vec<u8>,
}

/// One open connection and what it knows.
pub struct Client<S> {
    pub session: Session<S>,
    /// This connection's relay queue: its identity in message ids.
    pub relay_queue: String,
    /// Unsettled messages by delivery tag.
    pub held: HashMap<u64, Held>,
    /// Exchanges and queues (with every flag and argument) and bindings
    /// this connection declared.
    declared: HashSet<String>,
    next_consumer: u64,
}

impl<S: Socket> Client<S> {
    /// Logs in over `stream` and sets up the delivery channel.
    pub fn open(stream: S, login: &Login) -> io::Result<Self> {
        let (session, relay_queue) = handshake::open(stream, login)?;
        Ok(Client {
            session,
            relay_queue,
            held: HashMap::new(),
            declared: HashSet::new(),
            next_consumer: 0,
        })
    }

    /// Declares an exchange, once per connection.
    pub fn declare_exchange(&mut self, spec: &ExchangeSpec) -> io::Result<Answer<()>> {
        let key = format!("{spec:?}");
        if self.declared.contains(&key) {
            return Ok(Ok(()));
        }
        let request = Request::ExchangeDeclare {
            exchange: spec.name.clone(),
            kind: spec.kind.clone(),
            passive: false,
            durable: spec.durable,
            auto_delete: spec.auto_delete,
        };
        self.topology_call(key, &request, |r| matches!(r, Reply::ExchangeDeclareOk))
    }

    /// Declares a queue, once per connection unless `again` (for queues
    /// whose expiry each declaration restarts).
    pub fn declare_queue(&mut self, spec: &QueueSpec, again: bool) -> io::Result<Answer<()>> {
        let key = format!("{spec:?}");
        if !again && self.declared.contains(&key) {
            return Ok(Ok(()));
        }
        let request = Request::QueueDeclare {
            queue: spec.name.clone(),
            passive: false,
            durable: spec.durable,
            exclusive: false,
            auto_delete: spec.auto_delete,
            arguments: spec.arguments.clone(),
        };
        self.topology_call(key, &request, |r| matches!(r, Reply::QueueDeclareOk { .. }))
    }

    /// Binds `queue` to `exchange` with `key`, once per connection.
    pub fn bind(
        &mut self,
        queue: &str,
        exchange: &str,
        routing_key: &str,
    ) -> io::Result<Answer<()>> {
        let key = format!("binding {queue} {exchange} {routing_key}");
        if self.declared.contains(&key) {
            return Ok(Ok(()));
        }
        let request = Request::QueueBind {
            queue: queue.to_string(),
            exchange: exchange.to_string(),
            routing_key: routing_key.to_string(),
        };
        self.topology_call(key, &request, |r| matches!(r, Reply::QueueBindOk))
    }

    /// Declares everything `route` reads from: the topic's exchange, the
    /// dead-letter exchange and queue, the queue, and its bindings.
    pub fn ensure_route(&mut self, route: &Route) -> io::Result<Answer<()>> {
        refused!(self.declare_exchange(&route.exchange));
        if let Some((exchange, queue)) = &route.dead_letter {
            refused!(self.declare_exchange(exchange));
            refused!(self.declare_queue(queue, false));
            refused!(self.bind(&queue.name, &exchange.name, ""));
        }
        refused!(self.declare_queue(&route.queue, false));
        for key in &route.binding_keys {
            refused!(self.bind(&route.queue.name, &route.exchange.name, key));
        }
        Ok(Ok(()))
    }

    /// Deletes a queue or an exchange (as tests clean up), forgetting
    /// what this connection declared.
    #[cfg(test)]
    pub fn delete(&mut self, request: &Request) -> io::Result<Answer<()>> {
        self.declared.clear();
        let answer = self.session.call_expecting(TOPOLOGY, request, |r| {
            matches!(r, Reply::QueueDeleteOk | Reply::ExchangeDeleteOk)
        })?;
        Ok(answer.map(drop))
    }

    /// How many messages wait in `queue` (ready, not held by a consumer),
    /// by a passive declaration; a refusal when it does not exist.
    #[cfg(test)]
    pub fn count(&mut self, queue: &str) -> io::Result<Answer<u32>> {
        let request = Request::QueueDeclare {
            queue: queue.to_string(),
            passive: true,
            durable: false,
            exclusive: false,
            auto_delete: false,
            arguments: Default::default(),
        };
        let answer = self.session.call_expecting(TOPOLOGY, &request, |r| {
            matches!(r, Reply::QueueDeclareOk { .. })
        })?;
        Ok(answer.map(|reply| match reply.method {
            Reply::QueueDeclareOk { message_count, .. } => message_count,
            _ => 0,
        }))
    }

    /// Closes the connection as AMQP asks (`connection.close`, then its
    /// `close-ok`): once this returns, the server has put back every
    /// message this connection held.
    #[cfg(test)]
    pub fn close(&mut self) -> io::Result<()> {
        let close = Request::ConnectionClose {
            code: 200,
            text: "closing".into(),
        };
        self.session.send(0, &close)?;
        let deadline = self.session.deadline();
        loop {
            match self.session.next(deadline)? {
                None => return Err(io::ErrorKind::TimedOut.into()),
                Some((0, Some(reply))) if matches!(reply.method, Reply::ConnectionCloseOk) => {
                    return Ok(());
                }
                Some(_) => {}
            }
        }
    }

    /// Forgets what this connection declared, so the next use declares it
    /// again (after something was found missing).
    pub fn forget_declarations(&mut self) {
        self.declared.clear();
    }

    fn topology_call(
        &mut self,
        key: String,
        request: &Request,
        expected: fn(&Reply) -> bool,
    ) -> io::Result<Answer<()>> {
        let answer = self.session.call_expecting(TOPOLOGY, request, expected)?;
        if answer.is_ok() {
            self.declared.insert(key);
        }
        Ok(answer.map(drop))
    }

    /// Publishes and waits for every confirm (see [`Session::publish`]).
    pub fn publish(&mut self, messages: &[Publication]) -> io::Result<Vec<Answer<()>>> {
        self.session.publish(messages)
    }

    /// Takes up to `max` messages waiting in `queue`, with `basic.get`s sent
    /// in batches until one finds the queue empty.
    pub fn get(&mut self, queue: &str, max: usize) -> io::Result<Vec<Delivery>> {
        let mut got = Vec::new();
        while got.len() < max {
            let batch = (max - got.len()).min(GET_BATCH);
            let mut out = Vec::new();
            for _ in 0..batch {
                let get = Request::Get {
                    queue: queue.to_string(),
                };
                Session::<S>::frame(DELIVERY, &get, &mut out)?;
            }
            self.session.transport.write(&out)?;
            let mut empty = false;
            for _ in 0..batch {
                let reply = self.delivery_reply()?;
                match (reply.method, reply.content) {
                    (Reply::GetEmpty, _) => empty = true,
                    (
                        Reply::GetOk {
                            delivery_tag,
                            redelivered,
                            ..
                        },
                        Some((properties, body)),
                    ) => got.push(Delivery {
                        delivery_tag,
                        redelivered,
                        properties,
                        body,
                    }),
                    (other, _) => return Err(violation(format!("{other:?} answered basic.get"))),
                }
            }
            if empty {
                break;
            }
        }
        Ok(got)
    }

    /// Waits up to `wait` for messages to arrive in `queue` and returns the
    /// first ones (at most `max`): a consumer allowed `max` unacknowledged
    /// deliveries is started, and cancelled once something arrived or the
    /// wait is over. Whatever reached this connection before the cancel was
    /// confirmed is returned too, so nothing is left with a gone consumer.
    /// `on_idle` runs between reads (the relays other instances send are
    /// settled while this instance waits).
    pub fn wait_for(
        &mut self,
        queue: &str,
        max: usize,
        wait: Duration,
        mut on_idle: impl FnMut(&mut Self) -> io::Result<()>,
    ) -> io::Result<Vec<Delivery>> {
        self.next_consumer += 1;
        let tag = format!("outrig-pull-{}", self.next_consumer);
        let qos = Request::Qos {
            prefetch_count: max.clamp(1, u16::MAX.into()) as u16,
        };
        self.session.send(DELIVERY, &qos)?;
        self.expect_delivery_reply(|r| matches!(r, Reply::QosOk))?;
        let consume = Request::Consume {
            queue: queue.to_string(),
            consumer_tag: tag.clone(),
            no_ack: false,
            exclusive: false,
        };
        self.session.send(DELIVERY, &consume)?;
        self.expect_delivery_reply(|r| matches!(r, Reply::ConsumeOk { .. }))?;
        let deadline = Instant::now() + wait;
        while self.session.pulled.is_empty() && !self.session.cancelled.contains(&tag) {
            on_idle(self)?;
            match self.session.next(deadline)? {
                None => break,
                Some((_, None)) => {}
                Some((_, Some(reply))) => {
                    return Err(violation(format!("unexpected {:?}", reply.method)));
                }
            }
        }
        if !self.session.cancelled.remove(&tag) {
            self.session
                .send(DELIVERY, &Request::Cancel { consumer_tag: tag })?;
            self.expect_delivery_reply(|r| matches!(r, Reply::CancelOk { .. }))?;
        }
        Ok(std::mem::take(&mut self.session.pulled))
    }

    /// Queues acks and rejects (no replies) for the next request's write;
    /// [`Client::sync`] sends them if nothing else does.
    pub fn settle(&mut self, requests: &[Request]) -> io::Result<()> {
        let mut out = Vec::new();
        for request in requests {
            Session::<S>::frame(DELIVERY, request, &mut out)?;
        }
        self.session.transport.defer(&out);
        Ok(())
    }

    /// Sends what [`Client::settle`] queued, with a round trip that tells
    /// the server has it; nothing when nothing is queued.
    pub fn send_settled(&mut self) -> io::Result<()> {
        if self.session.transport.has_deferred() {
            self.sync()?;
        }
        Ok(())
    }

    /// A round trip on the delivery channel: when it returns, the server
    /// has processed everything sent on it before (acks, rejects), and
    /// every relay it sent before is in [`Session::relays`].
    pub fn sync(&mut self) -> io::Result<()> {
        let ping = Request::ExchangeDeclare {
            exchange: "amq.direct".into(),
            kind: "direct".into(),
            passive: true,
            durable: true,
            auto_delete: false,
        };
        self.session.send(DELIVERY, &ping)?;
        self.expect_delivery_reply(|r| matches!(r, Reply::ExchangeDeclareOk))
            .map(drop)
    }

    /// The next reply on the delivery channel, whose refusal is fatal.
    fn delivery_reply(&mut self) -> io::Result<crate::session::Incoming> {
        self.session.reply(DELIVERY)?.map_err(|refusal| {
            io::Error::other(format!(
                "rabbitmq refused: {} ({})",
                refusal.text, refusal.code
            ))
        })
    }

    fn expect_delivery_reply(
        &mut self,
        expected: fn(&Reply) -> bool,
    ) -> io::Result<crate::session::Incoming> {
        let reply = self.delivery_reply()?;
        if expected(&reply.method) {
            Ok(reply)
        } else {
            Err(violation(format!("unexpected {:?}", reply.method)))
        }
    }
}
