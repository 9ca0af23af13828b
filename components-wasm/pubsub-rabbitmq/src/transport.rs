//! Frames over a byte stream, against deadlines, with heartbeats.
//!
//! Bytes read are kept in a buffer until they make a whole frame, so a read
//! that times out half-way through a frame loses nothing: waits are cut into
//! short reads, between which the heartbeats this client owes the server are
//! sent and a server gone silent is noticed.

use crate::wire::{FRAME_HEARTBEAT, Frame};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How many bytes one read asks for.
const READ_CHUNK: usize = 64 * 1024;
/// The longest single read while waiting with heartbeats off, so a deadline
/// is noticed even on a socket that never times out by itself.
const LONGEST_READ: Duration = Duration::from_secs(1);

/// A byte stream whose reads can be bounded in time: a TCP socket, or a
/// script in tests.
pub trait Socket: Read + Write {
    /// Bounds the next reads; best effort (a socket that cannot is still
    /// usable, its waits then end when the server next speaks).
    fn set_read_timeout(&mut self, timeout: Duration);
}

impl Socket for TcpStream {
    fn set_read_timeout(&mut self, timeout: Duration) {
        let _ = TcpStream::set_read_timeout(self, Some(timeout.max(Duration::from_millis(1))));
    }
}

/// A stream read and written in frames.
pub struct Transport<S> {
    stream: S,
    buf: Vec<u8>,
    /// Frames that need no reply (acks), sent in front of the next write.
    deferred: Vec<u8>,
    /// The largest frame either side may send, overhead included.
    frame_max: usize,
    /// The negotiated heartbeat interval; `None` when heartbeats are off.
    heartbeat: Option<Duration>,
    last_read: Instant,
    last_write: Instant,
}

impl<S: Socket> Transport<S> {
    /// Frames over `stream`, with AMQP's smallest frame size until the
    /// connection is tuned.
    pub fn new(stream: S) -> Self {
        let now = Instant::now();
        Transport {
            stream,
            buf: Vec::new(),
            deferred: Vec::new(),
            frame_max: 4096,
            heartbeat: None,
            last_read: now,
            last_write: now,
        }
    }

    /// Applies what `connection.tune` settled.
    pub fn tune(&mut self, frame_max: usize, heartbeat: Option<Duration>) {
        self.frame_max = frame_max;
        self.heartbeat = heartbeat;
    }

    /// The largest frame this connection may send, overhead included.
    pub fn frame_max(&self) -> usize {
        self.frame_max
    }

    /// The stream itself, for tests that break it.
    #[cfg(test)]
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Writes `bytes` (whole frames), after the deferred ones, in one
    /// write, and flushes them; nothing at all when both are empty.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if bytes.is_empty() && self.deferred.is_empty() {
            return Ok(());
        }
        let result = if self.deferred.is_empty() {
            self.stream.write_all(bytes)
        } else {
            self.deferred.extend_from_slice(bytes);
            let all = std::mem::take(&mut self.deferred);
            self.stream.write_all(&all)
        };
        result.and_then(|()| self.stream.flush()).map_err(gone)?;
        self.last_write = Instant::now();
        Ok(())
    }

    /// Keeps `bytes` (whole frames the server does not answer) for the
    /// next write.
    ///
    /// The host's sockets keep Nagle's algorithm on (WASI cannot turn it
    /// off): frames nobody answers, written alone, hold the next write back
    /// until the server's delayed ACK, some 40 ms. Sent in front of a
    /// request instead, they go out at once and the reply acknowledges them.
    pub fn defer(&mut self, bytes: &[u8]) {
        self.deferred.extend_from_slice(bytes);
    }

    /// Whether deferred frames wait for a write.
    pub fn has_deferred(&self) -> bool {
        !self.deferred.is_empty()
    }

    /// The next frame other than a heartbeat, or `None` once `deadline`
    /// passes without one. Sends the heartbeats due meanwhile; a server
    /// silent for two heartbeat intervals is an error.
    pub fn next_frame(&mut self, deadline: Instant) -> io::Result<Option<Frame>> {
        // Silence counts from the start of this wait: between calls nobody
        // reads, and what the server sent meanwhile is in the socket.
        let waiting_since = Instant::now();
        loop {
            while let Some((frame, used)) = Frame::parse(&self.buf, self.frame_max)? {
                self.buf.drain(..used);
                if frame.kind != FRAME_HEARTBEAT {
                    return Ok(Some(frame));
                }
            }
            let now = Instant::now();
            let mut longest = LONGEST_READ;
            if let Some(interval) = self.heartbeat {
                if now.duration_since(self.last_read.max(waiting_since)) > interval * 2 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("rabbitmq sent nothing for two heartbeat intervals ({interval:?})"),
                    ));
                }
                if now.duration_since(self.last_write) >= interval / 2 {
                    let mut beat = Vec::new();
                    Frame::encode(FRAME_HEARTBEAT, 0, &[], &mut beat);
                    self.write(&beat)?;
                }
                longest = interval / 2;
            }
            if now >= deadline {
                return Ok(None);
            }
            self.stream.set_read_timeout((deadline - now).min(longest));
            self.fill()?;
        }
    }

    /// Reads what the stream has into the buffer; a timed-out read is not
    /// an error (the caller checks its deadline), the end of the stream is.
    fn fill(&mut self) -> io::Result<()> {
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let read = self.stream.read(&mut self.buf[len..]);
        self.buf.truncate(len + *read.as_ref().unwrap_or(&0));
        match read {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "rabbitmq closed the connection",
            )),
            Ok(_) => {
                self.last_read = Instant::now();
                Ok(())
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(())
            }
            Err(err) => Err(gone(err)),
        }
    }
}

