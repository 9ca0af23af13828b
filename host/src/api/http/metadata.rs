//! `GET /v1.0/metadata` and `PUT /v1.0/metadata/{key}`: what the sidecar
//! serves, in Dapr's shape, plus Outrig's own fields per component.

use super::HttpState;
use super::error::ApiError;
use super::extract::{Body, PathParams};
use crate::api::RUNTIME_VERSION;
use crate::blocks::catalog::{ComponentInfo, LoadStatus};
use crate::blocks::pubsub::subscription::SubscriptionSpec;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Dapr's metadata answer. Lists Outrig does not serve yet are present and empty.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WireMetadata {
    id: String,
    runtime_version: &'static str,
    enabled_features: Vec<String>,
    actors: Vec<()>,
    components: Vec<WireComponent>,
    extended: BTreeMap<String, String>,
    subscriptions: Vec<WireSubscription>,
    http_endpoints: Vec<()>,
}

/// One subscription, in the shape Dapr's HTTP metadata gives it.
#[derive(Serialize)]
struct WireSubscription {
    pubsubname: String,
    topic: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rules: Vec<WireRule>,
    #[serde(rename = "deadLetterTopic")]
    dead_letter_topic: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// A route: the default one has no `match`.
#[derive(Serialize)]
struct WireRule {
    #[serde(rename = "match", skip_serializing_if = "String::is_empty")]
    condition: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    path: String,
}

impl From<&SubscriptionSpec> for WireSubscription {
    fn from(spec: &SubscriptionSpec) -> Self {
        WireSubscription {
            pubsubname: spec.pubsub_name.clone(),
            topic: spec.topic.clone(),
            metadata: spec.metadata.clone(),
            rules: spec
                .routes
                .as_dapr_rules()
                .into_iter()
                .map(|(condition, path)| WireRule {
                    condition: condition.to_owned(),
                    path: path.to_owned(),
                })
                .collect(),
            dead_letter_topic: spec.dead_letter_topic.clone().unwrap_or_default(),
            kind: spec.kind.dapr_name(),
        }
    }
}

/// One component: Dapr's `name`, `type`, `version`, `capabilities`, then Outrig's
/// `status` (`loaded`; `failed`: nothing serves; `stale`: an older version
/// serves because the newest failed to load), `error` (why, for the last
/// two), `sha256` (of the serving version), `source`, `grants` (what its
/// instances may touch; SDKs ignore fields they do not know).
#[derive(Serialize)]
struct WireComponent {
    name: String,
    #[serde(rename = "type")]
    component_type: String,
    version: String,
    capabilities: Vec<&'static str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<String>,
    source: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    grants: Vec<String>,
}

impl From<ComponentInfo> for WireComponent {
    fn from(info: ComponentInfo) -> Self {
        let (status, error) = match info.status {
            LoadStatus::Loaded => ("loaded", None),
            LoadStatus::Failed(error) => ("failed", Some(error)),
            LoadStatus::Stale(error) => ("stale", Some(error)),
        };
        WireComponent {
            capabilities: info.features.iter().map(|f| f.dapr_name()).collect(),
            name: info.name,
            component_type: info.component_type,
            version: info.version,
            status,
            error,
            sha256: info.sha256,
            source: info.source,
            grants: info.grants,
        }
    }
}

/// `GET /v1.0/metadata`.
pub async fn get(State(state): State<Arc<HttpState>>) -> Response {
    Json(WireMetadata {
        id: state.ctx.app_id.clone(),
        runtime_version: RUNTIME_VERSION,
        enabled_features: Vec::new(),
        actors: Vec::new(),
        components: state
            .ctx
            .catalog
            .infos()
            .into_iter()
            .map(Into::into)
            .collect(),
        extended: state.ctx.extended_metadata(),
        subscriptions: state
            .ctx
            .delivery
            .subscriptions()
            .iter()
            .map(|active| WireSubscription::from(&active.spec))
            .collect(),
        http_endpoints: Vec::new(),
    })
    .into_response()
}

/// `PUT /v1.0/metadata/{key}`: the body (text) becomes `extended.{key}`; 204.
pub async fn put(
    State(state): State<Arc<HttpState>>,
    PathParams(key): PathParams<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let value = String::from_utf8(body.0.to_vec())
        .map_err(|_| ApiError::bad_parameter("the metadata value is not UTF-8 text"))?;
    state.ctx.extended.set(key, value);
    Ok(StatusCode::NO_CONTENT)
}
