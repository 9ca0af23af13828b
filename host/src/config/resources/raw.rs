//! The shape of `Component`, `Subscription` and `Resiliency` documents as serde reads
//! them: every field optional, so that a missing field becomes a message
//! naming it rather than serde's first-error-wins failure. Unknown fields
//! are ignored here and reported by [`super::schema`].

use serde::Deserialize;
use serde_yaml_ng::Value;
use std::collections::BTreeMap;

/// A whole `kind: Component` document.
#[derive(Deserialize, Default)]
pub struct RawComponent {
    #[serde(default)]
    pub metadata: Option<RawObjectMeta>,
    #[serde(default)]
    pub spec: Option<RawSpec>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// `metadata`.
#[derive(Deserialize, Default)]
pub struct RawObjectMeta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `spec`.
#[derive(Deserialize, Default)]
pub struct RawSpec {
    #[serde(default, rename = "type")]
    pub component_type: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub metadata: Option<Vec<RawMetadataItem>>,
    #[serde(default)]
    pub wasm: Option<RawWasm>,
}

/// One `spec.metadata` item; `value` may be any scalar (kept as text).
#[derive(Deserialize, Default)]
pub struct RawMetadataItem {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default, rename = "secretKeyRef")]
    pub secret_key_ref: Option<RawSecretRef>,
}

/// `secretKeyRef`.
#[derive(Deserialize, Default)]
pub struct RawSecretRef {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub key: Option<String>,
}

/// `spec.wasm`.
#[derive(Deserialize, Default)]
pub struct RawWasm {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub capabilities: Option<RawCapabilities>,
}

/// `spec.wasm.capabilities`.
#[derive(Deserialize, Default)]
pub struct RawCapabilities {
    #[serde(default)]
    pub outbound: Option<Vec<String>>,
    #[serde(default, rename = "blockPrivateNetworks")]
    pub block_private_networks: Option<bool>,
    #[serde(default)]
    pub http: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub files: Option<Vec<RawFileGrant>>,
    #[serde(default, rename = "memoryMiB")]
    pub memory_mib: Option<u64>,
    #[serde(default, rename = "timeoutMs")]
    pub timeout_ms: Option<u64>,
    #[serde(default, rename = "maxInstances")]
    pub max_instances: Option<u32>,
}

/// One `spec.wasm.capabilities.files` item.
#[derive(Deserialize, Default)]
pub struct RawFileGrant {
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub guest: Option<String>,
    #[serde(default, rename = "readOnly")]
    pub read_only: Option<bool>,
}

/// A whole `kind: Subscription` document, either version: v1alpha1's
/// `route` and v2alpha1's `routes` are both read, and the version decides
/// which one counts (the other is reported as unknown by the schema).
#[derive(Deserialize, Default)]
pub struct RawSubscription {
    #[serde(default)]
    pub metadata: Option<RawObjectMeta>,
    #[serde(default)]
    pub spec: Option<RawSubscriptionSpec>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A subscription's `spec`.
#[derive(Deserialize, Default)]
pub struct RawSubscriptionSpec {
    #[serde(default)]
    pub pubsubname: Option<String>,
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default)]
    pub route: Option<String>,
    #[serde(default)]
    pub routes: Option<RawRoutes>,
    /// Names to values; any scalar is kept as its text.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, Value>>,
    #[serde(default, rename = "deadLetterTopic")]
    pub dead_letter_topic: Option<String>,
    #[serde(default, rename = "bulkSubscribe")]
    pub bulk_subscribe: Option<RawBulkSubscribe>,
}

/// v2alpha1's `spec.routes`.
#[derive(Deserialize, Default)]
pub struct RawRoutes {
    #[serde(default)]
    pub rules: Option<Vec<RawRule>>,
    #[serde(default)]
    pub default: Option<String>,
}

/// One `spec.routes.rules` item.
#[derive(Deserialize, Default)]
pub struct RawRule {
    #[serde(default, rename = "match")]
    pub condition: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
}

/// `spec.bulkSubscribe`.
#[derive(Deserialize, Default)]
pub struct RawBulkSubscribe {
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default, rename = "maxMessagesCount")]
    pub max_messages_count: Option<i64>,
    #[serde(default, rename = "maxAwaitDurationMs")]
    pub max_await_duration_ms: Option<i64>,
}

/// A whole `kind: Resiliency` document. Only what Outrig applies is read
/// (retry policies and the component targets' `inbound` retry); the
/// schema knows the rest of Dapr's fields, so they are not reported.
#[derive(Deserialize, Default)]
pub struct RawResiliency {
    #[serde(default)]
    pub metadata: Option<RawObjectMeta>,
    #[serde(default)]
    pub spec: Option<RawResiliencySpec>,
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// A resiliency's `spec`.
#[derive(Deserialize, Default)]
pub struct RawResiliencySpec {
    #[serde(default)]
    pub policies: Option<RawPolicies>,
    #[serde(default)]
    pub targets: Option<RawTargets>,
}

/// `spec.policies`.
#[derive(Deserialize, Default)]
pub struct RawPolicies {
    #[serde(default)]
    pub retries: Option<BTreeMap<String, RawRetry>>,
}

/// One `spec.policies.retries` entry; durations are Go's (`5s`, `500ms`).
#[derive(Deserialize, Default)]
pub struct RawRetry {
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub duration: Option<Value>,
    #[serde(default, rename = "maxInterval")]
    pub max_interval: Option<Value>,
    #[serde(default, rename = "maxRetries")]
    pub max_retries: Option<i64>,
}

/// `spec.targets`.
#[derive(Deserialize, Default)]
pub struct RawTargets {
    #[serde(default)]
    pub components: Option<BTreeMap<String, RawComponentTarget>>,
}

/// One `spec.targets.components` entry.
#[derive(Deserialize, Default)]
pub struct RawComponentTarget {
    #[serde(default)]
    pub inbound: Option<RawTargetPolicies>,
}

/// The policies a target names, by policy name.
#[derive(Deserialize, Default)]
pub struct RawTargetPolicies {
    #[serde(default)]
    pub retry: Option<String>,
}
