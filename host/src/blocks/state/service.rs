//! [`StateBlock`]: Dapr's state API over whatever [`StateStore`] the catalog holds.
//!
//! The block is the one place that knows Dapr's state rules, so the HTTP and
//! gRPC codecs cannot drift apart:
//! - keys are validated (non-empty, no `||`, at most [`MAX_KEY_BYTES`]) and
//!   stored as `<app-id>||<key>`, the scheme Dapr uses, so data written by
//!   Dapr apps stays readable; the prefix is stripped from every answer;
//! - `metadata.ttlInSeconds` is parsed into [`SetRequest::ttl_seconds`];
//! - store features are checked before the call (transactions, query, ETags);
//! - component failures become [`StateError`]s carrying Dapr's error code.
//!
//! The block takes the domain request types of [`super`] with the **app's own
//! key** in `key`; what reaches the store carries the prefixed key.

use super::error::{StateError, StateOp};
use super::{
    BulkItem, Concurrency, Consistency, DeleteRequest, Feature, GetRequest, Item, Metadata,
    Operation, QueryRequest, QueryResponse, SetRequest, StateStore,
};
use crate::blocks::{Catalog, ComponentError};
use std::sync::Arc;

/// Dapr's separator between the app id and the app's key; apps may not use it.
pub const KEY_SEPARATOR: &str = "||";

/// The longest key the block accepts, in bytes. Backends have their own
/// limits (Redis: 512 MB, PostgreSQL: 1 GB per text value), none of them
/// useful as a guard; a key this long is a bug in the app, refused early with
/// a clear message instead of travelling into the component.
pub const MAX_KEY_BYTES: usize = 64 * 1024;

/// The request metadata key that sets an item's expiry.
pub const TTL_METADATA_KEY: &str = "ttlInSeconds";

/// A read of several keys at once.
#[derive(Debug, Clone, Default)]
pub struct BulkGetRequest {
    /// The app's keys, unprefixed.
    pub keys: Vec<String>,
    /// How many keys the app allows to be read at the same time. The request
    /// is one component call and the component decides its own concurrency,
    /// so this is validated and otherwise advisory.
    pub parallelism: Option<u32>,
    /// Request metadata, passed to the store with every key.
    pub metadata: Metadata,
}

/// The kind of one transaction operation, as apps name it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `upsert`: write the key.
    Upsert,
    /// `delete`: delete the key.
    Delete,
}

impl OperationKind {
    /// Parses Dapr's operation name; any other name is refused the way Dapr
    /// refuses it (`ERR_NOT_SUPPORTED_STATE_OPERATION`).
    pub fn parse(name: &str) -> Result<Self, StateError> {
        match name {
            "upsert" => Ok(OperationKind::Upsert),
            "delete" => Ok(OperationKind::Delete),
            other => Err(StateError::UnsupportedOperation {
                operation: other.to_owned(),
            }),
        }
    }
}

/// The state building block for one app: validation, key prefixing and
/// feature checks in front of the catalog's state stores.
pub struct StateBlock {
    /// `<app-id>||`, prepended to every key.
    prefix: String,
    catalog: Arc<Catalog>,
}

impl StateBlock {
    /// The block for `app_id`, serving the stores `catalog` holds at each call
    /// (so hot reload is picked up without rebuilding the block).
    pub fn new(app_id: &str, catalog: Arc<Catalog>) -> Self {
        StateBlock {
            prefix: format!("{app_id}{KEY_SEPARATOR}"),
            catalog,
        }
    }

    /// Reads one key; `None` when it does not exist.
    pub async fn get(
        &self,
        store: &str,
        mut request: GetRequest,
    ) -> Result<Option<Item>, StateError> {
        let backend = self.store(store)?;
        let key = request.key.clone();
        request.key = self.stored_key(&key)?;
        match backend.get(request).await {
            Ok(item) => Ok(item),
            Err(ComponentError::NotFound) => Ok(None),
            Err(source) => Err(component_error(StateOp::Get, store, Some(key), source)),
        }
    }

