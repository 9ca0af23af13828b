//! Dapr's publish API end to end: the real `outrig` binary serving a
//! `pubsub.redis` component on the test Redis and the in-memory `pubsub`
//! (the embedded default's type), published to over HTTP and gRPC. What
//! Redis stored (`XRANGE`, the `data` field Dapr's Redis component uses) must
//! be the CloudEvent Dapr would have written. Every test publishes to topics
//! of its own, whose streams are deleted afterwards.

mod common;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, REDIS_HOST, Resources, Sidecar, unique_name};
use outrig::api::grpc::proto::runtime::{self, dapr_client::DaprClient};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashMap;
use tonic::transport::Channel;
use tonic_types::StatusExt;

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
    let (sidecar, client) = serve(app, &resources).await?;
    Ok((sidecar, client, resources))
}

/// A sidecar serving the components in `resources`, and a gRPC client of it.
async fn serve(
    app: &AppId,
    resources: &Resources,
) -> anyhow::Result<(Sidecar, DaprClient<Channel>)> {
    let grpc_port = common::free_port()?;
    let sidecar = Launch::new(app)
        .resources(resources.path())
        .grpc_port(grpc_port)
        .start()
        .await?;
    let client = DaprClient::connect(format!("http://127.0.0.1:{grpc_port}"))
        .await
        .context("connecting to the gRPC API")?;
    Ok((sidecar, client))
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

/// The NATS pub/sub component's name in the bad-input test.
const NATS_PUBSUB: &str = "nats-pubsub";

/// The HTTP and gRPC request size limit (Dapr's default `--max-body-size`).
const LIMIT: usize = 4 * 1024 * 1024;

/// How Dapr says that a publish to `pubsub` names no topic.
const NO_TOPIC: &str = "topic is empty in pubsub pubsub";

/// How the NATS component refuses a message over the server's default limit.
const MAX_PAYLOAD: &str = "over the NATS server's max_payload of 1048576 bytes";

/// Deletes the JetStream streams (named after the topics) when dropped.
struct NatsStreams(Vec<String>);

impl Drop for NatsStreams {
    fn drop(&mut self) {
        common::brokers::delete_nats_streams(&self.0);
    }
}

/// One bad HTTP publish and Dapr's answer to it.
struct BadPublish {
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// What the `message` must contain to say why.
    because: String,
}

/// One bad gRPC publish and Dapr's answer to it.
struct BadGrpcPublish {
    what: &'static str,
    request: runtime::PublishEventRequest,
    code: tonic::Code,
    /// The `google.rpc.ErrorInfo` reason; `None` where the gRPC server
    /// refuses the call before Outrig's code sees it.
    reason: Option<&'static str>,
    because: String,
}

fn grpc_publish(
    pubsub: &str,
    topic: &str,
    data: Vec<u8>,
    content_type: &str,
) -> runtime::PublishEventRequest {
    runtime::PublishEventRequest {
        pubsub_name: pubsub.into(),
        topic: topic.into(),
        data,
        data_content_type: content_type.into(),
        metadata: HashMap::new(),
    }
}

/// The bad HTTP publishes to `topic`, one per line.
#[rustfmt::skip]
fn bad_http_publishes(topic: &str) -> Vec<BadPublish> {
    let bad = |path: String, content_type, body: &[u8], status, code, because: &str| BadPublish {
        path, content_type, body: body.to_vec(), status, code, because: because.to_owned(),
    };
    let (json, cloudevent) = ("application/json", "application/cloudevents+json");
    let (no_topic, too_large) = (NO_TOPIC, "the body is larger than the limit of 4194304 bytes");
    let single = format!("/v1.0/publish/pubsub/{topic}");
    let over_limit = vec![b'x'; LIMIT + 1];
    vec![
        bad("/v1.0/publish/pubsub/".into(), json, b"{}", 404, "ERR_TOPIC_NAME_EMPTY", no_topic),
        bad("/v1.0/publish/pubsub".into(), json, b"{}", 404, "ERR_TOPIC_NAME_EMPTY", no_topic),
        bad("/v1.0-alpha1/publish/bulk/pubsub/".into(), json, b"[]", 404, "ERR_TOPIC_NAME_EMPTY", no_topic),
        // Dapr answers 500 for an event it cannot make a CloudEvent of.
        bad(single.clone(), cloudevent, br#"{"specversion": "1.0", "id": "#, 500,
            "ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent: the event is not valid JSON"),
        bad(single.clone(), cloudevent, b"[1, 2]", 500,
            "ERR_PUBSUB_CLOUD_EVENTS_SER", "cannot create cloudevent: the event is not a JSON object"),
        bad(single, "text/plain", &over_limit, 413, "ERR_BODY_READ", too_large),
        bad(format!("/v1.0-alpha1/publish/bulk/pubsub/{topic}"), json, &over_limit, 413, "ERR_BODY_READ", too_large),
        bad(format!("/v1.0/publish/{NATS_PUBSUB}/{topic}"), "text/plain", &vec![b'x'; 2 << 20], 500,
            "ERR_PUBSUB_PUBLISH_MESSAGE", MAX_PAYLOAD),
    ]
}

/// Publishes a well-behaved app would not send, over both APIs: no topic,
/// a malformed CloudEvent, a message over the 4 MiB limit, and one over
/// what the broker takes (NATS' `max_payload`, 1 MiB by default). Each is
/// refused with Dapr's error and a message that says why, promptly, and
/// the sidecar and the broker connection serve on.
#[tokio::test]
async fn bad_publishes_are_refused_with_daprs_errors() -> anyhow::Result<()> {
    let app = AppId::new("pub-bad");
    let resources = Resources::new();
    resources.builtin("pubsub", "pubsub.in-memory", &[]);
    resources.builtin(
        NATS_PUBSUB,
        "pubsub.jetstream",
        &[("natsURL", common::NATS_URL)],
    );
    let (sidecar, mut client) = serve(&app, &resources).await?;
    let topic = unique_name("e2e-bad");
    let _streams = NatsStreams(vec![topic.clone()]);
    for case in bad_http_publishes(&topic) {
        let what = format!("POST {} ({} bytes)", case.path, case.body.len());
        let request = sidecar
            .request(Method::POST, &case.path)
            .header("content-type", case.content_type)
            .body(case.body);
        let reply = sidecar.send(&what, request).await?;
        reply.ensure_error(case.status, case.code)?;
        let message = reply.error_message().unwrap_or_default();
        ensure!(
            message.contains(&case.because),
            "{}",
            reply.describe(&format!("the message should say `{}`", case.because))
        );
    }

    let over_limit_request = grpc_publish("pubsub", &topic, vec![b'x'; LIMIT + 1], "text/plain");
    let over_limit_size = prost::Message::encoded_len(&over_limit_request);
    let grpc_cases = [
        BadGrpcPublish {
            what: "no topic",
            request: grpc_publish("pubsub", "", b"x".to_vec(), "text/plain"),
            code: tonic::Code::InvalidArgument,
            reason: Some("DAPR_PUBSUB_TOPIC_NAME_EMPTY"),
            because: NO_TOPIC.into(),
        },
        BadGrpcPublish {
            what: "a malformed CloudEvent",
            request: grpc_publish(
                "pubsub",
                &topic,
                br#"{"id": "#.to_vec(),
                "application/cloudevents+json",
            ),
            code: tonic::Code::InvalidArgument,
            reason: Some("DAPR_PUBSUB_CLOUD_EVENT_CREATION"),
            because: "cannot create cloudevent: the event is not valid JSON".into(),
        },
        BadGrpcPublish {
            what: "a message over the limit",
            request: over_limit_request,
            code: tonic::Code::ResourceExhausted,
            reason: None,
            because: format!(
                "grpc: received message larger than max ({over_limit_size} vs. {LIMIT})"
            ),
        },
        BadGrpcPublish {
            what: "a message over NATS' max_payload",
            request: grpc_publish(NATS_PUBSUB, &topic, vec![b'x'; 2 << 20], "text/plain"),
            code: tonic::Code::Internal,
            reason: Some("DAPR_PUBSUB_PUBLISH_MESSAGE"),
            because: MAX_PAYLOAD.into(),
        },
    ];
    for case in grpc_cases {
        let Err(status) = client.publish_event(case.request).await else {
            bail!("gRPC, {}: the publish succeeded", case.what);
        };
        ensure!(
            status.code() == case.code,
            "gRPC, {}: {status:?}",
            case.what
        );
        let reason = status.get_details_error_info().map(|info| info.reason);
        if let Some(expected) = case.reason {
            ensure!(
                reason.as_deref() == Some(expected),
                "gRPC, {}: {status:?}",
                case.what
            );
        }
        ensure!(
            status.message().contains(&case.because),
            "gRPC, {}: the message should say `{}`: {status:?}",
            case.what,
            case.because
        );
    }

    // Still serving, and the NATS connection was not lost to the big messages.
    for pubsub in ["pubsub", NATS_PUBSUB] {
        sidecar
            .call(
                Method::POST,
                &format!("/v1.0/publish/{pubsub}/{topic}"),
                Some(&json!({"ok": true})),
            )
            .await?
            .ensure_status(204)?;
    }
    client
        .publish_event(grpc_publish(
            NATS_PUBSUB,
            &topic,
            b"fine".to_vec(),
            "text/plain",
        ))
        .await?;
    sidecar.healthz().await?.ensure_status(204)?;
    Ok(())
}
