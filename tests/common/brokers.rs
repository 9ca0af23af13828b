//! The networked pub/sub brokers on this machine, as the end-to-end tests
//! use them: the built-in component type and address of each, and a guard
//! that removes what a run left at its broker (streams, durable consumers,
//! persistent sessions, durable queues), so runs do not pile up state in
//! servers that outlive them.
//!
//! Cleanup speaks each broker's own protocol with the least it needs (the
//! NATS text protocol, two MQTT 3.1.1 packets, a handful of AMQP 0-9-1
//! methods), so the tests need no client library per broker. It mirrors
//! how the components name things (see each component's module docs); a
//! renamed queue or session would be left behind, not break a test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long cleanup waits on a broker before giving up (best effort).
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A networked broker with a built-in component, running on 127.0.0.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    /// Redis Streams (`pubsub.redis`) on 6379.
    Redis,
    /// NATS JetStream (`pubsub.jetstream`) on 4222.
    JetStream,
    /// Mosquitto, MQTT 3.1.1 (`pubsub.mqtt3`) on 1883.
    Mqtt,
    /// RabbitMQ, AMQP 0-9-1 (`pubsub.rabbitmq`) on 5672, as guest.
    RabbitMq,
}

impl Broker {
    /// Every networked broker.
    pub const ALL: [Broker; 4] = [
        Broker::Redis,
        Broker::JetStream,
        Broker::Mqtt,
        Broker::RabbitMq,
    ];

    /// The broker a built-in component of `component_type` speaks to;
    /// `None` for the in-process one.
    pub fn for_component(component_type: &str) -> Option<Broker> {
        Broker::ALL
            .into_iter()
            .find(|broker| broker.component_type() == component_type)
    }

    /// The component type that speaks to it.
    pub fn component_type(self) -> &'static str {
        match self {
            Broker::Redis => "pubsub.redis",
            Broker::JetStream => "pubsub.jetstream",
            Broker::Mqtt => "pubsub.mqtt3",
            Broker::RabbitMq => "pubsub.rabbitmq",
        }
    }

    /// The metadata field and value that point the component at it.
    pub fn address(self) -> (&'static str, &'static str) {
        match self {
            Broker::Redis => ("redisHost", super::REDIS_HOST),
            Broker::JetStream => ("natsURL", "nats://127.0.0.1:4222"),
            Broker::Mqtt => ("url", "tcp://127.0.0.1:1883"),
            Broker::RabbitMq => ("connectionString", "amqp://guest:guest@127.0.0.1:5672"),
        }
    }
}

/// What a run created at its broker, removed when dropped (even when the
/// run failed). Declare it before the run's sidecars, so they are gone
/// (killed on drop) before it cleans up behind them.
pub struct BrokerCleanup {
    broker: Broker,
    topics: Vec<String>,
    /// Consumer groups (app ids), each with the `consumerID` its component
    /// had, if any.
    groups: Vec<(String, Option<String>)>,
}

impl BrokerCleanup {
    /// Nothing to clean yet at `broker`.
    pub fn new(broker: Broker) -> Self {
        BrokerCleanup {
            broker,
            topics: Vec::new(),
            groups: Vec::new(),
        }
    }

    /// A topic the run used (a name of letters, digits and `-`, as
    /// [`super::unique_name`] makes them).
    pub fn topic(mut self, topic: &str) -> Self {
        self.topics.push(topic.to_string());
        self
    }

    /// A consumer group that subscribed to the topics, and the `consumerID`
    /// metadata its component had.
    pub fn group(mut self, group: &str, consumer_id: Option<&str>) -> Self {
        self.groups
            .push((group.to_string(), consumer_id.map(str::to_string)));
        self
    }
}

impl Drop for BrokerCleanup {
    fn drop(&mut self) {
        match self.broker {
            Broker::Redis => delete_redis_streams(&self.topics),
            Broker::JetStream => delete_nats_streams(&self.topics),
            Broker::Mqtt => {
                for (group, consumer_id) in &self.groups {
                    for topic in &self.topics {
                        let client_id = mqtt_client_id(consumer_id.as_deref(), group, topic);
                        let _ = discard_mqtt_session(&client_id);
                    }
                }
            }
            Broker::RabbitMq => {
                let queues: Vec<String> = self
                    .groups
                    .iter()
                    .flat_map(|(group, consumer_id)| {
                        let base = consumer_id.as_deref().unwrap_or(group).to_string();
                        self.topics
                            .iter()
                            .map(move |topic| format!("{base}-{topic}"))
                    })
                    .collect();
                let _ = delete_rabbitmq_topology(&queues, &self.topics);
            }
        }
    }
}

/// Deletes the streams (one key per topic, groups included).
fn delete_redis_streams(topics: &[String]) {
    if topics.is_empty() {
        return;
    }
    if let Ok(mut redis) = super::redis_connection() {
        let _: Result<i64, _> = redis::cmd("DEL").arg(topics).query(&mut redis);
    }
}

