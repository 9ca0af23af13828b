//! Hot-reload timing harness (a benchmark, never a test):
//! `cargo bench --bench hot_reload`.
//!
//! On the bench-profile (optimised) `outrig`, with the test-only
//! `test-versioned` component, it measures how long a swap takes:
//! - warm: `POST /v1.0/outrig/reload` after the YAML changed, the `.wasm`
//!   already compiled by this process (round trip of the route, which
//!   answers once the new version serves; and the reload's own `elapsedMs`);
//! - warm from disk: the same in a new process, the `.wasm` compiled by an
//!   earlier one and read from the on-disk artifact cache;
//! - cold: the same with a `.wasm` never seen before (a fresh custom section
//!   gives it a new sha256), so Cranelift compiles it;
//! - file change: the YAML is rewritten and reads are polled until the new
//!   version answers, through the file watch and its 200 ms debounce.
//!
//! It prints Markdown; BENCHMARKS.md records a run. Knob:
//! `OUTRIG_BENCH_SWAPS` (default 20 warm, a quarter of that cold).

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use support::cells;

use anyhow::{Context, ensure};
use common::{AppId, Launch, Resources, Sidecar, component_yaml};
use reqwest::Method;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const STORE: &str = "versioned";

/// The versioned component's YAML: `version` served from `wasm`.
fn yaml(wasm: &Path, version: &str) -> String {
    let spec = format!(
        "  type: state.versioned\n  metadata:\n  - name: version\n    value: \"{version}\"\n  wasm:\n    path: {}\n",
        serde_json::Value::String(wasm.display().to_string())
    );
    component_yaml(STORE, &spec)
}

