//! The state API's HTTP codec: `/v1.0/state/...` and `/v1.0-alpha1/state/.../query`.
//!
//! Handlers decode Dapr's wire format into the block's request types, call
//! [`StateBlock`](crate::blocks::state::StateBlock), and encode the answer.
//! Values travel as JSON text: a saved `"value": "v"` is stored as the four
//! bytes `"v"`, as Dapr stores it, so data stays readable by both.

use super::HttpState;
use super::error::ApiError;
use super::extract::{Body, PathParams, QueryArgs};
use crate::blocks::state::{
    BulkGetRequest, Concurrency, Consistency, DeleteRequest, GetRequest, Metadata, Operation,
    OperationKind, QueryResponse, SetRequest,
};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::sync::Arc;

/// The response header carrying an item's ETag, and the request header carrying the expected one.
const ETAG: &str = "etag";

/// `options` of a write or delete.
#[derive(Deserialize, Default)]
struct WireOptions {
    #[serde(default)]
    concurrency: Option<String>,
    #[serde(default)]
    consistency: Option<String>,
}

/// One item of `POST /v1.0/state/{store}`, or the request of a transaction
/// operation (`value` is ignored for a delete).
#[derive(Deserialize)]
struct WireItem<'a> {
    #[serde(default)]
    key: String,
    #[serde(default, borrow)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    etag: Option<String>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    options: Option<WireOptions>,
}

/// `POST /v1.0/state/{store}/bulk`.
#[derive(Deserialize)]
struct WireBulkGet {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    parallelism: Option<u32>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// One answer of a bulk read.
#[derive(Serialize)]
struct WireBulkItem {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `POST /v1.0/state/{store}/transaction`.
#[derive(Deserialize)]
struct WireTransaction<'a> {
    #[serde(default, borrow)]
    operations: Vec<WireOperation<'a>>,
    #[serde(default)]
    metadata: Option<Metadata>,
}

/// One operation of a transaction; `request` is decoded once the kind is known.
#[derive(Deserialize)]
struct WireOperation<'a> {
    #[serde(default)]
    operation: String,
    #[serde(borrow)]
    request: &'a RawValue,
}

