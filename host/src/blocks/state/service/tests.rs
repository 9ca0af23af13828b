//! Unit tests of the state block over the in-memory fake store.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::blocks::state::error::ErrorKind;
use crate::test_util::{FakeStore, catalog};

fn block(store: &Arc<FakeStore>) -> StateBlock {
    StateBlock::new("app", catalog(&[("s", store.clone())], &[]))
}

fn set(key: &str, value: &str) -> SetRequest {
    SetRequest {
        key: key.into(),
        value: value.as_bytes().to_vec(),
        ..SetRequest::default()
    }
}

fn with_metadata(mut request: SetRequest, key: &str, value: &str) -> SetRequest {
    request.metadata.insert(key.into(), value.into());
    request
}

#[tokio::test]
async fn keys_are_prefixed_on_the_way_in_and_stripped_on_the_way_out() {
    let store = FakeStore::full();
    let block = block(&store);
    block.save("s", vec![set("k", "1")]).await.unwrap();
    assert_eq!(store.keys(), vec!["app||k"]);

    let item = block.get(
        "s",
        GetRequest {
            key: "k".into(),
            ..Default::default()
        },
    );
    assert_eq!(item.await.unwrap().map(|i| i.value), Some(b"1".to_vec()));

    let bulk = BulkGetRequest {
        keys: vec!["k".into(), "missing".into()],
        ..Default::default()
    };
    let items = block.bulk_get("s", bulk).await.unwrap();
    let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, vec!["k", "missing"]);
    assert!(items[1].item.is_none());

    let found = block
        .query("s", "{}".into(), Metadata::new())
        .await
        .unwrap();
    assert_eq!(found.results[0].key, "k");
    assert_eq!(store.seen_keys().last().map(String::as_str), Some("app||"));
}

