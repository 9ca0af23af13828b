//! Durability across a sidecar restart: the embedded default store and the
//! Redis, PostgreSQL and redb stores keep what was written; the in-memory
//! store starts empty again.

mod common;

use anyhow::ensure;
use common::{AppId, Launch, PgTable, RedisKeys, Resources};
use serde_json::json;

#[tokio::test]
async fn the_embedded_default_store_survives_a_restart() -> anyhow::Result<()> {
    let app = AppId::new("dur-default");
    let mut first = Launch::new(&app).start().await?;
    let value = json!({"order": 1, "items": ["tea"]});
    first.put("statestore", "order-1", value.clone()).await?;
    let status = first.shutdown().await?;
    ensure!(
        status.success(),
        "outrig exited with {status} after POST /v1.0/shutdown"
    );
    ensure!(
        app.data_dir().is_dir(),
        "the embedded store left nothing under {}",
        app.data_dir().display()
    );

    let second = Launch::new(&app).start().await?;
    let found = second.value("statestore", "order-1").await?;
    ensure!(
        found.as_ref() == Some(&value),
        "after a restart `order-1` is {found:?}, expected {value}\n--- outrig's output ---\n{}",
        second.logs()
    );
    Ok(())
}

#[tokio::test]
async fn durable_stores_survive_a_restart_and_in_memory_does_not() -> anyhow::Result<()> {
    let app = AppId::new("dur-stores");
    let _redis_keys = RedisKeys::of(&app);
    let table = PgTable::new("dur_stores");
    let resources = Resources::new();
    resources
        .builtin("mem", "state.in-memory", &[])
        .builtin("redb", "state.redb", &[])
        .redis_store("redis")
        .postgres_store("pg", &table);
    // (store, whether what it holds survives a restart)
    let stores = [
        ("mem", false),
        ("redb", true),
        ("redis", true),
        ("pg", true),
    ];

    let mut first = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;
    for (store, _) in stores {
        first.put(store, "k", json!({"from": store})).await?;
    }
    let status = first.terminate().await?;
    ensure!(
        status.success(),
        "outrig exited with {status} after SIGTERM"
    );

    let second = Launch::new(&app)
        .resources(resources.path())
        .start()
        .await?;
    let mut failures = Vec::new();
    for (store, survives) in stores {
        let expected = survives.then(|| json!({"from": store}));
        let found = second.value(store, "k").await?;
        if found != expected {
            failures.push(format!(
                "[{store}] after a restart `k` is {found:?}, expected {expected:?}"
            ));
        }
    }
    ensure!(
        failures.is_empty(),
        "{}\n--- outrig's output ---\n{}",
        failures.join("\n"),
        second.logs()
    );
    Ok(())
}
