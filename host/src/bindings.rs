//! The generated host-side bindings of `wit/`: the crate's only `bindgen!`.
//!
//! Exports are async so a guest blocked on its socket yields the executor
//! thread; imports (logging, metrics) are cheap and synchronous.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "state-store",
        exports: { default: async },
    });
}

pub use generated::outrig::component::{host, types};

/// The `state-store` world.
pub mod state_store {
    pub use super::generated::exports::outrig::component::state::*;
    pub use super::generated::{StateStore, StateStorePre};
}
