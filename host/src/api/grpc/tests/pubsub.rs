//! The publish RPCs over a real tonic server: what the broker receives (read
//! back through `Broker::pull`), bulk failures per entry, every error with
//! Dapr's code and `ErrorInfo`, and the message size limit.

use super::*;
use crate::blocks::pubsub::{Broker, BrokerSubscription};
use crate::test_util::{FakeBroker, catalog_with_brokers};
use serde_json::{Value, json};
use std::time::Duration;
use tonic::Request;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A server whose pub/sub `ps` is a recording fake; stops when dropped.
struct PubSubFixture {
    broker: Arc<FakeBroker>,
    client: DaprClient<Channel>,
    _server: Fixture,
}

impl PubSubFixture {
    async fn new() -> Self {
        let broker = FakeBroker::new();
        let brokers: [(&str, Arc<dyn Broker>); 1] = [("ps", broker.clone())];
        let catalog = catalog_with_brokers(&[], &brokers, &[("broken", "bad yaml")]);
        let server = Fixture::serve(FakeStore::full(), context(None, catalog)).await;
        PubSubFixture {
            broker,
            client: server.client.clone(),
            _server: server,
        }
    }

    /// The events a subscriber of `topic` pulls from the broker.
    async fn events(&self, topic: &str) -> Vec<Value> {
        let subscription = BrokerSubscription {
            topic: topic.into(),
            consumer_group: APP.into(),
            metadata: Vec::new(),
        };
        let messages = self
            .broker
            .pull(&subscription, 100, Duration::ZERO)
            .await
            .unwrap();
        messages
            .iter()
            .map(|m| serde_json::from_slice(&m.data).unwrap_or(Value::Null))
            .collect()
    }
}

fn publish(
    pubsub: &str,
    topic: &str,
    data: &[u8],
    content_type: &str,
) -> runtime::PublishEventRequest {
    runtime::PublishEventRequest {
        pubsub_name: pubsub.into(),
        topic: topic.into(),
        data: data.to_vec(),
        data_content_type: content_type.into(),
        metadata: HashMap::new(),
    }
}

fn entry(id: &str, event: &[u8], content_type: &str) -> runtime::BulkPublishRequestEntry {
    runtime::BulkPublishRequestEntry {
        entry_id: id.into(),
        event: event.to_vec(),
        content_type: content_type.into(),
        metadata: HashMap::new(),
    }
}

fn bulk(entries: Vec<runtime::BulkPublishRequestEntry>) -> runtime::BulkPublishRequest {
    runtime::BulkPublishRequest {
        pubsub_name: "ps".into(),
        topic: "t".into(),
        entries,
        metadata: HashMap::new(),
    }
}

#[tokio::test]
async fn publish_event_wraps_the_data_and_carries_the_trace_context() {
    let mut f = PubSubFixture::new().await;
    let mut request = publish("ps", "orders/new", br#"{"id": 9}"#, "application/json");
    request.metadata.insert("ttlInSeconds".into(), "120".into());
    let mut call = Request::new(request);
    call.metadata_mut()
        .insert("traceparent", TRACEPARENT.parse().unwrap());
    call.metadata_mut()
        .insert("tracestate", "x=1".parse().unwrap());
    f.client.publish_event(call).await.unwrap();

    let events = f.events("orders/new").await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["data"], json!({"id": 9}));
    assert_eq!(event["source"], APP);
    assert_eq!(event["type"], "com.dapr.event.sent");
    assert_eq!(event["pubsubname"], "ps");
    assert_eq!(event["topic"], "orders/new");
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert_eq!(event["tracestate"], "x=1");
    assert!(event["expiration"].is_string(), "{event}");
    assert_eq!(f.broker.published()[0].1.ttl_seconds, Some(120));
}

#[tokio::test]
async fn publish_event_passes_cloudevents_and_raw_payloads() {
    let mut f = PubSubFixture::new().await;
    let own = json!({"specversion": "1.0", "id": "e", "source": "s", "type": "x", "data": 1});
    let request = publish(
        "ps",
        "ce",
        own.to_string().as_bytes(),
        "application/cloudevents+json",
    );
    f.client.publish_event(request).await.unwrap();
    let mut raw = publish("ps", "raw", &[0, 1, 2], "application/octet-stream");
    raw.metadata.insert("rawPayload".into(), "true".into());
    f.client.publish_event(raw).await.unwrap();

    let events = f.events("ce").await;
    assert_eq!(events[0]["id"], "e");
    assert_eq!(events[0]["data"], 1);
    assert_eq!(events[0]["pubsubname"], "ps");
    let published = f.broker.published();
    assert_eq!(published[1].0, "raw");
    assert_eq!(published[1].1.data, [0, 1, 2]);
    assert_eq!(published[1].1.content_type, "application/octet-stream");
}

