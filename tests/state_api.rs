//! Dapr's state API, end to end, over every built-in state store.
//!
//! Each test starts one sidecar serving all four built-in stores (in-memory,
//! redb, Redis, PostgreSQL) under a fresh app id, runs one scenario against
//! every store at once, and reports which stores failed it. Redis and
//! PostgreSQL are the real servers on 127.0.0.1; their keys and tables are
//! removed afterwards.

mod common;

use anyhow::{Context, bail, ensure};
use common::{AppId, Launch, PgTable, RedisKeys, Resources, Sidecar};
use serde_json::{Value, json};
use std::time::Duration;

/// Where a store keeps its data, for checks made directly on the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Inside the sidecar (memory or a file under its home).
    Embedded,
    Redis,
    Postgres,
}

/// One store under test.
struct Store {
    /// The component's name (the `{store}` of the URLs).
    name: &'static str,
    component_type: &'static str,
    backend: Backend,
    /// Whether the store must answer Dapr's query API.
    query: bool,
}

const STORES: &[Store] = &[
    Store {
        name: "mem",
        component_type: "state.in-memory",
        backend: Backend::Embedded,
        query: true,
    },
    Store {
        name: "redb",
        component_type: "state.redb",
        backend: Backend::Embedded,
        query: true,
    },
    Store {
        name: "redis",
        component_type: "state.redis",
        backend: Backend::Redis,
        query: false,
    },
    Store {
        name: "pg",
        component_type: "state.postgresql",
        backend: Backend::Postgres,
        query: false,
    },
];

/// How long an item saved with `ttlInSeconds: 1` may take to disappear.
const TTL_DEADLINE: Duration = Duration::from_secs(5);

/// A sidecar serving [`STORES`], and the clean-up of what they wrote.
/// Fields drop in order: the sidecar stops before its data is removed.
struct Fixture {
    sidecar: Sidecar,
    app: AppId,
    table: PgTable,
    _redis_keys: RedisKeys,
    _resources: Resources,
}

impl Fixture {
    async fn start(test: &str) -> anyhow::Result<Fixture> {
        let app = AppId::new(test);
        let table = PgTable::new(test);
        let resources = Resources::new();
        for store in STORES {
            match store.backend {
                Backend::Embedded => resources.builtin(store.name, store.component_type, &[]),
                Backend::Redis => resources.redis_store(store.name),
                Backend::Postgres => resources.postgres_store(store.name, &table),
            };
        }
        let sidecar = Launch::new(&app)
            .resources(resources.path())
            .start()
            .await?;
        Ok(Fixture {
            sidecar,
            _redis_keys: RedisKeys::of(&app),
            app,
            table,
            _resources: resources,
        })
    }

    /// Runs `scenario` against every store concurrently; fails naming each
    /// store that failed it.
    async fn for_each_store(
        &self,
        scenario: impl AsyncFn(&Fixture, &Store) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let runs = STORES.iter().map(|store| {
            let scenario = &scenario;
            async move { (store.name, scenario(self, store).await) }
        });
        let failures: Vec<String> = futures::future::join_all(runs)
            .await
            .into_iter()
            .filter_map(|(name, result)| result.err().map(|err| format!("[{name}] {err:#}")))
            .collect();
        ensure!(
            failures.is_empty(),
            "{} of {} stores failed:\n{}\n--- outrig's output ---\n{}",
            failures.len(),
            STORES.len(),
            failures.join("\n"),
            self.sidecar.logs()
        );
        Ok(())
    }

    /// The ETag `key` has now; fails if it is missing or has none.
    async fn etag(&self, store: &Store, key: &str) -> anyhow::Result<String> {
        let reply = self.sidecar.get_state(store.name, key).await?;
        reply.ensure_status(200)?;
        reply
            .etag()
            .filter(|etag| !etag.is_empty())
            .with_context(|| reply.describe("expected an ETag header"))
    }

    /// Fails unless `key` holds `expected` (`None`: missing).
    async fn expect_value(
        &self,
        store: &Store,
        key: &str,
        expected: Option<&Value>,
    ) -> anyhow::Result<()> {
        let actual = self.sidecar.value(store.name, key).await?;
        ensure!(
            actual.as_ref() == expected,
            "key `{key}`: expected {expected:?}, found {actual:?}"
        );
        Ok(())
    }
}

