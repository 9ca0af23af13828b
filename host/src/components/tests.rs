//! Components loaded through the real runtime, without the HTTP layer: the
//! built-in in-memory store round-trips, and a hostile component's traps,
//! loops, memory bombs and forbidden sockets are contained.

use super::{ComponentHost, LoadContext};
use crate::blocks::ComponentError;
use crate::blocks::catalog::LoadStatus;
use crate::blocks::state::{GetRequest, SetRequest, StateStore};
use crate::config::resources::{Capabilities, ComponentResource, WasmSource};
use crate::runtime::{ArtifactCache, RuntimeEngine};
use std::sync::Arc;

fn host() -> ComponentHost {
    let engine = RuntimeEngine::new().expect("engine");
    ComponentHost::new(engine, ArtifactCache::new(None)).expect("host")
}

fn resource(name: &str, component_type: &str, wasm: Option<WasmSource>) -> ComponentResource {
    ComponentResource {
        name: name.into(),
        namespace: None,
        component_type: component_type.into(),
        version: "v1".into(),
        metadata: Vec::new(),
        scopes: Vec::new(),
        wasm,
        source: format!("test/{name}.yaml").into(),
    }
}

/// The test-hostile component, granted `capabilities`.
fn hostile(capabilities: Capabilities) -> WasmSource {
    WasmSource {
        path: super::builtin::TEST_HOSTILE_PATH.into(),
        sha256: None,
        capabilities,
    }
}

async fn load(host: &ComponentHost, resource: &ComponentResource) -> Arc<dyn StateStore> {
    let entry = host.load(resource, &LoadContext::for_tests()).await;
    assert_eq!(entry.info.status, LoadStatus::Loaded, "{}", resource.name);
    entry.state.expect("a loaded state store")
}

fn get(key: &str) -> GetRequest {
    GetRequest {
        key: key.into(),
        ..GetRequest::default()
    }
}

fn set(key: &str, value: &[u8]) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.to_vec(),
        ..SetRequest::default()
    }
}

#[tokio::test]
async fn builtin_in_memory_round_trips() {
    let host = host();
    let store = load(&host, &resource("mem", "state.in-memory", None)).await;
    store.set(set("app||k", b"\"v\"")).await.expect("set");
    let item = store
        .get(get("app||k"))
        .await
        .expect("get")
        .expect("present");
    assert_eq!(item.value, b"\"v\"");
    assert!(item.etag.is_some(), "the in-memory store issues ETags");
    assert_eq!(store.get(get("app||missing")).await.expect("get"), None);
}

#[tokio::test]
async fn hostile_component_is_contained_and_keeps_serving() {
    let host = host();
    let wasm = hostile(Capabilities {
        memory_mib: Some(32),
        timeout_ms: Some(500),
        max_instances: Some(2),
        ..Capabilities::default()
    });
    let store = load(&host, &resource("hostile", "state.hostile", Some(wasm))).await;

    let is_trap = |e: &ComponentError| matches!(e, ComponentError::Trapped { .. });
    let is_timeout = |e: &ComponentError| matches!(e, ComponentError::Timeout { .. });
    let is_denied = |e: &ComponentError| match e {
        ComponentError::Unavailable(m) => {
            m.to_lowercase().contains("denied") || m.contains("ermission")
        }
        _ => false,
    };
    let is_memory = |e: &ComponentError| match e {
        ComponentError::Trapped { reason, .. } => reason.contains("memory"),
        _ => false,
    };
    type Expectation<'a> = &'a dyn Fn(&ComponentError) -> bool;
    let cases: &[(&str, Expectation)] = &[
        ("trap", &is_trap),
        ("loop", &is_timeout),
        ("bomb", &is_memory),
        ("socket", &is_denied),
        ("recurse", &is_trap),
        ("huge", &is_memory),
    ];
    for (misbehaviour, expected) in cases {
        let err = store
            .get(get(&format!("app||{misbehaviour}")))
            .await
            .expect_err(misbehaviour);
        assert!(expected(&err), "{misbehaviour}: unexpected error {err:?}");
        let message = err.to_string();
        assert!(
            !message.contains('\n') && !message.contains("backtrace"),
            "{misbehaviour}: the error should be one line without the guest backtrace: {message}"
        );
        // The same component still answers afterwards, from a fresh instance
        // where the failed one was discarded.
        store.get(get("app||ok")).await.expect("still serving");
    }
}

#[tokio::test]
async fn components_sharing_a_wasm_share_code_but_not_state() {
    let host = host();
    let first = load(&host, &resource("mem-a", "state.in-memory", None)).await;
    let second = load(&host, &resource("mem-b", "state.in-memory", None)).await;
    let shared = host.compiled.lock().map(|c| c.len()).unwrap_or_default();
    assert_eq!(
        shared, 1,
        "one compiled copy for two components of one wasm"
    );
    first.set(set("app||k", b"1")).await.expect("set");
    assert!(first.get(get("app||k")).await.expect("get").is_some());
    assert_eq!(second.get(get("app||k")).await.expect("get"), None);
}

#[tokio::test]
async fn a_component_whose_init_traps_fails_to_load_saying_so() {
    use crate::config::resources::{MetadataEntry, MetadataValue};
    let host = host();
    let wasm = hostile(Capabilities::default());
    let mut broken = resource("broken", "state.hostile", Some(wasm));
    broken.metadata.push(MetadataEntry {
        name: "trap".into(),
        value: MetadataValue::Plain("init".into()),
    });
    let entry = host.load(&broken, &LoadContext::for_tests()).await;
    match entry.info.status {
        LoadStatus::Failed(message) => assert!(
            message.contains("test/broken.yaml") && message.contains("init trapped"),
            "{message}"
        ),
        other => panic!("a component whose init traps loaded: {other:?}"),
    }
}
