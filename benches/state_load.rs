//! State API load harness (a benchmark, never a test):
//! `cargo bench --bench state_load`.
//!
//! On the bench-profile (optimised) `outrig` it measures, in one run:
//! - closed-loop SET and GET through Dapr's HTTP state API, N connections
//!   (default 32) for a fixed time each (default 5 s, after 1 s of warm-up),
//!   for the in-memory, embedded (redb) and Redis stores: requests/s, p50, p99;
//! - the same Redis work through a native Rust client (the `redis` crate, same
//!   concurrency, one connection per worker): reads are a pipelined
//!   `HGETALL` + `PTTL`, writes a Lua script that reads the version and
//!   `HSET`s `data` and `version` (Dapr's layout), as the component does; and
//!   the ratio of the two;
//! - start to healthy (spawn → `GET /v1.0/healthz` answers 204, warm cache)
//!   and idle RSS (`VmRSS`) with the embedded default and with 6 components;
//! - SET and GET on the in-memory store through the gRPC API (`SaveState`,
//!   `GetState`: N concurrent streams on one HTTP/2 connection) next to the
//!   HTTP API (N connections), at 1, 16 and 64.
//!
//! It prints Markdown; BENCHMARKS.md records a run. Knobs:
//! `OUTRIG_BENCH_SECONDS`, `OUTRIG_BENCH_CONNECTIONS`, `OUTRIG_BENCH_STARTS`.
//! The load generator runs on one thread, so on a 2-core machine the sidecar
//! (and Redis) share the other core with it, as they would with an app.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, PgTable, REDIS_HOST, Resources};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Distinct keys the load cycles through.
const KEYS: u64 = 1000;
/// Size of each value written.
const VALUE_BYTES: usize = 100;
/// Load before measuring starts.
const WARM_UP: Duration = Duration::from_secs(1);
/// Idle time before reading RSS.
const SETTLE: Duration = Duration::from_millis(500);

/// The run's knobs.
struct Settings {
    measure: Duration,
    connections: usize,
    starts: usize,
}

impl Settings {
    fn from_env() -> Self {
        let number = support::knob;
        Settings {
            measure: Duration::from_secs(number("OUTRIG_BENCH_SECONDS", 5)),
            connections: number("OUTRIG_BENCH_CONNECTIONS", 32) as usize,
            starts: number("OUTRIG_BENCH_STARTS", 10) as usize,
        }
    }
}

/// What one closed-loop run measured.
struct Measured {
    path: String,
    op: &'static str,
    requests: u64,
    failures: u64,
    elapsed: Duration,
    latencies_us: Vec<u32>,
}

impl Measured {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_us(&self, p: f64) -> u32 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted.get(index).copied().unwrap_or_default()
    }

    fn row(&self) -> String {
        format!(
            "| {} | {} | {:.0} | {} | {} | {} |",
            self.path,
            self.op,
            self.per_second(),
            self.percentile_us(0.50),
            self.percentile_us(0.99),
            self.failures
        )
    }
}

/// What one worker counted.
#[derive(Default)]
struct WorkerCount {
    requests: u64,
    failures: u64,
    latencies_us: Vec<u32>,
}

/// Runs `op` in a closed loop on every worker: warm-up, then `measure`.
/// `op` returns whether the request succeeded; an `Err` (a broken
/// connection) ends the run.
async fn closed_loop<W>(
    settings: &Settings,
    path: &str,
    op_name: &'static str,
    workers: Vec<W>,
    op: impl AsyncFn(&mut W, u64) -> anyhow::Result<bool>,
) -> anyhow::Result<Measured> {
    let measure_from = Instant::now() + WARM_UP;
    let until = measure_from + settings.measure;
    let runs = workers.into_iter().enumerate().map(|(index, mut worker)| {
        let op = &op;
        async move {
            let mut count = WorkerCount::default();
            let mut n = index as u64 * 7919;
            loop {
                let started = Instant::now();
                if started >= until {
                    return Ok::<_, anyhow::Error>(count);
                }
                n += 1;
                let ok = op(&mut worker, n % KEYS).await?;
                if started >= measure_from {
                    count.requests += 1;
                    count.failures += u64::from(!ok);
                    let micros = started.elapsed().as_micros();
                    count
                        .latencies_us
                        .push(u32::try_from(micros).unwrap_or(u32::MAX));
                }
            }
        }
    });
    let mut measured = Measured {
        path: path.to_string(),
        op: op_name,
        requests: 0,
        failures: 0,
        elapsed: settings.measure,
        latencies_us: Vec::new(),
    };
    for count in futures::future::join_all(runs).await {
        let count = count?;
        measured.requests += count.requests;
        measured.failures += count.failures;
        measured.latencies_us.extend(count.latencies_us);
    }
    Ok(measured)
}

