//! Dapr's publish API end to end: the real `outrig` binary serving a
//! `pubsub.redis` component on the test Redis and the in-memory `pubsub`
//! (the embedded default's type), published to over HTTP and gRPC. What
//! Redis stored (`XRANGE`, the `data` field Dapr's Redis component uses) must
//! be the CloudEvent Dapr would have written. Every test publishes to topics
//! of its own, whose streams are deleted afterwards.

mod common;

use anyhow::{Context, ensure};
use common::{AppId, Launch, REDIS_HOST, Resources, Sidecar, unique_name};
use outrig::api::grpc::proto::runtime::{self, dapr_client::DaprClient};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use tonic::transport::Channel;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// The Redis pub/sub component's name.
const REDIS_PUBSUB: &str = "redis-pubsub";

/// Deletes the streams (topics) it names from the test Redis when dropped.
struct Streams(Vec<String>);

impl Drop for Streams {
    fn drop(&mut self) {
        if let Ok(mut conn) = common::redis_connection() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&self.0).query(&mut conn);
        }
    }
}

/// A sidecar serving `redis-pubsub` (Redis) and `pubsub` (in memory), and a
/// gRPC client of it.
async fn start(app: &AppId) -> anyhow::Result<(Sidecar, DaprClient<Channel>, Resources)> {
    let resources = Resources::new();
    resources.builtin(REDIS_PUBSUB, "pubsub.redis", &[("redisHost", REDIS_HOST)]);
    resources.builtin("pubsub", "pubsub.in-memory", &[]);
    let grpc_port = common::free_port()?;
    let sidecar = Launch::new(app)
        .resources(resources.path())
        .grpc_port(grpc_port)
        .start()
        .await?;
    let client = DaprClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .context("connecting to the gRPC API")?;
    Ok((sidecar, client, resources))
}

/// The `data` field of every entry of stream `topic`, in order.
fn stored_data(topic: &str) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut conn = common::redis_connection()?;
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(topic)
        .arg("-")
        .arg("+")
        .query(&mut conn)
        .with_context(|| format!("XRANGE {topic} - +"))?;
    entries
        .into_iter()
        .map(|(id, fields)| {
            fields
                .chunks(2)
                .find(|pair| pair.first().is_some_and(|name| name == b"data"))
                .and_then(|pair| pair.get(1).cloned())
                .with_context(|| format!("entry {id} of {topic} has no data field"))
        })
        .collect()
}

/// The `data` field of every entry of stream `topic`, as JSON.
fn stored_events(topic: &str) -> anyhow::Result<Vec<Value>> {
    stored_data(topic)?
        .iter()
        .map(|data| {
            serde_json::from_slice(data).with_context(|| format!("an entry of {topic} is not JSON"))
        })
        .collect()
}

