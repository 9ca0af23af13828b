//! The broker's contract, exercised natively against the real RabbitMQ at
//! 127.0.0.1:5672 (guest/guest, as on the project's machines). Every test
//! uses a topic of its own (`outrig-test-amqp-<pid>-<n>`) and deletes the
//! exchanges and queues it made, even when it fails.

use super::*;
use crate::methods::Request;
use crate::wire::FieldValue;
use outrig_sdk::pubsub::testing::{ids, message, payloads, subscription};
use std::collections::BTreeSet;
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/";

/// A topic no other test (or run) uses, and everything to delete after.
struct Topic {
    name: String,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Topic {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "outrig-test-amqp-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Topic {
            queues: Vec::new(),
            exchanges: vec![name.clone()],
            name,
        }
    }

    /// The queue of consumer group `group`, deleted after the test.
    fn queue(&mut self, group: &str) -> String {
        let queue = format!("{group}-{}", self.name);
        self.queues.push(queue.clone());
        queue
    }

    /// The group's queue with its dead-letter exchange and queue.
    fn dead_letter(&mut self, group: &str) -> (String, String) {
        let queue = self.queue(group);
        let (dlx, dlq) = (format!("dlx-{queue}"), format!("dlq-{queue}"));
        self.exchanges.push(dlx.clone());
        self.queues.push(dlq.clone());
        (dlx, dlq)
    }

    /// The retry queue for `group`'s messages nacked with `millis` delay.
    fn retry(&mut self, group: &str, millis: u64) -> String {
        let retry = format!("outrig-retry-{millis}-{group}-{}", self.name);
        self.queues.push(retry.clone());
        retry
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let Ok(mut admin) = admin() else { return };
        let queues = self.queues.iter().map(|queue| Request::QueueDelete {
            queue: queue.clone(),
        });
        let exchanges = self
            .exchanges
            .iter()
            .map(|exchange| Request::ExchangeDelete {
                exchange: exchange.clone(),
            });
        for request in queues.chain(exchanges) {
            let _ = admin.delete(&request);
        }
    }
}

fn config(extra: &[(&str, &str)]) -> RabbitConfig {
    let mut pairs = vec![("connectionString", AMQP)];
    pairs.extend_from_slice(extra);
    RabbitConfig::from_metadata(&Metadata::from_pairs(&pairs)).expect("valid metadata")
}

/// A connection of the tests' own, to inspect and clean up.
fn admin() -> io::Result<Client<TcpStream>> {
    open(&config(&[]))
}

fn broker(extra: &[(&str, &str)]) -> RabbitBroker {
    RabbitBroker {
        config: config(extra),
        conn: Lazy::default(),
    }
}

fn pull(broker: &mut RabbitBroker, topic: &Topic, group: &str, max: u32) -> Vec<IncomingMessage> {
    pull_waiting(broker, topic, group, max, Duration::ZERO)
}

fn pull_waiting(
    broker: &mut RabbitBroker,
    topic: &Topic,
    group: &str,
    max: u32,
    wait: Duration,
) -> Vec<IncomingMessage> {
    broker
        .pull(subscription(&topic.name, group), max, wait)
        .expect("pull")
}

/// Pulls (waiting up to ten seconds each time) until `count` messages came
/// or a pull came back empty.
fn pull_until(
    broker: &mut RabbitBroker,
    topic: &Topic,
    group: &str,
    count: usize,
) -> Vec<IncomingMessage> {
    let mut got = Vec::new();
    while got.len() < count {
        let more = pull_waiting(broker, topic, group, 10, Duration::from_secs(10));
        if more.is_empty() {
            break;
        }
        got.extend(more);
    }
    got
}

fn publish(broker: &mut RabbitBroker, topic: &Topic, data: &[&str]) {
    broker
        .publish(
            topic.name.clone(),
            data.iter().map(|d| message(d)).collect(),
        )
        .expect("publish");
}

fn sorted(messages: &[IncomingMessage]) -> BTreeSet<String> {
    payloads(messages).into_iter().collect()
}

fn client(broker: &mut RabbitBroker) -> &mut Client<TcpStream> {
    broker.conn.get_mut().expect("connected")
}

