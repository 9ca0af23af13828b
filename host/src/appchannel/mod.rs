//! The app channel: how the sidecar calls its app.
//!
//! Building blocks that deliver to the app (service invocation, pub/sub,
//! input bindings) do it through [`AppChannel`], never through a protocol
//! directly, so they work the same whether the app speaks HTTP or gRPC
//! (`--app-protocol`). The parts:
//! - [`http`]: a pooled hyper client calling the app's routes;
//! - [`grpc`]: a tonic client of the app's `AppCallback` service;
//! - [`open`]: waits until the app listens, then builds the right channel.
//!
//! Every call carries `APP_API_TOKEN` as `dapr-api-token` when it is set, so
//! the app can tell its sidecar from anyone else.

pub mod events;
pub mod grpc;
pub mod http;

#[cfg(test)]
mod tests;

use crate::blocks::pubsub::subscription::SubscriptionSpec;
use events::{BulkDelivery, TopicDelivery, Verdict};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The environment variable holding the token the sidecar presents to the app.
pub const ENV_APP_API_TOKEN: &str = "APP_API_TOKEN";
/// The header (HTTP) or metadata key (gRPC) the app token travels in, as in Dapr.
pub const APP_TOKEN_HEADER: &str = "dapr-api-token";
/// How long [`open`] waits for the app's port by default.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How the app listens (`--app-protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    /// Plain HTTP/1.1 routes.
    Http,
    /// The `dapr.proto.runtime.v1.AppCallback` gRPC service (HTTP/2, no TLS).
    Grpc,
}

impl AppProtocol {
    /// Parses `--app-protocol`'s value.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "http" => Some(AppProtocol::Http),
            "grpc" => Some(AppProtocol::Grpc),
            _ => None,
        }
    }
}

/// Where and how to reach the app.
#[derive(Debug, Clone)]
pub struct AppChannelConfig {
    /// The app's protocol.
    pub protocol: AppProtocol,
    /// The app's address (`127.0.0.1:<app-port>`).
    pub address: SocketAddr,
    /// `APP_API_TOKEN`, sent with every call when set.
    pub app_token: Option<String>,
    /// How long to wait for the app to listen.
    pub ready_timeout: Duration,
}

/// A call to one of the app's methods (service invocation).
#[derive(Debug, Clone, Default)]
pub struct AppRequest {
    /// The method, e.g. `orders/new` (no leading slash).
    pub method: String,
    /// The HTTP verb; gRPC apps receive it as the HTTP extension.
    pub verb: String,
    /// The query string, without `?`.
    pub query: String,
    /// The body's media type.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// The app's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppResponse {
    /// The HTTP status (200 for a gRPC app's success).
    pub status: u16,
    /// The body's media type.
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

/// Why a call to the app failed.
#[derive(Debug, thiserror::Error)]
pub enum AppChannelError {
    /// The app did not listen on its port in time.
    #[error("the app did not listen on {address} within {waited:?}")]
    NotReady {
        /// The app's address.
        address: SocketAddr,
        /// How long the sidecar waited.
        waited: Duration,
    },
    /// The app could not be reached or the exchange broke off.
    #[error("cannot reach the app: {0}")]
    Unreachable(String),
    /// A gRPC app answered with an error status.
    #[error("the app answered {code:?}: {message}")]
    Status {
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
    /// The request cannot be expressed on the app's protocol.
    #[error("invalid request for the app: {0}")]
    InvalidRequest(String),
}

/// How the sidecar calls its app, whatever the protocol.
#[async_trait::async_trait]
pub trait AppChannel: Send + Sync {
    /// Invokes one of the app's methods.
    async fn invoke(&self, request: AppRequest) -> Result<AppResponse, AppChannelError>;
    /// Asks whether the app is healthy (`GET /healthz`, gRPC `HealthCheck`).
    async fn health_check(&self) -> Result<(), AppChannelError>;
    /// The app's programmatic subscriptions (`GET /dapr/subscribe`, gRPC
    /// `ListTopicSubscriptions`); none when the app does not offer them.
    async fn subscriptions(&self) -> Result<Vec<SubscriptionSpec>, AppChannelError>;
    /// Delivers one pub/sub event and says what the app made of it.
    async fn deliver(&self, delivery: TopicDelivery<'_>) -> Result<Verdict, AppChannelError>;
    /// Delivers several events in one call; the verdicts are in entry order.
    async fn deliver_bulk(
        &self,
        delivery: BulkDelivery<'_>,
    ) -> Result<Vec<Verdict>, AppChannelError>;
}

/// Waits until the app listens (so nothing is delivered before it can be),
/// then returns the channel for its protocol.
pub async fn open(config: AppChannelConfig) -> Result<Box<dyn AppChannel>, AppChannelError> {
    wait_for_port(config.address, config.ready_timeout).await?;
    Ok(match config.protocol {
        AppProtocol::Http => Box::new(http::HttpChannel::new(config.address, config.app_token)),
        AppProtocol::Grpc => Box::new(grpc::GrpcChannel::new(config.address, config.app_token)?),
    })
}

/// Polls `address` until a TCP connection succeeds, or fails after `timeout`.
pub async fn wait_for_port(address: SocketAddr, timeout: Duration) -> Result<(), AppChannelError> {
    let started = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            tracing::debug!(%address, "the app is listening");
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(AppChannelError::NotReady {
                address,
                waited: started.elapsed(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
