//! Prometheus metrics end to end: the sidecar serves `/metrics` on its own
//! port (`--metrics-port 0` here, so parallel tests never meet on 9090);
//! what it serves parses with the Prometheus project's own OpenMetrics
//! parser (Python's `prometheus_client`, installed in `.venv` by
//! `scripts/test-deps`), and the counters move by exactly what the test
//! drove: state calls over HTTP and gRPC, pub/sub deliveries the app
//! accepts, retries, drops and dead-letters, and reloads that succeed and
//! fail.
//!
//! The interpreter is `$OUTRIG_TEST_PYTHON`, else `.venv/bin/python` at the
//! repository root.

mod common;

use anyhow::{Context, anyhow, bail, ensure};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use common::{AppId, Launch, Resources, Sidecar, component_yaml, poll_until};
use outrig::api::grpc::proto::runtime::{self, dapr_client::DaprClient};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long deliveries may take to show in the counters (a bound against
/// hanging, not a speed assertion).
const SETTLE_DEADLINE: Duration = Duration::from_secs(30);

/// Parses OpenMetrics text from stdin with the reference parser (strict:
/// types, suffixes, `# EOF`) and prints every sample as JSON.
const PARSE: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
json.dump(samples, sys.stdout)
"#;

fn python() -> PathBuf {
    std::env::var_os("OUTRIG_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"))
}

