//! `redis-wire`: what every Redis-backed component shares, so `state.redis`
//! and `pubsub.redis` speak to Redis through one tested client.
//!
//! - [`resp`]: the RESP2 wire format, over any `BufRead`.
//! - [`Connection`]: a handshaken connection over any `Read + Write` that runs
//!   pipelines of commands.
//! - [`Endpoint`]: where the server is and how to log in, read from Dapr's
//!   metadata names (`redisHost`, `redisPassword`, `redisDB`, ...).
//! - [`server_error`]: Redis' error replies as the contract's errors.
//! - [`Lazy`] (from the SDK, re-exported): a connection opened on first use
//!   and dropped after any I/O or protocol failure.
//!
//! It knows nothing of state stores or brokers; it reaches Redis over plain
//! `std::net` (wasi:sockets inside a component).

mod conn;
mod endpoint;
mod errors;
pub mod resp;

pub use conn::{Connection, unexpected};
pub use endpoint::Endpoint;
pub use errors::server_error;
pub use outrig_sdk::lazy::{Lazy, was_closed};
pub use resp::{Cmd, Reply};
