//! The publish API over HTTP: what the broker receives (read back through
//! `Broker::pull`), bulk failures per entry, and every error Dapr answers.

use super::*;
use crate::blocks::pubsub::{Broker, BrokerSubscription, IncomingMessage};
use crate::test_util::{FakeBroker, catalog_with_brokers};
use std::time::Duration;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// A sidecar whose pub/sub `ps` is a recording fake; `broken` failed to load.
struct PubSubFixture {
    broker: Arc<FakeBroker>,
    ctx: Arc<ApiContext>,
}

impl PubSubFixture {
    fn new() -> Self {
        let broker = FakeBroker::new();
        let brokers: [(&str, Arc<dyn Broker>); 1] = [("ps", broker.clone())];
        let catalog = catalog_with_brokers(&[], &brokers, &[("broken", "bad yaml")]);
        PubSubFixture {
            broker,
            ctx: context(catalog),
        }
    }

    async fn post(&self, uri: &str, headers: &[(&str, &str)], body: &str) -> Answer {
        send(router(self.ctx.clone()), Method::POST, uri, headers, body).await
    }

    /// What a subscriber of `topic` pulls from the broker.
    async fn pull(&self, topic: &str) -> Vec<IncomingMessage> {
        let subscription = BrokerSubscription {
            topic: topic.into(),
            consumer_group: APP.into(),
            metadata: Vec::new(),
        };
        self.broker
            .pull(&subscription, 100, Duration::ZERO)
            .await
            .unwrap()
    }

    /// The one event a subscriber of `topic` pulls.
    async fn only_event(&self, topic: &str) -> Value {
        let messages = self.pull(topic).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0].content_type, "application/cloudevents+json");
        serde_json::from_slice(&messages[0].data).unwrap()
    }
}

fn context(catalog: Arc<crate::blocks::Catalog>) -> Arc<ApiContext> {
    Arc::new(ApiContext {
        app_id: APP.into(),
        api_token: None,
        catalog,
        publish_signals: Default::default(),
        delivery: Default::default(),
        shutdown: Arc::new(tokio::sync::Notify::new()),
        extended: Default::default(),
    })
}

const JSON: (&str, &str) = ("content-type", "application/json");

#[tokio::test]
async fn publish_wraps_the_body_in_daprs_cloudevent() {
    let f = PubSubFixture::new();
    let answer = f
        .post(
            "/v1.0/publish/ps/orders/eu%2Fwest?metadata.ttlInSeconds=60&metadata.partitionKey=k",
            &[JSON, ("traceparent", TRACEPARENT), ("tracestate", "a=1")],
            r#"{"orderId": 42}"#,
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert!(answer.body.is_empty());
    let event = f.only_event("orders/eu/west").await;
    assert_eq!(event["data"], json!({"orderId": 42}));
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!(event["source"], APP);
    assert_eq!(event["type"], "com.dapr.event.sent");
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["topic"], "orders/eu/west");
    assert_eq!(event["pubsubname"], "ps");
    assert_eq!(event["traceparent"], TRACEPARENT);
    assert_eq!(event["traceid"], TRACEPARENT);
    assert_eq!(event["tracestate"], "a=1");
    assert!(event["expiration"].is_string(), "{event}");
    assert!(event["time"].is_string(), "{event}");
    let (_, message) = f.broker.published().remove(0);
    assert_eq!(message.ttl_seconds, Some(60));
    assert_eq!(
        message.metadata.get("partitionKey").map(String::as_str),
        Some("k")
    );
}

#[tokio::test]
async fn without_a_content_type_dapr_assumes_text() {
    let f = PubSubFixture::new();
    let answer = f.post("/v1.0/publish/ps/t", &[], "plain words").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let event = f.only_event("t").await;
    assert_eq!(event["data"], "plain words");
    assert_eq!(event["datacontenttype"], "text/plain");
    // No trace context in the request: a new one.
    assert_ne!(event["traceparent"], "");
}

