//! `outrig run`: the sidecar first, healthy, then the app; signals forwarded;
//! both shut down together; the exit code is the app's. `SIGHUP` reloads the
//! components instead.

use super::RunArgs;
use super::app_process::{AppEnvironment, AppProcess, exit_code};
use crate::mesh::identity::{DEFAULT_NAMESPACE, DEFAULT_TRUST_DOMAIN};
use crate::mesh::{self, WorkloadCredentials, WorkloadIdentity};
use crate::reload::{ReloadCause, ReloadTrigger, Reloader};
use crate::sidecar;
use nix::sys::signal::Signal;
use std::sync::Arc;
use tokio::signal::unix::{Signal as SignalStream, SignalKind, signal};
use tokio::task::JoinHandle;

/// The environment variable naming the app's namespace (Dapr's, self-hosted).
const ENV_NAMESPACE: &str = "NAMESPACE";

/// Runs the sidecar (and the app, if a command was given) until one of them
/// stops. Returns the process exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let settings = args.settings();
    // Taken before the sidecar says it is ready, so that a SIGHUP sent as
    // soon as it is reloads the components rather than ending the process.
    let hangup = signal(SignalKind::hangup())?;
    let _credentials = self_issued_credentials(&args)?;
    let running = sidecar::start(&settings).await?;
    let _reloads = ReloadOnHangup::spawn(hangup, Arc::clone(&running.reloader));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let shutdown = Arc::clone(&running.shutdown);

    if args.command.is_empty() {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("interrupted; shutting down"),
            _ = terminate.recv() => tracing::info!("terminated; shutting down"),
            _ = quit.recv() => tracing::info!("quit; shutting down"),
            _ = shutdown.notified() => tracing::info!("shutdown requested through the API"),
        }
        running.stop().await;
        return Ok(0);
    }

    let env = AppEnvironment {
        http_port: running.http_addr.port(),
        grpc_port: running.grpc_addr.port(),
        app_id: settings.app_id.clone(),
        app_port: args.app_port,
    };
    let mut app = AppProcess::spawn(&args.command, &env)?;
    tracing::info!(command = ?args.command, "app started");
    // Delivery stops (and its events in flight settle) before the app is
    // asked to stop, so the app is never cut off mid-event.
    let stop_with = tokio::select! {
        status = app.wait() => Err(status?),
        _ = interrupt.recv() => Ok(Signal::SIGINT),
        _ = terminate.recv() => Ok(Signal::SIGTERM),
        _ = quit.recv() => Ok(Signal::SIGQUIT),
        _ = shutdown.notified() => Ok(Signal::SIGTERM),
    };
    let status = match stop_with {
        Err(status) => status,
        Ok(signal) => {
            running.stop_delivery().await;
            app.stop(signal).await?
        }
    };
    let code = exit_code(status);
    tracing::info!(code, "app exited; shutting down the sidecar");
    running.stop().await;
    Ok(code)
}

/// The sidecar's own workload certificate when `--issuer-cert` and friends
/// are given: issued now, its SPIFFE id and expiry logged, renewed for as
/// long as the process runs. Nothing presents it yet (service invocation over
/// mTLS will); issuing it at start refuses a broken CA setup early.
fn self_issued_credentials(args: &RunArgs) -> anyhow::Result<Option<Arc<WorkloadCredentials>>> {
    let Some(files) = args.issuer_files() else {
        return Ok(None);
    };
    let namespace = std::env::var(ENV_NAMESPACE).unwrap_or_else(|_| DEFAULT_NAMESPACE.to_owned());
    let id = WorkloadIdentity::new(DEFAULT_TRUST_DOMAIN, &namespace, &args.app_id)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let credentials = Arc::new(mesh::self_issue(&files, id, provider)?);
    tracing::info!(
        spiffe_id = %credentials.identity(),
        not_after = %humantime::format_rfc3339_seconds(credentials.not_after()),
        "issued the workload certificate"
    );
    tokio::spawn(Arc::clone(&credentials).keep_renewed());
    Ok(Some(credentials))
}

/// Reloads the components at every `SIGHUP`, until dropped.
struct ReloadOnHangup(JoinHandle<()>);

impl ReloadOnHangup {
    fn spawn(mut hangup: SignalStream, reloader: Arc<Reloader>) -> Self {
        ReloadOnHangup(tokio::spawn(async move {
            while hangup.recv().await.is_some() {
                tracing::info!("hangup: reloading the components");
                reloader.reload(ReloadCause::Signal).await;
            }
        }))
    }
}

impl Drop for ReloadOnHangup {
    fn drop(&mut self) {
        self.0.abort();
    }
}
