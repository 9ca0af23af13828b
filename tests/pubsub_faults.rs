//! Pub/sub delivery under faults and across sidecars, for every networked
//! built-in broker (Redis Streams, NATS JetStream, MQTT, RabbitMQ), with the
//! real `outrig` binary and HTTP apps in the test process:
//!
//! - at least once across a crash: while 10,000 messages flow, the
//!   subscriber's sidecar is killed with SIGKILL and a new one started with
//!   the same app id; every message must still reach the app (duplicates
//!   are allowed, losses are not);
//! - consumer groups: two replicas of one app share a topic's messages
//!   while another app gets all of them;
//! - a hot swap: while 5,000 messages flow through one sidecar, its broker
//!   component is swapped for a new version five times; every message must
//!   still reach the app (the in-process broker too: its old versions are
//!   drained first).
//!
//! Every run uses a topic and app ids of its own and removes what it left
//! at the broker ([`BrokerCleanup`]). Deadlines bound hangs only; nothing
//! here asserts speed.

mod common;

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::routing::post;
use common::brokers::{Broker, BrokerCleanup};
use common::{AppId, Launch, Resources, Sidecar};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Messages published in the crash scenario.
const MESSAGES: u64 = 10_000;
/// Entries per bulk publish.
const BATCH: u64 = 100;
/// Distinct messages the app has seen when the subscriber is killed: well
/// into the flow, with most of it still to come.
const KILL_AFTER: usize = 2_000;
/// Bound on each phase of the crash scenario (reaching the kill point, and
/// everything arriving after the restart): generous against a busy machine
/// and a debug build, and only a bound against hangs.
const PHASE_DEADLINE: Duration = Duration::from_secs(120);
/// Messages published in the consumer-group scenario.
const GROUP_MESSAGES: u64 = 200;
/// Bound on the consumer-group scenario's deliveries (against hangs).
const GROUP_DEADLINE: Duration = Duration::from_secs(60);
/// How long the consumer-group scenario keeps listening once everything
/// arrived, so a duplicate delivered late is seen too.
const QUIET_PERIOD: Duration = Duration::from_secs(1);
/// Log lines of each sidecar quoted in a failure.
const LOG_LINES: usize = 80;
/// Messages published in the swap scenario.
const SWAP_MESSAGES: u64 = 5_000;
/// Swaps of the broker component while they flow.
const SWAPS: u64 = 5;
/// The most messages published and not yet seen in the swap scenario on the
/// in-process broker (it keeps what builds up; see [`backlog_bound`]).
const IN_PROCESS_BACKLOG: u64 = 3_000;

/// What one app received: every message number in delivery order.
/// The app's record, shared between its handler and the test.
#[derive(Default)]
struct Received {
    numbers: Mutex<Vec<u64>>,
}

impl Received {
    /// Notes a delivery of message `n`.
    fn record(&self, n: u64) {
        if let Ok(mut numbers) = self.numbers.lock() {
            numbers.push(n);
        }
    }

