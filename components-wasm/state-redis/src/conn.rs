//! One connection to Redis: opening it (TCP, `AUTH`, `SELECT`, loading the
//! write script) and running pipelines of commands over it.
//!
//! Every `Err` from this module means the connection is out of step with the
//! server (or gone) and must be dropped; error *replies* come back as
//! [`Reply::Error`] values and leave the connection usable.

use crate::config::RedisConfig;
use crate::resp::{Cmd, Reply, read_reply};
use crate::script;
use std::io::{self, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};

/// A Redis connection that has been authenticated, has its database selected
/// and knows the SHA1 under which the server cached the write script.
pub struct Connection<S: Read + Write> {
    stream: BufReader<S>,
    script_sha: String,
}

impl Connection<TcpStream> {
    /// Opens a TCP connection to `config.address` and performs the handshake.
    pub fn open(config: &RedisConfig) -> io::Result<Self> {
        let stream = connect_tcp(config)?;
        Connection::handshake(stream, config)
    }
}

/// Tries each address `config.address` resolves to, with the connect timeout.
fn connect_tcp(config: &RedisConfig) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in config.address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, config.connect_timeout) {
            Ok(stream) => {
                // Socket options are best effort: a WASI implementation that
                // lacks one still gives a working (if less guarded) socket,
                // and the host's per-call deadline bounds a stuck call.
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(config.io_timeout));
                let _ = stream.set_write_timeout(Some(config.io_timeout));
                return Ok(stream);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} resolves to no address", config.address),
        )
    }))
}

impl<S: Read + Write> Connection<S> {
    /// Authenticates, selects the database and loads the write script, all in
    /// one round trip. A refused `AUTH` or `SELECT` fails the connection.
    pub fn handshake(stream: S, config: &RedisConfig) -> io::Result<Self> {
        let mut setup = Vec::new();
        if let Some(password) = &config.password {
            setup.push(match &config.username {
                Some(user) => Cmd::new("AUTH").arg(user).arg(password),
                None => Cmd::new("AUTH").arg(password),
            });
        }
        if config.database != 0 {
            setup.push(Cmd::new("SELECT").arg(config.database.to_string()));
        }
        setup.push(Cmd::new("SCRIPT").arg("LOAD").arg(script::APPLY));
        let mut conn = Connection {
            stream: BufReader::new(stream),
            script_sha: String::new(),
        };
        let replies = conn.pipeline(&setup)?;
        if let Some(message) = replies.iter().find_map(Reply::as_error) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("redis refused the connection setup: {message}"),
            ));
        }
        conn.script_sha = match replies.last() {
            Some(Reply::Bulk(Some(sha))) => String::from_utf8_lossy(sha).into_owned(),
            other => return Err(unexpected("SCRIPT LOAD", other)),
        };
        Ok(conn)
    }

    /// The SHA1 of the write script, for `EVALSHA`.
    pub fn script_sha(&self) -> &str {
        &self.script_sha
    }

    /// Sends all commands in one write, then reads exactly one reply each.
    pub fn pipeline(&mut self, commands: &[Cmd]) -> io::Result<Vec<Reply>> {
        let mut out = Vec::new();
        for command in commands {
            command.encode_into(&mut out);
        }
        let stream = self.stream.get_mut();
        stream.write_all(&out)?;
        stream.flush()?;
        commands
            .iter()
            .map(|_| read_reply(&mut self.stream))
            .collect()
    }
}

/// The error for a reply of the wrong shape: the server is not what we think.
pub fn unexpected(what: &str, reply: Option<&Reply>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply to {what}: {reply:?}"),
    )
}

#[cfg(test)]
impl<S: Read + Write> Connection<S> {
    /// Makes the next `EVALSHA` miss, as after `SCRIPT FLUSH` on the server,
    /// without flushing the shared server's cache.
    pub fn forget_script(&mut self) {
        self.script_sha = "0000000000000000000000000000000000000000".into();
    }
}
