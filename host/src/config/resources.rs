//! Dapr resource files (`Component`, `dapr.io/v1alpha1`) parsed into typed structs.
//!
//! TYPES ARE FIXED (the runtime codes against them); the parser is to be written.

use std::path::PathBuf;

/// One `kind: Component` document.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentResource {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, if given.
    pub namespace: Option<String>,
    /// `spec.type`, e.g. `state.redis`.
    pub component_type: String,
    /// `spec.version`, e.g. `v1` (empty when absent).
    pub version: String,
    /// `spec.metadata`, in file order.
    pub metadata: Vec<MetadataEntry>,
    /// `scopes`: app ids allowed to use it; empty means all.
    pub scopes: Vec<String>,
    /// `spec.wasm`: Outrig's section for a user's own component.
    pub wasm: Option<WasmSource>,
    /// The file the document came from, for error messages.
    pub source: PathBuf,
}

/// One `spec.metadata` item.
#[derive(Debug, Clone, PartialEq)]
pub struct MetadataEntry {
    /// `name`.
    pub name: String,
    /// `value` or `secretKeyRef`.
    pub value: MetadataValue,
}

/// A metadata value as written.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataValue {
    /// `value:` (numbers and booleans are kept as their YAML text).
    Plain(String),
    /// `secretKeyRef: {name, key}`, resolved through a secret store.
    SecretRef {
        /// The secret's name.
        name: String,
        /// The key within the secret (defaults to the name).
        key: String,
    },
}

/// `spec.wasm`: where a user's component lives and what it may touch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WasmSource {
    /// The `.wasm` file, resolved against the YAML file's directory (`path:` or a `file://` URL).
    pub path: PathBuf,
    /// Lowercase hex sha256 the file must match.
    pub sha256: Option<String>,
    /// What the component is granted.
    pub capabilities: Capabilities,
}

/// `spec.wasm.capabilities`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capabilities {
    /// `outbound`: `tcp://host:port` addresses it may connect to.
    pub outbound: Vec<String>,
    /// `files`: host directories mapped into the guest.
    pub files: Vec<FileGrant>,
    /// `memoryMiB`: the most linear memory an instance may have.
    pub memory_mib: Option<u64>,
    /// `timeoutMs`: the deadline of one call.
    pub timeout_ms: Option<u64>,
    /// `maxInstances`: how many calls may run at once.
    pub max_instances: Option<u32>,
}

/// One preopened directory.
#[derive(Debug, Clone, PartialEq)]
pub struct FileGrant {
    /// The host directory (resolved against the YAML file's directory).
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}
