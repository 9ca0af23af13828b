//! The PostgreSQL v3 wire protocol's framing: frontend messages encoded into
//! a buffer, backend messages read from any [`Read`] and picked apart.
//! Plain Rust over `std::io`; it knows no SQL and no state store.

use std::io::{self, Read};

/// Protocol version 3.0, as sent in the startup message.
const PROTOCOL_VERSION: i32 = 196_608;
/// Backend messages larger than this are refused: PostgreSQL caps a field at
/// 1 GiB, and a corrupt length must not make us reserve more.
const MAX_MESSAGE: usize = 1 << 30;

/// Frontend messages, appended to one buffer so a whole exchange is one write.
#[derive(Debug, Default)]
pub struct Outbox {
    buf: Vec<u8>,
}

impl Outbox {
    /// The bytes to send.
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The untyped startup message: protocol version and parameters.
    pub fn startup(&mut self, params: &[(&str, &str)]) {
        self.message(None, |body| {
            body.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
            for (key, value) in params {
                put_cstr(body, key);
                put_cstr(body, value);
            }
            body.push(0);
        });
    }

    /// `PasswordMessage`: a cleartext or MD5-hashed password.
    pub fn password(&mut self, password: &str) {
        self.message(Some(b'p'), |body| put_cstr(body, password));
    }

    /// `SASLInitialResponse`: the chosen mechanism and the client-first message.
    pub fn sasl_initial(&mut self, mechanism: &str, data: &[u8]) {
        self.message(Some(b'p'), |body| {
            put_cstr(body, mechanism);
            body.extend_from_slice(&(data.len() as i32).to_be_bytes());
            body.extend_from_slice(data);
        });
    }

    /// `SASLResponse`: the client-final message.
    pub fn sasl_response(&mut self, data: &[u8]) {
        self.message(Some(b'p'), |body| body.extend_from_slice(data));
    }

    /// `Parse` into the unnamed statement, letting the server infer parameter types.
    pub fn parse(&mut self, sql: &str) {
        self.message(Some(b'P'), |body| {
            put_cstr(body, "");
            put_cstr(body, sql);
            body.extend_from_slice(&0i16.to_be_bytes());
        });
    }

    /// `Bind` text-format parameters (`None` is SQL NULL) to the unnamed
    /// portal, asking for text-format results.
    pub fn bind(&mut self, params: &[Option<&str>]) -> io::Result<()> {
        let count = i16::try_from(params.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many parameters"))?;
        let mut too_long = false;
        self.message(Some(b'B'), |body| {
            put_cstr(body, "");
            put_cstr(body, "");
            body.extend_from_slice(&0i16.to_be_bytes());
            body.extend_from_slice(&count.to_be_bytes());
            for param in params {
                match param {
                    None => body.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(value) => match i32::try_from(value.len()) {
                        Ok(len) => {
                            body.extend_from_slice(&len.to_be_bytes());
                            body.extend_from_slice(value.as_bytes());
                        }
                        Err(_) => too_long = true,
                    },
                }
            }
            body.extend_from_slice(&0i16.to_be_bytes());
        });
        if too_long {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "parameter too long",
            ));
        }
        Ok(())
    }

    /// `Execute` the unnamed portal, fetching all rows.
    pub fn execute(&mut self) {
        self.message(Some(b'E'), |body| {
            put_cstr(body, "");
            body.extend_from_slice(&0i32.to_be_bytes());
        });
    }

    /// `Sync`: ends the exchange; the server answers with `ReadyForQuery`.
    pub fn sync(&mut self) {
        self.message(Some(b'S'), |_| {});
    }

    /// `Terminate`: a polite goodbye before closing the socket.
    pub fn terminate(&mut self) {
        self.message(Some(b'X'), |_| {});
    }

    fn message(&mut self, kind: Option<u8>, fill: impl FnOnce(&mut Vec<u8>)) {
        self.buf.extend(kind);
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        fill(&mut self.buf);
        let len = (self.buf.len() - at) as i32;
        self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }
}

fn put_cstr(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(s.as_bytes());
    buf.push(0);
}

/// One backend message: its type byte and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The message type, e.g. `b'Z'` for `ReadyForQuery`.
    pub kind: u8,
    /// Everything after the length word.
    pub body: Vec<u8>,
}

impl Message {
    /// A reader over the body, for picking out fields in order.
    pub fn fields(&self) -> Fields<'_> {
        Fields { rest: &self.body }
    }
}

