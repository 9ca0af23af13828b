//! The NATS client protocol (text control lines, binary payloads, NATS/1.0
//! headers) over any `Read + Write`, so it is tested natively.
//!
//! Every `Err` from this module means the connection is out of step with the
//! server (or gone) and must be dropped.

use std::io::{self, BufRead, BufReader, Read, Write};

/// A control line longer than this is a protocol violation.
const MAX_LINE: u64 = 64 * 1024;
/// A payload larger than this is refused (NATS' own limit is 64 MiB at most).
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;
/// The subscription id of the connection's one inbox subscription.
const INBOX_SID: &str = "1";

/// How to log in, sent in `CONNECT`.
#[derive(Debug, Clone, Default)]
pub struct Login {
    pub user: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
}

/// A message delivered to this connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Msg {
    pub subject: String,
    pub reply: Option<String>,
    /// The raw `NATS/1.0 ...` header block, if the message has one.
    pub headers: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

impl Msg {
    /// The status code of a status message (`NATS/1.0 404 No Messages`).
    pub fn status(&self) -> Option<u16> {
        let headers = self.headers.as_deref()?;
        let first = headers.split(|&b| b == b'\n').next()?;
        let line = std::str::from_utf8(first).ok()?.trim_end();
        line.strip_prefix("NATS/1.0")?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// A header's value, its name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<String> {
        let headers = std::str::from_utf8(self.headers.as_deref()?).ok()?;
        headers.split("\r\n").skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

/// A connection that has sent `CONNECT` and subscribed to its own inbox
/// (`<inbox>.*`), where request replies and fetched messages arrive.
pub struct Client<S: Read + Write> {
    stream: BufReader<S>,
    inbox: String,
    next_reply: u64,
    /// The largest message (headers and payload) the server takes, from its
    /// `INFO`; it closes the connection on a larger one.
    max_payload: Option<usize>,
}

impl<S: Read + Write> Client<S> {
    /// Reads the server's `INFO`, logs in, subscribes to `inbox.*` and waits
    /// for the `PONG` that proves all of it was accepted.
    pub fn handshake(stream: S, login: &Login, inbox: String) -> io::Result<Self> {
        let mut client = Client {
            stream: BufReader::new(stream),
            inbox,
            next_reply: 0,
            max_payload: None,
        };
        let info = client.read_line()?;
        let info = info
            .strip_prefix("INFO ")
            .ok_or_else(|| violation(format!("expected INFO, got `{info}`")))?;
        let info: serde_json::Value = serde_json::from_str(info)
            .map_err(|err| violation(format!("INFO is not JSON: {err}")))?;
        client.max_payload = info["max_payload"]
            .as_u64()
            .and_then(|max| usize::try_from(max).ok());
        if info["headers"] != serde_json::Value::Bool(true) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "the NATS server does not support headers (2.2 or later is needed)",
            ));
        }
        let mut connect = serde_json::json!({
            "verbose": false, "pedantic": false, "headers": true,
            "no_responders": true, "name": "outrig", "lang": "rust", "version": "0.1.0",
            "protocol": 1,
        });
        if let Some(user) = &login.user {
            connect["user"] = user.as_str().into();
        }
        if let Some(password) = &login.password {
            connect["pass"] = password.as_str().into();
        }
        if let Some(token) = &login.token {
            connect["auth_token"] = token.as_str().into();
        }
        let subscribe = format!("SUB {}.* {INBOX_SID}\r\n", client.inbox);
        client.write_and_ping(format!("CONNECT {connect}\r\n{subscribe}").as_bytes())?;
        Ok(client)
    }

    /// The server's `max_payload`: the most bytes of headers and payload
    /// one message may have ([`message_size`]); `None` when it gave none.
    pub fn max_payload(&self) -> Option<usize> {
        self.max_payload
    }

    /// A reply subject no earlier request of this connection used.
    pub fn reply_subject(&mut self) -> String {
        self.next_reply += 1;
        format!("{}.{}", self.inbox, self.next_reply)
    }

    /// Writes raw protocol bytes (built with [`publish_frame`]) and flushes.
    pub fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        let stream = self.stream.get_mut();
        stream.write_all(bytes)?;
        stream.flush()
    }

    /// Writes `bytes` followed by `PING`, and waits for `PONG`: all of it
    /// has then been processed by the server. Messages arriving meanwhile
    /// are dropped.
    ///
    /// One write, not two: the host's sockets keep Nagle's algorithm on
    /// (WASI cannot turn it off), so a `PING` written apart from bytes the
    /// server does not answer would wait for their delayed ACK, some 40 ms.
    pub fn write_and_ping(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut frames = Vec::with_capacity(bytes.len() + 6);
        frames.extend_from_slice(bytes);
        frames.extend_from_slice(b"PING\r\n");
        self.write(&frames)?;
        loop {
            if let Op::Pong = self.read_op()? {
                return Ok(());
            }
        }
    }

    /// The next message, answering the server's `PING`s on the way.
    pub fn next_message(&mut self) -> io::Result<Msg> {
        loop {
            if let Op::Msg(msg) = self.read_op()? {
                return Ok(msg);
            }
        }
    }

    /// The underlying stream, for socket options such as a longer read
    /// timeout around a long poll.
    pub fn stream_mut(&mut self) -> &mut S {
        self.stream.get_mut()
    }

    fn read_op(&mut self) -> io::Result<Op> {
        let line = self.read_line()?;
        let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb.to_ascii_uppercase().as_str() {
            "MSG" => self.read_msg(args, false).map(Op::Msg),
            "HMSG" => self.read_msg(args, true).map(Op::Msg),
            "PING" => self.write(b"PONG\r\n").map(|()| Op::Other),
            "PONG" => Ok(Op::Pong),
            "+OK" | "INFO" => Ok(Op::Other),
            "-ERR" => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("nats server error: {args}"),
            )),
            _ => Err(violation(format!("unexpected `{line}`"))),
        }
    }

    /// Reads the payload of `MSG <subject> <sid> [reply] <len>` or `HMSG
    /// <subject> <sid> [reply] <header len> <total len>`.
    fn read_msg(&mut self, args: &str, with_headers: bool) -> io::Result<Msg> {
        let parts: Vec<&str> = args.split_whitespace().collect();
        let sizes = if with_headers { 2 } else { 1 };
        let (names, lengths) = match parts.len().checked_sub(sizes) {
            Some(split @ (2 | 3)) => parts.split_at(split),
            _ => return Err(violation(format!("malformed message line `{args}`"))),
        };
        let lengths: Vec<usize> = lengths
            .iter()
            .map(|n| n.parse().ok().filter(|&n| n <= MAX_PAYLOAD))
            .collect::<Option<_>>()
            .ok_or_else(|| violation(format!("bad sizes in `{args}`")))?;
        let (header_len, total) = match lengths[..] {
            [total] => (0, total),
            [header, total] if header <= total => (header, total),
            _ => return Err(violation(format!("bad sizes in `{args}`"))),
        };
        let mut body = vec![0; total + 2];
        self.stream.read_exact(&mut body)?;
        if !body.ends_with(b"\r\n") {
            return Err(violation("message not terminated by CRLF"));
        }
        body.truncate(total);
        let payload = body.split_off(header_len);
        Ok(Msg {
            subject: names[0].to_string(),
            reply: names.get(2).map(|reply| reply.to_string()),
            headers: with_headers.then_some(body),
            payload,
        })
    }

    fn read_line(&mut self) -> io::Result<String> {
        let mut line = Vec::new();
        let read = (&mut self.stream)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        match line.strip_suffix(b"\r\n") {
            Some(body) => Ok(String::from_utf8_lossy(body).into_owned()),
            None => Err(violation("control line not terminated by CRLF")),
        }
    }
}