/// Drops the broker's connection the way a crash would.
fn cut(broker: &mut RabbitBroker) {
    let stream = client(broker).session.transport.stream_mut();
    stream.shutdown(Shutdown::Both).expect("shutdown");
}

#[test]
fn published_messages_are_pulled_and_an_ack_settles_for_good() {
    let mut topic = Topic::new();
    topic.queue("app");
    let (mut a, mut b) = (broker(&[]), broker(&[]));
    assert!(pull(&mut a, &topic, "app", 10).is_empty());
    publish(&mut a, &topic, &["one", "two"]);

    let got = pull(&mut a, &topic, "app", 10);
    assert_eq!(payloads(&got), ["one", "two"]);
    assert_eq!(
        (
            got[0].attempt,
            got[0].content_type.as_str(),
            got[0].topic.as_str()
        ),
        (1, "text/plain", topic.name.as_str())
    );
    a.ack(vec![got[0].id.clone()]).expect("ack");
    a.ack(vec![got[0].id.clone(), "not-an-id".into()])
        .expect("a repeated ack and a foreign id are ignored");
    client(&mut a).close().expect("close");

    // What was not acked comes back when its connection closes; what was
    // acked does not.
    let again = pull_until(&mut b, &topic, "app", 1);
    assert_eq!(payloads(&again), ["two"]);
    assert_eq!(again[0].attempt, 2);
    b.ack(ids(&again)).expect("ack");
    assert!(pull(&mut b, &topic, "app", 10).is_empty());
}

#[test]
fn groups_each_get_every_message_and_consumers_in_a_group_share_them() {
    let mut topic = Topic::new();
    topic.queue("app-a");
    topic.queue("app-b");
    let (mut a1, mut a2, mut b) = (broker(&[]), broker(&[]), broker(&[]));
    for (broker, group) in [(&mut a1, "app-a"), (&mut b, "app-b")] {
        assert!(pull(broker, &topic, group, 1).is_empty());
    }
    publish(&mut a1, &topic, &["x", "y", "z"]);

    assert_eq!(payloads(&pull(&mut a1, &topic, "app-a", 2)), ["x", "y"]);
    assert_eq!(payloads(&pull(&mut a2, &topic, "app-a", 10)), ["z"]);
    assert_eq!(
        payloads(&pull(&mut b, &topic, "app-b", 10)),
        ["x", "y", "z"]
    );
    assert!(pull(&mut a1, &topic, "app-a", 10).is_empty());

    // consumerID names the queue instead of the group, as in Dapr.
    let mut fixed = broker(&[("consumerID", "app-b")]);
    publish(&mut a1, &topic, &["w"]);
    assert_eq!(payloads(&pull(&mut fixed, &topic, "ignored", 10)), ["w"]);
}

#[test]
fn a_nack_redelivers_after_its_delay_with_the_attempt_counted() {
    let mut topic = Topic::new();
    topic.queue("app");
    topic.retry("app", 1000);
    let hour = topic.retry("app", 3_600_000);
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    publish(&mut broker, &topic, &["now", "soon", "later"]);
    let got = pull(&mut broker, &topic, "app", 10);
    assert_eq!(payloads(&got), ["now", "soon", "later"]);
    broker
        .nack(vec![got[0].id.clone()], Duration::ZERO)
        .expect("nack");
    broker
        .nack(vec![got[1].id.clone()], Duration::from_secs(1))
        .expect("nack");
    broker
        .nack(vec![got[2].id.clone()], Duration::from_secs(3600))
        .expect("nack");

    // Without a delay the copy is back at once, its attempt counted.
    let now = pull(&mut broker, &topic, "app", 10);
    assert!(payloads(&now).contains(&"now".to_string()));
    assert!(!payloads(&now).contains(&"later".to_string()));
    let first = now.iter().find(|m| m.data == b"now").expect("now");
    assert_eq!(first.attempt, 2);
    broker
        .nack(vec![first.id.clone()], Duration::ZERO)
        .expect("nack");

    let mut seen = now;
    seen.extend(pull_until(&mut broker, &topic, "app", 3 - seen.len()));
    let attempts: Vec<(String, u32)> = seen
        .iter()
        .map(|m| (String::from_utf8_lossy(&m.data).into_owned(), m.attempt))
        .collect();
    assert!(attempts.contains(&("now".into(), 3)), "{attempts:?}");
    assert!(attempts.contains(&("soon".into(), 2)), "{attempts:?}");
    assert!(
        !attempts.iter().any(|(data, _)| data == "later"),
        "{attempts:?}"
    );
    broker.ack(ids(&seen)).expect("ack");

    // The hour-long wait sits in its own retry queue.
    let mut admin = admin().expect("admin");
    assert_eq!(admin.count(&hour).expect("io").ok(), Some(1));
}