/// Asks JetStream to delete the streams named after the topics (with their
/// durable consumers), over the NATS text protocol.
pub fn delete_nats_streams(topics: &[String]) {
    let Ok(mut nats) = connect("127.0.0.1:4222") else {
        return;
    };
    let mut commands = String::from("CONNECT {\"verbose\":false}\r\n");
    for topic in topics {
        commands.push_str(&format!("PUB $JS.API.STREAM.DELETE.{topic} 0\r\n\r\n"));
    }
    // The PONG tells the deletes were read before the connection closes.
    commands.push_str("PING\r\n");
    let _ = nats.write_all(commands.as_bytes());
    let mut pong = [0u8; 512];
    let _ = nats.read(&mut pong);
}

/// A TCP connection to `address` with [`CLEANUP_TIMEOUT`] on everything.
fn connect(address: &str) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = address
        .parse()
        .map_err(|_| std::io::Error::other(format!("bad address {address}")))?;
    let stream = TcpStream::connect_timeout(&addr, CLEANUP_TIMEOUT)?;
    stream.set_read_timeout(Some(CLEANUP_TIMEOUT))?;
    stream.set_write_timeout(Some(CLEANUP_TIMEOUT))?;
    Ok(stream)
}

// ---------------------------------------------------------------------------
// MQTT: persistent sessions
// ---------------------------------------------------------------------------

/// The client id of the `pubsub.mqtt3` consumer session for `group` on
/// `topic`: `<consumerID or group, escaped>-<FNV-1a of group and topic>`,
/// as the component's `names::consumer_client_id` makes it.
pub fn mqtt_client_id(consumer_id: Option<&str>, group: &str, topic: &str) -> String {
    let escaped: String = consumer_id
        .unwrap_or(group)
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' => (b as char).to_string(),
            other => format!("_{other:02x}"),
        })
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in [group, topic] {
        for &byte in part.as_bytes().iter().chain(&[0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{escaped}-{hash:016x}")
}

/// Discards the persistent session `client_id` (a clean-session connect
/// does, with what it had queued) and clears its retained holder record,
/// which Mosquitto would otherwise keep, persisted, forever.
fn discard_mqtt_session(client_id: &str) -> std::io::Result<()> {
    let mut mqtt = connect("127.0.0.1:1883")?;
    let mut connect_body = Vec::new();
    push_mqtt_string(&mut connect_body, "MQTT");
    // Protocol level 4 (3.1.1), flags: clean session; keep-alive 10 s.
    connect_body.extend_from_slice(&[4, 0x02, 0, 10]);
    push_mqtt_string(&mut connect_body, client_id);
    mqtt.write_all(&mqtt_packet(0x10, &connect_body))?;
    let mut connack = [0u8; 4];
    mqtt.read_exact(&mut connack)?;
    let mut holder = Vec::new();
    push_mqtt_string(&mut holder, &format!("outrig/mqtt3/{client_id}/holder"));
    // QoS 0, retained, empty: deletes the retained message.
    mqtt.write_all(&mqtt_packet(0x31, &holder))?;
    mqtt.write_all(&mqtt_packet(0xe0, &[]))?;
    Ok(())
}

/// An MQTT packet: the fixed header's first byte, the remaining length
/// (variable-length integer) and the body.
fn mqtt_packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut packet = vec![first];
    let mut length = body.len();
    loop {
        let mut byte = u8::try_from(length % 128).unwrap_or(0);
        length /= 128;
        if length > 0 {
            byte |= 0x80;
        }
        packet.push(byte);
        if length == 0 {
            break;
        }
    }
    packet.extend_from_slice(body);
    packet
}

/// An MQTT UTF-8 string: two length bytes, then the bytes.
fn push_mqtt_string(out: &mut Vec<u8>, text: &str) {
    let length = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(length)]);
}

// ---------------------------------------------------------------------------
// RabbitMQ: durable queues and the topics' exchanges
// ---------------------------------------------------------------------------

/// Deletes `queues` (durable, never auto-deleted by the component) and the
/// `exchanges` (auto-delete, but only once unbound), as guest on `/`.
fn delete_rabbitmq_topology(queues: &[String], exchanges: &[String]) -> std::io::Result<()> {
    let mut amqp = Amqp::open()?;
    for queue in queues {
        // queue.delete: ticket, queue, no if-unused/if-empty/no-wait.
        let mut args = 0u16.to_be_bytes().to_vec();
        push_short_string(&mut args, queue);
        args.push(0);
        amqp.call((50, 40), &args, (50, 41))?;
    }
    for exchange in exchanges {
        // exchange.delete: ticket, exchange, no if-unused/no-wait.
        let mut args = 0u16.to_be_bytes().to_vec();
        push_short_string(&mut args, exchange);
        args.push(0);
        amqp.call((40, 20), &args, (40, 21))?;
    }
    amqp.close()
}

