//! The semantics every Dapr state store owes its callers, written once for
//! stores that keep their own records (the in-memory and redb stores):
//! ETags as version numbers, first-write / last-write concurrency, TTL
//! expiry, and transactions that apply all of their operations or none.
//!
//! A store supplies the storage by implementing [`RecordTable`]; the rules in
//! [`apply_set`], [`apply_delete`] and [`apply_transaction`] decide what to
//! write. Stores backed by a server with its own concurrency control (Redis,
//! PostgreSQL) do not need this module.

mod apply;
mod clock;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod etag;
mod record;

pub use apply::{apply_delete, apply_set, apply_transaction};
pub use clock::{Clock, ManualTime};
pub use etag::{check_concurrency, parse_etag};
pub use record::{Record, Stamp};

use crate::{Feature, Result};

/// The optional features a store that follows these rules and runs
/// [`crate::query`] has, so such stores declare the same list.
pub fn features() -> Vec<Feature> {
    vec![
        Feature::Etag,
        Feature::Transactional,
        Feature::Ttl,
        Feature::QueryApi,
    ]
}

/// The storage a store gives the rules: versioned records by key. Reads see
/// the record as stored, expired or not; the rules decide what is live.
pub trait RecordTable {
    /// The version and expiry stored under `key`, without copying the value.
    fn stamp(&self, key: &str) -> Result<Option<Stamp>>;

    /// Stores `record` under `key`, replacing what was there.
    fn save(&mut self, key: &str, record: Record) -> Result<()>;

    /// Removes `key`; removing a missing key is not an error.
    fn remove(&mut self, key: &str) -> Result<()>;

    /// A version number greater than any this table has issued, so an ETag
    /// of a deleted item never matches an item written later.
    fn next_version(&mut self) -> Result<u64>;
}
