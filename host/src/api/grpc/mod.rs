//! Dapr's v1 gRPC API (`dapr.proto.runtime.v1.Dapr`) as a tonic service.
//!
//! Like the HTTP API, it only decodes, calls a block, and encodes. The parts:
//! - [`proto`]: the code generated from `proto/`;
//! - `service`: the `Dapr` trait, one line per RPC;
//! - `state`, `pubsub`, `metadata`: one codec module per API area;
//! - [`error`]: `From<StateError>` and `From<PubSubError>` for `Status`, the
//!   single place failures become statuses (with Dapr's `google.rpc.ErrorInfo`);
//! - `auth`: the `dapr-api-token` check.
//!
//! [`serve`] runs it on a listener the sidecar bound.

mod auth;
pub mod error;
mod metadata;
pub mod proto;
mod pubsub;
mod service;
mod state;

#[cfg(test)]
mod tests;

use super::ApiContext;
use proto::runtime::dapr_server::DaprServer;
use std::sync::Arc;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;

/// The largest message accepted: 4 MiB, as Dapr's default `--max-body-size`
/// (and gRPC's usual default).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// The gRPC API over `ctx`, as routes any tonic server can serve.
pub fn routes(ctx: Arc<ApiContext>) -> Routes {
    let api = service::DaprApi::new(ctx.clone());
    let server = DaprServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES);
    // The token is checked before the message is decoded or any block is called.
    let server = tonic::service::interceptor::InterceptedService::new(
        server,
        auth::RequireApiToken::new(ctx),
    );
    Routes::new(server)
}

/// Serves the gRPC API on `listener` until `shutdown` completes, then lets
/// in-flight calls finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ctx: Arc<ApiContext>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    tonic::transport::Server::builder()
        .add_routes(routes(ctx))
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            shutdown,
        )
        .await
}