/// A read or write that failed other than by timing out: the connection is
/// gone, whatever the platform calls it (WASI reports a connection the
/// broker dropped as a bare I/O error), so the error says it was closed and
/// a call on a reused connection is retried on a fresh one (see
/// `outrig_sdk::lazy`). A timeout stays a timeout: the broker is there but
/// not answering.
fn gone(err: io::Error) -> io::Error {
    use io::ErrorKind::{TimedOut, WouldBlock};
    if matches!(err.kind(), TimedOut | WouldBlock) || outrig_sdk::lazy::was_closed(&err) {
        return err;
    }
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        format!("the connection failed: {err}"),
    )
}

#[cfg(test)]
pub mod script {
    //! A scripted server for tests: bytes it sends (in chunks, with timeouts
    //! between them) and everything the client wrote.

    use super::Socket;
    use std::collections::VecDeque;
    use std::io::{self, Read, Write};
    use std::time::Duration;

    /// What one read of the script returns.
    pub enum Step {
        Bytes(Vec<u8>),
        /// A read that timed out (after a few milliseconds).
        Timeout,
    }

    /// A fake server stream.
    #[derive(Default)]
    pub struct Script {
        pub steps: VecDeque<Step>,
        pub written: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.steps.pop_front() {
                None => Ok(0),
                Some(Step::Timeout) => {
                    std::thread::sleep(Duration::from_millis(5));
                    Err(io::ErrorKind::WouldBlock.into())
                }
                Some(Step::Bytes(mut bytes)) => {
                    let n = bytes.len().min(buf.len());
                    buf[..n].copy_from_slice(&bytes[..n]);
                    if n < bytes.len() {
                        self.steps.push_front(Step::Bytes(bytes.split_off(n)));
                    }
                    Ok(n)
                }
            }
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Socket for Script {
        fn set_read_timeout(&mut self, _: Duration) {}
    }
}

#[cfg(test)]
mod tests {
    use super::script::{Script, Step};
    use super::*;
    use crate::wire::{FRAME_BODY, FRAME_METHOD};

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::encode(kind, 1, payload, &mut out);
        out
    }

    fn transport(steps: Vec<Step>) -> Transport<Script> {
        let mut transport = Transport::new(Script {
            steps: steps.into(),
            written: Vec::new(),
        });
        transport.tune(4096, None);
        transport
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn a_frame_split_by_a_timeout_is_kept_and_heartbeats_are_skipped() {
        let mut heartbeat = Vec::new();
        Frame::encode(FRAME_HEARTBEAT, 0, &[], &mut heartbeat);
        let body = frame(FRAME_BODY, b"payload");
        let steps = vec![
            Step::Bytes(heartbeat),
            Step::Bytes(body[..5].to_vec()),
            Step::Timeout,
            Step::Bytes(body[5..].to_vec()),
        ];
        let mut transport = transport(steps);
        let got = transport.next_frame(soon()).expect("no error");
        assert_eq!(got.map(|f| f.payload), Some(b"payload".to_vec()));
        assert!(
            transport.next_frame(soon()).is_err(),
            "end of stream is an error"
        );
    }

    #[test]
    fn a_passed_deadline_returns_none_and_heartbeats_are_sent_when_due() {
        let mut transport = transport(vec![Step::Timeout]);
        transport.tune(4096, Some(Duration::ZERO));
        transport.last_read = Instant::now() + Duration::from_secs(60);
        let got = transport.next_frame(Instant::now()).expect("no error");
        assert!(got.is_none());
        let mut heartbeat = Vec::new();
        Frame::encode(FRAME_HEARTBEAT, 0, &[], &mut heartbeat);
        assert_eq!(transport.stream_mut().written, heartbeat);
    }

    /// A socket that fails as WASI does once the broker dropped it.
    struct Dropped;

    impl Read for Dropped {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(5))
        }
    }

    impl Write for Dropped {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::from_raw_os_error(5))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Socket for Dropped {
        fn set_read_timeout(&mut self, _: Duration) {}
    }

    #[test]
    fn a_failed_read_or_write_says_the_connection_was_closed() {
        let mut transport = Transport::new(Dropped);
        let write = transport.write(b"x").expect_err("write fails");
        let read = transport.next_frame(soon()).expect_err("read fails");
        for err in [write, read] {
            assert!(outrig_sdk::lazy::was_closed(&err), "{err:?}");
        }
    }

    #[test]
    fn garbage_and_silence_past_two_heartbeats_are_errors() {
        let mut garbage = transport(vec![Step::Bytes(b"HTTP/1.1 400 Bad".to_vec())]);
        assert!(garbage.next_frame(soon()).is_err());
        let mut oversized = transport(vec![Step::Bytes(frame(FRAME_METHOD, &[0; 5000]))]);
        assert!(oversized.next_frame(soon()).is_err());
        let mut silent = transport((0..20).map(|_| Step::Timeout).collect());
        silent.tune(4096, Some(Duration::from_millis(10)));
        let err = silent.next_frame(soon()).expect_err("silent server");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }
}
