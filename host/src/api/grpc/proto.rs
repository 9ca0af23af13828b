//! The code generated from `proto/` (Dapr's runtime v1 wire contract), kept
//! behind one private module, as `bindings` does for WIT.
//!
//! Messages, the `Dapr` server and the `AppCallback` client are re-exported
//! under Dapr's package names, so code reads `runtime::GetStateRequest` and
//! `common::StateItem` as Dapr's documentation names them.

#[allow(missing_docs, clippy::all, clippy::pedantic, clippy::unwrap_used)]
mod generated {
    pub mod dapr {
        pub mod proto {
            pub mod common {
                pub mod v1 {
                    tonic::include_proto!("dapr.proto.common.v1");
                }
            }
            pub mod runtime {
                pub mod v1 {
                    tonic::include_proto!("dapr.proto.runtime.v1");
                }
            }
        }
    }
}

/// `dapr.proto.common.v1`: state items, ETags, options, invocation envelopes.
pub use generated::dapr::proto::common::v1 as common;
/// `dapr.proto.runtime.v1`: the `Dapr` and `AppCallback` services and their messages.
pub use generated::dapr::proto::runtime::v1 as runtime;

/// The encoded `FileDescriptorSet` of `proto/`, for checking the wire contract
/// against Dapr's own descriptors (and for server reflection, should it come).
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/dapr_descriptor.bin"));