#[test]
fn unsettled_messages_come_back_when_the_connection_drops() {
    let mut topic = Topic::new();
    topic.queue("classic");
    topic.queue("quorum");
    let quorum = |name: &Topic| {
        let mut sub = subscription(&name.name, "quorum");
        sub.metadata = vec![("queueType".into(), "quorum".into())];
        sub
    };
    let mut a = broker(&[]);
    assert!(pull(&mut a, &topic, "classic", 1).is_empty());
    assert!(
        a.pull(quorum(&topic), 1, Duration::ZERO)
            .expect("pull")
            .is_empty()
    );
    publish(&mut a, &topic, &["m"]);

    // Two crashes: a classic queue only says "redelivered", a quorum queue
    // counts every return.
    let mut last = Vec::new();
    for _ in 0..3 {
        let classic = pull_until(&mut a, &topic, "classic", 1);
        let mut counted = Vec::new();
        while counted.is_empty() {
            counted = a
                .pull(quorum(&topic), 1, Duration::from_secs(10))
                .expect("pull");
        }
        assert_eq!(payloads(&classic), ["m"]);
        assert_eq!(payloads(&counted), ["m"]);
        last = vec![classic[0].attempt, counted[0].attempt];
        cut(&mut a);
    }
    assert_eq!(last, [2, 3]);
}

#[test]
fn another_instance_settles_through_the_owner() {
    let mut topic = Topic::new();
    topic.queue("app");
    let (mut owner, mut other, mut third) = (broker(&[]), broker(&[]), broker(&[]));
    assert!(pull(&mut owner, &topic, "app", 1).is_empty());
    publish(&mut owner, &topic, &["x", "y", "z"]);
    let got = pull(&mut owner, &topic, "app", 10);
    assert_eq!(payloads(&got), ["x", "y", "z"]);

    other.ack(vec![got[0].id.clone()]).expect("relayed ack");
    other
        .nack(vec![got[1].id.clone()], Duration::ZERO)
        .expect("relayed nack");
    // The owner applies the relays at its next call (or while it waits).
    let back = pull_until(&mut owner, &topic, "app", 1);
    assert_eq!(payloads(&back), ["y"]);
    assert_eq!(back[0].attempt, 2);

    // x was acked; y (pulled again) and z were never settled.
    client(&mut owner).close().expect("close");
    let rest = pull_until(&mut third, &topic, "app", 2);
    assert_eq!(sorted(&rest), BTreeSet::from(["y".into(), "z".into()]));
    third.ack(ids(&rest)).expect("ack");
    assert!(pull(&mut third, &topic, "app", 10).is_empty());
}

#[test]
fn a_waiting_pull_returns_what_arrives_while_others_are_held() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut consumer = broker(&[("heartBeat", "1s")]);
    assert!(pull(&mut consumer, &topic, "app", 1).is_empty());
    publish(&mut consumer, &topic, &["held"]);
    assert_eq!(payloads(&pull(&mut consumer, &topic, "app", 1)), ["held"]);
    let connection = client(&mut consumer).relay_queue.clone();

    let name = topic.name.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        broker(&[]).publish(name, vec![message("late")])
    });
    // One message allowed, one already held: the wait still gets the next.
    let got = pull_waiting(&mut consumer, &topic, "app", 1, Duration::from_secs(20));
    publisher.join().expect("publisher").expect("publish");
    assert_eq!(payloads(&got), ["late"]);

    // A wait longer than two heartbeat intervals keeps the connection:
    // heartbeats went out meanwhile.
    let none = pull_waiting(&mut consumer, &topic, "app", 1, Duration::from_secs(3));
    assert!(none.is_empty());
    assert_eq!(client(&mut consumer).relay_queue, connection);
}

