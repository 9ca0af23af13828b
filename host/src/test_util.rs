//! Test doubles shared by unit tests: an in-memory [`StateStore`] with real
//! ETag semantics and injectable failures, a recording [`Broker`] with
//! injectable failures, the real built-in in-memory broker, and catalog
//! builders.

use crate::blocks::catalog::{CatalogEntry, CatalogSnapshot, ComponentInfo, LoadStatus};
use crate::blocks::pubsub::{
    Broker, BrokerSubscription, IncomingMessage, OutgoingMessage, PublishFailure,
};
use crate::blocks::state::{
    BulkItem, Concurrency, DeleteRequest, Feature, GetRequest, Item, Metadata, Operation,
    QueryItem, QueryRequest, QueryResponse, SetRequest, StateStore,
};
use crate::blocks::{Catalog, ComponentError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// What the fake remembers; guarded by one lock so transactions are atomic.
#[derive(Default)]
struct Inner {
    /// Stored key → (value, version). The ETag is the version in decimal.
    items: BTreeMap<String, (Vec<u8>, u64)>,
    next_version: u64,
    /// Returned by every call while set.
    failure: Option<ComponentError>,
    /// Every key the store was asked about, in order, as the store saw it.
    seen_keys: Vec<String>,
    /// The TTL of the last write.
    last_ttl: Option<Option<u32>>,
}

/// An in-memory state store behaving like a Dapr store with ETags.
pub struct FakeStore {
    features: Vec<Feature>,
    inner: Mutex<Inner>,
}

impl FakeStore {
    /// A store declaring `features`.
    pub fn new(features: &[Feature]) -> Arc<Self> {
        Arc::new(FakeStore {
            features: features.to_vec(),
            inner: Mutex::new(Inner {
                next_version: 1,
                ..Inner::default()
            }),
        })
    }

    /// A store with every feature.
    pub fn full() -> Arc<Self> {
        Self::new(&[
            Feature::Etag,
            Feature::Transactional,
            Feature::Ttl,
            Feature::QueryApi,
        ])
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking test poisons the lock; the data is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every following call fail with `error` (until `None`).
    pub fn fail_with(&self, error: Option<ComponentError>) {
        self.lock().failure = error;
    }

    /// Stores `value` under the stored key `key`; returns its ETag.
    pub fn put(&self, key: &str, value: &[u8]) -> String {
        let mut inner = self.lock();
        let version = inner.bump();
        inner
            .items
            .insert(key.to_owned(), (value.to_vec(), version));
        version.to_string()
    }

    /// The bytes stored under the stored key `key`.
    pub fn value(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().items.get(key).map(|(v, _)| v.clone())
    }

    /// Every stored key, sorted.
    pub fn keys(&self) -> Vec<String> {
        self.lock().items.keys().cloned().collect()
    }

    /// The keys the store was asked about, in order.
    pub fn seen_keys(&self) -> Vec<String> {
        self.lock().seen_keys.clone()
    }

    /// The TTL of the last write (`None` if nothing was written).
    pub fn last_ttl(&self) -> Option<Option<u32>> {
        self.lock().last_ttl
    }

    fn check(&self, inner: &mut Inner, key: &str) -> Result<(), ComponentError> {
        inner.seen_keys.push(key.to_owned());
        match &inner.failure {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }
}

impl Inner {
    fn bump(&mut self) -> u64 {
        let version = self.next_version;
        self.next_version += 1;
        version
    }

    /// Whether a write or delete conditional on `etag`/`concurrency` may go ahead.
    fn check_etag(
        &self,
        key: &str,
        etag: Option<&str>,
        concurrency: Concurrency,
    ) -> Result<(), ComponentError> {
        let current = self.items.get(key).map(|(_, version)| *version);
        match (etag, current) {
            (Some(etag), current) => {
                let wanted: u64 = etag.parse().map_err(|_| ComponentError::EtagInvalid)?;
                if current == Some(wanted) {
                    Ok(())
                } else {
                    Err(ComponentError::EtagMismatch)
                }
            }
            (None, Some(_)) if concurrency == Concurrency::FirstWrite => {
                Err(ComponentError::EtagMismatch)
            }
            (None, _) => Ok(()),
        }
    }

    fn set(&mut self, request: SetRequest) -> Result<(), ComponentError> {
        self.check_etag(&request.key, request.etag.as_deref(), request.concurrency)?;
        let version = self.bump();
        self.last_ttl = Some(request.ttl_seconds);
        self.items.insert(request.key, (request.value, version));
        Ok(())
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<(), ComponentError> {
        self.check_etag(&request.key, request.etag.as_deref(), request.concurrency)?;
        self.items.remove(&request.key);
        Ok(())
    }

    fn item(&self, key: &str) -> Option<Item> {
        self.items.get(key).map(|(value, version)| Item {
            value: value.clone(),
            etag: Some(version.to_string()),
            expires_at_unix: None,
        })
    }
}

#[async_trait::async_trait]
impl StateStore for FakeStore {
    fn features(&self) -> Vec<Feature> {
        self.features.clone()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>, ComponentError> {
        let mut inner = self.lock();
        self.check(&mut inner, &request.key)?;
        Ok(inner.item(&request.key))
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, ComponentError> {
        let mut inner = self.lock();
        let mut items = Vec::with_capacity(requests.len());
        for request in requests {
            self.check(&mut inner, &request.key)?;
            let item = inner.item(&request.key);
            // A key ending in `!` stands for one the backend fails to read.
            let error = request.key.ends_with('!').then(|| "unreadable".to_owned());
            items.push(BulkItem {
                key: request.key,
                item: if error.is_some() { None } else { item },
                error,
            });
        }
        Ok(items)
    }

    async fn set(&self, request: SetRequest) -> Result<(), ComponentError> {
        let mut inner = self.lock();
        self.check(&mut inner, &request.key)?;
        inner.set(request)
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<(), ComponentError> {
        let mut inner = self.lock();
        for request in requests {
            self.check(&mut inner, &request.key)?;
            inner.set(request)?;
        }
        Ok(())
    }

    async fn delete(&self, request: DeleteRequest) -> Result<(), ComponentError> {
        let mut inner = self.lock();
        self.check(&mut inner, &request.key)?;
        inner.delete(request)
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<(), ComponentError> {
        let mut inner = self.lock();
        for request in requests {
            self.check(&mut inner, &request.key)?;
            inner.delete(request)?;
        }
        Ok(())
    }

    async fn transact(
        &self,
        operations: Vec<Operation>,
        _metadata: Metadata,
    ) -> Result<(), ComponentError> {
        let mut inner = self.lock();
        // Apply to a copy; publish only if every operation succeeded.
        let mut scratch = Inner {
            items: inner.items.clone(),
            next_version: inner.next_version,
            ..Inner::default()
        };
        for operation in operations {
            let key = match &operation {
                Operation::Set(r) => r.key.clone(),
                Operation::Delete(r) => r.key.clone(),
            };
            self.check(&mut inner, &key)?;
            match operation {
                Operation::Set(request) => scratch.set(request)?,
                Operation::Delete(request) => scratch.delete(request)?,
            }
        }
        inner.items = scratch.items;
        inner.next_version = scratch.next_version;
        inner.last_ttl = scratch.last_ttl;
        Ok(())
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse, ComponentError> {
        let mut inner = self.lock();
        self.check(&mut inner, &request.key_prefix)?;
        // The fake ignores the filter: it returns every key of the app.
        let results = inner
            .items
            .iter()
            .filter(|(key, _)| key.starts_with(&request.key_prefix))
            .map(|(key, (value, version))| QueryItem {
                key: key.clone(),
                value: value.clone(),
                etag: Some(version.to_string()),
            })
            .collect();
        Ok(QueryResponse {
            results,
            token: None,
        })
    }
}

/// What the fake broker remembers.
#[derive(Default)]
struct BrokerInner {
    /// Every message published, with its topic, in order.
    published: Vec<(String, OutgoingMessage)>,
    /// How many messages of each topic `pull` has handed out.
    pulled: BTreeMap<String, usize>,
    /// Set: every publish fails with it.
    failure: Option<ComponentError>,
    /// Entries (by position in a batch) the broker refuses, and why.
    refused: BTreeMap<usize, ComponentError>,
}

/// A broker that records what it is given, fails on demand, and hands the
/// recorded messages back through `pull`.
#[derive(Default)]
pub struct FakeBroker {
    inner: Mutex<BrokerInner>,
}

impl FakeBroker {
    /// An empty broker that accepts everything.
    pub fn new() -> Arc<Self> {
        Arc::new(FakeBroker::default())
    }

    fn lock(&self) -> MutexGuard<'_, BrokerInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes every following publish fail with `error` (until `None`).
    pub fn fail_with(&self, error: Option<ComponentError>) {
        self.lock().failure = error;
    }

    /// Makes the entry at `index` of every following batch fail with `error`.
    pub fn refuse_entry(&self, index: usize, error: ComponentError) {
        self.lock().refused.insert(index, error);
    }

    /// Every message published so far, with its topic.
    pub fn published(&self) -> Vec<(String, OutgoingMessage)> {
        self.lock().published.clone()
    }
}

#[async_trait::async_trait]
impl Broker for FakeBroker {
    async fn publish(
        &self,
        topic: &str,
        messages: Vec<OutgoingMessage>,
    ) -> Result<(), Vec<PublishFailure>> {
        let mut inner = self.lock();
        if let Some(error) = inner.failure.clone() {
            return Err((0..messages.len())
                .map(|index| PublishFailure {
                    index,
                    error: error.clone(),
                })
                .collect());
        }
        let mut failures = Vec::new();
        for (index, message) in messages.into_iter().enumerate() {
            match inner.refused.get(&index) {
                Some(error) => failures.push(PublishFailure {
                    index,
                    error: error.clone(),
                }),
                None => inner.published.push((topic.to_owned(), message)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    async fn pull(
        &self,
        subscription: &BrokerSubscription,
        max: u32,
        _wait: Duration,
    ) -> Result<Vec<IncomingMessage>, ComponentError> {
        let mut inner = self.lock();
        let topic = subscription.topic.clone();
        let already = inner.pulled.get(&topic).copied().unwrap_or_default();
        let out: Vec<IncomingMessage> = inner
            .published
            .iter()
            .filter(|(t, _)| *t == topic)
            .enumerate()
            .skip(already)
            .take(max as usize)
            .map(|(n, (topic, message))| IncomingMessage {
                id: format!("{topic}/{n}"),
                topic: topic.clone(),
                data: message.data.clone(),
                content_type: message.content_type.clone(),
                metadata: message.metadata.clone(),
                attempt: 1,
            })
            .collect();
        inner.pulled.insert(topic, already + out.len());
        Ok(out)
    }

    async fn ack(&self, _ids: Vec<String>) -> Result<(), ComponentError> {
        Ok(())
    }

    async fn nack(
        &self,
        _ids: Vec<String>,
        _redeliver_after: Duration,
    ) -> Result<(), ComponentError> {
        Ok(())
    }
}

/// A catalog serving `stores` (name → store) plus `failed` (name → error) components.
pub fn catalog(stores: &[(&str, Arc<FakeStore>)], failed: &[(&str, &str)]) -> Arc<Catalog> {
    catalog_with_brokers(stores, &[], failed)
}

/// A catalog serving `stores`, `brokers` (name → broker) and `failed`
/// (name → error) components.
pub fn catalog_with_brokers(
    stores: &[(&str, Arc<FakeStore>)],
    brokers: &[(&str, Arc<dyn Broker>)],
    failed: &[(&str, &str)],
) -> Arc<Catalog> {
    let mut entries = BTreeMap::new();
    for (name, broker) in brokers {
        let info = ComponentInfo {
            name: (*name).to_owned(),
            component_type: "pubsub.fake".to_owned(),
            version: "v1".to_owned(),
            features: Vec::new(),
            status: LoadStatus::Loaded,
            sha256: Some("cd".repeat(32)),
            source: format!("components/{name}.yaml"),
            grants: Vec::new(),
        };
        entries.insert(
            (*name).to_owned(),
            CatalogEntry {
                info,
                state: None,
                pubsub: Some(broker.clone()),
            },
        );
    }
    for (name, store) in stores {
        let info = ComponentInfo {
            name: (*name).to_owned(),
            component_type: "state.fake".to_owned(),
            version: "v1".to_owned(),
            features: store.features(),
            status: LoadStatus::Loaded,
            sha256: Some("ab".repeat(32)),
            source: format!("components/{name}.yaml"),
            grants: Vec::new(),
        };
        let state: Arc<dyn StateStore> = store.clone();
        entries.insert(
            (*name).to_owned(),
            CatalogEntry {
                info,
                state: Some(state),
                pubsub: None,
            },
        );
    }
    for (name, error) in failed {
        let info = ComponentInfo {
            name: (*name).to_owned(),
            component_type: "state.redis".to_owned(),
            version: "v1".to_owned(),
            features: Vec::new(),
            status: LoadStatus::Failed((*error).to_owned()),
            sha256: None,
            source: format!("components/{name}.yaml"),
            grants: Vec::new(),
        };
        entries.insert((*name).to_owned(), CatalogEntry::failed(info));
    }
    Arc::new(Catalog::new(CatalogSnapshot { entries }))
}

/// The built-in `pubsub.in-memory` component loaded through the real
/// runtime, with what keeps it running.
pub struct BuiltinBroker {
    /// The broker.
    pub broker: Arc<dyn Broker>,
    /// Keeps the engine (and its epoch ticker) alive for the broker's calls.
    _host: crate::components::ComponentHost,
}

/// Loads the built-in `pubsub.in-memory` component (compiles it: seconds in
/// a debug build).
pub async fn builtin_in_memory_broker() -> BuiltinBroker {
    use crate::components::{ComponentHost, LoadContext};
    use crate::config::resources::ComponentResource;
    use crate::runtime::{ArtifactCache, RuntimeEngine};
    let engine = RuntimeEngine::new().expect("engine");
    let host = ComponentHost::new(engine, ArtifactCache::new(None)).expect("host");
    let resource = ComponentResource {
        name: "mem-pubsub".into(),
        namespace: None,
        component_type: "pubsub.in-memory".into(),
        version: "v1".into(),
        metadata: Vec::new(),
        scopes: Vec::new(),
        wasm: None,
        source: "test/mem-pubsub.yaml".into(),
    };
    let entry = host.load(&resource, &LoadContext::for_tests()).await;
    assert_eq!(
        entry.info.status,
        LoadStatus::Loaded,
        "pubsub.in-memory loads"
    );
    BuiltinBroker {
        broker: entry.pubsub.expect("a loaded broker"),
        _host: host,
    }
}
