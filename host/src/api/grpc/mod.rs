//! Dapr's v1 gRPC API (`dapr.proto.runtime.v1.Dapr`) as a tonic service.
//!
//! Like the HTTP API, it only decodes, calls a block, and encodes. The parts:
//! - [`proto`]: the code generated from `proto/`;
//! - `service`: the `Dapr` trait, one line per RPC;
//! - `state`, `pubsub`, `metadata`: one codec module per API area;
//! - [`error`]: `From<StateError>` and `From<PubSubError>` for `Status`, the
//!   single place failures become statuses (with Dapr's `google.rpc.ErrorInfo`);
//! - `auth`: the `dapr-api-token` check;
//! - [`dapr_size_status`]: the status of a message over the size limit, as
//!   Dapr gives it.
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

/// How tonic's decoder starts the message of a status refusing a message
/// over the limit (followed by `<n> bytes, the limit is: <limit> bytes`).
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";

/// The gRPC API over `ctx`, as routes any tonic server can serve.
pub fn routes(ctx: Arc<ApiContext>) -> Routes {
    let api = service::DaprApi::new(ctx.clone());
    let server = DaprServer::new(api).max_decoding_message_size(MAX_MESSAGE_BYTES);
    // The token is checked before the message is decoded or any block is called.
    let server = tonic::service::interceptor::InterceptedService::new(
        server,
        auth::RequireApiToken::new(ctx),
    );
    let router = Routes::new(server)
        .into_axum_router()
        .layer(axum::middleware::map_response(dapr_size_status))
        // Outermost, so the status counted is the one the caller gets.
        .layer(axum::middleware::from_fn(
            crate::telemetry::api::record_grpc,
        ));
    Routes::from(router)
}

/// Gives a call refused for a message over [`MAX_MESSAGE_BYTES`] the status
/// Dapr's (grpc-go) server answers: tonic says `OUT_OF_RANGE`, Dapr
/// `RESOURCE_EXHAUSTED` with `grpc: received message larger than max (<n>
/// vs. <limit>)`, and that code is what SDKs and apps written for Dapr look
/// for. Every other answer passes unchanged. A unary call refused while its
/// request is decoded carries the status in the response headers.
async fn dapr_size_status(mut response: axum::response::Response) -> axum::response::Response {
    let refused_size = tonic::Status::from_header_map(response.headers())
        .filter(|status| status.code() == tonic::Code::OutOfRange)
        .and_then(|status| {
            let rest = status.message().strip_prefix(TONIC_TOO_LARGE)?;
            rest.split(' ').next()?.parse::<u64>().ok()
        });
    let Some(size) = refused_size else {
        return response;
    };
    let status = tonic::Status::resource_exhausted(format!(
        "grpc: received message larger than max ({size} vs. {MAX_MESSAGE_BYTES})"
    ));
    let headers = response.headers_mut();
    headers.remove("grpc-message");
    if status.add_header(headers).is_ok() {
        response.extensions_mut().insert(status);
    }
    response
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
