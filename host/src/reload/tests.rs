//! The reloader over the real runtime: unchanged components keep their
//! instances, changed ones are swapped, broken ones leave the old version
//! serving, and a redb store is retired before its new version opens it.

use super::*;
use crate::blocks::catalog::LoadStatus;
use crate::blocks::state::{GetRequest, SetRequest};
use crate::components::builtin::TEST_VERSIONED_PATH;
use crate::runtime::{ArtifactCache, RuntimeEngine};
use std::path::Path;
use std::time::Duration;
use tempfile::TempDir;

/// A reloader over a temporary resources directory.
struct Fixture {
    dir: TempDir,
    data: TempDir,
    catalog: Arc<Catalog>,
    reloader: Reloader,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = tempfile::tempdir().expect("tempdir");
        let engine = RuntimeEngine::new().expect("engine");
        let host = ComponentHost::new(engine, ArtifactCache::new(None)).expect("host");
        let base = LoadContext {
            app_id: "app".into(),
            component_name: String::new(),
            base_dir: dir.path().to_path_buf(),
            data_dir: data.path().to_path_buf(),
        };
        let source = ResourceSource::Directory {
            dir: dir.path().to_path_buf(),
            app_id: "app".into(),
        };
        let catalog = Arc::new(Catalog::default());
        let reloader = Reloader::new(host, base, source, Arc::clone(&catalog));
        Fixture {
            dir,
            data,
            catalog,
            reloader,
        }
    }

    /// Writes `<name>.yaml` with `spec` (indented YAML lines).
    fn write(&self, name: &str, spec: &str) {
        let text = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n{spec}"
        );
        std::fs::write(self.dir.path().join(format!("{name}.yaml")), text).expect("write");
    }

    /// A `test-versioned` component answering `version`, from `wasm`.
    fn versioned(&self, name: &str, wasm: &Path, version: &str, extra: &str) {
        self.write(
            name,
            &format!(
                "  type: state.versioned\n  metadata:\n  - name: version\n    value: {version}\n{extra}  wasm:\n    path: {}\n",
                wasm.display()
            ),
        );
    }

    async fn reload(&self) -> ReloadReport {
        self.reloader.reload(ReloadCause::Api).await
    }

    fn store(&self, name: &str) -> Arc<dyn StateStore> {
        self.catalog.state_store(name).expect("serving")
    }

    fn status(&self, name: &str) -> LoadStatus {
        self.catalog
            .infos()
            .into_iter()
            .find(|info| info.name == name)
            .map(|info| info.status)
            .expect("listed")
    }

    /// The version `name` answers with.
    async fn version(&self, name: &str) -> String {
        let item = self
            .store(name)
            .get(GetRequest {
                key: "app||k".into(),
                ..GetRequest::default()
            })
            .await
            .expect("get")
            .expect("an item");
        let value: serde_json::Value = serde_json::from_slice(&item.value).expect("json");
        value["version"].as_str().unwrap_or_default().to_owned()
    }
}

fn versioned_wasm() -> &'static Path {
    let path = Path::new(TEST_VERSIONED_PATH);
    assert!(
        path.is_file(),
        "test-versioned is not built at {}",
        path.display()
    );
    path
}

#[tokio::test]
async fn unchanged_components_keep_their_instances_and_changed_ones_swap() {
    let fx = Fixture::new();
    let wasm = versioned_wasm();
    fx.versioned("v", wasm, "blue", "");
    fx.write("mem", "  type: state.in-memory\n");
    let first = fx.reload().await;
    assert_eq!(first.added, ["mem", "v"], "{first:?}");
    let mem = fx.store("mem");
    assert_eq!(fx.version("v").await, "blue");

    fx.versioned("v", wasm, "green", "");
    let second = fx.reload().await;
    assert_eq!(second.updated, ["v"], "{second:?}");
    assert_eq!(second.unchanged, ["mem"], "{second:?}");
    assert!(
        Arc::ptr_eq(&mem, &fx.store("mem")),
        "mem was not re-created"
    );
    assert_eq!(fx.version("v").await, "green");

    std::fs::remove_file(fx.dir.path().join("mem.yaml")).expect("remove");
    fx.write("added", "  type: state.in-memory\n");
    let third = fx.reload().await;
    assert_eq!(third.removed, ["mem"], "{third:?}");
    assert_eq!(third.added, ["added"], "{third:?}");
    assert!(fx.catalog.state_store("mem").is_none());
    assert_eq!(third.unchanged, ["v"], "{third:?}");
}

