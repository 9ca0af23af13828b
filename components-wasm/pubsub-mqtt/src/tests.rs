//! The broker's contract, exercised natively against the real Mosquitto at
//! 127.0.0.1:1883 (as on the project's machines). Every test uses topics of
//! its own and deletes the sessions and holder records it made.

use super::*;
use crate::wire::{Connect, Packet};
use outrig_sdk::pubsub::testing::{ids, message, payloads, subscription};
use std::net::Shutdown;
use std::sync::atomic::{AtomicUsize, Ordering};

const URL: &str = "tcp://127.0.0.1:1883";
/// The most a test waits for messages it expects: a bound, not a timing.
const PATIENCE: Duration = Duration::from_secs(20);

/// A topic no other test (or run) uses, and the consumer sessions made on
/// it, wiped on drop.
struct Topic {
    name: String,
    /// `(consumerID, group)` of every session a test pulled through.
    sessions: Vec<(Option<&'static str>, &'static str)>,
}

impl Topic {
    fn new(sessions: &[(Option<&'static str>, &'static str)]) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        Topic {
            name: format!(
                "outrig-test-mqtt-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            sessions: sessions.to_vec(),
        }
    }

    fn client_id(&self, consumer_id: Option<&str>, group: &str) -> String {
        names::consumer_client_id(consumer_id, group, &self.name)
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        for (consumer_id, group) in &self.sessions {
            wipe(&self.client_id(*consumer_id, group));
        }
    }
}

/// Deletes a session from the broker (a clean-session connection under its
/// client id) and its holder record.
fn wipe(client_id: &str) {
    let Ok(config) = MqttConfig::from_metadata(&Metadata::from_pairs(&[("url", URL)])) else {
        return;
    };
    let Ok(stream) = net::connect(&config.address, config.connect_timeout, config.io_timeout)
    else {
        return;
    };
    let connect = Connect {
        client_id: client_id.to_string(),
        clean_session: true,
        keep_alive_secs: 0,
        will: None,
        username: None,
        password: None,
    };
    if let Ok((mut conn, _)) = Connection::open(stream, &connect, config.io_timeout) {
        let clear = Packet::Publish(Publish {
            topic: names::holder_topic(&config.control_prefix, client_id),
            qos: 0,
            packet_id: None,
            dup: false,
            retain: true,
            payload: Vec::new(),
        });
        let _ = conn.send_all(&[clear, Packet::Disconnect]);
    }
}

fn broker(extra: &[(&str, &str)]) -> MqttBroker {
    let mut pairs = vec![("url", URL)];
    pairs.extend_from_slice(extra);
    MqttBroker::init(Metadata::from_pairs(&pairs)).expect("init")
}

fn pull(
    broker: &mut MqttBroker,
    topic: &Topic,
    group: &str,
    wait: Duration,
) -> Vec<IncomingMessage> {
    broker
        .pull(subscription(&topic.name, group), 10, wait)
        .expect("pull")
}

/// Pulls until `count` messages have come (or [`PATIENCE`] is spent).
fn pull_n(
    broker: &mut MqttBroker,
    topic: &Topic,
    group: &str,
    count: usize,
) -> Vec<IncomingMessage> {
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        got.extend(pull(broker, topic, group, Duration::from_secs(1)));
    }
    got
}

/// Waits (within [`PATIENCE`]) until no instance holds `broker`'s session
/// for `client_id`: its holder's will has been published.
fn wait_until_free(broker: &mut MqttBroker, client_id: &str) {
    let deadline = Instant::now() + PATIENCE;
    let topic = names::holder_topic(&broker.config.control_prefix, client_id);
    while broker.claim(&topic).expect("claim") == Claim::Taken && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Breaks the connection of `broker`'s session `client_id` under it, as a
/// network failure would.
fn break_connection(broker: &mut MqttBroker, client_id: &str) {
    let conn = broker
        .consumers
        .get_mut(client_id)
        .and_then(Consumer::conn_mut)
        .expect("connected");
    conn.stream_mut()
        .shutdown(Shutdown::Both)
        .expect("shutdown");
}

/// Checks that the broker holds nothing unsettled for group `app`: the next
/// instance to hold the session is sent only a message published now.
fn assert_only_new_messages_reach_the_next_holder(topic: &Topic) {
    let mut next = broker(&[]);
    publish(&mut next, topic, &["end"]);
    assert_eq!(payloads(&pull_n(&mut next, topic, "app", 1)), ["end"]);
}

fn publish(broker: &mut MqttBroker, topic: &Topic, data: &[&str]) {
    broker
        .publish(
            topic.name.clone(),
            data.iter().map(|d| message(d)).collect(),
        )
        .expect("publish");
}

#[test]
fn published_messages_are_pulled_and_acked_for_good() {
    let topic = Topic::new(&[(None, "app")]);
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut consumer, &topic, &["x", "y"]);
    let got = pull_n(&mut consumer, &topic, "app", 2);
    assert_eq!(payloads(&got), ["x", "y"]);
    assert_eq!((got[0].attempt, got[0].content_type.as_str()), (1, ""));
    assert_eq!(got[0].topic, topic.name);
    assert_eq!(
        got[0].metadata,
        [("retained".to_string(), "false".to_string())]
    );
    consumer.ack(ids(&got)).expect("ack");
    consumer.ack(ids(&got)).expect("a retried ack is harmless");

    // The next instance to hold the session gets what was published since,
    // and nothing acked comes back.
    drop(consumer);
    assert_only_new_messages_reach_the_next_holder(&topic);
}