#[tokio::test]
async fn an_apps_cloudevent_passes_through() {
    let f = PubSubFixture::new();
    let body = json!({
        "specversion": "1.0", "id": "e-1", "source": "billing", "type": "invoice.paid",
        "datacontenttype": "text/plain", "data": "paid", "custom": "kept"
    });
    let answer = f
        .post(
            "/v1.0/publish/ps/invoices",
            &[("content-type", "application/cloudevents+json")],
            &body.to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let event = f.only_event("invoices").await;
    for kept in ["id", "source", "type", "datacontenttype", "data", "custom"] {
        assert_eq!(event[kept], body[kept], "{kept}");
    }
    assert_eq!(event["pubsubname"], "ps");
    assert_eq!(event["topic"], "invoices");
}

#[tokio::test]
async fn raw_payloads_reach_the_broker_unwrapped() {
    let f = PubSubFixture::new();
    let answer = f
        .post(
            "/v1.0/publish/ps/raw?metadata.rawPayload=true",
            &[("content-type", "text/csv")],
            "a,b\n1,2",
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    let messages = f.pull("raw").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].data, b"a,b\n1,2");
    assert_eq!(messages[0].content_type, "text/csv");
}

#[tokio::test]
async fn bulk_publishes_every_entry_on_both_routes() {
    for route in ["/v1.0-alpha1/publish/bulk/ps/t", "/v1.0/publish/bulk/ps/t"] {
        let f = PubSubFixture::new();
        let body = json!([
            {"entryId": "1", "event": "first", "contentType": "text/plain"},
            {"entryId": "2", "event": {"n": 2}, "contentType": "application/json",
             "metadata": {"ttlInSeconds": "30"}},
            {"entryId": "3", "event": "AAEC", "contentType": "application/octet-stream"},
            {"entryId": "4", "event": {"specversion": "1.0", "id": "x", "source": "s",
             "type": "t", "data": 4}, "contentType": "application/cloudevents+json"}
        ]);
        let answer = f.post(route, &[JSON], &body.to_string()).await;
        assert_eq!(
            answer.status,
            StatusCode::NO_CONTENT,
            "{route}: {}",
            answer.text()
        );
        let events: Vec<Value> = f
            .pull("t")
            .await
            .iter()
            .map(|m| serde_json::from_slice(&m.data).unwrap())
            .collect();
        assert_eq!(events.len(), 4, "{route}");
        assert_eq!(events[0]["data"], "first");
        assert_eq!(events[1]["data"], json!({"n": 2}));
        assert!(events[1]["expiration"].is_string());
        assert_eq!(events[2]["data_base64"], "AAEC");
        assert_eq!(events[3]["id"], "x");
        assert_eq!(events[3]["data"], 4);
    }
}

#[tokio::test]
async fn bulk_answers_500_with_the_entries_that_failed() {
    let f = PubSubFixture::new();
    f.broker
        .refuse_entry(1, ComponentError::Unavailable("stream full".into()));
    let body = json!([
        {"entryId": "a", "event": "one", "contentType": "text/plain"},
        {"entryId": "b", "event": "two", "contentType": "text/plain"}
    ]);
    let answer = f
        .post("/v1.0-alpha1/publish/bulk/ps/t", &[JSON], &body.to_string())
        .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    let json = answer.json();
    assert_eq!(json["errorCode"], "ERR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(
        json["failedEntries"],
        json!([{"entryId": "b", "error": "backend unavailable: stream full"}])
    );
    assert_eq!(f.pull("t").await.len(), 1, "the other entry was published");
}

