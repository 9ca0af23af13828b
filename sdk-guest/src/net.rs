//! TCP for components that speak a backend's protocol themselves: opening a
//! guarded connection, naming this instance to the backend, and reporting a
//! failed connection as the contract's error.

use crate::Error;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Opens a TCP connection to `address` (`host:port`), trying each address it
/// resolves to within `connect_timeout`, with `io_timeout` on every read and
/// write so a dead server cannot pin the instance.
///
/// Write each request in one write, with whatever the server does not
/// answer (acks, settles) in front of it. WASI 0.2 has no `TCP_NODELAY`
/// (`set_nodelay` fails there), so Nagle's algorithm stays on: bytes the
/// server does not answer, written alone, hold the next write back until
/// the server's delayed ACK, some 40 ms. The NATS and RabbitMQ built-ins
/// lost nine tenths of their throughput to this before they coalesced.
pub fn connect(
    address: &str,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, connect_timeout) {
            Ok(stream) => {
                // Socket options are best effort: a WASI implementation that
                // lacks one still gives a working (if less guarded) socket,
                // and the host's per-call deadline bounds a stuck call.
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(io_timeout));
                let _ = stream.set_write_timeout(Some(io_timeout));
                return Ok(stream);
            }
            Err(err) => last_error = Some(err),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("{address} resolves to no address"),
        )
    }))
}

/// The contract's error for a failed connection to `backend` at `address`,
/// calling a timeout a timeout (a timed-out read on WASI reports EAGAIN).
pub fn unavailable(backend: &str, address: &str, io_timeout: Duration, err: io::Error) -> Error {
    match err.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::unavailable(format!(
            "{backend} at {address}: no answer within {io_timeout:?}"
        )),
        _ => Error::unavailable(format!("{backend} at {address}: {err}")),
    }
}

/// `prefix` and 64 random bits in hex: a name (consumer, inbox) no other
/// instance will pick. std's hasher keys come from the platform's
/// randomness, wasi:random inside a component.
pub fn instance_name(prefix: &str) -> String {
    format!(
        "{prefix}{:016x}",
        RandomState::new().hash_one(Instant::now())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names_differ_and_refused_connections_are_unavailable() {
        assert_ne!(instance_name("c-"), instance_name("c-"));
        let refused = connect(
            "127.0.0.1:1",
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let err = unavailable(
            "x",
            "127.0.0.1:1",
            Duration::ZERO,
            refused.expect_err("refused"),
        );
        assert!(matches!(err, Error::Unavailable(m) if m.starts_with("x at 127.0.0.1:1")));
    }
}
