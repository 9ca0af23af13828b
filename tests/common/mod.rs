//! Shared helpers for the end-to-end tests.
//!
//! They start the real `outrig` binary (`outrig run`), talk to its HTTP API as
//! an app would, write Dapr resource YAML into temporary directories, and reach
//! the Redis and PostgreSQL servers on 127.0.0.1 directly to check (and clean
//! up) what the stores wrote.
//!
//! Isolation: every test uses its own [`AppId`] (so its own `<app-id>||` key
//! prefix and its own data directory), its own resources directory, its own
//! working directory and a free port picked by the sidecar itself. All tests
//! share one Outrig home so the compiled-component cache is reused; the first
//! sidecar of a test binary warms that cache (see [`warm_cache`]).
//!
//! Every test binary includes this module with `mod common;` and none uses all
//! of it, hence the `dead_code` allowance.
#![allow(dead_code)]

pub mod brokers;

use anyhow::{Context, anyhow, bail, ensure};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{OnceCell, oneshot};

/// What the sidecar logs once its HTTP API accepts requests, followed by the address.
pub const READY_MARKER: &str = "HTTP API listening on ";
/// What the sidecar logs (before it is ready) when it serves `/metrics`,
/// followed by the address.
pub const METRICS_MARKER: &str = "metrics served on http://";
/// How long a sidecar may take to become ready. Generous: a cold cache means
/// Cranelift compiles every component in a debug build on a busy machine.
pub const START_DEADLINE: Duration = Duration::from_secs(180);
/// How long a sidecar may take to exit once asked to.
pub const EXIT_DEADLINE: Duration = Duration::from_secs(60);
/// Bound on any single HTTP exchange, so a hung sidecar fails the test
/// instead of hanging it. Not a performance assertion.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(60);
/// The Redis server the tests use, as `redisHost` metadata.
pub const REDIS_HOST: &str = "127.0.0.1:6379";
/// The PostgreSQL server the tests use, as `connectionString` metadata.
pub const PG_CONNECTION: &str =
    "host=127.0.0.1 user=postgres port=5432 database=test sslmode=disable";
/// The built-in state store types.
pub const BUILTIN_STATE_TYPES: [&str; 4] = [
    "state.in-memory",
    "state.redb",
    "state.redis",
    "state.postgresql",
];

/// The `outrig` binary under test.
pub fn outrig_bin() -> &'static str {
    env!("CARGO_BIN_EXE_outrig")
}

/// The Outrig home shared by every end-to-end test: its `cache/` is reused,
/// and each test's data lives under `data/<app-id>`, removed by [`AppId`].
pub fn shared_home() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-outrig-home")
}

/// A name no other test (in this run or an earlier one) uses:
/// `<prefix>-<pid>-<counter>-<nanos>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A port nothing listens on right now (another process may take it later).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Lowercase hex sha256 of a file, as `spec.wasm.sha256` wants it.
pub fn sha256_of(path: &Path) -> String {
    let bytes =
        std::fs::read(path).unwrap_or_else(|err| panic!("reading {}: {err}", path.display()));
    hex::encode(Sha256::digest(bytes))
}

