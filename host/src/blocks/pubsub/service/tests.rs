//! The publish block over the recording fake broker (and once over the real
//! built-in in-memory component): what reaches the broker, Dapr's checks in
//! Dapr's order, per-entry bulk failures, and the wake-up of local
//! subscribers.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::blocks::pubsub::BrokerSubscription;
use crate::test_util::{FakeBroker, FakeStore, builtin_in_memory_broker, catalog_with_brokers};
use futures::FutureExt;
use serde_json::{Value, json};
use std::time::Duration;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

struct Fixture {
    broker: Arc<FakeBroker>,
    signals: Arc<PublishSignals>,
    block: PubSubBlock,
}

impl Fixture {
    /// Broker `ps` accepts everything; `broken` failed to load.
    fn new() -> Self {
        let broker = FakeBroker::new();
        let brokers: [(&str, Arc<dyn Broker>); 1] = [("ps", broker.clone())];
        let catalog = catalog_with_brokers(&[], &brokers, &[("broken", "bad yaml")]);
        let signals = Arc::new(PublishSignals::default());
        Fixture {
            block: PubSubBlock::new("orders", catalog, signals.clone()),
            broker,
            signals,
        }
    }

    /// The one message published so far, its topic, and its event (if JSON).
    fn only_message(&self) -> (String, OutgoingMessage, Value) {
        let mut published = self.broker.published();
        assert_eq!(published.len(), 1, "{published:?}");
        let (topic, message) = published.remove(0);
        let event = serde_json::from_slice(&message.data).unwrap_or(Value::Null);
        (topic, message, event)
    }
}

fn request(pubsub: &str, topic: &str, data: &str, content_type: &str) -> PublishRequest {
    PublishRequest {
        pubsub: pubsub.into(),
        topic: topic.into(),
        data: data.as_bytes().to_vec(),
        content_type: content_type.into(),
        ..PublishRequest::default()
    }
}

