//! Hot reload end to end: components are swapped, broken, added and removed
//! while `outrig run` serves, without one failed request.
//!
//! The component swapped is the test-only `test-versioned` guest: every
//! read answers `{"version": V}` with `V` from its YAML metadata, so each
//! response tells which version served it. Two versions differ in both
//! their YAML (`blue`, `green`) and their `.wasm` bytes (the second copy
//! carries an extra custom section, so it has another sha256).
//!
//! Each trigger is exercised: the file watch, `SIGHUP` and
//! `POST /v1.0/outrig/reload`. Swap times and request rates are printed,
//! never asserted.

mod common;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, Resources, Sidecar, component_yaml};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// The swapped component's name.
const STORE: &str = "versioned";
/// A second store, so that a removed component is "not found" rather than
/// "no state store configured".
const MEM: &str = "mem";
/// How long a change may take to be seen serving before the test fails:
/// a hang guard far above any swap, not a performance assertion.
const SWAP_DEADLINE: Duration = Duration::from_secs(60);

/// Two `.wasm` files of `test-versioned` with different bytes.
struct Wasm {
    dir: TempDir,
    blue: PathBuf,
    green: PathBuf,
}

impl Wasm {
    fn new() -> anyhow::Result<Self> {
        let built = Path::new(outrig::components::builtin::TEST_VERSIONED_PATH);
        ensure!(
            built.is_file(),
            "the test-versioned component is not built at {}",
            built.display()
        );
        let bytes = std::fs::read(built)?;
        let dir = tempfile::tempdir()?;
        let blue = dir.path().join("blue.wasm");
        let green = dir.path().join("green.wasm");
        std::fs::write(&blue, &bytes)?;
        std::fs::write(&green, with_custom_section(&bytes, "outrig-test", b"green"))?;
        Ok(Wasm { dir, blue, green })
    }

    /// A file of garbage named like a component.
    fn garbage(&self) -> anyhow::Result<PathBuf> {
        let path = self.dir.path().join("garbage.wasm");
        std::fs::write(&path, b"\0asm, but not really")?;
        Ok(path)
    }
}

/// `component` with a custom section appended: still valid, other bytes.
fn with_custom_section(component: &[u8], name: &str, payload: &[u8]) -> Vec<u8> {
    let mut content = leb128(name.len());
    content.extend_from_slice(name.as_bytes());
    content.extend_from_slice(payload);
    let mut out = component.to_vec();
    out.push(0);
    out.extend(leb128(content.len()));
    out.extend(content);
    out
}

fn leb128(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// The YAML of the versioned component: `version` from `wasm`, with extra
/// metadata lines and an optional pinned sha256.
fn versioned_yaml(wasm: &Path, version: &str, extra: &[(&str, &str)], sha: Option<&str>) -> String {
    let mut spec = format!(
        "  type: state.versioned\n  version: v1\n  metadata:\n  - name: version\n    value: \"{version}\"\n"
    );
    for (name, value) in extra {
        spec.push_str(&format!("  - name: {name}\n    value: \"{value}\"\n"));
    }
    spec.push_str(&format!(
        "  wasm:\n    path: {}\n",
        json!(wasm.display().to_string())
    ));
    if let Some(sha) = sha {
        spec.push_str(&format!("    sha256: \"{sha}\"\n"));
    }
    spec.push_str("    capabilities:\n      maxInstances: 4\n");
    component_yaml(STORE, &spec)
}

/// Writes the versioned component's YAML.
fn write_versioned(resources: &Resources, yaml: &str) {
    resources.file(&format!("{STORE}.yaml"), yaml);
}

/// Starts a sidecar serving `blue` (from `file`) and an in-memory store.
async fn start(
    app: &AppId,
    resources: &Resources,
    file: &Path,
    args: &[&str],
) -> anyhow::Result<Arc<Sidecar>> {
    write_versioned(resources, &versioned_yaml(file, "blue", &[], None));
    resources.builtin(MEM, "state.in-memory", &[]);
    let sc = Launch::new(app)
        .resources(resources.path())
        .args(args)
        .start()
        .await?;
    ensure!(version(&sc).await? == "blue", "blue does not serve first");
    Ok(Arc::new(sc))
}

/// The version the component answers a read with.
async fn version(sc: &Sidecar) -> anyhow::Result<String> {
    let reply = sc.get_state(STORE, "k").await?;
    reply.ensure_status(200)?;
    let value = reply.json()?;
    value["version"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| reply.describe("no version in the answer"))
}

/// Waits until reads answer `expected`; returns how long that took.
async fn until_serving(sc: &Sidecar, expected: &str) -> anyhow::Result<Duration> {
    let since = Instant::now();
    common::poll_until(&format!("{expected} serving"), SWAP_DEADLINE, || async {
        Ok((version(sc).await? == expected).then_some(()))
    })
    .await?;
    Ok(since.elapsed())
}

/// `POST /v1.0/outrig/reload`, returning its report.
async fn reload_route(sc: &Sidecar) -> anyhow::Result<Value> {
    sc.call(Method::POST, "/v1.0/outrig/reload", None)
        .await?
        .ensure_status(200)?
        .json()
}

/// Reads of the versioned component from several tasks until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
    started: Instant,
}

