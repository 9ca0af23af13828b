//! Outrig: a sidecar that serves Dapr's v1 API with every backend running as a
//! sandboxed WebAssembly component.
//!
//! The crate is layered so a newcomer can see the boundaries:
//! - [`config`]: command-line settings and Dapr YAML, parsed once at the edge;
//! - [`blocks`]: one domain trait per building block, and the validation layer over it;
//! - [`api`]: the HTTP and gRPC wire contract, thin codecs over the blocks;
//! - [`appchannel`]: how the sidecar calls its app (HTTP or gRPC);
//! - [`runtime`]: the wasmtime engine, artifact cache, instance pools and grants;
//! - [`bindings`]: the code generated from `wit/`;
//! - [`components`]: Dapr resources turned into running components;
//! - [`reload`]: swapping components in place while the sidecar serves;
//! - [`telemetry`]: Prometheus metrics, fed from the choke points above;
//! - [`mesh`]: workload identities and the certificate authority behind mTLS;
//! - [`sidecar`] and [`cli`]: the process, composed from the above.

pub mod api;
pub mod appchannel;
pub mod bindings;
pub mod blocks;
pub mod cli;
pub mod components;
pub mod config;
pub mod mesh;
pub mod reload;
pub mod runtime;
pub mod sidecar;
pub mod telemetry;

#[cfg(test)]
mod test_util;
