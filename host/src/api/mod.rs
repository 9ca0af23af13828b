//! The Dapr v1 wire contract: HTTP and gRPC codecs over the building blocks.
//! Handlers only decode, call a block, and encode; error mapping lives in one
//! place per protocol. This module never imports wasmtime.
//!
//! What both protocols share (the app id, the API token check, the extended
//! metadata, the shutdown signal) lives in [`ApiContext`], so the two APIs
//! answer alike.

pub mod grpc;
pub mod http;

use crate::blocks::Catalog;
use crate::blocks::pubsub::PublishSignals;
use crate::blocks::pubsub::delivery::DeliveryStatus;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The `extended` metadata attribute Dapr always reports, with the runtime version.
pub const RUNTIME_VERSION_ATTRIBUTE: &str = "daprRuntimeVersion";

/// The version reported as Dapr's `runtimeVersion`: Outrig's own.
pub const RUNTIME_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything a request handler may need, shared by all requests.
pub struct ApiContext {
    /// This sidecar's app id; state keys are prefixed with it.
    pub app_id: String,
    /// `DAPR_API_TOKEN`: when set, every route but healthz requires it in `dapr-api-token`.
    pub api_token: Option<String>,
    /// The components being served.
    pub catalog: Arc<Catalog>,
    /// Wakes this sidecar's subscribers of a topic when the app publishes
    /// to it; shared with the delivery loop, which waits on it.
    pub publish_signals: Arc<PublishSignals>,
    /// Pub/sub delivery to the app: whether its subscriptions are in place
    /// (healthz) and which they are (metadata).
    pub delivery: Arc<DeliveryStatus>,
    /// Fired by `POST /v1.0/shutdown`; the sidecar shuts down gracefully.
    pub shutdown: Arc<tokio::sync::Notify>,
    /// Attributes set through either API (`PUT /v1.0/metadata/{key}`,
    /// `SetMetadata`), so both report the same `extended` metadata.
    pub extended: ExtendedMetadata,
}

impl ApiContext {
    /// Whether a request presenting `presented` (the `dapr-api-token` value,
    /// if any) may proceed: always when no token is configured.
    pub fn accepts_token(&self, presented: Option<&[u8]>) -> bool {
        match self.api_token.as_deref().filter(|t| !t.is_empty()) {
            None => true,
            Some(expected) => presented.is_some_and(|t| same_secret(t, expected.as_bytes())),
        }
    }

    /// Asks the sidecar to shut down (`POST /v1.0/shutdown`, `Shutdown`).
    ///
    /// Both `notify_waiters` and `notify_one` are called: the first wakes every
    /// task already waiting on `notified()`, the second leaves a permit behind so
    /// that a task that starts waiting only later still returns at once.
    pub fn request_shutdown(&self) {
        self.shutdown.notify_waiters();
        self.shutdown.notify_one();
    }

    /// The `extended` metadata as both APIs report it: the attributes set so
    /// far plus [`RUNTIME_VERSION_ATTRIBUTE`].
    pub fn extended_metadata(&self) -> BTreeMap<String, String> {
        let mut extended = self.extended.snapshot();
        extended.insert(
            RUNTIME_VERSION_ATTRIBUTE.to_owned(),
            RUNTIME_VERSION.to_owned(),
        );
        extended
    }
}

/// Metadata attributes set by the app at run time; in memory only, as in Dapr.
#[derive(Debug, Default)]
pub struct ExtendedMetadata {
    attributes: RwLock<BTreeMap<String, String>>,
}

impl ExtendedMetadata {
    /// A copy of every attribute.
    pub fn snapshot(&self) -> BTreeMap<String, String> {
        match self.attributes.read() {
            Ok(map) => map.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets attribute `key` to `value`.
    pub fn set(&self, key: String, value: String) {
        let mut map = match self.attributes.write() {
            Ok(map) => map,
            Err(poisoned) => poisoned.into_inner(),
        };
        map.insert(key, value);
    }
}

/// Compares two secrets in time independent of where they differ and of
/// their lengths: both are hashed, then every digest byte is compared.
pub(crate) fn same_secret(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_by_content() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3cres"));
        assert!(!same_secret(b"s3cret", b"s3cret2"));
        assert!(!same_secret(b"", b"x"));
    }
}