/// What the readers saw.
#[derive(Default)]
struct Tally {
    /// Successful reads by the version that answered.
    by_version: BTreeMap<String, u64>,
    /// Failed reads.
    failed: u64,
    /// The first few failures, for the message.
    examples: Vec<String>,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        for (version, count) in other.by_version {
            *self.by_version.entry(version).or_default() += count;
        }
        self.failed += other.failed;
        self.examples.extend(other.examples);
        self.examples.truncate(5);
    }

    fn total(&self) -> u64 {
        self.by_version.values().sum::<u64>() + self.failed
    }
}

impl Load {
    fn start(sc: &Arc<Sidecar>, readers: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..readers)
            .map(|reader| {
                let sc = Arc::clone(sc);
                let stop = Arc::clone(&stop);
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let key = format!("k{reader}");
                    while !stop.load(Ordering::Relaxed) {
                        let answer = sc.get_state(STORE, &key).await.and_then(|reply| {
                            reply.ensure_status(200)?;
                            let value = reply.json()?;
                            Ok(value["version"].as_str().unwrap_or("(none)").to_owned())
                        });
                        match answer {
                            Ok(version) => *tally.by_version.entry(version).or_default() += 1,
                            Err(err) => {
                                tally.failed += 1;
                                if tally.examples.len() < 5 {
                                    tally.examples.push(format!("{err:#}"));
                                }
                            }
                        }
                    }
                    tally
                })
            })
            .collect();
        Load {
            stop,
            tasks,
            started: Instant::now(),
        }
    }

    /// Stops the readers; fails on any failed read or an unknown version.
    async fn finish(self, what: &str, versions: &[&str]) -> anyhow::Result<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        let mut tally = Tally::default();
        for task in self.tasks {
            tally.add(task.await.context("a reader panicked")?);
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        println!(
            "[{what}] {} reads in {elapsed:.1} s ({:.0}/s), by version {:?}, {} failed",
            tally.total(),
            tally.total() as f64 / elapsed,
            tally.by_version,
            tally.failed
        );
        ensure!(
            tally.failed == 0,
            "[{what}] {} of {} reads failed, e.g. {:?}",
            tally.failed,
            tally.total(),
            tally.examples
        );
        for version in tally.by_version.keys() {
            ensure!(
                versions.contains(&version.as_str()),
                "[{what}] a read was answered by `{version}`, not one of {versions:?}"
            );
        }
        Ok(tally)
    }
}

