//! Pub/sub load harness (not a test): publish → app delivery throughput and
//! end-to-end latency through one sidecar, per broker, beside a baseline
//! measured in the same run: the same publishers posting straight to the
//! app's route (no sidecar, no broker), and for Redis and NATS the broker's
//! own throughput with a native client (Redis: XADD, then XREADGROUP +
//! XACK; NATS: JetStream publish, then pull consumer fetch + ack).
//!
//! `cargo bench --bench pubsub`; knobs: `PUBSUB_MESSAGES` (default 20000),
//! `PUBSUB_PUBLISHERS` (concurrent publishers, default 16), `PUBSUB_ONLY`
//! (a comma-separated list of component types to measure, default all).
//! Each row is printed as soon as it is measured, the table at the end.
//!
//! MQTT is driven with at most [`MQTT_BACKLOG`] messages published and not
//! yet delivered: past Mosquitto's `max_queued_messages` (1000 by default)
//! the broker drops QoS 1 messages of a session, which no client prevents.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use anyhow::{Context, ensure};
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use common::brokers::{Broker, BrokerCleanup};
use common::{AppId, Launch, Resources};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When each message arrived at the app, as offsets from the run's start,
/// next to when it was published.
struct Arrivals {
    start: Instant,
    latencies_us: Mutex<Vec<u64>>,
    count: AtomicUsize,
}

impl Arrivals {
    fn record(&self, event: &Value) {
        let sent_us = event
            .pointer("/data/t")
            .or_else(|| event.get("t"))
            .and_then(Value::as_u64)
            .unwrap_or_default();
        let now_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Ok(mut latencies) = self.latencies_us.lock() {
            latencies.push(now_us.saturating_sub(sent_us));
        }
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// An app counting deliveries on `/orders`, subscribed to `topic`.
async fn start_app(topic: String, arrivals: Arc<Arrivals>) -> anyhow::Result<u16> {
    let subscriptions = json!([{"pubsubname": "pubsub", "topic": topic, "route": "/orders"}]);
    let router = common::with_subscriptions(Router::new(), subscriptions)
        .route(
            "/orders",
            post(
                |State(arrivals): State<Arc<Arrivals>>, body: axum::body::Bytes| async move {
                    if let Ok(event) = serde_json::from_slice::<Value>(&body) {
                        arrivals.record(&event);
                    }
                    axum::Json(json!({"status": "SUCCESS"}))
                },
            ),
        )
        .with_state(arrivals);
    common::serve_app(router).await
}

/// One measured run.
#[derive(Debug)]
struct Measured {
    label: String,
    per_second: f64,
    p50_us: u64,
    p99_us: u64,
    /// The sidecar's CPU time (user and system) per message, in µs: what
    /// the sidecar costs whatever else shares the machine.
    sidecar_cpu_us: Option<f64>,
}

/// The clock ticks per second of `/proc` CPU times: Linux's `USER_HZ`, 100
/// on every architecture the project builds for.
const USER_HZ: f64 = 100.0;

/// The CPU time `pid` has used so far (user and system), from
/// `/proc/<pid>/stat`.
fn cpu_time(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime the 12th and stime the 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / USER_HZ))
}

