//! `GetMetadata`, `SetMetadata` and `Shutdown`: the sidecar describing and
//! stopping itself, with the same content and effects as the HTTP routes.

use super::proto::runtime;
use crate::api::{ApiContext, RUNTIME_VERSION};

/// `GetMetadata`: the app id, the components with their features, and the
/// `extended` attributes, as `GET /v1.0/metadata` reports them. Outrig's own
/// per-component fields (status, sha256, source) have no place in Dapr's
/// message and are only reported over HTTP.
pub fn get(ctx: &ApiContext) -> runtime::GetMetadataResponse {
    runtime::GetMetadataResponse {
        id: ctx.app_id.clone(),
        registered_components: ctx
            .catalog
            .infos()
            .into_iter()
            .map(|info| runtime::RegisteredComponents {
                capabilities: info
                    .features
                    .iter()
                    .map(|feature| feature.dapr_name().to_owned())
                    .collect(),
                name: info.name,
                r#type: info.component_type,
                version: info.version,
            })
            .collect(),
        extended_metadata: ctx.extended_metadata().into_iter().collect(),
        runtime_version: RUNTIME_VERSION.to_owned(),
        ..Default::default()
    }
}

/// `SetMetadata`: sets `extended.{key}`, seen by both APIs.
pub fn set(ctx: &ApiContext, request: runtime::SetMetadataRequest) {
    ctx.extended.set(request.key, request.value);
}

/// `Shutdown`: asks the sidecar to shut down gracefully; the answer is sent first.
pub fn shutdown(ctx: &ApiContext) {
    tracing::info!("shutdown requested through the gRPC API");
    ctx.request_shutdown();
}
