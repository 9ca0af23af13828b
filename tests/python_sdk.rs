//! End-to-end: the unmodified Dapr Python SDK (`dapr==1.19.0`, installed in
//! a virtualenv by `.ci/run`) talks to the real `outrig` binary over gRPC.
//!
//! Each program in `tests/python/` runs as the app under
//! `outrig run --dapr-http-port 0 --dapr-grpc-port 0 -- python prog.py`,
//! once per backend: the embedded default store (redb), the in-memory store,
//! and Redis on 127.0.0.1:6379. A program passes when it exits 0 and prints
//! its `all checks passed` line. Every run uses its own app id, so its own
//! `<app-id>||` key prefix; its embedded data and Redis keys are removed
//! afterwards.
//!
//! The interpreter is `$OUTRIG_TEST_PYTHON`, else `.venv/bin/python` at the
//! repository root. Without it the tests are skipped with a message, except
//! under CI (`CI=true`), where they fail.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{AppId, RedisKeys, Resources};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// A bound on one program run (sidecar start, SDK import, the checks), so a
/// hang fails the test instead of hanging it. Not a performance assertion.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// Where the state lives during one run.
#[derive(Clone, Copy, Debug)]
enum Backend {
    /// No resources directory: the embedded durable default (`state.redb`).
    Embedded,
    /// `state.in-memory` from a resources directory.
    InMemory,
    /// `state.redis` against the test Redis.
    Redis,
}

const BACKENDS: [Backend; 3] = [Backend::Embedded, Backend::InMemory, Backend::Redis];

impl Backend {
    /// The resources directory declaring `statestore`, if the backend needs one.
    fn resources(self) -> Option<Resources> {
        let resources = Resources::new();
        match self {
            Backend::Embedded => return None,
            Backend::InMemory => resources.builtin("statestore", "state.in-memory", &[]),
            Backend::Redis => resources.redis_store("statestore"),
        };
        Some(resources)
    }

    /// Whether the store implements the query API.
    fn supports_query(self) -> bool {
        !matches!(self, Backend::Redis)
    }
}

/// The repository root.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv's interpreter, or `None` (after saying why) when the tests
/// may be skipped. Panics under CI, where a missing interpreter is a broken setup.
fn python() -> Option<PathBuf> {
    let path = std::env::var_os("OUTRIG_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv/bin/python"));
    if path.exists() {
        return Some(path);
    }
    let message = format!(
        "no Python with the Dapr SDK at {}: run `python3 -m venv .venv && .venv/bin/pip install dapr==1.19.0` \
         at the repository root, or set OUTRIG_TEST_PYTHON",
        path.display()
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping the Python SDK tests: {message}");
    None
}

/// Runs `tests/python/<program>.py` against every backend; fails with the
/// program's and the sidecar's output on the first failure.
async fn run_program(program: &str) {
    let Some(python) = python() else { return };
    let script = repo_root()
        .join("tests/python")
        .join(format!("{program}.py"));
    for backend in BACKENDS {
        // Dropped at the end of the iteration: the embedded data and the Redis keys go.
        let app = AppId::new(&format!("py-{}", program.replace('_', "-")));
        let _redis_keys = RedisKeys::of(&app);
        let result = run_once(&python, &script, "all checks passed", backend, &app).await;
        if let Err(failure) = result {
            panic!("{program}.py against {backend:?} failed:\n{failure}");
        }
    }
}

/// One `outrig run … -- python <script>`; it passed when it exited 0 and
/// printed a line ending in `success`. `Err` carries the output.
async fn run_once(
    python: &Path,
    script: &Path,
    success: &str,
    backend: Backend,
    app: &AppId,
) -> Result<(), String> {
    // An empty working directory: no stray ./components is picked up.
    let workdir = tempfile::tempdir().unwrap();
    let resources = backend.resources();
    let mut command = Command::new(common::outrig_bin());
    command
        .current_dir(workdir.path())
        .args(["run", "--app-id", app.as_str()])
        .args(["--dapr-http-port", "0", "--dapr-grpc-port", "0"])
        .arg("--home")
        .arg(common::shared_home());
    if let Some(resources) = &resources {
        command.arg("--resources-path").arg(resources.path());
    }
    let query = if backend.supports_query() { "1" } else { "0" };
    command
        .arg("--")
        .arg(python)
        .arg(script)
        .env("OUTRIG_TEST_STORE", "statestore")
        .env("OUTRIG_TEST_PREFIX", common::unique_name("k"))
        .env("OUTRIG_TEST_QUERY", query)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env_remove("DAPR_API_TOKEN")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(RUN_DEADLINE, command.output())
        .await
        .map_err(|_| format!("no exit within {RUN_DEADLINE:?}"))?
        .map_err(|err| format!("cannot start outrig: {err}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let printed_success = stdout.lines().any(|line| line.ends_with(success));
    if output.status.success() && printed_success {
        return Ok(());
    }
    Err(format!(
        "exit: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    ))
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

/// `samples/python-state` runs as its README says, on the embedded store.
#[tokio::test]
async fn the_python_state_sample_runs() {
    let Some(python) = python() else { return };
    let app = AppId::new("py-sample");
    let script = repo_root().join("samples/python-state/app.py");
    if let Err(failure) = run_once(&python, &script, "done", Backend::Embedded, &app).await {
        panic!("samples/python-state/app.py failed:\n{failure}");
    }
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