/// Checks the attributes every event Outrig wraps must carry.
fn ensure_envelope(event: &Value, app: &AppId, topic: &str) -> anyhow::Result<()> {
    let expected = [
        ("source", app.as_str()),
        ("type", "com.dapr.event.sent"),
        ("specversion", "1.0"),
        ("topic", topic),
        ("pubsubname", REDIS_PUBSUB),
    ];
    for (attribute, value) in expected {
        ensure!(
            event[attribute] == value,
            "{attribute} should be {value:?}: {event}"
        );
    }
    for attribute in ["id", "time", "traceparent", "traceid"] {
        ensure!(
            event[attribute].as_str().is_some_and(|v| !v.is_empty()),
            "{attribute} missing: {event}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn http_publishes_are_stored_in_redis_as_cloudevents() -> anyhow::Result<()> {
    let app = AppId::new("pub-http");
    let (sidecar, _client, _resources) = start(&app).await?;
    // Topics may contain `/`.
    let topic = format!("{}/eu", unique_name("e2e-orders"));
    let raw_topic = unique_name("e2e-raw");
    let _streams = Streams(vec![topic.clone(), raw_topic.clone()]);

    let publish = sidecar
        .request(
            Method::POST,
            &format!("/v1.0/publish/{REDIS_PUBSUB}/{topic}?metadata.ttlInSeconds=60"),
        )
        .header("content-type", "application/json")
        .header("traceparent", TRACEPARENT)
        .body(r#"{"orderId": 1, "big": 123456789012345678901234567890}"#);
    sidecar.send("publish", publish).await?.ensure_status(204)?;
    let events = stored_events(&topic)?;
    ensure!(events.len() == 1, "one entry in {topic}: {events:?}");
    let event = &events[0];
    ensure_envelope(event, &app, &topic)?;
    // JSON data is stored as the app wrote it: the big integer is intact.
    let text = String::from_utf8(stored_data(&topic)?.remove(0))?;
    ensure!(text.contains("123456789012345678901234567890"), "{text}");
    ensure!(event["datacontenttype"] == "application/json", "{event}");
    ensure!(event["data"]["orderId"] == 1, "{event}");
    ensure!(event["traceparent"] == TRACEPARENT, "{event}");
    ensure!(event["expiration"].is_string(), "{event}");

    let raw = sidecar
        .request(
            Method::POST,
            &format!("/v1.0/publish/{REDIS_PUBSUB}/{raw_topic}?metadata.rawPayload=true"),
        )
        .header("content-type", "text/plain")
        .body("just bytes");
    sidecar.send("raw publish", raw).await?.ensure_status(204)?;
    let raw_data = stored_data(&raw_topic)?;
    ensure!(
        raw_data == [b"just bytes".to_vec()],
        "the raw payload is stored unwrapped: {raw_data:?}"
    );

    // The in-memory default accepts publishes too; an unknown name is 404.
    sidecar
        .call(
            Method::POST,
            "/v1.0/publish/pubsub/orders",
            Some(&json!({"a": 1})),
        )
        .await?
        .ensure_status(204)?;
    sidecar
        .call(Method::POST, "/v1.0/publish/nope/orders", Some(&json!({})))
        .await?
        .ensure_error(404, "ERR_PUBSUB_NOT_FOUND")?;
    Ok(())
}

#[tokio::test]
async fn grpc_publishes_are_stored_in_redis_as_cloudevents() -> anyhow::Result<()> {
    let app = AppId::new("pub-grpc");
    let (_sidecar, mut client, _resources) = start(&app).await?;
    let topic = unique_name("e2e-grpc");
    let bulk_topic = unique_name("e2e-bulk");
    let _streams = Streams(vec![topic.clone(), bulk_topic.clone()]);

    let mut request = tonic::Request::new(runtime::PublishEventRequest {
        pubsub_name: REDIS_PUBSUB.into(),
        topic: topic.clone(),
        data: b"hello".to_vec(),
        data_content_type: "text/plain".into(),
        metadata: HashMap::new(),
    });
    request
        .metadata_mut()
        .insert("traceparent", TRACEPARENT.parse()?);
    client.publish_event(request).await?;
    let events = stored_events(&topic)?;
    ensure!(events.len() == 1, "one entry in {topic}: {events:?}");
    ensure_envelope(&events[0], &app, &topic)?;
    ensure!(events[0]["data"] == "hello", "{}", events[0]);
    ensure!(events[0]["traceparent"] == TRACEPARENT, "{}", events[0]);

    let entry = |id: &str, event: &str| runtime::BulkPublishRequestEntry {
        entry_id: id.into(),
        event: event.as_bytes().to_vec(),
        content_type: "application/json".into(),
        metadata: HashMap::new(),
    };
    let answer = client
        .bulk_publish_event(runtime::BulkPublishRequest {
            pubsub_name: REDIS_PUBSUB.into(),
            topic: bulk_topic.clone(),
            entries: vec![entry("1", r#"{"n": 1}"#), entry("2", r#"{"n": 2}"#)],
            metadata: HashMap::new(),
        })
        .await?
        .into_inner();
    ensure!(answer.failed_entries.is_empty(), "{answer:?}");
    let events = stored_events(&bulk_topic)?;
    let data: Vec<&Value> = events.iter().map(|event| &event["data"]).collect();
    ensure!(
        data == [&json!({"n": 1}), &json!({"n": 2})],
        "both entries stored in order: {events:?}"
    );
    for event in &events {
        ensure_envelope(event, &app, &bulk_topic)?;
    }

    let status = client
        .publish_event(runtime::PublishEventRequest {
            pubsub_name: "nope".into(),
            topic: topic.clone(),
            ..Default::default()
        })
        .await
        .err()
        .context("publishing to an unknown pubsub must fail")?;
    ensure!(status.code() == tonic::Code::InvalidArgument, "{status:?}");
    ensure!(stored_events(&topic)?.len() == 1, "nothing more was stored");
    Ok(())
}
