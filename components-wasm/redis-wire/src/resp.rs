//! RESP2, the Redis wire protocol: commands are encoded into a buffer, replies
//! are decoded from any [`BufRead`]. Plain Rust over `std::io`, so it is tested
//! natively and knows nothing of sockets, scripts or Dapr.

use std::io::{self, BufRead, Read};

/// Bulk strings larger than this are refused: Redis itself caps them at 512 MiB.
const MAX_BULK: usize = 512 * 1024 * 1024;
/// Arrays longer than this are refused, so a corrupt length cannot make us
/// reserve memory for billions of elements.
const MAX_ARRAY: usize = 16 * 1024 * 1024;
/// Nesting deeper than this is refused: no reply this component asks for nests
/// beyond two levels, and unbounded recursion would let a server crash us.
const MAX_DEPTH: usize = 8;
/// A status, error or length line longer than this is a protocol violation.
const MAX_LINE: usize = 64 * 1024;

/// One command, encoded as a RESP array of bulk strings as arguments are added.
#[derive(Debug, Clone)]
pub struct Cmd {
    count: usize,
    body: Vec<u8>,
}

impl Cmd {
    /// Starts a command with its name, e.g. `Cmd::new("HGETALL")`.
    pub fn new(name: &str) -> Self {
        Cmd {
            count: 0,
            body: Vec::new(),
        }
        .arg(name)
    }

    /// Appends one binary-safe argument.
    pub fn arg(mut self, arg: impl AsRef<[u8]>) -> Self {
        let arg = arg.as_ref();
        self.count += 1;
        self.body.push(b'$');
        self.body
            .extend_from_slice(arg.len().to_string().as_bytes());
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(arg);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// Appends the command's wire form to `out`, so a pipeline is one buffer.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(b'*');
        out.extend_from_slice(self.count.to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
    }
}

/// A decoded reply. Error replies are data, not I/O failures: after one the
/// connection is still in step with the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK` and other simple strings.
    Status(String),
    /// `-ERR ...`: the command failed but the connection is fine.
    Error(String),
    /// `:42`.
    Integer(i64),
    /// `$n` bulk string; `None` is the nil bulk string.
    Bulk(Option<Vec<u8>>),
    /// `*n` array; `None` is the nil array.
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The reply as a server error message, if it is one.
    pub fn as_error(&self) -> Option<&str> {
        match self {
            Reply::Error(message) => Some(message),
            _ => None,
        }
    }
}

/// Reads one complete reply. Any `Err` means the stream is no longer in step
/// with the server and the connection must be dropped.
pub fn read_reply(input: &mut impl BufRead) -> io::Result<Reply> {
    read_at_depth(input, 0)
}

fn read_at_depth(input: &mut impl BufRead, depth: usize) -> io::Result<Reply> {
    if depth > MAX_DEPTH {
        return Err(violation("replies nested too deeply"));
    }
    let line = read_line(input)?;
    let (kind, rest) = line
        .split_first()
        .ok_or_else(|| violation("empty reply line"))?;
    let text = || String::from_utf8_lossy(rest).into_owned();
    match kind {
        b'+' => Ok(Reply::Status(text())),
        b'-' => Ok(Reply::Error(text())),
        b':' => Ok(Reply::Integer(parse_int(rest)?)),
        b'$' => match length(rest, MAX_BULK)? {
            None => Ok(Reply::Bulk(None)),
            Some(len) => read_bulk(input, len).map(|bytes| Reply::Bulk(Some(bytes))),
        },
        b'*' => match length(rest, MAX_ARRAY)? {
            None => Ok(Reply::Array(None)),
            Some(len) => (0..len)
                .map(|_| read_at_depth(input, depth + 1))
                .collect::<io::Result<Vec<_>>>()
                .map(|items| Reply::Array(Some(items))),
        },
        other => Err(violation(format!(
            "unexpected reply type byte {other:#04x}"
        ))),
    }
}

/// Reads a line up to CRLF, without the CRLF, refusing overly long lines.
fn read_line(input: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    if read == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    match line.strip_suffix(b"\r\n") {
        Some(body) => Ok(body.to_vec()),
        None => Err(violation("reply line not terminated by CRLF")),
    }
}

fn read_bulk(input: &mut impl BufRead, len: usize) -> io::Result<Vec<u8>> {
    // Grow as bytes arrive rather than trusting the announced length up front.
    let mut bytes = Vec::with_capacity(len.min(64 * 1024));
    input.by_ref().take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "bulk string cut short",
        ));
    }
    let mut crlf = [0u8; 2];
    input.read_exact(&mut crlf)?;
    if &crlf != b"\r\n" {
        return Err(violation("bulk string not terminated by CRLF"));
    }
    Ok(bytes)
}

/// A `$`/`*` length: `-1` is nil, anything else must be within `max`.
fn length(raw: &[u8], max: usize) -> io::Result<Option<usize>> {
    match parse_int(raw)? {
        -1 => Ok(None),
        n if n >= 0 && (n as u64) <= max as u64 => Ok(Some(n as usize)),
        n => Err(violation(format!("length {n} out of range"))),
    }
}

fn parse_int(raw: &[u8]) -> io::Result<i64> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            violation(format!(
                "`{}` is not an integer",
                String::from_utf8_lossy(raw)
            ))
        })
}

fn violation(message: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("redis protocol error: {}", message.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_encode_as_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        Cmd::new("SET")
            .arg("k")
            .arg(b"a\r\nb")
            .encode_into(&mut out);
        assert_eq!(out, b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\na\r\nb\r\n");
    }

    #[test]
    fn replies_decode() {
        let cases: &[(&[u8], Reply)] = &[
            (b"+OK\r\n", Reply::Status("OK".into())),
            (b"-ERR boom\r\n", Reply::Error("ERR boom".into())),
            (b":-7\r\n", Reply::Integer(-7)),
            (b"$-1\r\n", Reply::Bulk(None)),
            (b"$0\r\n\r\n", Reply::Bulk(Some(vec![]))),
            (b"$4\r\na\r\nb\r\n", Reply::Bulk(Some(b"a\r\nb".to_vec()))),
            (b"*-1\r\n", Reply::Array(None)),
            (
                b"*2\r\n$1\r\nx\r\n*1\r\n:1\r\n",
                Reply::Array(Some(vec![
                    Reply::Bulk(Some(b"x".to_vec())),
                    Reply::Array(Some(vec![Reply::Integer(1)])),
                ])),
            ),
        ];
        for (wire, expected) in cases {
            let mut input = *wire;
            assert_eq!(
                &read_reply(&mut input).expect("decodes"),
                expected,
                "{wire:?}"
            );
            assert!(input.is_empty(), "{wire:?} left bytes unread");
        }
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        let nested = format!("{}:1\r\n", "*1\r\n".repeat(MAX_DEPTH + 2));
        let cases: &[&[u8]] = &[
            b"",
            b"+OK",
            b"?what\r\n",
            b":12x\r\n",
            b"$5\r\nab\r\n",
            b"$2\r\nabXY",
            b"$-2\r\n",
            b"*99999999999\r\n",
            b"*2\r\n:1\r\n",
            nested.as_bytes(),
        ];
        for wire in cases {
            let mut input = *wire;
            assert!(
                read_reply(&mut input).is_err(),
                "{:?} was accepted",
                String::from_utf8_lossy(wire)
            );
        }
    }
}
