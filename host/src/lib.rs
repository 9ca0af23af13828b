//! Outrig: a sidecar that serves Dapr's v1 API with every backend running as a
//! sandboxed WebAssembly component.
//!
//! The crate is layered so a newcomer can see the boundaries:
//! - [`config`]: command-line settings and Dapr YAML, parsed once at the edge;
//! - [`blocks`]: one domain trait per building block, and the validation layer over it;
//! - [`api`]: the HTTP (and gRPC) wire contract, thin codecs over the blocks.

pub mod api;
pub mod blocks;
pub mod config;
pub mod bindings;
pub mod components;
pub mod runtime;

#[cfg(test)]
mod test_util;
