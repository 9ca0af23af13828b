//! Requests a well-behaved app would never send, each answered with Dapr's
//! documented error (status and `errorCode`), after which the sidecar still
//! serves: malformed JSON, bad keys, unknown stores, wrong methods, and
//! missing or wrong API tokens.

mod common;

use anyhow::{Context, ensure};
use common::{AppId, Launch, Resources, Sidecar, state_key_path};
use reqwest::Method;
use serde_json::{Value, json};

/// A 1 MiB key.
fn huge_key() -> String {
    "k".repeat(1 << 20)
}

/// What a case sends.
enum Body {
    None,
    Raw(&'static str),
    Json(Value),
}

/// One bad request and the answer Dapr documents for it.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    body: Body,
    status: u16,
    /// The `errorCode`; `None` where Dapr answers without a JSON body.
    code: Option<&'static str>,
}

const MALFORMED: &str = "ERR_MALFORMED_REQUEST";
const NOT_FOUND: &str = "ERR_STATE_STORE_NOT_FOUND";
const NO_ROUTE: &str = "ERR_DIRECT_INVOKE";

fn case(
    name: &'static str,
    method: Method,
    path: &str,
    body: Body,
    status: u16,
    code: Option<&'static str>,
) -> Case {
    Case {
        name,
        method,
        path: path.to_string(),
        body,
        status,
        code,
    }
}