#[tokio::test]
async fn five_swaps_under_load_fail_no_request() -> anyhow::Result<()> {
    const SWAPS: u32 = 5;
    /// Each swap is given this long, so the load runs ~10 s in all.
    const SLOT: Duration = Duration::from_secs(2);
    let app = AppId::new("hot-swap");
    let resources = Resources::new();
    let wasm = Wasm::new()?;
    let sc = start(&app, &resources, &wasm.blue, &[]).await?;
    let load = Load::start(&sc, 8);
    let started = Instant::now();
    let mut swap_times = Vec::new();
    for swap in 0..SWAPS {
        let (version, file) = if swap % 2 == 0 {
            ("green", &wasm.green)
        } else {
            ("blue", &wasm.blue)
        };
        write_versioned(&resources, &versioned_yaml(file, version, &[], None));
        swap_times.push(until_serving(&sc, version).await?);
        let slot_end = started + SLOT * (swap + 1);
        tokio::time::sleep_until(slot_end.into()).await;
    }
    let tally = load.finish("5 swaps", &["blue", "green"]).await?;
    println!(
        "[5 swaps] file written -> new version serving (200 ms debounce included): {swap_times:?}"
    );
    ensure!(
        tally.by_version.len() == 2,
        "both versions should have answered: {:?}",
        tally.by_version
    );
    let listed = sc.component_metadata(STORE).await?;
    let green_sha = common::sha256_of(&wasm.green);
    ensure!(
        listed["status"] == "loaded" && listed["sha256"] == green_sha.as_str(),
        "the last swap (green, {green_sha}) is not what metadata lists: {listed}"
    );
    Ok(())
}

#[tokio::test]
async fn broken_versions_leave_the_old_one_serving_and_show_in_metadata() -> anyhow::Result<()> {
    let app = AppId::new("hot-broken");
    let resources = Resources::new();
    let wasm = Wasm::new()?;
    // Reloads come from the route only, so each report is this test's.
    let sc = start(&app, &resources, &wasm.blue, &["--no-watch"]).await?;
    let blue_sha = common::sha256_of(&wasm.blue);
    let good = versioned_yaml(&wasm.blue, "blue", &[], None);
    let garbage = wasm.garbage()?;
    let zeros = "0".repeat(64);
    // (what, the broken YAML, a word its error must contain)
    let cases = [
        (
            "bad wasm",
            versioned_yaml(&garbage, "red", &[], None),
            "valid",
        ),
        (
            "init fails",
            versioned_yaml(&wasm.green, "red", &[("failInit", "true")], None),
            "failinit",
        ),
        (
            "wrong sha256",
            versioned_yaml(&wasm.green, "red", &[], Some(&zeros)),
            "sha256",
        ),
        ("YAML error", "kind: Component\nspec: [".to_owned(), "yaml"),
    ];
    let load = Load::start(&sc, 4);
    for (what, yaml, word) in &cases {
        write_versioned(&resources, yaml);
        let report = reload_route(&sc).await?;
        let failure = &report["failed"][0];
        ensure!(
            failure["stillServing"] == true
                && failure["error"]
                    .as_str()
                    .is_some_and(|e| e.to_lowercase().contains(word)),
            "[{what}] the report should list a failure mentioning `{word}` with the old version serving: {report}"
        );
        let listed = sc.component_metadata(STORE).await?;
        ensure!(
            listed["status"] == "stale"
                && listed["sha256"] == blue_sha.as_str()
                && listed["error"]
                    .as_str()
                    .is_some_and(|e| e.to_lowercase().contains(word)),
            "[{what}] metadata should list blue ({blue_sha}) as stale with the error: {listed}"
        );
        ensure!(
            version(&sc).await? == "blue",
            "[{what}] blue no longer serves"
        );
        write_versioned(&resources, &good);
        let report = reload_route(&sc).await?;
        ensure!(
            report["unchanged"]
                .as_array()
                .is_some_and(|u| u.contains(&json!(STORE))),
            "[{what}] restoring the serving version should change nothing: {report}"
        );
        let listed = sc.component_metadata(STORE).await?;
        ensure!(
            listed["status"] == "loaded",
            "[{what}] restored, yet not loaded: {listed}"
        );
    }
    load.finish("broken versions", &["blue"]).await?;
    Ok(())
}

