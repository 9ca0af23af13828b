//! Grants end to end: a component sees only the environment variables it
//! was granted, and its `wasi:http` requests reach only the origins it was
//! granted; everything else fails inside the guest with a clear error, and
//! the host logs the attempt. Built-in components, which import no
//! `wasi:http`, serve beside them unchanged.
//!
//! The guest is the test-only `test-hostile` component: `||env=NAME`,
//! `||envnames` and `||fetch=URL` keys (see `components-wasm/test-hostile`).

mod common;

use anyhow::{Context, ensure};
use common::{AppId, Launch, Resources, Sidecar};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The component with grants, and one with none.
const GRANTED: &str = "granted";
const PLAIN: &str = "plain";
const MEM: &str = "mem";
/// Bound on waiting for a log line; a hang guard, not a timing assertion.
const LOG_DEADLINE: Duration = Duration::from_secs(30);

/// Declares [`GRANTED`] (test-hostile with `capabilities`), [`PLAIN`] (the
/// same without grants) and a built-in in-memory store, and starts a
/// sidecar whose own environment has `env`.
async fn start(
    app: &AppId,
    resources: &Resources,
    capabilities: &[(&str, &str)],
    env: &[(&str, &str)],
) -> anyhow::Result<Sidecar> {
    let wasm = Path::new(outrig::components::builtin::TEST_HOSTILE_PATH);
    ensure!(
        wasm.is_file(),
        "test-hostile is not built at {}",
        wasm.display()
    );
    resources
        .wasm(GRANTED, "state.hostile", wasm, None, capabilities)
        .wasm(PLAIN, "state.hostile", wasm, None, &[])
        .builtin(MEM, "state.in-memory", &[]);
    let mut launch = Launch::new(app).resources(resources.path());
    for (name, value) in env {
        launch = launch.env(name, value);
    }
    let sc = launch.start().await?;
    for name in [GRANTED, PLAIN, MEM] {
        let component = sc.component_metadata(name).await?;
        ensure!(
            component["status"] != "failed",
            "{name} did not load: {component}"
        );
    }
    sc.put(MEM, "k", json!("v")).await?;
    ensure!(
        sc.value(MEM, "k").await? == Some(json!("v")),
        "the built-in store lost its value"
    );
    Ok(sc)
}

/// The JSON value `store` answers for `key`, failing on anything but 200 or 204.
async fn answer(sc: &Sidecar, store: &str, key: &str) -> anyhow::Result<Option<Value>> {
    sc.value(store, key)
        .await
        .with_context(|| format!("[{store}] {key}"))
}

