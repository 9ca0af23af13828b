//! One AMQP connection seen as its two channels: frames become methods and
//! whole messages, and what the server sends unasked is sorted as it comes.
//!
//! - [`DELIVERY`] carries what must never be lost by a channel error: the
//!   relay consumer other instances settle through, the pulls, and the acks.
//!   Its closing is fatal to the connection (every unsettled message on it
//!   goes back to its queue, as on any disconnect).
//! - [`TOPOLOGY`] carries declarations, deletions and publishes (in confirm
//!   mode). The server closes it for a refused request (an inequivalent
//!   declaration, a missing exchange); that becomes the request's
//!   [`Refusal`] and the channel is reopened for the next one.
//!
//! Deliveries, publisher confirms, relays and server-side cancels can arrive
//! while a reply is awaited; [`Session::dispatch`] files them where the
//! client picks them up, so no reader ever drops another's frames.

use crate::content::{ContentHeader, Properties};
use crate::methods::{Reply, Request};
use crate::transport::{Socket, Transport};
use crate::wire::{FRAME_BODY, FRAME_HEADER, FRAME_METHOD, Frame, violation};
use std::collections::{BTreeMap, HashSet};
use std::io;
use std::time::{Duration, Instant};

/// The channel for pulls, acks and the relay consumer.
pub const DELIVERY: u16 = 1;
/// The channel for declarations and publishes.
pub const TOPOLOGY: u16 = 2;

/// The server's refusal of a request: it closed the channel with this code
/// and text (`NOT_FOUND - no exchange 'x' in vhost '/'`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub text: String,
}

/// What the server answered a request on [`TOPOLOGY`]: its reply, or the
/// refusal that closed the channel. (An `io::Error` around it means the
/// connection itself failed.)
pub type Answer<T> = Result<T, Refusal>;

/// A message the server handed to this connection, not yet settled.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub delivery_tag: u64,
    pub redelivered: bool,
    pub properties: Properties,
    pub body: Vec<u8>,
}

/// A method, with its content when it carries one.
#[derive(Debug)]
pub struct Incoming {
    pub method: Reply,
    pub content: Option<(Properties, Vec<u8>)>,
}

/// A content-bearing method waiting for its header and body frames.
struct Partial {
    method: Reply,
    properties: Option<Properties>,
    body_size: u64,
    body: Vec<u8>,
}

/// The connection's channels and what arrived on them unasked.
pub struct Session<S> {
    pub transport: Transport<S>,
    /// How long a request may wait for its reply.
    pub io_timeout: Duration,
    partial: BTreeMap<u16, Partial>,
    /// Why [`TOPOLOGY`] was closed, until it is reopened.
    topology_closed: Option<Refusal>,
    topology_open: bool,
    /// The consumer tag of the relay consumer.
    pub relay_tag: String,
    /// Bodies of relay messages received, to be applied.
    pub relays: Vec<Vec<u8>>,
    /// Deliveries to pull consumers.
    pub pulled: Vec<Delivery>,
    /// Pull consumers the server cancelled (their queue was deleted).
    pub cancelled: HashSet<String>,
    /// The next publish sequence number on [`TOPOLOGY`].
    next_publish: u64,
    /// Publishes awaiting their confirm, by sequence number: `None` until
    /// it comes, then whether the message was stored.
    unconfirmed: BTreeMap<u64, Option<bool>>,
}

impl<S: Socket> Session<S> {
    /// A session over a tuned transport, with no channel open yet.
    pub fn new(transport: Transport<S>, io_timeout: Duration) -> Self {
        Session {
            transport,
            io_timeout,
            partial: BTreeMap::new(),
            topology_closed: None,
            topology_open: false,
            relay_tag: String::new(),
            relays: Vec::new(),
            pulled: Vec::new(),
            cancelled: HashSet::new(),
            next_publish: 1,
            unconfirmed: BTreeMap::new(),
        }
    }

