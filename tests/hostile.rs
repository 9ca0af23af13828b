//! The sandbox holds: a component that traps, spins, hoards memory, dials a
//! socket it was not granted, overflows its stack, returns 64 MiB, escapes
//! its directory through `..` or symlinks, or floods the log fails only the
//! call that asked for it (or, for the flood, loses its excess lines), with
//! Dapr's error and a message saying what happened, and the sidecar goes on
//! serving, on that component and others. A component that traps on every
//! call, or in `init`, is contained the same way. While hostile calls run,
//! a neighbour's latency is measured and reported (never asserted).
//!
//! The misbehaving component is the test-only `test-hostile` guest; its `get`
//! misbehaves by key, and its metadata `trap` breaks it whole (see
//! `components-wasm/test-hostile`).

mod common;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, Resources, Sidecar};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HOSTILE: &str = "hostile";
/// Bound on one misbehaving call and the checks after it, far above the
/// component's 1 s call timeout: reaching it means the call was never
/// stopped. A hang guard, not a performance assertion.
const CASE_DEADLINE: Duration = Duration::from_secs(30);
const MEM: &str = "mem";

/// The built test-hostile component.
fn hostile_wasm() -> anyhow::Result<&'static Path> {
    let wasm = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
    ensure!(
        wasm.is_file(),
        "the test-hostile component is not built at {}",
        wasm.display()
    );
    Ok(wasm)
}

/// The hostile component's capabilities unless a test says otherwise.
const DEFAULT_CAPABILITIES: &[(&str, &str)] = &[
    ("memoryMiB", "32"),
    ("timeoutMs", "1000"),
    ("maxInstances", "2"),
];

/// Declares the hostile component `name` (pinned by sha256) with
/// `metadata` and capabilities: `extra` lines (`name`, YAML value), then
/// the [`DEFAULT_CAPABILITIES`] it does not name. Returns the sha256.
fn declare_hostile(
    resources: &Resources,
    name: &str,
    metadata: &[(&str, &str)],
    extra: &[(&str, String)],
) -> anyhow::Result<String> {
    let wasm = hostile_wasm()?;
    let sha256 = common::sha256_of(wasm);
    let mut spec = format!(
        "  type: state.hostile\n  version: v1\n{}  wasm:\n    path: {}\n    sha256: {sha256}\n    capabilities:\n",
        common::metadata_yaml(metadata),
        Value::from(wasm.display().to_string()),
    );
    let defaults = DEFAULT_CAPABILITIES
        .iter()
        .filter(|(capability, _)| extra.iter().all(|(named, _)| named != capability))
        .map(|(capability, value)| (*capability, (*value).to_owned()));
    for (capability, value) in extra.iter().cloned().chain(defaults) {
        spec.push_str(&format!("      {capability}: {value}\n"));
    }
    resources.file(
        &format!("{name}.yaml"),
        &common::component_yaml(name, &spec),
    );
    Ok(sha256)
}

/// Starts a sidecar with the hostile component and an in-memory store, and
/// stores an ordinary key in each.
async fn start(app: &AppId, resources: &Resources) -> anyhow::Result<Sidecar> {
    start_granted(app, resources, &[]).await
}

/// [`start`], the hostile component also granted `extra` capabilities.
async fn start_granted(
    app: &AppId,
    resources: &Resources,
    extra: &[(&str, String)],
) -> anyhow::Result<Sidecar> {
    let sha256 = declare_hostile(resources, HOSTILE, &[], extra)?;
    resources.builtin(MEM, "state.in-memory", &[]);
    let sc = Launch::new(app).resources(resources.path()).start().await?;
    let hostile = sc.component_metadata(HOSTILE).await?;
    ensure!(
        hostile["status"] != "failed",
        "the hostile component did not load: {hostile}"
    );
    ensure!(
        hostile["sha256"] == sha256.as_str(),
        "metadata lists another sha256 than the file's ({sha256}): {hostile}"
    );
    sc.put(HOSTILE, "ordinary", json!("fine")).await?;
    sc.put(MEM, "ordinary", json!("also fine")).await?;
    Ok(sc)
}