/// Polls `probe` until it returns `Some`, or fails after `deadline`.
pub async fn poll_until<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = probe().await? {
            return Ok(value);
        }
        if Instant::now() >= until {
            bail!("{what}: still not true after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// App ids and their data
// ---------------------------------------------------------------------------

/// A unique app id; its embedded-store data under the shared home is removed
/// when it is dropped, so hold it for as long as the test's sidecars run.
pub struct AppId {
    id: String,
    home: PathBuf,
}

impl AppId {
    /// A fresh app id starting with `prefix`.
    pub fn new(prefix: &str) -> Self {
        AppId {
            id: unique_name(prefix),
            home: shared_home(),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// Where the sidecar keeps this app's embedded-store data.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data").join(&self.id)
    }

    /// How this app's `key` is stored in a backend: `<app-id>||<key>`.
    pub fn stored_key(&self, key: &str) -> String {
        format!("{}||{key}", self.id)
    }
}

impl Drop for AppId {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.data_dir());
    }
}

// ---------------------------------------------------------------------------
// Resource YAML
// ---------------------------------------------------------------------------

/// A temporary resources directory (`--resources-path`) of Dapr Component YAML.
pub struct Resources {
    dir: TempDir,
}

impl Resources {
    /// An empty directory.
    pub fn new() -> Self {
        Resources {
            dir: tempfile::tempdir().expect("creating a resources directory"),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `<name>.yaml` declaring a built-in component.
    pub fn builtin(&self, name: &str, component_type: &str, metadata: &[(&str, &str)]) -> &Self {
        let spec = format!(
            "  type: {component_type}\n  version: v1\n{}",
            metadata_yaml(metadata)
        );
        self.file(&format!("{name}.yaml"), &component_yaml(name, &spec))
    }

    /// Writes `<name>.yaml` declaring a `state.redis` store on the test Redis.
    pub fn redis_store(&self, name: &str) -> &Self {
        self.builtin(name, "state.redis", &[("redisHost", REDIS_HOST)])
    }

    /// Writes `<name>.yaml` declaring a `state.postgresql` store on the test
    /// database, keeping its data in `table`.
    pub fn postgres_store(&self, name: &str, table: &PgTable) -> &Self {
        self.builtin(
            name,
            "state.postgresql",
            &[
                ("connectionString", PG_CONNECTION),
                ("tableName", &table.name),
            ],
        )
    }

    /// Writes `<name>.yaml` declaring a user component in `spec.wasm`, with
    /// scalar `capabilities` such as `("memoryMiB", "32")`.
    pub fn wasm(
        &self,
        name: &str,
        component_type: &str,
        wasm: &Path,
        sha256: Option<&str>,
        capabilities: &[(&str, &str)],
    ) -> &Self {
        let mut spec = format!(
            "  type: {component_type}\n  version: v1\n  metadata: []\n  wasm:\n    path: {}\n",
            quoted(&wasm.display().to_string())
        );
        if let Some(sha256) = sha256 {
            spec.push_str(&format!("    sha256: {}\n", quoted(sha256)));
        }
        if !capabilities.is_empty() {
            spec.push_str("    capabilities:\n");
            for (name, value) in capabilities {
                spec.push_str(&format!("      {name}: {value}\n"));
            }
        }
        self.file(&format!("{name}.yaml"), &component_yaml(name, &spec))
    }

    /// Writes any file into the directory.
    pub fn file(&self, file_name: &str, text: &str) -> &Self {
        let path = self.dir.path().join(file_name);
        std::fs::write(&path, text)
            .unwrap_or_else(|err| panic!("writing {}: {err}", path.display()));
        self
    }
}

impl Default for Resources {
    fn default() -> Self {
        Self::new()
    }
}

/// A Dapr `Component` document with `spec` given as indented YAML lines.
pub fn component_yaml(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n{spec}"
    )
}

/// `spec.metadata` as YAML lines, values quoted.
pub fn metadata_yaml(metadata: &[(&str, &str)]) -> String {
    if metadata.is_empty() {
        return "  metadata: []\n".into();
    }
    let mut yaml = String::from("  metadata:\n");
    for (name, value) in metadata {
        yaml.push_str(&format!("  - name: {name}\n    value: {}\n", quoted(value)));
    }
    yaml
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    Value::String(value.into()).to_string()
}

// ---------------------------------------------------------------------------
// Starting the sidecar
// ---------------------------------------------------------------------------

/// How to start one `outrig run`.
pub struct Launch {
    app_id: String,
    home: PathBuf,
    resources: Option<PathBuf>,
    env: Vec<(String, String)>,
    args: Vec<String>,
    app: Vec<String>,
    workdir: Option<PathBuf>,
    port: u16,
    grpc_port: u16,
    metrics_port: u16,
}

impl Launch {
    /// `outrig run --app-id <id> --dapr-http-port 0 --dapr-grpc-port 0
    /// --metrics-port 0 --home <shared home>`, in a fresh empty working
    /// directory (so no `./components` is found). Every port is picked by
    /// the sidecar, so parallel tests never collide (on 9090 either).
    pub fn new(app_id: &AppId) -> Self {
        Launch {
            app_id: app_id.as_str().to_string(),
            home: app_id.home.clone(),
            resources: None,
            env: Vec::new(),
            args: Vec::new(),
            app: Vec::new(),
            workdir: None,
            port: 0,
            grpc_port: 0,
            metrics_port: 0,
        }
    }

    /// `--metrics-port` (default 0: the sidecar picks a free port).
    pub fn metrics_port(mut self, port: u16) -> Self {
        self.metrics_port = port;
        self
    }

    /// `--dapr-http-port` (default 0: the sidecar picks a free port).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// `--dapr-grpc-port` (default 0: the sidecar picks a free port).
    pub fn grpc_port(mut self, port: u16) -> Self {
        self.grpc_port = port;
        self
    }

    /// `--resources-path`.
    pub fn resources(mut self, dir: &Path) -> Self {
        self.resources = Some(dir.to_path_buf());
        self
    }

    /// An environment variable for outrig.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Extra arguments before `--`.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// The app's command line (after `--`).
    pub fn app(mut self, command: &[&str]) -> Self {
        self.app = command.iter().map(|a| a.to_string()).collect();
        self
    }

    /// Runs in `dir` instead of a fresh temporary directory.
    pub fn workdir(mut self, dir: &Path) -> Self {
        self.workdir = Some(dir.to_path_buf());
        self
    }

    fn command(&self, workdir: &Path) -> Command {
        let mut cmd = Command::new(outrig_bin());
        cmd.arg("run")
            .args(["--app-id", &self.app_id, "--log-level", "info"])
            .args(["--dapr-http-port", &self.port.to_string()])
            .args(["--dapr-grpc-port", &self.grpc_port.to_string()])
            .args(["--metrics-port", &self.metrics_port.to_string()])
            .arg("--home")
            .arg(&self.home);
        if let Some(dir) = &self.resources {
            cmd.arg("--resources-path").arg(dir);
        }
        cmd.args(&self.args);
        if !self.app.is_empty() {
            cmd.arg("--").args(&self.app);
        }
        cmd.current_dir(workdir)
            // Only what the test sets: no token, home or log filter from the caller's shell.
            .env_remove("DAPR_API_TOKEN")
            .env_remove("OUTRIG_HOME")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }

    /// Starts the sidecar and waits until its HTTP API listens (after warming
    /// the shared compiled-component cache once per test binary).
    pub async fn start(self) -> anyhow::Result<Sidecar> {
        warm_cache().await;
        self.start_cold().await
    }

    async fn start_cold(self) -> anyhow::Result<Sidecar> {
        let (workdir_guard, workdir) = match &self.workdir {
            Some(dir) => (None, dir.clone()),
            None => {
                let dir = tempfile::tempdir().context("creating a working directory")?;
                let path = dir.path().to_path_buf();
                (Some(dir), path)
            }
        };
        let mut child = self.command(&workdir).spawn().context("spawning outrig")?;
        let logs = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = oneshot::channel();
        collect_output(child.stdout.take(), &logs, None);
        collect_output(child.stderr.take(), &logs, Some(ready_tx));

        let addr = tokio::select! {
            addr = ready_rx => addr.map_err(|_| anyhow!("outrig closed its stderr before it was ready"))?,
            status = child.wait() => {
                // Give the readers a moment to drain what was already written.
                tokio::time::sleep(Duration::from_millis(100)).await;
                bail!("outrig exited ({:?}) before it was ready; its output:\n{}", status, snapshot(&logs));
            }
            () = tokio::time::sleep(START_DEADLINE) => {
                bail!("outrig was not ready within {START_DEADLINE:?}; its output:\n{}", snapshot(&logs));
            }
        };
        let addr: std::net::SocketAddr = addr
            .parse()
            .with_context(|| format!("parsing the listening address `{addr}`"))?;
        let http = reqwest::Client::builder()
            .timeout(REQUEST_DEADLINE)
            .build()
            .context("building the HTTP client")?;
        Ok(Sidecar {
            app_id: self.app_id,
            base: format!("http://{addr}"),
            addr,
            workdir,
            child,
            logs,
            http,
            _workdir: workdir_guard,
        })
    }

    /// Spawns outrig with its output discarded, without waiting for it (for
    /// measuring its start); it is killed when the child is dropped.
    pub fn spawn_quiet(&self, workdir: &Path) -> anyhow::Result<Child> {
        let mut cmd = self.command(workdir);
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        cmd.spawn().context("spawning outrig")
    }

    /// Runs outrig to completion (for runs that must fail early), returning
    /// its exit status and output.
    pub async fn run_to_exit(self) -> anyhow::Result<(ExitStatus, String)> {
        let workdir = tempfile::tempdir().context("creating a working directory")?;
        let mut cmd = self.command(workdir.path());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = tokio::time::timeout(EXIT_DEADLINE, cmd.output())
            .await
            .map_err(|_| anyhow!("outrig did not exit within {EXIT_DEADLINE:?}"))?
            .context("running outrig")?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok((output.status, text))
    }
}

/// Appends every line of `stream` to `logs`; with `ready`, sends the address
/// that follows [`READY_MARKER`] the first time it appears.
fn collect_output<R>(
    stream: Option<R>,
    logs: &Arc<Mutex<String>>,
    mut ready: Option<oneshot::Sender<String>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
{
    let Some(stream) = stream else { return };
    let logs = Arc::clone(logs);
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let line = strip_ansi(&line);
            if let Some(addr) = ready_address(&line)
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(addr);
            }
            if let Ok(mut logs) = logs.lock() {
                logs.push_str(&line);
                logs.push('\n');
            }
        }
    });
}