#[tokio::test]
async fn errors_carry_daprs_codes_and_statuses() {
    let f = PubSubFixture::new();
    let json = "application/json";
    let cloudevent = "application/cloudevents+json";
    // (uri, content type, body, status, error code)
    let cases: Vec<(&str, &str, &str, u16, &str)> = vec![
        ("/v1.0/publish//t", json, "{}", 404, "ERR_PUBSUB_EMPTY"),
        (
            "/v1.0/publish/nope/t",
            json,
            "{}",
            404,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        (
            "/v1.0/publish/broken/t",
            json,
            "{}",
            404,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        ("/v1.0/publish/ps/", json, "{}", 404, "ERR_TOPIC_NAME_EMPTY"),
        ("/v1.0/publish/ps", json, "{}", 404, "ERR_TOPIC_NAME_EMPTY"),
        (
            "/v1.0-alpha1/publish/bulk/ps/",
            json,
            "[]",
            404,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        (
            "/v1.0-alpha1/publish/bulk/ps",
            json,
            "[]",
            404,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        (
            "/v1.0/publish/bulk/ps/",
            json,
            "[]",
            404,
            "ERR_TOPIC_NAME_EMPTY",
        ),
        (
            "/v1.0-alpha1/publish/bulk/nope/",
            json,
            "[]",
            404,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        (
            "/v1.0/publish/ps/t",
            cloudevent,
            "[1]",
            500,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
        (
            "/v1.0/publish/ps/t",
            cloudevent,
            r#"{"specversion": "0.3"}"#,
            500,
            "ERR_PUBSUB_CLOUD_EVENTS_SER",
        ),
        (
            "/v1.0/publish/ps/t?metadata.ttlInSeconds=soon",
            json,
            "{}",
            400,
            "ERR_PUBSUB_REQUEST_METADATA",
        ),
        (
            "/v1.0/publish/ps/t?metadata.rawPayload=maybe",
            json,
            "{}",
            400,
            "ERR_PUBSUB_REQUEST_METADATA",
        ),
        (
            "/v1.0/publish/bulk/nope/t",
            json,
            "[]",
            404,
            "ERR_PUBSUB_NOT_FOUND",
        ),
        (
            "/v1.0/publish/bulk/ps/t",
            json,
            "{}",
            400,
            "ERR_PUBSUB_EVENTS_SER",
        ),
        (
            "/v1.0/publish/bulk/ps/t",
            json,
            r#"[{"entryId": "1", "event": {"a": 1}, "contentType": "text/plain"}]"#,
            400,
            "ERR_PUBSUB_EVENTS_SER",
        ),
        (
            "/v1.0/publish/bulk/ps/t",
            json,
            r#"[{"entryId": "1", "event": "@@", "contentType": "application/octet-stream"}]"#,
            400,
            "ERR_PUBSUB_EVENTS_SER",
        ),
        (
            "/v1.0/publish/bulk/ps/t",
            json,
            r#"[{"event": "x", "contentType": "text/plain"}]"#,
            400,
            "ERR_PUBSUB_EVENTS_SER",
        ),
    ];
    for (uri, content_type, body, status, code) in cases {
        let answer = f.post(uri, &[("content-type", content_type)], body).await;
        assert_eq!(answer.status.as_u16(), status, "{uri}: {}", answer.text());
        assert_eq!(answer.error_code(), code, "{uri}");
        assert!(
            !answer.json()["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{uri}"
        );
    }
    assert!(f.broker.published().is_empty());
}

#[tokio::test]
async fn messages_name_the_component_and_keep_the_components_words() {
    let f = PubSubFixture::new();
    let answer = f.post("/v1.0/publish/nope/t", &[JSON], "{}").await;
    assert_eq!(answer.json()["message"], "pubsub nope is not found");
    let answer = f
        .post(
            "/v1.0/publish/ps/t",
            &[("content-type", "application/cloudevents+json")],
            "not json",
        )
        .await;
    let message = answer.json()["message"].as_str().unwrap().to_owned();
    assert!(
        message.starts_with("cannot create cloudevent: the event is not valid JSON"),
        "{message}"
    );

    f.broker.fail_with(Some(ComponentError::Unavailable(
        "dial tcp 127.0.0.1:6379: refused".into(),
    )));
    let answer = f.post("/v1.0/publish/ps/t", &[JSON], "{}").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.error_code(), "ERR_PUBSUB_PUBLISH_MESSAGE");
    assert_eq!(
        answer.json()["message"],
        "error when publishing to topic t in pubsub ps: backend unavailable: dial tcp 127.0.0.1:6379: refused"
    );
}

#[tokio::test]
async fn without_any_pubsub_publishing_is_not_configured() {
    let ctx = context(catalog(&[("s", FakeStore::full())], &[]));
    let answer = send(router(ctx), Method::POST, "/v1.0/publish/ps/t", &[], "x").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error_code(), "ERR_PUBSUB_NOT_CONFIGURED");
}

#[tokio::test]
async fn oversized_publishes_are_413() {
    let f = PubSubFixture::new();
    let small = router_with_body_limit(f.ctx.clone(), 64);
    let body = "x".repeat(65);
    for uri in ["/v1.0/publish/ps/t", "/v1.0/publish/bulk/ps/t"] {
        let answer = send(small.clone(), Method::POST, uri, &[JSON], &body).await;
        assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE, "{uri}");
        assert_eq!(answer.error_code(), "ERR_BODY_READ");
        assert!(answer.text().contains("64 bytes"), "{}", answer.text());
    }
    assert!(f.broker.published().is_empty());
}
