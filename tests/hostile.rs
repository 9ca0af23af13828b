//! The sandbox holds: a component that traps, spins, hoards memory, dials a
//! socket it was not granted, overflows its stack or returns 64 MiB fails only
//! the call that asked for it, with Dapr's error and a message saying what
//! happened, and the sidecar goes on serving, on that component and others.
//!
//! The misbehaving component is the test-only `test-hostile` guest; its `get`
//! misbehaves by key (see `components-wasm/test-hostile`).

mod common;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, Resources, Sidecar};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

const HOSTILE: &str = "hostile";
/// Bound on one misbehaving call and the checks after it, far above the
/// component's 1 s call timeout: reaching it means the call was never
/// stopped. A hang guard, not a performance assertion.
const CASE_DEADLINE: Duration = Duration::from_secs(30);
const MEM: &str = "mem";

/// Starts a sidecar with the hostile component (1 s per call, 32 MiB,
/// 2 instances) and an in-memory store, and stores an ordinary key in each.
async fn start(app: &AppId, resources: &Resources) -> anyhow::Result<Sidecar> {
    let wasm = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
    ensure!(
        wasm.is_file(),
        "the test-hostile component is not built at {}",
        wasm.display()
    );
    let sha256 = common::sha256_of(wasm);
    resources
        .wasm(
            HOSTILE,
            "state.hostile",
            wasm,
            Some(&sha256),
            &[
                ("memoryMiB", "32"),
                ("timeoutMs", "1000"),
                ("maxInstances", "2"),
            ],
        )
        .builtin(MEM, "state.in-memory", &[]);
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