/// The address in a readiness line, e.g. `… HTTP API listening on 127.0.0.1:4711 …`.
fn ready_address(line: &str) -> Option<String> {
    address_after(line, READY_MARKER)
}

/// The address that follows `marker` in `line`.
fn address_after(line: &str, marker: &str) -> Option<String> {
    let (_, rest) = line.split_once(marker)?;
    let addr: String = rest
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
        .collect();
    (!addr.is_empty()).then_some(addr)
}

/// `line` without terminal colour sequences (`ESC [ … m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn snapshot(logs: &Arc<Mutex<String>>) -> String {
    logs.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Compiles every built-in (and the test-only hostile component) into the
/// shared cache once per test binary, so parallel tests do not all run
/// Cranelift on the same components at the same time.
pub async fn warm_cache() {
    static WARM: OnceCell<()> = OnceCell::const_new();
    WARM.get_or_init(|| async {
        let app = AppId::new("warm-cache");
        let resources = Resources::new();
        for (i, component_type) in BUILTIN_STATE_TYPES.iter().enumerate() {
            let name = format!("warm{i}");
            let table = format!("warm_{}", std::process::id());
            resources.builtin(
                &name,
                component_type,
                &[
                    ("redisHost", REDIS_HOST),
                    ("connectionString", PG_CONNECTION),
                    ("tableName", &table),
                ],
            );
        }
        let hostile = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
        if hostile.is_file() {
            resources.wasm("warmhostile", "state.hostile", hostile, None, &[]);
        }
        // Failures here (e.g. a server down) show up again, with context, in the test itself.
        if let Ok(sidecar) = Launch::new(&app)
            .resources(resources.path())
            .start_cold()
            .await
        {
            drop(sidecar);
        }
        let _ = psql(&format!("DROP TABLE IF EXISTS warm_{}", std::process::id()));
    })
    .await;
}

