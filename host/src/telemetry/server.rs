//! `GET /metrics`: the registry as OpenMetrics text, on its own port
//! (`--metrics-port`), apart from the Dapr API and its token, as Dapr
//! serves it.

use super::Metrics;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

/// The media type of the exposition (Prometheus asks for it first).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves the process's metrics on `listener` in a task of its own until
/// `shutdown` completes, logging where (the line tests look for).
pub fn spawn(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let addr = listener.local_addr()?;
    let metrics = super::metrics().clone();
    let server = tokio::spawn(async move {
        if let Err(err) = serve(listener, metrics, shutdown).await {
            tracing::error!(error = %err, "the metrics server failed");
        }
    });
    tracing::info!("metrics served on http://{addr}/metrics");
    Ok(server)
}

/// Serves `metrics` at `/metrics` on `listener` until `shutdown` completes.
async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn scrape(State(metrics): State<Metrics>) -> Response {
    match metrics.encode() {
        Ok(text) => ([(CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "cannot encode the metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot encode the metrics",
            )
                .into_response()
        }
    }
}