#[test]
fn a_pull_for_nothing_subscribes_so_what_is_published_next_is_kept() {
    let topic = Topic::new(&[(None, "app")]);
    let mut consumer = broker(&[]);
    let none = consumer
        .pull(subscription(&topic.name, "app"), 0, Duration::from_secs(5))
        .expect("pull for nothing");
    assert!(none.is_empty());
    // Published by another client before this one pulls for real: MQTT
    // keeps it only because the session subscribed already.
    publish(&mut broker(&[]), &topic, &["early"]);
    assert_eq!(
        payloads(&pull_n(&mut consumer, &topic, "app", 1)),
        ["early"]
    );
}

#[test]
fn groups_each_get_every_message_and_replicas_share_them() {
    let topic = Topic::new(&[
        (Some("r1"), "app-a"),
        (Some("r2"), "app-a"),
        (None, "app-b"),
    ]);
    let (mut r1, mut r2) = (
        broker(&[("consumerID", "r1")]),
        broker(&[("consumerID", "r2")]),
    );
    let mut other = broker(&[]);
    for (broker, group) in [
        (&mut r1, "app-a"),
        (&mut r2, "app-a"),
        (&mut other, "app-b"),
    ] {
        assert!(pull(broker, &topic, group, Duration::ZERO).is_empty());
    }
    let all = ["1", "2", "3", "4"];
    publish(&mut other, &topic, &all);

    let (mut got1, mut got2) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + PATIENCE;
    while got1.len() + got2.len() < all.len() && Instant::now() < deadline {
        got1.extend(pull(&mut r1, &topic, "app-a", Duration::from_millis(300)));
        got2.extend(pull(&mut r2, &topic, "app-a", Duration::from_millis(300)));
    }
    assert!(!got1.is_empty() && !got2.is_empty(), "{got1:?} {got2:?}");
    let mut shared = [payloads(&got1), payloads(&got2)].concat();
    shared.sort();
    assert_eq!(shared, all);
    assert_eq!(payloads(&pull_n(&mut other, &topic, "app-b", 4)), all);
}

#[test]
fn one_instance_holds_a_session_and_the_next_resumes_it_with_what_was_kept() {
    let topic = Topic::new(&[(None, "app")]);
    let client_id = topic.client_id(None, "app");
    let mut first = broker(&[]);
    assert!(pull(&mut first, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut first, &topic, &["a", "b"]);
    assert_eq!(payloads(&pull_n(&mut first, &topic, "app", 2)), ["a", "b"]);

    // Another instance keeps off a session a live one holds.
    let mut second = broker(&[]);
    assert!(pull(&mut second, &topic, "app", Duration::ZERO).is_empty());
    assert!(!second.consumers[&client_id].is_connected());

    // Its holder gone (as a discarded instance goes: the socket closes, no
    // DISCONNECT), the session is free; what is published now is kept.
    drop(first);
    wait_until_free(&mut second, &client_id);
    publish(&mut second, &topic, &["c"]);

    let got = pull_n(&mut second, &topic, "app", 3);
    assert_eq!(payloads(&got), ["a", "b", "c"]);
    let attempts: Vec<u32> = got.iter().map(|m| m.attempt).collect();
    assert_eq!(attempts, [2, 2, 1], "a and b were handed out before");
    second.ack(ids(&got)).expect("ack");
}

#[test]
fn a_pull_waits_for_the_holder_to_go_and_takes_its_session_over() {
    let topic = Topic::new(&[(None, "app")]);
    let mut first = broker(&[]);
    assert!(pull(&mut first, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut first, &topic, &["a"]);
    assert_eq!(payloads(&pull_n(&mut first, &topic, "app", 1)), ["a"]);

    // The holder goes away while the other instance's pull is waiting.
    let leaving = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(first);
    });
    let mut second = broker(&[]);
    let got = pull(&mut second, &topic, "app", PATIENCE);
    leaving.join().expect("the holder went");
    assert_eq!((payloads(&got), got[0].attempt), (vec!["a".to_string()], 2));
    second.ack(ids(&got)).expect("ack");
}

