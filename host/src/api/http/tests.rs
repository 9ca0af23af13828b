//! The HTTP API driven in-process: every route, every error mapping, with
//! the fake in-memory store behind the real state block.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::blocks::ComponentError;
use crate::blocks::pubsub::delivery::DeliveryStatus;
use crate::test_util::{FakeStore, catalog};
use axum::body::Body as AxumBody;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

/// The publish API (`/v1.0/publish/...`), with the recording fake broker.
mod pubsub;

/// The app id every test runs as.
const APP: &str = "app";

struct Fixture {
    store: Arc<FakeStore>,
    plain: Arc<FakeStore>,
    ctx: Arc<ApiContext>,
}

impl Fixture {
    /// Store `s` has every feature, `plain` none; `broken` failed to load.
    fn new(token: Option<&str>) -> Self {
        Fixture::with_delivery(token, Default::default())
    }

    /// As [`Fixture::new`], with pub/sub delivery reporting to `delivery`.
    fn with_delivery(token: Option<&str>, delivery: Arc<DeliveryStatus>) -> Self {
        let store = FakeStore::full();
        let plain = FakeStore::new(&[]);
        let catalog = catalog(
            &[("s", store.clone()), ("plain", plain.clone())],
            &[("broken", "components/broken.yaml: spec.type: missing")],
        );
        let ctx = Arc::new(ApiContext {
            app_id: APP.into(),
            api_token: token.map(str::to_owned),
            catalog,
            publish_signals: Default::default(),
            delivery,
            shutdown: Arc::new(tokio::sync::Notify::new()),
            extended: Default::default(),
        });
        Fixture { store, plain, ctx }
    }

