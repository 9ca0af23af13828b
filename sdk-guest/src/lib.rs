//! `outrig-sdk`: write Outrig components in Rust.
//!
//! A component is a plain Rust type implementing one trait per kind (for now
//! [`state::StateStore`]); an `export_*!` macro turns it into a WebAssembly
//! component of the matching WIT world. The SDK keeps the one instance of the
//! type alive between calls, so connections opened by the type are reused.
//!
//! This crate must build for `wasm32-wasip2`; it knows nothing of the host.

pub mod log;
pub mod metadata;
pub mod query;
pub mod state;
pub mod state_rules;

/// Raw bindings generated from `wit/`. Component code should prefer the
/// re-exports in this crate's modules; the bindings are public so the
/// `export_*!` macros can reach them from the component's crate.
#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "state-store",
        pub_export_macro: true,
        export_macro_name: "__export_state_store_world",
        default_bindings_module: "::outrig_sdk::bindings",
        generate_unused_types: true,
    });
}

pub use bindings::outrig::component::types::{Error, Feature};
pub use metadata::Metadata;

/// The result type every component call returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A convenience for `Error::Internal` from anything printable.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Error::Internal(message.to_string())
    }

    /// A convenience for `Error::Unavailable` from anything printable, for
    /// failures of the backend connection that a retry may cure.
    pub fn unavailable(message: impl std::fmt::Display) -> Self {
        Error::Unavailable(message.to_string())
    }

    /// A convenience for `Error::InvalidArgument` from anything printable.
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Error::InvalidArgument(message.to_string())
    }
}

impl From<std::io::Error> for Error {
    /// I/O errors inside a component come from its backend connection.
    fn from(err: std::io::Error) -> Self {
        Error::Unavailable(err.to_string())
    }
}
