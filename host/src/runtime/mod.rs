//! The component runtime: one wasmtime engine, a compiled-artifact cache, and a
//! bounded pool of sandboxed instances per component, each call under a
//! deadline and a memory limit, each instance granted only its capabilities.
//!
//! This module knows nothing of Dapr: building-block adapters (in
//! [`crate::components`]) turn its instances into [`crate::blocks`] traits.

pub mod cache;
pub mod engine;
pub mod grants;
pub mod http;
pub mod instance;
pub mod log_budget;
pub mod lookup;
pub mod outbound;
pub mod pool;
pub mod turns;

pub use cache::ArtifactCache;
pub use engine::RuntimeEngine;
pub use grants::CapabilityGrant;
pub use pool::{InstancePool, PoolSettings};