fn metadata(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn entry(id: &str, event: &str, content_type: &str) -> BulkPublishEntry {
    BulkPublishEntry {
        entry_id: id.into(),
        event: event.as_bytes().to_vec(),
        content_type: content_type.into(),
        metadata: Metadata::new(),
    }
}

fn bulk(entries: Vec<BulkPublishEntry>) -> BulkPublishRequest {
    BulkPublishRequest {
        pubsub: "ps".into(),
        topic: "orders".into(),
        entries,
        ..BulkPublishRequest::default()
    }
}

#[tokio::test]
async fn a_publish_reaches_the_broker_as_a_cloudevent_and_wakes_subscribers() {
    let f = Fixture::new();
    let signal = f.signals.subscribe("ps", "orders/eu");
    let other = f.signals.subscribe("ps", "invoices");
    let mut publish = request("ps", "orders/eu", r#"{"id": 1}"#, "application/json");
    publish.metadata = metadata(&[("partitionKey", "k")]);
    publish.trace.traceparent = Some(TRACEPARENT.into());
    f.block.publish(publish).await.unwrap();

    let (topic, message, event) = f.only_message();
    assert_eq!(topic, "orders/eu");
    assert_eq!(message.content_type, "application/cloudevents+json");
    assert_eq!(message.metadata, metadata(&[("partitionKey", "k")]));
    assert_eq!(message.ttl_seconds, None);
    assert_eq!(event["data"], json!({"id": 1}));
    assert_eq!(event["source"], "orders");
    assert_eq!(event["topic"], "orders/eu");
    assert_eq!(event["pubsubname"], "ps");
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert!(
        signal.notified().now_or_never().is_some(),
        "subscriber woken"
    );
    assert!(
        other.notified().now_or_never().is_none(),
        "other topic left alone"
    );
}

#[tokio::test]
async fn raw_payloads_go_unwrapped_with_their_content_type() {
    let f = Fixture::new();
    let mut publish = request("ps", "t", "<order/>", "application/xml");
    publish.metadata = metadata(&[("rawPayload", "true"), ("ttlInSeconds", "30")]);
    f.block.publish(publish).await.unwrap();
    let (_, message, _) = f.only_message();
    assert_eq!(message.data, b"<order/>");
    assert_eq!(message.content_type, "application/xml");
    assert_eq!(message.ttl_seconds, Some(30));
}

#[tokio::test]
async fn ttl_reaches_the_broker_and_the_envelope() {
    let f = Fixture::new();
    let mut publish = request("ps", "t", "hi", "text/plain");
    publish.metadata = metadata(&[("ttlInSeconds", "120")]);
    let before = SystemTime::now();
    f.block.publish(publish).await.unwrap();
    let (_, message, event) = f.only_message();
    assert_eq!(message.ttl_seconds, Some(120));
    assert!(!cloudevent::expired(&event, before));
    assert!(cloudevent::expired(
        &event,
        before + Duration::from_secs(122)
    ));
}

#[tokio::test]
async fn requests_are_checked_in_daprs_order() {
    let f = Fixture::new();
    let cases = [
        (request("", "t", "x", ""), "ERR_PUBSUB_EMPTY"),
        (request("nope", "", "x", ""), "ERR_PUBSUB_NOT_FOUND"),
        (request("broken", "t", "x", ""), "ERR_PUBSUB_NOT_FOUND"),
        (request("ps", "", "x", ""), "ERR_TOPIC_NAME_EMPTY"),
        (
            request("ps", "t", "[1]", "application/cloudevents+json"),
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
    ];
    for (publish, code) in cases {
        let name = format!("{}/{}", publish.pubsub, publish.topic);
        let err = f.block.publish(publish).await.unwrap_err();
        assert_eq!(err.code(), code, "{name}: {err}");
    }
    assert!(f.broker.published().is_empty());
}

#[tokio::test]
async fn bad_sidecar_metadata_is_refused_with_the_reason() {
    let f = Fixture::new();
    let cases = [
        (
            ("rawPayload", "yes"),
            "rawPayload value must be a valid boolean: actual is 'yes'",
        ),
        (
            ("ttlInSeconds", "soon"),
            "ttlInSeconds value must be a valid integer: actual is 'soon'",
        ),
        (
            ("ttlInSeconds", "0"),
            "ttlInSeconds value must be higher than zero: actual is 0",
        ),
        (
            ("ttlInSeconds", "-1"),
            "ttlInSeconds value must be higher than zero: actual is -1",
        ),
    ];
    for ((key, value), reason) in cases {
        let mut publish = request("ps", "t", "x", "");
        publish.metadata = metadata(&[(key, value)]);
        let err = f.block.publish(publish).await.unwrap_err();
        assert_eq!(err.code(), "ERR_PUBSUB_REQUEST_METADATA");
        assert_eq!(
            err.to_string(),
            format!("failed deserializing metadata. Error: {reason}")
        );
    }
    let mut huge = request("ps", "t", "x", "");
    huge.metadata = metadata(&[("ttlInSeconds", "99999999999")]);
    f.block.publish(huge).await.unwrap();
    assert_eq!(f.only_message().1.ttl_seconds, Some(u32::MAX));
}

#[tokio::test]
async fn without_any_broker_pubsub_is_not_configured() {
    let store = FakeStore::full();
    let catalog = catalog_with_brokers(&[("s", store)], &[], &[]);
    let block = PubSubBlock::new("a", catalog, Arc::default());
    let err = block
        .publish(request("ps", "t", "x", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_PUBSUB_NOT_CONFIGURED");
    assert_eq!(err.to_string(), "pubsub ps is not configured");
}

#[tokio::test]
async fn broker_failures_keep_the_components_words() {
    let f = Fixture::new();
    let signal = f.signals.subscribe("ps", "t");
    f.broker.fail_with(Some(ComponentError::Unavailable(
        "dial tcp: refused".into(),
    )));
    let err = f
        .block
        .publish(request("ps", "t", "x", ""))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ERR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(
        err.to_string(),
        "error when publishing to topic t in pubsub ps: backend unavailable: dial tcp: refused"
    );
    assert!(
        signal.notified().now_or_never().is_none(),
        "nothing published"
    );
}

#[tokio::test]
async fn bulk_reports_each_entry_the_broker_refused() {
    let f = Fixture::new();
    let signal = f.signals.subscribe("ps", "orders");
    f.broker
        .refuse_entry(1, ComponentError::Internal("message too large".into()));
    let mut request = bulk(vec![
        entry("a", "one", "text/plain"),
        entry("b", "two", "text/plain"),
        entry("c", r#"{"n": 3}"#, "application/json"),
    ]);
    request.metadata = metadata(&[("ttlInSeconds", "10")]);
    request.entries[2].metadata = metadata(&[("ttlInSeconds", "20")]);
    let err = f.block.bulk_publish(request).await.unwrap_err();
    assert_eq!(err.code(), "ERR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(
        err.failed_entries(),
        [FailedEntry {
            entry_id: "b".into(),
            error: "message too large".into(),
        }]
    );
    let published = f.broker.published();
    let events: Vec<Value> = published
        .iter()
        .map(|(_, m)| serde_json::from_slice(&m.data).unwrap())
        .collect();
    assert_eq!(events[0]["data"], "one");
    assert_eq!(events[1]["data"], json!({"n": 3}));
    // Request metadata applies to every entry; an entry's own wins.
    assert_eq!(published[0].1.ttl_seconds, Some(10));
    assert_eq!(published[1].1.ttl_seconds, Some(20));
    assert!(
        signal.notified().now_or_never().is_some(),
        "some were published"
    );
}

#[tokio::test]
async fn bulk_entries_need_unique_ids_and_valid_events() {
    let f = Fixture::new();
    let cases = [
        (vec![entry("", "x", "")], "ERR_PUBSUB_EVENTS_SER"),
        (
            vec![entry("a", "x", ""), entry("a", "y", "")],
            "ERR_PUBSUB_EVENTS_SER",
        ),
        (
            vec![
                entry("a", "x", ""),
                entry("b", "x", "application/cloudevents+json"),
            ],
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
    ];
    for (entries, code) in cases {
        let err = f.block.bulk_publish(bulk(entries)).await.unwrap_err();
        assert_eq!(err.code(), code, "{err}");
    }
    assert!(f.broker.published().is_empty(), "nothing is published");
    f.block.bulk_publish(bulk(Vec::new())).await.unwrap();
}

#[tokio::test]
async fn bulk_failing_whole_lists_every_entry() {
    let f = Fixture::new();
    f.broker
        .fail_with(Some(ComponentError::Unavailable("down".into())));
    let mut request = bulk(vec![entry("a", "1", ""), entry("b", "2", "")]);
    request.metadata = metadata(&[("rawPayload", "1")]);
    let err = f.block.bulk_publish(request).await.unwrap_err();
    let ids: Vec<&str> = err
        .failed_entries()
        .iter()
        .map(|e| e.entry_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
}

#[tokio::test]
async fn the_builtin_in_memory_broker_hands_back_the_cloudevent() {
    let builtin = builtin_in_memory_broker().await;
    let brokers = [("pubsub", builtin.broker.clone())];
    let catalog = catalog_with_brokers(&[], &brokers, &[]);
    let block = PubSubBlock::new("orders", catalog, Arc::default());
    let subscription = BrokerSubscription {
        topic: "created".into(),
        consumer_group: "orders".into(),
        metadata: Vec::new(),
    };
    // Subscribe first: a consumer group sees what is published after it exists.
    let none = builtin
        .broker
        .pull(&subscription, 10, Duration::ZERO)
        .await
        .unwrap();
    assert!(none.is_empty());
    let mut publish = request("pubsub", "created", "hello", "text/plain");
    publish.metadata = metadata(&[("ttlInSeconds", "60")]);
    block.publish(publish).await.unwrap();
    let messages = builtin
        .broker
        .pull(&subscription, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let event = cloudevent::parse(&messages[0].data).unwrap();
    assert_eq!(event["data"], "hello");
    assert_eq!(event["topic"], "created");
    assert_eq!(event["pubsubname"], "pubsub");
    assert!(event["expiration"].is_string());
}
