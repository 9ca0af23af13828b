//! `outrig run … -- CMD`: the app starts once the sidecar is healthy, gets the
//! sidecar's coordinates in its environment, receives the signals sent to
//! outrig, and outrig exits with the app's exit code.

mod common;

use anyhow::{Context, ensure};
use common::{AppId, Launch, Sidecar};
use nix::sys::signal::Signal;
use std::path::Path;
use std::time::Duration;

/// How long an app may take to show it started.
const APP_START_DEADLINE: Duration = Duration::from_secs(60);

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[tokio::test]
async fn the_app_gets_the_coordinates_and_outrig_returns_its_exit_code() -> anyhow::Result<()> {
    let app = AppId::new("cli-env");
    let dir = tempfile::tempdir()?;
    let grpc_port = common::free_port()?;
    // The app checks the sidecar's outbound side is healthy as soon as it
    // starts (what Dapr SDKs wait for), records its environment and the
    // full probe (not ready: nothing listens on the app port, so delivery
    // to the app cannot be in place), and exits with 7.
    let script = r#"echo "$DAPR_HTTP_PORT $DAPR_GRPC_PORT $APP_ID $APP_PORT" > env.txt
curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/healthz/outbound" > health.txt
curl -s "http://127.0.0.1:$DAPR_HTTP_PORT/v1.0/healthz" > full.txt
exit 7"#;
    let mut sc = Launch::new(&app)
        .workdir(dir.path())
        .args(&["--app-port", "1234"])
        .grpc_port(grpc_port)
        .app(&["sh", "-c", script])
        .start()
        .await?;
    let status = sc.wait_exit().await?;
    ensure!(
        status.code() == Some(7),
        "outrig exited with {status}, the app with 7\n{}",
        sc.logs()
    );

    let env = read(&dir.path().join("env.txt"))?;
    let expected = format!("{} {grpc_port} {} 1234", sc.addr.port(), app.as_str());
    ensure!(
        env.trim() == expected,
        "the app saw `{}`, expected `{expected}`",
        env.trim()
    );
    let health = read(&dir.path().join("health.txt"))?;
    ensure!(
        health.trim() == "204",
        "healthz/outbound answered `{health}` when the app started"
    );
    let full = read(&dir.path().join("full.txt"))?;
    ensure!(
        full.contains("ERR_HEALTH_NOT_READY"),
        "healthz answered `{full}` while the app did not listen"
    );
    Ok(())
}

/// How a running outrig is asked to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    Signal(Signal),
    ShutdownApi,
}

/// Starts an app that records the signal it gets and exits 0, stops outrig
/// with `stop`, and checks the app got `expected` and both exited.
async fn stop_forwards_to_the_app(stop: Stop, expected: &str) -> anyhow::Result<()> {
    let app = AppId::new("cli-signal");
    let dir = tempfile::tempdir()?;
    // Bounded, so a failed forward leaves no process behind for long.
    let script = r#"trap 'echo TERM > got.txt; exit 0' TERM
trap 'echo INT > got.txt; exit 0' INT
echo up > started.txt
i=0
while [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
exit 3"#;
    let mut sc = Launch::new(&app)
        .workdir(dir.path())
        .app(&["sh", "-c", script])
        .start()
        .await?;
    let started = dir.path().join("started.txt");
    common::poll_until("the app starts", APP_START_DEADLINE, async || {
        Ok(started.exists().then_some(()))
    })
    .await?;

    match stop {
        Stop::Signal(signal) => sc.signal(signal)?,
        Stop::ShutdownApi => {
            sc.call(reqwest::Method::POST, "/v1.0/shutdown", None)
                .await?
                .ensure_status(204)?;
        }
    }
    let status = sc.wait_exit().await?;
    ensure!(
        status.code() == Some(0),
        "outrig exited with {status}, the app with 0\n{}",
        sc.logs()
    );
    let got = read(&dir.path().join("got.txt"))
        .with_context(|| format!("the app never got {expected}\n{}", sc.logs()))?;
    ensure!(
        got.trim() == expected,
        "the app got {got:?}, expected {expected}"
    );
    ensure_gone(&sc).await
}

/// Fails if the sidecar still answers.
async fn ensure_gone(sc: &Sidecar) -> anyhow::Result<()> {
    let answer = sc
        .request(reqwest::Method::GET, "/v1.0/healthz")
        .send()
        .await;
    ensure!(
        answer.is_err(),
        "the sidecar still answers after exiting: {answer:?}"
    );
    Ok(())
}

#[tokio::test]
async fn sigterm_sigint_and_shutdown_reach_the_app_and_both_exit() -> anyhow::Result<()> {
    let cases = [
        (Stop::Signal(Signal::SIGTERM), "TERM"),
        (Stop::Signal(Signal::SIGINT), "INT"),
        (Stop::ShutdownApi, "TERM"),
    ];
    let runs = cases.map(|(stop, expected)| async move {
        stop_forwards_to_the_app(stop, expected)
            .await
            .with_context(|| format!("stopping with {stop:?}"))
    });
    let failures: Vec<String> = futures::future::join_all(runs)
        .await
        .into_iter()
        .filter_map(|r| r.err().map(|e| format!("{e:#}")))
        .collect();
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

#[tokio::test]
async fn an_app_that_cannot_start_fails_the_run() -> anyhow::Result<()> {
    let app = AppId::new("cli-noapp");
    let (status, output) = Launch::new(&app)
        .app(&["/nonexistent/outrig-test-app"])
        .run_to_exit()
        .await?;
    ensure!(
        !status.success(),
        "outrig succeeded without its app:\n{output}"
    );
    ensure!(
        output.contains("/nonexistent/outrig-test-app"),
        "the error does not name the app:\n{output}"
    );
    Ok(())
}

#[tokio::test]
async fn version_prints_the_package_version() -> anyhow::Result<()> {
    let output = tokio::process::Command::new(common::outrig_bin())
        .arg("version")
        .output()
        .await?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "outrig version failed: {output:?}");
    ensure!(
        stdout.contains(env!("CARGO_PKG_VERSION")),
        "outrig version printed `{stdout}`"
    );
    Ok(())
}
