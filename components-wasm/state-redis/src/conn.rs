//! The store's connection: a `redis-wire` connection that also knows the SHA1
//! under which the server cached the write script, loaded in the handshake's
//! round trip.
//!
//! Every `Err` from this module means the connection is out of step with the
//! server (or gone) and must be dropped; error *replies* come back as
//! [`Reply::Error`] values and leave the connection usable.

use crate::config::RedisConfig;
use crate::script;
use redis_wire::{Cmd, Reply};
use std::io::{self, Read, Write};
use std::net::TcpStream;

pub use redis_wire::unexpected;

/// A handshaken Redis connection with the write script loaded.
pub struct Connection<S: Read + Write> {
    inner: redis_wire::Connection<S>,
    script_sha: String,
}

impl Connection<TcpStream> {
    /// Opens a TCP connection to the configured server, logs in and loads
    /// the write script.
    pub fn open(config: &RedisConfig) -> io::Result<Self> {
        let load = Cmd::new("SCRIPT").arg("LOAD").arg(script::APPLY);
        let (inner, replies) = redis_wire::Connection::open(&config.endpoint, &[load])?;
        let script_sha = match replies.last() {
            Some(Reply::Bulk(Some(sha))) => String::from_utf8_lossy(sha).into_owned(),
            other => return Err(unexpected("SCRIPT LOAD", other)),
        };
        Ok(Connection { inner, script_sha })
    }
}

impl<S: Read + Write> Connection<S> {
    /// The SHA1 of the write script, for `EVALSHA`.
    pub fn script_sha(&self) -> &str {
        &self.script_sha
    }

    /// Sends all commands in one write, then reads exactly one reply each.
    pub fn pipeline(&mut self, commands: &[Cmd]) -> io::Result<Vec<Reply>> {
        self.inner.pipeline(commands)
    }
}

#[cfg(test)]
impl<S: Read + Write> Connection<S> {
    /// Makes the next `EVALSHA` miss, as after `SCRIPT FLUSH` on the server,
    /// without flushing the shared server's cache.
    pub fn forget_script(&mut self) {
        self.script_sha = "0000000000000000000000000000000000000000".into();
    }
}
