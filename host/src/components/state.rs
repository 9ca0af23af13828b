//! The `state-store` world behind [`StateStore`](crate::blocks::state::StateStore):
//! conversions between the block's domain types and the generated bindings.

use crate::bindings::state_store::{self as wit, StateStorePre};
use crate::bindings::types as wit_types;
use crate::blocks::ComponentError;
use crate::blocks::state::{
    BulkItem, Concurrency, Consistency, DeleteRequest, Feature, GetRequest, Item, Metadata,
    Operation, QueryItem, QueryRequest, QueryResponse, SetRequest, StateStore,
};
use crate::runtime::pool::{CallFuture, InstancePool, PooledInstance};

super::call::pooled_world!(wit::StateStore, StateStorePre);

/// A state store served by a pool of component instances.
pub struct WasmStateStore {
    pool: InstancePool<wit::StateStore>,
    features: Vec<Feature>,
}

impl WasmStateStore {
    /// Wraps a started pool, asking the component for its features.
    pub async fn new(pool: InstancePool<wit::StateStore>) -> Result<Self, ComponentError> {
        let features = super::call::features(&pool).await?;
        Ok(WasmStateStore { features, pool })
    }

    /// Runs one call of the `state` interface, `operation`.
    async fn invoke<T, F>(&self, operation: &'static str, call: F) -> Result<T, ComponentError>
    where
        F: for<'a> FnOnce(
            &'a mut PooledInstance<wit::StateStore>,
        ) -> CallFuture<'a, Result<T, wit_types::Error>>,
    {
        super::call::invoke(&self.pool, operation, call).await
    }
}

#[async_trait::async_trait]
impl StateStore for WasmStateStore {
    fn features(&self) -> Vec<Feature> {
        self.features.clone()
    }

    async fn get(&self, request: GetRequest) -> Result<Option<Item>, ComponentError> {
        let request = get_request(request);
        let item = self
            .invoke("get", move |i| {
                Box::pin(async move {
                    i.bindings
                        .outrig_component_state()
                        .call_get(&mut i.store, &request)
                        .await
                })
            })
            .await?;
        Ok(item.map(item_from))
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, ComponentError> {
        let requests: Vec<_> = requests.into_iter().map(get_request).collect();
        let items = self
            .invoke("bulk_get", move |i| {
                Box::pin(async move {
                    i.bindings
                        .outrig_component_state()
                        .call_bulk_get(&mut i.store, &requests)
                        .await
                })
            })
            .await?;
        Ok(items
            .into_iter()
            .map(|b| BulkItem {
                key: b.key,
                item: b.item.map(item_from),
                error: b.error,
            })
            .collect())
    }

    async fn set(&self, request: SetRequest) -> Result<(), ComponentError> {
        let request = set_request(request);
        self.invoke("set", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_state()
                    .call_set(&mut i.store, &request)
                    .await
            })
        })
        .await
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<(), ComponentError> {
        let requests: Vec<_> = requests.into_iter().map(set_request).collect();
        self.invoke("bulk_set", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_state()
                    .call_bulk_set(&mut i.store, &requests)
                    .await
            })
        })
        .await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<(), ComponentError> {
        let request = delete_request(request);
        self.invoke("delete", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_state()
                    .call_delete(&mut i.store, &request)
                    .await
            })
        })
        .await
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<(), ComponentError> {
        let requests: Vec<_> = requests.into_iter().map(delete_request).collect();
        self.invoke("bulk_delete", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_state()
                    .call_bulk_delete(&mut i.store, &requests)
                    .await
            })
        })
        .await
    }

    async fn transact(
        &self,
        operations: Vec<Operation>,
        metadata: Metadata,
    ) -> Result<(), ComponentError> {
        let operations: Vec<_> = operations
            .into_iter()
            .map(|op| match op {
                Operation::Set(r) => wit::Operation::Set(set_request(r)),
                Operation::Delete(r) => wit::Operation::Delete(delete_request(r)),
            })
            .collect();
        let metadata = pairs(metadata);
        self.invoke("transact", move |i| {
            Box::pin(async move {
                i.bindings
                    .outrig_component_state()
                    .call_transact(&mut i.store, &operations, &metadata)
                    .await
            })
        })
        .await
    }

    async fn query(&self, request: QueryRequest) -> Result<QueryResponse, ComponentError> {
        let request = wit::QueryRequest {
            query: request.query,
            key_prefix: request.key_prefix,
            metadata: pairs(request.metadata),
        };
        let response = self
            .invoke("query", move |i| {
                Box::pin(async move {
                    i.bindings
                        .outrig_component_state()
                        .call_query(&mut i.store, &request)
                        .await
                })
            })
            .await?;
        Ok(QueryResponse {
            results: response
                .results
                .into_iter()
                .map(|r| QueryItem {
                    key: r.key,
                    value: r.value,
                    etag: r.etag,
                })
                .collect(),
            token: response.token,
        })
    }
}

fn pairs(metadata: Metadata) -> Vec<(String, String)> {
    metadata.into_iter().collect()
}

fn concurrency(c: Concurrency) -> wit::Concurrency {
    match c {
        Concurrency::FirstWrite => wit::Concurrency::FirstWrite,
        Concurrency::LastWrite => wit::Concurrency::LastWrite,
    }
}

fn consistency(c: Consistency) -> wit::Consistency {
    match c {
        Consistency::Eventual => wit::Consistency::Eventual,
        Consistency::Strong => wit::Consistency::Strong,
    }
}

fn get_request(r: GetRequest) -> wit::GetRequest {
    wit::GetRequest {
        key: r.key,
        consistency: consistency(r.consistency),
        metadata: pairs(r.metadata),
    }
}

fn set_request(r: SetRequest) -> wit::SetRequest {
    wit::SetRequest {
        key: r.key,
        value: r.value,
        etag: r.etag,
        concurrency: concurrency(r.concurrency),
        consistency: consistency(r.consistency),
        ttl_seconds: r.ttl_seconds,
        metadata: pairs(r.metadata),
    }
}

fn delete_request(r: DeleteRequest) -> wit::DeleteRequest {
    wit::DeleteRequest {
        key: r.key,
        etag: r.etag,
        concurrency: concurrency(r.concurrency),
        consistency: consistency(r.consistency),
        metadata: pairs(r.metadata),
    }
}

fn item_from(item: wit::Item) -> Item {
    Item {
        value: item.value,
        etag: item.etag,
        expires_at_unix: item.expires_at_unix,
    }
}
