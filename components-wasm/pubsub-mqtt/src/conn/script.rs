//! A scripted broker for connection tests: bytes it will send, a few at a
//! time, and what the client wrote.

use super::Transport;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Duration;

/// A fake stream. Once its input is used up, a read waits out the read
/// timeout and reports it (or reports end of stream, with `eof`).
pub struct Script {
    input: VecDeque<u8>,
    /// Everything the client wrote.
    pub output: Vec<u8>,
    /// The most bytes one read returns, to split packets across reads.
    chunk: usize,
    timeout: Option<Duration>,
    eof: bool,
}

impl Script {
    /// A stream that will deliver `input`, `chunk` bytes a read at most.
    pub fn new(input: &[u8], chunk: usize, eof: bool) -> Self {
        Script {
            input: input.iter().copied().collect(),
            output: Vec::new(),
            chunk,
            timeout: None,
            eof,
        }
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            if self.eof {
                return Ok(0);
            }
            std::thread::sleep(self.timeout.unwrap_or(Duration::ZERO));
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.chunk).min(self.input.len());
        for slot in &mut buf[..n] {
            *slot = self.input.pop_front().unwrap_or_default();
        }
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Transport for Script {
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        self.timeout = timeout;
        Ok(())
    }
}
