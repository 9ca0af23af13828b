//! The gRPC API driven in-process: a real tonic server on a free local port,
//! a tonic client, the fake in-memory store behind the real state block.
#![allow(clippy::unwrap_used)]

use super::proto::common::{Etag, StateItem, StateOptions, state_options::StateConcurrency};
use super::proto::runtime::{self, dapr_client::DaprClient};
use super::*;
use crate::blocks::ComponentError;
use crate::test_util::{FakeStore, catalog};
use std::collections::HashMap;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// The publish RPCs, with the recording fake broker.
mod pubsub;

/// The app id every test runs as.
const APP: &str = "app";

/// A running server and a client of it; the server stops when this is dropped.
struct Fixture {
    store: Arc<FakeStore>,
    ctx: Arc<ApiContext>,
    client: DaprClient<Channel>,
    channel: Channel,
    _stop: oneshot::Sender<()>,
}

impl Fixture {
    /// Store `s` has every feature, `plain` none, `down` fails every call
    /// as unavailable; `broken` failed to load.
    async fn new(token: Option<&str>) -> Self {
        let store = FakeStore::full();
        let down = FakeStore::full();
        down.fail_with(Some(ComponentError::Unavailable(
            "connection refused".into(),
        )));
        let catalog = catalog(
            &[
                ("s", store.clone()),
                ("plain", FakeStore::new(&[])),
                ("down", down),
            ],
            &[("broken", "components/broken.yaml: spec.type: missing")],
        );
        Self::serve(store, context(token, catalog)).await
    }

    /// A sidecar with no state store at all.
    async fn without_stores() -> Self {
        Self::serve(FakeStore::full(), context(None, catalog(&[], &[]))).await
    }

    async fn serve(store: Arc<FakeStore>, ctx: Arc<ApiContext>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, ctx.clone(), async move {
            let _ = stopped.await;
        }));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Fixture {
            store,
            ctx,
            client: DaprClient::new(channel.clone()),
            channel,
            _stop: stop,
        }
    }
}

fn context(token: Option<&str>, catalog: Arc<crate::blocks::Catalog>) -> Arc<ApiContext> {
    Arc::new(ApiContext {
        app_id: APP.into(),
        api_token: token.map(str::to_owned),
        catalog,
        publish_signals: Default::default(),
        delivery: Default::default(),
        shutdown: Arc::new(tokio::sync::Notify::new()),
        extended: Default::default(),
    })
}

fn item(key: &str, value: &[u8]) -> StateItem {
    StateItem {
        key: key.into(),
        value: value.to_vec(),
        ..Default::default()
    }
}

fn with_etag(mut item: StateItem, etag: &str) -> StateItem {
    item.etag = Some(Etag { value: etag.into() });
    item
}

fn save(store: &str, states: Vec<StateItem>) -> runtime::SaveStateRequest {
    runtime::SaveStateRequest {
        store_name: store.into(),
        states,
    }
}

fn get(store: &str, key: &str) -> runtime::GetStateRequest {
    runtime::GetStateRequest {
        store_name: store.into(),
        key: key.into(),
        ..Default::default()
    }
}

fn transaction(
    store: &str,
    operations: &[(&str, StateItem)],
) -> runtime::ExecuteStateTransactionRequest {
    runtime::ExecuteStateTransactionRequest {
        store_name: store.into(),
        operations: operations
            .iter()
            .map(|(kind, item)| runtime::TransactionalStateOperation {
                operation_type: (*kind).into(),
                request: Some(item.clone()),
            })
            .collect(),
        metadata: HashMap::new(),
    }
}

fn query(store: &str) -> runtime::QueryStateRequest {
    runtime::QueryStateRequest {
        store_name: store.into(),
        query: r#"{"filter":{}}"#.into(),
        metadata: HashMap::new(),
    }
}

