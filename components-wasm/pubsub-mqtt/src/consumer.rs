//! One consumer session: the connection that holds a subscription's client
//! id, reading the group's shared subscription and the session's settle
//! topic, and the messages it has not settled.
//!
//! The connection leaves a will that deletes the session's holder record,
//! and renews the record while it is used (see [`crate::holder`]). Whether
//! this instance may connect at all is decided by the caller, who reads the
//! record first.

use crate::config::MqttConfig;
use crate::conn::{Connection, violation};
use crate::inbox::{Delivery, Inbox, Key};
use crate::settle::{self, Action};
use crate::wire::{Connect, Packet, Publish, Will};
use crate::{holder, names};
use outrig_sdk::net;
use std::io;
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// The SUBACK code for a refused subscription.
const REFUSED: u8 = 0x80;

/// A subscription's session as this instance sees it.
pub struct Consumer {
    client_id: String,
    filter: String,
    holder_topic: String,
    settle_topic: String,
    conn: Option<Connection<TcpStream>>,
    inbox: Inbox,
    record_written: Instant,
}

impl Consumer {
    /// The session `client_id` for a subscription to `topic` as `group`, not
    /// yet connected.
    pub fn new(config: &MqttConfig, client_id: &str, topic: &str, group: &str) -> Self {
        Consumer {
            client_id: client_id.to_string(),
            filter: names::group_filter(group, topic),
            holder_topic: names::holder_topic(&config.control_prefix, client_id),
            settle_topic: names::settle_topic(&config.control_prefix, client_id),
            conn: None,
            inbox: Inbox::default(),
            record_written: Instant::now(),
        }
    }

    /// Whether this instance has the session's connection open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The topic where this session's holder record is retained.
    pub fn holder_topic(&self) -> &str {
        &self.holder_topic
    }

    /// Connects as the session's client id (the broker resends what it had
    /// in flight, which the inbox recognises), writes the holder record and
    /// subscribes to the group's share and the settle topic.
    pub fn connect(&mut self, config: &MqttConfig, instance: &str) -> io::Result<()> {
        self.conn = None;
        let stream = net::connect(&config.address, config.connect_timeout, config.io_timeout)?;
        let connect = Connect {
            client_id: self.client_id.clone(),
            clean_session: config.clean_session,
            keep_alive_secs: u16::try_from(config.keep_alive.as_secs()).unwrap_or(u16::MAX),
            will: Some(Will {
                topic: self.holder_topic.clone(),
                payload: Vec::new(),
                qos: 0,
                retain: true,
            }),
            username: config.username.clone(),
            password: config.password.clone().map(String::into_bytes),
        };
        let (mut conn, session_present) = Connection::open(stream, &connect, config.io_timeout)?;
        if session_present {
            self.inbox.resume();
        } else {
            // The broker kept nothing: what this instance held is gone.
            self.inbox.clear();
        }
        let subscribe_id = conn.packet_id();
        conn.send_all(&[
            record(&self.holder_topic, instance),
            Packet::Subscribe {
                packet_id: subscribe_id,
                filters: vec![
                    (self.filter.clone(), config.qos),
                    // QoS 0: the broker's in-flight window (Mosquitto's
                    // `max_inflight_messages`) counts QoS 1 and 2 alone, and
                    // may be full of the very messages these settlements
                    // ack; queued behind it they would never arrive. Lost
                    // only with the connection, when the broker hands what
                    // was unacked to the next holder anyway.
                    (self.settle_topic.clone(), 0),
                ],
            },
        ])?;
        let (inbox, settle_topic) = (&mut self.inbox, self.settle_topic.as_str());
        let suback = conn.wait_for(
            |packet| matches!(packet, Packet::Suback { packet_id, .. } if *packet_id == subscribe_id),
            |conn, packet| handle(conn, inbox, settle_topic, instance, packet),
        )?;
        // The broker resends what is in flight before it handles SUBSCRIBE.
        self.inbox.finish_resume();
        if let Packet::Suback { codes, .. } = suback
            && codes.contains(&REFUSED)
        {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the broker refused the subscription to `{}` (shared subscriptions need \
                     an MQTT 5 era broker such as Mosquitto 2; an ACL may forbid it)",
                    self.filter
                ),
            ));
        }
        self.record_written = Instant::now();
        self.conn = Some(conn);
        Ok(())
    }

    /// Up to `max` messages: what has arrived and nacked ones now due, or,
    /// when there are none, the first to arrive or fall due before
    /// `deadline`. The holder record is renewed on the way. The connection
    /// is dropped on failure.
    pub fn pull(
        &mut self,
        config: &MqttConfig,
        instance: &str,
        max: usize,
        deadline: Instant,
    ) -> io::Result<Vec<Delivery>> {
        let (inbox, settle_topic) = (&mut self.inbox, self.settle_topic.as_str());
        let mut renewal = Renewal {
            topic: &self.holder_topic,
            instance,
            every: config.lease / 3,
            written: &mut self.record_written,
        };
        with_conn(&mut self.conn, |conn| {
            loop {
                while let Some(packet) = conn.next(Instant::now())? {
                    handle(conn, inbox, settle_topic, instance, packet)?;
                }
                renewal.renew_if_due(conn)?;
                let now = Instant::now();
                let got = inbox.take(max, now);
                if !got.is_empty() || now >= deadline {
                    return Ok(got);
                }
                let wake = inbox.next_due().map_or(deadline, |due| due.min(deadline));
                if let Some(packet) = conn.next(wake)? {
                    handle(conn, inbox, settle_topic, instance, packet)?;
                }
            }
        })
    }

    /// Acks and nacks messages this instance handed out, on a connection
    /// proven alive first (see [`Connection::ensure_alive`]).
    pub fn settle(
        &mut self,
        config: &MqttConfig,
        instance: &str,
        settlements: &[settle::Settlement],
    ) -> io::Result<()> {
        let (inbox, settle_topic) = (&mut self.inbox, self.settle_topic.as_str());
        let mut renewal = Renewal {
            topic: &self.holder_topic,
            instance,
            every: config.lease / 3,
            written: &mut self.record_written,
        };
        with_conn(&mut self.conn, |conn| {
            conn.ensure_alive(|conn, packet| handle(conn, inbox, settle_topic, instance, packet))?;
            renewal.renew_if_due(conn)?;
            let now = Instant::now();
            let acks: Vec<Packet> = settlements
                .iter()
                .filter_map(|s| apply(inbox, s.key, s.seq, s.action, now))
                .collect();
            if acks.is_empty() {
                Ok(())
            } else {
                conn.send_all(&acks)
            }
        })
    }

    /// Lets the session go: another instance holds it now, and the broker
    /// gives it what this one held.
    pub fn abandon(&mut self) {
        self.conn = None;
        self.inbox.clear();
    }

    /// How many messages this instance holds unsettled (for tests).
    #[cfg(test)]
    pub fn unsettled(&self) -> usize {
        self.inbox.len()
    }

    /// The open connection (for tests that break it).
    #[cfg(test)]
    pub fn conn_mut(&mut self) -> Option<&mut Connection<TcpStream>> {
        self.conn.as_mut()
    }
}