// ---------------------------------------------------------------------------
// Through the sidecar
// ---------------------------------------------------------------------------

/// One keep-alive HTTP/1.1 connection to the sidecar.
struct HttpConnection {
    sender: http1::SendRequest<Full<Bytes>>,
}

impl HttpConnection {
    async fn open(addr: SocketAddr) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(HttpConnection { sender })
    }

    /// Sends one request, reads the whole answer, and tells whether it was a success.
    async fn exchange(&mut self, method: &str, uri: &str, body: Bytes) -> anyhow::Result<bool> {
        let request = hyper::Request::builder()
            .method(method)
            .uri(uri)
            .header(hyper::header::HOST, "127.0.0.1")
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let ok = response.status().is_success();
        response.into_body().collect().await?;
        Ok(ok)
    }
}

fn value() -> String {
    "v".repeat(VALUE_BYTES)
}

/// SET then GET through the HTTP API on `store`.
async fn measure_store(
    settings: &Settings,
    addr: SocketAddr,
    store: &str,
) -> anyhow::Result<Vec<Measured>> {
    let mut connections = Vec::new();
    for _ in 0..settings.connections {
        connections.push(HttpConnection::open(addr).await?);
    }
    // Every key exists before the reads.
    let items: Vec<_> = (0..KEYS)
        .map(|n| serde_json::json!({"key": format!("k{n}"), "value": value()}))
        .collect();
    let all = Bytes::from(serde_json::to_vec(&items)?);
    let save = format!("/v1.0/state/{store}");
    ensure!(
        connections[0].exchange("POST", &save, all).await?,
        "could not fill {store}"
    );

    let path = format!("HTTP → {store}");
    let value = value();
    let set = closed_loop(
        settings,
        &path,
        "SET",
        connections,
        async |c: &mut HttpConnection, n| {
            let body = format!(r#"[{{"key":"k{n}","value":"{value}"}}]"#);
            c.exchange("POST", &save, Bytes::from(body)).await
        },
    )
    .await?;
    let mut connections = Vec::new();
    for _ in 0..settings.connections {
        connections.push(HttpConnection::open(addr).await?);
    }
    let get = closed_loop(
        settings,
        &path,
        "GET",
        connections,
        async |c: &mut HttpConnection, n| {
            c.exchange("GET", &format!("/v1.0/state/{store}/k{n}"), Bytes::new())
                .await
        },
    )
    .await?;
    Ok(vec![set, get])
}

/// Concurrency levels of the gRPC-versus-HTTP rows (the issue's 1, 16, 64).
const STREAM_COUNTS: [usize; 3] = [1, 16, 64];

/// Where the sidecar's gRPC API listens, from its `gRPC API listening on` log line.
fn grpc_addr(logs: &str) -> anyhow::Result<SocketAddr> {
    let (_, rest) = logs
        .split_once("gRPC API listening on ")
        .context("the sidecar did not log its gRPC address")?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || matches!(c, '.' | ':'))
        .collect();
    Ok(addr.parse()?)
}

/// SET then GET through the gRPC API on `store`, `streams` calls in flight
/// on one HTTP/2 connection (as an SDK's single channel does).
async fn measure_grpc_store(
    settings: &Settings,
    addr: SocketAddr,
    store: &str,
    streams: usize,
) -> anyhow::Result<Vec<Measured>> {
    use outrig::api::grpc::proto::common::StateItem;
    use outrig::api::grpc::proto::runtime::{
        GetStateRequest, SaveStateRequest, dapr_client::DaprClient,
    };
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let client = DaprClient::new(channel);
    let item = |n: u64| StateItem {
        key: format!("k{n}"),
        value: value().into_bytes(),
        ..Default::default()
    };
    let fill = SaveStateRequest {
        store_name: store.to_owned(),
        states: (0..KEYS).map(item).collect(),
    };
    client.clone().save_state(fill).await?;
    let path = format!("gRPC → {store}, {streams} streams");
    let workers = || vec![client.clone(); streams];
    let set = closed_loop(
        settings,
        &path,
        "SET",
        workers(),
        async |c: &mut DaprClient<_>, n| {
            let request = SaveStateRequest {
                store_name: store.to_owned(),
                states: vec![item(n)],
            };
            Ok(c.save_state(request).await.is_ok())
        },
    )
    .await?;
    let get = closed_loop(
        settings,
        &path,
        "GET",
        workers(),
        async |c: &mut DaprClient<_>, n| {
            let request = GetStateRequest {
                store_name: store.to_owned(),
                key: format!("k{n}"),
                ..Default::default()
            };
            Ok(c.get_state(request)
                .await
                .is_ok_and(|r| !r.get_ref().data.is_empty()))
        },
    )
    .await?;
    Ok(vec![set, get])
}