/// Publishes `messages` to `url` from `publishers` concurrent clients, then
/// waits until the app has them all.
async fn drive(
    label: &str,
    url: &str,
    arrivals: &Arc<Arrivals>,
    messages: usize,
    publishers: usize,
    backlog: usize,
) -> anyhow::Result<Measured> {
    let client = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..publishers {
        let (client, next, arrivals, url) = (
            client.clone(),
            Arc::clone(&next),
            Arc::clone(arrivals),
            url.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= messages {
                    break;
                }
                while n.saturating_sub(arrivals.count.load(Ordering::Relaxed)) >= backlog {
                    tokio::time::sleep(Duration::from_micros(500)).await;
                }
                let t = u64::try_from(arrivals.start.elapsed().as_micros()).unwrap_or(u64::MAX);
                let body = json!({"t": t}).to_string();
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "publish: {}",
                    response.status()
                );
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    let deadline = Instant::now() + ARRIVAL_DEADLINE;
    while arrivals.count.load(Ordering::Relaxed) < messages {
        ensure!(
            Instant::now() < deadline,
            "{label}: only {} of {messages} arrived",
            arrivals.count.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = began.elapsed();
    let mut latencies = arrivals
        .latencies_us
        .lock()
        .map(|l| l.clone())
        .unwrap_or_default();
    latencies.sort_unstable();
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    Ok(Measured {
        label: label.to_owned(),
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_us: at(0.5),
        p99_us: at(0.99),
        sidecar_cpu_us: None,
    })
}

fn arrivals() -> Arc<Arrivals> {
    Arc::new(Arrivals {
        start: Instant::now(),
        latencies_us: Mutex::new(Vec::new()),
        count: AtomicUsize::new(0),
    })
}

/// How long a run waits for its last message (a bound against a broker
/// that lost some, not a measurement).
const ARRIVAL_DEADLINE: Duration = Duration::from_secs(120);

/// The most MQTT messages published and not yet delivered (see the module
/// documentation).
const MQTT_BACKLOG: usize = 500;

/// The brokers measured through the sidecar: the in-process one and every
/// networked built-in, with the metadata that reaches the test servers.
fn brokers() -> Vec<(&'static str, Vec<(&'static str, &'static str)>)> {
    let mut brokers = vec![("pubsub.in-memory", Vec::new())];
    for broker in Broker::ALL {
        let mut metadata = vec![broker.address()];
        if broker == Broker::Mqtt {
            // Nothing to keep for a consumer that will not come back.
            metadata.push(("cleanSession", "true"));
        }
        brokers.push((broker.component_type(), metadata));
    }
    brokers
}

/// Publish through the sidecar to a broker of `component` type, delivered
/// to the app.
async fn through_sidecar(
    component: &str,
    metadata: &[(&str, &str)],
    messages: usize,
    publishers: usize,
) -> anyhow::Result<Measured> {
    let topic = common::unique_name("outrig-bench");
    let arrivals = arrivals();
    let port = start_app(topic.clone(), Arc::clone(&arrivals)).await?;
    let resources = Resources::new();
    resources.builtin("pubsub", component, metadata);
    let app_id = AppId::new("bench-pubsub");
    // Removes the topic and the app's group at the broker once the sidecar
    // (bound after it) is gone.
    let _cleanup = Broker::for_component(component).map(|broker| {
        BrokerCleanup::new(broker)
            .topic(&topic)
            .group(app_id.as_str(), None)
    });
    let sidecar = Launch::new(&app_id)
        .resources(resources.path())
        .args(&["--app-port", &port.to_string()])
        .start()
        .await?;
    // Healthy once the app's subscription is in place at the broker.
    sidecar.wait_until_healthy().await?;
    let url = format!("{}/v1.0/publish/pubsub/{topic}", sidecar.base);
    let backlog = match Broker::for_component(component) {
        Some(Broker::Mqtt) => MQTT_BACKLOG,
        _ => usize::MAX,
    };
    let pid = sidecar.pid().as_raw();
    let cpu_before = cpu_time(pid);
    let mut measured = drive(component, &url, &arrivals, messages, publishers, backlog).await?;
    if let (Some(before), Some(after)) = (cpu_before, cpu_time(pid)) {
        measured.sidecar_cpu_us = Some((after - before).as_secs_f64() * 1e6 / messages as f64);
    }
    Ok(measured)
}

fn delete_redis_stream(key: &str) -> anyhow::Result<()> {
    let mut redis = common::redis_connection()?;
    let _: i64 = redis::cmd("DEL").arg(key).query(&mut redis)?;
    Ok(())
}

/// The same publishers posting straight to the app: the baseline.
async fn direct(messages: usize, publishers: usize) -> anyhow::Result<Measured> {
    let arrivals = arrivals();
    let port = start_app("unused".into(), Arc::clone(&arrivals)).await?;
    let url = format!("http://127.0.0.1:{port}/orders");
    drive(
        "direct to the app (baseline)",
        &url,
        &arrivals,
        messages,
        publishers,
        usize::MAX,
    )
    .await
}

/// Redis Streams on their own: XADD every message (pipelined by 100), then
/// read and ack them all in a consumer group, with the redis crate.
fn native_redis(messages: usize) -> anyhow::Result<Measured> {
    let mut redis = common::redis_connection()?;
    let stream = common::unique_name("outrig-bench-native");
    let began = Instant::now();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(100) {
        let mut pipe = redis::pipe();
        for n in chunk {
            pipe.cmd("XADD")
                .arg(&stream)
                .arg("*")
                .arg("data")
                .arg(n.to_string())
                .ignore();
        }
        pipe.query::<()>(&mut redis)?;
    }
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("g")
        .arg("0")
        .query(&mut redis)?;
    let mut read = 0;
    while read < messages {
        // [[stream, [[id, [field, value, …]], …]]]
        type Reply = Option<Vec<(String, Vec<(String, Vec<String>)>)>>;
        let reply: Reply = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg("g")
            .arg("c")
            .arg("COUNT")
            .arg(100)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query(&mut redis)?;
        let ids: Vec<String> = reply
            .unwrap_or_default()
            .into_iter()
            .flat_map(|(_, entries)| entries.into_iter().map(|(id, _)| id))
            .collect();
        ensure!(!ids.is_empty(), "the native reader ran dry at {read}");
        read += ids.len();
        let _: i64 = redis::cmd("XACK")
            .arg(&stream)
            .arg("g")
            .arg(&ids)
            .query(&mut redis)?;
    }
    let elapsed = began.elapsed();
    let _ = delete_redis_stream(&stream);
    Ok(Measured {
        label: "Redis Streams, native client (XADD + XREADGROUP/XACK)".into(),
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_us: 0,
        p99_us: 0,
        sidecar_cpu_us: None,
    })
}

const NATS_URL: &str = "127.0.0.1:4222";

/// NATS JetStream on its own, with the official async client: publish
/// every message to a stream (acks awaited in windows of 256), then fetch
/// them from a durable pull consumer in batches of 100, acking each.
async fn native_nats(messages: usize) -> anyhow::Result<Measured> {
    use async_nats::jetstream::{self, consumer::pull};
    use futures::StreamExt as _;
    let client = async_nats::connect(NATS_URL).await?;
    let js = jetstream::new(client);
    let subject = common::unique_name("outrig-bench-native");
    let stream = js
        .create_stream(jetstream::stream::Config {
            name: subject.clone(),
            subjects: vec![subject.clone()],
            ..Default::default()
        })
        .await?;
    let began = Instant::now();
    let mut pending = Vec::with_capacity(256);
    for n in 0..messages {
        pending.push(js.publish(subject.clone(), n.to_string().into()).await?);
        if pending.len() == 256 {
            for ack in pending.drain(..) {
                ack.await?;
            }
        }
    }
    for ack in pending {
        ack.await?;
    }
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("g".into()),
            ..Default::default()
        })
        .await?;
    let mut read = 0;
    while read < messages {
        let mut batch = consumer.fetch().max_messages(100).messages().await?;
        while let Some(message) = batch.next().await {
            message
                .map_err(|err| anyhow::anyhow!("{err}"))?
                .ack()
                .await
                .map_err(|err| anyhow::anyhow!("{err}"))?;
            read += 1;
        }
    }
    let elapsed = began.elapsed();
    let _ = js.delete_stream(&subject).await;
    Ok(Measured {
        label: "NATS JetStream, native client (publish + pull/ack)".into(),
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_us: 0,
        p99_us: 0,
        sidecar_cpu_us: None,
    })
}

async fn run() -> anyhow::Result<()> {
    let messages = support::knob("PUBSUB_MESSAGES", 20_000) as usize;
    let publishers = support::knob("PUBSUB_PUBLISHERS", 16) as usize;
    let only = std::env::var("PUBSUB_ONLY").unwrap_or_default();
    let chosen = |component: &str| only.is_empty() || only.split(',').any(|c| c == component);
    common::warm_cache().await;
    let baseline = direct(messages, publishers).await.context("baseline")?;
    eprintln!("measured: {baseline:?}");
    let mut rows = vec![baseline];
    let mut failed = Vec::new();
    for (component, metadata) in brokers() {
        if !chosen(component) {
            continue;
        }
        // A broker that cannot carry the load is reported, not fatal: the
        // others are still measured.
        match through_sidecar(component, &metadata, messages, publishers).await {
            Ok(row) => {
                eprintln!("measured: {row:?}");
                rows.push(row);
            }
            Err(err) => {
                eprintln!("failed: {component}: {err:#}");
                failed.push(format!("{component}: {err}"));
            }
        }
    }
    let mut natives = Vec::new();
    if chosen("pubsub.redis") {
        natives.push(("pubsub.redis", native_redis(messages)?));
    }
    if chosen("pubsub.jetstream") {
        natives.push(("pubsub.jetstream", native_nats(messages).await?));
    }
    println!("| path | msgs/s | vs direct | end-to-end p50 µs | p99 µs | sidecar CPU µs/msg |");
    println!("|---|---:|---:|---:|---:|---:|");
    let base = rows[0].per_second;
    for row in &rows {
        let cpu = row
            .sidecar_cpu_us
            .map_or(String::new(), |us| format!("{us:.0}"));
        println!(
            "| {} | {:.0} | {:.2} | {} | {} | {cpu} |",
            row.label,
            row.per_second,
            row.per_second / base,
            row.p50_us,
            row.p99_us
        );
    }
    for failure in &failed {
        println!("| {failure} | failed | | | | |");
    }
    for (component, native) in &natives {
        let through = rows
            .iter()
            .find(|r| r.label == *component)
            .map_or(0.0, |r| r.per_second);
        println!(
            "| {} | {:.0} | ({component} end to end is {:.2} of it) | | | |",
            native.label,
            native.per_second,
            through / native.per_second
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()?.block_on(run())
}