/// Fails unless both components still answer ordinary requests. The hostile
/// store keeps its values inside an instance, and an instance that failed is
/// replaced by a fresh, empty one, so there a read must succeed (200 or 204)
/// but need not find the value.
async fn still_serves(sc: &Sidecar) -> anyhow::Result<()> {
    sc.healthz().await?.ensure_status(204)?;
    let reply = sc.get_state(HOSTILE, "ordinary").await?;
    ensure!(
        matches!(reply.status, 200 | 204),
        "{}",
        reply.describe("expected 200 or 204")
    );
    sc.put(HOSTILE, "written-after", json!(1)).await?;
    let found = sc.value(MEM, "ordinary").await?;
    ensure!(
        found == Some(json!("also fine")),
        "[{MEM}] `ordinary` is {found:?}"
    );
    sc.put(MEM, "written-after", json!(1)).await?;
    Ok(())
}

/// `GET` of a misbehaving key must fail with 500 `ERR_STATE_GET` and a
/// message containing one of `words` (case-insensitive).
async fn expect_contained(sc: &Sidecar, key: &str, words: &[&str]) -> anyhow::Result<()> {
    let reply = sc.get_state(HOSTILE, key).await?;
    reply.ensure_error(500, "ERR_STATE_GET")?;
    let message = reply.error_message().unwrap_or_default().to_lowercase();
    ensure!(
        words.iter().any(|w| message.contains(w)),
        "{}",
        reply.describe(&format!("expected a message mentioning one of {words:?}"))
    );
    Ok(())
}

#[tokio::test]
async fn each_misbehaviour_fails_one_call_and_the_sidecar_survives() -> anyhow::Result<()> {
    let app = AppId::new("hostile");
    let resources = Resources::new();
    let sc = start(&app, &resources).await?;
    // (key, what the error message must mention)
    let cases: &[(&str, &[&str])] = &[
        ("trap", &["trap", "panic", "unreachable"]),
        (
            "loop",
            &["timeout", "timed out", "within", "deadline", "interrupt"],
        ),
        ("bomb", &["memory"]),
        // A working sandbox refuses the connection; the guest reports the denial.
        ("socket", &["denied", "permission", "not permitted"]),
        ("recurse", &["stack", "trap"]),
        ("huge", &["memory", "too large", "limit"]),
    ];
    let mut failures = Vec::new();
    for (key, words) in cases {
        let case = async {
            if let Err(err) = expect_contained(&sc, key, words).await {
                failures.push(format!("[{key}] {err:#}"));
            }
            if let Err(err) = still_serves(&sc).await {
                failures.push(format!("[{key}] the sidecar no longer serves: {err:#}"));
            }
        };
        if tokio::time::timeout(CASE_DEADLINE, case).await.is_err() {
            failures.push(format!(
                "[{key}] not stopped: no answer within {CASE_DEADLINE:?}"
            ));
            bail!(
                "{}\n--- outrig's output ---\n{}",
                failures.join("\n"),
                sc.logs()
            );
        }
    }
    let hostile = sc.component_metadata(HOSTILE).await?;
    ensure!(
        hostile["status"] != "failed",
        "the hostile component is now failed: {hostile}"
    );
    ensure!(
        failures.is_empty(),
        "{}\n--- outrig's output ---\n{}",
        failures.join("\n"),
        sc.logs()
    );
    Ok(())
}

#[tokio::test]
async fn more_spinning_calls_than_instances_all_time_out_and_the_pool_recovers()
-> anyhow::Result<()> {
    let app = AppId::new("hostile-pool");
    let resources = Resources::new();
    let sc = start(&app, &resources).await?;
    tokio::time::timeout(CASE_DEADLINE * 2, spin_three_then_trap_five(&sc))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "spinning calls were not stopped within {:?}\n{}",
                CASE_DEADLINE * 2,
                sc.logs()
            )
        })?
}

async fn spin_three_then_trap_five(sc: &Sidecar) -> anyhow::Result<()> {
    // Three spinning calls on two instances, and an in-memory read meanwhile:
    // the other component is never blocked by this one.
    let (a, b, c, other) = tokio::join!(
        sc.get_state(HOSTILE, "loop"),
        sc.get_state(HOSTILE, "loop"),
        sc.get_state(HOSTILE, "loop"),
        sc.value(MEM, "ordinary"),
    );
    for reply in [a?, b?, c?] {
        reply.ensure_status(500)?;
    }
    ensure!(
        other?.as_ref() == Some(&json!("also fine")),
        "the in-memory store answered wrongly"
    );
    still_serves(sc)
        .await
        .context("after three spinning calls")?;
    // Several traps in a row each get a fresh instance.
    for _ in 0..5 {
        sc.get_state(HOSTILE, "trap")
            .await?
            .ensure_error(500, "ERR_STATE_GET")?;
    }
    still_serves(sc).await.context("after five traps")
}

