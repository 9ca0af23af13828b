//! `redis-wire`: what every Redis-backed component shares, so `state.redis`
//! and `pubsub.redis` speak to Redis through one tested client.
//!
//! - [`resp`]: the RESP2 wire format, over any `BufRead`.
//! - [`Connection`]: a handshaken connection over any `Read + Write` that runs
//!   pipelines of commands.
//! - [`Endpoint`]: where the server is and how to log in, read from Dapr's
//!   metadata names (`redisHost`, `redisPassword`, `redisDB`, ...).
//! - [`Lazy`]: a connection opened on first use and dropped after any I/O or
//!   protocol failure, so a component never reuses a poisoned connection.
//!
//! It knows nothing of state stores or brokers; it reaches Redis over plain
//! `std::net` (wasi:sockets inside a component).

mod conn;
mod endpoint;
mod lazy;
pub mod resp;

pub use conn::{Connection, unexpected};
pub use endpoint::Endpoint;
pub use lazy::{Lazy, server_error, was_closed};
pub use resp::{Cmd, Reply};