#[tokio::test]
async fn invalid_keys_are_refused_before_the_store_is_called() {
    let long = "x".repeat(MAX_KEY_BYTES + 1);
    let cases = [
        ("", r#""key" is a required field"#),
        ("a||b", "input key/keyPrefix 'a||b' can't contain '||'"),
        (
            long.as_str(),
            "key is 65537 bytes long; keys may be at most 65536 bytes",
        ),
    ];
    let store = FakeStore::full();
    let block = block(&store);
    for (key, message) in cases {
        let get = GetRequest {
            key: key.into(),
            ..Default::default()
        };
        let errors = [
            block.get("s", get).await.err(),
            block.save("s", vec![set(key, "v")]).await.err(),
            block
                .delete(
                    "s",
                    DeleteRequest {
                        key: key.into(),
                        ..Default::default()
                    },
                )
                .await
                .err(),
            block
                .bulk_get(
                    "s",
                    BulkGetRequest {
                        keys: vec![key.into()],
                        ..Default::default()
                    },
                )
                .await
                .err(),
            block
                .transact("s", vec![Operation::Set(set(key, "v"))], Metadata::new())
                .await
                .err(),
        ];
        for error in errors {
            let error = error.expect("refused");
            assert_eq!(error.code(), "ERR_MALFORMED_REQUEST");
            assert_eq!(error.kind(), ErrorKind::InvalidArgument);
            assert_eq!(error.to_string(), message);
        }
    }
    assert!(store.seen_keys().is_empty(), "{:?}", store.seen_keys());
}

#[tokio::test]
async fn ttl_metadata_is_parsed() {
    let cases: [(&str, Result<Option<u32>, &str>); 6] = [
        ("60", Ok(Some(60))),
        ("0", Ok(Some(0))),
        ("-1", Ok(None)),
        ("-2", Err("must be -1 or between 0 and 2147483647, got -2")),
        ("2147483648", Err("must be -1 or between 0 and 2147483647")),
        ("soon", Err("`soon` is not an integer")),
    ];
    for (text, expected) in cases {
        let store = FakeStore::full();
        let result = block(&store)
            .save(
                "s",
                vec![with_metadata(set("k", "v"), "ttlInSeconds", text)],
            )
            .await;
        match expected {
            Ok(ttl) => {
                assert!(result.is_ok(), "{text}: {result:?}");
                assert_eq!(store.last_ttl(), Some(ttl), "{text}");
            }
            Err(fragment) => {
                let error = result.expect_err(text);
                assert_eq!(error.code(), "ERR_STATE_SAVE", "{text}");
                assert_eq!(error.kind(), ErrorKind::InvalidArgument, "{text}");
                assert!(error.to_string().contains(fragment), "{text}: {error}");
                assert!(store.keys().is_empty());
            }
        }
    }
}

#[tokio::test]
async fn unknown_store_and_no_store_at_all_are_told_apart() {
    let none = StateBlock::new("app", catalog(&[], &[("broken", "did not load")]));
    let error = none.save("s", vec![]).await.unwrap_err();
    assert_eq!(error.code(), "ERR_STATE_STORE_NOT_CONFIGURED");

    let store = FakeStore::full();
    let error = block(&store).save("other", vec![]).await.unwrap_err();
    assert_eq!(error.code(), "ERR_STATE_STORE_NOT_FOUND");
    assert_eq!(error.to_string(), "state store other is not found");
}

#[tokio::test]
async fn features_are_checked_before_the_call() {
    let plain = FakeStore::new(&[]);
    let block = block(&plain);
    let error = block
        .transact("s", vec![], Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ERR_STATE_STORE_NOT_SUPPORTED");
    let error = block
        .query("s", "{}".into(), Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(error.code(), "ERR_STATE_STORE_NOT_SUPPORTED");

    let mut with_etag = set("k", "v");
    with_etag.etag = Some("1".into());
    let mut first_write = set("k", "v");
    first_write.concurrency = Concurrency::FirstWrite;
    for request in [with_etag, first_write] {
        let error = block.save("s", vec![request]).await.unwrap_err();
        assert_eq!(error.code(), "ERR_STATE_SAVE");
        assert_eq!(error.kind(), ErrorKind::InvalidArgument);
        assert!(error.to_string().contains("no ETAG feature"), "{error}");
    }
    let delete = DeleteRequest {
        key: "k".into(),
        etag: Some("1".into()),
        ..Default::default()
    };
    let error = block.delete("s", delete).await.unwrap_err();
    assert_eq!(error.code(), "ERR_STATE_DELETE");
    assert!(plain.seen_keys().is_empty());
}

#[tokio::test]
async fn etag_conflicts_map_to_409_kinds_per_operation() {
    let store = FakeStore::full();
    let block = block(&store);
    block.save("s", vec![set("k", "v1")]).await.unwrap();

    let mut stale = set("k", "v2");
    stale.etag = Some("999".into());
    let error = block.save("s", vec![stale]).await.unwrap_err();
    assert_eq!(
        (error.code(), error.kind()),
        ("ERR_STATE_SAVE", ErrorKind::Conflict)
    );

    let mut first_write = set("k", "v2");
    first_write.concurrency = Concurrency::FirstWrite;
    let error = block.save("s", vec![first_write]).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);

    let delete = DeleteRequest {
        key: "k".into(),
        etag: Some("999".into()),
        ..Default::default()
    };
    let error = block.delete("s", delete).await.unwrap_err();
    assert_eq!(
        (error.code(), error.kind()),
        ("ERR_STATE_DELETE", ErrorKind::Conflict)
    );

    let mut bad = set("k", "v3");
    bad.etag = Some("not-a-number".into());
    let error = block
        .transact("s", vec![Operation::Set(bad)], Metadata::new())
        .await
        .unwrap_err();
    assert_eq!(
        (error.code(), error.kind()),
        ("ERR_STATE_TRANSACTION", ErrorKind::InvalidArgument)
    );
    assert_eq!(store.value("app||k"), Some(b"v1".to_vec()));
}

#[tokio::test]
async fn runtime_failures_name_the_component() {
    let store = FakeStore::full();
    let block = block(&store);
    let cases = [
        (
            ComponentError::Timeout {
                component: "redis".into(),
                timeout_ms: 100,
            },
            ErrorKind::DeadlineExceeded,
        ),
        (
            ComponentError::Trapped {
                component: "redis".into(),
                reason: "unreachable".into(),
            },
            ErrorKind::Internal,
        ),
        (
            ComponentError::Overloaded {
                component: "redis".into(),
                reason: "queue full".into(),
            },
            ErrorKind::ResourceExhausted,
        ),
    ];
    for (failure, kind) in cases {
        store.fail_with(Some(failure));
        let get = GetRequest {
            key: "k".into(),
            ..Default::default()
        };
        let error = block.get("s", get).await.unwrap_err();
        assert_eq!((error.code(), error.kind()), ("ERR_STATE_GET", kind));
        assert!(error.to_string().contains("component `redis`"), "{error}");
    }
}

#[tokio::test]
async fn deleting_a_missing_key_succeeds_unless_an_etag_was_given() {
    let store = FakeStore::full();
    store.fail_with(Some(ComponentError::NotFound));
    let block = block(&store);
    let plain = DeleteRequest {
        key: "k".into(),
        ..Default::default()
    };
    assert!(block.delete("s", plain).await.is_ok());
    let conditional = DeleteRequest {
        key: "k".into(),
        etag: Some("1".into()),
        ..Default::default()
    };
    let error = block.delete("s", conditional).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Conflict);
}

#[test]
fn operation_names_follow_dapr() {
    assert_eq!(OperationKind::parse("upsert"), Ok(OperationKind::Upsert));
    assert_eq!(OperationKind::parse("delete"), Ok(OperationKind::Delete));
    let error = OperationKind::parse("merge").unwrap_err();
    assert_eq!(error.code(), "ERR_NOT_SUPPORTED_STATE_OPERATION");
}