#[tokio::test]
async fn save_then_get_returns_the_bytes_and_etag() {
    let mut f = Fixture::new(None).await;
    let states = vec![item("k", b"\x00raw bytes"), item("j", br#"{"a":1}"#)];
    f.client.save_state(save("s", states)).await.unwrap();
    // Keys are stored with the app's prefix; values as the bytes sent.
    assert_eq!(f.store.value("app||k"), Some(b"\x00raw bytes".to_vec()));

    let got = f
        .client
        .get_state(get("s", "j"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (got.data.as_slice(), got.etag.as_str()),
        (br#"{"a":1}"#.as_slice(), "2")
    );

    let missing = f
        .client
        .get_state(get("s", "nope"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(missing, runtime::GetStateResponse::default());
}

#[tokio::test]
async fn bulk_get_answers_every_key() {
    let mut f = Fixture::new(None).await;
    f.store.put("app||a", b"1");
    let request = runtime::GetBulkStateRequest {
        store_name: "s".into(),
        keys: vec!["a".into(), "b".into()],
        parallelism: 10,
        metadata: HashMap::new(),
    };
    let items = f
        .client
        .get_bulk_state(request)
        .await
        .unwrap()
        .into_inner()
        .items;
    let got: Vec<(&str, &[u8], &str)> = items
        .iter()
        .map(|i| (i.key.as_str(), i.data.as_slice(), i.etag.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![("a", b"1".as_slice(), "1"), ("b", b"".as_slice(), "")]
    );
}

#[tokio::test]
async fn deletes_honour_etags_and_skip_missing_keys() {
    let mut f = Fixture::new(None).await;
    let etag = f.store.put("app||a", b"1");
    f.store.put("app||b", b"2");
    f.store.put("app||c", b"3");
    let delete = runtime::DeleteStateRequest {
        store_name: "s".into(),
        key: "a".into(),
        etag: Some(Etag { value: etag }),
        options: Some(StateOptions {
            concurrency: StateConcurrency::ConcurrencyFirstWrite.into(),
            consistency: 0,
        }),
        metadata: HashMap::new(),
    };
    f.client.delete_state(delete).await.unwrap();
    let bulk = runtime::DeleteBulkStateRequest {
        store_name: "s".into(),
        states: vec![item("b", b""), item("never-saved", b"")],
    };
    f.client.delete_bulk_state(bulk).await.unwrap();
    assert_eq!(f.store.keys(), vec!["app||c".to_owned()]);
}

#[tokio::test]
async fn transactions_apply_upserts_and_deletes() {
    let mut f = Fixture::new(None).await;
    f.store.put("app||old", b"x");
    let request = transaction(
        "s",
        &[("upsert", item("new", b"v")), ("delete", item("old", b""))],
    );
    f.client.execute_state_transaction(request).await.unwrap();
    assert_eq!(f.store.keys(), vec!["app||new".to_owned()]);
}

#[tokio::test]
async fn query_returns_this_apps_keys_unprefixed() {
    let mut f = Fixture::new(None).await;
    f.store.put("app||q", b"1");
    f.store.put("other||q", b"2");
    let answer = f
        .client
        .query_state_alpha1(query("s"))
        .await
        .unwrap()
        .into_inner();
    let keys: Vec<&str> = answer.results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, vec!["q"]);
    assert_eq!(answer.results[0].data, b"1");
}

#[tokio::test]
async fn metadata_lists_components_and_shares_extended_with_http() {
    let mut f = Fixture::new(None).await;
    let set = runtime::SetMetadataRequest {
        key: "team".into(),
        value: "blue".into(),
    };
    f.client.set_metadata(set).await.unwrap();
    let metadata = f
        .client
        .get_metadata(runtime::GetMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(metadata.id, APP);
    assert_eq!(metadata.runtime_version, crate::api::RUNTIME_VERSION);
    let s = metadata
        .registered_components
        .iter()
        .find(|c| c.name == "s")
        .unwrap();
    assert_eq!(
        (s.r#type.as_str(), s.version.as_str()),
        ("state.fake", "v1")
    );
    assert_eq!(
        s.capabilities,
        ["ETAG", "TRANSACTIONAL", "TTL", "QUERY_API"]
    );
    assert_eq!(metadata.registered_components.len(), 4);
    assert_eq!(metadata.extended_metadata["team"], "blue");
    assert!(
        metadata
            .extended_metadata
            .contains_key("daprRuntimeVersion")
    );
    // The HTTP API reports what was set over gRPC.
    assert_eq!(f.ctx.extended_metadata()["team"], "blue");
}

#[tokio::test]
async fn shutdown_fires_the_sidecars_shutdown() {
    let mut f = Fixture::new(None).await;
    let notified = f.ctx.shutdown.clone();
    f.client
        .shutdown(runtime::ShutdownRequest {})
        .await
        .unwrap();
    // A permit is left behind, so waiting only now still returns.
    notified.notified().await;
}

/// One call of the error table.
enum Call {
    Get(runtime::GetStateRequest),
    Save(runtime::SaveStateRequest),
    Delete(runtime::DeleteStateRequest),
    DeleteBulk(runtime::DeleteBulkStateRequest),
    BulkGet(runtime::GetBulkStateRequest),
    Transact(runtime::ExecuteStateTransactionRequest),
    Query(runtime::QueryStateRequest),
}

impl Call {
    async fn send(self, client: &mut DaprClient<Channel>) -> Result<(), Status> {
        match self {
            Call::Get(r) => client.get_state(r).await.map(drop),
            Call::Save(r) => client.save_state(r).await.map(drop),
            Call::Delete(r) => client.delete_state(r).await.map(drop),
            Call::DeleteBulk(r) => client.delete_bulk_state(r).await.map(drop),
            Call::BulkGet(r) => client.get_bulk_state(r).await.map(drop),
            Call::Transact(r) => client.execute_state_transaction(r).await.map(drop),
            Call::Query(r) => client.query_state_alpha1(r).await.map(drop),
        }
    }
}

/// The code, the `ErrorInfo` (reason, domain) and the message of a failed call.
fn explain(status: &Status) -> (Code, String, String, String) {
    let (reason, domain) = status
        .get_details_error_info()
        .map(|info| (info.reason, info.domain))
        .unwrap_or_default();
    (status.code(), reason, domain, status.message().to_owned())
}

#[tokio::test]
async fn errors_carry_dapr_codes_and_error_info() {
    let mut f = Fixture::new(None).await;
    let etag = f.store.put("app||k", b"1");
    let mismatch = if etag == "99" { "98" } else { "99" };
    let ttl = |value: &str| {
        let mut item = item("k", b"1");
        item.metadata.insert("ttlInSeconds".into(), value.into());
        item
    };
    let delete = |store: &str, key: &str, etag: Option<&str>| runtime::DeleteStateRequest {
        store_name: store.into(),
        key: key.into(),
        etag: etag.map(|value| Etag {
            value: value.into(),
        }),
        ..Default::default()
    };
    let bulk_get = |store: &str| runtime::GetBulkStateRequest {
        store_name: store.into(),
        keys: vec!["k".into()],
        ..Default::default()
    };
    use Code as C;
    #[rustfmt::skip]
    let cases: Vec<(Call, Code, &str, &str)> = vec![
        // Unknown stores, and a store that failed to load: Dapr's message.
        (Call::Get(get("nope", "k")), C::InvalidArgument, "DAPR_STATE_NOT_FOUND", "state store nope is not found"),
        (Call::Save(save("broken", vec![item("k", b"1")])), C::InvalidArgument, "DAPR_STATE_NOT_FOUND", "state store broken is not found"),
        (Call::Query(query("nope")), C::InvalidArgument, "DAPR_STATE_NOT_FOUND", "is not found"),
        // Keys Dapr refuses.
        (Call::Get(get("s", "")), C::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "required"),
        (Call::Save(save("s", vec![item("a||b", b"1")])), C::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "can't contain"),
        (Call::Delete(delete("s", "a||b", None)), C::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "can't contain"),
        (Call::BulkGet(runtime::GetBulkStateRequest { store_name: "s".into(), keys: vec!["a||b".into()], ..Default::default() }), C::InvalidArgument, "DAPR_STATE_ILLEGAL_KEY", "can't contain"),
        // ETags: a mismatch is ABORTED.
        (Call::Save(save("s", vec![with_etag(item("k", b"2"), mismatch)])), C::Aborted, "ERR_STATE_SAVE", "etag mismatch"),
        (Call::Delete(delete("s", "k", Some(mismatch))), C::Aborted, "ERR_STATE_DELETE", "etag mismatch"),
        (Call::Delete(delete("s", "never-saved", Some("1"))), C::Aborted, "ERR_STATE_DELETE", "etag mismatch"),
        (Call::DeleteBulk(runtime::DeleteBulkStateRequest { store_name: "s".into(), states: vec![with_etag(item("k", b""), mismatch)] }), C::Aborted, "ERR_STATE_DELETE", "etag mismatch"),
        (Call::Transact(transaction("s", &[("delete", with_etag(item("k", b""), mismatch))])), C::Aborted, "ERR_STATE_TRANSACTION", "etag mismatch"),
        // Options the store cannot honour.
        (Call::Save(save("plain", vec![with_etag(item("k", b"1"), "1")])), C::InvalidArgument, "ERR_STATE_SAVE", "does not support ETags"),
        (Call::Save(save("s", vec![ttl("-5")])), C::InvalidArgument, "ERR_STATE_SAVE", "ttlInSeconds"),
        (Call::Save(save("s", vec![ttl("soon")])), C::InvalidArgument, "ERR_STATE_SAVE", "not an integer"),
        // Features the store lacks.
        (Call::Transact(transaction("plain", &[("upsert", item("k", b"1"))])), C::Unimplemented, "DAPR_STATE_TRANSACTIONS_NOT_SUPPORTED", "doesn't support transactions"),
        (Call::Query(query("plain")), C::Internal, "DAPR_STATE_QUERYING_NOT_SUPPORTED", "does not support querying"),
        (Call::Transact(transaction("s", &[("merge", item("k", b"1"))])), C::InvalidArgument, "ERR_NOT_SUPPORTED_STATE_OPERATION", "operation type merge not supported"),
        // The backend is down.
        (Call::Get(get("down", "k")), C::Unavailable, "ERR_STATE_GET", "connection refused"),
        (Call::BulkGet(bulk_get("down")), C::Unavailable, "ERR_STATE_BULK_GET", "connection refused"),
        (Call::Query(query("down")), C::Unavailable, "DAPR_STATE_QUERY_FAILED", "connection refused"),
    ];
    for (call, code, reason, message) in cases {
        let status = call
            .send(&mut f.client)
            .await
            .expect_err("the call must fail");
        let (got_code, got_reason, domain, got_message) = explain(&status);
        assert_eq!(
            (got_code, got_reason.as_str(), domain.as_str()),
            (code, reason, "dapr.io"),
            "{got_message}"
        );
        assert!(
            got_message.contains(message),
            "{got_message:?} lacks {message:?}"
        );
    }
    // Nothing was written by the failed calls.
    assert_eq!(f.store.keys(), vec!["app||k".to_owned()]);
}

#[tokio::test]
async fn no_state_store_at_all_is_failed_precondition() {
    let mut f = Fixture::without_stores().await;
    let status = f
        .client
        .get_state(get("statestore", "k"))
        .await
        .unwrap_err();
    let (code, reason, _, message) = explain(&status);
    assert_eq!(
        (code, reason.as_str()),
        (Code::FailedPrecondition, "DAPR_STATE_NOT_CONFIGURED")
    );
    assert_eq!(message, "state store statestore is not configured");
}

#[tokio::test]
async fn the_api_token_is_required_when_set() {
    let f = Fixture::new(Some("s3cret")).await;
    let cases: [(Option<&str>, Option<&str>); 3] = [
        (None, Some("authentication error: missing api token")),
        (
            Some("wrong"),
            Some("authentication error: api token mismatch"),
        ),
        (Some("s3cret"), None),
    ];
    for (token, refusal) in cases {
        let mut request = tonic::Request::new(runtime::GetMetadataRequest {});
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert(crate::api::http::API_TOKEN_HEADER, token.parse().unwrap());
        }
        let answer = f.client.clone().get_metadata(request).await;
        match (answer, refusal) {
            (Ok(_), None) => {}
            (Err(status), Some(message)) => {
                assert_eq!(
                    (status.code(), status.message()),
                    (Code::Unauthenticated, message)
                );
            }
            (answer, _) => panic!("token {token:?}: unexpected {answer:?}"),
        }
    }
}

#[tokio::test]
async fn rpcs_outrig_lacks_are_unimplemented() {
    let f = Fixture::new(None).await;
    let mut grpc = tonic::client::Grpc::new(f.channel.clone());
    for path in [
        "/dapr.proto.runtime.v1.Dapr/InvokeBinding",
        "/dapr.proto.runtime.v1.Dapr/InvokeService",
        "/some.other.Service/Call",
    ] {
        grpc.ready().await.unwrap();
        let codec = tonic_prost::ProstCodec::<(), ()>::default();
        let status = grpc
            .unary(tonic::Request::new(()), path.parse().unwrap(), codec)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unimplemented, "{path}");
    }
}