#[tokio::test]
async fn a_component_sees_only_the_environment_variables_it_was_granted() -> anyhow::Result<()> {
    let app = AppId::new("grants-env");
    let resources = Resources::new();
    let value = common::unique_name("granted-value");
    let sc = start(
        &app,
        &resources,
        &[("env", r#"["OUTRIG_TEST_GRANTED", "OUTRIG_TEST_NOT_SET"]"#)],
        &[
            ("OUTRIG_TEST_GRANTED", &value),
            ("OUTRIG_TEST_WITHHELD", "must stay invisible"),
        ],
    )
    .await?;
    let cases: &[(&str, &str, Option<Value>)] = &[
        (GRANTED, "env=OUTRIG_TEST_GRANTED", Some(json!(value))),
        (GRANTED, "env=OUTRIG_TEST_WITHHELD", None),
        (GRANTED, "env=OUTRIG_TEST_NOT_SET", None),
        (GRANTED, "env=PATH", None),
        (GRANTED, "envnames", Some(json!(["OUTRIG_TEST_GRANTED"]))),
        (PLAIN, "env=OUTRIG_TEST_GRANTED", None),
        (PLAIN, "envnames", Some(json!([]))),
    ];
    let mut failures = Vec::new();
    for (store, key, expected) in cases {
        let got = answer(&sc, store, key).await?;
        if &got != expected {
            failures.push(format!(
                "[{store}] {key}: got {got:?}, expected {expected:?}"
            ));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    // The metadata shows what each component may touch: variables by name,
    // never by value.
    let granted = sc.component_metadata(GRANTED).await?;
    let shown: Vec<&str> = granted["grants"]
        .as_array()
        .map(|all| all.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ensure!(
        shown.contains(&"env OUTRIG_TEST_GRANTED")
            && shown.iter().any(|g| g.starts_with("memory "))
            && !granted.to_string().contains(&value),
        "{granted}"
    );
    let plain = sc.component_metadata(PLAIN).await?;
    ensure!(!plain["grants"].to_string().contains("env "), "{plain}");
    Ok(())
}

/// A tiny HTTP/1.1 server on 127.0.0.1 counting its requests: `/ok`
/// answers `body`, `/redirect?to=<url>`-style routes are given as
/// `(path, location)` pairs and answer 302 there; anything else 404.
struct TestServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    async fn start(body: String, redirects: Vec<(String, String)>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let hits = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                let redirects = redirects.clone();
                tokio::spawn(async move {
                    let path = read_request_path(&mut socket).await.unwrap_or_default();
                    let response = match redirects.iter().find(|(from, _)| *from == path) {
                        Some((_, location)) => format!(
                            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        ),
                        None if path == "/ok" => format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        ),
                        None => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    };
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Ok(TestServer { addr, hits, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The path of the request on `socket` (its head read up to the blank line, bounded).
async fn read_request_path(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    head.lines()
        .next()?
        .split_whitespace()
        .nth(1)
        .map(str::to_owned)
}

/// The reply to `GET <key>` on `store` must be 500 `ERR_STATE_GET` with the
/// guest's report of `HttpRequestDenied`.
async fn expect_denied(sc: &Sidecar, store: &str, key: &str) -> anyhow::Result<()> {
    let reply = sc.get_state(store, key).await?;
    reply
        .ensure_error(500, "ERR_STATE_GET")
        .with_context(|| format!("[{store}] {key}"))?;
    let message = reply.error_message().unwrap_or_default();
    ensure!(
        message.contains("HttpRequestDenied"),
        "{}",
        reply.describe(&format!("[{store}] {key}: expected HttpRequestDenied"))
    );
    Ok(())
}

#[tokio::test]
async fn outbound_http_reaches_only_granted_origins() -> anyhow::Result<()> {
    let app = AppId::new("grants-http");
    let resources = Resources::new();
    let body = common::unique_name("hello from the granted server");
    let other = TestServer::start("not granted".into(), Vec::new()).await?;
    let granted = TestServer::start(
        body.clone(),
        vec![
            ("/redirect-in".into(), "/ok".into()),
            ("/redirect-out".into(), other.url("/ok")),
        ],
    )
    .await?;
    let grant = format!(r#"["http://127.0.0.1:{}"]"#, granted.addr.port());
    let sc = start(
        &app,
        &resources,
        &[("http", &grant), ("timeoutMs", "5000")],
        &[],
    )
    .await?;
    let fetch = |url: String| format!("fetch={url}");

    // Granted: the body comes back, through a redirect that stays inside.
    for path in ["/ok", "/redirect-in"] {
        let got = sc.get_state(GRANTED, &fetch(granted.url(path))).await?;
        got.ensure_status(200)?;
        ensure!(
            got.text() == body,
            "{}",
            got.describe(&format!("GET {path}: expected the body"))
        );
    }
    let granted_hits = granted.hits();
    // Not granted: another port, another scheme, another name for the same
    // host, and a redirect out; and any request from a component with no grant.
    let port = granted.addr.port();
    let denied = [
        (GRANTED, fetch(other.url("/ok"))),
        (GRANTED, fetch(format!("https://127.0.0.1:{port}/ok"))),
        (GRANTED, fetch(format!("http://localhost:{port}/ok"))),
        (GRANTED, fetch(granted.url("/redirect-out"))),
        (PLAIN, fetch(granted.url("/ok"))),
    ];
    for (store, key) in &denied {
        expect_denied(&sc, store, key).await?;
    }
    ensure!(
        other.hits() == 0,
        "the server that was not granted got {} requests",
        other.hits()
    );
    ensure!(
        granted.hits() == granted_hits + 1,
        "only the redirect-out request may reach the granted server: {} more",
        granted.hits() - granted_hits
    );
    // The host says who tried to reach what.
    let warning = format!("{}/ok", other.addr);
    common::poll_until(
        "the warning naming the denied target",
        LOG_DEADLINE,
        || async {
            let logs = sc.logs();
            Ok(logs
                .lines()
                .any(|l| {
                    l.contains("denied an HTTP request")
                        && l.contains(GRANTED)
                        && l.contains(&warning)
                })
                .then_some(()))
        },
    )
    .await
    .with_context(|| sc.logs())?;
    ensure!(
        sc.value(MEM, "k").await? == Some(json!("v")),
        "the built-in store stopped serving"
    );
    Ok(())
}