#[test]
fn batches_report_each_failed_entry() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let mut bad = message("bad");
    bad.content_type = "x".repeat(300);
    let failed = broker
        .publish(
            topic.name.clone(),
            vec![message("1"), bad, message("2"), message("3")],
        )
        .expect_err("one entry is invalid")
        .failed;
    let indexes: Vec<u32> = failed.iter().map(|f| f.index).collect();
    assert_eq!(indexes, [1]);
    assert!(matches!(failed[0].error, Error::InvalidArgument(_)));
    assert_eq!(
        payloads(&pull(&mut broker, &topic, "app", 10)),
        ["1", "2", "3"]
    );
}

#[test]
fn content_types_and_message_attributes_round_trip() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let mut event = message("{}");
    event.content_type = "application/cloudevents+json".into();
    event.metadata = vec![
        ("messageId".into(), "m-1".into()),
        ("correlationId".into(), "c-1".into()),
        ("type".into(), "order".into()),
    ];
    let mut bare = message("raw");
    bare.content_type = String::new();
    broker
        .publish(topic.name.clone(), vec![event, bare])
        .expect("publish");
    let got = pull(&mut broker, &topic, "app", 10);
    assert_eq!(got[0].content_type, "application/cloudevents+json");
    assert_eq!(got[1].content_type, "");
    for (name, value) in [
        ("messageid", "m-1"),
        ("correlationid", "c-1"),
        ("type", "order"),
    ] {
        assert!(
            got[0].metadata.contains(&(name.into(), value.into())),
            "{:?}",
            got[0].metadata
        );
    }
}

#[test]
fn dead_lettering_sets_up_its_exchange_and_catches_expired_messages() {
    let mut topic = Topic::new();
    let (dlx, dlq) = topic.dead_letter("app");
    let mut broker = broker(&[("enableDeadLetter", "true")]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let mut expiring = message("expiring");
    expiring.ttl_seconds = Some(1);
    broker
        .publish(topic.name.clone(), vec![expiring])
        .expect("publish");

    let mut admin = admin().expect("admin");
    let passive_dlx = Request::ExchangeDeclare {
        exchange: dlx,
        kind: "fanout".into(),
        passive: true,
        durable: true,
        auto_delete: true,
    };
    assert!(
        admin
            .session
            .call(session::TOPOLOGY, &passive_dlx)
            .expect("io")
            .is_ok(),
        "the dead-letter exchange exists"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut dead = Vec::new();
    while dead.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        dead = admin.get(&dlq, 1).expect("get");
    }
    assert_eq!(dead.len(), 1, "the expired message was dead-lettered");
    assert_eq!(dead[0].body, b"expiring");
    let headers = dead[0].properties.headers.clone().unwrap_or_default();
    let Some(FieldValue::Array(deaths)) = headers.get("x-death") else {
        panic!("no x-death header: {headers:?}");
    };
    let Some(FieldValue::Table(death)) = deaths.first() else {
        panic!("x-death is empty");
    };
    let text = |name: &str| death.get(name).and_then(FieldValue::as_text);
    assert_eq!(text("reason").as_deref(), Some("expired"));
    assert_eq!(text("original-expiration").as_deref(), Some("1000"));
    assert!(pull(&mut broker, &topic, "app", 10).is_empty());
}

#[test]
fn a_topic_exchange_routes_by_key() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[("exchangeKind", "topic")]);
    let mut sub = subscription(&topic.name, "app");
    sub.metadata = vec![("routingKey".into(), "eu.*".into())];
    assert!(
        broker
            .pull(sub.clone(), 1, Duration::ZERO)
            .expect("pull")
            .is_empty()
    );
    let keyed = |data: &str, key: &str| {
        let mut m = message(data);
        m.metadata = vec![("routingKey".into(), key.into())];
        m
    };
    broker
        .publish(
            topic.name.clone(),
            vec![keyed("eu", "eu.orders"), keyed("us", "us.orders")],
        )
        .expect("publish");
    let got = broker.pull(sub, 10, Duration::ZERO).expect("pull");
    assert_eq!(payloads(&got), ["eu"]);
}

