//! The broker's contract, exercised natively against the real NATS server
//! with JetStream at 127.0.0.1:4222 (as on the project's machines). Every
//! test uses topics (and so streams) of its own and deletes its streams.

use super::*;
use outrig_sdk::pubsub::testing::{ids, message, payloads, subscription};
use serde_json::json;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

const NATS: &str = "nats://127.0.0.1:4222";

/// A topic no other test (or run) uses, and the streams to delete on drop.
struct Topic {
    name: String,
    streams: Vec<String>,
}

impl Topic {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let name = format!(
            "outrig.test.{}.{millis}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Topic {
            streams: vec![escape(&name)],
            name,
        }
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let Ok(config) = NatsConfig::from_metadata(&Metadata::from_pairs(&[("natsURL", NATS)]))
        else {
            return;
        };
        if let Ok(mut client) = open(&config, "_INBOX.cleanup") {
            for stream in &self.streams {
                let _ = js::api(
                    &mut client,
                    &format!("$JS.API.STREAM.DELETE.{stream}"),
                    &json!({}),
                );
            }
        }
    }
}

fn broker(extra: &[(&str, &str)]) -> NatsBroker {
    let mut pairs = vec![("natsURL", NATS)];
    pairs.extend_from_slice(extra);
    NatsBroker::init(Metadata::from_pairs(&pairs)).expect("init")
}

fn pull(broker: &mut NatsBroker, topic: &Topic, group: &str, max: u32) -> Vec<IncomingMessage> {
    broker
        .pull(subscription(&topic.name, group), max, Duration::ZERO)
        .expect("pull")
}

#[test]
fn groups_each_get_every_message_and_consumers_share_them() {
    let topic = Topic::new();
    let (mut a1, mut a2, mut b) = (broker(&[]), broker(&[]), broker(&[]));
    a1.publish(topic.name.clone(), ["x", "y", "z"].map(message).to_vec())
        .expect("publish");

    let first = pull(&mut a1, &topic, "app-a", 2);
    assert_eq!(payloads(&first), ["x", "y"]);
    assert_eq!(
        (first[0].attempt, first[0].content_type.as_str()),
        (1, "text/plain")
    );
    assert_eq!(first[0].topic, topic.name);
    assert_eq!(payloads(&pull(&mut a2, &topic, "app-a", 10)), ["z"]);
    assert_eq!(
        payloads(&pull(&mut b, &topic, "app-b", 10)),
        ["x", "y", "z"]
    );
    assert!(pull(&mut a1, &topic, "app-a", 10).is_empty());
}

#[test]
fn acked_messages_are_gone_and_nacked_ones_come_back_with_their_attempt() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    broker
        .publish(topic.name.clone(), vec![message("ok"), message("retry")])
        .expect("publish");
    let first = pull(&mut broker, &topic, "app", 10);
    assert_eq!(payloads(&first), ["ok", "retry"]);
    broker.ack(vec![first[0].id.clone()]).expect("ack");
    broker
        .nack(vec![first[1].id.clone()], Duration::ZERO)
        .expect("nack");

    let again = broker
        .pull(
            subscription(&topic.name, "app"),
            10,
            Duration::from_secs(10),
        )
        .expect("pull");
    assert_eq!(payloads(&again), ["retry"]);
    assert_eq!(again[0].attempt, 2);
    broker.ack(ids(&again)).expect("ack");
    assert!(pull(&mut broker, &topic, "app", 10).is_empty());
}

#[test]
fn a_nack_delay_holds_the_message_back() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    broker
        .publish(topic.name.clone(), vec![message("later")])
        .expect("publish");
    let first = pull(&mut broker, &topic, "app", 10);
    broker
        .nack(ids(&first), Duration::from_secs(60))
        .expect("nack");
    assert!(pull(&mut broker, &topic, "app", 10).is_empty());
}

