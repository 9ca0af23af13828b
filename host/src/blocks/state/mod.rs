//! The state building block: Dapr's state API over any [`StateStore`].
//!
//! [`StateBlock`](service::StateBlock) validates requests and prefixes keys with the
//! app id (`<app-id>||<key>`, as Dapr stores them, so data written by Dapr apps
//! stays readable) before calling the store. Nothing here knows HTTP, gRPC or wasmtime.

use super::ComponentError;
use std::collections::BTreeMap;

/// Key/value options a request carries (`metadata.*` in Dapr's API).
pub type Metadata = BTreeMap<String, String>;

/// Dapr's `options.concurrency`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Concurrency {
    /// Refuse the write unless the ETag matches (or the key is new, without an ETag).
    FirstWrite,
    /// The write wins unless a given ETag does not match.
    #[default]
    LastWrite,
}

/// Dapr's `options.consistency`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    /// The store may answer from a replica.
    #[default]
    Eventual,
    /// The store must answer from the primary.
    Strong,
}

/// The optional abilities a store declares, named as Dapr reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feature {
    /// ETags and first-write concurrency.
    Etag,
    /// Atomic multi-operation transactions.
    Transactional,
    /// Per-item expiry.
    Ttl,
    /// The state query API.
    QueryApi,
}

impl Feature {
    /// The name `/v1.0/metadata` reports, as Dapr spells it.
    pub fn dapr_name(self) -> &'static str {
        match self {
            Feature::Etag => "ETAG",
            Feature::Transactional => "TRANSACTIONAL",
            Feature::Ttl => "TTL",
            Feature::QueryApi => "QUERY_API",
        }
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The bytes the app saved.
    pub value: Vec<u8>,
    /// The version, for stores with the ETag feature.
    pub etag: Option<String>,
    /// When the item expires (seconds since the Unix epoch), if it has a TTL.
    pub expires_at_unix: Option<u64>,
}

/// Read one key (already prefixed).
#[derive(Debug, Clone, Default)]
pub struct GetRequest {
    /// The stored key, `<app-id>||<key>`.
    pub key: String,
    /// Requested consistency.
    pub consistency: Consistency,
    /// Request metadata passed through to the store.
    pub metadata: Metadata,
}

/// Write one key (already prefixed).
#[derive(Debug, Clone, Default)]
pub struct SetRequest {
    /// The stored key, `<app-id>||<key>`.
    pub key: String,
    /// The bytes to store.
    pub value: Vec<u8>,
    /// The ETag the write is conditional on.
    pub etag: Option<String>,
    /// First-write or last-write.
    pub concurrency: Concurrency,
    /// Requested consistency.
    pub consistency: Consistency,
    /// Expiry from now, from `metadata.ttlInSeconds`; `None` keeps the item forever.
    pub ttl_seconds: Option<u32>,
    /// Request metadata passed through to the store.
    pub metadata: Metadata,
}

/// Delete one key (already prefixed).
#[derive(Debug, Clone, Default)]
pub struct DeleteRequest {
    /// The stored key, `<app-id>||<key>`.
    pub key: String,
    /// The ETag the delete is conditional on.
    pub etag: Option<String>,
    /// First-write or last-write.
    pub concurrency: Concurrency,
    /// Requested consistency.
    pub consistency: Consistency,
    /// Request metadata passed through to the store.
    pub metadata: Metadata,
}

/// One answer of a bulk read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BulkItem {
    /// The stored key, `<app-id>||<key>`.
    pub key: String,
    /// The item, or `None` when missing.
    pub item: Option<Item>,
    /// A per-key failure.
    pub error: Option<String>,
}

/// One operation of a transaction.
#[derive(Debug, Clone)]
pub enum Operation {
    /// Upsert.
    Set(SetRequest),
    /// Delete.
    Delete(DeleteRequest),
}

/// A state query.
#[derive(Debug, Clone, Default)]
pub struct QueryRequest {
    /// Dapr's query language as JSON text.
    pub query: String,
    /// Only keys with this prefix (`<app-id>||`) match.
    pub key_prefix: String,
    /// Request metadata passed through to the store.
    pub metadata: Metadata,
}

/// One query result, key still prefixed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryItem {
    /// The stored key.
    pub key: String,
    /// The stored bytes.
    pub value: Vec<u8>,
    /// The version, for stores with the ETag feature.
    pub etag: Option<String>,
}

/// A page of query results.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryResponse {
    /// Matching items.
    pub results: Vec<QueryItem>,
    /// Token for the next page.
    pub token: Option<String>,
}

/// What a state store must do. The WebAssembly component adapter is the
/// production implementation; tests may provide their own.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// The optional features the store implements.
    fn features(&self) -> Vec<Feature>;
    /// Reads one key; `None` when missing or expired.
    async fn get(&self, request: GetRequest) -> Result<Option<Item>, ComponentError>;
    /// Reads several keys.
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, ComponentError>;
    /// Writes one key.
    async fn set(&self, request: SetRequest) -> Result<(), ComponentError>;
    /// Writes several keys, not atomically.
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<(), ComponentError>;
    /// Deletes one key.
    async fn delete(&self, request: DeleteRequest) -> Result<(), ComponentError>;
    /// Deletes several keys, not atomically.
    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<(), ComponentError>;
    /// Applies operations atomically.
    async fn transact(
        &self,
        operations: Vec<Operation>,
        metadata: Metadata,
    ) -> Result<(), ComponentError>;
    /// Runs a query.
    async fn query(&self, request: QueryRequest) -> Result<QueryResponse, ComponentError>;
}
pub mod error;
pub mod service;

pub use error::{ErrorKind, StateError, StateOp};
pub use service::{BulkGetRequest, OperationKind, StateBlock};
