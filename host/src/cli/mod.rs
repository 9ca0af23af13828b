//! The `outrig` command line.

pub mod app_process;
pub mod ca;
pub mod inspect;
pub mod run;
pub mod validate;

use crate::appchannel::AppProtocol;
use crate::config::settings::{
    self, DEFAULT_GRPC_PORT, DEFAULT_HTTP_PORT, DEFAULT_METRICS_PORT, DEFAULT_RESOURCES_PATH,
};
use clap::{ArgAction, Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

/// A WebAssembly-extensible sidecar, wire-compatible with Dapr's v1 API.
#[derive(Debug, Parser)]
#[command(name = "outrig", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// Log filter (`info`, `debug`, `outrig=trace`, …); `RUST_LOG` overrides it.
    #[arg(long, global = true, default_value = "info")]
    pub log_level: String,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub log_as_json: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the sidecar, then (optionally) the app after `--`.
    Run(RunArgs),
    /// Work with components without running the sidecar.
    #[command(subcommand)]
    Components(ComponentsCommand),
    /// Make the mesh's trust root and issue workload certificates.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Print the version.
    Version,
}

/// `outrig components …`.
#[derive(Debug, Subcommand)]
pub enum ComponentsCommand {
    /// Print a component's world, imports and exports, and what the
    /// resource YAML that loads it grants.
    Inspect(InspectArgs),
    /// Check the resources directory without starting anything: YAML,
    /// unknown fields, types, `.wasm` files and sha256 pins.
    Validate(ValidateArgs),
}

/// `outrig ca …`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create a trust root: `ca.crt` (self-signed CA) and `ca.key` (mode 0600).
    Init(CaInitArgs),
    /// Issue a workload certificate for an app id: `<app-id>.crt` (the leaf
    /// alone; its trust anchor is the CA's `ca.crt`) and `<app-id>.key` (0600).
    Issue(CaIssueArgs),
}

/// `outrig ca init`.
#[derive(Debug, Args)]
pub struct CaInitArgs {
    /// Directory to write `ca.crt` and `ca.key` to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The trust domain whose workloads this CA vouches for.
    #[arg(long, default_value = crate::mesh::identity::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// How long the root is valid, in days.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub valid_days: u64,
    /// Overwrite an existing `ca.crt`/`ca.key`.
    #[arg(long)]
    pub force: bool,
}

/// `outrig ca issue`.
#[derive(Debug, Args)]
pub struct CaIssueArgs {
    /// Directory holding the CA's `ca.crt` and `ca.key` (from `ca init`).
    #[arg(long)]
    pub ca: PathBuf,
    /// The app id the certificate is for.
    #[arg(long)]
    pub app_id: String,
    /// The app's namespace.
    #[arg(long, default_value = crate::mesh::identity::DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// The trust domain of the app's SPIFFE id.
    #[arg(long, default_value = crate::mesh::identity::DEFAULT_TRUST_DOMAIN)]
    pub trust_domain: String,
    /// How long the certificate is valid, in hours.
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=87_600))]
    pub valid_hours: u64,
    /// Directory to write `<app-id>.crt` and `<app-id>.key` to (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Overwrite an existing `<app-id>.crt`/`<app-id>.key`.
    #[arg(long)]
    pub force: bool,
}

/// `outrig components validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Directory of Dapr resource YAML (default `./components`).
    #[arg(long)]
    pub resources_path: Option<PathBuf>,
}

/// `outrig components inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component's `.wasm` file.
    pub wasm: PathBuf,
    /// Directory of Dapr resource YAML to find the grants in.
    #[arg(long)]
    pub resources_path: Option<PathBuf>,
    /// Outrig's home, whose compiled-component cache is used.
    #[arg(long, env = settings::ENV_HOME)]
    pub home: Option<PathBuf>,
}

/// `outrig run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The app's id; state keys are prefixed with it.
    #[arg(long)]
    pub app_id: String,
    /// The port the app listens on (passed to it as `APP_PORT`).
    #[arg(long)]
    pub app_port: Option<u16>,
    /// How the sidecar talks to the app.
    #[arg(long, default_value = "http", value_parser = ["http", "grpc"])]
    pub app_protocol: String,
    /// The HTTP API port (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_HTTP_PORT)]
    pub dapr_http_port: u16,
    /// The gRPC API port (0 picks a free one).
    #[arg(long, default_value_t = DEFAULT_GRPC_PORT)]
    pub dapr_grpc_port: u16,
    /// The address the APIs (and `/metrics`) listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub dapr_listen_address: IpAddr,
    /// The port Prometheus metrics are served on, at `/metrics` (0 picks a
    /// free one). The sidecar does not start if it cannot listen there.
    #[arg(long, default_value_t = DEFAULT_METRICS_PORT)]
    pub metrics_port: u16,
    /// Whether to serve metrics; `--enable-metrics=false` turns them off.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub enable_metrics: bool,
    /// Directory of Dapr resource YAML; without one, embedded defaults serve.
    #[arg(long)]
    pub resources_path: Option<PathBuf>,
    /// Outrig's home: compiled-component cache and embedded data.
    #[arg(long, env = settings::ENV_HOME)]
    pub home: Option<PathBuf>,
    /// Do not reload when the resources change on disk (`SIGHUP` and
    /// `POST /v1.0/outrig/reload` still do).
    #[arg(long)]
    pub no_watch: bool,
    /// PEM bundle of the CAs whose workloads this sidecar trusts; with
    /// `--issuer-cert` and `--issuer-key` the sidecar issues itself a
    /// short-lived workload certificate at start and renews it.
    #[arg(long, requires_all = ["issuer_cert", "issuer_key"])]
    pub trust_anchors: Option<PathBuf>,
    /// PEM certificate of the CA that issues this sidecar's certificate.
    #[arg(long, requires = "trust_anchors")]
    pub issuer_cert: Option<PathBuf>,
    /// PEM private key of that CA.
    #[arg(long, requires = "trust_anchors")]
    pub issuer_key: Option<PathBuf>,
    /// The app's command line.
    #[arg(last = true)]
    pub command: Vec<String>,
}

impl RunArgs {
    /// The CA files to issue the sidecar's certificate from, when given
    /// (clap makes sure all three come together).
    pub fn issuer_files(&self) -> Option<crate::mesh::IssuerFiles> {
        Some(crate::mesh::IssuerFiles {
            trust_anchors: self.trust_anchors.clone()?,
            issuer_cert: self.issuer_cert.clone()?,
            issuer_key: self.issuer_key.clone()?,
        })
    }

    /// The sidecar's settings from the arguments and environment.
    pub fn settings(&self) -> settings::SidecarSettings {
        settings::SidecarSettings {
            app_id: self.app_id.clone(),
            listen_address: self.dapr_listen_address,
            http_port: self.dapr_http_port,
            grpc_port: self.dapr_grpc_port,
            metrics_port: self.enable_metrics.then_some(self.metrics_port),
            resources_path: self
                .resources_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(DEFAULT_RESOURCES_PATH)),
            resources_path_explicit: self.resources_path.is_some(),
            home: self.home.clone().unwrap_or_else(settings::default_home),
            watch_resources: !self.no_watch,
            app_port: self.app_port,
            app_protocol: AppProtocol::parse(&self.app_protocol).unwrap_or(AppProtocol::Http),
            api_token: std::env::var(settings::ENV_API_TOKEN)
                .ok()
                .filter(|token| !token.is_empty()),
        }
    }
}