/// Reads one backend message. Any `Err` leaves the stream out of step with
/// the server, so the connection must be dropped.
pub fn read_message(input: &mut impl Read) -> io::Result<Message> {
    let mut header = [0u8; 5];
    input.read_exact(&mut header)?;
    let [kind, len @ ..] = header;
    let len = i32::from_be_bytes(len);
    let body_len = usize::try_from(len)
        .ok()
        .and_then(|len| len.checked_sub(4))
        .filter(|&len| len <= MAX_MESSAGE)
        .ok_or_else(|| violation(format!("message length {len} out of range")))?;
    let mut body = Vec::with_capacity(body_len.min(64 * 1024));
    input.take(body_len as u64).read_to_end(&mut body)?;
    if body.len() != body_len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection mid-message",
        ));
    }
    Ok(Message { kind, body })
}

/// Sequential access to a message body; every accessor fails cleanly on a
/// body that is too short rather than panicking.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(violation("message body too short"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Everything not yet read.
    pub fn remaining(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// A big-endian `Int16`.
    pub fn i16(&mut self) -> io::Result<i16> {
        let bytes = self.bytes(2)?;
        Ok(i16::from_be_bytes([bytes[0], bytes[1]]))
    }

    /// A big-endian `Int32`.
    pub fn i32(&mut self) -> io::Result<i32> {
        let bytes = self.bytes(4)?;
        Ok(i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// A NUL-terminated string (lossily decoded: it is for messages).
    pub fn cstr(&mut self) -> io::Result<String> {
        let end = self
            .rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| violation("unterminated string"))?;
        let text = String::from_utf8_lossy(&self.rest[..end]).into_owned();
        self.rest = &self.rest[end + 1..];
        Ok(text)
    }
}

/// The error for bytes that do not follow the protocol.
pub fn violation(message: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("postgres protocol error: {}", message.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontend_messages_are_framed() {
        /// Writes one message into an outbox.
        type Writer = fn(&mut Outbox);
        let cases: Vec<(Writer, &[u8])> = vec![
            (|o| o.sync(), b"S\0\0\0\x04"),
            (|o| o.password("pw"), b"p\0\0\0\x07pw\0"),
            (|o| o.parse("SELECT 1"), b"P\0\0\0\x10\0SELECT 1\0\0\0"),
            (|o| o.execute(), b"E\0\0\0\x09\0\0\0\0\0"),
            (
                |o| o.sasl_initial("M", b"xy"),
                b"p\0\0\0\x0cM\0\0\0\0\x02xy",
            ),
            (
                |o| o.startup(&[("user", "u")]),
                b"\0\0\0\x10\0\x03\0\0user\0u\0\0",
            ),
            (
                |o| o.bind(&[Some("ab"), None]).expect("fits"),
                b"B\0\0\0\x16\0\0\0\0\0\x02\0\0\0\x02ab\xff\xff\xff\xff\0\0",
            ),
        ];
        for (write, expected) in cases {
            let mut outbox = Outbox::default();
            write(&mut outbox);
            assert_eq!(outbox.bytes(), expected);
        }
    }

    #[test]
    fn backend_messages_are_read_and_checked() {
        let mut ok: &[u8] = b"Z\0\0\0\x05I";
        assert_eq!(
            read_message(&mut ok).ok(),
            Some(Message {
                kind: b'Z',
                body: b"I".to_vec()
            })
        );
        let broken: &[&[u8]] = &[
            b"",
            b"Z\0\0",
            b"Z\0\0\0\x03",
            b"Z\xff\xff\xff\xff",
            b"Z\0\0\0\x09ab",
        ];
        for wire in broken {
            let mut input = *wire;
            assert!(read_message(&mut input).is_err(), "{wire:?} was accepted");
        }
    }

    #[test]
    fn fields_never_read_past_the_body() {
        let message = Message {
            kind: b'x',
            body: b"\0\x01ab\0rest!".to_vec(),
        };
        let mut fields = message.fields();
        assert_eq!(fields.i16().ok(), Some(1));
        assert_eq!(fields.cstr().ok().as_deref(), Some("ab"));
        assert!(fields.i32().is_ok());
        assert!(fields.i32().is_err() && fields.bytes(9).is_err());
        assert_eq!(fields.remaining(), b"!");
        assert!(
            Message {
                kind: b'x',
                body: b"no nul".to_vec()
            }
            .fields()
            .cstr()
            .is_err()
        );
    }
}
