//! Generated bindings of the `pubsub` world, re-exported by `outrig-sdk` as
//! `bindings::pubsub`. Use `outrig-sdk` instead of this crate.
//!
//! The shared `types` and `host` interfaces are mapped onto the
//! `state-store` world's crate, which owns them. The helpers on
//! `PublishError` live here (Rust allows inherent impls only in the type's
//! own crate).

#![allow(missing_docs)]

use exports::outrig::component::broker::{PublishError, PublishFailure};
use outrig_sdk_world_state_store::outrig::component::types::Error;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "pubsub",
    pub_export_macro: true,
    export_macro_name: "__export_pubsub_world",
    default_bindings_module: "::outrig_sdk::bindings::pubsub",
    generate_unused_types: true,
    with: {
        "outrig:component/types@0.1.0": outrig_sdk_world_state_store::outrig::component::types,
        "outrig:component/host@0.1.0": outrig_sdk_world_state_store::outrig::component::host,
    },
});

impl PublishError {
    /// Every one of `count` entries failed with the same error, as when the
    /// broker cannot be reached at all.
    pub fn all(count: usize, error: Error) -> Self {
        PublishError {
            failed: (0..count)
                .map(|index| PublishFailure {
                    index: index as u32,
                    error: error.clone(),
                })
                .collect(),
        }
    }

    /// Gathers per-entry outcomes, in entry order, into the contract's shape.
    pub fn from_outcomes(
        outcomes: impl IntoIterator<Item = Result<(), Error>>,
    ) -> Result<(), Self> {
        let failed: Vec<PublishFailure> = outcomes
            .into_iter()
            .enumerate()
            .filter_map(|(index, outcome)| {
                outcome.err().map(|error| PublishFailure {
                    index: index as u32,
                    error,
                })
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(PublishError { failed })
        }
    }
}
