//! The Dapr v1 wire contract: HTTP (and later gRPC) codecs over the building
//! blocks. Handlers only decode, call a block, and encode; error mapping lives
//! in one place per protocol. This module never imports wasmtime.

pub mod grpc;
pub mod http;

use crate::blocks::Catalog;
use std::sync::Arc;

/// Everything a request handler may need, shared by all requests.
pub struct ApiContext {
    /// This sidecar's app id; state keys are prefixed with it.
    pub app_id: String,
    /// `DAPR_API_TOKEN`: when set, every route but healthz requires it in `dapr-api-token`.
    pub api_token: Option<String>,
    /// The components being served.
    pub catalog: Arc<Catalog>,
    /// Fired by `POST /v1.0/shutdown`; the sidecar shuts down gracefully.
    pub shutdown: Arc<tokio::sync::Notify>,
}