/// Takes one packet from the broker: a settle message is applied (its
/// entries for other instances ignored: their hand-outs are not here) and
/// acknowledged, a message goes to the inbox, acknowledgements of the
/// client's own packets need nothing more.
fn handle(
    conn: &mut Connection<TcpStream>,
    inbox: &mut Inbox,
    settle_topic: &str,
    instance: &str,
    packet: Packet,
) -> io::Result<()> {
    match packet {
        Packet::Publish(message) if message.topic == settle_topic => {
            let now = Instant::now();
            let mut acks: Vec<Packet> = settle::decode(&message.payload)
                .into_iter()
                .filter(|s| s.instance == instance)
                .filter_map(|s| apply(inbox, s.key, s.seq, s.action, now))
                .collect();
            acks.extend(message.packet_id.map(Packet::Puback));
            if acks.is_empty() {
                Ok(())
            } else {
                conn.send_all(&acks)
            }
        }
        Packet::Publish(message) => {
            inbox.receive(message);
            Ok(())
        }
        Packet::Puback(_) | Packet::Suback { .. } | Packet::Unsuback(_) | Packet::Pingresp => {
            Ok(())
        }
        other => Err(violation(format!("a broker does not send {other:?}"))),
    }
}

/// Applies one settlement to the inbox: the `PUBACK` to send, if any.
fn apply(inbox: &mut Inbox, key: Key, seq: u64, action: Action, now: Instant) -> Option<Packet> {
    match action {
        Action::Ack => inbox.ack(key, seq).map(Packet::Puback),
        Action::Nack { after_ms } => {
            inbox.nack(key, seq, now + Duration::from_millis(after_ms));
            None
        }
    }
}

/// Runs `f` on the open connection, dropping the connection if `f` fails.
fn with_conn<T>(
    conn: &mut Option<Connection<TcpStream>>,
    f: impl FnOnce(&mut Connection<TcpStream>) -> io::Result<T>,
) -> io::Result<T> {
    let Some(open) = conn.as_mut() else {
        return Err(io::Error::new(
            io::ErrorKind::NotConnected,
            "the consumer session is not connected",
        ));
    };
    let result = f(open);
    if result.is_err() {
        *conn = None;
    }
    result
}

/// When and where the holder record is rewritten while the session is used.
struct Renewal<'a> {
    topic: &'a str,
    instance: &'a str,
    every: Duration,
    written: &'a mut Instant,
}

impl Renewal<'_> {
    /// Rewrites the record once `every` has passed since it was written, so
    /// it stays live for as long as the session is in use.
    fn renew_if_due(&mut self, conn: &mut Connection<TcpStream>) -> io::Result<()> {
        if self.written.elapsed() >= self.every {
            conn.send(&record(self.topic, self.instance))?;
            *self.written = Instant::now();
        }
        Ok(())
    }
}

/// The holder record naming `instance`, retained on `topic`.
fn record(topic: &str, instance: &str) -> Packet {
    Packet::Publish(Publish {
        topic: topic.to_string(),
        qos: 0,
        packet_id: None,
        dup: false,
        retain: true,
        payload: holder::record(instance, holder::now_ms()),
    })
}