    /// The deadline of a request sent now.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.io_timeout
    }

    /// Appends `request` as a method frame on `channel` to `out`.
    pub fn frame(channel: u16, request: &Request, out: &mut Vec<u8>) -> io::Result<()> {
        Frame::encode(FRAME_METHOD, channel, &request.encode()?, out);
        Ok(())
    }

    /// Sends a request that has no reply (acks, rejects).
    pub fn send(&mut self, channel: u16, request: &Request) -> io::Result<()> {
        let mut out = Vec::new();
        Self::frame(channel, request, &mut out)?;
        self.transport.write(&out)
    }

    /// Sends `request` and waits for its reply. A refusal on [`DELIVERY`]
    /// is an `io::Error`: that channel cannot be lost alone.
    pub fn call(&mut self, channel: u16, request: &Request) -> io::Result<Answer<Incoming>> {
        if channel == TOPOLOGY {
            self.open_topology()?;
        }
        self.send(channel, request)?;
        self.reply(channel)
    }

    /// Sends `request` and checks its reply is `expected`.
    pub fn call_expecting(
        &mut self,
        channel: u16,
        request: &Request,
        expected: fn(&Reply) -> bool,
    ) -> io::Result<Answer<Incoming>> {
        match self.call(channel, request)? {
            Ok(reply) if expected(&reply.method) => Ok(Ok(reply)),
            Ok(reply) => Err(violation(format!(
                "{:?} answered {request:?}",
                reply.method
            ))),
            refused => Ok(refused),
        }
    }

    /// Waits for the next reply on `channel`, filing whatever else arrives.
    pub fn reply(&mut self, channel: u16) -> io::Result<Answer<Incoming>> {
        let deadline = self.deadline();
        loop {
            let incoming = self.next(deadline)?.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no reply from rabbitmq within {:?}", self.io_timeout),
                )
            })?;
            match incoming {
                (_, None) => {}
                (arrived, Some(reply)) if arrived == channel => return Ok(Ok(reply)),
                (arrived, Some(reply)) => {
                    return Err(violation(format!(
                        "{:?} on channel {arrived} while waiting on {channel}",
                        reply.method
                    )));
                }
            }
            if channel == TOPOLOGY
                && let Some(refusal) = self.topology_closed.clone()
            {
                return Ok(Err(refusal));
            }
        }
    }

    /// Reads until one whole method arrives or `deadline` passes, and files
    /// it: `(channel, Some(incoming))` for a reply someone awaits,
    /// `(channel, None)` when it was filed, `None` at the deadline.
    pub fn next(&mut self, deadline: Instant) -> io::Result<Option<(u16, Option<Incoming>)>> {
        loop {
            let Some(frame) = self.transport.next_frame(deadline)? else {
                return Ok(None);
            };
            let channel = frame.channel;
            if let Some(incoming) = self.assemble(frame)? {
                return Ok(Some((channel, self.dispatch(channel, incoming)?)));
            }
        }
    }

    /// Builds whole methods from frames: a content-bearing method is held
    /// until its header and every body byte arrived.
    fn assemble(&mut self, frame: Frame) -> io::Result<Option<Incoming>> {
        let channel = frame.channel;
        match (frame.kind, self.partial.remove(&channel)) {
            (FRAME_METHOD, None) => {
                let method = Reply::decode(&frame.payload)?;
                if !method.has_content() {
                    return Ok(Some(Incoming {
                        method,
                        content: None,
                    }));
                }
                self.partial.insert(
                    channel,
                    Partial {
                        method,
                        properties: None,
                        body_size: 0,
                        body: Vec::new(),
                    },
                );
            }
            (FRAME_HEADER, Some(mut partial)) if partial.properties.is_none() => {
                let header = ContentHeader::decode(&frame.payload)?;
                partial.properties = Some(header.properties);
                partial.body_size = header.body_size;
                self.partial.insert(channel, partial);
            }
            (FRAME_BODY, Some(mut partial)) if partial.properties.is_some() => {
                partial.body.extend_from_slice(&frame.payload);
                if partial.body.len() as u64 > partial.body_size {
                    return Err(violation("a message body longer than its header said"));
                }
                self.partial.insert(channel, partial);
            }
            (kind, _) => {
                return Err(violation(format!(
                    "frame type {kind} out of order on channel {channel}"
                )));
            }
        }
        // A message is whole once its body is all there (at once for an
        // empty body, whose header is the last frame).
        let whole = self.partial.get(&channel).is_some_and(|partial| {
            partial.properties.is_some() && partial.body.len() as u64 == partial.body_size
        });
        if !whole {
            return Ok(None);
        }
        Ok(self.partial.remove(&channel).map(|partial| Incoming {
            method: partial.method,
            content: Some((partial.properties.unwrap_or_default(), partial.body)),
        }))
    }

    /// Files what the server sent unasked and answers what it must be
    /// answered; returns anything else, a reply someone awaits.
    fn dispatch(&mut self, channel: u16, incoming: Incoming) -> io::Result<Option<Incoming>> {
        match (incoming.method, incoming.content) {
            (Reply::ConnectionClose { code, text }, _) => {
                let _ = self.send(0, &Request::ConnectionCloseOk);
                Err(closed_by_server(code, &text))
            }
            (Reply::ChannelClose { code, text }, _) => {
                self.send(channel, &Request::ChannelCloseOk)?;
                if channel != TOPOLOGY {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        format!("rabbitmq closed the delivery channel: {text} ({code})"),
                    ));
                }
                self.topology_open = false;
                self.topology_closed = Some(Refusal { code, text });
                Ok(None)
            }
            (Reply::ChannelFlow { active }, _) => {
                self.send(channel, &Request::ChannelFlowOk { active })?;
                Ok(None)
            }
            (Reply::Blocked { .. } | Reply::Unblocked | Reply::Return, _) => Ok(None),
            (
                Reply::Ack {
                    delivery_tag,
                    multiple,
                },
                _,
            ) if channel == TOPOLOGY => {
                self.confirm(delivery_tag, multiple, true);
                Ok(None)
            }
            (
                Reply::Nack {
                    delivery_tag,
                    multiple,
                },
                _,
            ) if channel == TOPOLOGY => {
                self.confirm(delivery_tag, multiple, false);
                Ok(None)
            }
            (Reply::Cancel { consumer_tag }, _) => {
                if consumer_tag == self.relay_tag {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "rabbitmq cancelled this connection's relay consumer",
                    ));
                }
                self.cancelled.insert(consumer_tag);
                Ok(None)
            }
            (
                Reply::Deliver {
                    consumer_tag,
                    delivery_tag,
                    redelivered,
                    ..
                },
                Some((properties, body)),
            ) => {
                if consumer_tag == self.relay_tag {
                    self.relays.push(body);
                } else {
                    self.pulled.push(Delivery {
                        delivery_tag,
                        redelivered,
                        properties,
                        body,
                    });
                }
                Ok(None)
            }
            (method, content) => Ok(Some(Incoming { method, content })),
        }
    }

    /// Opens [`TOPOLOGY`] in confirm mode if it is not open (at first use,
    /// or after the server closed it for a refused request).
    fn open_topology(&mut self) -> io::Result<()> {
        if self.topology_open {
            return Ok(());
        }
        self.topology_closed = None;
        self.send(TOPOLOGY, &Request::ChannelOpen)?;
        self.expect_reply(TOPOLOGY, |r| matches!(r, Reply::ChannelOpenOk))?;
        self.send(TOPOLOGY, &Request::ConfirmSelect)?;
        self.expect_reply(TOPOLOGY, |r| matches!(r, Reply::ConfirmSelectOk))?;
        self.topology_open = true;
        self.next_publish = 1;
        self.unconfirmed.clear();
        Ok(())
    }

    /// Waits for a reply that must be `expected`; a refusal is an error.
    pub fn expect_reply(
        &mut self,
        channel: u16,
        expected: fn(&Reply) -> bool,
    ) -> io::Result<Incoming> {
        match self.reply(channel)? {
            Ok(reply) if expected(&reply.method) => Ok(reply),
            Ok(reply) => Err(violation(format!("unexpected {:?}", reply.method))),
            Err(refusal) => Err(io::Error::other(format!(
                "rabbitmq refused to open a channel: {} ({})",
                refusal.text, refusal.code
            ))),
        }
    }

    /// Publishes messages on [`TOPOLOGY`] in one write and waits for every
    /// publisher confirm: one answer per message, in order. A message the
    /// server nacked, or whose confirm never came because the channel was
    /// closed, is not stored.
    pub fn publish(&mut self, messages: &[Publication]) -> io::Result<Vec<Answer<()>>> {
        self.open_topology()?;
        let mut out = Vec::new();
        let mut sequence = Vec::with_capacity(messages.len());
        let frame_max = self.transport.frame_max();
        for message in messages {
            Self::frame(
                TOPOLOGY,
                &Request::Publish {
                    exchange: message.exchange.clone(),
                    routing_key: message.routing_key.clone(),
                },
                &mut out,
            )?;
            crate::content::content_frames(
                TOPOLOGY,
                &message.properties,
                &message.body,
                frame_max,
                &mut out,
            )?;
            sequence.push(self.next_publish);
            self.unconfirmed.insert(self.next_publish, None);
            self.next_publish += 1;
        }
        self.transport.write(&out)?;
        let deadline = self.deadline();
        while self.topology_closed.is_none()
            && sequence
                .iter()
                .any(|seq| self.unconfirmed.get(seq).is_some_and(Option::is_none))
        {
            match self.next(deadline)? {
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no publisher confirm within {:?}", self.io_timeout),
                    ));
                }
                Some((_, Some(reply))) => {
                    return Err(violation(format!(
                        "{:?} while waiting for publisher confirms",
                        reply.method
                    )));
                }
                Some((_, None)) => {}
            }
        }
        Ok(sequence
            .iter()
            .map(|seq| match self.unconfirmed.remove(seq).flatten() {
                Some(true) => Ok(()),
                Some(false) => Err(Refusal {
                    code: 0,
                    text: "the broker did not store the message (basic.nack)".into(),
                }),
                None => Err(self.topology_closed.clone().unwrap_or(Refusal {
                    code: 0,
                    text: "no publisher confirm".into(),
                })),
            })
            .collect())
    }

    /// Records a publisher confirm for `tag`, or every tag up to it.
    fn confirm(&mut self, tag: u64, multiple: bool, stored: bool) {
        let first = if multiple { 0 } else { tag };
        for (_, outcome) in self.unconfirmed.range_mut(first..=tag) {
            outcome.get_or_insert(stored);
        }
    }
}

