//! Building blocks: one domain trait per Dapr building block, and the thin layer
//! that validates requests and calls it. A WebAssembly component is one
//! implementation of each trait; this module never imports wasmtime, HTTP or gRPC.

pub mod catalog;
pub mod error;
pub mod pubsub;
pub mod resiliency;
pub mod state;

pub use catalog::Catalog;
pub use error::ComponentError;
