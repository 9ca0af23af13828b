//! Running an app written against an unmodified Dapr SDK under
//! `outrig run`, shared by the Python and JavaScript SDK tests.
//!
//! [`run_app`] starts `outrig run --dapr-http-port 0 --dapr-grpc-port 0
//! --metrics-port 0 -- <app>` against one [`Backend`], with the variables the
//! test programs read (`OUTRIG_TEST_STORE`, `OUTRIG_TEST_PREFIX`, `OUTRIG_TEST_QUERY`), and
//! passes when the app exits 0 after printing its success line. Each run uses
//! its own app id; its embedded data and Redis keys are removed afterwards.
#![allow(dead_code)]

use super::common::{self, AppId, RedisKeys, Resources};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// A bound on one app run (sidecar start, SDK start-up, the checks), so a
/// hang fails the test instead of hanging it. Not a performance assertion.
const RUN_DEADLINE: Duration = Duration::from_secs(240);

/// Where the state lives during one run.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    /// No resources directory: the embedded durable default (`state.redb`).
    Embedded,
    /// `state.in-memory` from a resources directory.
    InMemory,
    /// `state.redis` against the test Redis.
    Redis,
}

/// Every backend, in the order the tests try them.
pub const BACKENDS: [Backend; 3] = [Backend::Embedded, Backend::InMemory, Backend::Redis];

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
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `Some(path)` when `path` exists. Otherwise `None` after saying how to
/// install it, so the caller skips; under CI (`CI=true`), where a missing
/// SDK is a broken setup, it panics instead.
pub fn required(path: PathBuf, what: &str, install: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let message = format!("no {what} at {}: {install}", path.display());
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("skipping: {message}");
    None
}

/// One app run: `app` is the command line, `env` extra variables, and the
/// run passes when the app exits 0 and printed a line ending in `success`.
pub struct AppRun<'a> {
    /// The app id prefix.
    pub name: &'a str,
    /// The app's command line.
    pub app: Vec<OsString>,
    /// Extra environment for the app.
    pub env: Vec<(&'a str, &'a str)>,
    /// The line ending the app prints when every check passed.
    pub success: &'a str,
}

impl AppRun<'_> {
    /// Runs the app against each of `backends`, panicking with the app's and
    /// the sidecar's output at the first failure.
    pub async fn against(&self, backends: &[Backend]) {
        for &backend in backends {
            // Dropped at the end of the iteration: the embedded data and the Redis keys go.
            let app = AppId::new(self.name);
            let _redis_keys = RedisKeys::of(&app);
            if let Err(failure) = self.run_once(backend, &app).await {
                panic!("{} against {backend:?} failed:\n{failure}", self.name);
            }
        }
    }

    async fn run_once(&self, backend: Backend, app: &AppId) -> Result<(), String> {
        // An empty working directory: no stray ./components is picked up.
        let workdir = tempfile::tempdir().unwrap();
        let resources = backend.resources();
        let mut command = Command::new(common::outrig_bin());
        command
            .current_dir(workdir.path())
            .args(["run", "--app-id", app.as_str()])
            .args(["--dapr-http-port", "0", "--dapr-grpc-port", "0"])
            .args(["--metrics-port", "0"])
            .arg("--home")
            .arg(common::shared_home());
        if let Some(resources) = &resources {
            command.arg("--resources-path").arg(resources.path());
        }
        let query = if backend.supports_query() { "1" } else { "0" };
        command
            .arg("--")
            .args(&self.app)
            .env_remove("DAPR_API_TOKEN")
            .env("OUTRIG_TEST_STORE", "statestore")
            .env("OUTRIG_TEST_PREFIX", common::unique_name("k"))
            .env("OUTRIG_TEST_QUERY", query)
            // Last, so a test may set DAPR_API_TOKEN for the sidecar and the app.
            .envs(self.env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let output = tokio::time::timeout(RUN_DEADLINE, command.output())
            .await
            .map_err(|_| format!("no exit within {RUN_DEADLINE:?}"))?
            .map_err(|err| format!("cannot start outrig: {err}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let printed_success = stdout.lines().any(|line| line.ends_with(self.success));
        if output.status.success() && printed_success {
            return Ok(());
        }
        Err(format!(
            "exit: {}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
