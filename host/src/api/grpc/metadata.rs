//! `GetMetadata`, `SetMetadata` and `Shutdown`: the sidecar describing and
//! stopping itself, with the same content and effects as the HTTP routes.

use super::proto::runtime;
use crate::api::{ApiContext, RUNTIME_VERSION};
use crate::blocks::pubsub::subscription::{SubscriptionKind, SubscriptionSpec};

/// `GetMetadata`: the app id, the components with their features, the
/// subscriptions being delivered, and the
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
        subscriptions: ctx
            .delivery
            .subscriptions()
            .iter()
            .map(|active| subscription(&active.spec))
            .collect(),
        ..Default::default()
    }
}

/// One subscription as Dapr's `PubsubSubscription`.
fn subscription(spec: &SubscriptionSpec) -> runtime::PubsubSubscription {
    let kind = match spec.kind {
        SubscriptionKind::Declarative => runtime::PubsubSubscriptionType::Declarative,
        SubscriptionKind::Programmatic => runtime::PubsubSubscriptionType::Programmatic,
    };
    runtime::PubsubSubscription {
        pubsub_name: spec.pubsub_name.clone(),
        topic: spec.topic.clone(),
        metadata: spec.metadata.clone().into_iter().collect(),
        rules: Some(runtime::PubsubSubscriptionRules {
            rules: spec
                .routes
                .as_dapr_rules()
                .into_iter()
                .map(|(condition, path)| runtime::PubsubSubscriptionRule {
                    r#match: condition.to_owned(),
                    path: path.to_owned(),
                })
                .collect(),
        }),
        dead_letter_topic: spec.dead_letter_topic.clone().unwrap_or_default(),
        r#type: kind.into(),
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