    fn router(&self) -> Router {
        router(self.ctx.clone())
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn error_code(&self) -> String {
        self.json()["errorCode"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn send(
    router: Router,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = router
        .oneshot(request.body(AxumBody::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

async fn call(fixture: &Fixture, method: Method, uri: &str, body: &str) -> Answer {
    send(fixture.router(), method, uri, &[], body).await
}

#[tokio::test]
async fn save_then_get_returns_the_json_text_and_etag() {
    let f = Fixture::new(None);
    let body = r#"[{"key":"k","value":"v"},{"key":"o","value":{"a": 1}}]"#;
    let saved = call(&f, Method::POST, "/v1.0/state/s", body).await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.text());
    // A JSON string is stored with its quotes, an object as written.
    assert_eq!(f.store.value("app||k"), Some(br#""v""#.to_vec()));
    assert_eq!(f.store.value("app||o"), Some(br#"{"a": 1}"#.to_vec()));

    let got = call(&f, Method::GET, "/v1.0/state/s/k", "").await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, br#""v""#);
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["etag"], "1");

    let missing = call(&f, Method::GET, "/v1.0/state/s/nope", "").await;
    assert_eq!(missing.status, StatusCode::NO_CONTENT);
    assert!(missing.body.is_empty());
}

#[tokio::test]
async fn put_saves_too_and_url_metadata_reaches_the_store() {
    let f = Fixture::new(None);
    let body = r#"[{"key":"k","value":1,"metadata":{"ttlInSeconds":"5"}}]"#;
    let saved = call(
        &f,
        Method::PUT,
        "/v1.0/state/s?metadata.ttlInSeconds=60",
        body,
    )
    .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.text());
    // The URL's metadata wins over the item's, as in Dapr.
    assert_eq!(f.store.last_ttl(), Some(Some(60)));

    let no_ttl = call(
        &f,
        Method::POST,
        "/v1.0/state/s?metadata.ttlInSeconds=-1",
        body,
    )
    .await;
    assert_eq!(no_ttl.status, StatusCode::NO_CONTENT);
    assert_eq!(f.store.last_ttl(), Some(None));
}

#[tokio::test]
async fn percent_encoded_keys_are_decoded() {
    let f = Fixture::new(None);
    f.store.put("app||a/b c", b"1");
    let got = call(&f, Method::GET, "/v1.0/state/s/a%2Fb%20c", "").await;
    assert_eq!(
        (got.status, got.body.as_slice()),
        (StatusCode::OK, b"1".as_slice())
    );
}

#[tokio::test]
async fn errors_carry_dapr_codes_and_statuses() {
    use StatusCode as S;
    let long_key = "k".repeat(64 * 1024 + 1);
    let long_save = r#"[{"key":"LONG","value":1}]"#.replace("LONG", &long_key);
    let post = Method::POST;
    #[rustfmt::skip]
    let cases: Vec<(Method, &str, &str, StatusCode, &str)> = vec![
        // Unknown store, and a store that failed to load.
        (Method::GET, "/v1.0/state/nope/k", "", S::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND"),
        (post.clone(), "/v1.0/state/broken", "[]", S::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND"),
        // Malformed bodies.
        (post.clone(), "/v1.0/state/s", "{not json", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s", r#"{"key":"k"}"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s/bulk", "[1]", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s/transaction", "nope", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0-alpha1/state/s/query", "{", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        // Keys Dapr refuses, and absurd ones.
        (post.clone(), "/v1.0/state/s", r#"[{"value":1}]"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s", r#"[{"key":"a||b","value":1}]"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (Method::GET, "/v1.0/state/s/a||b", "", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (Method::DELETE, "/v1.0/state/s/a%7C%7Cb", "", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s", &long_save, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s/bulk", r#"{"keys":["a||b"]}"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        // Options.
        (post.clone(), "/v1.0/state/s?metadata.ttlInSeconds=-5", r#"[{"key":"k","value":1}]"#, S::BAD_REQUEST, "ERR_STATE_SAVE"),
        (post.clone(), "/v1.0/state/s", r#"[{"key":"k","value":1,"options":{"concurrency":"sometimes"}}]"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (Method::GET, "/v1.0/state/s/k?consistency=psychic", "", S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        // Features the store lacks.
        (post.clone(), "/v1.0/state/plain/transaction", r#"{"operations":[]}"#, S::INTERNAL_SERVER_ERROR, "ERR_STATE_STORE_NOT_SUPPORTED"),
        (post.clone(), "/v1.0-alpha1/state/plain/query", "{}", S::INTERNAL_SERVER_ERROR, "ERR_STATE_STORE_NOT_SUPPORTED"),
        (post.clone(), "/v1.0/state/plain", r#"[{"key":"k","value":1,"etag":"1"}]"#, S::BAD_REQUEST, "ERR_STATE_SAVE"),
        // Transactions.
        (post.clone(), "/v1.0/state/s/transaction", r#"{"operations":[{"operation":"merge","request":{"key":"k"}}]}"#, S::BAD_REQUEST, "ERR_NOT_SUPPORTED_STATE_OPERATION"),
        (post.clone(), "/v1.0/state/s/transaction", r#"{"operations":[{"operation":"upsert","request":{"key":"a||b"}}]}"#, S::BAD_REQUEST, "ERR_MALFORMED_REQUEST"),
        (post.clone(), "/v1.0/state/s/transaction", r#"{"operations":[{"operation":"delete","request":{"key":"k","etag":"99"}}]}"#, S::CONFLICT, "ERR_STATE_TRANSACTION"),
        // Unknown routes and methods.
        (Method::GET, "/v1.0/nothing-here", "", S::NOT_FOUND, "ERR_DIRECT_INVOKE"),
        (Method::PATCH, "/v1.0/state/s", "", S::NOT_FOUND, "ERR_DIRECT_INVOKE"),
        (Method::GET, "/v1.0/state/s/bulk", "", S::NOT_FOUND, "ERR_DIRECT_INVOKE"),
    ];
    let f = Fixture::new(None);
    for (method, uri, body, status, code) in cases {
        let short_uri: String = uri.chars().take(80).collect();
        let answer = call(&f, method.clone(), uri, body).await;
        assert_eq!(
            answer.status,
            status,
            "{method} {short_uri}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), code, "{method} {short_uri}");
        assert_eq!(answer.headers["content-type"], "application/json");
        let message = answer.json()["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(!message.is_empty(), "{method} {short_uri}");
    }
    assert!(f.plain.keys().is_empty());
}

#[tokio::test]
async fn messages_follow_dapr_wording() {
    let f = Fixture::new(None);
    let cases = [
        ("/v1.0/state/nope/k", "state store nope is not found"),
        (
            "/v1.0/state/s/a||b",
            "input key/keyPrefix 'a||b' can't contain '||'",
        ),
    ];
    for (uri, message) in cases {
        let answer = call(&f, Method::GET, uri, "").await;
        assert_eq!(answer.json()["message"], message, "{uri}");
    }
}

#[tokio::test]
async fn no_state_store_at_all_is_not_configured() {
    let ctx = Arc::new(ApiContext {
        app_id: APP.into(),
        api_token: None,
        catalog: catalog(&[], &[]),
        publish_signals: Default::default(),
        delivery: Default::default(),
        shutdown: Arc::new(tokio::sync::Notify::new()),
        extended: Default::default(),
    });
    let answer = send(router(ctx), Method::GET, "/v1.0/state/s/k", &[], "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.error_code(), "ERR_STATE_STORE_NOT_CONFIGURED");
}

#[tokio::test]
async fn first_write_and_etags_conflict_with_409() {
    use StatusCode as S;
    let f = Fixture::new(None);
    let etag = f.store.put("app||k", b"1");
    let save = |body: &'static str| (Method::POST, "/v1.0/state/s", None, body);
    let delete = |uri: &'static str, etag| (Method::DELETE, uri, Some(etag), "");
    #[rustfmt::skip]
    let cases = [
        (save(r#"[{"key":"k","value":2,"options":{"concurrency":"first-write"}}]"#), S::CONFLICT, "ERR_STATE_SAVE"),
        (save(r#"[{"key":"k","value":2,"etag":"41"}]"#), S::CONFLICT, "ERR_STATE_SAVE"),
        (save(r#"[{"key":"k","value":2,"etag":"not-a-version"}]"#), S::BAD_REQUEST, "ERR_STATE_SAVE"),
        (delete("/v1.0/state/s/k", "41"), S::CONFLICT, "ERR_STATE_DELETE"),
        (delete("/v1.0/state/s/k?concurrency=first-write", "bogus"), S::BAD_REQUEST, "ERR_STATE_DELETE"),
    ];
    for ((method, uri, if_match, body), status, code) in cases {
        let headers: Vec<(&str, &str)> = if_match.map(|e| ("if-match", e)).into_iter().collect();
        let answer = send(f.router(), method.clone(), uri, &headers, body).await;
        assert_eq!(
            answer.status,
            status,
            "{method} {uri} {body}: {}",
            answer.text()
        );
        assert_eq!(answer.error_code(), code, "{method} {uri} {body}");
    }
    assert_eq!(f.store.value("app||k"), Some(b"1".to_vec()));

    // With the current ETag, both succeed.
    let body = r#"[{"key":"k","value":2,"etag":"ETAG","options":{"concurrency":"first-write"}}]"#;
    let saved = call(
        &f,
        Method::POST,
        "/v1.0/state/s",
        &body.replace("ETAG", &etag),
    )
    .await;
    assert_eq!(saved.status, StatusCode::NO_CONTENT, "{}", saved.text());
    let got = call(&f, Method::GET, "/v1.0/state/s/k", "").await;
    let etag = got.headers["etag"].to_str().unwrap().to_owned();
    let if_match = [("if-match", etag.as_str())];
    let deleted = send(f.router(), Method::DELETE, "/v1.0/state/s/k", &if_match, "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert!(f.store.keys().is_empty());
}

#[tokio::test]
async fn delete_without_etag_is_idempotent() {
    let f = Fixture::new(None);
    f.store.put("app||k", b"1");
    for _ in 0..2 {
        let answer = call(&f, Method::DELETE, "/v1.0/state/s/k", "").await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn bulk_get_embeds_json_and_reports_per_key_errors() {
    let f = Fixture::new(None);
    f.store.put("app||json", br#"{"a":1}"#);
    f.store.put("app||text", b"plain words");
    f.store.put("app||binary", &[0xff, 0x00]);
    let body = r#"{"keys":["json","text","binary","missing","bad!"],"parallelism":2}"#;
    let answer = call(&f, Method::POST, "/v1.0/state/s/bulk", body).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!([
            {"key": "json", "data": {"a": 1}, "etag": "1"},
            {"key": "text", "data": "plain words", "etag": "2"},
            {"key": "binary", "data": "/wA=", "etag": "3"},
            {"key": "missing"},
            {"key": "bad!", "error": "unreadable"},
        ])
    );
    let empty = call(&f, Method::PUT, "/v1.0/state/s/bulk", r#"{"keys":[]}"#).await;
    assert_eq!((empty.status, empty.json()), (StatusCode::OK, json!([])));
}

#[tokio::test]
async fn transactions_apply_all_or_nothing() {
    let f = Fixture::new(None);
    f.store.put("app||old", b"1");
    let body = r#"{"operations":[
        {"operation":"upsert","request":{"key":"new","value":{"n":1}}},
        {"operation":"delete","request":{"key":"old"}}
    ],"metadata":{"partitionKey":"p"}}"#;
    let answer = call(&f, Method::POST, "/v1.0/state/s/transaction", body).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert_eq!(f.store.keys(), vec!["app||new"]);
    assert_eq!(f.store.value("app||new"), Some(br#"{"n":1}"#.to_vec()));

    let failing = r#"{"operations":[
        {"operation":"upsert","request":{"key":"other","value":2}},
        {"operation":"upsert","request":{"key":"new","value":3,"etag":"999"}}
    ]}"#;
    let answer = call(&f, Method::PUT, "/v1.0/state/s/transaction", failing).await;
    assert_eq!(answer.status, StatusCode::CONFLICT);
    assert_eq!(f.store.keys(), vec!["app||new"]);
}

#[tokio::test]
async fn query_returns_results_with_app_keys() {
    const QUERY: &str = "/v1.0-alpha1/state/s/query";
    const FILTER: &str = r#"{"filter":{}}"#;
    let f = Fixture::new(None);
    let empty = call(&f, Method::POST, QUERY, FILTER).await;
    assert_eq!(empty.status, StatusCode::NO_CONTENT);

    f.store.put("app||k", br#"{"city":"Oslo"}"#);
    f.store.put("other||k", b"1");
    let answer = call(&f, Method::POST, QUERY, FILTER).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"results": [{"key": "k", "data": {"city": "Oslo"}, "etag": "1"}]})
    );
}

#[tokio::test]
async fn component_failures_are_500s_naming_the_component() {
    let cases = [
        (
            ComponentError::Timeout {
                component: "redis".into(),
                timeout_ms: 250,
            },
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ComponentError::Trapped {
                component: "redis".into(),
                reason: "wasm trap: unreachable".into(),
            },
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        (
            ComponentError::Overloaded {
                component: "redis".into(),
                reason: "queue full".into(),
            },
            StatusCode::TOO_MANY_REQUESTS,
        ),
        (
            ComponentError::Unavailable("connection refused".into()),
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    let ops: [(Method, &str, &str, &str); 6] = [
        (Method::GET, "/v1.0/state/s/k", "", "ERR_STATE_GET"),
        (
            Method::POST,
            "/v1.0/state/s",
            r#"[{"key":"k","value":1}]"#,
            "ERR_STATE_SAVE",
        ),
        (Method::DELETE, "/v1.0/state/s/k", "", "ERR_STATE_DELETE"),
        (
            Method::POST,
            "/v1.0/state/s/bulk",
            r#"{"keys":["k"]}"#,
            "ERR_STATE_BULK_GET",
        ),
        (
            Method::POST,
            "/v1.0/state/s/transaction",
            r#"{"operations":[{"operation":"delete","request":{"key":"k"}}]}"#,
            "ERR_STATE_TRANSACTION",
        ),
        (
            Method::POST,
            "/v1.0-alpha1/state/s/query",
            "{}",
            "ERR_STATE_QUERY",
        ),
    ];
    let f = Fixture::new(None);
    for (failure, status) in cases {
        let names_component = match failure {
            ComponentError::Unavailable(_) => "connection refused",
            _ => "component `redis`",
        };
        f.store.fail_with(Some(failure));
        for (method, uri, body, code) in &ops {
            let answer = call(&f, method.clone(), uri, body).await;
            assert_eq!(answer.status, status, "{method} {uri}: {}", answer.text());
            assert_eq!(answer.error_code(), *code, "{method} {uri}");
            let message = answer.json()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            assert!(
                message.contains(names_component),
                "{method} {uri}: {message}"
            );
        }
    }
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let f = Fixture::new(None);
    let small = router_with_body_limit(f.ctx.clone(), 64);
    let body = format!(r#"[{{"key":"k","value":"{}"}}]"#, "x".repeat(100));
    let answer = send(small, Method::POST, "/v1.0/state/s", &[], &body).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer.error_code(), "ERR_BODY_READ");
    assert!(answer.text().contains("64 bytes"), "{}", answer.text());

    let big = "x".repeat(DEFAULT_MAX_BODY_BYTES + 1);
    let answer = call(&f, Method::POST, "/v1.0/state/s", &big).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn the_api_token_guards_everything_but_health() {
    let f = Fixture::new(Some("s3cret"));
    let cases: Vec<(Method, &str, Option<&str>, StatusCode)> = vec![
        (Method::GET, "/v1.0/healthz", None, StatusCode::NO_CONTENT),
        (
            Method::GET,
            "/v1.0/healthz/outbound",
            None,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::GET,
            "/v1.0/metadata",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/v1.0/metadata",
            Some("wrong"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/v1.0/metadata",
            Some("s3cret"),
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/v1.0/state/s/k",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/v1.0/state/s/k",
            Some("s3cret"),
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            "/v1.0/shutdown",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (Method::GET, "/v1.0/unknown", None, StatusCode::UNAUTHORIZED),
        (
            Method::POST,
            "/v1.0/healthz",
            None,
            StatusCode::UNAUTHORIZED,
        ),
    ];
    for (method, uri, token, status) in cases {
        let headers: Vec<(&str, &str)> = token.map(|t| ("dapr-api-token", t)).into_iter().collect();
        let answer = send(f.router(), method.clone(), uri, &headers, "").await;
        assert_eq!(answer.status, status, "{method} {uri} {token:?}");
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(answer.error_code(), "ERR_UNAUTHENTICATED");
            assert!(
                answer.text().contains("invalid api token"),
                "{}",
                answer.text()
            );
        }
    }
    let open = Fixture::new(None);
    let answer = call(&open, Method::GET, "/v1.0/metadata", "").await;
    assert_eq!(answer.status, StatusCode::OK);
}

#[tokio::test]
async fn health_checks_the_app_id_when_asked() {
    let f = Fixture::new(None);
    let cases = [
        ("/v1.0/healthz", StatusCode::NO_CONTENT),
        ("/v1.0/healthz?appid=app", StatusCode::NO_CONTENT),
        (
            "/v1.0/healthz?appid=other",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    ];
    for (uri, status) in cases {
        assert_eq!(call(&f, Method::GET, uri, "").await.status, status, "{uri}");
    }
}

#[tokio::test]
async fn health_waits_for_delivery_to_the_app_but_the_outbound_probe_does_not() {
    let delivery = Arc::new(DeliveryStatus::new(true));
    let f = Fixture::with_delivery(None, Arc::clone(&delivery));
    let answer = call(&f, Method::GET, "/v1.0/healthz", "").await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.json()["errorCode"], "ERR_HEALTH_NOT_READY");
    let outbound = call(&f, Method::GET, "/v1.0/healthz/outbound", "").await;
    assert_eq!(outbound.status, StatusCode::NO_CONTENT);
    delivery.set_running(Vec::new());
    let answer = call(&f, Method::GET, "/v1.0/healthz", "").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn metadata_lists_components_with_outrig_fields() {
    let f = Fixture::new(None);
    // One router: the extended attributes live in its state.
    let router = f.router();
    let put = send(
        router.clone(),
        Method::PUT,
        "/v1.0/metadata/team",
        &[],
        "payments",
    )
    .await;
    assert_eq!(put.status, StatusCode::NO_CONTENT);

    let answer = send(router, Method::GET, "/v1.0/metadata", &[], "").await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(body["id"], APP);
    assert_eq!(body["runtimeVersion"], version);
    for empty in [
        "enabledFeatures",
        "actors",
        "subscriptions",
        "httpEndpoints",
    ] {
        assert_eq!(body[empty], json!([]), "{empty}");
    }
    assert_eq!(
        body["extended"],
        json!({"team": "payments", "daprRuntimeVersion": version})
    );
    assert_eq!(
        body["components"],
        json!([
            {"name": "broken", "type": "state.redis", "version": "v1", "capabilities": [],
             "status": "failed", "error": "components/broken.yaml: spec.type: missing",
             "source": "components/broken.yaml"},
            {"name": "plain", "type": "state.fake", "version": "v1", "capabilities": [],
             "status": "loaded", "sha256": "ab".repeat(32), "source": "components/plain.yaml"},
            {"name": "s", "type": "state.fake", "version": "v1",
             "capabilities": ["ETAG", "TRANSACTIONAL", "TTL", "QUERY_API"],
             "status": "loaded", "sha256": "ab".repeat(32), "source": "components/s.yaml"},
        ])
    );
}

#[tokio::test]
async fn shutdown_notifies_current_and_later_waiters() {
    let f = Fixture::new(None);
    let early = {
        let notify = f.ctx.shutdown.clone();
        tokio::spawn(async move { notify.notified().await })
    };
    tokio::task::yield_now().await;
    let answer = call(&f, Method::POST, "/v1.0/shutdown", "").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let within = std::time::Duration::from_secs(5);
    tokio::time::timeout(within, early).await.unwrap().unwrap();
    tokio::time::timeout(within, f.ctx.shutdown.notified())
        .await
        .unwrap();
}

#[test]
fn every_kind_maps_to_a_dapr_status() {
    use crate::blocks::state::ErrorKind;
    let cases = [
        (ErrorKind::InvalidArgument, 400),
        (ErrorKind::NotFound, 404),
        (ErrorKind::Conflict, 409),
        (ErrorKind::Unauthenticated, 401),
        (ErrorKind::ResourceExhausted, 429),
        (ErrorKind::FailedPrecondition, 500),
        (ErrorKind::Unimplemented, 500),
        (ErrorKind::Unavailable, 500),
        (ErrorKind::DeadlineExceeded, 500),
        (ErrorKind::Internal, 500),
    ];
    for (kind, status) in cases {
        assert_eq!(error::status_for(kind).as_u16(), status, "{kind:?}");
    }
}