    /// Reads several keys; per-key failures are reported in the items, a
    /// failure of the whole call as an error. Keys come back unprefixed.
    pub async fn bulk_get(
        &self,
        store: &str,
        request: BulkGetRequest,
    ) -> Result<Vec<BulkItem>, StateError> {
        let backend = self.store(store)?;
        if request.keys.is_empty() {
            return Ok(Vec::new());
        }
        let reads = request
            .keys
            .iter()
            .map(|key| {
                Ok(GetRequest {
                    key: self.stored_key(key)?,
                    consistency: Consistency::default(),
                    metadata: request.metadata.clone(),
                })
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        let items = backend
            .bulk_get(reads)
            .await
            .map_err(|source| component_error(StateOp::BulkGet, store, None, source))?;
        Ok(items
            .into_iter()
            .map(|item| BulkItem {
                key: self.app_key(item.key),
                ..item
            })
            .collect())
    }

    /// Writes the items (one component call; not atomic across items).
    pub async fn save(&self, store: &str, requests: Vec<SetRequest>) -> Result<(), StateError> {
        let backend = self.store(store)?;
        let features = backend.features();
        let mut writes = requests
            .into_iter()
            .map(|request| self.prepare_set(StateOp::Save, store, &features, request))
            .collect::<Result<Vec<_>, StateError>>()?;
        let result = match writes.len() {
            0 => return Ok(()),
            1 => {
                let write = writes.remove(0);
                let key = self.app_key(write.key.clone());
                return backend
                    .set(write)
                    .await
                    .map_err(|source| component_error(StateOp::Save, store, Some(key), source));
            }
            _ => backend.bulk_set(writes).await,
        };
        result.map_err(|source| component_error(StateOp::Save, store, None, source))
    }

    /// Deletes one key. Deleting a key that does not exist succeeds, as in
    /// Dapr, unless an ETag was given (then it is an ETag mismatch).
    pub async fn delete(&self, store: &str, request: DeleteRequest) -> Result<(), StateError> {
        let backend = self.store(store)?;
        let features = backend.features();
        let key = request.key.clone();
        let request = self.prepare_delete(StateOp::Delete, store, &features, request)?;
        let had_etag = request.etag.is_some();
        match backend.delete(request).await {
            Ok(()) => Ok(()),
            Err(ComponentError::NotFound) if !had_etag => Ok(()),
            Err(ComponentError::NotFound) => Err(component_error(
                StateOp::Delete,
                store,
                Some(key),
                ComponentError::EtagMismatch,
            )),
            Err(source) => Err(component_error(StateOp::Delete, store, Some(key), source)),
        }
    }

    /// Deletes several keys (one component call; not atomic across keys).
    /// Missing keys are skipped unless an ETag was given for them.
    pub async fn delete_bulk(
        &self,
        store: &str,
        requests: Vec<DeleteRequest>,
    ) -> Result<(), StateError> {
        let backend = self.store(store)?;
        let features = backend.features();
        let deletes = requests
            .into_iter()
            .map(|request| self.prepare_delete(StateOp::BulkDelete, store, &features, request))
            .collect::<Result<Vec<_>, StateError>>()?;
        if deletes.is_empty() {
            return Ok(());
        }
        // As for one key: `not-found` is an ETag mismatch if an ETag was given.
        let had_etag = deletes.iter().any(|delete| delete.etag.is_some());
        let source = match backend.bulk_delete(deletes).await {
            Ok(()) => return Ok(()),
            Err(ComponentError::NotFound) if !had_etag => return Ok(()),
            Err(ComponentError::NotFound) => ComponentError::EtagMismatch,
            Err(source) => source,
        };
        Err(component_error(StateOp::BulkDelete, store, None, source))
    }

    /// Applies the operations atomically; the store must be transactional.
    pub async fn transact(
        &self,
        store: &str,
        operations: Vec<Operation>,
        metadata: Metadata,
    ) -> Result<(), StateError> {
        let backend = self.store(store)?;
        let features = backend.features();
        if !features.contains(&Feature::Transactional) {
            return Err(StateError::TransactionsNotSupported {
                store: store.to_owned(),
            });
        }
        if operations.is_empty() {
            return Ok(());
        }
        let operations = operations
            .into_iter()
            .map(|operation| match operation {
                Operation::Set(request) => self
                    .prepare_set(StateOp::Transaction, store, &features, request)
                    .map(Operation::Set),
                Operation::Delete(request) => self
                    .prepare_delete(StateOp::Transaction, store, &features, request)
                    .map(Operation::Delete),
            })
            .collect::<Result<Vec<_>, StateError>>()?;
        backend
            .transact(operations, metadata)
            .await
            .map_err(|source| component_error(StateOp::Transaction, store, None, source))
    }

    /// Runs a query (Dapr's query language as JSON text) over this app's keys;
    /// the store must have the QUERY_API feature. Keys come back unprefixed.
    pub async fn query(
        &self,
        store: &str,
        query: String,
        metadata: Metadata,
    ) -> Result<QueryResponse, StateError> {
        let backend = self.store(store)?;
        if !backend.features().contains(&Feature::QueryApi) {
            return Err(StateError::QueryNotSupported {
                store: store.to_owned(),
            });
        }
        let request = QueryRequest {
            query,
            key_prefix: self.prefix.clone(),
            metadata,
        };
        let mut response = backend
            .query(request)
            .await
            .map_err(|source| component_error(StateOp::Query, store, None, source))?;
        for item in &mut response.results {
            item.key = self.app_key(std::mem::take(&mut item.key));
        }
        Ok(response)
    }

    /// The loaded store called `name`, or Dapr's "not configured" / "not found".
    fn store(&self, name: &str) -> Result<Arc<dyn StateStore>, StateError> {
        match self.catalog.state_store(name) {
            Some(store) => Ok(store),
            None if !self.catalog.has_state_stores() => Err(StateError::NotConfigured {
                store: name.to_owned(),
            }),
            None => Err(StateError::StoreNotFound {
                store: name.to_owned(),
            }),
        }
    }

    /// The key as stored, after checking the app's key is acceptable.
    fn stored_key(&self, key: &str) -> Result<String, StateError> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// The app's key for a stored key (unchanged if it lacks this app's prefix).
    fn app_key(&self, stored: String) -> String {
        match stored.strip_prefix(&self.prefix) {
            Some(key) => key.to_owned(),
            None => stored,
        }
    }

    /// A write as the store must see it: prefixed key, TTL parsed, ETag use checked.
    fn prepare_set(
        &self,
        op: StateOp,
        store: &str,
        features: &[Feature],
        mut request: SetRequest,
    ) -> Result<SetRequest, StateError> {
        let key = std::mem::take(&mut request.key);
        let invalid = |reason: String| StateError::InvalidOption {
            op,
            store: store.to_owned(),
            key: Some(key.clone()),
            reason,
        };
        if let Some(ttl) = parse_ttl(&request.metadata).map_err(invalid)? {
            request.ttl_seconds = ttl;
        }
        check_etag_support(features, request.etag.as_deref(), request.concurrency)
            .map_err(invalid)?;
        request.key = self.stored_key(&key)?;
        Ok(request)
    }

    /// A delete as the store must see it: prefixed key, ETag use checked.
    fn prepare_delete(
        &self,
        op: StateOp,
        store: &str,
        features: &[Feature],
        mut request: DeleteRequest,
    ) -> Result<DeleteRequest, StateError> {
        let key = std::mem::take(&mut request.key);
        check_etag_support(features, request.etag.as_deref(), request.concurrency).map_err(
            |reason| StateError::InvalidOption {
                op,
                store: store.to_owned(),
                key: Some(key.clone()),
                reason,
            },
        )?;
        request.key = self.stored_key(&key)?;
        Ok(request)
    }
}

/// Refuses keys Dapr refuses (empty, containing `||`) and absurdly long ones.
pub fn validate_key(key: &str) -> Result<(), StateError> {
    let reason = if key.is_empty() {
        r#""key" is a required field"#.to_owned()
    } else if key.len() > MAX_KEY_BYTES {
        format!(
            "key is {} bytes long; keys may be at most {MAX_KEY_BYTES} bytes",
            key.len()
        )
    } else if key.contains(KEY_SEPARATOR) {
        format!("input key/keyPrefix '{key}' can't contain '{KEY_SEPARATOR}'")
    } else {
        return Ok(());
    };
    Err(StateError::InvalidKey { reason })
}

/// `metadata.ttlInSeconds`: absent → `Ok(None)` (leave the request as it is);
/// `-1` → `Ok(Some(None))` (no expiry); `0..=i32::MAX` → that many seconds.
fn parse_ttl(metadata: &Metadata) -> Result<Option<Option<u32>>, String> {
    let Some(text) = metadata
        .get(TTL_METADATA_KEY)
        .filter(|text| !text.is_empty())
    else {
        return Ok(None);
    };
    let value: i64 = text.trim().parse().map_err(|_| {
        format!("incorrect value for metadata '{TTL_METADATA_KEY}': `{text}` is not an integer")
    })?;
    match value {
        -1 => Ok(Some(None)),
        0..=0x7fff_ffff => Ok(Some(u32::try_from(value).ok())),
        _ => Err(format!(
            "incorrect value for metadata '{TTL_METADATA_KEY}': must be -1 or between 0 and 2147483647, got {value}"
        )),
    }
}

/// A store without the ETAG feature cannot honour an ETag or first-write
/// concurrency; refusing is safer than silently writing last-write-wins.
fn check_etag_support(
    features: &[Feature],
    etag: Option<&str>,
    concurrency: Concurrency,
) -> Result<(), String> {
    let wants_etag = etag.is_some() || concurrency == Concurrency::FirstWrite;
    if wants_etag && !features.contains(&Feature::Etag) {
        return Err(
            "the state store does not support ETags (no ETAG feature), so it cannot honour an etag or first-write concurrency"
                .to_owned(),
        );
    }
    Ok(())
}

/// Wraps a component failure with the operation and store it concerns.
fn component_error(
    op: StateOp,
    store: &str,
    key: Option<String>,
    source: ComponentError,
) -> StateError {
    StateError::Component {
        op,
        store: store.to_owned(),
        key,
        source,
    }
}

#[cfg(test)]
mod tests;