#[tokio::test]
async fn every_store_is_listed_with_its_capabilities() -> anyhow::Result<()> {
    let fx = Fixture::start("st-meta").await?;
    let metadata = fx.sidecar.metadata().await?;
    ensure!(metadata["id"] == fx.app.as_str(), "metadata.id: {metadata}");
    fx.for_each_store(async |fx, store| {
        let component = fx.sidecar.component_metadata(store.name).await?;
        ensure!(
            component["type"] == store.component_type,
            "type: {component}"
        );
        ensure!(component["status"] != "failed", "did not load: {component}");
        let capabilities = component["capabilities"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for wanted in ["ETAG", "TRANSACTIONAL", "TTL"] {
            ensure!(
                capabilities.iter().any(|c| c == wanted),
                "capability {wanted} missing: {component}"
            );
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn save_then_get_returns_the_value_and_an_etag() -> anyhow::Result<()> {
    let fx = Fixture::start("st-save").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        let object = json!({"name": "ada", "n": 1, "tags": ["x", "y"]});
        sc.save(
            store.name,
            json!([{"key": "obj", "value": object}, {"key": "text", "value": "hello"}]),
        )
        .await?
        .ensure_status(204)?;
        fx.expect_value(store, "obj", Some(&object)).await?;
        fx.expect_value(store, "text", Some(&json!("hello")))
            .await?;
        let first = fx.etag(store, "obj").await?;

        let missing = sc.get_state(store.name, "never-written").await?;
        missing.ensure_status(204)?;
        ensure!(
            missing.body.is_empty(),
            "{}",
            missing.describe("expected an empty body")
        );

        let updated = json!({"name": "ada", "n": 2});
        sc.put(store.name, "obj", updated.clone()).await?;
        fx.expect_value(store, "obj", Some(&updated)).await?;
        let second = fx.etag(store, "obj").await?;
        ensure!(
            first != second,
            "the ETag did not change on update ({first})"
        );

        // The data is where and how Dapr keeps it: `<app-id>||<key>`.
        let stored_key = fx.app.stored_key("obj");
        match store.backend {
            Backend::Embedded => {}
            Backend::Redis => {
                let data = common::redis_hget(&stored_key, "data")?
                    .with_context(|| format!("Redis has no hash field `data` at `{stored_key}`"))?;
                let data: Value =
                    serde_json::from_slice(&data).context("Redis `data` is not the JSON saved")?;
                ensure!(
                    data == updated,
                    "Redis `data` is {data}, expected {updated}"
                );
                let version = common::redis_hget(&stored_key, "version")?.with_context(|| {
                    format!("Redis has no hash field `version` at `{stored_key}`")
                })?;
                ensure!(
                    String::from_utf8_lossy(&version) == second,
                    "Redis `version` {version:?} is not the ETag {second}"
                );
            }
            Backend::Postgres => {
                let rows = common::psql(&format!(
                    "SELECT key FROM {} WHERE key = '{stored_key}'",
                    fx.table.name
                ))?;
                ensure!(
                    rows.trim() == stored_key,
                    "PostgreSQL has no row `{stored_key}` (got {rows:?})"
                );
            }
        }
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_stale_etag_is_refused_with_409() -> anyhow::Result<()> {
    let fx = Fixture::start("st-etag").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        sc.put(store.name, "k", json!("v1")).await?;
        let first = fx.etag(store, "k").await?;
        sc.save(
            store.name,
            json!([{"key": "k", "value": "v2", "etag": first}]),
        )
        .await?
        .ensure_status(204)?;
        let second = fx.etag(store, "k").await?;
        ensure!(
            first != second,
            "the ETag did not change on update ({first})"
        );

        sc.save(
            store.name,
            json!([{"key": "k", "value": "v3", "etag": first}]),
        )
        .await?
        .ensure_error(409, "ERR_STATE_SAVE")?;
        fx.expect_value(store, "k", Some(&json!("v2"))).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn first_write_refuses_a_second_write_without_etag() -> anyhow::Result<()> {
    let fx = Fixture::start("st-first").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        let first_write = json!({"concurrency": "first-write"});
        sc.save(
            store.name,
            json!([{"key": "k", "value": "v1", "options": first_write}]),
        )
        .await?
        .ensure_status(204)?;
        sc.save(
            store.name,
            json!([{"key": "k", "value": "v2", "options": first_write}]),
        )
        .await?
        .ensure_error(409, "ERR_STATE_SAVE")?;
        fx.expect_value(store, "k", Some(&json!("v1"))).await?;

        let etag = fx.etag(store, "k").await?;
        sc.save(
            store.name,
            json!([{"key": "k", "value": "v3", "etag": etag, "options": first_write}]),
        )
        .await?
        .ensure_status(204)?;
        fx.expect_value(store, "k", Some(&json!("v3"))).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn delete_honours_if_match() -> anyhow::Result<()> {
    let fx = Fixture::start("st-delete").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        sc.put(store.name, "k", json!("v1")).await?;
        let stale = fx.etag(store, "k").await?;
        sc.put(store.name, "k", json!("v2")).await?;
        let current = fx.etag(store, "k").await?;

        sc.delete_state(store.name, "k", Some(&stale))
            .await?
            .ensure_error(409, "ERR_STATE_DELETE")?;
        fx.expect_value(store, "k", Some(&json!("v2"))).await?;

        sc.delete_state(store.name, "k", Some(&current))
            .await?
            .ensure_status(204)?;
        fx.expect_value(store, "k", None).await?;

        // Deleting what is not there, without an ETag, succeeds.
        sc.delete_state(store.name, "never-written", None)
            .await?
            .ensure_status(204)?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn bulk_get_returns_each_key_with_data_and_etag() -> anyhow::Result<()> {
    let fx = Fixture::start("st-bulk").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        sc.save(
            store.name,
            json!([{"key": "a", "value": {"v": "A"}}, {"key": "b", "value": "B"}]),
        )
        .await?
        .ensure_status(204)?;
        let reply = sc.bulk_get(store.name, &["a", "b", "missing"]).await?;
        reply.ensure_status(200)?;
        let items = reply.json()?;
        let items = items
            .as_array()
            .with_context(|| reply.describe("expected a JSON array"))?;
        ensure!(items.len() == 3, "{}", reply.describe("expected 3 items"));
        let item = |key: &str| items.iter().find(|i| i["key"] == key).cloned();
        for (key, value) in [("a", json!({"v": "A"})), ("b", json!("B"))] {
            let found =
                item(key).with_context(|| reply.describe(&format!("no item for `{key}`")))?;
            ensure!(
                found["data"] == value,
                "item `{key}`: data {} expected {value}",
                found["data"]
            );
            ensure!(
                found["etag"].as_str().is_some_and(|e| !e.is_empty()),
                "item `{key}` has no etag: {found}"
            );
        }
        let missing = item("missing").with_context(|| reply.describe("no item for `missing`"))?;
        ensure!(
            missing["data"].is_null(),
            "item `missing` has data: {missing}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn transactions_apply_all_or_nothing() -> anyhow::Result<()> {
    let fx = Fixture::start("st-tx").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        sc.save(
            store.name,
            json!([{"key": "a", "value": "A"}, {"key": "b", "value": "B"}]),
        )
        .await?
        .ensure_status(204)?;
        sc.transact(
            store.name,
            json!([
                {"operation": "upsert", "request": {"key": "c", "value": {"c": 1}}},
                {"operation": "delete", "request": {"key": "a"}},
            ]),
        )
        .await?
        .ensure_status(204)?;
        fx.expect_value(store, "a", None).await?;
        fx.expect_value(store, "c", Some(&json!({"c": 1}))).await?;
        fx.expect_value(store, "b", Some(&json!("B"))).await?;

        // One stale ETag: nothing of the transaction is applied.
        let stale = fx.etag(store, "b").await?;
        sc.put(store.name, "b", json!("B2")).await?;
        sc.transact(
            store.name,
            json!([
                {"operation": "upsert", "request": {"key": "d", "value": "D"}},
                {"operation": "delete", "request": {"key": "c"}},
                {"operation": "upsert", "request": {"key": "b", "value": "B3", "etag": stale}},
            ]),
        )
        .await?
        .ensure_error(409, "ERR_STATE_TRANSACTION")?;
        fx.expect_value(store, "d", None).await?;
        fx.expect_value(store, "c", Some(&json!({"c": 1}))).await?;
        fx.expect_value(store, "b", Some(&json!("B2"))).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn items_with_a_ttl_expire() -> anyhow::Result<()> {
    let fx = Fixture::start("st-ttl").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        sc.save(
            store.name,
            json!([
                {"key": "short", "value": "S", "metadata": {"ttlInSeconds": "1"}},
                {"key": "long", "value": "L", "metadata": {"ttlInSeconds": "3600"}},
                {"key": "forever", "value": "F"},
            ]),
        )
        .await?
        .ensure_status(204)?;
        // Saving with a TTL stores the item (shown on the long one, which cannot expire meanwhile).
        fx.expect_value(store, "long", Some(&json!("L"))).await?;
        common::poll_until(
            "the item with ttlInSeconds 1 expires",
            TTL_DEADLINE,
            async || Ok(sc.value(store.name, "short").await?.is_none().then_some(())),
        )
        .await?;
        fx.expect_value(store, "forever", Some(&json!("F"))).await?;
        fx.expect_value(store, "long", Some(&json!("L"))).await?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn query_filters_sorts_and_pages() -> anyhow::Result<()> {
    let fx = Fixture::start("st-query").await?;
    fx.for_each_store(async |fx, store| {
        let sc = &fx.sidecar;
        let component = sc.component_metadata(store.name).await?;
        let advertised = component["capabilities"]
            .as_array()
            .is_some_and(|caps| caps.iter().any(|c| c == "QUERY_API"));
        if !store.query && !advertised {
            eprintln!("[{}] no QUERY_API: query not tested", store.name);
            return Ok(());
        }
        sc.save(
            store.name,
            json!([
                {"key": "q1", "value": {"city": "paris", "n": 3}},
                {"key": "q2", "value": {"city": "oslo", "n": 1}},
                {"key": "q3", "value": {"city": "paris", "n": 2}},
                {"key": "q4", "value": {"city": "paris", "n": 1}},
            ]),
        )
        .await?
        .ensure_status(204)?;
        let filter = json!({"EQ": {"city": "paris"}});
        let sort = json!([{"key": "n", "order": "ASC"}]);

        let all = query_keys(sc, store, &json!({"filter": filter, "sort": sort})).await?;
        ensure!(
            all.0 == ["q4", "q3", "q1"],
            "filtered and sorted: {:?}",
            all.0
        );

        let page = json!({"filter": filter, "sort": sort, "page": {"limit": 2}});
        let (first, token) = query_keys(sc, store, &page).await?;
        ensure!(first == ["q4", "q3"], "first page: {first:?}");
        let token = token.context("a first page of 2 out of 3 results has no token")?;
        let next = json!({"filter": filter, "sort": sort, "page": {"limit": 2, "token": token}});
        let (second, _) = query_keys(sc, store, &next).await?;
        ensure!(second == ["q1"], "second page: {second:?}");
        Ok(())
    })
    .await
}

/// The keys a query returned, in order, and its continuation token. Checks
/// each result carries its value.
async fn query_keys(
    sc: &Sidecar,
    store: &Store,
    query: &Value,
) -> anyhow::Result<(Vec<String>, Option<String>)> {
    let reply = sc.query(store.name, query).await?;
    reply.ensure_status(200)?;
    let body = reply.json()?;
    let Some(results) = body["results"].as_array() else {
        bail!("{}", reply.describe("expected `results`"));
    };
    let mut keys = Vec::new();
    for result in results {
        ensure!(
            result["data"]["city"] == "paris",
            "{}",
            reply.describe("result without its data")
        );
        keys.push(result["key"].as_str().unwrap_or_default().to_string());
    }
    let token = body["token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    Ok((keys, token))
}