#[test]
fn nacked_messages_come_back_after_the_delay_with_their_attempt() {
    let topic = Topic::new(&[(None, "app")]);
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut consumer, &topic, &["ok", "retry"]);
    let first = pull_n(&mut consumer, &topic, "app", 2);
    assert_eq!(payloads(&first), ["ok", "retry"]);
    consumer.ack(vec![first[0].id.clone()]).expect("ack");
    consumer
        .nack(vec![first[1].id.clone()], Duration::from_millis(200))
        .expect("nack");
    let again = pull_n(&mut consumer, &topic, "app", 1);
    assert_eq!(payloads(&again), ["retry"]);
    assert_eq!(again[0].attempt, 2);
    // An ack of the earlier hand-out settles nothing now.
    consumer.ack(vec![first[1].id.clone()]).expect("stale ack");

    consumer
        .nack(ids(&again), Duration::from_secs(600))
        .expect("nack");
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    let client_id = topic.client_id(None, "app");
    assert_eq!(
        consumer.consumers[&client_id].unsettled(),
        1,
        "held back, not lost"
    );
}

#[test]
fn settlements_reaching_another_instance_are_carried_to_the_holder() {
    let topic = Topic::new(&[(None, "app")]);
    let client_id = topic.client_id(None, "app");
    let mut holder = broker(&[]);
    assert!(pull(&mut holder, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut holder, &topic, &["x", "y"]);
    let got = pull_n(&mut holder, &topic, "app", 2);

    let mut other = broker(&[]);
    other.ack(vec![got[0].id.clone()]).expect("ack elsewhere");
    other
        .nack(vec![got[1].id.clone()], Duration::ZERO)
        .expect("nack elsewhere");
    let again = pull_n(&mut holder, &topic, "app", 1);
    assert_eq!(
        (payloads(&again), again[0].attempt),
        (vec!["y".to_string()], 2)
    );
    other.ack(ids(&again)).expect("ack elsewhere");
    // The holder reads that ack on its next pull.
    assert!(pull(&mut holder, &topic, "app", Duration::from_millis(300)).is_empty());
    assert_eq!(holder.consumers[&client_id].unsettled(), 0);

    // The broker got every PUBACK: the next holder finds only what is new.
    drop((holder, other));
    assert_only_new_messages_reach_the_next_holder(&topic);
}

/// Acks carried over the settle topic must reach a holder whose broker
/// in-flight window (Mosquitto's `max_inflight_messages`, 20 by default) is
/// full of the very messages they settle: queued behind that window, as a
/// QoS 1 settle message is, they would never arrive, and the session would
/// stall for good.
#[test]
fn settlements_reach_a_holder_whose_in_flight_window_is_full() {
    let topic = Topic::new(&[(None, "app")]);
    let mut holder = broker(&[]);
    assert!(pull(&mut holder, &topic, "app", Duration::ZERO).is_empty());
    let data: Vec<String> = (0..60).map(|n| n.to_string()).collect();
    let data: Vec<&str> = data.iter().map(String::as_str).collect();
    publish(&mut holder, &topic, &data);

    // Every message the holder hands out is acked by another instance.
    let mut other = broker(&[]);
    let mut seen = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    while seen.len() < data.len() && Instant::now() < deadline {
        let got = pull(&mut holder, &topic, "app", Duration::from_millis(300));
        if !got.is_empty() {
            other.ack(ids(&got)).expect("ack elsewhere");
        }
        seen.extend(payloads(&got));
    }
    assert_eq!(seen.len(), data.len(), "the session stalled after {seen:?}");
}

#[test]
fn a_broken_connection_resumes_its_session_without_handing_out_twice() {
    let topic = Topic::new(&[(None, "app")]);
    let client_id = topic.client_id(None, "app");
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut consumer, &topic, &["x"]);
    let x = pull_n(&mut consumer, &topic, "app", 1);
    break_connection(&mut consumer, &client_id);

    publish(&mut consumer, &topic, &["y"]);
    // The broker resends x on the new connection; it is already out.
    let y = pull_n(&mut consumer, &topic, "app", 1);
    assert_eq!((payloads(&y), y[0].attempt), (vec!["y".to_string()], 1));
    consumer.ack(ids(&x)).expect("ack across the reconnect");
    consumer.ack(ids(&y)).expect("ack");

    drop(consumer);
    assert_only_new_messages_reach_the_next_holder(&topic);
}

