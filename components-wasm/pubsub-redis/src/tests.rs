//! The broker's contract, exercised natively against the real Redis at
//! 127.0.0.1:6379 (as on the project's machines). Every test uses streams of
//! its own and deletes them.

use super::*;
use outrig_sdk::Error;
use outrig_sdk::pubsub::testing::{ids, message, payloads, subscription};
use redis_wire::{Cmd, Reply};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

const REDIS: &str = "127.0.0.1:6379";

/// A topic name no other test (or run) uses; its stream is deleted on drop.
struct Topic(String);

impl Topic {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Topic(format!(
            "outrig-test-pubsub-{}-{millis}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ))
    }
}

impl Drop for Topic {
    fn drop(&mut self) {
        let _ = raw(Cmd::new("DEL").arg(&self.0));
    }
}

fn raw(cmd: Cmd) -> io::Result<Reply> {
    let endpoint = Endpoint::from_metadata(&Metadata::from_pairs(&[("redisHost", REDIS)]))
        .map_err(|err| io::Error::other(format!("{err:?}")))?;
    Connection::open(&endpoint, &[])?.0.run(cmd)
}

fn broker(extra: &[(&str, &str)]) -> RedisBroker {
    let mut pairs = vec![("redisHost", REDIS)];
    pairs.extend_from_slice(extra);
    RedisBroker::init(Metadata::from_pairs(&pairs)).expect("init")
}

fn pull(broker: &mut RedisBroker, topic: &Topic, group: &str, max: u32) -> Vec<IncomingMessage> {
    broker
        .pull(
            subscription(&topic.0, group),
            max,
            Duration::from_millis(50),
        )
        .expect("pull")
}

#[test]
fn groups_each_get_every_message_and_consumers_share_them() {
    let topic = Topic::new();
    let (mut a1, mut a2, mut b) = (broker(&[]), broker(&[]), broker(&[]));
    a1.publish(topic.0.clone(), ["x", "y", "z"].map(message).to_vec())
        .expect("publish");

    let first = pull(&mut a1, &topic, "app-a", 2);
    assert_eq!(payloads(&first), ["x", "y"]);
    assert_eq!(
        (first[0].attempt, first[0].content_type.as_str()),
        (1, "text/plain")
    );
    assert_eq!(first[0].topic, topic.0);
    assert_eq!(payloads(&pull(&mut a2, &topic, "app-a", 10)), ["z"]);
    assert_eq!(
        payloads(&pull(&mut b, &topic, "app-b", 10)),
        ["x", "y", "z"]
    );
    assert!(pull(&mut a1, &topic, "app-a", 10).is_empty());
}

#[test]
fn entries_are_written_as_dapr_writes_them() {
    let topic = Topic::new();
    broker(&[])
        .publish(topic.0.clone(), vec![message("payload")])
        .expect("publish");
    let Ok(Reply::Array(Some(entries))) = raw(Cmd::new("XRANGE").arg(&topic.0).arg("-").arg("+"))
    else {
        panic!("XRANGE failed");
    };
    let expected = Reply::Array(Some(vec![
        Reply::Bulk(Some(b"data".to_vec())),
        Reply::Bulk(Some(b"payload".to_vec())),
        Reply::Bulk(Some(b"contentType".to_vec())),
        Reply::Bulk(Some(b"text/plain".to_vec())),
    ]));
    match entries.first() {
        Some(Reply::Array(Some(entry))) => assert_eq!(entry.get(1), Some(&expected)),
        other => panic!("no entry: {other:?}"),
    }
}

#[test]
fn acked_messages_are_gone_and_nacked_ones_come_back_with_their_attempt() {
    let topic = Topic::new();
    let mut broker = broker(&[("redeliverInterval", "0")]);
    broker
        .publish(topic.0.clone(), vec![message("ok"), message("retry")])
        .expect("publish");
    let first = pull(&mut broker, &topic, "app", 10);
    broker.ack(vec![first[0].id.clone()]).expect("ack");
    broker
        .nack(vec![first[1].id.clone()], Duration::ZERO)
        .expect("nack");

    let again = pull(&mut broker, &topic, "app", 10);
    assert_eq!(payloads(&again), ["retry"]);
    assert_eq!(again[0].attempt, 2);
    broker.ack(ids(&again)).expect("ack");
    assert!(pull(&mut broker, &topic, "app", 10).is_empty());
    let pending = raw(Cmd::new("XPENDING").arg(&topic.0).arg("app"));
    assert!(
        matches!(pending, Ok(Reply::Array(Some(ref summary))) if summary.first() == Some(&Reply::Integer(0))),
        "{pending:?}"
    );
}

#[test]
fn a_nack_delay_holds_the_message_back() {
    let topic = Topic::new();
    let mut broker = broker(&[("redeliverInterval", "0")]);
    broker
        .publish(topic.0.clone(), vec![message("later")])
        .expect("publish");
    let first = pull(&mut broker, &topic, "app", 10);
    broker
        .nack(ids(&first), Duration::from_secs(30))
        .expect("nack");
    assert!(pull(&mut broker, &topic, "app", 10).is_empty());
}

#[test]
fn messages_held_by_a_crashed_consumer_are_reclaimed() {
    let topic = Topic::new();
    let mut crashed = broker(&[]);
    crashed
        .publish(topic.0.clone(), vec![message("orphan")])
        .expect("publish");
    assert_eq!(pull(&mut crashed, &topic, "app", 10).len(), 1);
    drop(crashed);

    let mut survivor = broker(&[("processingTimeout", "1ms"), ("redeliverInterval", "0")]);
    // Let the entry idle past the 1ms processing timeout.
    std::thread::sleep(Duration::from_millis(20));
    let reclaimed = pull(&mut survivor, &topic, "app", 10);
    assert_eq!(payloads(&reclaimed), ["orphan"]);
    assert_eq!(reclaimed[0].attempt, 2);
}

#[test]
fn consumer_id_overrides_the_subscription_group_and_max_len_trims() {
    let topic = Topic::new();
    let mut broker = broker(&[("consumerID", "fixed"), ("maxLenApprox", "1")]);
    let batch: Vec<OutgoingMessage> = (0..500).map(|i| message(&i.to_string())).collect();
    broker.publish(topic.0.clone(), batch).expect("publish");
    let len = raw(Cmd::new("XLEN").arg(&topic.0));
    assert!(matches!(len, Ok(Reply::Integer(n)) if n < 500), "{len:?}");
    pull(&mut broker, &topic, "ignored", 1);
    let fixed = raw(Cmd::new("XPENDING").arg(&topic.0).arg("fixed"));
    assert!(
        matches!(&fixed, Ok(Reply::Array(Some(summary))) if summary.first() == Some(&Reply::Integer(1))),
        "{fixed:?}"
    );
    let ignored = raw(Cmd::new("XPENDING").arg(&topic.0).arg("ignored"));
    assert!(
        matches!(&ignored, Ok(Reply::Error(e)) if e.starts_with("NOGROUP")),
        "{ignored:?}"
    );
}

#[test]
fn a_deleted_stream_is_recreated_and_foreign_ids_are_ignored() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    raw(Cmd::new("DEL").arg(&topic.0)).expect("DEL");
    broker
        .publish(topic.0.clone(), vec![message("again")])
        .expect("publish");
    assert_eq!(payloads(&pull(&mut broker, &topic, "app", 1)), ["again"]);
    let foreign = vec!["nonsense".into(), pack_id(&[&topic.0, "nogroup", "1-1"])];
    broker.ack(foreign.clone()).expect("ack ignores");
    broker.nack(foreign, Duration::ZERO).expect("nack ignores");
}