#[tokio::test]
async fn bulk_publish_under_both_names_answers_no_failed_entries() {
    let mut f = PubSubFixture::new().await;
    let request = bulk(vec![
        entry("1", b"one", "text/plain"),
        entry("2", b"2", "application/json"),
    ]);
    let answer = f
        .client
        .bulk_publish_event(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert!(answer.failed_entries.is_empty());
    let answer = f
        .client
        .bulk_publish_event_alpha1(request)
        .await
        .unwrap()
        .into_inner();
    assert!(answer.failed_entries.is_empty());
    let data: Vec<Value> = f
        .events("t")
        .await
        .iter()
        .map(|e| e["data"].clone())
        .collect();
    assert_eq!(data, [json!("one"), json!(2), json!("one"), json!(2)]);
}

#[tokio::test]
async fn bulk_publish_with_refused_entries_fails_naming_them() {
    let mut f = PubSubFixture::new().await;
    f.broker
        .refuse_entry(0, ComponentError::Internal("too big".into()));
    let request = bulk(vec![
        entry("a", b"1", "text/plain"),
        entry("b", b"2", "text/plain"),
    ]);
    let status = f.client.bulk_publish_event(request).await.unwrap_err();
    let (code, reason, domain, message) = explain(&status);
    assert_eq!(code, Code::Internal);
    assert_eq!(reason, "DAPR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(domain, "dapr.io");
    assert!(message.contains("entry a: too big"), "{message}");
    let info = status.get_details_error_info().unwrap();
    let failed: Value = serde_json::from_str(&info.metadata["failedEntries"]).unwrap();
    assert_eq!(failed, json!([{"entryId": "a", "error": "too big"}]));
    assert_eq!(info.metadata["topic"], "t");
    assert_eq!(f.events("t").await.len(), 1, "entry b was published");
}

#[tokio::test]
async fn errors_carry_dapr_codes_and_error_info() {
    let mut f = PubSubFixture::new().await;
    let with = |mut request: runtime::PublishEventRequest, key: &str, value: &str| {
        request.metadata.insert(key.into(), value.into());
        request
    };
    let cases = [
        (
            publish("", "t", b"x", ""),
            Code::InvalidArgument,
            "DAPR_PUBSUB_NAME_EMPTY",
            "pubsub name is empty",
        ),
        (
            publish("nope", "t", b"x", ""),
            Code::InvalidArgument,
            "DAPR_PUBSUB_NOT_FOUND",
            "pubsub nope is not found",
        ),
        (
            publish("ps", "", b"x", ""),
            Code::InvalidArgument,
            "DAPR_PUBSUB_TOPIC_NAME_EMPTY",
            "topic is empty in pubsub ps",
        ),
        (
            publish(
                "ps",
                "t",
                b"{\"specversion\": \"0.3\"}",
                "application/cloudevents+json",
            ),
            Code::InvalidArgument,
            "DAPR_PUBSUB_CLOUD_EVENT_CREATION",
            "cannot create cloudevent: the event's specversion is \"0.3\"; only \"1.0\" is supported",
        ),
        (
            with(publish("ps", "t", b"x", ""), "ttlInSeconds", "x"),
            Code::InvalidArgument,
            "DAPR_PUBSUB_METADATA_DESERIALIZATION",
            "failed deserializing metadata. Error: ttlInSeconds value must be a valid integer: actual is 'x'",
        ),
    ];
    for (request, code, reason, message) in cases {
        let status = f.client.publish_event(request).await.unwrap_err();
        assert_eq!(
            explain(&status),
            (
                code,
                reason.to_owned(),
                "dapr.io".to_owned(),
                message.to_owned()
            )
        );
    }
    let status = f
        .client
        .bulk_publish_event(bulk(vec![entry("", b"x", "")]))
        .await
        .unwrap_err();
    let (code, reason, _, _) = explain(&status);
    assert_eq!(
        (code, reason.as_str()),
        (Code::InvalidArgument, "DAPR_PUBSUB_MARSHAL_EVENTS")
    );

    f.broker.fail_with(Some(ComponentError::Unavailable(
        "connection refused".into(),
    )));
    let status = f
        .client
        .publish_event(publish("ps", "t", b"x", ""))
        .await
        .unwrap_err();
    let (code, reason, _, message) = explain(&status);
    assert_eq!(
        (code, reason.as_str()),
        (Code::Internal, "DAPR_PUBSUB_PUBLISH_MESSAGE")
    );
    assert_eq!(
        message,
        "error when publishing to topic t in pubsub ps: backend unavailable: connection refused"
    );
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["error"],
        "backend unavailable: connection refused"
    );
    assert!(f.broker.published().is_empty());
}

#[tokio::test]
async fn without_any_pubsub_publishing_is_not_configured() {
    let catalog = catalog(&[("s", FakeStore::full())], &[]);
    let mut f = Fixture::serve(FakeStore::full(), context(None, catalog)).await;
    let status = f
        .client
        .publish_event(publish("ps", "t", b"x", ""))
        .await
        .unwrap_err();
    let (code, reason, _, message) = explain(&status);
    assert_eq!(code, Code::FailedPrecondition);
    assert_eq!(reason, "DAPR_PUBSUB_NOT_CONFIGURED");
    assert_eq!(message, "pubsub ps is not configured");
}

#[tokio::test]
async fn messages_over_the_size_limit_are_refused_before_publishing() {
    let mut f = PubSubFixture::new().await;
    let data = vec![b'x'; MAX_MESSAGE_BYTES + 1];
    let request = publish("ps", "t", &data, "text/plain");
    let size = prost::Message::encoded_len(&request);
    let status = f.client.publish_event(request).await.unwrap_err();
    // Dapr's (grpc-go's) code and words, not tonic's OUT_OF_RANGE.
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        status.message(),
        format!("grpc: received message larger than max ({size} vs. {MAX_MESSAGE_BYTES})"),
        "the message names the size and the limit"
    );
    assert!(f.broker.published().is_empty());
    // Just under the limit is published.
    let data = vec![b'x'; MAX_MESSAGE_BYTES - 1024];
    f.client
        .publish_event(publish("ps", "t", &data, "text/plain"))
        .await
        .unwrap();
    assert_eq!(f.broker.published().len(), 1);
}