#[test]
fn a_blocking_pull_returns_what_arrives() {
    let topic = Topic::new();
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", 1).is_empty());
    let name = topic.name.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        broker(&[]).publish(name, vec![message("late"), message("later")])
    });
    let mut got = consumer
        .pull(
            subscription(&topic.name, "app"),
            10,
            Duration::from_secs(20),
        )
        .expect("pull");
    publisher.join().expect("publisher").expect("publish");
    if got.len() == 1 {
        // The second message may land just after the first was handed out.
        got.extend(pull(&mut consumer, &topic, "app", 10));
    }
    assert_eq!(payloads(&got), ["late", "later"]);
}

#[test]
fn a_named_stream_takes_every_topic_and_durable_name_replaces_the_group() {
    let (one, mut two) = (Topic::new(), Topic::new());
    let stream = format!("{}-shared", escape(&one.name));
    two.streams = vec![stream.clone()];
    let mut broker = broker(&[("streamName", &stream), ("durableName", "fixed")]);
    broker
        .publish(one.name.clone(), vec![message("1")])
        .expect("publish one");
    broker
        .publish(two.name.clone(), vec![message("2")])
        .expect("publish two");
    assert_eq!(payloads(&pull(&mut broker, &one, "ignored", 10)), ["1"]);
    assert_eq!(payloads(&pull(&mut broker, &two, "ignored", 10)), ["2"]);
    assert_eq!(broker.streams.get(&one.name), Some(&stream));
    assert!(
        broker
            .consumers
            .contains(&(stream.clone(), format!("fixed__{}", escape(&two.name))))
    );
}

#[test]
fn a_broken_connection_is_replaced_and_a_dead_server_is_unavailable() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let client = broker.conn.get_mut().expect("connected");
    client
        .stream_mut()
        .shutdown(Shutdown::Both)
        .expect("shutdown");
    broker
        .publish(topic.name.clone(), vec![message("m")])
        .expect("a closed connection is replaced");
    assert_eq!(payloads(&pull(&mut broker, &topic, "app", 1)), ["m"]);

    let mut down = NatsBroker::init(Metadata::from_pairs(&[("natsURL", "nats://127.0.0.1:1")]))
        .expect("init is lazy");
    let failed = down
        .publish("t".into(), vec![message("a"), message("b")])
        .expect_err("no server");
    assert_eq!(failed.failed.len(), 2);
    assert!(matches!(failed.failed[1].error, Error::Unavailable(_)));
}

/// The server's own limit (1 MiB unless configured otherwise) is read from
/// its `INFO`: a larger message is refused alone, by its size, and neither
/// the others of its batch nor the connection suffer.
#[test]
fn a_message_over_max_payload_is_refused_alone_and_says_why() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let limit = broker
        .conn
        .get_mut()
        .and_then(|client| client.max_payload())
        .expect("the server announces max_payload");
    let big = "x".repeat(limit + 1);
    let failed = broker
        .publish(
            topic.name.clone(),
            vec![message("before"), message(&big), message("after")],
        )
        .expect_err("the big message is refused");
    assert_eq!(failed.failed.len(), 1, "{failed:?}");
    assert_eq!(failed.failed[0].index, 1);
    let Error::InvalidArgument(reason) = &failed.failed[0].error else {
        panic!("not invalid-argument: {failed:?}");
    };
    // The payload plus the Content-Type header block.
    let size = limit + 1 + "NATS/1.0\r\nContent-Type: text/plain\r\n\r\n".len();
    assert_eq!(
        reason,
        &format!(
            "the message is {size} bytes (headers and payload), over the NATS server's \
             max_payload of {limit} bytes"
        )
    );
    assert!(broker.conn.is_open(), "the connection was kept");
    assert_eq!(
        payloads(&pull(&mut broker, &topic, "app", 10)),
        ["before", "after"]
    );
}

#[test]
fn names_are_escaped_injectively() {
    assert_eq!(escape("orders.eu-1"), "orders_2eeu-1");
    assert_ne!(escape("a_b"), escape("a.b"));
    assert!(!escape("a__b.c").contains("__"));
}
