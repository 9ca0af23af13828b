//! The broker's contract, through the `PubSub` trait and on a topic with a
//! clock the test drives.

use super::*;
use outrig_sdk::pubsub::testing::{ids, message, payloads, subscription};

fn broker() -> InMemory {
    InMemory::init(Metadata::default()).expect("init")
}

fn pull(broker: &mut InMemory, group: &str, max: u32) -> Vec<IncomingMessage> {
    broker
        .pull(subscription("orders", group), max, Duration::ZERO)
        .expect("pull")
}

#[test]
fn each_group_gets_every_message_and_members_share_them() {
    let mut broker = broker();
    // Messages published before any group existed go to the first group.
    broker
        .publish("orders".into(), vec![message("early")])
        .expect("publish");
    assert_eq!(payloads(&pull(&mut broker, "app-1", 10)), ["early"]);
    // A later group starts at its first pull.
    assert!(pull(&mut broker, "app-2", 10).is_empty());
    let batch = ["a", "b", "c"].map(message).to_vec();
    broker.publish("orders".into(), batch).expect("publish");

    let first = pull(&mut broker, "app-1", 2);
    assert_eq!(payloads(&first), ["a", "b"]);
    assert_eq!(first[0].content_type, "text/plain");
    assert_eq!(first[0].attempt, 1);
    // Another member of the same group gets only what is left.
    assert_eq!(payloads(&pull(&mut broker, "app-1", 10)), ["c"]);
    // Another group gets everything.
    assert_eq!(payloads(&pull(&mut broker, "app-2", 10)), ["a", "b", "c"]);
    assert!(pull(&mut broker, "app-1", 10).is_empty());
}

#[test]
fn nacked_messages_come_back_with_a_higher_attempt_and_acked_ones_never() {
    let mut broker = broker();
    broker
        .publish("orders".into(), vec![message("a"), message("b")])
        .expect("publish");
    let first = pull(&mut broker, "app", 10);
    broker.ack(vec![first[0].id.clone()]).expect("ack");
    broker
        .nack(vec![first[1].id.clone()], Duration::ZERO)
        .expect("nack");

    let again = pull(&mut broker, "app", 10);
    assert_eq!(payloads(&again), ["b"]);
    assert_eq!(again[0].attempt, 2);
    broker.ack(ids(&again)).expect("ack");
    assert!(pull(&mut broker, "app", 10).is_empty());
}

#[test]
fn a_nack_delay_holds_the_message_back() {
    let mut broker = broker();
    broker
        .publish("orders".into(), vec![message("a")])
        .expect("publish");
    let first = pull(&mut broker, "app", 10);
    broker
        .nack(ids(&first), Duration::from_secs(3600))
        .expect("nack");
    assert!(pull(&mut broker, "app", 10).is_empty());
}

#[test]
fn foreign_ids_are_ignored() {
    let mut broker = broker();
    let foreign = vec!["nonsense".into(), pack_id(&["orders", "app", "x"])];
    assert!(broker.ack(foreign.clone()).is_ok());
    assert!(broker.nack(foreign, Duration::ZERO).is_ok());
}

fn stored(data: &str, expires_at: Option<Instant>) -> Message {
    Message {
        data: data.as_bytes().to_vec(),
        content_type: String::new(),
        expires_at,
    }
}

#[test]
fn held_messages_return_after_the_processing_timeout() {
    let timeout = Duration::from_secs(60);
    let start = Instant::now();
    let mut topic = Topic::new(10);
    topic.publish(stored("a", None));
    assert_eq!(topic.pull("g", 10, timeout, start).len(), 1);
    assert!(topic.pull("g", 10, timeout, start + timeout / 2).is_empty());
    let again = topic.pull("g", 10, timeout, start + timeout);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempt, 2);
}

#[test]
fn expired_messages_are_not_delivered() {
    let timeout = Duration::from_secs(60);
    let start = Instant::now();
    let mut topic = Topic::new(10);
    topic.publish(stored("old", Some(start + Duration::from_secs(1))));
    topic.publish(stored("new", None));
    let got = topic.pull("g", 10, timeout, start + Duration::from_secs(2));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message.data, b"new");
}

#[test]
fn retention_is_bounded_and_read_messages_are_trimmed() {
    let timeout = Duration::from_secs(60);
    let now = Instant::now();
    let mut topic = Topic::new(2);
    assert_eq!(topic.publish(stored("a", None)), 0);
    assert_eq!(topic.publish(stored("b", None)), 0);
    assert_eq!(topic.publish(stored("c", None)), 1);
    let got = topic.pull("g", 10, timeout, now);
    let data: Vec<&[u8]> = got.iter().map(|d| d.message.data.as_slice()).collect();
    assert_eq!(data, [b"b", b"c"]);
    assert_eq!(topic.retained(), 0);
}