// ---------------------------------------------------------------------------
// A running sidecar
// ---------------------------------------------------------------------------

/// A running `outrig run`, killed when dropped.
pub struct Sidecar {
    /// The app id it serves.
    pub app_id: String,
    /// Where its HTTP API listens.
    pub addr: std::net::SocketAddr,
    /// `http://<addr>`.
    pub base: String,
    /// Its working directory.
    pub workdir: PathBuf,
    child: Child,
    logs: Arc<Mutex<String>>,
    http: reqwest::Client,
    _workdir: Option<TempDir>,
}

impl Sidecar {
    /// Everything it printed so far (stdout and stderr, and its app's).
    pub fn logs(&self) -> String {
        snapshot(&self.logs)
    }

    /// Its process id.
    pub fn pid(&self) -> nix::unistd::Pid {
        let raw = self.child.id().expect("outrig is still running");
        nix::unistd::Pid::from_raw(i32::try_from(raw).expect("pid fits in i32"))
    }

    /// Sends it a signal.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        nix::sys::signal::kill(self.pid(), signal).context("signalling outrig")
    }

    /// Waits (bounded) for it to exit.
    pub async fn wait_exit(&mut self) -> anyhow::Result<ExitStatus> {
        match tokio::time::timeout(EXIT_DEADLINE, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => bail!(
                "outrig did not exit within {EXIT_DEADLINE:?}; its output:\n{}",
                self.logs()
            ),
        }
    }

    /// `POST /v1.0/shutdown`, then waits for it to exit.
    pub async fn shutdown(&mut self) -> anyhow::Result<ExitStatus> {
        self.call(Method::POST, "/v1.0/shutdown", None)
            .await?
            .ensure_status(204)?;
        self.wait_exit().await
    }

    /// SIGTERM, then waits for it to exit.
    pub async fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(nix::sys::signal::Signal::SIGTERM)?;
        self.wait_exit().await
    }

    /// A request to `path` (which starts with `/`), not yet sent.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends a request built with [`Sidecar::request`]; `what` names it in errors.
    pub async fn send(
        &self,
        what: &str,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<Reply> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => bail!(
                "{what}: no answer ({err}); outrig's output:\n{}",
                self.logs()
            ),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .bytes()
            .await
            .with_context(|| format!("{what}: reading the body"))?
            .to_vec();
        Ok(Reply {
            what: what.to_string(),
            status,
            headers,
            body,
        })
    }

    /// `method path` with an optional JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Reply> {
        let what = format!("{method} {path}");
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(&what, request).await
    }

    /// `http://<addr>/metrics`, from the line the sidecar logs before it is
    /// ready; `None` when it serves no metrics.
    pub fn metrics_url(&self) -> Option<String> {
        let logs = self.logs();
        let addr = logs
            .lines()
            .find_map(|line| address_after(line, METRICS_MARKER))?;
        Some(format!("http://{addr}/metrics"))
    }

    /// `GET /v1.0/healthz`.
    pub async fn healthz(&self) -> anyhow::Result<Reply> {
        self.call(Method::GET, "/v1.0/healthz", None).await
    }

    /// Waits until `GET /v1.0/healthz` answers 204: with an app, once its
    /// pub/sub subscriptions are in place at the brokers (what is published
    /// from then on reaches it).
    pub async fn wait_until_healthy(&self) -> anyhow::Result<()> {
        poll_until("outrig reports healthy", START_DEADLINE, || async {
            Ok((self.healthz().await?.status == 204).then_some(()))
        })
        .await
        .with_context(|| format!("outrig's output:\n{}", self.logs()))
    }

    /// `GET /v1.0/metadata`, as JSON.
    pub async fn metadata(&self) -> anyhow::Result<Value> {
        self.call(Method::GET, "/v1.0/metadata", None)
            .await?
            .ensure_status(200)?
            .json()
    }

    /// The metadata entry of component `name`.
    pub async fn component_metadata(&self, name: &str) -> anyhow::Result<Value> {
        let metadata = self.metadata().await?;
        metadata["components"]
            .as_array()
            .and_then(|all| all.iter().find(|c| c["name"] == name))
            .cloned()
            .ok_or_else(|| {
                anyhow!("component `{name}` is not listed in /v1.0/metadata: {metadata}")
            })
    }

    /// `POST /v1.0/state/{store}` with `items` (a JSON array).
    pub async fn save(&self, store: &str, items: Value) -> anyhow::Result<Reply> {
        self.call(Method::POST, &format!("/v1.0/state/{store}"), Some(&items))
            .await
    }

    /// `POST /v1.0/state/{store}` of one key with a plain last-write save; expects 204.
    pub async fn put(&self, store: &str, key: &str, value: Value) -> anyhow::Result<()> {
        self.save(store, json!([{"key": key, "value": value}]))
            .await?
            .ensure_status(204)?;
        Ok(())
    }

    /// `GET /v1.0/state/{store}/{key}`.
    pub async fn get_state(&self, store: &str, key: &str) -> anyhow::Result<Reply> {
        self.call(Method::GET, &state_key_path(store, key), None)
            .await
    }

    /// The value of `key` (`None` when the store answers 204).
    pub async fn value(&self, store: &str, key: &str) -> anyhow::Result<Option<Value>> {
        let reply = self.get_state(store, key).await?;
        match reply.status {
            200 => reply.json().map(Some),
            204 => Ok(None),
            _ => bail!("{}", reply.describe("expected 200 or 204")),
        }
    }

    /// `DELETE /v1.0/state/{store}/{key}`, with `If-Match` when given.
    pub async fn delete_state(
        &self,
        store: &str,
        key: &str,
        if_match: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let path = state_key_path(store, key);
        let mut request = self.request(Method::DELETE, &path);
        if let Some(etag) = if_match {
            request = request.header("If-Match", etag);
        }
        self.send(&format!("DELETE {path}"), request).await
    }

    /// `POST /v1.0/state/{store}/bulk`.
    pub async fn bulk_get(&self, store: &str, keys: &[&str]) -> anyhow::Result<Reply> {
        let body = json!({"keys": keys, "parallelism": 4});
        self.call(
            Method::POST,
            &format!("/v1.0/state/{store}/bulk"),
            Some(&body),
        )
        .await
    }

    /// `POST /v1.0/state/{store}/transaction` with `operations`.
    pub async fn transact(&self, store: &str, operations: Value) -> anyhow::Result<Reply> {
        let body = json!({"operations": operations});
        self.call(
            Method::POST,
            &format!("/v1.0/state/{store}/transaction"),
            Some(&body),
        )
        .await
    }

    /// `POST /v1.0-alpha1/state/{store}/query`.
    pub async fn query(&self, store: &str, query: &Value) -> anyhow::Result<Reply> {
        self.call(
            Method::POST,
            &format!("/v1.0-alpha1/state/{store}/query"),
            Some(query),
        )
        .await
    }
}