/// A copy of `component` with a custom section holding `tag`: valid, and a
/// new sha256 for every new tag.
fn tagged(component: &[u8], tag: &str) -> Vec<u8> {
    let name = b"outrig-bench";
    let size = 1 + name.len() + tag.len();
    assert!(size < 128, "one-byte LEB128 sizes only");
    let mut out = component.to_vec();
    out.extend_from_slice(&[0, size as u8, name.len() as u8]);
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// The version a read answers with.
async fn version(sc: &Sidecar) -> anyhow::Result<String> {
    let reply = sc.get_state(STORE, "k").await?;
    reply.ensure_status(200)?;
    Ok(reply.json()?["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Polls reads closely (every 2 ms, up to a minute) until `tag` answers.
async fn until_serving(sc: &Sidecar, tag: &str) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    while version(sc).await? != tag {
        ensure!(Instant::now() < until, "{tag} never served");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Rewrites the YAML to serve `tag` from `wasm`, reloads through the route
/// and checks the new version answers. Returns (route round trip, the
/// reload's own elapsed time).
async fn swap_by_route(
    sc: &Sidecar,
    resources: &Resources,
    wasm: &Path,
    tag: &str,
) -> anyhow::Result<(Duration, Duration)> {
    resources.file(&format!("{STORE}.yaml"), &yaml(wasm, tag));
    let started = Instant::now();
    let report = sc
        .call(Method::POST, "/v1.0/outrig/reload", None)
        .await?
        .ensure_status(200)?
        .json()?;
    let round_trip = started.elapsed();
    ensure!(
        report["updated"] == serde_json::json!([STORE]),
        "the swap to {tag} did not update: {report}"
    );
    ensure!(version(sc).await? == tag, "{tag} does not serve");
    let elapsed = Duration::from_secs_f64(report["elapsedMs"].as_f64().unwrap_or_default() / 1e3);
    Ok((round_trip, elapsed))
}

async fn run() -> anyhow::Result<()> {
    let swaps = support::knob("OUTRIG_BENCH_SWAPS", 20) as usize;
    let built = Path::new(outrig::components::builtin::TEST_VERSIONED_PATH);
    let bytes = std::fs::read(built)
        .with_context(|| format!("the test-versioned component at {}", built.display()))?;
    let files = tempfile::tempdir()?;
    let warm: Vec<PathBuf> = (0..2)
        .map(|n| files.path().join(format!("warm{n}.wasm")))
        .collect();
    for (n, path) in warm.iter().enumerate() {
        std::fs::write(path, tagged(&bytes, &format!("warm{n}")))?;
    }
    let app = AppId::new("bench-reload");
    let resources = Resources::new();
    resources.file(&format!("{STORE}.yaml"), &yaml(&warm[0], "v0"));
    let sc = Launch::new(&app)
        .resources(resources.path())
        .args(&["--no-watch"])
        .start()
        .await?;
    // Both warm files compiled (and cached) before measuring.
    swap_by_route(&sc, &resources, &warm[1], "prime1").await?;
    swap_by_route(&sc, &resources, &warm[0], "prime0").await?;

    let (mut warm_trip, mut warm_reload) = (Vec::new(), Vec::new());
    for n in 0..swaps {
        let (trip, reload) =
            swap_by_route(&sc, &resources, &warm[n % 2], &format!("warm{n}")).await?;
        warm_trip.push(trip);
        warm_reload.push(reload);
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let (mut cold_trip, mut cold_reload) = (Vec::new(), Vec::new());
    let mut cold_files = Vec::new();
    for n in 0..(swaps / 4).max(1) {
        let path = files.path().join(format!("cold{n}.wasm"));
        std::fs::write(&path, tagged(&bytes, &format!("{nanos:x}-{n}")))?;
        let (trip, reload) = swap_by_route(&sc, &resources, &path, &format!("cold{n}")).await?;
        cold_trip.push(trip);
        cold_reload.push(reload);
        cold_files.push(path);
    }
    drop(sc);

    // A new process: the cold files are now in the on-disk cache only.
    resources.file(&format!("{STORE}.yaml"), &yaml(&warm[0], "v0"));
    let restarted = Launch::new(&app)
        .resources(resources.path())
        .args(&["--no-watch"])
        .start()
        .await?;
    let (mut disk_trip, mut disk_reload) = (Vec::new(), Vec::new());
    for (n, path) in cold_files.iter().enumerate() {
        let (trip, reload) =
            swap_by_route(&restarted, &resources, path, &format!("disk{n}")).await?;
        disk_trip.push(trip);
        disk_reload.push(reload);
    }
    drop(restarted);

    // Through the file watch: written → the new version answers.
    let watched = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;
    let mut by_file = Vec::new();
    for n in 0..(swaps / 2).max(1) {
        let tag = format!("file{n}");
        let started = Instant::now();
        resources.file(&format!("{STORE}.yaml"), &yaml(&warm[n % 2], &tag));
        until_serving(&watched, &tag).await?;
        by_file.push(started.elapsed());
    }
    let mut by_file_cold = Vec::new();
    for n in 0..(swaps / 4).max(1) {
        let tag = format!("filecold{n}");
        let path = files.path().join(format!("{tag}.wasm"));
        std::fs::write(&path, tagged(&bytes, &format!("{nanos:x}-f{n}")))?;
        let started = Instant::now();
        resources.file(&format!("{STORE}.yaml"), &yaml(&path, &tag));
        until_serving(&watched, &tag).await?;
        by_file_cold.push(started.elapsed());
    }

    let rows: [(&str, &[Duration]); 8] = [
        (
            "warm (compiled in this process), route round trip",
            &warm_trip,
        ),
        (
            "warm (compiled in this process), reload itself (`elapsedMs`)",
            &warm_reload,
        ),
        (
            "warm (on-disk artifact cache), route round trip",
            &disk_trip,
        ),
        (
            "warm (on-disk artifact cache), reload itself (`elapsedMs`)",
            &disk_reload,
        ),
        ("cold (Cranelift), route round trip", &cold_trip),
        (
            "cold (Cranelift), reload itself (`elapsedMs`)",
            &cold_reload,
        ),
        (
            "warm, file written → new version answers (200 ms debounce included)",
            &by_file,
        ),
        (
            "cold, file written → new version answers (200 ms debounce included)",
            &by_file_cold,
        ),
    ];
    println!("| swap | median (ms) | min (ms) | max (ms) | swaps |");
    println!("|---|---:|---:|---:|---:|");
    for (what, samples) in rows {
        println!("| {what} | {} |", cells(samples));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    run().await
}
