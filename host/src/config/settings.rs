//! Sidecar settings: every knob, its environment name and its default, in one place.

use std::net::IpAddr;
use std::path::PathBuf;

/// Dapr's default HTTP API port.
pub const DEFAULT_HTTP_PORT: u16 = 3500;
/// Dapr's default gRPC API port.
pub const DEFAULT_GRPC_PORT: u16 = 50001;
/// Dapr's default port for Prometheus metrics (`/metrics`).
pub const DEFAULT_METRICS_PORT: u16 = 9090;
/// Where resource YAML is read from when `--resources-path` is not given.
pub const DEFAULT_RESOURCES_PATH: &str = "./components";
/// The API token apps must present when set (Dapr's name).
pub const ENV_API_TOKEN: &str = "DAPR_API_TOKEN";
/// Overrides Outrig's home directory (`~/.outrig`): compiled cache and embedded data.
pub const ENV_HOME: &str = "OUTRIG_HOME";
/// The name of the embedded default state store, as in Dapr's self-hosted defaults.
pub const DEFAULT_STATE_STORE_NAME: &str = "statestore";
/// The name of the embedded default pub/sub, as in Dapr's self-hosted defaults.
pub const DEFAULT_PUBSUB_NAME: &str = "pubsub";

/// What the sidecar needs to start.
#[derive(Debug, Clone)]
pub struct SidecarSettings {
    /// The app id; state keys are prefixed with it.
    pub app_id: String,
    /// Address the APIs listen on.
    pub listen_address: IpAddr,
    /// HTTP API port; 0 picks a free one.
    pub http_port: u16,
    /// gRPC API port; 0 picks a free one.
    pub grpc_port: u16,
    /// Port of `/metrics` (Prometheus) on `listen_address`; 0 picks a free
    /// one; `None` serves no metrics (`--enable-metrics=false`).
    pub metrics_port: Option<u16>,
    /// Resource YAML directory.
    pub resources_path: PathBuf,
    /// Whether `resources_path` was given explicitly (then it must exist).
    pub resources_path_explicit: bool,
    /// Outrig's home: `cache/` for compiled components, `data/` for embedded stores.
    pub home: PathBuf,
    /// `DAPR_API_TOKEN`.
    pub api_token: Option<String>,
    /// Whether a change in the resources directory reloads the components
    /// (`--no-watch` turns it off; `SIGHUP` and the reload route remain).
    pub watch_resources: bool,
    /// The app's port (`--app-port`); without one nothing is delivered to
    /// the app (no pub/sub subscriptions).
    pub app_port: Option<u16>,
    /// How the sidecar talks to the app (`--app-protocol`).
    pub app_protocol: crate::appchannel::AppProtocol,
}

impl SidecarSettings {
    /// Where compiled components are cached.
    pub fn cache_dir(&self) -> PathBuf {
        self.home.join("cache")
    }

    /// Where this app's embedded stores keep their data.
    pub fn data_dir(&self) -> PathBuf {
        self.home.join("data").join(&self.app_id)
    }
}

/// `$OUTRIG_HOME`, else `~/.outrig`, else `./.outrig` where there is no home.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os(ENV_HOME) {
        return PathBuf::from(home);
    }
    dirs::home_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".outrig")
}
