//! End-to-end: the unmodified Dapr Python SDK (`dapr==1.19.0`, installed in
//! a virtualenv by `.ci/run`) talks to the real `outrig` binary over gRPC.
//!
//! Each program in `tests/python/` runs as the app under `outrig run` (see
//! `tests/sdk`), once per backend: the embedded default store (redb), the
//! in-memory store, and Redis on 127.0.0.1:6379. A program passes when it
//! exits 0 and prints its `all checks passed` line.
//!
//! The interpreter is `$OUTRIG_TEST_PYTHON`, else `.venv/bin/python` at the
//! repository root. Without it the tests are skipped with a message, except
//! under CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod sdk;

use sdk::{AppRun, BACKENDS, Backend, repo_root};
use std::path::PathBuf;
use tokio::process::Command;

/// The virtualenv's interpreter, or `None` when the tests may be skipped.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("OUTRIG_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    sdk::required(
        path,
        "Python with the Dapr SDK",
        "run `python3 -m venv .venv && .venv/bin/pip install dapr==1.19.0` at the \
         repository root, or set OUTRIG_TEST_PYTHON",
    )
}

/// Runs `tests/python/<program>.py` against every backend.
async fn run_program(program: &str) {
    let Some(python) = python() else { return };
    let script = repo_root()
        .join("tests/python")
        .join(format!("{program}.py"));
    let name = format!("py-{}", program.replace('_', "-"));
    AppRun {
        name: &name,
        app: vec![python.into(), script.into()],
        env: vec![("PYTHONDONTWRITEBYTECODE", "1")],
        success: "all checks passed",
    }
    .against(&BACKENDS)
    .await;
}

#[tokio::test]
async fn save_get_delete_with_etags_options_and_ttl() {
    run_program("state_crud").await;
}

#[tokio::test]
async fn bulk_save_and_bulk_get() {
    run_program("state_bulk").await;
}

#[tokio::test]
async fn transactions_are_atomic() {
    run_program("state_transaction").await;
}

#[tokio::test]
async fn query_where_supported_and_dapr_error_where_not() {
    run_program("state_query").await;
}

#[tokio::test]
async fn metadata_get_and_set() {
    run_program("metadata").await;
}

#[tokio::test]
async fn errors_raise_what_dapr_raises() {
    run_program("errors").await;
}

#[tokio::test]
async fn http_and_grpc_return_identical_data() {
    run_program("http_grpc_parity").await;
}

/// With `DAPR_API_TOKEN` set, the SDK (which sends it) is served and a call
/// without it is refused UNAUTHENTICATED.
#[tokio::test]
async fn the_api_token_is_enforced_on_grpc() {
    let Some(python) = python() else { return };
    let token = common::unique_name("token");
    AppRun {
        name: "py-api-token",
        app: vec![
            python.into(),
            repo_root().join("tests/python/api_token.py").into(),
        ],
        env: vec![("DAPR_API_TOKEN", &token)],
        success: "all checks passed",
    }
    .against(&[Backend::Embedded])
    .await;
}

/// `samples/python-state` runs as its README says, on the embedded store.
#[tokio::test]
async fn the_python_state_sample_runs() {
    let Some(python) = python() else { return };
    AppRun {
        name: "py-sample",
        app: vec![
            python.into(),
            repo_root().join("samples/python-state/app.py").into(),
        ],
        env: Vec::new(),
        success: "done",
    }
    .against(&[Backend::Embedded])
    .await;
}

/// Outrig's protos declare nothing the Dapr SDK's descriptors disagree with.
#[tokio::test]
async fn protos_match_the_sdks_wire_contract() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let descriptors = dir.path().join("outrig.bin");
    std::fs::write(&descriptors, outrig::api::grpc::proto::FILE_DESCRIPTOR_SET).unwrap();
    let output = Command::new(python)
        .arg(repo_root().join("tests/python/wire_contract.py"))
        .arg(&descriptors)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "the protos differ from Dapr's:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