/// One sample of a scrape.
#[derive(Debug, Deserialize)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
#[derive(Debug)]
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The sum of the samples named `name` that carry all of `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.0.iter().any(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// `GET /metrics`, checked for its content type and parsed.
async fn scrape(sidecar: &Sidecar) -> anyhow::Result<Scrape> {
    let url = sidecar
        .metrics_url()
        .ok_or_else(|| anyhow!("no metrics line in the log:\n{}", sidecar.logs()))?;
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("GET {url}"))?;
    ensure!(response.status() == 200, "GET {url}: {}", response.status());
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        content_type.starts_with("application/openmetrics-text"),
        "GET {url}: content type `{content_type}`"
    );
    let text = response.text().await?;
    let mut parser = tokio::process::Command::new(python())
        .args(["-c", PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (run scripts/test-deps, which installs prometheus-client in .venv, or set OUTRIG_TEST_PYTHON)",
                python().display()
            )
        })?;
    let mut stdin = parser.stdin.take().context("parser stdin")?;
    stdin.write_all(text.as_bytes()).await?;
    drop(stdin);
    let output = parser.wait_with_output().await?;
    ensure!(
        output.status.success(),
        "the OpenMetrics parser refused the scrape: {}\n--- scrape ---\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<Sample> = serde_json::from_slice(&output.stdout)?;
    Ok(Scrape(samples))
}

/// What the app answers, by route: `/flaky` asks for one retry per event,
/// `/risky` for a retry every time (its subscription dead-letters), `/drop`
/// drops.
#[derive(Clone, Default)]
struct AppState {
    subscriptions: Arc<Value>,
    seen: Arc<Mutex<HashSet<String>>>,
    received: Arc<Mutex<Vec<String>>>,
}

async fn start_app(prefix: &str) -> anyhow::Result<(u16, AppState)> {
    async fn subscribe(State(state): State<AppState>) -> axum::Json<Value> {
        axum::Json((*state.subscriptions).clone())
    }
    async fn event(
        State(state): State<AppState>,
        UrlPath(route): UrlPath<String>,
        axum::Json(event): axum::Json<Value>,
    ) -> axum::Json<Value> {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        let first = state
            .seen
            .lock()
            .map(|mut seen| seen.insert(id))
            .unwrap_or(false);
        if let Ok(mut received) = state.received.lock() {
            received.push(route.clone());
        }
        let status = match route.as_str() {
            "flaky" if first => "RETRY",
            "risky" => "RETRY",
            "drop" => "DROP",
            _ => "SUCCESS",
        };
        axum::Json(json!({"status": status}))
    }
    let subscription = |topic: &str, route: &str| json!({"pubsubname": "pubsub", "topic": format!("{prefix}-{topic}"), "route": route});
    let mut risky = subscription("risky", "/risky");
    risky["deadLetterTopic"] = json!(format!("{prefix}-dead"));
    let state = AppState {
        subscriptions: Arc::new(json!([
            subscription("ok", "/ok"),
            subscription("flaky", "/flaky"),
            subscription("drop", "/drop"),
            risky,
            subscription("dead", "/dead"),
        ])),
        ..AppState::default()
    };
    let router = Router::new()
        .route("/dapr/subscribe", get(subscribe))
        .route("/{route}", post(event))
        .with_state(state.clone());
    Ok((common::serve_app(router).await?, state))
}

#[tokio::test]
async fn counters_move_with_the_traffic_and_parse_as_openmetrics() -> anyhow::Result<()> {
    let app = AppId::new("metrics");
    let prefix = common::unique_name("m");
    let resources = Resources::new();
    resources
        .builtin("store", "state.in-memory", &[])
        .builtin("pubsub", "pubsub.in-memory", &[]);
    let (app_port, app_state) = start_app(&prefix).await?;
    let grpc_port = common::free_port()?;
    // No watch: only the reloads the test asks for happen.
    let sidecar = Launch::new(&app)
        .resources(resources.path())
        .grpc_port(grpc_port)
        .args(&["--app-port", &app_port.to_string(), "--no-watch"])
        .start()
        .await?;
    sidecar.wait_until_healthy().await?;
    let before = scrape(&sidecar).await?;

    // State over HTTP: 4 saves, 3 reads, 1 read of a store that does not exist.
    for n in 0..4 {
        sidecar.put("store", &format!("k{n}"), json!(n)).await?;
    }
    for n in 0..3 {
        sidecar
            .get_state("store", &format!("k{n}"))
            .await?
            .ensure_status(200)?;
    }
    sidecar
        .get_state("nostore", "k0")
        .await?
        .ensure_error(400, "ERR_STATE_STORE_NOT_FOUND")?;
    // State over gRPC: 2 reads, 1 of a store that does not exist.
    let mut client = DaprClient::connect(format!("http://127.0.0.1:{grpc_port}")).await?;
    for store in ["store", "store", "nostore"] {
        let _ = client
            .get_state(runtime::GetStateRequest {
                store_name: store.into(),
                key: "k0".into(),
                ..Default::default()
            })
            .await;
    }
    // Pub/sub: 3 accepted, 1 retried once then accepted, 1 dropped, 1
    // dead-lettered (and accepted on the dead-letter topic).
    for (topic, count) in [("ok", 3), ("flaky", 1), ("drop", 1), ("risky", 1)] {
        for n in 0..count {
            sidecar
                .call(
                    Method::POST,
                    &format!("/v1.0/publish/pubsub/{prefix}-{topic}"),
                    Some(&json!({"n": n})),
                )
                .await?
                .ensure_status(204)?;
        }
    }
    // Reloads: one with nothing to change, one with a broken component.
    reload(&sidecar).await?;
    resources.file(
        "broken.yaml",
        &component_yaml(
            "broken",
            "  type: state.nope\n  version: v1\n  metadata: []\n",
        ),
    );
    reload(&sidecar).await?;

    let topic = |name: &str| format!("{prefix}-{name}");
    let expected_deliveries = [
        (topic("ok"), "delivered", 3.0),
        (topic("flaky"), "retried", 1.0),
        (topic("flaky"), "delivered", 1.0),
        (topic("drop"), "dropped", 1.0),
        (topic("risky"), "dead_lettered", 1.0),
        (topic("dead"), "delivered", 1.0),
    ];
    let messages = "outrig_pubsub_messages_total";
    let after = poll_until("the deliveries are counted", SETTLE_DEADLINE, || async {
        let now = scrape(&sidecar).await?;
        let settled = expected_deliveries.iter().all(|(topic, outcome, count)| {
            now.sum(messages, &[("topic", topic), ("outcome", outcome)]) >= *count
        });
        Ok(settled.then_some(now))
    })
    .await
    .with_context(|| {
        format!(
            "the app received {:?}; outrig's output:\n{}",
            app_state
                .received
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
            sidecar.logs()
        )
    })?;

    let delta =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let mut wrong = Vec::new();
    let mut expect = |what: String, got: f64, want: f64| {
        if got != want {
            wrong.push(format!("{what}: {got}, expected {want}"));
        }
    };
    let http = "outrig_http_server_requests_total";
    let save = [
        ("api", "state"),
        ("method", "POST"),
        ("route", "/v1.0/state/{store}"),
    ];
    let read = [
        ("api", "state"),
        ("method", "GET"),
        ("route", "/v1.0/state/{store}/{key}"),
    ];
    expect(
        "HTTP saves".into(),
        delta(http, &[&save[..], &[("status", "2xx")]].concat()),
        4.0,
    );
    expect(
        "HTTP reads".into(),
        delta(http, &[&read[..], &[("status", "2xx")]].concat()),
        3.0,
    );
    expect(
        "HTTP bad reads".into(),
        delta(http, &[&read[..], &[("status", "4xx")]].concat()),
        1.0,
    );
    expect(
        "HTTP save latencies".into(),
        delta("outrig_http_server_request_duration_seconds_count", &save),
        4.0,
    );
    let grpc = "outrig_grpc_server_requests_total";
    let get_state = [("api", "state"), ("method", "GetState")];
    expect(
        "gRPC reads".into(),
        delta(grpc, &[&get_state[..], &[("code", "OK")]].concat()),
        2.0,
    );
    expect("gRPC reads, any code".into(), delta(grpc, &get_state), 3.0);
    let calls = "outrig_component_call_duration_seconds_count";
    // Each gRPC read of `store` is a `get` call too.
    expect(
        "component get calls".into(),
        delta(calls, &[("component", "store"), ("operation", "get")]),
        5.0,
    );
    expect(
        "component set calls".into(),
        delta(calls, &[("component", "store"), ("operation", "set")]),
        4.0,
    );
    for (topic, outcome, count) in &expected_deliveries {
        let labels = [
            ("pubsub", "pubsub"),
            ("topic", topic.as_str()),
            ("outcome", *outcome),
        ];
        expect(
            format!("{topic} {outcome}"),
            after.sum(messages, &labels),
            *count,
        );
    }
    expect(
        "successful reloads".into(),
        delta("outrig_reload_total", &[("result", "success")]),
        1.0,
    );
    expect(
        "failed reloads".into(),
        delta("outrig_reload_total", &[("result", "failure")]),
        1.0,
    );
    expect(
        "load failures of `broken`".into(),
        after.sum(
            "outrig_component_load_failures_total",
            &[("component", "broken")],
        ),
        1.0,
    );
    expect(
        "store traps".into(),
        after.sum(
            "outrig_component_call_failures_total",
            &[("component", "store"), ("kind", "trap")],
        ),
        0.0,
    );
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));

    ensure!(
        after.has(
            "outrig_component_call_failures_total",
            &[("component", "store"), ("kind", "memory_limit")]
        ),
        "no zero series of memory limit hits for `store`"
    );
    let instances = after.sum("outrig_pool_instances", &[("component", "store")]);
    ensure!(instances >= 1.0, "`store` has {instances} instances");
    ensure!(
        after.sum("outrig_pool_max_instances", &[("component", "store")]) >= instances,
        "more instances than the pool allows"
    );
    for process in ["process_resident_memory_bytes", "process_cpu_seconds_total"] {
        ensure!(after.sum(process, &[]) > 0.0, "{process} is not positive");
    }
    Ok(())
}

#[tokio::test]
async fn traps_timeouts_and_memory_limit_hits_are_counted_apart() -> anyhow::Result<()> {
    let wasm = test_component(outrig::components::builtin::TEST_HOSTILE_PATH)?;
    let app = AppId::new("metrics-hostile");
    let resources = Resources::new();
    resources.wasm(
        "hostile",
        "state.hostile",
        wasm,
        None,
        &[
            ("memoryMiB", "32"),
            ("timeoutMs", "1000"),
            ("maxInstances", "2"),
        ],
    );
    let sidecar = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;
    let before = scrape(&sidecar).await?;
    // Each misbehaviour fails its call and costs its instance.
    for key in ["trap", "loop", "bomb", "trap"] {
        sidecar
            .get_state("hostile", key)
            .await?
            .ensure_error(500, "ERR_STATE_GET")?;
    }
    let after = scrape(&sidecar).await?;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let failures = "outrig_component_call_failures_total";
    let counted: Vec<(&str, f64)> = ["trap", "timeout", "memory_limit", "overloaded", "start"]
        .into_iter()
        .map(|kind| {
            (
                kind,
                delta(failures, &[("component", "hostile"), ("kind", kind)]),
            )
        })
        .collect();
    ensure!(
        counted
            == [
                ("trap", 2.0),
                ("timeout", 1.0),
                ("memory_limit", 1.0),
                ("overloaded", 0.0),
                ("start", 0.0)
            ],
        "failures by kind: {counted:?}"
    );
    let discards = delta("outrig_pool_discards_total", &[("component", "hostile")]);
    ensure!(
        discards == 4.0,
        "{discards} instances discarded, expected 4"
    );
    Ok(())
}

#[tokio::test]
async fn counters_a_component_adds_to_are_exported() -> anyhow::Result<()> {
    let wasm = test_component(outrig::components::builtin::TEST_VERSIONED_PATH)?;
    let app = AppId::new("metrics-guest");
    let resources = Resources::new();
    // test-versioned counts its reads as `gets{version}`.
    let spec = format!(
        "  type: state.versioned\n  version: v1\n  metadata:\n  - name: version\n    value: \"v7\"\n  wasm:\n    path: {}\n",
        json!(wasm.display().to_string())
    );
    resources.file("versioned.yaml", &component_yaml("versioned", &spec));
    let sidecar = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;
    for key in ["a", "b", "c"] {
        sidecar
            .get_state("versioned", key)
            .await?
            .ensure_status(200)?;
    }
    let gets = scrape(&sidecar).await?.sum(
        "outrig_component_counter_total",
        &[
            ("component", "versioned"),
            ("metric", "gets"),
            ("version", "v7"),
        ],
    );
    ensure!(
        gets == 3.0,
        "the component counted {gets} reads, expected 3"
    );
    Ok(())
}

/// The path of a test-only component, which must have been built.
fn test_component(path: &'static str) -> anyhow::Result<&'static std::path::Path> {
    let wasm = std::path::Path::new(path);
    ensure!(wasm.is_file(), "the test component is not built at {path}");
    Ok(wasm)
}

/// `POST /v1.0/outrig/reload`.
async fn reload(sidecar: &Sidecar) -> anyhow::Result<()> {
    sidecar
        .call(Method::POST, "/v1.0/outrig/reload", None)
        .await?
        .ensure_status(200)?;
    Ok(())
}

#[tokio::test]
async fn metrics_can_be_turned_off() -> anyhow::Result<()> {
    let app = AppId::new("metrics-off");
    let sidecar = Launch::new(&app)
        .args(&["--enable-metrics=false"])
        .start()
        .await?;
    sidecar.healthz().await?.ensure_status(204)?;
    if let Some(url) = sidecar.metrics_url() {
        bail!("metrics are served at {url} although turned off");
    }
    Ok(())
}

#[tokio::test]
async fn a_taken_metrics_port_stops_the_start() -> anyhow::Result<()> {
    let app = AppId::new("metrics-taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port();
    let (status, output) = Launch::new(&app).metrics_port(port).run_to_exit().await?;
    ensure!(
        !status.success(),
        "outrig started on a taken metrics port:\n{output}"
    );
    ensure!(
        output.contains(&format!("127.0.0.1:{port}")) && output.contains("--metrics-port"),
        "the error does not name the port and the flag:\n{output}"
    );
    Ok(())
}
