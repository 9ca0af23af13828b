//! Dapr's v1 gRPC API (`dapr.proto.runtime.v1.Dapr`) as a tonic service.
//!
//! [`proto`] holds the code generated from `proto/`.

pub mod proto;
