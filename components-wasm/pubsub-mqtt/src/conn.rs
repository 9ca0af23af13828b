//! One MQTT connection over a byte stream: the `CONNECT` handshake, packet
//! framing that survives read timeouts mid-packet, packet ids for what the
//! client sends, and keep-alive `PINGREQ`s while it waits.
//!
//! Every `Err` from this module means the connection is out of step with the
//! broker (or gone) and must be dropped.

use crate::wire::{self, Connect, Malformed, Packet};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A byte stream whose reads can be bounded in time, so a connection can
/// wait for the broker and still send its keep-alive pings.
pub trait Transport: Read + Write {
    /// As [`TcpStream::set_read_timeout`]; `None` blocks.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// The shortest read timeout: a zero timeout means "block" to sockets.
const MIN_READ_WAIT: Duration = Duration::from_millis(1);

/// A connection the broker has accepted.
pub struct Connection<S> {
    stream: S,
    /// Bytes read but not yet decoded (at most part of one packet between
    /// calls, once the whole packets have been taken).
    buf: Vec<u8>,
    next_id: u16,
    keep_alive: Duration,
    io_timeout: Duration,
    last_sent: Instant,
    ping_sent: Option<Instant>,
}

impl<S: Transport> Connection<S> {
    /// Sends `CONNECT` and waits for `CONNACK`, which MQTT makes the
    /// broker's first packet. Answers whether the broker kept a session for
    /// this client id (always `false` for a clean session).
    pub fn open(stream: S, connect: &Connect, io_timeout: Duration) -> io::Result<(Self, bool)> {
        let mut conn = Connection {
            stream,
            buf: Vec::new(),
            next_id: 0,
            keep_alive: Duration::from_secs(u64::from(connect.keep_alive_secs)),
            io_timeout,
            last_sent: Instant::now(),
            ping_sent: None,
        };
        conn.send(&Packet::Connect(connect.clone()))?;
        match conn.next(Instant::now() + io_timeout)? {
            Some(Packet::Connack {
                session_present,
                code: 0,
            }) => Ok((conn, session_present)),
            Some(Packet::Connack { code, .. }) => Err(refused(code)),
            Some(other) => Err(violation(format!("expected CONNACK, got {other:?}"))),
            None => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "no CONNACK from the broker",
            )),
        }
    }

    /// A packet id no request in flight on this connection uses (1 to
    /// 65535, cycling; the broker numbers its own messages separately).
    pub fn packet_id(&mut self) -> u16 {
        self.next_id = self.next_id.checked_add(1).unwrap_or(1);
        self.next_id
    }

    /// Writes one packet.
    pub fn send(&mut self, packet: &Packet) -> io::Result<()> {
        self.send_all(std::slice::from_ref(packet))
    }

    /// Writes several packets with one flush (a pipelined batch).
    pub fn send_all(&mut self, packets: &[Packet]) -> io::Result<()> {
        let mut bytes = Vec::new();
        for packet in packets {
            bytes.extend(packet.encode().map_err(invalid_input)?);
        }
        self.stream.write_all(&bytes)?;
        self.stream.flush()?;
        self.last_sent = Instant::now();
        Ok(())
    }

    /// The next packet from the broker, or `None` once `deadline` has
    /// passed with none (a deadline already past still takes what has
    /// arrived). Sends `PINGREQ` when half the keep-alive has gone by without
    /// a packet sent, and fails when the broker does not answer a ping within
    /// the I/O timeout.
    pub fn next(&mut self, deadline: Instant) -> io::Result<Option<Packet>> {
        loop {
            if let Some((packet, used)) =
                Packet::decode(&self.buf, wire::MAX_REMAINING).map_err(invalid_data)?
            {
                self.buf.drain(..used);
                if packet == Packet::Pingresp {
                    self.ping_sent = None;
                }
                return Ok(Some(packet));
            }
            let now = Instant::now();
            let mut wait = deadline.saturating_duration_since(now);
            match self.ping_sent {
                Some(sent) if now >= sent + self.io_timeout => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the broker did not answer PINGREQ",
                    ));
                }
                Some(sent) => wait = wait.min(sent + self.io_timeout - now),
                None if self.keep_alive.is_zero() => {}
                None => {
                    let ping_at = self.last_sent + self.keep_alive / 2;
                    if now >= ping_at {
                        self.send(&Packet::Pingreq)?;
                        self.ping_sent = Some(now);
                        wait = wait.min(self.io_timeout);
                    } else {
                        wait = wait.min(ping_at - now);
                    }
                }
            }
            if !self.read_some(wait.max(MIN_READ_WAIT))? && Instant::now() >= deadline {
                return Ok(None);
            }
        }
    }

    /// Reads packets until `wanted` accepts one, handing every other packet
    /// to `other`; fails if none comes within the I/O timeout.
    pub fn wait_for(
        &mut self,
        mut wanted: impl FnMut(&Packet) -> bool,
        mut other: impl FnMut(&mut Self, Packet) -> io::Result<()>,
    ) -> io::Result<Packet> {
        let deadline = Instant::now() + self.io_timeout;
        loop {
            match self.next(deadline)? {
                Some(packet) if wanted(&packet) => return Ok(packet),
                Some(packet) => other(self, packet)?,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "no answer from the broker",
                    ));
                }
            }
        }
    }

    /// Proves with a `PINGREQ` round trip that a connection silent for the
    /// keep-alive or longer (the broker drops one silent for one and a half
    /// times it) is still open, so what is written next is not lost in a
    /// socket the broker has closed. Packets arriving meanwhile go to
    /// `other`.
    pub fn ensure_alive(
        &mut self,
        other: impl FnMut(&mut Self, Packet) -> io::Result<()>,
    ) -> io::Result<()> {
        if self.keep_alive.is_zero() || self.last_sent.elapsed() < self.keep_alive {
            return Ok(());
        }
        self.send(&Packet::Pingreq)?;
        self.ping_sent = Some(Instant::now());
        self.wait_for(|packet| *packet == Packet::Pingresp, other)
            .map(drop)
    }

    /// The underlying stream (tests shut it down to simulate a failure).
    #[cfg(test)]
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Reads what arrives within `wait` into the buffer; `false` when
    /// nothing did.
    fn read_some(&mut self, wait: Duration) -> io::Result<bool> {
        // Best effort, as in `outrig_sdk::net::connect`: the host's call
        // deadline bounds a read that cannot be timed.
        let _ = self.stream.set_read_timeout(Some(wait));
        let mut chunk = [0u8; 16 * 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the broker closed the connection",
            )),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}

/// The error for a `CONNACK` refusal, in the words of MQTT 3.1.1 §3.2.2.3.
fn refused(code: u8) -> io::Error {
    let (kind, reason) = match code {
        1 => (io::ErrorKind::Unsupported, "MQTT 3.1.1 is not supported"),
        2 => (io::ErrorKind::InvalidInput, "the client id was rejected"),
        3 => (
            io::ErrorKind::ConnectionRefused,
            "the server is unavailable",
        ),
        4 => (io::ErrorKind::PermissionDenied, "bad user name or password"),
        5 => (io::ErrorKind::PermissionDenied, "not authorized"),
        _ => (io::ErrorKind::ConnectionRefused, "refused"),
    };
    io::Error::new(
        kind,
        format!("the broker refused the connection: {reason} (code {code})"),
    )
}

/// The error for a packet the client did not expect at this point.
pub fn violation(message: impl Into<String>) -> io::Error {
    invalid_data(Malformed(message.into()))
}

fn invalid_data(err: Malformed) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

fn invalid_input(err: Malformed) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, err)
}

#[cfg(test)]
pub mod script;
#[cfg(test)]
mod tests;