#[tokio::test]
async fn sighup_and_the_route_add_and_remove_components() -> anyhow::Result<()> {
    let app = AppId::new("hot-add");
    let resources = Resources::new();
    let wasm = Wasm::new()?;
    let sc = start(&app, &resources, &wasm.blue, &["--no-watch"]).await?;
    let load = Load::start(&sc, 4);

    resources.builtin("extra", "state.in-memory", &[]);
    sc.signal(nix::sys::signal::Signal::SIGHUP)?;
    common::poll_until("extra listed after SIGHUP", SWAP_DEADLINE, || async {
        let listed = sc.metadata().await?;
        let components = listed["components"].as_array().cloned().unwrap_or_default();
        Ok(components
            .iter()
            .any(|c| c["name"] == "extra" && c["status"] == "loaded")
            .then_some(()))
    })
    .await?;
    sc.put("extra", "k", json!("added without restart")).await?;
    ensure!(sc.value("extra", "k").await? == Some(json!("added without restart")));

    std::fs::remove_file(resources.path().join("extra.yaml"))?;
    let report = reload_route(&sc).await?;
    ensure!(report["removed"] == json!(["extra"]), "{report}");
    sc.get_state("extra", "k")
        .await?
        .ensure_error(400, "ERR_STATE_STORE_NOT_FOUND")?;
    ensure!(
        sc.component_metadata("extra").await.is_err(),
        "a removed component is still listed"
    );

    // A new version through SIGHUP, under the same load.
    write_versioned(&resources, &versioned_yaml(&wasm.green, "green", &[], None));
    sc.signal(nix::sys::signal::Signal::SIGHUP)?;
    let took = until_serving(&sc, "green").await?;
    println!("[SIGHUP] signal -> green serving: {took:?}");
    load.finish("add/remove", &["blue", "green"]).await?;
    ensure!(
        sc.logs().contains("cause=Signal"),
        "no reload was logged as caused by SIGHUP"
    );
    Ok(())
}

#[tokio::test]
async fn the_file_watch_follows_wasm_bytes_and_new_and_removed_files() -> anyhow::Result<()> {
    let app = AppId::new("hot-watch");
    let resources = Resources::new();
    let wasm = Wasm::new()?;
    // The YAML names one file whose bytes are then replaced in place.
    let current = wasm.dir.path().join("current.wasm");
    std::fs::copy(&wasm.blue, &current)?;
    let sc = start(&app, &resources, &current, &[]).await?;
    let green_sha = common::sha256_of(&wasm.green);
    let blue_sha = common::sha256_of(&wasm.blue);
    let sha_listed = |expected: String| {
        let sc = Arc::clone(&sc);
        async move {
            common::poll_until(
                &format!("sha256 {expected} listed"),
                SWAP_DEADLINE,
                || async {
                    let listed = sc.component_metadata(STORE).await?;
                    Ok((listed["sha256"] == expected.as_str()).then_some(()))
                },
            )
            .await
        }
    };
    sha_listed(blue_sha).await?;
    let load = Load::start(&sc, 4);

    std::fs::copy(&wasm.green, &current)?;
    sha_listed(green_sha).await?;

    resources.builtin("watched", "state.in-memory", &[]);
    common::poll_until("a new file's component served", SWAP_DEADLINE, || async {
        Ok((sc.get_state("watched", "k").await?.status == 204).then_some(()))
    })
    .await?;
    std::fs::remove_file(resources.path().join("watched.yaml"))?;
    common::poll_until("a removed file's component gone", SWAP_DEADLINE, || async {
        Ok((sc.get_state("watched", "k").await?.status == 400).then_some(()))
    })
    .await?;
    load.finish("watch", &["blue"]).await?;
    ensure!(
        sc.logs().contains("cause=FileChange"),
        "no reload was logged as caused by a file change"
    );
    Ok(())
}