/// One message to publish.
#[derive(Debug, Clone)]
pub struct Publication {
    pub exchange: String,
    pub routing_key: String,
    pub properties: Properties,
    pub body: Vec<u8>,
}

/// The error for a `connection.close` from the server, keeping its words.
/// A forced close (the broker shutting down, an operator) may be retried on
/// a fresh connection; anything else is a refusal (login, vhost, limits).
pub fn closed_by_server(code: u16, text: &str) -> io::Error {
    let kind = match code {
        320 => io::ErrorKind::ConnectionReset,
        501..=505 => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::PermissionDenied,
    };
    io::Error::new(
        kind,
        format!("rabbitmq closed the connection: {text} ({code})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::content_frames;
    use crate::transport::script::{Script, Step};
    use crate::wire::Encoder;

    /// A method frame's bytes on `channel`.
    fn method(channel: u16, build: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut payload = Encoder::new();
        build(&mut payload);
        let mut out = Vec::new();
        Frame::encode(FRAME_METHOD, channel, &payload.bytes, &mut out);
        out
    }

    fn deliver(consumer_tag: &str, tag: u64, body: &[u8]) -> Vec<u8> {
        let mut out = method(DELIVERY, |m| {
            m.short(60).short(60);
            let _ = m.shortstr(consumer_tag);
            m.longlong(tag).bits(&[false]);
            let _ = m.shortstr("");
            let _ = m.shortstr("q");
        });
        content_frames(DELIVERY, &Properties::default(), body, 16, &mut out).expect("frames");
        out
    }

    fn session(server: Vec<u8>) -> Session<Script> {
        let mut transport = Transport::new(Script {
            steps: vec![Step::Bytes(server)].into(),
            written: Vec::new(),
        });
        transport.tune(4096, None);
        let mut session = Session::new(transport, Duration::from_secs(5));
        session.relay_tag = "relay".into();
        session
    }

    #[test]
    fn unasked_deliveries_are_filed_and_the_reply_is_returned() {
        let mut server = deliver("relay", 1, b"ack 7\n");
        server.extend(deliver("pull-1", 2, b"a body cut into several frames"));
        server.extend(method(DELIVERY, |m| {
            m.short(60).short(72);
            let _ = m.shortstr("");
        }));
        let mut session = session(server);
        let reply = session.reply(DELIVERY).expect("io").expect("no refusal");
        assert_eq!(reply.method, Reply::GetEmpty);
        assert_eq!(session.relays, [b"ack 7\n".to_vec()]);
        assert_eq!(session.pulled.len(), 1);
        assert_eq!(session.pulled[0].body, b"a body cut into several frames");
        assert_eq!(session.pulled[0].delivery_tag, 2);
    }

    #[test]
    fn a_refusal_closes_only_the_topology_channel() {
        let mut server = method(TOPOLOGY, |m| {
            m.short(20).short(40).short(404);
            let _ = m.shortstr("NOT_FOUND - no exchange 'x'");
            m.short(40).short(10);
        });
        server.extend(method(DELIVERY, |m| {
            m.short(20).short(40).short(406);
            let _ = m.shortstr("PRECONDITION_FAILED - unknown delivery tag 9");
            m.short(60).short(80);
        }));
        let mut session = session(server);
        session.topology_open = true;
        let refusal = session.reply(TOPOLOGY).expect("io").expect_err("refused");
        assert_eq!(refusal.code, 404);
        assert!(!session.topology_open, "reopened at next use");
        let fatal = session
            .reply(DELIVERY)
            .expect_err("the delivery channel is lost");
        assert!(
            fatal.to_string().contains("unknown delivery tag"),
            "{fatal}"
        );
    }

    #[test]
    fn frames_out_of_order_or_overlong_bodies_are_errors() {
        let header_first = {
            let mut out = Vec::new();
            content_frames(DELIVERY, &Properties::default(), b"x", 4096, &mut out).expect("ok");
            out
        };
        let overlong = {
            let mut out = deliver("pull-1", 1, b"");
            Frame::encode(FRAME_BODY, DELIVERY, b"extra", &mut out);
            out
        };
        let method_mid_content = {
            let mut out = method(DELIVERY, |m| {
                m.short(60).short(71).longlong(1).bits(&[false]);
                let _ = m.shortstr("");
                let _ = m.shortstr("q");
                m.long(0);
            });
            out.extend(method(DELIVERY, |m| {
                m.short(60).short(72);
                let _ = m.shortstr("");
            }));
            out
        };
        let close = method(0, |m| {
            m.short(10).short(50).short(320);
            let _ = m.shortstr("CONNECTION_FORCED - broker forced connection closure");
            m.short(0).short(0);
        });
        for (name, server) in [
            ("header first", header_first),
            ("overlong body", overlong),
            ("method mid-content", method_mid_content),
            ("connection closed", close),
            ("nothing at all", Vec::new()),
        ] {
            assert!(
                session(server).reply(DELIVERY).is_err(),
                "{name} was accepted"
            );
        }
    }

    #[test]
    fn confirms_settle_one_or_every_earlier_publish() {
        let mut session = session(Vec::new());
        session.unconfirmed = (1..=4).map(|seq| (seq, None)).collect();
        session.confirm(2, true, true);
        session.confirm(3, false, false);
        session.confirm(9, false, true);
        let outcomes: Vec<Option<bool>> = session.unconfirmed.values().copied().collect();
        assert_eq!(outcomes, [Some(true), Some(true), Some(false), None]);
    }
}
