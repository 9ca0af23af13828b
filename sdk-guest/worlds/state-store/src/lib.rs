//! Generated bindings of the `state-store` world, re-exported by `outrig-sdk`
//! as `bindings::state_store`. Use `outrig-sdk` instead of this crate.
//!
//! One world per crate: wit-bindgen names an exported interface's glue macro
//! after the interface alone and exports it at the crate root, so two worlds
//! that both export `lifecycle` cannot share a crate. This crate also owns the
//! shared `types` and `host` interfaces; the other worlds' crates map theirs
//! onto these, so `Error` and `Feature` are one Rust type across kinds, and
//! the helpers on `Error` live here (Rust allows inherent impls only in the
//! type's own crate).

#![allow(missing_docs)]

use outrig::component::types::Error;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "state-store",
    pub_export_macro: true,
    export_macro_name: "__export_state_store_world",
    default_bindings_module: "::outrig_sdk::bindings::state_store",
    generate_unused_types: true,
});

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
