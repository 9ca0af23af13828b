//! `outrig-sdk`: write Outrig components in Rust.
//!
//! A component is a plain Rust type implementing one trait per kind
//! ([`state::StateStore`], [`pubsub::PubSub`]); an `export_*!` macro turns it into a WebAssembly
//! component of the matching WIT world. The SDK keeps the one instance of the
//! type alive between calls, so connections opened by the type are reused.
//!
//! This crate must build for `wasm32-wasip2`; it knows nothing of the host.

mod export;
pub mod lazy;
pub mod log;
pub mod metadata;
pub mod metrics;
pub mod net;
pub mod pubsub;
pub mod query;
pub mod state;
pub mod state_rules;

/// Raw bindings generated from `wit/`, one module per world. Component code
/// should prefer the re-exports in this crate's modules; the bindings are
/// public so the `export_*!` macros can reach them from the component's crate.
///
/// Each world is generated in a crate of its own (`worlds/`): its export macro
/// embeds only that world, so a state store's component exports `state-store`
/// and nothing else, and the glue wit-bindgen generates for the `lifecycle`
/// export every world shares cannot clash.
#[doc(hidden)]
pub mod bindings {
    pub use outrig_sdk_world_pubsub as pubsub;
    pub use outrig_sdk_world_state_store as state_store;
}

pub use bindings::state_store::outrig::component::types::{Error, Feature};
pub use metadata::Metadata;

/// The result type every component call returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;
