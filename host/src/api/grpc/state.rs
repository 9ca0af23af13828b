//! The state API's gRPC codec: `GetState`, `GetBulkState`, `SaveState`,
//! `DeleteState`, `DeleteBulkState`, `ExecuteStateTransaction` and
//! `QueryStateAlpha1`.
//!
//! Each function decodes Dapr's messages into the block's request types,
//! calls [`StateBlock`], and encodes the answer; failures become statuses
//! through `From<StateError>` in `error`. Values travel as the bytes the app
//! sent, so a value saved over HTTP (JSON text) reads back the same over gRPC.

use super::proto::common::{
    self, state_options::StateConcurrency, state_options::StateConsistency,
};
use super::proto::runtime;
use crate::blocks::state::{
    BulkGetRequest, BulkItem, Concurrency, Consistency, DeleteRequest, GetRequest, Metadata,
    Operation, OperationKind, QueryResponse, SetRequest, StateBlock, StateError,
};
use std::collections::HashMap;

/// `GetState`: the value and ETag; both empty when the key does not exist.
pub async fn get(
    block: &StateBlock,
    request: runtime::GetStateRequest,
) -> Result<runtime::GetStateResponse, StateError> {
    let read = GetRequest {
        key: request.key,
        consistency: consistency(request.consistency),
        metadata: metadata(request.metadata),
    };
    let item = block.get(&request.store_name, read).await?;
    Ok(item
        .map(|item| runtime::GetStateResponse {
            data: item.value,
            etag: item.etag.unwrap_or_default(),
            metadata: HashMap::new(),
        })
        .unwrap_or_default())
}

/// `GetBulkState`: one item per key, with a per-key `error` where one failed.
pub async fn get_bulk(
    block: &StateBlock,
    request: runtime::GetBulkStateRequest,
) -> Result<runtime::GetBulkStateResponse, StateError> {
    let read = BulkGetRequest {
        keys: request.keys,
        // Zero (unset) and negative values mean "no preference".
        parallelism: u32::try_from(request.parallelism).ok().filter(|&n| n > 0),
        metadata: metadata(request.metadata),
    };
    let items = block.bulk_get(&request.store_name, read).await?;
    Ok(runtime::GetBulkStateResponse {
        items: items.into_iter().map(bulk_item).collect(),
    })
}

/// `SaveState`: writes every item (not atomically).
pub async fn save(
    block: &StateBlock,
    request: runtime::SaveStateRequest,
) -> Result<(), StateError> {
    let writes = request.states.into_iter().map(set_request).collect();
    block.save(&request.store_name, writes).await
}

/// `DeleteState`: deletes one key; a missing key without an ETag is no error.
pub async fn delete(
    block: &StateBlock,
    request: runtime::DeleteStateRequest,
) -> Result<(), StateError> {
    let (concurrency, consistency) = options(request.options);
    let delete = DeleteRequest {
        key: request.key,
        etag: request.etag.map(|etag| etag.value),
        concurrency,
        consistency,
        metadata: metadata(request.metadata),
    };
    block.delete(&request.store_name, delete).await
}

/// `DeleteBulkState`: deletes every item's key (not atomically).
pub async fn delete_bulk(
    block: &StateBlock,
    request: runtime::DeleteBulkStateRequest,
) -> Result<(), StateError> {
    let deletes = request.states.into_iter().map(delete_request).collect();
    block.delete_bulk(&request.store_name, deletes).await
}

/// `ExecuteStateTransaction`: `upsert` and `delete` operations, atomically.
pub async fn transact(
    block: &StateBlock,
    request: runtime::ExecuteStateTransactionRequest,
) -> Result<(), StateError> {
    let operations = request
        .operations
        .into_iter()
        .map(|operation| {
            let item = operation.request.unwrap_or_default();
            Ok(match OperationKind::parse(&operation.operation_type)? {
                OperationKind::Upsert => Operation::Set(set_request(item)),
                OperationKind::Delete => Operation::Delete(delete_request(item)),
            })
        })
        .collect::<Result<Vec<_>, StateError>>()?;
    block
        .transact(&request.store_name, operations, metadata(request.metadata))
        .await
}

/// `QueryStateAlpha1`: the matching items of this app and the next page's token.
pub async fn query(
    block: &StateBlock,
    request: runtime::QueryStateRequest,
) -> Result<runtime::QueryStateResponse, StateError> {
    let response = block
        .query(
            &request.store_name,
            request.query,
            metadata(request.metadata),
        )
        .await?;
    Ok(query_answer(response))
}

fn query_answer(response: QueryResponse) -> runtime::QueryStateResponse {
    runtime::QueryStateResponse {
        results: response
            .results
            .into_iter()
            .map(|item| runtime::QueryStateItem {
                key: item.key,
                data: item.value,
                etag: item.etag.unwrap_or_default(),
                error: String::new(),
            })
            .collect(),
        token: response.token.unwrap_or_default(),
        metadata: HashMap::new(),
    }
}

fn bulk_item(bulk: BulkItem) -> runtime::BulkStateItem {
    let (data, etag) = bulk
        .item
        .map(|item| (item.value, item.etag.unwrap_or_default()))
        .unwrap_or_default();
    runtime::BulkStateItem {
        key: bulk.key,
        data,
        etag,
        error: bulk.error.unwrap_or_default(),
        metadata: HashMap::new(),
    }
}

/// A write as the block takes it. An ETag message, even with an empty value,
/// makes the write conditional, as in Dapr.
fn set_request(item: common::StateItem) -> SetRequest {
    let (concurrency, consistency) = options(item.options);
    SetRequest {
        key: item.key,
        value: item.value,
        etag: item.etag.map(|etag| etag.value),
        concurrency,
        consistency,
        ttl_seconds: None,
        metadata: metadata(item.metadata),
    }
}

fn delete_request(item: common::StateItem) -> DeleteRequest {
    let (concurrency, consistency) = options(item.options);
    DeleteRequest {
        key: item.key,
        etag: item.etag.map(|etag| etag.value),
        concurrency,
        consistency,
        metadata: metadata(item.metadata),
    }
}

/// Dapr's options; unset and unknown enum values mean the defaults.
fn options(options: Option<common::StateOptions>) -> (Concurrency, Consistency) {
    let options = options.unwrap_or_default();
    let concurrency = match StateConcurrency::try_from(options.concurrency) {
        Ok(StateConcurrency::ConcurrencyFirstWrite) => Concurrency::FirstWrite,
        _ => Concurrency::LastWrite,
    };
    (concurrency, consistency(options.consistency))
}

fn consistency(value: i32) -> Consistency {
    match StateConsistency::try_from(value) {
        Ok(StateConsistency::ConsistencyStrong) => Consistency::Strong,
        _ => Consistency::Eventual,
    }
}

fn metadata(map: HashMap<String, String>) -> Metadata {
    map.into_iter().collect()
}