/// Fails unless the in-memory neighbour still answers with its value.
async fn neighbour_serves(sc: &Sidecar) -> anyhow::Result<()> {
    let found = sc.value(MEM, "ordinary").await?;
    ensure!(
        found == Some(json!("also fine")),
        "[{MEM}] `ordinary` is {found:?}"
    );
    Ok(())
}

/// What a trap's error message mentions.
const TRAP_WORDS: &[&str] = &["trap", "panic", "unreachable"];

/// A component name for the ones broken by metadata.
const BROKEN: &str = "broken";

/// Starts a sidecar with [`BROKEN`] (the hostile component with metadata
/// `trap: <trap>`) and the in-memory neighbour, which holds `ordinary`;
/// returns it with the broken component's metadata.
async fn start_broken(
    app: &AppId,
    resources: &Resources,
    trap: &str,
) -> anyhow::Result<(Sidecar, Value)> {
    declare_hostile(resources, BROKEN, &[("trap", trap)], &[])?;
    resources.builtin(MEM, "state.in-memory", &[]);
    let sc = Launch::new(app).resources(resources.path()).start().await?;
    let broken = sc.component_metadata(BROKEN).await?;
    sc.put(MEM, "ordinary", json!("also fine")).await?;
    Ok((sc, broken))
}

#[tokio::test]
async fn a_component_that_traps_on_every_call_fails_each_call_and_the_rest_serve()
-> anyhow::Result<()> {
    let app = AppId::new("hostile-every");
    let resources = Resources::new();
    let (sc, broken) = start_broken(&app, &resources, "every-call").await?;
    ensure!(
        broken["status"] != "failed",
        "init does not trap, so the component loads: {broken}"
    );
    // Each round gets fresh instances, which trap again.
    for round in 0..3 {
        let checks = async {
            let get = sc.get_state(BROKEN, "k").await?;
            get.ensure_error(500, "ERR_STATE_GET")?;
            let save = sc.save(BROKEN, json!([{"key": "k", "value": 1}])).await?;
            save.ensure_error(500, "ERR_STATE_SAVE")?;
            let delete = sc.delete_state(BROKEN, "k", None).await?;
            delete.ensure_error(500, "ERR_STATE_DELETE")?;
            for reply in [&get, &save, &delete] {
                let message = reply.error_message().unwrap_or_default().to_lowercase();
                ensure!(
                    TRAP_WORDS.iter().any(|w| message.contains(w)),
                    "{}",
                    reply.describe("expected a message saying the component trapped")
                );
            }
            sc.healthz().await?.ensure_status(204)?;
            neighbour_serves(&sc).await
        };
        tokio::time::timeout(CASE_DEADLINE, checks)
            .await
            .map_err(|_| anyhow::anyhow!("round {round}: no answer within {CASE_DEADLINE:?}"))?
            .with_context(|| format!("round {round}\n--- outrig's output ---\n{}", sc.logs()))?;
    }
    Ok(())
}

#[tokio::test]
async fn a_component_whose_init_traps_is_listed_as_failed_and_the_rest_serve() -> anyhow::Result<()>
{
    let app = AppId::new("hostile-init");
    let resources = Resources::new();
    let (sc, broken) = start_broken(&app, &resources, "init").await?;
    let error = broken["error"].as_str().unwrap_or_default();
    ensure!(
        broken["status"] == "failed"
            && error.contains(&format!("{BROKEN}.yaml"))
            && error.contains("init trapped"),
        "expected a failed load naming the file and saying init trapped: {broken}"
    );
    let reply = sc.get_state(BROKEN, "k").await?;
    ensure!(
        reply.status >= 400,
        "{}",
        reply.describe("a failed component serves nothing")
    );
    neighbour_serves(&sc).await
}

/// What the escape fixture keeps outside the grant.
const SECRET: &[u8] = b"outside the grant";

/// A directory to grant (`granted/`, holding `inside.txt`) beside one that
/// must stay out of reach (`outside/secret.txt`), with three symlinks out
/// planted inside the grant: `link-to-secret` (relative),
/// `abs-link-to-secret` (absolute) and `link-to-outside` (a directory).
struct EscapeFixture {
    root: tempfile::TempDir,
}