/// An AMQP 0-9-1 connection with one open channel, just enough to delete.
struct Amqp {
    stream: TcpStream,
    channel: u16,
}

/// An AMQP method's class and method ids.
type MethodId = (u16, u16);

impl Amqp {
    /// Connects and logs in as guest on `/`, then opens channel 1.
    fn open() -> std::io::Result<Self> {
        let stream = connect("127.0.0.1:5672")?;
        let mut amqp = Amqp { stream, channel: 0 };
        amqp.stream.write_all(b"AMQP\x00\x00\x09\x01")?;
        amqp.expect((10, 10))?; // connection.start
        let mut start_ok = 0u32.to_be_bytes().to_vec(); // no client properties
        push_short_string(&mut start_ok, "PLAIN");
        let response = b"\0guest\0guest";
        start_ok.extend_from_slice(&u32::try_from(response.len()).unwrap_or(0).to_be_bytes());
        start_ok.extend_from_slice(response);
        push_short_string(&mut start_ok, "en_US");
        amqp.send((10, 11), &start_ok)?;
        let tune = amqp.expect((10, 30))?;
        // tune-ok: the server's channel-max and frame-max, no heartbeats.
        let mut tune_ok = tune.get(..6).unwrap_or(&[0; 6]).to_vec();
        tune_ok.extend_from_slice(&[0, 0]);
        amqp.send((10, 31), &tune_ok)?;
        let mut open = Vec::new();
        push_short_string(&mut open, "/");
        push_short_string(&mut open, "");
        open.push(0);
        amqp.call((10, 40), &open, (10, 41))?;
        amqp.open_channel()?;
        Ok(amqp)
    }

    /// Opens the next channel (after the server closed the last one).
    fn open_channel(&mut self) -> std::io::Result<()> {
        self.channel += 1;
        self.call((20, 10), &[0], (20, 11)).map(drop)
    }

    /// Sends a method on the current channel (channel 0 for connection
    /// methods) and waits for `reply`. A channel the server closed (it
    /// refused the method) is acknowledged and replaced, and the method
    /// counts as done: cleanup is best effort.
    fn call(&mut self, method: MethodId, args: &[u8], reply: MethodId) -> std::io::Result<()> {
        self.send(method, args)?;
        loop {
            let (id, _) = self.read_method()?;
            if id == reply {
                return Ok(());
            }
            if id == (20, 40) {
                self.send((20, 41), &[])?;
                return self.open_channel();
            }
        }
    }

    /// Waits for `method`, returning its arguments.
    fn expect(&mut self, method: MethodId) -> std::io::Result<Vec<u8>> {
        loop {
            let (id, args) = self.read_method()?;
            if id == method {
                return Ok(args);
            }
        }
    }

    /// Writes one method frame.
    fn send(&mut self, (class, method): MethodId, args: &[u8]) -> std::io::Result<()> {
        let channel = if class == 10 { 0 } else { self.channel };
        let mut payload = class.to_be_bytes().to_vec();
        payload.extend_from_slice(&method.to_be_bytes());
        payload.extend_from_slice(args);
        let mut frame = vec![1];
        frame.extend_from_slice(&channel.to_be_bytes());
        frame.extend_from_slice(&u32::try_from(payload.len()).unwrap_or(0).to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.push(0xce);
        self.stream.write_all(&frame)
    }

    /// Reads frames until a method frame, returning its id and arguments.
    fn read_method(&mut self) -> std::io::Result<(MethodId, Vec<u8>)> {
        loop {
            let mut header = [0u8; 7];
            self.stream.read_exact(&mut header)?;
            let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]);
            let mut payload = vec![0u8; usize::try_from(size).unwrap_or(0) + 1];
            self.stream.read_exact(&mut payload)?;
            if header[0] == 1 && payload.len() >= 5 {
                let class = u16::from_be_bytes([payload[0], payload[1]]);
                let method = u16::from_be_bytes([payload[2], payload[3]]);
                payload.truncate(payload.len() - 1);
                return Ok(((class, method), payload.split_off(4)));
            }
        }
    }

    /// connection.close, waiting for close-ok.
    fn close(mut self) -> std::io::Result<()> {
        let mut close = 200u16.to_be_bytes().to_vec();
        push_short_string(&mut close, "");
        close.extend_from_slice(&[0, 0, 0, 0]);
        self.send((10, 50), &close)?;
        self.expect((10, 51)).map(drop)
    }
}

/// An AMQP short string: one length byte, then the bytes.
fn push_short_string(out: &mut Vec<u8>, text: &str) {
    let length = u8::try_from(text.len()).unwrap_or(u8::MAX);
    out.push(length);
    out.extend_from_slice(&text.as_bytes()[..usize::from(length)]);
}