/// `/v1.0/state/{store}/{key}` with the key percent-encoded.
pub fn state_key_path(store: &str, key: &str) -> String {
    format!(
        "/v1.0/state/{store}/{}",
        utf8_percent_encode(key, NON_ALPHANUMERIC)
    )
}

/// One HTTP answer, kept whole for assertions.
#[derive(Debug)]
pub struct Reply {
    /// The request, e.g. `GET /v1.0/state/s/k`, for messages.
    pub what: String,
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| self.describe("the body is not JSON"))
    }

    /// The `ETag` header.
    pub fn etag(&self) -> Option<String> {
        self.headers
            .get(reqwest::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    /// Dapr's `errorCode`, if the body is a Dapr error.
    pub fn error_code(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["errorCode"].as_str().map(str::to_string)
    }

    /// Dapr's error `message`, if the body is a Dapr error.
    pub fn error_message(&self) -> Option<String> {
        let body: Value = serde_json::from_slice(&self.body).ok()?;
        body["message"].as_str().map(str::to_string)
    }

    /// `what → status: body` with a note, for failure messages.
    pub fn describe(&self, note: &str) -> String {
        let mut body = self.text();
        if body.len() > 2000 {
            let mut cut = 2000;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
            body.push('…');
        }
        format!("{}: {note}; got {} {body}", self.what, self.status)
    }

    /// Fails unless the status is `status`.
    pub fn ensure_status(&self, status: u16) -> anyhow::Result<&Self> {
        ensure!(
            self.status == status,
            "{}",
            self.describe(&format!("expected status {status}"))
        );
        Ok(self)
    }

    /// Fails unless this is Dapr's error `code` with `status`.
    pub fn ensure_error(&self, status: u16, code: &str) -> anyhow::Result<&Self> {
        let note = format!("expected {status} with errorCode {code}");
        ensure!(self.status == status, "{}", self.describe(&note));
        ensure!(
            self.error_code().as_deref() == Some(code),
            "{}",
            self.describe(&note)
        );
        Ok(self)
    }
}

// ---------------------------------------------------------------------------
// Apps in the test process
// ---------------------------------------------------------------------------

/// `router` with `GET /dapr/subscribe` answering `subscriptions`: how a
/// Dapr app declares its programmatic subscriptions, which the sidecar asks
/// for once the app listens.
pub fn with_subscriptions<S>(router: axum::Router<S>, subscriptions: Value) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route(
        "/dapr/subscribe",
        axum::routing::get(move || {
            let subscriptions = subscriptions.clone();
            async move { axum::Json(subscriptions) }
        }),
    )
}

