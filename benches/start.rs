//! Start and instantiation timing (a benchmark, never a test):
//! `cargo bench --bench start`.
//!
//! On the bench-profile (optimised) `outrig`:
//! - start to healthy (spawn → `GET /v1.0/healthz` answers 204) with 6
//!   components (2 in-memory, 2 redb, Redis, PostgreSQL), cold (an empty
//!   Outrig home: Cranelift compiles every component) and warm (the same
//!   home again: compiled artifacts come from the cache);
//! - instantiation from the pool: a component that trapped has its instance
//!   discarded, so the next call first instantiates and `init`s a fresh one.
//!   The test-only hostile component (one instance) is made to trap, then
//!   read; that read's latency, less an ordinary read's, is the cost of a
//!   new instance.
//!
//! It prints Markdown; BENCHMARKS.md records a run. Knob:
//! `OUTRIG_BENCH_STARTS` (default 5).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use support::cells;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, PG_CONNECTION, REDIS_HOST, Resources};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The six components of the start measurement.
fn six_components(resources: &Resources, table: &str) {
    resources
        .builtin("mem1", "state.in-memory", &[])
        .builtin("mem2", "state.in-memory", &[])
        .builtin("redb1", "state.redb", &[])
        .builtin("redb2", "state.redb", &[])
        .builtin("redis", "state.redis", &[("redisHost", REDIS_HOST)])
        .builtin(
            "pg",
            "state.postgresql",
            &[("connectionString", PG_CONNECTION), ("tableName", table)],
        );
}

/// Spawns `outrig run` with `home` and waits until healthz answers 204.
async fn start_to_healthy(app: &AppId, resources: &Path, home: &Path) -> anyhow::Result<Duration> {
    let port = common::free_port()?;
    let workdir = tempfile::tempdir()?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new(common::outrig_bin())
        .args(["run", "--app-id", app.as_str(), "--no-watch"])
        .args([
            "--dapr-http-port",
            &port.to_string(),
            "--dapr-grpc-port",
            "0",
            "--metrics-port",
            "0",
        ])
        .arg("--home")
        .arg(home)
        .arg("--resources-path")
        .arg(resources)
        .current_dir(workdir.path())
        .env_remove("DAPR_API_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning outrig")?;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1.0/healthz");
    loop {
        if let Ok(reply) = client.get(&url).send().await
            && reply.status().as_u16() == 204
        {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("outrig exited with {status} before it was healthy");
        }
        ensure!(
            started.elapsed() < common::START_DEADLINE,
            "outrig was not healthy within {:?}",
            common::START_DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    child.kill().await?;
    Ok(took)
}

/// (ordinary read, read that first instantiates a fresh instance) latencies.
async fn instantiation(rounds: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let app = AppId::new("bench-instantiate");
    let resources = Resources::new();
    let wasm = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
    resources.wasm(
        "hostile",
        "state.hostile",
        wasm,
        None,
        &[("maxInstances", "1")],
    );
    let sc = Launch::new(&app)
        .resources(resources.path())
        .args(&["--no-watch"])
        .start()
        .await?;
    let (mut warm, mut fresh) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let started = Instant::now();
        sc.get_state("hostile", "ordinary")
            .await?
            .ensure_status(204)?;
        warm.push(started.elapsed());
        sc.get_state("hostile", "trap")
            .await?
            .ensure_error(500, "ERR_STATE_GET")?;
        let started = Instant::now();
        sc.get_state("hostile", "ordinary")
            .await?
            .ensure_status(204)?;
        fresh.push(started.elapsed());
    }
    Ok((warm, fresh))
}

async fn run() -> anyhow::Result<()> {
    let starts = support::knob("OUTRIG_BENCH_STARTS", 5) as usize;
    let app = AppId::new("bench-start");
    let resources = Resources::new();
    let table = format!("bench_start_{}", std::process::id());
    six_components(&resources, &table);
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..starts.max(1) {
        let home = tempfile::tempdir()?;
        cold.push(start_to_healthy(&app, resources.path(), home.path()).await?);
        warm.push(start_to_healthy(&app, resources.path(), home.path()).await?);
    }
    let _ = common::psql(&format!("DROP TABLE IF EXISTS {table}"));
    let (ordinary, fresh) = instantiation(starts.max(1) * 10).await?;

    println!("| measure | median (ms) | min (ms) | max (ms) | runs |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| start to healthy, 6 components, cold (empty home) | {} |",
        cells(&cold)
    );
    println!(
        "| start to healthy, 6 components, warm (cached artifacts) | {} |",
        cells(&warm)
    );
    println!(
        "| read served by a pooled instance | {} |",
        cells(&ordinary)
    );
    println!(
        "| read that first instantiates and `init`s a fresh instance | {} |",
        cells(&fresh)
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    run().await
}
