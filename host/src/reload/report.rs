//! What a reload did, and the trigger the API pulls. Plain data with no
//! runtime types, so the API layer can encode it without knowing wasmtime.

use serde::Serialize;

/// What asked for a reload, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadCause {
    /// The first load, at start.
    Start,
    /// `POST /v1.0/outrig/reload`.
    Api,
    /// `SIGHUP`.
    Signal,
    /// A change in the resources directory or a `.wasm` file it names.
    FileChange,
}

/// A change a reload could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadFailure {
    /// The component, when known (a resource file that does not parse may
    /// not name one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why, naming the file and field where known.
    pub error: String,
    /// Whether an earlier version of the component keeps serving.
    pub still_serving: bool,
}

/// What one reload changed, by component name, as `POST /v1.0/outrig/reload`
/// answers it and the log reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// Components that serve for the first time.
    pub added: Vec<String>,
    /// Components that serve a new version (including ones that served none
    /// before because their last load failed).
    pub updated: Vec<String>,
    /// Components no longer listed; their APIs now answer "not found".
    pub removed: Vec<String>,
    /// Components left exactly as they were (same instances, no re-`init`).
    pub unchanged: Vec<String>,
    /// Changes that failed; an earlier version serves where there was one.
    pub failed: Vec<ReloadFailure>,
    /// Whether the declared `Subscription`s or pub/sub retry policies
    /// changed (delivery follows at once). A reload with a broken resource
    /// file leaves them as they were.
    pub delivery_changed: bool,
    /// How long the reload took, from reading the files to the last swap,
    /// in milliseconds (to the microsecond: a warm swap takes well under one).
    pub elapsed_ms: f64,
}

/// Reloads the components on request. `POST /v1.0/outrig/reload` calls it
/// through this trait, so the API layer never sees the runtime.
#[async_trait::async_trait]
pub trait ReloadTrigger: Send + Sync {
    /// Reads the resources again and applies what changed; reloads run one
    /// at a time.
    async fn reload(&self, cause: ReloadCause) -> ReloadReport;
}