impl EscapeFixture {
    fn new() -> anyhow::Result<Self> {
        let root = tempfile::tempdir()?;
        let granted = root.path().join("granted");
        let outside = root.path().join("outside");
        std::fs::create_dir(&granted)?;
        std::fs::create_dir(&outside)?;
        std::fs::write(granted.join("inside.txt"), "inside the grant")?;
        std::fs::write(outside.join("secret.txt"), SECRET)?;
        std::os::unix::fs::symlink("../outside/secret.txt", granted.join("link-to-secret"))?;
        std::os::unix::fs::symlink(
            outside.join("secret.txt"),
            granted.join("abs-link-to-secret"),
        )?;
        std::os::unix::fs::symlink("../outside", granted.join("link-to-outside"))?;
        Ok(EscapeFixture { root })
    }

    fn granted(&self) -> PathBuf {
        self.root.path().join("granted")
    }

    /// Every file under the root with its content (symlinks as their
    /// targets), to compare before and after.
    fn snapshot(&self) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut found = Vec::new();
        for dir in ["granted", "outside"] {
            for entry in std::fs::read_dir(self.root.path().join(dir))? {
                let path = entry?.path();
                let content = if path.is_symlink() {
                    std::fs::read_link(&path)?
                        .into_os_string()
                        .into_encoded_bytes()
                } else {
                    std::fs::read(&path)?
                };
                found.push((path, content));
            }
        }
        found.sort();
        Ok(found)
    }
}

#[tokio::test]
async fn escapes_from_the_granted_directory_are_refused_and_nothing_outside_changes()
-> anyhow::Result<()> {
    let app = AppId::new("hostile-escape");
    let resources = Resources::new();
    let fixture = EscapeFixture::new()?;
    let files = format!(
        "[{{host: {}, guest: /data, readOnly: false}}]",
        Value::from(fixture.granted().display().to_string())
    );
    let sc = start_granted(&app, &resources, &[("files", files)]).await?;
    let before = fixture.snapshot()?;
    let reply = tokio::time::timeout(CASE_DEADLINE, sc.get_state(HOSTILE, "escape")).await??;
    reply.ensure_error(500, "ERR_STATE_GET")?;
    let message = reply.error_message().unwrap_or_default();
    ensure!(
        message.contains("every escape was refused"),
        "{}\n--- outrig's output ---\n{}",
        reply.describe("expected every escape refused (the guest reads inside.txt first)"),
        sc.logs()
    );
    for attempt in [
        "read /data/../outside/secret.txt: PermissionDenied",
        "read /data/link-to-secret: PermissionDenied",
        "read /data/abs-link-to-secret: PermissionDenied",
        "read /data/link-to-outside/secret.txt: PermissionDenied",
        "write /data/../outside/planted.txt: PermissionDenied",
        "write /data/link-to-outside/planted.txt: PermissionDenied",
        "write /data/link-to-secret: PermissionDenied",
    ] {
        ensure!(
            message.contains(attempt),
            "`{attempt}` is not among the refusals: {message}"
        );
    }
    ensure!(
        fixture.snapshot()? == before,
        "files changed: {before:?} became {:?}",
        fixture.snapshot()?
    );
    ensure!(std::fs::read(fixture.root.path().join("outside/secret.txt"))? == SECRET);
    still_serves(&sc).await
}

/// Lines `||logflood` sends to each of the host log, stdout and stderr (the
/// guest's `FLOOD_LINES`).
const FLOOD_LINES: usize = 20_000;

#[tokio::test]
async fn a_log_flood_is_cut_to_the_budget_and_the_call_returns() -> anyhow::Result<()> {
    let app = AppId::new("hostile-flood");
    let resources = Resources::new();
    // Time enough for the whole flood in a debug build on a busy machine:
    // this checks what reaches the log, not how fast lines are dropped.
    let sc = start_granted(&app, &resources, &[("timeoutMs", "20000".into())]).await?;
    let started = Instant::now();
    let reply = tokio::time::timeout(CASE_DEADLINE, sc.get_state(HOSTILE, "logflood")).await??;
    eprintln!("the log flood call took {:?}", started.elapsed());
    reply.ensure_status(200)?;
    ensure!(
        reply.text() == "\"flooded\"",
        "{}",
        reply.describe("the flood returns")
    );
    // The note is written during the call; the sidecar's output is read
    // by another task, which may lag a little behind.
    common::poll_until(
        "the note that lines were dropped",
        CASE_DEADLINE,
        || async { Ok(sc.logs().contains("dropping its lines").then_some(())) },
    )
    .await?;
    let logs = sc.logs();
    let written = logs.matches("test-hostile flood line").count();
    ensure!(
        written > 0 && written < FLOOD_LINES / 10,
        "{written} of {FLOOD_LINES} flood lines reached the log; expected some, and far fewer"
    );
    ensure!(
        !logs.contains("stdout flood") && !logs.contains("stderr flood"),
        "the guest's stdio reached the sidecar's output"
    );
    still_serves(&sc).await
}

