//! End-to-end: the unmodified Dapr Python SDK (`dapr==1.19.0`, installed in
//! a virtualenv by `.ci/run`) talks to the real `outrig` binary over gRPC.
//!
//! Each program in `tests/python/` runs as the app under `outrig run` (see
//! `tests/sdk`), once per backend: the embedded default store (redb), the
//! in-memory store, and Redis on 127.0.0.1:6379. A program passes when it
//! exits 0 and prints its `all checks passed` line.
//!
//! Pub/sub runs the other way round (see [`PubSubRun`]): a gRPC app written
//! with the SDK's `dapr.ext.grpc.App` subscribes, outrig delivers to it, and
//! a `DaprClient` program publishes; the in-memory default and Redis serve.
//!
//! The interpreter is `$OUTRIG_TEST_PYTHON`, else `.venv/bin/python` at the
//! repository root. Without it the tests are skipped with a message, except
//! under CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sdk;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, REDIS_HOST, Resources, Sidecar};
use sdk::{AppRun, BACKENDS, Backend, repo_root};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tempfile::TempDir;
use tokio::process::{Child, Command};

/// The virtualenv's interpreter, or `None` when the tests may be skipped.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("OUTRIG_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    sdk::required(
        path,
        "Python with the Dapr SDK",
        "run `scripts/test-deps` at the repository root (it installs \
         `dapr[grpc]==1.19.0` in .venv), or set OUTRIG_TEST_PYTHON",
    )
}

/// Runs `tests/python/<program>.py` against every backend.
async fn run_program(program: &str) {
    let Some(python) = python() else { return };
    let script = repo_root()
        .join("tests/python")
        .join(format!("{program}.py"));
    let name = format!("py-{}", program.replace('_', "-"));
    AppRun {
        name: &name,
        app: vec![python.into(), script.into()],
        env: vec![("PYTHONDONTWRITEBYTECODE", "1")],
        success: "all checks passed",
    }
    .against(&BACKENDS)
    .await;
}

#[tokio::test]
async fn save_get_delete_with_etags_options_and_ttl() {
    run_program("state_crud").await;
}

#[tokio::test]
async fn bulk_save_and_bulk_get() {
    run_program("state_bulk").await;
}

#[tokio::test]
async fn transactions_are_atomic() {
    run_program("state_transaction").await;
}

#[tokio::test]
async fn query_where_supported_and_dapr_error_where_not() {
    run_program("state_query").await;
}

#[tokio::test]
async fn metadata_get_and_set() {
    run_program("metadata").await;
}

#[tokio::test]
async fn errors_raise_what_dapr_raises() {
    run_program("errors").await;
}

#[tokio::test]
async fn http_and_grpc_return_identical_data() {
    run_program("http_grpc_parity").await;
}

/// With `DAPR_API_TOKEN` set, the SDK (which sends it) is served and a call
/// without it is refused UNAUTHENTICATED.
#[tokio::test]
async fn the_api_token_is_enforced_on_grpc() {
    let Some(python) = python() else { return };
    let token = common::unique_name("token");
    AppRun {
        name: "py-api-token",
        app: vec![
            python.into(),
            repo_root().join("tests/python/api_token.py").into(),
        ],
        env: vec![("DAPR_API_TOKEN", &token)],
        success: "all checks passed",
    }
    .against(&[Backend::Embedded])
    .await;
}

/// `samples/python-state` runs as its README says, on the embedded store.
#[tokio::test]
async fn the_python_state_sample_runs() {
    let Some(python) = python() else { return };
    AppRun {
        name: "py-sample",
        app: vec![
            python.into(),
            repo_root().join("samples/python-state/app.py").into(),
        ],
        env: Vec::new(),
        success: "done",
    }
    .against(&[Backend::Embedded])
    .await;
}

