//! Pub/sub end to end, for every built-in broker: events published through
//! the sidecar's HTTP API reach an HTTP app in the test through its
//! programmatic subscriptions, and the app's answers mean what they mean in
//! Dapr (RETRY redelivers, DROP dead-letters), with routing rules, raw
//! payloads, bulk subscribe and declarative `Subscription` resources; gRPC
//! apps get the same through `OnTopicEvent`. Every run uses topics of its
//! own.

mod common;

use anyhow::{Context, ensure};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use common::brokers::{Broker, BrokerCleanup};
use common::{AppId, Launch, Resources, Sidecar};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long an event may take to arrive before the test gives up (a bound
/// against hanging, not a speed assertion).
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(30);

/// What the app in the test received, by route.
#[derive(Default)]
struct Inbox {
    events: Mutex<Vec<(String, Value)>>,
}

impl Inbox {
    fn on(&self, route: &str) -> Vec<Value> {
        self.events
            .lock()
            .map(|events| {
                events
                    .iter()
                    .filter(|(r, _)| r == route)
                    .map(|(_, e)| e.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The subscriptions the app declares, on topics named after `prefix`.
fn subscriptions(prefix: &str) -> Value {
    json!([
        {"pubsubname": "pubsub", "topic": format!("{prefix}-orders"),
         "routes": {"rules": [{"match": "event.type == \"special\"", "path": "/special"}],
                    "default": "/orders"}},
        {"pubsubname": "pubsub", "topic": format!("{prefix}-flaky"), "route": "/flaky"},
        {"pubsubname": "pubsub", "topic": format!("{prefix}-risky"), "route": "/risky",
         "deadLetterTopic": format!("{prefix}-dead")},
        {"pubsubname": "pubsub", "topic": format!("{prefix}-dead"), "route": "/dead"},
        {"pubsubname": "pubsub", "topic": format!("{prefix}-raw"), "route": "/raw",
         "metadata": {"rawPayload": "true"}},
        {"pubsubname": "pubsub", "topic": format!("{prefix}-bulk"), "route": "/bulk",
         "bulkSubscribe": {"enabled": true, "maxMessagesCount": 10, "maxAwaitDurationMs": 100}}
    ])
}

struct App {
    inbox: Arc<Inbox>,
    port: u16,
}

/// Starts the app: it records every event; `/flaky` asks for a retry the
/// first time it sees an event, `/stubborn` every time, `/risky` drops
/// everything, `/bulk` takes every entry of a batch.
async fn start_app(prefix: &str) -> anyhow::Result<App> {
    #[derive(Clone)]
    struct AppState {
        inbox: Arc<Inbox>,
        subscriptions: Value,
    }
    async fn subscribe(State(state): State<AppState>) -> axum::Json<Value> {
        axum::Json(state.subscriptions.clone())
    }
    async fn event(
        State(state): State<AppState>,
        Path(route): Path<String>,
        body: axum::body::Bytes,
    ) -> (StatusCode, axum::Json<Value>) {
        let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let route = format!("/{route}");
        let bulk_entries = event["entries"].as_array().cloned().unwrap_or_default();
        let seen_before = state.inbox.on(&route).contains(&event);
        if let Ok(mut events) = state.inbox.events.lock() {
            events.push((route.clone(), event));
        }
        if route == "/bulk" {
            // A bulk answer settles each entry by its id; one it leaves out
            // would be retried.
            let statuses: Vec<Value> = bulk_entries
                .iter()
                .map(|entry| json!({"entryId": entry["entryId"], "status": "SUCCESS"}))
                .collect();
            return (StatusCode::OK, axum::Json(json!({"statuses": statuses})));
        }
        let status = match route.as_str() {
            "/flaky" if !seen_before => "RETRY",
            "/stubborn" => "RETRY",
            "/risky" => "DROP",
            _ => "SUCCESS",
        };
        (StatusCode::OK, axum::Json(json!({"status": status})))
    }
    let state = AppState {
        inbox: Arc::new(Inbox::default()),
        subscriptions: subscriptions(prefix),
    };
    let inbox = Arc::clone(&state.inbox);
    let router = Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/{route}", post(event))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(App { inbox, port })
}

async fn publish(
    sidecar: &Sidecar,
    topic: &str,
    content_type: &str,
    body: &str,
    query: &str,
) -> anyhow::Result<()> {
    let path = format!("/v1.0/publish/pubsub/{topic}{query}");
    let request = sidecar
        .request(Method::POST, &path)
        .header("content-type", content_type)
        .body(body.to_owned());
    sidecar
        .send(&format!("POST {path}"), request)
        .await?
        .ensure_status(204)?;
    Ok(())
}

/// Starts the sidecar of `app_id` for the app on `app_port` speaking
/// `protocol`, and waits until it is healthy: the app's subscriptions are
/// then in place at the broker, so nothing published from now on is lost,
/// whatever the broker keeps for subscribers yet to come.
async fn start_sidecar(
    app_id: &AppId,
    resources: &Resources,
    app_port: u16,
    protocol: &str,
) -> anyhow::Result<Sidecar> {
    let sidecar = Launch::new(app_id)
        .resources(resources.path())
        .args(&[
            "--app-port",
            &app_port.to_string(),
            "--app-protocol",
            protocol,
        ])
        .start()
        .await?;
    sidecar.wait_until_healthy().await?;
    Ok(sidecar)
}

/// Waits until `route` received at least `count` events, returning them.
async fn arrived(
    sidecar: &Sidecar,
    inbox: &Inbox,
    route: &str,
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    let started = std::time::Instant::now();
    loop {
        let events = inbox.on(route);
        if events.len() >= count {
            return Ok(events);
        }
        ensure!(
            started.elapsed() < ARRIVAL_DEADLINE,
            "{route} got {} of {count} events; outrig's output:\n{}",
            events.len(),
            sidecar.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The topics a run subscribes the app to, after its prefix.
const TOPICS: [&str; 6] = ["orders", "flaky", "risky", "dead", "raw", "bulk"];

/// Removes what a run of `component` left at its broker (the run's topics
/// and the app's consumer group) once the run's sidecar is gone; nothing
/// for the in-process broker. Bind it before the sidecar.
fn broker_cleanup(component: &str, prefix: &str, app_id: &AppId) -> Option<BrokerCleanup> {
    let broker = Broker::for_component(component)?;
    let cleanup = BrokerCleanup::new(broker).group(app_id.as_str(), None);
    Some(TOPICS.iter().fold(cleanup, |cleanup, topic| {
        cleanup.topic(&format!("{prefix}-{topic}"))
    }))
}

/// The metadata API lists the app's subscriptions as Dapr's does: routes
/// as rules (the default last, without `match`), dead-letter topic, type.
async fn check_listed_subscriptions(sidecar: &Sidecar, prefix: &str) -> anyhow::Result<()> {
    let metadata = sidecar.metadata().await?;
    let listed = metadata["subscriptions"]
        .as_array()
        .context("subscriptions")?;
    ensure!(listed.len() == 6, "{metadata}");
    let find = |topic: &str| {
        listed
            .iter()
            .find(|s| s["topic"] == format!("{prefix}-{topic}"))
            .cloned()
            .unwrap_or_default()
    };
    let orders = find("orders");
    ensure!(
        orders["pubsubname"] == "pubsub"
            && orders["type"] == "PROGRAMMATIC"
            && orders["rules"]
                == json!([{"match": "event.type == \"special\"", "path": "/special"},
                          {"path": "/orders"}]),
        "{orders}"
    );
    ensure!(
        find("risky")["deadLetterTopic"] == format!("{prefix}-dead"),
        "{metadata}"
    );
    ensure!(
        find("raw")["metadata"] == json!({"rawPayload": "true"}),
        "{metadata}"
    );
    Ok(())
}

/// The whole scenario against the pub/sub component `pubsub` of `component`
/// type with `metadata`.
async fn scenario(component: &str, metadata: &[(&str, &str)]) -> anyhow::Result<()> {
    let app_id = AppId::new("pubsub-e2e");
    let prefix = common::unique_name("outrig-e2e");
    let _cleanup = broker_cleanup(component, &prefix, &app_id);
    let app = start_app(&prefix).await?;
    let resources = Resources::new();
    resources.builtin("pubsub", component, metadata);
    let sidecar = start_sidecar(&app_id, &resources, app.port, "http").await?;
    check_listed_subscriptions(&sidecar, &prefix).await?;
    let inbox = &app.inbox;

    // Plain JSON and text payloads become CloudEvents on the default route.
    publish(
        &sidecar,
        &format!("{prefix}-orders"),
        "application/json",
        r#"{"n":1}"#,
        "",
    )
    .await?;
    publish(
        &sidecar,
        &format!("{prefix}-orders"),
        "text/plain",
        "two",
        "",
    )
    .await?;
    let orders = arrived(&sidecar, inbox, "/orders", 2).await?;
    let data: Vec<&Value> = orders.iter().map(|e| &e["data"]).collect();
    ensure!(
        data.contains(&&json!({"n": 1})) && data.contains(&&json!("two")),
        "{orders:?}"
    );
    let first = &orders[0];
    ensure!(
        first["specversion"] == "1.0" && first["pubsubname"] == "pubsub",
        "{first}"
    );
    ensure!(first["source"] == app_id.as_str(), "{first}");

    // A routing rule picks its route by the event's type.
    let special = json!({"specversion": "1.0", "id": "s-1", "source": "test", "type": "special",
                         "datacontenttype": "application/json", "data": {"vip": true}});
    publish(
        &sidecar,
        &format!("{prefix}-orders"),
        "application/cloudevents+json",
        &special.to_string(),
        "",
    )
    .await?;
    let routed = arrived(&sidecar, inbox, "/special", 1).await?;
    ensure!(
        routed[0]["id"] == "s-1" && routed[0]["data"]["vip"] == true,
        "{routed:?}"
    );

    // RETRY: the same event comes again.
    publish(
        &sidecar,
        &format!("{prefix}-flaky"),
        "application/json",
        r#"{"again":true}"#,
        "",
    )
    .await?;
    let flaky = arrived(&sidecar, inbox, "/flaky", 2).await?;
    ensure!(
        flaky[0]["id"] == flaky[1]["id"],
        "a retry redelivers the same event: {flaky:?}"
    );

    // DROP with a dead-letter topic: the event lands there.
    publish(
        &sidecar,
        &format!("{prefix}-risky"),
        "application/json",
        r#"{"doomed":1}"#,
        "",
    )
    .await?;
    let dead = arrived(&sidecar, inbox, "/dead", 1).await?;
    ensure!(dead[0]["data"] == json!({"doomed": 1}), "{dead:?}");

    // A raw payload arrives wrapped, byte for byte.
    publish(
        &sidecar,
        &format!("{prefix}-raw"),
        "application/octet-stream",
        "raw-bytes",
        "?metadata.rawPayload=true",
    )
    .await?;
    let raw = arrived(&sidecar, inbox, "/raw", 1).await?;
    let encoded = raw[0]["data_base64"].as_str().context("data_base64")?;
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded)?;
    ensure!(decoded == b"raw-bytes", "{raw:?}");

    // Bulk subscribe: batches of entries, each settled.
    for n in 0..15 {
        publish(
            &sidecar,
            &format!("{prefix}-bulk"),
            "application/json",
            &format!(r#"{{"n":{n}}}"#),
            "",
        )
        .await?;
    }
    let mut delivered = 0;
    let started = std::time::Instant::now();
    while delivered < 15 {
        let batches = inbox.on("/bulk");
        delivered = batches
            .iter()
            .map(|b| b["entries"].as_array().map_or(0, Vec::len))
            .sum();
        ensure!(
            started.elapsed() < ARRIVAL_DEADLINE,
            "bulk: {delivered} of 15; {}",
            sidecar.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let batches = inbox.on("/bulk");
    ensure!(
        batches
            .iter()
            .all(|b| b["entries"].as_array().is_some_and(|e| e.len() <= 10)),
        "no batch over maxMessagesCount: {batches:?}"
    );
    let numbers: Vec<Vec<&Value>> = batches
        .iter()
        .map(|b| {
            b["entries"]
                .as_array()
                .map(|entries| entries.iter().map(|e| &e["event"]["data"]["n"]).collect())
                .unwrap_or_default()
        })
        .collect();
    ensure!(
        delivered == 15,
        "each bulk event once, not {delivered}: batches of n {numbers:?}; outrig's output:\n{}",
        sidecar.logs()
    );
    Ok(())
}

/// A `Subscription` resource (v2alpha1, scoped to the app) is delivered
/// beside the app's own subscriptions, with its routing rule, and listed as
/// declarative; one scoped to another app is not.
#[tokio::test]
async fn declarative_subscriptions_are_delivered_within_their_scopes() -> anyhow::Result<()> {
    let app_id = AppId::new("pubsub-declared");
    let prefix = common::unique_name("outrig-e2e");
    let app = start_app(&prefix).await?;
    let resources = Resources::new();
    resources.builtin("pubsub", "pubsub.in-memory", &[]);
    let declared = format!("{prefix}-declared");
    let subscription = |name: &str, topic: &str, scope: &str| {
        format!(
            "apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: {name}
spec:
  pubsubname: pubsub
  topic: {topic}
  routes:
    rules:
      - match: event.data.vip == true
        path: /vip
    default: /declared
scopes:
  - {scope}
"
        )
    };
    resources.file(
        "mine.yaml",
        &subscription("mine", &declared, app_id.as_str()),
    );
    resources.file(
        "theirs.yaml",
        &subscription("theirs", &format!("{prefix}-theirs"), "another-app"),
    );
    let sidecar = start_sidecar(&app_id, &resources, app.port, "http").await?;
    let metadata = sidecar.metadata().await?;
    let listed = metadata["subscriptions"]
        .as_array()
        .context("subscriptions")?;
    let mine = listed
        .iter()
        .find(|s| s["topic"] == declared.as_str())
        .with_context(|| format!("{metadata}"))?;
    ensure!(mine["type"] == "DECLARATIVE", "{mine}");
    ensure!(
        !listed
            .iter()
            .any(|s| s["topic"] == format!("{prefix}-theirs")),
        "{metadata}"
    );
    publish(
        &sidecar,
        &declared,
        "application/json",
        r#"{"vip":true}"#,
        "",
    )
    .await?;
    publish(
        &sidecar,
        &declared,
        "application/json",
        r#"{"vip":false}"#,
        "",
    )
    .await?;
    let vip = arrived(&sidecar, &app.inbox, "/vip", 1).await?;
    let plain = arrived(&sidecar, &app.inbox, "/declared", 1).await?;
    ensure!(
        vip[0]["data"]["vip"] == true && plain[0]["data"]["vip"] == false,
        "{vip:?} {plain:?}"
    );
    Ok(())
}

/// A `Subscription` added, changed and removed while the sidecar runs
/// applies at the next reload, without a restart: delivery starts, moves to
/// the new route, and stops, while the app's own subscriptions run on.
#[tokio::test]
async fn declarative_subscriptions_follow_reloads() -> anyhow::Result<()> {
    let app_id = AppId::new("pubsub-live");
    let prefix = common::unique_name("outrig-e2e");
    let app = start_app(&prefix).await?;
    let resources = Resources::new();
    resources.builtin("pubsub", "pubsub.in-memory", &[]);
    let topic = format!("{prefix}-live");
    let subscription = |route: &str| {
        format!(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: live\nspec:\n  pubsubname: pubsub\n  topic: {topic}\n  routes:\n    default: {route}\n"
        )
    };
    let sidecar = Launch::new(&app_id)
        .resources(resources.path())
        .args(&["--app-port", &app.port.to_string(), "--no-watch"])
        .start()
        .await?;
    sidecar.wait_until_healthy().await?;
    // Reloads, then waits until the metadata lists `route` for the topic
    // (none: lists nothing for it).
    let reload_until_listed = |route: Option<&'static str>| {
        let sidecar = &sidecar;
        let topic = &topic;
        async move {
            let report = sidecar
                .call(Method::POST, "/v1.0/outrig/reload", None)
                .await?
                .ensure_status(200)?
                .json()?;
            ensure!(report["deliveryChanged"] == true, "{report}");
            let wanted = route.map(|path| json!([{"path": path}]));
            common::poll_until("the subscription listed", ARRIVAL_DEADLINE, || async {
                let metadata = sidecar.metadata().await?;
                let listed = metadata["subscriptions"]
                    .as_array()
                    .and_then(|all| all.iter().find(|s| s["topic"] == topic.as_str()))
                    .map(|s| s["rules"].clone());
                Ok((listed == wanted).then_some(()))
            })
            .await
        }
    };

    resources.file("live.yaml", &subscription("/first"));
    reload_until_listed(Some("/first")).await?;
    publish(&sidecar, &topic, "application/json", r#"{"n":1}"#, "").await?;
    let first = arrived(&sidecar, &app.inbox, "/first", 1).await?;
    ensure!(first[0]["data"]["n"] == 1, "{first:?}");

    resources.file("live.yaml", &subscription("/second"));
    reload_until_listed(Some("/second")).await?;
    publish(&sidecar, &topic, "application/json", r#"{"n":2}"#, "").await?;
    let second = arrived(&sidecar, &app.inbox, "/second", 1).await?;
    ensure!(second[0]["data"]["n"] == 2, "{second:?}");

    std::fs::remove_file(resources.path().join("live.yaml"))?;
    reload_until_listed(None).await?;
    publish(&sidecar, &topic, "application/json", r#"{"n":3}"#, "").await?;
    // The app's own subscriptions still deliver, and the removed one no
    // longer does: by the time an event published after the one to the
    // removed subscription arrives, that one would have been delivered too.
    publish(
        &sidecar,
        &format!("{prefix}-orders"),
        "application/json",
        r#"{"n":4}"#,
        "",
    )
    .await?;
    arrived(&sidecar, &app.inbox, "/orders", 1).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = (app.inbox.on("/first").len(), app.inbox.on("/second").len());
    ensure!(after == (1, 1), "delivered after removal: {after:?}");
    Ok(())
}

/// A component's inbound retry policy (`Resiliency`) paces the retries of
/// an event the app keeps refusing, and once `maxRetries` are spent the
/// event goes to the subscription's dead-letter topic.
#[tokio::test]
async fn resiliency_retries_then_dead_letters() -> anyhow::Result<()> {
    let app_id = AppId::new("pubsub-resiliency");
    let prefix = common::unique_name("outrig-e2e");
    let app = start_app(&prefix).await?;
    let resources = Resources::new();
    resources.builtin("pubsub", "pubsub.in-memory", &[]);
    let stubborn = format!("{prefix}-stubborn");
    resources.file(
        "stubborn.yaml",
        &format!(
            "apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: stubborn
spec:
  pubsubname: pubsub
  topic: {stubborn}
  route: /stubborn
  deadLetterTopic: {prefix}-dead
"
        ),
    );
    resources.file(
        "resiliency.yaml",
        "apiVersion: dapr.io/v1alpha1
kind: Resiliency
metadata:
  name: retries
spec:
  policies:
    retries:
      twice:
        policy: constant
        duration: 20ms
        maxRetries: 2
  targets:
    components:
      pubsub:
        inbound:
          retry: twice
",
    );
    let sidecar = start_sidecar(&app_id, &resources, app.port, "http").await?;
    publish(
        &sidecar,
        &stubborn,
        "application/json",
        r#"{"no":"way"}"#,
        "",
    )
    .await?;
    let dead = arrived(&sidecar, &app.inbox, "/dead", 1).await?;
    let tries = app.inbox.on("/stubborn");
    ensure!(
        tries.len() == 3 && tries.iter().all(|e| e["id"] == dead[0]["id"]),
        "the first delivery and two retries, then the dead letter: {tries:?} {dead:?}; outrig's output:\n{}",
        sidecar.logs()
    );
    Ok(())
}

/// Clean sessions, so the broker forgets them when the sidecar goes (the
/// persistent ones are the fault tests' concern).
const MQTT: &[(&str, &str)] = &[("url", "tcp://127.0.0.1:1883"), ("cleanSession", "true")];

const NATS: &[(&str, &str)] = &[("natsURL", common::NATS_URL)];

const RABBITMQ: &[(&str, &str)] = &[("connectionString", "amqp://guest:guest@127.0.0.1:5672")];

const REDIS: &[(&str, &str)] = &[("redisHost", "127.0.0.1:6379")];

/// A gRPC app: subscribes to one topic through `ListTopicSubscriptions`
/// and records what `OnTopicEvent` brings, asking for one retry of the
/// first event it sees.
#[derive(Clone)]
struct GrpcApp {
    topic: String,
    received: Arc<Mutex<Vec<TopicEventRequest>>>,
}

use outrig::api::grpc::proto::runtime::{
    self, TopicEventRequest, TopicEventResponse, app_callback_server,
};
use tonic::{Response, Status};

#[tonic::async_trait]
impl app_callback_server::AppCallback for GrpcApp {
    async fn on_invoke(
        &self,
        _: tonic::Request<outrig::api::grpc::proto::common::InvokeRequest>,
    ) -> Result<Response<outrig::api::grpc::proto::common::InvokeResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn list_topic_subscriptions(
        &self,
        _: tonic::Request<()>,
    ) -> Result<Response<runtime::ListTopicSubscriptionsResponse>, Status> {
        Ok(Response::new(runtime::ListTopicSubscriptionsResponse {
            subscriptions: vec![runtime::TopicSubscription {
                pubsub_name: "pubsub".into(),
                topic: self.topic.clone(),
                routes: Some(runtime::TopicRoutes {
                    rules: Vec::new(),
                    default: "/grpc-orders".into(),
                }),
                ..Default::default()
            }],
        }))
    }

    async fn on_topic_event(
        &self,
        request: tonic::Request<TopicEventRequest>,
    ) -> Result<Response<TopicEventResponse>, Status> {
        let event = request.into_inner();
        let mut received = self
            .received
            .lock()
            .map_err(|_| Status::internal("poisoned"))?;
        let first_time = !received.iter().any(|e| e.id == event.id);
        received.push(event);
        // RETRY = 1, SUCCESS = 0.
        let status = if first_time { 1 } else { 0 };
        Ok(Response::new(TopicEventResponse { status }))
    }

    async fn list_input_bindings(
        &self,
        _: tonic::Request<()>,
    ) -> Result<Response<runtime::ListInputBindingsResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_binding_event(
        &self,
        _: tonic::Request<runtime::BindingEventRequest>,
    ) -> Result<Response<runtime::BindingEventResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_bulk_topic_event(
        &self,
        _: tonic::Request<runtime::TopicEventBulkRequest>,
    ) -> Result<Response<runtime::TopicEventBulkResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }

    async fn on_job_event(
        &self,
        _: tonic::Request<runtime::JobEventRequest>,
    ) -> Result<Response<runtime::JobEventResponse>, Status> {
        Err(Status::unimplemented("not in this test app"))
    }
}

/// Publish over HTTP, delivered to a gRPC app through `OnTopicEvent`, with
/// the CloudEvent's parts in the request's fields and a RETRY honoured.
async fn grpc_scenario(component: &str, metadata: &[(&str, &str)]) -> anyhow::Result<()> {
    let app_id = AppId::new("pubsub-grpc");
    let prefix = common::unique_name("outrig-e2e");
    let _cleanup = broker_cleanup(component, &prefix, &app_id);
    let topic = format!("{prefix}-orders");
    let app = GrpcApp {
        topic: topic.clone(),
        received: Arc::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let service = app_callback_server::AppCallbackServer::new(app.clone());
    tokio::spawn(async move {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let _ = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await;
    });
    let resources = Resources::new();
    resources.builtin("pubsub", component, metadata);
    let sidecar = start_sidecar(&app_id, &resources, port, "grpc").await?;
    publish(&sidecar, &topic, "application/json", r#"{"qty":2}"#, "").await?;
    let started = std::time::Instant::now();
    let received = loop {
        let received = app.received.lock().map(|r| r.clone()).unwrap_or_default();
        if received.len() >= 2 {
            break received;
        }
        ensure!(
            started.elapsed() < ARRIVAL_DEADLINE,
            "the gRPC app got {} of 2 deliveries; outrig's output:\n{}",
            received.len(),
            sidecar.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let event = &received[0];
    ensure!(
        received[1].id == event.id,
        "the retry redelivers the same event"
    );
    ensure!(
        event.topic == topic && event.pubsub_name == "pubsub",
        "{event:?}"
    );
    ensure!(
        event.path == "/grpc-orders" && event.spec_version == "1.0",
        "{event:?}"
    );
    ensure!(event.data_content_type == "application/json", "{event:?}");
    let data: Value = serde_json::from_slice(&event.data)?;
    ensure!(data == json!({"qty": 2}), "{data}");
    Ok(())
}

/// One test per broker and app protocol, so that they run in parallel and
/// a failure names both.
macro_rules! every_broker {
    ($($test:ident: $component:literal, $metadata:expr;)*) => {
        mod http_app {
            $(
                #[tokio::test]
                async fn $test() -> anyhow::Result<()> {
                    super::scenario($component, $metadata).await
                }
            )*
        }
        mod grpc_app {
            $(
                #[tokio::test]
                async fn $test() -> anyhow::Result<()> {
                    super::grpc_scenario($component, $metadata).await
                }
            )*
        }
    };
}

every_broker! {
    in_memory: "pubsub.in-memory", &[];
    redis_streams: "pubsub.redis", super::REDIS;
    nats_jetstream: "pubsub.jetstream", super::NATS;
    mqtt: "pubsub.mqtt3", super::MQTT;
    rabbitmq: "pubsub.rabbitmq", super::RABBITMQ;
}
