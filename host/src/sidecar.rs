//! The sidecar assembled: load components, publish them in the catalog, serve
//! the API, reload the components when they change, shut down gracefully.

use crate::api::ApiContext;
use crate::appchannel::{AppChannelConfig, DEFAULT_READY_TIMEOUT, ENV_APP_API_TOKEN};
use crate::blocks::Catalog;
use crate::blocks::pubsub::PublishSignals;
use crate::blocks::pubsub::delivery::startup::{DeliveryPlan, start_for_app};
use crate::blocks::pubsub::delivery::{Delivery, DeliverySettings, DeliveryStatus};
use crate::components::{ComponentHost, LoadContext};
use crate::config::settings::SidecarSettings;
use crate::reload::watch::ResourceWatcher;
use crate::reload::{Reloader, ResourceSource};
use crate::runtime::{ArtifactCache, RuntimeEngine};
use anyhow::Context;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;

/// A started sidecar.
pub struct RunningSidecar {
    /// Where the HTTP API listens.
    pub http_addr: SocketAddr,
    /// Where the gRPC API listens.
    pub grpc_addr: SocketAddr,
    /// Notified when the sidecar is asked to stop (`POST /v1.0/shutdown`, gRPC `Shutdown`).
    pub shutdown: Arc<Notify>,
    /// Reloads the components (`SIGHUP`; the API and the file watch hold it too).
    pub reloader: Arc<Reloader>,
    /// The watch on the resources directory, stopped when the sidecar is.
    _watcher: Option<ResourceWatcher>,
    /// Pub/sub delivery to the app, once the app listens.
    delivery: DeliveryHandle,
    /// The API servers (HTTP, gRPC), each stopping when `stop` turns true.
    servers: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    /// Held for as long as the sidecar runs: the epoch ticker, which stops
    /// guests past their deadline, runs only while an engine handle lives.
    _engine: RuntimeEngine,
}

impl RunningSidecar {
    /// Stops pulling pub/sub messages and waits until the events in flight
    /// to the app are settled; call it before stopping the app, so nothing
    /// the app was handed is cut off. Later calls do nothing.
    pub async fn stop_delivery(&self) {
        self.delivery.stop().await;
    }

    /// Stops delivery, stops accepting requests, lets in-flight ones
    /// finish, and returns.
    pub async fn stop(self) {
        self.delivery.stop().await;
        self.stop.send_replace(true);
        for server in self.servers {
            if let Err(err) = server.await {
                tracing::warn!(error = %err, "an API server task ended abnormally");
            }
        }
    }
}

/// Delivery to the app: starting (waiting for the app to listen), running,
/// or stopped.
struct DeliveryHandle {
    starting: Option<JoinHandle<()>>,
    running: Arc<Mutex<Option<Delivery>>>,
}

impl DeliveryHandle {
    fn none() -> Self {
        DeliveryHandle {
            starting: None,
            running: Arc::new(Mutex::new(None)),
        }
    }

    /// Starts delivery in the background once the app listens.
    fn spawn(config: AppChannelConfig, plan: DeliveryPlan) -> Self {
        let running = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&running);
        let status = Arc::clone(&plan.status);
        let starting = tokio::spawn(async move {
            match start_for_app(config, plan).await {
                Ok(delivery) => *slot.lock().await = Some(delivery),
                Err(err) => {
                    tracing::error!(error = %err, "pub/sub delivery to the app did not start");
                    status.set_running(Vec::new());
                }
            }
        });
        DeliveryHandle {
            starting: Some(starting),
            running,
        }
    }

    async fn stop(&self) {
        if let Some(starting) = &self.starting {
            starting.abort();
        }
        if let Some(delivery) = self.running.lock().await.take() {
            delivery.stop().await;
        }
    }
}

/// Completes once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopped| *stopped).await;
}

/// Listens on `address:port`; a port that is taken fails the start, naming
/// the `flag` that set it.
async fn listen(address: IpAddr, port: u16, flag: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind((address, port))
        .await
        .with_context(|| format!("cannot listen on {address}:{port} ({flag})"))
}