/// Every bad request, one per line.
#[rustfmt::skip]
fn cases() -> Vec<Case> {
    use Body::{Json, Raw};
    let save = "/v1.0/state/mem";
    let (bulk, tx, query) = ("/v1.0/state/mem/bulk", "/v1.0/state/mem/transaction", "/v1.0-alpha1/state/mem/query");
    let upsert = |key: &str| Json(json!({"operations": [{"operation": "upsert", "request": {"key": key, "value": 1}}]}));
    vec![
        // Malformed bodies.
        case("save: truncated JSON", Method::POST, save, Raw(r#"[{"key": "a", "value":"#), 400, Some(MALFORMED)),
        case("save: an object, not an array", Method::POST, save, Json(json!({"key": "a", "value": 1})), 400, Some(MALFORMED)),
        case("save: not JSON at all", Method::POST, save, Raw("key=a&value=1"), 400, Some(MALFORMED)),
        case("save: an item without a key", Method::POST, save, Json(json!([{"value": 1}])), 400, Some(MALFORMED)),
        case("bulk: truncated JSON", Method::POST, bulk, Raw(r#"{"keys": ["#), 400, Some(MALFORMED)),
        case("transaction: truncated JSON", Method::POST, tx, Raw(r#"{"operations": [{"#), 400, Some(MALFORMED)),
        case("transaction: unknown operation", Method::POST, tx,
            Json(json!({"operations": [{"operation": "merge", "request": {"key": "a", "value": 1}}]})),
            400, Some("ERR_NOT_SUPPORTED_STATE_OPERATION")),
        case("query: truncated JSON", Method::POST, query, Raw(r#"{"filter": "#), 400, Some(MALFORMED)),
        // `||` separates the app id from the key, so no key may contain it.
        case("save: key with ||", Method::POST, save, Json(json!([{"key": "a||b", "value": 1}])), 400, Some(MALFORMED)),
        case("get: key with ||", Method::GET, &state_key_path("mem", "a||b"), Body::None, 400, Some(MALFORMED)),
        case("delete: key with ||", Method::DELETE, &state_key_path("mem", "a||b"), Body::None, 400, Some(MALFORMED)),
        case("bulk: key with ||", Method::POST, bulk, Json(json!({"keys": ["ok", "a||b"]})), 400, Some(MALFORMED)),
        case("transaction: key with ||", Method::POST, tx, upsert("a||b"), 400, Some(MALFORMED)),
        case("save: a 1 MiB key", Method::POST, save, Json(json!([{"key": huge_key(), "value": 1}])), 400, Some(MALFORMED)),
        // A store that does not exist.
        case("get: unknown store", Method::GET, "/v1.0/state/nope/k", Body::None, 400, Some(NOT_FOUND)),
        case("save: unknown store", Method::POST, "/v1.0/state/nope", Json(json!([{"key": "k", "value": 1}])), 400, Some(NOT_FOUND)),
        case("delete: unknown store", Method::DELETE, "/v1.0/state/nope/k", Body::None, 400, Some(NOT_FOUND)),
        case("bulk: unknown store", Method::POST, "/v1.0/state/nope/bulk", Json(json!({"keys": ["k"]})), 400, Some(NOT_FOUND)),
        case("transaction: unknown store", Method::POST, "/v1.0/state/nope/transaction", upsert("k"), 400, Some(NOT_FOUND)),
        case("query: unknown store", Method::POST, "/v1.0-alpha1/state/nope/query", Json(json!({"filter": {}})), 400, Some(NOT_FOUND)),
        // Dapr hands a request no route takes (wrong path or wrong method) to
        // service invocation, which answers 404 when it names no app.
        case("GET on the save route", Method::GET, save, Body::None, 404, Some(NO_ROUTE)),
        case("PATCH on a key", Method::PATCH, "/v1.0/state/mem/k", Body::None, 404, Some(NO_ROUTE)),
        case("GET on shutdown", Method::GET, "/v1.0/shutdown", Body::None, 404, Some(NO_ROUTE)),
        case("an unknown path", Method::GET, "/v1.0/nothing-here", Body::None, 404, Some(NO_ROUTE)),
    ]
}

/// Requests with and without the API `token`, and the status each must get.
#[rustfmt::skip]
fn token_cases(token: &str) -> Vec<(Case, Option<&str>)> {
    let save = |key: &str| Body::Json(json!([{"key": key, "value": "v"}]));
    let right = Some(token);
    vec![
        (case("healthz without token", Method::GET, "/v1.0/healthz", Body::None, 204, None), None),
        (case("get without token", Method::GET, "/v1.0/state/mem/k", Body::None, 401, None), None),
        (case("get with a wrong token", Method::GET, "/v1.0/state/mem/k", Body::None, 401, None), Some("wrong")),
        (case("get with an empty token", Method::GET, "/v1.0/state/mem/k", Body::None, 401, None), Some("")),
        (case("save without token", Method::POST, "/v1.0/state/mem", save("k"), 401, None), None),
        (case("metadata without token", Method::GET, "/v1.0/metadata", Body::None, 401, None), None),
        (case("shutdown without token", Method::POST, "/v1.0/shutdown", Body::None, 401, None), None),
        (case("get with the token", Method::GET, "/v1.0/state/mem/k", Body::None, 204, None), right),
        (case("metadata with the token", Method::GET, "/v1.0/metadata", Body::None, 200, None), right),
        (case("save with the token", Method::POST, "/v1.0/state/mem", save("k2"), 204, None), right),
    ]
}

/// Sends `case` (with `dapr-api-token: token` when given) and checks the answer.
async fn send_case(sc: &Sidecar, case: &Case, token: Option<&str>) -> anyhow::Result<()> {
    let mut request = sc.request(case.method.clone(), &case.path);
    if let Some(token) = token {
        request = request.header("dapr-api-token", token);
    }
    match &case.body {
        Body::None => {}
        Body::Raw(text) => {
            request = request
                .header("content-type", "application/json")
                .body(*text)
        }
        Body::Json(value) => request = request.json(value),
    }
    let reply = sc.send(case.name, request).await?;
    match case.code {
        Some(code) => reply.ensure_error(case.status, code)?,
        None => reply.ensure_status(case.status)?,
    };
    Ok(())
}

/// Fails unless the sidecar still answers health checks and stores data.
async fn still_serves(sc: &Sidecar) -> anyhow::Result<()> {
    sc.healthz().await?.ensure_status(204)?;
    sc.put("mem", "after", json!({"still": "serving"})).await?;
    let found = sc.value("mem", "after").await?;
    ensure!(
        found == Some(json!({"still": "serving"})),
        "read back {found:?}"
    );
    Ok(())
}

async fn start_with_mem(
    app: &AppId,
    resources: &Resources,
    token: Option<&str>,
) -> anyhow::Result<Sidecar> {
    resources.builtin("mem", "state.in-memory", &[]);
    let mut launch = Launch::new(app).resources(resources.path());
    if let Some(token) = token {
        launch = launch.env("DAPR_API_TOKEN", token);
    }
    launch.start().await
}

#[tokio::test]
async fn bad_requests_get_daprs_documented_errors() -> anyhow::Result<()> {
    let app = AppId::new("bad-req");
    let resources = Resources::new();
    let sc = start_with_mem(&app, &resources, None).await?;
    sc.put("mem", "ok", json!(1)).await?;
    let mut failures = Vec::new();
    for case in cases() {
        if let Err(err) = send_case(&sc, &case, None).await {
            failures.push(format!("[{}] {err:#}", case.name));
        }
    }
    still_serves(&sc).await.context("after the bad requests")?;
    ensure!(
        failures.is_empty(),
        "{} bad requests were not answered as Dapr documents:\n{}",
        failures.len(),
        failures.join("\n")
    );
    Ok(())
}

#[tokio::test]
async fn a_huge_key_in_the_url_is_refused_and_the_sidecar_survives() -> anyhow::Result<()> {
    let app = AppId::new("bad-url");
    let resources = Resources::new();
    let sc = start_with_mem(&app, &resources, None).await?;
    let path = state_key_path("mem", &huge_key());
    // The server may answer with a 4xx (400, 414, 431) or close the
    // connection; anything but success or a 5xx is acceptable.
    if let Ok(response) = sc.request(Method::GET, &path).send().await {
        let status = response.status();
        ensure!(
            status.is_client_error(),
            "GET with a 1 MiB key in the URL: got {status}"
        );
    }
    still_serves(&sc)
        .await
        .context("after a 1 MiB key in the URL")
}

#[tokio::test]
async fn the_api_token_guards_every_route_but_healthz() -> anyhow::Result<()> {
    let app = AppId::new("bad-token");
    let resources = Resources::new();
    let token = common::unique_name("token");
    let sc = start_with_mem(&app, &resources, Some(&token)).await?;

    let cases = token_cases(&token);
    let mut failures = Vec::new();
    for (case, sent) in &cases {
        if let Err(err) = send_case(&sc, case, *sent).await {
            failures.push(format!("[{}] {err:#}", case.name));
        }
    }
    // The refused save wrote nothing, and the refused shutdown stopped nothing.
    let check = sc
        .request(Method::GET, "/v1.0/state/mem/k")
        .header("dapr-api-token", &token);
    let reply = sc
        .send("get k with the token after the refused save", check)
        .await?;
    if let Err(err) = reply.ensure_status(204) {
        failures.push(format!("{err:#}"));
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