#[test]
fn a_session_resumed_after_another_holder_forgets_what_that_holder_settled() {
    let topic = Topic::new(&[(None, "app")]);
    let client_id = topic.client_id(None, "app");
    let mut first = broker(&[]);
    assert!(pull(&mut first, &topic, "app", Duration::ZERO).is_empty());
    publish(&mut first, &topic, &["x"]);
    let x = pull_n(&mut first, &topic, "app", 1);
    break_connection(&mut first, &client_id);

    // While the first is away, another instance holds the session, gets x
    // again and settles it.
    let mut second = broker(&[]);
    let resent = pull_n(&mut second, &topic, "app", 1);
    assert_eq!(
        (payloads(&resent), resent[0].attempt),
        (vec!["x".to_string()], 2)
    );
    second.ack(ids(&resent)).expect("ack");
    drop(second);

    wait_until_free(&mut first, &client_id);
    publish(&mut first, &topic, &["y"]);
    assert_eq!(payloads(&pull_n(&mut first, &topic, "app", 1)), ["y"]);
    assert_eq!(
        first.consumers[&client_id].unsettled(),
        1,
        "x is not held any more"
    );
    first.ack(ids(&x)).expect("a stale ack does nothing");
}

#[test]
fn a_blocking_pull_returns_what_arrives() {
    let topic = Topic::new(&[(None, "app")]);
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    let name = topic.name.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        broker(&[]).publish(name, vec![message("late")])
    });
    let got = pull(&mut consumer, &topic, "app", PATIENCE);
    publisher.join().expect("publisher").expect("publish");
    assert_eq!(payloads(&got), ["late"]);
    consumer.ack(ids(&got)).expect("ack");
}

#[test]
fn a_batch_reports_each_failed_entry_and_publishes_the_rest() {
    let topic = Topic::new(&[(None, "app")]);
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", Duration::ZERO).is_empty());
    let mut bad = message("bad");
    bad.metadata = vec![("retain".into(), "maybe".into())];
    let failed = consumer
        .publish(topic.name.clone(), vec![message("a"), bad, message("c")])
        .expect_err("one bad entry")
        .failed;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].index, 1);
    assert!(matches!(failed[0].error, Error::InvalidArgument(_)));
    let got = pull_n(&mut consumer, &topic, "app", 2);
    assert_eq!(payloads(&got), ["a", "c"]);
    consumer.ack(ids(&got)).expect("ack");

    for bad_topic in ["a/+", "a/#"] {
        let failed = consumer
            .publish(bad_topic.into(), vec![message("1"), message("2")])
            .expect_err("a wildcard topic")
            .failed;
        assert_eq!(failed.len(), 2, "{bad_topic}");
    }
}

#[test]
fn bad_metadata_and_an_unreachable_broker_are_errors() {
    assert!(matches!(
        MqttBroker::init(Metadata::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        MqttBroker::init(Metadata::from_pairs(&[("url", URL), ("qos", "5")])),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        broker(&[]).pull(subscription("a/#/b", "g"), 1, Duration::ZERO),
        Err(Error::InvalidArgument(_))
    ));

    let mut down = MqttBroker::init(Metadata::from_pairs(&[("url", "tcp://127.0.0.1:1")]))
        .expect("init is lazy");
    let failed = down
        .publish("t".into(), vec![message("a"), message("b")])
        .expect_err("no broker")
        .failed;
    assert_eq!(failed.len(), 2);
    assert!(matches!(failed[1].error, Error::Unavailable(_)));
    assert!(matches!(
        down.pull(subscription("t", "g"), 1, Duration::ZERO),
        Err(Error::Unavailable(_))
    ));
    // Ids this component did not make are ignored.
    down.ack(vec!["junk".into()])
        .expect("foreign ids are ignored");
}
