//! The shape of a `Component` document as serde reads it: every field
//! optional, so that a missing field becomes a message naming it rather than
//! serde's first-error-wins failure. Unknown fields are ignored here and
//! reported by [`super::schema`].

use serde::Deserialize;
use serde_yaml_ng::Value;

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
