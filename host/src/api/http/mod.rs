//! Dapr's v1 HTTP API as an axum [`Router`].
//!
//! The router only decodes, calls a block, and encodes. The parts:
//! - [`error`]: [`ApiError`], the single place failures become responses;
//! - `extract`: path, query and body extractors failing with Dapr's body;
//! - `auth`: the `dapr-api-token` check;
//! - `state`, `pubsub`, `metadata`, `health`, `shutdown`, `reload`: one module
//!   per API area.
//!
//! The server that runs the router (listener, graceful shutdown) lives with
//! the sidecar's composition, not here.

mod auth;
pub mod error;
mod extract;
mod health;
mod metadata;
mod pubsub;
mod reload;
mod shutdown;
mod state;

#[cfg(test)]
mod tests;

pub use auth::API_TOKEN_HEADER;
pub use error::ApiError;

use super::ApiContext;
use crate::blocks::pubsub::PubSubBlock;
use crate::blocks::state::StateBlock;
use crate::reload::ReloadTrigger;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use std::sync::Arc;

/// The largest request body accepted by default: 4 MiB, Dapr's default
/// `--max-body-size`.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// What every handler shares.
pub(crate) struct HttpState {
    ctx: Arc<ApiContext>,
    state: StateBlock,
    pubsub: PubSubBlock,
    max_body_bytes: usize,
    /// What `POST /v1.0/outrig/reload` pulls; without it the route answers 404.
    reload: Option<Arc<dyn ReloadTrigger>>,
}

/// The HTTP API over `ctx`, with Dapr's default body limit.
pub fn router(ctx: Arc<ApiContext>) -> Router {
    router_with_body_limit(ctx, DEFAULT_MAX_BODY_BYTES)
}

/// The HTTP API over `ctx`, refusing bodies larger than `max_body_bytes` with 413.
pub fn router_with_body_limit(ctx: Arc<ApiContext>, max_body_bytes: usize) -> Router {
    build(ctx, max_body_bytes, None)
}

/// The HTTP API over `ctx` plus Outrig's `POST /v1.0/outrig/reload`, which
/// pulls `reload` (behind the same token as every other route).
pub fn router_with_reload(ctx: Arc<ApiContext>, reload: Arc<dyn ReloadTrigger>) -> Router {
    build(ctx, DEFAULT_MAX_BODY_BYTES, Some(reload))
}

fn build(
    ctx: Arc<ApiContext>,
    max_body_bytes: usize,
    reload: Option<Arc<dyn ReloadTrigger>>,
) -> Router {
    let shared = Arc::new(HttpState {
        state: StateBlock::new(&ctx.app_id, ctx.catalog.clone()),
        pubsub: PubSubBlock::new(
            &ctx.app_id,
            ctx.catalog.clone(),
            ctx.publish_signals.clone(),
        ),
        ctx,
        max_body_bytes,
        reload,
    });
    Router::new()
        .route("/v1.0/state/{store}", post(state::save).put(state::save))
        .route(
            "/v1.0/state/{store}/{key}",
            get(state::get).delete(state::delete),
        )
        .route(
            "/v1.0/state/{store}/bulk",
            post(state::bulk_get).put(state::bulk_get),
        )
        .route(
            "/v1.0/state/{store}/transaction",
            post(state::transaction).put(state::transaction),
        )
        .route(
            "/v1.0-alpha1/state/{store}/query",
            post(state::query).put(state::query),
        )
        // Topics may contain `/`: the rest of the path is the topic.
        .route("/v1.0/publish/{pubsub}/{*topic}", post(pubsub::publish))
        .route(
            "/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}",
            post(pubsub::bulk_publish),
        )
        .route(
            "/v1.0/publish/bulk/{pubsub}/{*topic}",
            post(pubsub::bulk_publish),
        )
        .merge(without_topic_routes())
        .route("/v1.0/metadata", get(metadata::get))
        .route("/v1.0/metadata/{key}", put(metadata::put))
        .route("/v1.0/healthz", get(health::healthz))
        .route("/v1.0/healthz/outbound", get(health::outbound))
        .route("/v1.0/shutdown", post(shutdown::shutdown))
        .route("/v1.0/outrig/reload", post(reload::reload))
        // Dapr hands every unmatched request (wrong path or wrong method) to
        // service invocation, which answers 404 without a target app.
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        // Middleware runs before extractors: the token is checked before any
        // body is read, on every route and on the fallback.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_api_token,
        ))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        // Outermost, so refusals (token, body size) are counted too.
        .layer(axum::middleware::from_fn(
            crate::telemetry::api::record_http,
        ))
        .with_state(shared)
}

/// Publish paths that name a pub/sub but no topic, which Dapr answers with
/// its own errors rather than as a missing route. Not
/// `/v1.0/publish/bulk/{pubsub}`: in Dapr that is a publish to topic
/// `{pubsub}` of a pub/sub named `bulk`.
const WITHOUT_TOPIC: [&str; 5] = [
    "/v1.0/publish/{pubsub}",
    "/v1.0/publish/{pubsub}/",
    "/v1.0-alpha1/publish/bulk/{pubsub}",
    "/v1.0-alpha1/publish/bulk/{pubsub}/",
    "/v1.0/publish/bulk/{pubsub}/",
];

/// The [`WITHOUT_TOPIC`] routes.
fn without_topic_routes() -> Router<Arc<HttpState>> {
    WITHOUT_TOPIC
        .into_iter()
        .fold(Router::new(), |router, path| {
            router.route(path, post(pubsub::publish_without_topic))
        })
}

async fn not_found() -> ApiError {
    ApiError::route_not_found()
}
