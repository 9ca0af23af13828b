//! End-to-end: the unmodified Dapr JavaScript SDK (`@dapr/dapr`, installed
//! in `tests/js/node_modules` by `.ci/run` with `npm ci`) against the real
//! `outrig` binary, in both of its modes: gRPC and HTTP.
//!
//! `tests/js/state.mjs` runs as the app under `outrig run` (see `tests/sdk`)
//! against the embedded default store, the in-memory store and Redis: save/get with objects and text,
//! bulk reads with ETags, stale ETags refused, transactions, query where
//! supported, metadata, and the unknown-store error.
//!
//! Without `node` or the installed SDK the tests are skipped with a message,
//! except under CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sdk;

use sdk::{AppRun, repo_root};

/// Runs the program with the SDK in `protocol` mode against `backends`.
async fn run_state_program(protocol: &str) {
    let js = repo_root().join("tests/js");
    let install = "install Node.js, then run `npm ci --prefix tests/js` at the repository root";
    if sdk::required(js.join("node_modules/@dapr/dapr"), "Dapr JS SDK", install).is_none() {
        return;
    }
    let name = format!("js-{protocol}");
    AppRun {
        name: &name,
        app: vec!["node".into(), js.join("state.mjs").into()],
        env: vec![("OUTRIG_TEST_PROTOCOL", protocol)],
        success: "all checks passed",
    }
    .against(&sdk::BACKENDS)
    .await;
}

#[tokio::test]
async fn the_js_sdk_works_over_grpc() {
    run_state_program("grpc").await;
}

#[tokio::test]
async fn the_js_sdk_works_over_http() {
    run_state_program("http").await;
}