#[tokio::test]
async fn a_broken_new_version_leaves_the_old_one_serving_until_fixed() {
    let fx = Fixture::new();
    let wasm = versioned_wasm();
    fx.versioned("v", wasm, "blue", "");
    fx.reload().await;
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        std::fs::read(wasm).expect("read"),
    ));
    let garbage = fx.dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not really").expect("write");
    let fail_init = "  - name: failInit\n    value: \"true\"\n";
    let wrong_sha = format!("    sha256: {}\n", "0".repeat(64));
    /// (what, how the YAML is broken, a word the error must contain)
    type Case<'a> = (&'a str, Box<dyn Fn() + 'a>, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            "bad wasm",
            Box::new(|| fx.versioned("v", &garbage, "red", "")),
            "valid",
        ),
        (
            "init fails",
            Box::new(|| fx.versioned("v", wasm, "red", fail_init)),
            "failinit",
        ),
        (
            "wrong sha256",
            Box::new(|| {
                let yaml = fx.dir.path().join("v.yaml");
                fx.versioned("v", wasm, "red", "");
                let text = std::fs::read_to_string(&yaml).expect("read") + &wrong_sha;
                std::fs::write(&yaml, text).expect("write");
            }),
            "sha256",
        ),
        (
            "YAML error",
            Box::new(|| fx.write("v", "  type: [not, a, type]\n")),
            "v.yaml",
        ),
    ];
    for (what, break_it, word) in cases {
        break_it();
        let report = fx.reload().await;
        let failure = report
            .failed
            .first()
            .unwrap_or_else(|| panic!("{what}: {report:?}"));
        assert!(failure.still_serving, "{what}: {report:?}");
        assert!(
            failure.error.to_lowercase().contains(word),
            "{what}: {report:?}"
        );
        assert!(matches!(fx.status("v"), LoadStatus::Stale(_)), "{what}");
        assert_eq!(
            fx.version("v").await,
            "blue",
            "{what}: the old version serves"
        );
        let info = fx.catalog.infos().into_iter().find(|i| i.name == "v");
        assert_eq!(info.and_then(|i| i.sha256), Some(sha.clone()), "{what}");
    }
    fx.versioned("v", wasm, "blue", "");
    let fixed = fx.reload().await;
    assert_eq!(fixed.unchanged, ["v"], "{fixed:?}");
    assert_eq!(fx.status("v"), LoadStatus::Loaded);
}

#[tokio::test]
async fn a_redb_store_is_retired_before_its_new_version_opens_the_file() {
    let fx = Fixture::new();
    let data_dir = fx.data.path().join("redb");
    let spec = |extra: &str| {
        format!(
            "  type: state.redb\n  metadata:\n  - name: dataDir\n    value: {}\n{extra}",
            data_dir.display()
        )
    };
    fx.write("db", &spec(""));
    fx.reload().await;
    let old = fx.store("db");
    old.set(SetRequest {
        key: "app||k".into(),
        value: b"\"kept\"".to_vec(),
        ..SetRequest::default()
    })
    .await
    .expect("set");
    // A caller still holding the old version: the new one must wait for it.
    let in_flight = Arc::clone(&old);
    drop(old);
    fx.write("db", &spec("  - name: unused\n    value: \"1\"\n"));
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let read = in_flight
            .get(GetRequest {
                key: "app||k".into(),
                ..GetRequest::default()
            })
            .await;
        drop(in_flight);
        read
    });
    let report = fx.reload().await;
    let read_on_old = release
        .await
        .expect("task")
        .expect("get on the old version");
    assert_eq!(read_on_old.map(|i| i.value), Some(b"\"kept\"".to_vec()));
    assert_eq!(report.updated, ["db"], "{report:?}");
    let item = fx
        .store("db")
        .get(GetRequest {
            key: "app||k".into(),
            ..GetRequest::default()
        })
        .await
        .expect("get")
        .map(|i| i.value);
    assert_eq!(
        item,
        Some(b"\"kept\"".to_vec()),
        "the new version reads the same file"
    );
}

#[tokio::test]
async fn declared_subscriptions_and_retries_follow_reloads_but_not_broken_files() {
    let fx = Fixture::new();
    let declared = fx.reloader.follow_declared();
    let subscription = |route: &str| {
        format!(
            "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata:\n  name: orders\nspec:\n  pubsubname: pubsub\n  topic: orders\n  routes:\n    default: {route}\n"
        )
    };
    let resiliency = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: r\nspec:\n  policies:\n    retries:\n      twice:\n        policy: constant\n        duration: 2s\n        maxRetries: 2\n  targets:\n    components:\n      pubsub:\n        inbound:\n          retry: twice\n";
    let routes = || -> Vec<Option<String>> {
        declared
            .borrow()
            .subscriptions
            .iter()
            .map(|s| s.routes.default.clone())
            .collect()
    };
    let path = |name: &str| fx.dir.path().join(name);
    std::fs::write(path("subs.yaml"), subscription("/v1")).expect("write");
    assert!(fx.reload().await.delivery_changed);
    assert_eq!(routes(), [Some("/v1".to_string())]);
    assert!(!fx.reload().await.delivery_changed, "nothing changed");

    std::fs::write(path("subs.yaml"), subscription("/v2")).expect("write");
    std::fs::write(path("resiliency.yaml"), resiliency).expect("write");
    assert!(fx.reload().await.delivery_changed);
    assert_eq!(routes(), [Some("/v2".to_string())]);
    let retry = declared.borrow().inbound_retries.get("pubsub").copied();
    assert_eq!(retry.and_then(|policy| policy.max_retries), Some(2));

    // A broken file might have declared anything: what was declared stays.
    std::fs::write(path("subs.yaml"), "kind: Subscription\nspec: [").expect("write");
    let broken = fx.reload().await;
    assert!(
        !broken.delivery_changed && !broken.failed.is_empty(),
        "{broken:?}"
    );
    assert_eq!(routes(), [Some("/v2".to_string())]);

    std::fs::remove_file(path("subs.yaml")).expect("remove");
    std::fs::remove_file(path("resiliency.yaml")).expect("remove");
    assert!(fx.reload().await.delivery_changed);
    assert_eq!(*declared.borrow().as_ref(), DeclaredDelivery::default());
}