/// The answer of a query.
#[derive(Serialize)]
struct WireQueryResponse {
    results: Vec<WireQueryItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

/// One query result.
#[derive(Serialize)]
struct WireQueryItem {
    key: String,
    data: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    etag: Option<String>,
}

/// `GET /v1.0/state/{store}/{key}`: 200 with the stored bytes and `ETag`, 204 when missing.
pub async fn get(
    State(state): State<Arc<HttpState>>,
    PathParams((store, key)): PathParams<(String, String)>,
    query: QueryArgs,
) -> Result<Response, ApiError> {
    let request = GetRequest {
        key,
        consistency: consistency(query.get("consistency"))?,
        metadata: query.metadata(),
    };
    let Some(item) = state.state.get(&store, request).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(etag) = item.etag.as_deref() {
        insert_etag(&mut headers, etag);
    }
    Ok((StatusCode::OK, headers, item.value).into_response())
}

/// `POST|PUT /v1.0/state/{store}`: saves a JSON array of items; 204.
pub async fn save(
    State(state): State<Arc<HttpState>>,
    PathParams(store): PathParams<String>,
    query: QueryArgs,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let items: Vec<WireItem<'_>> = body.json()?;
    let url_metadata = query.metadata();
    let requests = items
        .into_iter()
        .map(|item| set_request(item, &url_metadata))
        .collect::<Result<Vec<_>, _>>()?;
    state.state.save(&store, requests).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1.0/state/{store}/{key}` with `If-Match`; 204.
pub async fn delete(
    State(state): State<Arc<HttpState>>,
    PathParams((store, key)): PathParams<(String, String)>,
    query: QueryArgs,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let etag = match headers.get(header::IF_MATCH) {
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| ApiError::bad_parameter("the If-Match header is not valid text"))?
                .to_owned(),
        ),
        None => None,
    };
    let request = DeleteRequest {
        key,
        etag,
        concurrency: concurrency(query.get("concurrency"))?,
        consistency: consistency(query.get("consistency"))?,
        metadata: query.metadata(),
    };
    state.state.delete(&store, request).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /v1.0/state/{store}/bulk`: 200 with `[{key, data?, etag?, error?}]`.
pub async fn bulk_get(
    State(state): State<Arc<HttpState>>,
    PathParams(store): PathParams<String>,
    query: QueryArgs,
    body: Body,
) -> Result<Response, ApiError> {
    let wire: WireBulkGet = body.json()?;
    let request = BulkGetRequest {
        keys: wire.keys,
        parallelism: wire.parallelism,
        metadata: merged(wire.metadata, &query.metadata()),
    };
    let items = state.state.bulk_get(&store, request).await?;
    let answer: Vec<WireBulkItem> = items
        .into_iter()
        .map(|bulk| match (bulk.error, bulk.item) {
            (Some(error), _) => WireBulkItem {
                key: bulk.key,
                data: None,
                etag: None,
                error: Some(error),
            },
            (None, item) => WireBulkItem {
                key: bulk.key,
                data: item.as_ref().map(|item| embed(&item.value)),
                etag: item.and_then(|item| item.etag),
                error: None,
            },
        })
        .collect();
    json_response(&answer)
}

/// `POST|PUT /v1.0/state/{store}/transaction`: upserts and deletes, atomically; 204.
pub async fn transaction(
    State(state): State<Arc<HttpState>>,
    PathParams(store): PathParams<String>,
    query: QueryArgs,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let wire: WireTransaction<'_> = body.json()?;
    let operations = wire
        .operations
        .into_iter()
        .map(
            |operation| match OperationKind::parse(&operation.operation)? {
                OperationKind::Upsert => {
                    let item: WireItem<'_> = parse_raw(operation.request)?;
                    set_request(item, &Metadata::new()).map(Operation::Set)
                }
                OperationKind::Delete => {
                    let item: WireItem<'_> = parse_raw(operation.request)?;
                    delete_request(item).map(Operation::Delete)
                }
            },
        )
        .collect::<Result<Vec<_>, ApiError>>()?;
    let metadata = merged(wire.metadata, &query.metadata());
    state.state.transact(&store, operations, metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST|PUT /v1.0-alpha1/state/{store}/query`: 200 with `{results, token?}`,
/// 204 when nothing matched (as Dapr answers an empty result).
pub async fn query(
    State(state): State<Arc<HttpState>>,
    PathParams(store): PathParams<String>,
    query: QueryArgs,
    body: Body,
) -> Result<Response, ApiError> {
    // The query is passed on as text, but it must at least be JSON.
    let parsed: &RawValue = body.json()?;
    let response = state
        .state
        .query(&store, parsed.get().to_owned(), query.metadata())
        .await?;
    if response.results.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    json_response(&query_answer(response))
}

fn query_answer(response: QueryResponse) -> WireQueryResponse {
    WireQueryResponse {
        results: response
            .results
            .into_iter()
            .map(|item| WireQueryItem {
                data: embed(&item.value),
                key: item.key,
                etag: item.etag,
            })
            .collect(),
        token: response.token.filter(|token| !token.is_empty()),
    }
}

/// A save or upsert item as the block takes it; URL metadata overrides the item's.
fn set_request(item: WireItem<'_>, url_metadata: &Metadata) -> Result<SetRequest, ApiError> {
    let options = item.options.unwrap_or_default();
    Ok(SetRequest {
        key: item.key,
        // An absent or null value is stored as the JSON text `null`.
        value: item.value.map_or("null", RawValue::get).as_bytes().to_vec(),
        etag: item.etag,
        concurrency: concurrency(options.concurrency.as_deref())?,
        consistency: consistency(options.consistency.as_deref())?,
        ttl_seconds: None,
        metadata: merged(item.metadata, url_metadata),
    })
}

fn delete_request(item: WireItem<'_>) -> Result<DeleteRequest, ApiError> {
    let options = item.options.unwrap_or_default();
    Ok(DeleteRequest {
        key: item.key,
        etag: item.etag,
        concurrency: concurrency(options.concurrency.as_deref())?,
        consistency: consistency(options.consistency.as_deref())?,
        metadata: item.metadata.unwrap_or_default(),
    })
}

fn parse_raw<'a, T: Deserialize<'a>>(raw: &'a RawValue) -> Result<T, ApiError> {
    serde_json::from_str(raw.get()).map_err(ApiError::malformed)
}

/// The body's metadata with the URL's `metadata.*` parameters laid over it (Dapr lets the URL win).
fn merged(body: Option<Metadata>, url: &Metadata) -> Metadata {
    let mut metadata = body.unwrap_or_default();
    metadata.extend(url.iter().map(|(k, v)| (k.clone(), v.clone())));
    metadata
}

/// Dapr's `concurrency` names; empty means the default.
fn concurrency(name: Option<&str>) -> Result<Concurrency, ApiError> {
    match name.unwrap_or_default() {
        "" | "last-write" => Ok(Concurrency::LastWrite),
        "first-write" => Ok(Concurrency::FirstWrite),
        other => Err(ApiError::bad_parameter(format!(
            "unrecognized concurrency model '{other}'"
        ))),
    }
}

/// Dapr's `consistency` names; empty means the default.
fn consistency(name: Option<&str>) -> Result<Consistency, ApiError> {
    match name.unwrap_or_default() {
        "" | "eventual" => Ok(Consistency::Eventual),
        "strong" => Ok(Consistency::Strong),
        other => Err(ApiError::bad_parameter(format!(
            "unrecognized consistency model '{other}'"
        ))),
    }
}

/// Stored bytes as a JSON value inside an answer. Values saved through this
/// API are JSON and are embedded as they are. Bytes that are not JSON (written
/// through gRPC, say) would make Dapr emit a broken body; here UTF-8 text
/// becomes a JSON string and anything else a base64 JSON string.
fn embed(bytes: &[u8]) -> Box<RawValue> {
    if let Ok(raw) = serde_json::from_slice::<Box<RawValue>>(bytes) {
        return raw;
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => base64::engine::general_purpose::STANDARD.encode(bytes),
    };
    // Serialising a string always yields valid JSON.
    serde_json::value::to_raw_value(&text).unwrap_or_default()
}

/// An ETag as a header; one that cannot be a header value is left out (and logged).
fn insert_etag(headers: &mut HeaderMap, etag: &str) {
    match HeaderValue::from_str(etag) {
        Ok(value) => {
            headers.insert(ETAG, value);
        }
        Err(_) => tracing::warn!(
            etag,
            "the store returned an ETag that is not a valid header value"
        ),
    }
}

fn json_response<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let bytes = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok((
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response())
}
