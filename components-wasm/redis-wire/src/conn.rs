//! One connection to Redis: opening it (TCP, `AUTH`, `SELECT`, plus whatever
//! setup the component adds) and running pipelines of commands over it.
//!
//! Every `Err` from this module means the connection is out of step with the
//! server (or gone) and must be dropped; error *replies* come back as
//! [`Reply::Error`] values and leave the connection usable.

use crate::endpoint::Endpoint;
use crate::resp::{Cmd, Reply, read_reply};
use std::io::{self, BufReader, Read, Write};
use std::net::TcpStream;

/// A Redis connection that has been authenticated and has its database
/// selected.
pub struct Connection<S: Read + Write> {
    stream: BufReader<S>,
}

impl Connection<TcpStream> {
    /// Opens a TCP connection to the endpoint and performs the handshake,
    /// running `setup` in the same round trip; returns `setup`'s replies.
    pub fn open(endpoint: &Endpoint, setup: &[Cmd]) -> io::Result<(Self, Vec<Reply>)> {
        Connection::handshake(endpoint.connect()?, endpoint, setup)
    }
}

impl<S: Read + Write> Connection<S> {
    /// Authenticates, selects the database and runs `setup`, all in one
    /// round trip. A refused `AUTH`, `SELECT` or setup command fails the
    /// connection; otherwise `setup`'s replies are returned in order.
    pub fn handshake(
        stream: S,
        endpoint: &Endpoint,
        setup: &[Cmd],
    ) -> io::Result<(Self, Vec<Reply>)> {
        let mut commands = Vec::new();
        if let Some(password) = &endpoint.password {
            commands.push(match &endpoint.username {
                Some(user) => Cmd::new("AUTH").arg(user).arg(password),
                None => Cmd::new("AUTH").arg(password),
            });
        }
        if endpoint.database != 0 {
            commands.push(Cmd::new("SELECT").arg(endpoint.database.to_string()));
        }
        let login = commands.len();
        commands.extend_from_slice(setup);
        let mut conn = Connection {
            stream: BufReader::new(stream),
        };
        let mut replies = conn.pipeline(&commands)?;
        if let Some(message) = replies.iter().find_map(Reply::as_error) {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("redis refused the connection setup: {message}"),
            ));
        }
        let setup_replies = replies.split_off(login);
        Ok((conn, setup_replies))
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

    /// Runs one command and returns its reply.
    pub fn run(&mut self, command: Cmd) -> io::Result<Reply> {
        let mut replies = self.pipeline(std::slice::from_ref(&command))?;
        replies.pop().ok_or_else(|| unexpected("a command", None))
    }

    /// The underlying stream, for socket options such as a longer read
    /// timeout around a blocking command.
    pub fn stream_mut(&mut self) -> &mut S {
        self.stream.get_mut()
    }
}

/// The error for a reply of the wrong shape: the server is not what we think.
pub fn unexpected(what: &str, reply: Option<&Reply>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply to {what}: {reply:?}"),
    )
}