/// Outrig's protos declare nothing the Dapr SDK's descriptors disagree with.
#[tokio::test]
async fn protos_match_the_sdks_wire_contract() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let descriptors = dir.path().join("outrig.bin");
    std::fs::write(&descriptors, outrig::api::grpc::proto::FILE_DESCRIPTOR_SET).unwrap();
    let output = Command::new(python)
        .arg(repo_root().join("tests/python/wire_contract.py"))
        .arg(&descriptors)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the protos differ from Dapr's:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// ---------------------------------------------------------------------------
// Pub/sub: a `dapr.ext.grpc` subscriber and a `DaprClient` publisher
// ---------------------------------------------------------------------------

/// A bound on the publisher's run and on the wait for deliveries, so a hang
/// fails the test instead of hanging it. Not a performance assertion.
const PUBSUB_DEADLINE: Duration = Duration::from_secs(120);

/// Where the pub/sub component `pubsub` of a run keeps its events.
#[derive(Clone, Copy, Debug)]
enum PubSubBackend {
    /// No resources directory: the embedded default `pubsub` (in memory).
    EmbeddedInMemory,
    /// `pubsub.redis` on the test Redis, streams named after the topics.
    Redis,
}

/// Deletes the Redis streams of a run's topics (all start with the run's
/// prefix) when dropped, even when the run failed.
struct RedisTopics(String);

impl Drop for RedisTopics {
    fn drop(&mut self) {
        let Ok(mut redis) = common::redis_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}-*", self.0))
            .query(&mut redis)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut redis);
        }
    }
}

/// `tests/python/pubsub_subscriber.py` running as a gRPC app on a port of
/// its own; the process is killed when this is dropped.
struct Subscriber {
    /// The process; held so that dropping the subscriber kills it.
    _child: Child,
    /// Where it listens, given to outrig as `--app-port`.
    port: u16,
    /// Where it appends one JSON line per delivery.
    record: PathBuf,
    /// Its stdout and stderr, for failure messages.
    log: PathBuf,
    /// Holds the record and the log; removed on drop.
    _dir: TempDir,
}