/// Neighbour reads of the quiet baseline.
const QUIET_READS: usize = 300;
/// Bound on the neighbour reads beside the hostile calls.
const MAX_LOADED_READS: usize = 50_000;
/// What the hostile workers ask for: every misbehaviour, once per round.
const HOSTILE_KEYS: &[&str] = &[
    "loop", "trap", "bomb", "recurse", "logflood", "socket", "huge", "ordinary",
];
/// Rounds of [`HOSTILE_KEYS`] each hostile worker makes.
const HOSTILE_ROUNDS: usize = 2;

/// Sequential reads of the in-memory neighbour, each of which must find
/// the value: `count` of them, or fewer once `until` is set. Their
/// latencies, sorted.
async fn neighbour_latencies(
    sc: &Sidecar,
    count: usize,
    until: Option<&AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut took = Vec::new();
    for _ in 0..count {
        if until.is_some_and(|done| done.load(Ordering::Acquire)) {
            break;
        }
        let start = Instant::now();
        neighbour_serves(sc).await?;
        took.push(start.elapsed());
    }
    took.sort();
    Ok(took)
}

fn percentile(sorted: &[Duration], pct: usize) -> Duration {
    let rank = (sorted.len() * pct).div_ceil(100).max(1);
    sorted
        .get(rank.min(sorted.len()).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

/// [`HOSTILE_ROUNDS`] rounds of misbehaving calls, starting at key
/// `offset` (so two workers misbehave differently at once); every call
/// must get an HTTP answer. Returns how many ran.
async fn hostile_worker(sc: &Sidecar, offset: usize) -> anyhow::Result<usize> {
    let keys = HOSTILE_KEYS.iter().cycle().skip(offset);
    let mut calls = 0;
    for key in keys.take(HOSTILE_KEYS.len() * HOSTILE_ROUNDS) {
        let reply = sc.get_state(HOSTILE, key).await?;
        ensure!(
            matches!(reply.status, 200 | 204 | 500),
            "{}",
            reply.describe("a hostile call answers 200, 204 or 500")
        );
        calls += 1;
    }
    Ok(calls)
}

#[tokio::test]
async fn a_neighbour_serves_while_hostile_calls_run_and_its_latency_is_reported()
-> anyhow::Result<()> {
    let app = AppId::new("hostile-neighbour");
    let resources = Resources::new();
    let sc = start(&app, &resources).await?;
    let quiet = neighbour_latencies(&sc, QUIET_READS, None).await?;
    let done = AtomicBool::new(false);
    let hostile = async {
        let calls = tokio::try_join!(hostile_worker(&sc, 0), hostile_worker(&sc, 3));
        done.store(true, Ordering::Release);
        calls
    };
    let run = async {
        tokio::try_join!(
            neighbour_latencies(&sc, MAX_LOADED_READS, Some(&done)),
            hostile
        )
    };
    let (loaded, (first, second)) = tokio::time::timeout(CASE_DEADLINE * 4, run)
        .await
        .map_err(|_| anyhow::anyhow!("not done within {:?}\n{}", CASE_DEADLINE * 4, sc.logs()))??;
    let (quiet_p50, quiet_p99) = (percentile(&quiet, 50), percentile(&quiet, 99));
    let (loaded_p50, loaded_p99) = (percentile(&loaded, 50), percentile(&loaded, 99));
    eprintln!(
        "neighbour `{MEM}` reads: quiet ({} reads) p50 {quiet_p50:?} p99 {quiet_p99:?}; \
         beside {} hostile calls ({} reads) p50 {loaded_p50:?} p99 {loaded_p99:?}; p99 ratio {:.2}",
        quiet.len(),
        first + second,
        loaded.len(),
        loaded_p99.as_secs_f64() / quiet_p99.as_secs_f64().max(f64::EPSILON)
    );
    ensure!(
        !loaded.is_empty(),
        "no neighbour read ran beside the hostile calls"
    );
    still_serves(&sc).await
}
