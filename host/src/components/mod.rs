//! Components: turning Dapr `Component` resources into running WebAssembly
//! components behind the building-block traits.
//!
//! - [`builtin`]: the components embedded in the binary, by Dapr type name;
//! - [`state`]: the adapter from the `state-store` world to [`crate::blocks::state::StateStore`];
//! - [`pubsub`]: the adapter from the `pubsub` world to [`crate::blocks::pubsub::Broker`];
//! - [`call`]: what the adapters share (calls, errors, the pool glue);
//! - [`loader`]: resolve, verify, compile, grant, instantiate and `init`.

pub mod builtin;
pub mod call;
pub mod loader;
pub mod pubsub;
pub mod state;

pub use loader::{ComponentHost, LoadContext};

#[cfg(test)]
mod tests;