impl Subscriber {
    /// Starts it and waits until it accepts connections, so outrig finds
    /// its subscriptions at once.
    async fn start(python: &Path, pubsub: &str, prefix: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let (record, log) = (dir.path().join("record.jsonl"), dir.path().join("app.log"));
        let port = common::free_port()?;
        let child = Command::new(python)
            .arg(repo_root().join("tests/python/pubsub_subscriber.py"))
            .arg(port.to_string())
            .arg(&record)
            .env("OUTRIG_TEST_PUBSUB", pubsub)
            .env("OUTRIG_TEST_PREFIX", prefix)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log)?)
            .stderr(std::fs::File::create(&log)?)
            .kill_on_drop(true)
            .spawn()
            .context("starting the Python subscriber")?;
        // Borrowed only between awaits, by the probe below.
        let child = std::cell::RefCell::new(child);
        let listening = common::poll_until(
            "the Python subscriber listens",
            common::START_DEADLINE,
            || async {
                if let Some(status) = child.borrow_mut().try_wait()? {
                    bail!("the Python subscriber exited ({status})");
                }
                Ok(tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
                    .map(drop))
            },
        )
        .await;
        let subscriber = Subscriber {
            _child: child.into_inner(),
            port,
            record,
            log,
            _dir: dir,
        };
        listening.with_context(|| format!("its output:\n{}", subscriber.output()))?;
        Ok(subscriber)
    }

    /// What it printed so far.
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every delivery it recorded so far, in order.
    fn deliveries(&self) -> anyhow::Result<Vec<Value>> {
        let text = match std::fs::read_to_string(&self.record) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(err.into()),
        };
        text.lines()
            .map(|line| serde_json::from_str(line).with_context(|| format!("record line {line}")))
            .collect()
    }

    /// The deliveries `handler` recorded.
    fn of(&self, handler: &str) -> anyhow::Result<Vec<Value>> {
        Ok(self
            .deliveries()?
            .into_iter()
            .filter(|delivery| delivery["handler"] == handler)
            .collect())
    }

    /// Waits until each handler recorded at least its count of deliveries.
    async fn wait_for(&self, sidecar: &Sidecar, counts: &[(&str, usize)]) -> anyhow::Result<()> {
        let done = common::poll_until("the deliveries", PUBSUB_DEADLINE, || async {
            for &(handler, count) in counts {
                if self.of(handler)?.len() < count {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        })
        .await;
        done.with_context(|| {
            let recorded: Vec<String> = self
                .deliveries()
                .unwrap_or_default()
                .iter()
                .map(Value::to_string)
                .collect();
            format!(
                "expected {counts:?}; recorded:\n{}\n--- subscriber ---\n{}\n--- outrig ---\n{}",
                recorded.join("\n"),
                self.output(),
                sidecar.logs()
            )
        })
    }
}

/// One pub/sub run: the subscriber, outrig delivering to it over gRPC, the
/// publisher, then checks on what the subscriber recorded.
struct PubSubRun {
    /// The interpreter with the Dapr SDK.
    python: PathBuf,
    /// Which broker serves the component `pubsub`.
    backend: PubSubBackend,
}

impl PubSubRun {
    /// The whole run, failing with the subscriber's record and outrig's
    /// output when a check fails.
    async fn run(&self) -> anyhow::Result<()> {
        let app = AppId::new("py-pubsub");
        let prefix = common::unique_name("py-pubsub");
        let _streams = RedisTopics(prefix.clone());
        let subscriber = Subscriber::start(&self.python, "pubsub", &prefix).await?;
        let resources = Resources::new();
        let grpc_port = common::free_port()?;
        let mut launch = Launch::new(&app).grpc_port(grpc_port).args(&[
            "--app-port",
            &subscriber.port.to_string(),
            "--app-protocol",
            "grpc",
        ]);
        if let PubSubBackend::Redis = self.backend {
            resources.builtin("pubsub", "pubsub.redis", &[("redisHost", REDIS_HOST)]);
            launch = launch.resources(resources.path());
        }
        let sidecar = launch.start().await?;
        // Healthy once the subscriptions exist at the broker: nothing
        // published from now on is missed.
        sidecar.wait_until_healthy().await?;
        self.publish(&sidecar, grpc_port, &prefix).await?;
        subscriber
            .wait_for(
                &sidecar,
                &[("orders", 4), ("vip", 1), ("regular", 1), ("flaky", 2)],
            )
            .await?;
        check_deliveries(&subscriber, &prefix)
            .map_err(|failure| anyhow::anyhow!("{failure:#}\n--- outrig ---\n{}", sidecar.logs()))
    }

    /// Runs the publisher program against the sidecar.
    async fn publish(&self, sidecar: &Sidecar, grpc_port: u16, prefix: &str) -> anyhow::Result<()> {
        let run = Command::new(&self.python)
            .arg(repo_root().join("tests/python/pubsub_publisher.py"))
            .env("DAPR_GRPC_PORT", grpc_port.to_string())
            .env("DAPR_HTTP_PORT", sidecar.addr.port().to_string())
            .env_remove("DAPR_API_TOKEN")
            .env("OUTRIG_TEST_PUBSUB", "pubsub")
            .env("OUTRIG_TEST_PREFIX", prefix)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(PUBSUB_DEADLINE, run)
            .await
            .context("the publisher did not finish")??;
        let stdout = String::from_utf8_lossy(&output.stdout);
        ensure!(
            output.status.success() && stdout.contains("pubsub_publisher: all checks passed"),
            "the publisher failed ({}):\n{stdout}{}\n--- outrig ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            sidecar.logs()
        );
        Ok(())
    }
}

/// What pubsub_publisher.py published must have reached the handler its
/// topic and routing rules name, once each, except the event the `flaky`
/// handler asked to have again.
fn check_deliveries(subscriber: &Subscriber, prefix: &str) -> anyhow::Result<()> {
    let topic = |name: &str| format!("{prefix}-{name}");
    let all = subscriber.deliveries()?;
    for delivery in &all {
        ensure!(delivery["pubsub"] == "pubsub", "{delivery}");
        let handler = delivery["handler"].as_str().unwrap_or_default();
        let expected_topic = match handler {
            "vip" | "regular" => topic("routed"),
            other => topic(other),
        };
        ensure!(delivery["topic"] == expected_topic.as_str(), "{delivery}");
    }

    // `orders`: one JSON event, two bulk-published text events, and the one
    // published after the errors; each once, each its own id.
    let orders = subscriber.of("orders")?;
    ensure!(orders.len() == 4, "orders got {orders:?}");
    let of_type = |content_type: &str| -> Vec<&str> {
        let mut data: Vec<&str> = orders
            .iter()
            .filter(|order| order["content_type"] == content_type)
            .filter_map(|order| order["data"].as_str())
            .collect();
        data.sort_unstable();
        data
    };
    let json_orders = of_type("application/json");
    ensure!(
        of_type("text/plain") == ["after-errors", "bulk-1", "bulk-2"] && json_orders.len() == 1,
        "orders got {orders:?}"
    );
    let json_order: Value = serde_json::from_str(json_orders[0])?;
    ensure!(json_order == json!({"n": 1}), "{orders:?}");
    let mut ids: Vec<&str> = orders.iter().filter_map(|o| o["id"].as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    ensure!(ids.len() == 4, "every order has its own id: {orders:?}");
    ensure!(
        orders
            .iter()
            .all(|order| order["type"] == "com.dapr.event.sent"),
        "{orders:?}"
    );

    // `routed`: the CloudEvent of type vip as the publisher wrote it, by the
    // first rule; the plain event by the second.
    let vip = subscriber.of("vip")?;
    ensure!(vip.len() == 1, "vip got {vip:?}");
    ensure!(
        vip[0]["id"] == format!("{prefix}-vip").as_str() && vip[0]["type"] == "vip",
        "{vip:?}"
    );
    let vip_data: Value = serde_json::from_str(vip[0]["data"].as_str().unwrap_or_default())?;
    ensure!(vip_data == json!({"tier": "gold"}), "{vip:?}");
    let regular = subscriber.of("regular")?;
    ensure!(
        regular.len() == 1 && regular[0]["data"] == "regular-1",
        "regular got {regular:?}"
    );

    // `flaky`: RETRY brings the same event back, then SUCCESS settles it.
    let flaky = subscriber.of("flaky")?;
    ensure!(flaky.len() == 2, "flaky got {flaky:?}");
    ensure!(
        flaky[0]["id"] == flaky[1]["id"] && flaky[0]["answer"] == "retry",
        "the retried event comes again: {flaky:?}"
    );
    ensure!(flaky[1]["answer"] == "success", "{flaky:?}");
    let again: Value = serde_json::from_str(flaky[1]["data"].as_str().unwrap_or_default())?;
    ensure!(again == json!({"again": true}), "{flaky:?}");
    Ok(())
}

/// Runs the pub/sub scenario on `backend`.
async fn pubsub_scenario(backend: PubSubBackend) {
    let Some(python) = python() else { return };
    if let Err(failure) = (PubSubRun { python, backend }).run().await {
        panic!("pub/sub with the Python SDK on {backend:?} failed: {failure:#}");
    }
}

/// The embedded in-memory `pubsub` delivers what `DaprClient` publishes to a
/// `dapr.ext.grpc` app: by topic, by routing rule, and again after RETRY.
#[tokio::test]
async fn python_grpc_app_subscribes_in_memory() {
    pubsub_scenario(PubSubBackend::EmbeddedInMemory).await;
}

/// The same over Redis Streams.
#[tokio::test]
async fn python_grpc_app_subscribes_on_redis() {
    pubsub_scenario(PubSubBackend::Redis).await;
}
