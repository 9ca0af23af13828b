//! The generated host-side bindings of `wit/`: the crate's only `bindgen!`
//! calls, one per world.
//!
//! Exports are async so a guest blocked on its socket yields the executor
//! thread; imports (logging, metrics) are cheap and synchronous. The worlds
//! share the `types` and `host` interfaces (the second world reuses the
//! first's), so one linker and one `host` implementation serve them all.

#[allow(missing_docs)]
mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "state-store",
        exports: { default: async },
    });
}

#[allow(missing_docs)]
mod generated_pubsub {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "pubsub",
        exports: { default: async },
        with: {
            "outrig:component/types": super::generated::outrig::component::types,
            "outrig:component/host": super::generated::outrig::component::host,
        },
    });
}

pub use generated::outrig::component::{host, types};

/// The `state-store` world.
pub mod state_store {
    pub use super::generated::exports::outrig::component::state::*;
    pub use super::generated::{StateStore, StateStorePre};
}

/// The `pubsub` world.
pub mod pubsub {
    pub use super::generated_pubsub::exports::outrig::component::broker::*;
    pub use super::generated_pubsub::{Pubsub, PubsubPre};
}