/// Serves `router` on a free port of 127.0.0.1 for the rest of the test
/// (as an app the sidecar delivers to), returning the port.
pub async fn serve_app(router: axum::Router) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(port)
}

// ---------------------------------------------------------------------------
// Backends, reached directly
// ---------------------------------------------------------------------------

/// A connection to the test Redis.
pub fn redis_connection() -> anyhow::Result<redis::Connection> {
    redis::Client::open(format!("redis://{REDIS_HOST}/"))
        .and_then(|client| client.get_connection())
        .with_context(|| format!("connecting to Redis at {REDIS_HOST}"))
}

/// `HGET key field` on the test Redis.
pub fn redis_hget(key: &str, field: &str) -> anyhow::Result<Option<Vec<u8>>> {
    let mut conn = redis_connection()?;
    redis::cmd("HGET")
        .arg(key)
        .arg(field)
        .query(&mut conn)
        .with_context(|| format!("HGET {key} {field}"))
}

/// Removes the app's keys (`<app-id>||*`) from the test Redis when dropped.
pub struct RedisKeys {
    pattern: String,
}

impl RedisKeys {
    /// Cleans up after `app`.
    pub fn of(app: &AppId) -> Self {
        RedisKeys {
            pattern: format!("{}||*", app.as_str()),
        }
    }
}

impl Drop for RedisKeys {
    fn drop(&mut self) {
        let Ok(mut conn) = redis_connection() else {
            return;
        };
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(&self.pattern)
            .query(&mut conn)
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: Result<i64, _> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
    }
}

/// The test NATS server (JetStream enabled), as `natsURL` metadata.
pub const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Runs SQL on the test database with `psql`, returning unaligned tuples.
pub fn psql(sql: &str) -> anyhow::Result<String> {
    let output = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "test",
            "-v",
            "ON_ERROR_STOP=1",
            "-At",
            "-c",
            sql,
        ])
        .output()
        .context("running psql")?;
    ensure!(
        output.status.success(),
        "psql -c {sql:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A unique PostgreSQL table name, dropped when this is dropped.
pub struct PgTable {
    /// The table's name (lowercase, no quoting needed).
    pub name: String,
}

impl PgTable {
    /// A fresh name starting with `prefix`.
    pub fn new(prefix: &str) -> Self {
        PgTable {
            name: unique_name(prefix).replace('-', "_").to_lowercase(),
        }
    }
}

impl Drop for PgTable {
    fn drop(&mut self) {
        let _ = psql(&format!("DROP TABLE IF EXISTS {}", self.name));
    }
}