#[test]
fn a_killed_connection_is_replaced_and_a_dead_server_is_unavailable() {
    let topic = Topic::new();
    let mut broker = broker(&[]);
    assert!(pull(&mut broker, &topic, "app", 1).is_empty());
    let conn = broker.conn.get_mut().expect("connected");
    let Ok(Reply::Integer(id)) = conn.run(Cmd::new("CLIENT").arg("ID")) else {
        panic!("CLIENT ID failed");
    };
    raw(Cmd::new("CLIENT").arg("KILL").arg("ID").arg(id.to_string())).expect("kill");
    broker
        .publish(topic.0.clone(), vec![message("m")])
        .expect_err("the publish on the killed connection fails");
    assert!(!broker.conn.is_open(), "the broken connection is dropped");
    broker
        .publish(topic.0.clone(), vec![message("m")])
        .expect("the next call reconnects");
    assert_eq!(payloads(&pull(&mut broker, &topic, "app", 1)), ["m"]);

    let mut down = RedisBroker::init(Metadata::from_pairs(&[("redisHost", "127.0.0.1:1")]))
        .expect("init is lazy");
    let failed = down
        .publish("t".into(), vec![message("a"), message("b")])
        .expect_err("no server");
    assert_eq!(failed.failed.len(), 2);
    assert!(matches!(failed.failed[1].error, Error::Unavailable(_)));
    let sub = Subscription {
        topic: "t".into(),
        consumer_group: "g".into(),
        metadata: Vec::new(),
    };
    assert!(matches!(
        down.pull(sub, 1, Duration::ZERO),
        Err(Error::Unavailable(_))
    ));
}

#[test]
fn a_blocking_pull_returns_what_arrives() {
    let topic = Topic::new();
    let mut consumer = broker(&[]);
    assert!(pull(&mut consumer, &topic, "app", 1).is_empty());
    let name = topic.0.clone();
    let publisher = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        broker(&[]).publish(name, vec![message("late")])
    });
    let got = consumer
        .pull(subscription(&topic.0, "app"), 10, Duration::from_secs(20))
        .expect("pull");
    publisher.join().expect("publisher").expect("publish");
    assert_eq!(payloads(&got), ["late"]);
}
