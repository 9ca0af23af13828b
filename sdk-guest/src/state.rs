//! State stores: implement [`StateStore`] and export it with
//! [`export_state_store!`](crate::export_state_store).
//!
//! ```ignore
//! use outrig_sdk::state::*;
//! use outrig_sdk::{Metadata, Result, Feature};
//!
//! struct Memory(std::collections::HashMap<String, Vec<u8>>);
//!
//! impl StateStore for Memory {
//!     fn init(_metadata: Metadata) -> Result<Self> { Ok(Memory(Default::default())) }
//!     fn features() -> Vec<Feature> { vec![] }
//!     fn get(&mut self, req: GetRequest) -> Result<Option<Item>> {
//!         Ok(self.0.get(&req.key).map(|v| Item { value: v.clone(), etag: None, expires_at_unix: None }))
//!     }
//!     fn set(&mut self, req: SetRequest) -> Result<()> { self.0.insert(req.key, req.value); Ok(()) }
//!     fn delete(&mut self, req: DeleteRequest) -> Result<()> { self.0.remove(&req.key); Ok(()) }
//! }
//! outrig_sdk::export_state_store!(Memory);
//! ```

use crate::{Error, Feature, Metadata, Result};

pub use crate::bindings::state_store::exports::outrig::component::state::{
    BulkItem, Concurrency, Consistency, DeleteRequest, GetRequest, Item, Operation, QueryItem,
    QueryRequest, QueryResponse, SetRequest,
};

/// A Dapr state store. One value of the type lives per component instance and
/// serves one call at a time, so `&mut self` needs no locking.
pub trait StateStore: Sized + 'static {
    /// Builds the store from its metadata. Should not block on the backend:
    /// connect lazily, so a store whose backend is down still loads.
    fn init(metadata: Metadata) -> Result<Self>;

    /// The optional features the store implements.
    fn features() -> Vec<Feature>;

    /// Reads one key.
    fn get(&mut self, request: GetRequest) -> Result<Option<Item>>;

    /// Writes one key.
    fn set(&mut self, request: SetRequest) -> Result<()>;

    /// Deletes one key.
    fn delete(&mut self, request: DeleteRequest) -> Result<()>;

    /// Reads several keys; by default one `get` per key, errors kept per key.
    fn bulk_get(&mut self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>> {
        Ok(requests
            .into_iter()
            .map(|request| {
                let key = request.key.clone();
                match self.get(request) {
                    Ok(item) => BulkItem {
                        key,
                        item,
                        error: None,
                    },
                    Err(err) => BulkItem {
                        key,
                        item: None,
                        error: Some(describe(&err)),
                    },
                }
            })
            .collect())
    }

    /// Writes several keys; by default one `set` per key, stopping at the first error.
    fn bulk_set(&mut self, requests: Vec<SetRequest>) -> Result<()> {
        requests
            .into_iter()
            .try_for_each(|request| self.set(request))
    }

    /// Deletes several keys; by default one `delete` per key, stopping at the first error.
    fn bulk_delete(&mut self, requests: Vec<DeleteRequest>) -> Result<()> {
        requests
            .into_iter()
            .try_for_each(|request| self.delete(request))
    }

    /// Applies operations atomically. Only stores declaring
    /// [`Feature::Transactional`] override this.
    fn transact(&mut self, _operations: Vec<Operation>, _metadata: Metadata) -> Result<()> {
        Err(Error::NotSupported("transactions".into()))
    }

    /// Runs a query. Only stores declaring [`Feature::QueryApi`] override this.
    fn query(&mut self, _request: QueryRequest) -> Result<QueryResponse> {
        Err(Error::NotSupported("query".into()))
    }
}

/// A one-line description of an error, for per-key failures in bulk answers.
pub fn describe(err: &Error) -> String {
    match err {
        Error::NotFound => "not found".into(),
        Error::EtagMismatch => "possible etag mismatch: the etag does not match".into(),
        Error::EtagInvalid => "invalid etag value".into(),
        Error::InvalidArgument(m) => format!("invalid argument: {m}"),
        Error::Unavailable(m) => format!("unavailable: {m}"),
        Error::NotSupported(m) => format!("not supported: {m}"),
        Error::Internal(m) => m.clone(),
    }
}

/// Exports a [`StateStore`] implementation as the component's `state-store` world.
#[macro_export]
macro_rules! export_state_store {
    ($store:ty) => {
        const _: () = {
            use $crate::bindings::state_store::exports::outrig::component::{lifecycle, state};
            use $crate::state::StateStore as _;

            $crate::__export_instance!($store, $crate::state::StateStore, lifecycle);

            impl state::Guest for Export {
                fn get(request: state::GetRequest) -> $crate::Result<Option<state::Item>> {
                    with_instance(|s| s.get(request))
                }
                fn bulk_get(
                    requests: ::std::vec::Vec<state::GetRequest>,
                ) -> $crate::Result<::std::vec::Vec<state::BulkItem>> {
                    with_instance(|s| s.bulk_get(requests))
                }
                fn set(request: state::SetRequest) -> $crate::Result<()> {
                    with_instance(|s| s.set(request))
                }
                fn bulk_set(requests: ::std::vec::Vec<state::SetRequest>) -> $crate::Result<()> {
                    with_instance(|s| s.bulk_set(requests))
                }
                fn delete(request: state::DeleteRequest) -> $crate::Result<()> {
                    with_instance(|s| s.delete(request))
                }
                fn bulk_delete(
                    requests: ::std::vec::Vec<state::DeleteRequest>,
                ) -> $crate::Result<()> {
                    with_instance(|s| s.bulk_delete(requests))
                }
                fn transact(
                    operations: ::std::vec::Vec<state::Operation>,
                    metadata: ::std::vec::Vec<(String, String)>,
                ) -> $crate::Result<()> {
                    with_instance(|s| s.transact(operations, metadata.into()))
                }
                fn query(request: state::QueryRequest) -> $crate::Result<state::QueryResponse> {
                    with_instance(|s| s.query(request))
                }
            }

            $crate::bindings::state_store::__export_state_store_world!(
                Export with_types_in $crate::bindings::state_store
            );
        };
    };
}