    /// Every delivery, repeats included.
    fn all(&self) -> Vec<u64> {
        self.numbers.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// The distinct numbers delivered.
    fn distinct(&self) -> BTreeSet<u64> {
        self.all().into_iter().collect()
    }
}

/// An HTTP app in the test process subscribed to one topic: it records the
/// `n` in each event's data and always answers SUCCESS.
struct App {
    port: u16,
    received: Arc<Received>,
}

/// Starts an [`App`] subscribed to `topic` on the component `pubsub`.
async fn start_app(topic: &str) -> anyhow::Result<App> {
    let subscriptions = json!([{"pubsubname": "pubsub", "topic": topic, "route": "/events"}]);
    let received = Arc::new(Received::default());
    let recorder = Arc::clone(&received);
    let router = common::with_subscriptions(Router::new(), subscriptions).route(
        "/events",
        post(move |body: axum::body::Bytes| {
            let recorder = Arc::clone(&recorder);
            async move {
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                match event.pointer("/data/n").and_then(Value::as_u64) {
                    Some(n) => {
                        recorder.record(n);
                        axum::Json(json!({"status": "SUCCESS"}))
                    }
                    // Not ours: nothing to record, and no reason to retry.
                    None => axum::Json(json!({"status": "DROP"})),
                }
            }
        }),
    );
    let port = common::serve_app(router).await?;
    Ok(App { port, received })
}

/// Starts a sidecar for `app_id` with the resources in `resources`, serving
/// `app` when given, and waits until it is healthy (with an app: until its
/// subscription exists at the broker).
async fn start_sidecar(
    app_id: &AppId,
    resources: &Resources,
    app: Option<&App>,
) -> anyhow::Result<Sidecar> {
    start_sidecar_with(app_id, resources, app, &[]).await
}

/// [`start_sidecar`] with more arguments for `outrig run`.
async fn start_sidecar_with(
    app_id: &AppId,
    resources: &Resources,
    app: Option<&App>,
    args: &[&str],
) -> anyhow::Result<Sidecar> {
    let mut launch = Launch::new(app_id).resources(resources.path()).args(args);
    if let Some(app) = app {
        launch = launch.args(&["--app-port", &app.port.to_string()]);
    }
    let sidecar = launch.start().await?;
    sidecar.wait_until_healthy().await?;
    Ok(sidecar)
}

/// Publishes the messages numbered `numbers` to `topic` in one bulk
/// publish; each event's data is `{"n": <number>}`.
async fn publish(
    sidecar: &Sidecar,
    topic: &str,
    numbers: std::ops::Range<u64>,
) -> anyhow::Result<()> {
    let entries: Vec<Value> = numbers
        .map(|n| json!({"entryId": n.to_string(), "event": {"n": n}, "contentType": "application/json"}))
        .collect();
    sidecar
        .call(
            Method::POST,
            &format!("/v1.0-alpha1/publish/bulk/pubsub/{topic}"),
            Some(&Value::Array(entries)),
        )
        .await?
        .ensure_status(204)?;
    Ok(())
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Each sidecar's last log lines, named, for a failure message.
fn logs_of(sidecars: &[(&str, &Sidecar)]) -> String {
    sidecars
        .iter()
        .map(|(name, sidecar)| {
            format!(
                "--- {name} ({}), last {LOG_LINES} lines:\n{}",
                sidecar.app_id,
                tail(&sidecar.logs(), LOG_LINES)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many of `0..total` are not in `seen`, with the first few of them.
fn missing(seen: &BTreeSet<u64>, total: u64) -> String {
    let absent: Vec<u64> = (0..total).filter(|n| !seen.contains(n)).collect();
    let examples: Vec<u64> = absent.iter().copied().take(10).collect();
    format!(
        "{} of {total} ids missing (e.g. {examples:?})",
        absent.len()
    )
}

// ---------------------------------------------------------------------------
// At least once across a SIGKILL
// ---------------------------------------------------------------------------

/// The component metadata for the crash and swap scenarios: the broker's address,
/// and its redelivery of what a dead consumer held set low, so recovery
/// takes seconds rather than the defaults' minute (Redis's
/// `processingTimeout`, JetStream's `ackWait`). MQTT and RabbitMQ need
/// nothing: the broker hands a dropped connection's unacknowledged
/// messages to the next session holder, or back to the queue, at once.
fn recovery_metadata(broker: Broker) -> Vec<(&'static str, &'static str)> {
    let mut metadata = vec![broker.address()];
    match broker {
        Broker::Redis => {
            metadata.extend([("processingTimeout", "2s"), ("redeliverInterval", "500ms")])
        }
        Broker::JetStream => metadata.push(("ackWait", "2s")),
        Broker::Mqtt | Broker::RabbitMq => {}
    }
    metadata
}

/// The most messages published and not yet seen by the app that the
/// publisher lets build up. For MQTT this keeps the backlog under
/// Mosquitto's `max_queued_messages` (1000 by default): past it, the broker
/// drops QoS 1 messages for a session, connected or not, which no client can
/// prevent. The others keep whatever builds up; their bound only keeps
/// publishing going on through the kill and the restart rather than
/// finishing before them.
fn backlog_bound(broker: Broker) -> u64 {
    match broker {
        Broker::Mqtt => 500,
        Broker::Redis | Broker::JetStream | Broker::RabbitMq => 3_000,
    }
}

/// Publishes `total` messages in bulk batches of [`BATCH`], never more than
/// `bound` ahead of what `received` has seen, until done or `stop`
/// (a deadline against hangs) passes; counts what is published in
/// `published`.
async fn keep_publishing(
    publisher: Arc<Sidecar>,
    topic: String,
    total: u64,
    received: Arc<Received>,
    published: Arc<AtomicU64>,
    bound: u64,
    stop: Instant,
) -> anyhow::Result<()> {
    let mut next = 0;
    while next < total {
        let seen = u64::try_from(received.distinct().len()).unwrap_or(u64::MAX);
        if next.saturating_sub(seen) >= bound {
            ensure!(
                Instant::now() < stop,
                "the publisher waited for the app past its deadline, {next} published"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let end = (next + BATCH).min(total);
        publish(&publisher, &topic, next..end)
            .await
            .with_context(|| format!("publishing {next}..{end}"))?;
        next = end;
        published.store(next, Ordering::Relaxed);
    }
    Ok(())
}

/// Ends a run's publisher: once everything `arrived` it ends by itself
/// (its last answer may still be on its way) and is awaited; otherwise it
/// is stopped, and what is missing is the caller's failure. Its error, or
/// a last publish that never returns, fails the run `label`, quoting
/// `logs`.
async fn end_publisher(
    publishing: tokio::task::JoinHandle<anyhow::Result<()>>,
    arrived: bool,
    label: &str,
    logs: impl Fn() -> String,
) -> anyhow::Result<()> {
    if !arrived {
        publishing.abort();
    }
    match tokio::time::timeout(PHASE_DEADLINE, publishing).await {
        Ok(Ok(Ok(()))) | Ok(Err(_)) => Ok(()),
        Ok(Ok(Err(err))) => bail!("{label}: {err:#}\n{}", logs()),
        Err(_) => bail!(
            "{label}: everything arrived, yet the publisher's last publish did not return \
             within {PHASE_DEADLINE:?}\n{}",
            logs()
        ),
    }
}

/// Waits until `received` has seen `count` distinct messages, or `deadline`.
async fn seen_at_least(received: &Received, count: usize, deadline: Duration) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if received.distinct().len() >= count {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    received.distinct().len() >= count
}

/// The crash scenario on `broker`: a publisher sidecar publishes while the
/// subscriber's sidecar delivers to the app; the subscriber is killed with
/// SIGKILL mid-flow and a new one started with the same app id and
/// resources; every message must reach the app at least once.
async fn survives_kill(broker: Broker) -> anyhow::Result<()> {
    let started = Instant::now();
    let topic = common::unique_name("faults-kill");
    let subscriber_id = AppId::new("faults-sub");
    let publisher_id = AppId::new("faults-pub");
    // Declared before the sidecars: they are gone before it cleans up.
    let _cleanup = BrokerCleanup::new(broker)
        .topic(&topic)
        .group(subscriber_id.as_str(), None);
    let resources = Resources::new();
    resources.builtin(
        "pubsub",
        broker.component_type(),
        &recovery_metadata(broker),
    );
    let app = start_app(&topic).await?;
    let mut first = start_sidecar(&subscriber_id, &resources, Some(&app)).await?;
    let publisher = Arc::new(start_sidecar(&publisher_id, &resources, None).await?);

    let published = Arc::new(AtomicU64::new(0));
    let publishing = tokio::spawn(keep_publishing(
        Arc::clone(&publisher),
        topic.clone(),
        MESSAGES,
        Arc::clone(&app.received),
        Arc::clone(&published),
        backlog_bound(broker),
        Instant::now() + PHASE_DEADLINE * 2,
    ));

    if !seen_at_least(&app.received, KILL_AFTER, PHASE_DEADLINE).await {
        publishing.abort();
        bail!(
            "{broker:?}: the app saw {} of the first {KILL_AFTER} messages within {PHASE_DEADLINE:?}\n{}",
            app.received.distinct().len(),
            logs_of(&[("subscriber", &first), ("publisher", &publisher)])
        );
    }
    first.signal(nix::sys::signal::Signal::SIGKILL)?;
    first.wait_exit().await?;
    let seen_at_kill = app.received.distinct().len();
    let second = start_sidecar(&subscriber_id, &resources, Some(&app)).await?;

    let all = usize::try_from(MESSAGES).unwrap_or(usize::MAX);
    let arrived = seen_at_least(&app.received, all, PHASE_DEADLINE).await;
    let sidecars = [
        ("killed subscriber", &first),
        ("restarted subscriber", &second),
        ("publisher", &*publisher),
    ];
    end_publisher(publishing, arrived, &format!("{broker:?}"), || {
        logs_of(&sidecars)
    })
    .await?;
    let seen = app.received.distinct();
    ensure!(
        arrived,
        "{broker:?}: {} ({} published) after the subscriber was killed at {seen_at_kill} seen \
         and restarted, within {PHASE_DEADLINE:?}\n{}",
        missing(&seen, MESSAGES),
        published.load(Ordering::Relaxed),
        logs_of(&sidecars)
    );
    let deliveries = app.received.all().len();
    eprintln!(
        "{broker:?}: {MESSAGES} messages, {deliveries} deliveries ({} repeated), killed at {seen_at_kill} seen, {:.1?} in all",
        deliveries - seen.len(),
        started.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// A hot swap of the broker component mid-flow
// ---------------------------------------------------------------------------

/// The swap scenario on `broker`: one sidecar publishes [`SWAP_MESSAGES`]
/// and delivers them to its app while its pub/sub component is swapped
/// [`SWAPS`] times (each time its YAML changes and `POST
/// /v1.0/outrig/reload` loads a new version while the old one settles what
/// it handed out); every message must reach the app. Repeats are counted
/// and reported, not failed: at least once allows them.
async fn survives_swap(broker: Broker) -> anyhow::Result<()> {
    survives_swap_of(broker.component_type(), Some(broker)).await
}

/// [`survives_swap`] for the component type `component`, served by
/// `broker` (none for the in-process one, whose old version is drained
/// before the new one is pulled).
async fn survives_swap_of(component: &str, broker: Option<Broker>) -> anyhow::Result<()> {
    let started = Instant::now();
    let topic = common::unique_name("faults-swap");
    let app_id = AppId::new("faults-swap");
    let _cleanup = broker.map(|broker| {
        BrokerCleanup::new(broker)
            .topic(&topic)
            .group(app_id.as_str(), None)
    });
    let resources = Resources::new();
    // Each version differs by a metadata entry no component reads.
    let declare = |generation: u64| {
        let generation = generation.to_string();
        let mut metadata = broker.map(recovery_metadata).unwrap_or_default();
        metadata.push(("outrigTestGeneration", &generation));
        resources.builtin("pubsub", component, &metadata);
    };
    declare(0);
    let app = start_app(&topic).await?;
    let sidecar =
        Arc::new(start_sidecar_with(&app_id, &resources, Some(&app), &["--no-watch"]).await?);
    let published = Arc::new(AtomicU64::new(0));
    let publishing = tokio::spawn(keep_publishing(
        Arc::clone(&sidecar),
        topic.clone(),
        SWAP_MESSAGES,
        Arc::clone(&app.received),
        Arc::clone(&published),
        broker.map_or(IN_PROCESS_BACKLOG, backlog_bound),
        Instant::now() + PHASE_DEADLINE,
    ));
    let mut swapped_at = Vec::new();
    for generation in 1..=SWAPS {
        // Spread the swaps over the flow.
        let due = usize::try_from(SWAP_MESSAGES * generation / (SWAPS + 1)).unwrap_or(usize::MAX);
        if !seen_at_least(&app.received, due, PHASE_DEADLINE).await {
            publishing.abort();
            bail!(
                "{component}: the app saw {} of {due} messages before swap {generation}\n{}",
                app.received.distinct().len(),
                logs_of(&[("sidecar", &sidecar)])
            );
        }
        declare(generation);
        let report = sidecar
            .call(Method::POST, "/v1.0/outrig/reload", None)
            .await?
            .ensure_status(200)?
            .json()?;
        ensure!(
            report["updated"] == json!(["pubsub"]),
            "{component}: swap {generation} did not update the component: {report}"
        );
        swapped_at.push(app.received.distinct().len());
    }
    let all = usize::try_from(SWAP_MESSAGES).unwrap_or(usize::MAX);
    let arrived = seen_at_least(&app.received, all, PHASE_DEADLINE).await;
    end_publisher(publishing, arrived, component, || {
        logs_of(&[("sidecar", &sidecar)])
    })
    .await?;
    let seen = app.received.distinct();
    ensure!(
        arrived,
        "{component}: {} ({} published) across {SWAPS} swaps at {swapped_at:?} seen\n{}",
        missing(&seen, SWAP_MESSAGES),
        published.load(Ordering::Relaxed),
        logs_of(&[("sidecar", &sidecar)])
    );
    let deliveries = app.received.all().len();
    eprintln!(
        "{component}: {SWAP_MESSAGES} messages across {SWAPS} swaps (at {swapped_at:?} seen), {deliveries} deliveries ({} repeated), {:.1?} in all",
        deliveries - seen.len(),
        started.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// Consumer groups across sidecars
// ---------------------------------------------------------------------------

/// The component metadata of one replica in the consumer-group scenario.
/// MQTT replicas share a group's load only with distinct `consumerID`s
/// (each its own session in the group's shared subscription; without them
/// all replicas resume one session, held by one at a time), so each
/// replica gets its own there. The other brokers share by the group alone,
/// and their `consumerID` would replace the group, so it is left out.
fn replica_metadata(broker: Broker, replica: &str) -> Vec<(&'static str, String)> {
    let (field, value) = broker.address();
    let mut metadata = vec![(field, value.to_string())];
    if broker == Broker::Mqtt {
        metadata.push(("consumerID", replica.to_string()));
    }
    metadata
}

/// The consumer-group scenario on `broker`: replicas A1 and A2 of app A and
/// one sidecar of app B, each with its own app, subscribe to one topic; B
/// must get every message once, and A1 and A2 together every message once,
/// each some of them.
async fn groups_share_and_fan_out(broker: Broker) -> anyhow::Result<()> {
    let started = Instant::now();
    let topic = common::unique_name("faults-groups");
    let (a, b) = (AppId::new("faults-a"), AppId::new("faults-b"));
    let mut cleanup = BrokerCleanup::new(broker).topic(&topic);
    let replicas = [("A1", &a, "a1"), ("A2", &a, "a2"), ("B", &b, "b")];
    for (_, app_id, replica) in &replicas {
        let consumer_id = (broker == Broker::Mqtt).then_some(*replica);
        cleanup = cleanup.group(app_id.as_str(), consumer_id);
    }
    let mut apps = Vec::new();
    let mut sidecars = Vec::new();
    // Each replica has its own resources, for its own `consumerID`.
    let mut resources = Vec::new();
    for (name, app_id, replica) in &replicas {
        let metadata = replica_metadata(broker, replica);
        let pairs: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let dir = Resources::new();
        dir.builtin("pubsub", broker.component_type(), &pairs);
        let app = start_app(&topic).await?;
        let sidecar = start_sidecar(app_id, &dir, Some(&app))
            .await
            .with_context(|| format!("starting {name}"))?;
        apps.push(app);
        sidecars.push((*name, sidecar));
        resources.push(dir);
    }
    // B publishes: any sidecar with the component can.
    let publisher = &sidecars[2].1;
    for start in (0..GROUP_MESSAGES).step_by(10) {
        publish(publisher, &topic, start..(start + 10).min(GROUP_MESSAGES)).await?;
    }

    let union = || {
        let mut all = apps[0].received.distinct();
        all.extend(apps[1].received.distinct());
        all
    };
    let expected = usize::try_from(GROUP_MESSAGES).unwrap_or(usize::MAX);
    let until = Instant::now() + GROUP_DEADLINE;
    while (union().len() < expected || apps[2].received.distinct().len() < expected)
        && Instant::now() < until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(QUIET_PERIOD).await;

    let named: Vec<(&str, &Sidecar)> = sidecars.iter().map(|(n, s)| (*n, s)).collect();
    let (a1, a2, b_got) = (
        apps[0].received.all(),
        apps[1].received.all(),
        apps[2].received.all(),
    );
    ensure!(
        apps[2].received.distinct().len() == expected,
        "{broker:?}: app B: {}\n{}",
        missing(&apps[2].received.distinct(), GROUP_MESSAGES),
        logs_of(&named)
    );
    ensure!(
        union().len() == expected,
        "{broker:?}: app A (A1 and A2 together): {}\n{}",
        missing(&union(), GROUP_MESSAGES),
        logs_of(&named)
    );
    ensure!(
        b_got.len() == expected,
        "{broker:?}: app B got {} deliveries of {expected} messages: some came twice without a fault",
        b_got.len()
    );
    ensure!(
        a1.len() + a2.len() == expected,
        "{broker:?}: A1 got {} and A2 {} deliveries of {expected} messages: some came twice \
         (shared by the replicas of one app, each message should reach one of them once)",
        a1.len(),
        a2.len()
    );
    ensure!(
        !a1.is_empty() && !a2.is_empty(),
        "{broker:?}: A1 got {} and A2 {} of {expected}: the replicas of one app did not share\n{}",
        a1.len(),
        a2.len(),
        logs_of(&named)
    );
    eprintln!(
        "{broker:?}: A1 {} + A2 {}, B {} of {expected}, {:.1?} in all",
        a1.len(),
        a2.len(),
        b_got.len(),
        started.elapsed()
    );
    Ok(())
}

// ---------------------------------------------------------------------------
// One test per broker and scenario
// ---------------------------------------------------------------------------

/// A module per broker with both scenarios as tests of their own, so they
/// run in parallel and a failure names its broker and scenario.
macro_rules! per_broker {
    ($($module:ident => $broker:expr),* $(,)?) => {$(
        /// The scenarios on this broker.
        mod $module {
            use super::*;

            /// At least once across a SIGKILL of the subscriber's sidecar.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delivers_every_message_across_a_sigkill() -> anyhow::Result<()> {
                survives_kill($broker).await
            }

            /// Replicas of one app share, different apps each get all.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn replicas_share_and_apps_each_get_all() -> anyhow::Result<()> {
                groups_share_and_fan_out($broker).await
            }

            /// Nothing lost across hot swaps of the broker component.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delivers_every_message_across_hot_swaps() -> anyhow::Result<()> {
                survives_swap($broker).await
            }
        }
    )*};
}

/// Nothing lost across hot swaps of the in-process broker: each old
/// version is drained before its successor is pulled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_delivers_every_message_across_hot_swaps() -> anyhow::Result<()> {
    survives_swap_of("pubsub.in-memory", None).await
}

per_broker! {
    redis => Broker::Redis,
    jetstream => Broker::JetStream,
    mqtt => Broker::Mqtt,
    rabbitmq => Broker::RabbitMq,
}
