//! Test doubles shared by unit tests: an in-memory [`StateStore`] with real
//! ETag semantics and injectable failures, and a catalog builder.

use crate::blocks::catalog::{CatalogEntry, CatalogSnapshot, ComponentInfo, LoadStatus};
use crate::blocks::state::{
    BulkItem, Concurrency, DeleteRequest, Feature, GetRequest, Item, Metadata, Operation,
    QueryItem, QueryRequest, QueryResponse, SetRequest, StateStore,
};
use crate::blocks::{Catalog, ComponentError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

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

/// A catalog serving `stores` (name → store) plus `failed` (name → error) components.
pub fn catalog(stores: &[(&str, Arc<FakeStore>)], failed: &[(&str, &str)]) -> Arc<Catalog> {
    let mut entries = BTreeMap::new();
    for (name, store) in stores {
        let info = ComponentInfo {
            name: (*name).to_owned(),
            component_type: "state.fake".to_owned(),
            version: "v1".to_owned(),
            features: store.features(),
            status: LoadStatus::Loaded,
            sha256: Some("ab".repeat(32)),
            source: format!("components/{name}.yaml"),
        };
        let state: Arc<dyn StateStore> = store.clone();
        entries.insert(
            (*name).to_owned(),
            CatalogEntry {
                info,
                state: Some(state),
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
        };
        entries.insert((*name).to_owned(), CatalogEntry { info, state: None });
    }
    Arc::new(Catalog::new(CatalogSnapshot { entries }))
}