/// gRPC and HTTP side by side on `store` at each of [`STREAM_COUNTS`].
async fn measure_grpc_and_http(
    settings: &Settings,
    sidecar: &common::Sidecar,
    store: &str,
) -> anyhow::Result<Vec<Measured>> {
    let grpc = grpc_addr(&sidecar.logs())?;
    let mut rows = Vec::new();
    for streams in STREAM_COUNTS {
        let at = Settings {
            measure: settings.measure,
            connections: streams,
            starts: settings.starts,
        };
        rows.extend(measure_grpc_store(&at, grpc, store, streams).await?);
        for mut row in measure_store(&at, sidecar.addr, store).await? {
            row.path = format!("HTTP → {store}, {streams} connections");
            rows.push(row);
        }
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------
// Native Redis, the baseline
// ---------------------------------------------------------------------------

/// A last-write SET in Dapr's layout, the work the component's write script
/// does for one unconditional write.
const NATIVE_SET: &str = r#"
local version = redis.call("HGET", KEYS[1], "version")
redis.call("HSET", KEYS[1], "data", ARGV[1], "version", (tonumber(version) or 0) + 1)
redis.call("PERSIST", KEYS[1])
return 0
"#;

async fn measure_native_redis(settings: &Settings, prefix: &str) -> anyhow::Result<Vec<Measured>> {
    let client = redis::Client::open(format!("redis://{REDIS_HOST}/"))?;
    let connect = async || -> anyhow::Result<Vec<redis::aio::MultiplexedConnection>> {
        let mut connections = Vec::new();
        for _ in 0..settings.connections {
            connections.push(client.get_multiplexed_async_connection().await?);
        }
        Ok(connections)
    };
    let script = redis::Script::new(NATIVE_SET);
    let value = value();
    let path = "native `redis` crate";
    let set = closed_loop(
        settings,
        path,
        "SET",
        connect().await?,
        async |c: &mut redis::aio::MultiplexedConnection, n| {
            let key = format!("{prefix}||k{n}");
            script.key(&key).arg(&value).invoke_async::<i64>(c).await?;
            Ok(true)
        },
    )
    .await?;
    let get = closed_loop(
        settings,
        path,
        "GET",
        connect().await?,
        async |c: &mut redis::aio::MultiplexedConnection, n| {
            let key = format!("{prefix}||k{n}");
            let (_hash, _ttl): (redis::Value, i64) = redis::pipe()
                .cmd("HGETALL")
                .arg(&key)
                .cmd("PTTL")
                .arg(&key)
                .query_async(c)
                .await?;
            Ok(true)
        },
    )
    .await?;
    Ok(vec![set, get])
}

fn delete_redis_keys(pattern: &str) -> anyhow::Result<()> {
    let mut conn = common::redis_connection()?;
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn)?;
    for chunk in keys.chunks(500) {
        let _: i64 = redis::cmd("DEL").arg(chunk).query(&mut conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Start and memory
// ---------------------------------------------------------------------------

/// The status code of `GET /v1.0/healthz` on `port`, if it answers.
async fn healthz_status(port: u16) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    stream
        .write_all(b"GET /v1.0/healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.ok()?;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace().nth(1)?.parse().ok()
}

/// Resident memory of `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS line")?;
    line.split_whitespace()
        .nth(1)
        .context("malformed VmRSS")?
        .parse()
        .context("malformed VmRSS")
}

/// Spawn → healthz 204, then RSS after a short idle time.
async fn start_once(launch: Launch, workdir: &Path) -> anyhow::Result<(Duration, u64)> {
    let port = common::free_port()?;
    let launch = launch.port(port);
    let started = Instant::now();
    let mut child = launch.spawn_quiet(workdir)?;
    loop {
        if healthz_status(port).await == Some(204) {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("outrig exited with {status} before it was healthy");
        }
        if started.elapsed() > common::START_DEADLINE {
            bail!("outrig was not healthy within {:?}", common::START_DEADLINE);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    tokio::time::sleep(SETTLE).await;
    let rss = rss_kib(child.id().context("outrig exited")?)?;
    child.kill().await?;
    Ok((took, rss))
}

/// Several starts of the same configuration (after one to warm the cache):
/// median, min and max start time, and median RSS.
async fn measure_starts(
    settings: &Settings,
    label: &str,
    make: impl Fn() -> Launch,
) -> anyhow::Result<String> {
    let workdir = tempfile::tempdir()?;
    start_once(make(), workdir.path()).await?;
    let mut times = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..settings.starts.max(1) {
        let (took, kib) = start_once(make(), workdir.path()).await?;
        times.push(took);
        rss.push(kib);
    }
    times.sort();
    rss.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(format!(
        "| {label} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms(times[times.len() / 2]),
        ms(times[0]),
        ms(times[times.len() - 1]),
        rss[rss.len() / 2] as f64 / 1024.0
    ))
}

// ---------------------------------------------------------------------------

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env();
    let app = AppId::new("bench");
    let native_prefix = common::unique_name("bench-native");
    let resources = Resources::new();
    resources
        .builtin("mem", "state.in-memory", &[])
        .builtin("redb", "state.redb", &[])
        .redis_store("redis");
    let sidecar = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;

    let mut rows = Vec::new();
    for store in ["mem", "redb", "redis"] {
        eprintln!("measuring {store} …");
        rows.extend(measure_store(&settings, sidecar.addr, store).await?);
    }
    eprintln!("measuring gRPC next to HTTP …");
    let grpc_rows = measure_grpc_and_http(&settings, &sidecar, "mem").await?;
    eprintln!("measuring native Redis …");
    let native = measure_native_redis(&settings, &native_prefix).await;
    drop(sidecar);
    let cleanup = delete_redis_keys(&format!("{}||*", app.as_str()))
        .and_then(|()| delete_redis_keys(&format!("{native_prefix}||*")));
    let native = native?;
    cleanup?;

    eprintln!("measuring start to healthy …");
    let table = PgTable::new("bench");
    let six = Resources::new();
    six.builtin("mem1", "state.in-memory", &[])
        .builtin("mem2", "state.in-memory", &[])
        .builtin("redb1", "state.redb", &[])
        .builtin("redb2", "state.redb", &[])
        .redis_store("redis")
        .postgres_store("pg", &table);
    let start_default = measure_starts(&settings, "embedded default (1 component)", || {
        Launch::new(&app)
    })
    .await?;
    let start_six = measure_starts(
        &settings,
        "6 components (2 in-memory, 2 redb, redis, postgresql)",
        || Launch::new(&app).resources(six.path()),
    )
    .await?;

    println!(
        "## State API load: {} connections, {:?} per row after {:?} warm-up, {} cores\n",
        settings.connections,
        settings.measure,
        WARM_UP,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("| path | op | req/s | p50 (µs) | p99 (µs) | failed |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in rows.iter().chain(&native) {
        println!("{}", row.row());
    }
    println!();
    for op in ["SET", "GET"] {
        let through = rows.iter().find(|m| m.path.contains("redis") && m.op == op);
        let direct = native.iter().find(|m| m.op == op);
        if let (Some(through), Some(direct)) = (through, direct) {
            println!(
                "Redis {op} through `state.redis` / native client: {:.0} %",
                100.0 * through.per_second() / direct.per_second()
            );
        }
    }
    println!(
        "\n## State over gRPC and HTTP, in-memory store, {:?} per row\n",
        settings.measure
    );
    println!("| path | op | req/s | p50 (µs) | p99 (µs) | failed |");
    println!("|---|---|---:|---:|---:|---:|");
    for row in &grpc_rows {
        println!("{}", row.row());
    }
    println!(
        "\n## Start to healthy (warm cache) and idle RSS, {} starts\n",
        settings.starts
    );
    println!("| configuration | median (ms) | min (ms) | max (ms) | idle RSS (MiB) |");
    println!("|---|---:|---:|---:|---:|");
    println!("{start_default}\n{start_six}");
    Ok(())
}

fn main() -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