/// Loads the components and starts serving. Returns once the API accepts
/// requests, so the app may be started right after.
pub async fn start(settings: &SidecarSettings) -> anyhow::Result<RunningSidecar> {
    let started = Instant::now();
    let source = ResourceSource::from_settings(settings)?;
    let resources = source
        .read_all()
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
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
    let catalog = Arc::new(Catalog::default());
    if !resources.delivery.inbound_retries.is_empty() {
        tracing::info!(components = ?resources.delivery.inbound_retries.keys().collect::<Vec<_>>(), "inbound retry policies (Resiliency)");
    }
    let reloader = Arc::new(Reloader::new(host, base, source, Arc::clone(&catalog)));
    reloader.load_initial(resources).await;
    let signals = Arc::new(PublishSignals::default());
    let delivery_status = Arc::new(DeliveryStatus::new(settings.app_port.is_some()));
    let delivery = match settings.app_port {
        Some(port) => DeliveryHandle::spawn(
            AppChannelConfig {
                protocol: settings.app_protocol,
                address: SocketAddr::from(([127, 0, 0, 1], port)),
                app_token: std::env::var(ENV_APP_API_TOKEN).ok(),
                ready_timeout: DEFAULT_READY_TIMEOUT,
            },
            DeliveryPlan {
                app_id: settings.app_id.clone(),
                catalog: Arc::clone(&catalog),
                signals: Arc::clone(&signals),
                declared: reloader.follow_declared(),
                settings: DeliverySettings::default(),
                status: Arc::clone(&delivery_status),
            },
        ),
        None => DeliveryHandle::none(),
    };

    let shutdown = Arc::new(Notify::new());
    let ctx = Arc::new(ApiContext {
        app_id: settings.app_id.clone(),
        api_token: settings.api_token.clone(),
        catalog,
        publish_signals: Arc::clone(&signals),
        delivery: delivery_status,
        shutdown: Arc::clone(&shutdown),
        extended: Default::default(),
    });
    let address = settings.listen_address;
    let listener = listen(address, settings.http_port, "--dapr-http-port").await?;
    let http_addr = listener.local_addr()?;
    let grpc_listener = listen(address, settings.grpc_port, "--dapr-grpc-port").await?;
    let grpc_addr = grpc_listener.local_addr()?;
    // As in Dapr, a metrics port that is taken stops the start.
    let metrics_listener = match settings.metrics_port {
        Some(port) => Some(
            listen(
                address,
                port,
                "--metrics-port; --enable-metrics=false turns metrics off",
            )
            .await?,
        ),
        None => None,
    };
    let (stop, stop_signal) = watch::channel(false);
    let mut servers = Vec::new();
    if let Some(listener) = metrics_listener {
        let shutdown = stopped(stop_signal.clone());
        servers.push(crate::telemetry::server::spawn(listener, shutdown)?);
    }
    let grpc_stop = stopped(stop_signal.clone());
    let grpc_ctx = Arc::clone(&ctx);
    let grpc_server = tokio::spawn(async move {
        if let Err(err) = crate::api::grpc::serve(grpc_listener, grpc_ctx, grpc_stop).await {
            tracing::error!(error = %err, "the gRPC API server failed");
        }
    });
    let router = crate::api::http::router_with_reload(ctx, reloader.clone());
    let server = tokio::spawn(async move {
        let serve = axum::serve(listener, router).with_graceful_shutdown(stopped(stop_signal));
        if let Err(err) = serve.await {
            tracing::error!(error = %err, "the HTTP API server failed");
        }
    });
    let watcher = if settings.watch_resources {
        crate::reload::watch::spawn(Arc::clone(&reloader))
            .await
            .context("watching the resources directory")?
    } else {
        None
    };
    servers.extend([server, grpc_server]);
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
        reloader,
        _watcher: watcher,
        delivery,
        servers,
        stop,
        _engine: engine,
    })
}