#[tokio::test]
async fn the_reload_route_needs_the_api_token() -> anyhow::Result<()> {
    const TOKEN: &str = "reload-secret";
    let app = AppId::new("hot-token");
    let resources = Resources::new();
    resources.builtin(MEM, "state.in-memory", &[]);
    let sc = Launch::new(&app)
        .resources(resources.path())
        .env("DAPR_API_TOKEN", TOKEN)
        .start()
        .await?;
    sc.call(Method::POST, "/v1.0/outrig/reload", None)
        .await?
        .ensure_status(401)?;
    let request = sc
        .request(Method::POST, "/v1.0/outrig/reload")
        .header("dapr-api-token", TOKEN);
    let reply = sc.send("POST /v1.0/outrig/reload", request).await?;
    let report = reply.ensure_status(200)?.json()?;
    match report["unchanged"].as_array() {
        Some(unchanged) if unchanged.contains(&json!(MEM)) => Ok(()),
        _ => bail!("expected {MEM} unchanged: {report}"),
    }
}

/// Writes and reads back keys on `store` from several tasks until stopped;
/// returns (keys written, failures with examples).
fn spawn_writers(
    sc: &Arc<Sidecar>,
    store: &'static str,
    writers: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<(Vec<String>, Vec<String>)>> {
    (0..writers)
        .map(|writer| {
            let sc = Arc::clone(sc);
            let stop = Arc::clone(stop);
            tokio::spawn(async move {
                let (mut written, mut failures) = (Vec::new(), Vec::new());
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let key = format!("w{writer}-{n}");
                    let round_trip = async {
                        sc.put(store, &key, json!(n)).await?;
                        let read = sc.value(store, &key).await?;
                        ensure!(read == Some(json!(n)), "{key} read back as {read:?}");
                        Ok::<_, anyhow::Error>(())
                    };
                    match round_trip.await {
                        Ok(()) => written.push(key),
                        Err(err) => failures.push(format!("{err:#}")),
                    }
                }
                (written, failures)
            })
        })
        .collect()
}

#[tokio::test]
async fn a_redb_store_is_swapped_under_writes_with_a_pause_not_an_error() -> anyhow::Result<()> {
    const DB: &str = "db";
    let app = AppId::new("hot-redb");
    let resources = Resources::new();
    let data = tempfile::tempdir()?;
    let data_dir = data.path().display().to_string();
    resources.builtin(DB, "state.redb", &[("dataDir", &data_dir)]);
    let sc = Arc::new(
        Launch::new(&app)
            .resources(resources.path())
            .args(&["--no-watch"])
            .start()
            .await?,
    );
    let stop = Arc::new(AtomicBool::new(false));
    let writers = spawn_writers(&sc, DB, 4, &stop);
    let mut pauses = Vec::new();
    for swap in 0..3 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let generation = swap.to_string();
        resources.builtin(
            DB,
            "state.redb",
            &[("dataDir", &data_dir), ("generation", &generation)],
        );
        let started = Instant::now();
        let report = reload_route(&sc).await?;
        pauses.push(started.elapsed());
        ensure!(report["updated"] == json!([DB]), "swap {swap}: {report}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut written, mut failures) = (Vec::new(), Vec::new());
    for writer in writers {
        let (keys, failed) = writer.await.context("a writer panicked")?;
        written.extend(keys);
        failures.extend(failed);
    }
    println!(
        "[redb] {} keys written and read back across 3 swaps, {} failed; reload (drain + reopen) took {pauses:?}",
        written.len(),
        failures.len()
    );
    ensure!(
        failures.is_empty(),
        "{} round trips failed, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    for key in written.iter().step_by(written.len().div_ceil(20).max(1)) {
        ensure!(
            sc.value(DB, key).await?.is_some(),
            "{key}, written before a swap, is gone after it"
        );
    }
    Ok(())
}
