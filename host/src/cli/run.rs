//! `outrig run`: the sidecar first, healthy, then the app; signals forwarded;
//! both shut down together; the exit code is the app's.

use super::RunArgs;
use super::app_process::{AppEnvironment, AppProcess, exit_code};
use crate::sidecar;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

/// Runs the sidecar (and the app, if a command was given) until one of them
/// stops. Returns the process exit code.
pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let settings = args.settings();
    let running = sidecar::start(&settings).await?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let shutdown = std::sync::Arc::clone(&running.shutdown);

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
    let status = tokio::select! {
        status = app.wait() => status?,
        _ = interrupt.recv() => app.stop(Signal::SIGINT).await?,
        _ = terminate.recv() => app.stop(Signal::SIGTERM).await?,
        _ = quit.recv() => app.stop(Signal::SIGQUIT).await?,
        _ = shutdown.notified() => app.stop(Signal::SIGTERM).await?,
    };
    let code = exit_code(status);
    tracing::info!(code, "app exited; shutting down the sidecar");
    running.stop().await;
    Ok(code)
}