#[test]
fn a_refused_declaration_keeps_the_connection_and_says_why() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let connection = client(&mut broker).relay_queue.clone();

    // The topic's exchange is a fanout one: declaring it as a topic
    // exchange is refused, with the server's words.
    let mut topical = self::broker(&[("exchangeKind", "topic")]);
    let failed = topical
        .publish(topic.name.clone(), vec![message("m")])
        .expect_err("inequivalent exchange")
        .failed;
    assert!(
        matches!(&failed[0].error, Error::Internal(m) if m.contains("inequivalent") && m.contains("406")),
        "{:?}",
        failed[0].error
    );

    // A queue declared again with other arguments: refused, and only the
    // topology channel closes; the connection and what it holds stay.
    publish(&mut broker, &topic, &["held"]);
    let held = pull(&mut broker, &topic, "app", 1);
    let mut limited = subscription(&topic.name, "app");
    limited.metadata = vec![("maxLen".into(), "5".into())];
    let err = broker
        .pull(limited, 1, Duration::ZERO)
        .expect_err("inequivalent queue");
    assert!(
        matches!(&err, Error::Internal(m) if m.contains("x-max-length")),
        "{err:?}"
    );
    publish(&mut broker, &topic, &["after"]);
    assert_eq!(payloads(&pull(&mut broker, &topic, "app", 1)), ["after"]);
    broker
        .ack(ids(&held))
        .expect("the held message is still ours to ack");
    assert_eq!(client(&mut broker).relay_queue, connection);
}

#[test]
fn a_broken_connection_is_replaced() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    cut(&mut broker);
    publish(&mut broker, &topic, &["m"]);
    assert_eq!(payloads(&pull(&mut broker, &topic, "app", 1)), ["m"]);
}

#[test]
fn bad_logins_and_dead_servers_are_unavailable_with_the_reason() {
    let cases = [
        ("amqp://guest:wrong@127.0.0.1:5672/", "ACCESS_REFUSED"),
        (
            "amqp://guest:guest@127.0.0.1:5672/no-such-vhost",
            "no-such-vhost",
        ),
        ("amqp://127.0.0.1:1", "127.0.0.1:1"),
    ];
    for (url, reason) in cases {
        let mut broker = RabbitBroker::init(Metadata::from_pairs(&[("connectionString", url)]))
            .expect("init is lazy");
        let err = broker
            .pull(subscription("t", "g"), 1, Duration::ZERO)
            .expect_err("cannot connect");
        assert!(
            matches!(&err, Error::Unavailable(m) if m.contains(reason)),
            "{url}: {err:?}"
        );
        let failed = broker
            .publish("t".into(), vec![message("a"), message("b")])
            .expect_err("cannot connect")
            .failed;
        assert_eq!(failed.len(), 2);
    }
}

#[test]
fn headers_of_other_publishers_become_metadata() {
    let mut topic = Topic::new();
    topic.queue("app");
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let mut headers = crate::wire::FieldTable::default();
    headers.set("tenant", FieldValue::text("acme"));
    headers.set("retries", FieldValue::I32(2));
    headers.set(messages::ATTEMPT_HEADER, FieldValue::I64(4));
    let publication = session::Publication {
        exchange: topic.name.clone(),
        routing_key: String::new(),
        properties: content::Properties {
            headers: Some(headers),
            ..Default::default()
        },
        body: b"from elsewhere".to_vec(),
    };
    let answers = client(&mut broker).publish(&[publication]).expect("io");
    assert!(answers.iter().all(Result::is_ok));
    let got = pull(&mut broker, &topic, "app", 1);
    assert_eq!(got[0].attempt, 4);
    assert!(got[0].metadata.contains(&("tenant".into(), "acme".into())));
    assert!(got[0].metadata.contains(&("retries".into(), "2".into())));
    assert!(
        !got[0]
            .metadata
            .iter()
            .any(|(k, _)| k.starts_with("x-outrig"))
    );
}