/// One protocol operation as far as a client cares.
enum Op {
    Msg(Msg),
    Pong,
    /// `+OK`, `INFO` updates and answered `PING`s.
    Other,
}

/// `PUB`, or `HPUB` when `headers` are given (`name: value` pairs).
pub fn publish_frame(
    subject: &str,
    reply: Option<&str>,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> Vec<u8> {
    let reply = reply.map(|r| format!(" {r}")).unwrap_or_default();
    let mut out = Vec::with_capacity(payload.len() + 128);
    if let Some(block) = header_block(headers) {
        let total = block.len() + payload.len();
        out.extend_from_slice(
            format!("HPUB {subject}{reply} {} {total}\r\n{block}", block.len()).as_bytes(),
        );
    } else {
        out.extend_from_slice(format!("PUB {subject}{reply} {}\r\n", payload.len()).as_bytes());
    }
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
    out
}

/// The size the server holds against its `max_payload` for a message
/// published with `headers` and `payload`: the header block and the payload.
pub fn message_size(headers: &[(&str, &str)], payload: &[u8]) -> usize {
    header_block(headers).map_or(0, |block| block.len()) + payload.len()
}

/// The `NATS/1.0` header block carrying `headers`; `None` for no headers.
fn header_block(headers: &[(&str, &str)]) -> Option<String> {
    if headers.is_empty() {
        return None;
    }
    let mut block = String::from("NATS/1.0\r\n");
    for (name, value) in headers {
        block.push_str(&format!("{name}: {value}\r\n"));
    }
    block.push_str("\r\n");
    Some(block)
}

fn violation(message: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("nats protocol error: {}", message.into()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake server: what it will send, and what the client wrote.
    struct Script {
        input: io::Cursor<Vec<u8>>,
        output: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.input.read(buf)
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

    fn client(server: &str) -> io::Result<Client<Script>> {
        let script = Script {
            input: io::Cursor::new(
                format!("INFO {{\"headers\":true}}\r\nPONG\r\n{server}").into_bytes(),
            ),
            output: Vec::new(),
        };
        Client::handshake(script, &Login::default(), "_INBOX.t".into())
    }

    #[test]
    fn messages_with_and_without_headers_decode() {
        let wire = "PING\r\nMSG a.b 1 5\r\nhello\r\n\
                    HMSG _INBOX.t.1 1 $JS.ACK.x 31 33\r\nNATS/1.0\r\nContent-Type: a/b\r\n\r\nhi\r\n\
                    HMSG _INBOX.t.1 1 28 28\r\nNATS/1.0 404 No Messages\r\n\r\n\r\n";
        let mut client = client(wire).expect("handshake");
        let plain = client.next_message().expect("MSG");
        assert_eq!(
            (plain.subject.as_str(), plain.payload.as_slice()),
            ("a.b", &b"hello"[..])
        );
        assert_eq!((plain.reply.as_deref(), plain.status()), (None, None));
        let with_headers = client.next_message().expect("HMSG");
        assert_eq!(with_headers.reply.as_deref(), Some("$JS.ACK.x"));
        assert_eq!(with_headers.header("content-type").as_deref(), Some("a/b"));
        assert_eq!(with_headers.payload, b"hi");
        let status = client.next_message().expect("status");
        assert_eq!((status.status(), status.payload.len()), (Some(404), 0));
        let written = String::from_utf8_lossy(&client.stream_mut().output).into_owned();
        assert!(written.starts_with("CONNECT {"), "{written}");
        assert!(
            written.contains("SUB _INBOX.t.* 1\r\nPING\r\nPONG\r\n"),
            "{written}"
        );
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let cases = [
            "MSG a 1\r\n",
            "MSG a 1 x\r\n",
            "MSG a 1 99999999999\r\n",
            "MSG a 1 5\r\nhelloXY",
            "HMSG a 1 9 3\r\nabc\r\n",
            "WHAT\r\n",
            "-ERR 'Authorization Violation'\r\n",
            "",
        ];
        for wire in cases {
            let mut client = client(wire).expect("handshake");
            assert!(client.next_message().is_err(), "{wire:?} was accepted");
        }
        let no_headers = Script {
            input: io::Cursor::new(b"INFO {}\r\n".to_vec()),
            output: Vec::new(),
        };
        assert!(Client::handshake(no_headers, &Login::default(), "_I".into()).is_err());
    }

    #[test]
    fn max_payload_comes_from_info_and_counts_headers_and_payload() {
        let announced = Script {
            input: io::Cursor::new(
                b"INFO {\"headers\":true,\"max_payload\":1048576}\r\nPONG\r\n".to_vec(),
            ),
            output: Vec::new(),
        };
        let announcing =
            Client::handshake(announced, &Login::default(), "_I".into()).expect("handshake");
        assert_eq!(announcing.max_payload(), Some(1_048_576));
        assert_eq!(client("").expect("handshake").max_payload(), None);

        assert_eq!(message_size(&[], b"hello"), 5);
        let block = "NATS/1.0\r\nContent-Type: a/b\r\n\r\n";
        assert_eq!(
            message_size(&[("Content-Type", "a/b")], b"hello"),
            block.len() + 5
        );
    }

    #[test]
    fn frames_encode_with_and_without_headers() {
        assert_eq!(
            publish_frame("s", Some("r"), &[], b"hi"),
            b"PUB s r 2\r\nhi\r\n"
        );
        let framed = publish_frame("s", None, &[("Content-Type", "a/b")], b"hi");
        let block = "NATS/1.0\r\nContent-Type: a/b\r\n\r\n";
        let expected = format!(
            "HPUB s {} {}\r\n{block}hi\r\n",
            block.len(),
            block.len() + 2
        );
        assert_eq!(String::from_utf8_lossy(&framed), expected);
    }
}
