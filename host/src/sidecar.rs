//! The sidecar assembled: load components, publish them in the catalog, serve
//! the API, shut down gracefully.

use crate::api::ApiContext;
use crate::blocks::Catalog;
use crate::blocks::catalog::CatalogSnapshot;
use crate::components::{ComponentHost, LoadContext};
use crate::config::resources::{self, ComponentResource, MetadataEntry, MetadataValue};
use crate::config::settings::{DEFAULT_STATE_STORE_NAME, SidecarSettings};
use crate::runtime::{ArtifactCache, RuntimeEngine};
use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// A started sidecar.
pub struct RunningSidecar {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// Notified when the sidecar is asked to stop (`POST /v1.0/shutdown`, gRPC `Shutdown`).
    pub shutdown: Arc<Notify>,
    /// The API servers (HTTP, gRPC), each stopping when `stop` turns true.
    servers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Held for as long as the sidecar runs: the epoch ticker, which stops
    /// guests past their deadline, runs only while an engine handle lives.
    _engine: RuntimeEngine,
}

impl RunningSidecar {
    /// Stops accepting requests, lets in-flight ones finish, and returns.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for server in self.servers {
            if let Err(err) = server.await {
                tracing::warn!(error = %err, "an API server task ended abnormally");
            }
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Loads the components and starts serving. Returns once the API accepts
/// requests, so the app may be started right after.
pub async fn start(settings: &SidecarSettings) -> anyhow::Result<RunningSidecar> {
    let started = Instant::now();
    let resources = component_resources(settings)?;
    let engine = RuntimeEngine::new()?;
    let host = ComponentHost::new(
        engine.clone(),
        ArtifactCache::new(Some(settings.cache_dir())),
    )?;
    let base = LoadContext {
        app_id: settings.app_id.clone(),
        component_name: String::new(),
        base_dir: settings.resources_path.clone(),
        data_dir: settings.data_dir(),
    };
    let loads = resources.iter().map(|resource| {
        let mut ctx = base.clone();
        if let Some(dir) = resource.source.parent() {
            ctx.base_dir = dir.to_path_buf();
        }
        let host = &host;
        async move { host.load(resource, &ctx).await }
    });
    let mut snapshot = CatalogSnapshot::default();
    for entry in futures::future::join_all(loads).await {
        snapshot.entries.insert(entry.info.name.clone(), entry);
    }
    let catalog = Arc::new(Catalog::new(snapshot));

    let shutdown = Arc::new(Notify::new());
    let ctx = Arc::new(ApiContext {
        app_id: settings.app_id.clone(),
        api_token: settings.api_token.clone(),
        catalog,
        shutdown: Arc::clone(&shutdown),
        extended: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind((settings.listen_address, settings.http_port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (--dapr-http-port)",
                settings.listen_address, settings.http_port
            )
        })?;
    let http_addr = listener.local_addr()?;
    let grpc_listener =
        tokio::net::TcpListener::bind((settings.listen_address, settings.grpc_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{} (--dapr-grpc-port)",
                    settings.listen_address, settings.grpc_port
                )
            })?;
    let grpc_addr = grpc_listener.local_addr()?;
    let (stop, stop_signal) = watch::channel(false);
    let grpc_stop = stopped(stop_signal.clone());
    let grpc_ctx = Arc::clone(&ctx);
    let grpc_server = tokio::spawn(async move {
        if let Err(err) = crate::api::grpc::serve(grpc_listener, grpc_ctx, grpc_stop).await {
            tracing::error!(error = %err, "the gRPC API server failed");
        }
    });
    let router = crate::api::http::router(ctx);
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stopped(stop_signal));
        if let Err(err) = serve.await {
            tracing::error!(error = %err, "the HTTP API server failed");
        }
    });
    tracing::info!("gRPC API listening on {grpc_addr}");
    tracing::info!(
        app_id = %settings.app_id,
        http = %http_addr,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "outrig is ready: HTTP API listening on {http_addr}"
    );
    Ok(RunningSidecar {
        http_addr,
        grpc_addr,
        shutdown,
        servers: vec![server, grpc_server],
        stop,
        _engine: engine,
    })
}

/// The component resources to load: the YAML in the resources directory, or
/// the embedded defaults when there is none.
fn component_resources(settings: &SidecarSettings) -> anyhow::Result<Vec<ComponentResource>> {
    let dir = &settings.resources_path;
    if !dir.is_dir() {
        if settings.resources_path_explicit {
            bail!("--resources-path {}: not a directory", dir.display());
        }
        tracing::info!(
            "no resources directory at {}; serving the embedded defaults",
            dir.display()
        );
        return Ok(embedded_defaults(&settings.data_dir()));
    }
    let all = resources::load_dir(dir).map_err(|errors| anyhow::anyhow!("{errors}"))?;
    Ok(all
        .into_iter()
        .filter(|resource| {
            let in_scope = resource.scopes.is_empty() || resource.scopes.contains(&settings.app_id);
            if !in_scope {
                tracing::info!(component = %resource.name, "skipped: app id not in its scopes");
            }
            in_scope
        })
        .collect())
}

/// A durable file-backed state store under Outrig's home, named as Dapr's
/// self-hosted default so apps written for Dapr find it.
fn embedded_defaults(data_dir: &Path) -> Vec<ComponentResource> {
    vec![ComponentResource {
        name: DEFAULT_STATE_STORE_NAME.into(),
        namespace: None,
        component_type: "state.redb".into(),
        version: "v1".into(),
        metadata: vec![MetadataEntry {
            name: "dataDir".into(),
            value: MetadataValue::Plain(
                data_dir
                    .join(DEFAULT_STATE_STORE_NAME)
                    .display()
                    .to_string(),
            ),
        }],
        scopes: Vec::new(),
        wasm: None,
        source: "embedded default".into(),
    }]
}
