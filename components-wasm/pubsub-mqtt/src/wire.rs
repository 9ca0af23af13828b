//! MQTT 3.1.1 control packets to bytes and back, with no I/O, so every edge
//! of the format is tested without a broker.
//!
//! Only what this client sends or receives is modelled: the QoS 2 packets
//! (`PUBREC`, `PUBREL`, `PUBCOMP`) never occur, because it publishes and
//! subscribes at QoS 1 at most, so receiving one is a protocol violation.
//! Decoding never panics: input that is not a well-formed packet is a
//! [`Malformed`] error, and the connection it came from must be dropped.

use std::fmt;

/// The largest remaining length the four-byte varint can express.
pub const MAX_REMAINING: usize = 268_435_455;
/// The largest string or binary field (a two-byte length prefix).
const MAX_FIELD: usize = u16::MAX as usize;

/// Why bytes are not a packet, or a packet cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mqtt protocol error: {}", self.0)
    }
}

impl std::error::Error for Malformed {}

fn malformed<T>(message: impl Into<String>) -> Result<T, Malformed> {
    Err(Malformed(message.into()))
}

/// The last will a connection leaves: published by the broker when the
/// connection ends without a `DISCONNECT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Where the will is published.
    pub topic: String,
    /// What is published (empty with `retain`: deletes the retained message).
    pub payload: Vec<u8>,
    /// 0 or 1.
    pub qos: u8,
    /// Whether the broker retains it.
    pub retain: bool,
}

/// `CONNECT`: how a client names itself and what session it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    /// Names the session; one connection holds it at a time.
    pub client_id: String,
    /// `true` discards any session the broker kept for this client id.
    pub clean_session: bool,
    /// The longest silence before the broker drops the connection is one
    /// and a half times this; 0 turns keep-alive off.
    pub keep_alive_secs: u16,
    /// Published when the connection ends without `DISCONNECT`.
    pub will: Option<Will>,
    /// Credentials, if the broker asks for them.
    pub username: Option<String>,
    /// Sent only with a user name, as MQTT 3.1.1 requires.
    pub password: Option<Vec<u8>>,
}

/// `PUBLISH`: an application message, in either direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    /// The topic name (never a filter).
    pub topic: String,
    /// 0 or 1 here (see the module doc).
    pub qos: u8,
    /// Present exactly when `qos` is above 0.
    pub packet_id: Option<u16>,
    /// Set by the broker when it sends the message again after a reconnect.
    pub dup: bool,
    /// Kept by the broker for later subscribers (from a client), or sent
    /// from what it kept (from the broker).
    pub retain: bool,
    /// The application message, opaque to MQTT.
    pub payload: Vec<u8>,
}

/// One control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// The client's first packet.
    Connect(Connect),
    /// The broker's answer to `CONNECT`; `code` 0 is accepted.
    Connack { session_present: bool, code: u8 },
    /// An application message.
    Publish(Publish),
    /// Settles a QoS 1 `PUBLISH` (in either direction).
    Puback(u16),
    /// Topic filters with the most QoS wanted for each.
    Subscribe {
        packet_id: u16,
        filters: Vec<(String, u8)>,
    },
    /// One code per filter: the QoS granted, or 0x80 for refused.
    Suback { packet_id: u16, codes: Vec<u8> },
    /// Ends subscriptions (here: right after reading a retained record).
    Unsubscribe {
        packet_id: u16,
        filters: Vec<String>,
    },
    /// The broker's answer to `UNSUBSCRIBE`.
    Unsuback(u16),
    /// Keep-alive from the client.
    Pingreq,
    /// The broker's answer to `PINGREQ`.
    Pingresp,
    /// A clean goodbye from the client: no will is published.
    Disconnect,
}

const CONNECT: u8 = 1;
const CONNACK: u8 = 2;
const PUBLISH: u8 = 3;
const PUBACK: u8 = 4;
const SUBSCRIBE: u8 = 8;
const SUBACK: u8 = 9;
const UNSUBSCRIBE: u8 = 10;
const UNSUBACK: u8 = 11;
const PINGREQ: u8 = 12;
const PINGRESP: u8 = 13;
const DISCONNECT: u8 = 14;

impl Packet {
    /// The packet as bytes on the wire, or why it cannot be sent (a field or
    /// the whole packet over the protocol's limits, a QoS it cannot carry).
    pub fn encode(&self) -> Result<Vec<u8>, Malformed> {
        let mut body = Vec::new();
        let first = match self {
            Packet::Connect(connect) => {
                encode_connect(connect, &mut body)?;
                CONNECT << 4
            }
            Packet::Connack {
                session_present,
                code,
            } => {
                body.extend([u8::from(*session_present), *code]);
                CONNACK << 4
            }
            Packet::Publish(publish) => encode_publish(publish, &mut body)?,
            Packet::Puback(id) => {
                body.extend(id.to_be_bytes());
                PUBACK << 4
            }
            Packet::Subscribe { packet_id, filters } => {
                body.extend(packet_id.to_be_bytes());
                for (filter, qos) in filters {
                    put_str(&mut body, filter)?;
                    body.push(*qos);
                }
                SUBSCRIBE << 4 | 0b0010
            }
            Packet::Suback { packet_id, codes } => {
                body.extend(packet_id.to_be_bytes());
                body.extend(codes);
                SUBACK << 4
            }
            Packet::Unsubscribe { packet_id, filters } => {
                body.extend(packet_id.to_be_bytes());
                for filter in filters {
                    put_str(&mut body, filter)?;
                }
                UNSUBSCRIBE << 4 | 0b0010
            }
            Packet::Unsuback(id) => {
                body.extend(id.to_be_bytes());
                UNSUBACK << 4
            }
            Packet::Pingreq => PINGREQ << 4,
            Packet::Pingresp => PINGRESP << 4,
            Packet::Disconnect => DISCONNECT << 4,
        };
        let mut out = Vec::with_capacity(body.len() + 5);
        out.push(first);
        put_remaining_length(&mut out, body.len())?;
        out.extend(body);
        Ok(out)
    }

    /// The first packet in `buf` and how many bytes it took, `None` when
    /// `buf` holds only part of one, or an error for bytes that are not a
    /// packet (including one declaring more than `max_len` bytes of body).
    pub fn decode(buf: &[u8], max_len: usize) -> Result<Option<(Packet, usize)>, Malformed> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let Some((remaining, header_len)) = read_remaining_length(&buf[1..])? else {
            return Ok(None);
        };
        if remaining > max_len {
            return malformed(format!(
                "a packet of {remaining} bytes is over the limit of {max_len}"
            ));
        }
        let total = 1 + header_len + remaining;
        let Some(body) = buf.get(1 + header_len..total) else {
            return Ok(None);
        };
        let (kind, flags) = (first >> 4, first & 0x0f);
        let expected_flags = match kind {
            PUBLISH => flags,
            SUBSCRIBE | UNSUBSCRIBE => 0b0010,
            _ => 0,
        };
        if flags != expected_flags {
            return malformed(format!("packet type {kind} with flags {flags:#06b}"));
        }
        let mut body = Reader { bytes: body };
        let packet = match kind {
            CONNECT => Packet::Connect(decode_connect(&mut body)?),
            CONNACK => {
                let ack_flags = body.u8()?;
                if ack_flags > 1 {
                    return malformed("CONNACK with reserved flags set");
                }
                Packet::Connack {
                    session_present: ack_flags == 1,
                    code: body.u8()?,
                }
            }
            PUBLISH => Packet::Publish(decode_publish(flags, &mut body)?),
            PUBACK => Packet::Puback(body.u16()?),
            SUBSCRIBE => {
                let packet_id = body.u16()?;
                let mut filters = Vec::new();
                while !body.bytes.is_empty() {
                    filters.push((body.string()?, body.u8()?));
                }
                if filters.is_empty() {
                    return malformed("SUBSCRIBE without a topic filter");
                }
                Packet::Subscribe { packet_id, filters }
            }
            SUBACK => {
                let packet_id = body.u16()?;
                let codes = body.rest();
                if codes.is_empty() {
                    return malformed("SUBACK without a return code");
                }
                Packet::Suback { packet_id, codes }
            }
            UNSUBSCRIBE => {
                let packet_id = body.u16()?;
                let mut filters = Vec::new();
                while !body.bytes.is_empty() {
                    filters.push(body.string()?);
                }
                if filters.is_empty() {
                    return malformed("UNSUBSCRIBE without a topic filter");
                }
                Packet::Unsubscribe { packet_id, filters }
            }
            UNSUBACK => Packet::Unsuback(body.u16()?),
            PINGREQ => Packet::Pingreq,
            PINGRESP => Packet::Pingresp,
            DISCONNECT => Packet::Disconnect,
            other => return malformed(format!("unexpected packet type {other}")),
        };
        if !body.bytes.is_empty() {
            return malformed(format!(
                "{} stray bytes after packet type {kind}",
                body.bytes.len()
            ));
        }
        Ok(Some((packet, total)))
    }
}

fn encode_connect(connect: &Connect, body: &mut Vec<u8>) -> Result<(), Malformed> {
    put_str(body, "MQTT")?;
    body.push(4); // protocol level: 3.1.1
    let mut flags = u8::from(connect.clean_session) << 1;
    if let Some(will) = &connect.will {
        if will.qos > 1 {
            return malformed("a will QoS above 1");
        }
        flags |= 0b100 | will.qos << 3 | u8::from(will.retain) << 5;
    }
    if connect.password.is_some() {
        if connect.username.is_none() {
            return malformed("a password without a user name");
        }
        flags |= 1 << 6;
    }
    if connect.username.is_some() {
        flags |= 1 << 7;
    }
    body.push(flags);
    body.extend(connect.keep_alive_secs.to_be_bytes());
    put_str(body, &connect.client_id)?;
    if let Some(will) = &connect.will {
        put_str(body, &will.topic)?;
        put_bytes(body, &will.payload)?;
    }
    if let Some(username) = &connect.username {
        put_str(body, username)?;
    }
    if let Some(password) = &connect.password {
        put_bytes(body, password)?;
    }
    Ok(())
}

fn decode_connect(body: &mut Reader<'_>) -> Result<Connect, Malformed> {
    if body.string()? != "MQTT" || body.u8()? != 4 {
        return malformed("CONNECT for a protocol other than MQTT 3.1.1");
    }
    let flags = body.u8()?;
    if flags & 1 != 0 || (flags & 0b100 == 0 && flags & 0b11_1000 != 0) {
        return malformed("CONNECT with inconsistent flags");
    }
    let keep_alive_secs = body.u16()?;
    let client_id = body.string()?;
    let will = if flags & 0b100 != 0 {
        let qos = flags >> 3 & 0b11;
        if qos > 1 {
            return malformed("a will QoS above 1");
        }
        Some(Will {
            topic: body.string()?,
            payload: body.binary()?,
            qos,
            retain: flags & 1 << 5 != 0,
        })
    } else {
        None
    };
    let username = (flags & 1 << 7 != 0).then(|| body.string()).transpose()?;
    let password = (flags & 1 << 6 != 0).then(|| body.binary()).transpose()?;
    Ok(Connect {
        client_id,
        clean_session: flags & 0b10 != 0,
        keep_alive_secs,
        will,
        username,
        password,
    })
}

fn encode_publish(publish: &Publish, body: &mut Vec<u8>) -> Result<u8, Malformed> {
    if publish.qos > 1 || (publish.qos > 0) != publish.packet_id.is_some() {
        return malformed("a PUBLISH whose QoS and packet id disagree");
    }
    put_str(body, &publish.topic)?;
    if let Some(id) = publish.packet_id {
        body.extend(id.to_be_bytes());
    }
    body.extend(&publish.payload);
    Ok(PUBLISH << 4 | u8::from(publish.dup) << 3 | publish.qos << 1 | u8::from(publish.retain))
}

fn decode_publish(flags: u8, body: &mut Reader<'_>) -> Result<Publish, Malformed> {
    let qos = flags >> 1 & 0b11;
    let dup = flags & 0b1000 != 0;
    if qos > 1 {
        return malformed(format!("a PUBLISH at QoS {qos}"));
    }
    if qos == 0 && dup {
        return malformed("a QoS 0 PUBLISH marked DUP");
    }
    let topic = body.string()?;
    let packet_id = (qos > 0).then(|| body.u16()).transpose()?;
    Ok(Publish {
        topic,
        qos,
        packet_id,
        dup,
        retain: flags & 1 != 0,
        payload: body.rest(),
    })
}

/// Appends MQTT's variable-length encoding of `len`: seven bits a byte,
/// least significant first, the top bit saying another byte follows.
fn put_remaining_length(out: &mut Vec<u8>, mut len: usize) -> Result<(), Malformed> {
    if len > MAX_REMAINING {
        return malformed(format!(
            "a packet body of {len} bytes is over MQTT's limit of {MAX_REMAINING}"
        ));
    }
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if len == 0 {
            return Ok(());
        }
    }
}

/// The remaining length at the start of `bytes` and how many bytes encode
/// it; `None` while the encoding is incomplete.
fn read_remaining_length(bytes: &[u8]) -> Result<Option<(usize, usize)>, Malformed> {
    let mut value = 0usize;
    for (i, &byte) in bytes.iter().take(4).enumerate() {
        value += usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    if bytes.len() >= 4 {
        return malformed("a remaining length longer than four bytes");
    }
    Ok(None)
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), Malformed> {
    if s.contains('\0') {
        return malformed("a string containing U+0000");
    }
    put_bytes(out, s.as_bytes())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Malformed> {
    let Ok(len) = u16::try_from(bytes.len()) else {
        return malformed(format!(
            "a field of {} bytes is over MQTT's limit of {MAX_FIELD}",
            bytes.len()
        ));
    };
    out.extend(len.to_be_bytes());
    out.extend(bytes);
    Ok(())
}

/// A cursor over a packet body whose every read checks the bounds.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Malformed> {
        if self.bytes.len() < n {
            return malformed("a packet shorter than its fields");
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, Malformed> {
        let bytes = self.take(2)?;
        Ok(u16::from_be_bytes([bytes[0], bytes[1]]))
    }

    fn binary(&mut self) -> Result<Vec<u8>, Malformed> {
        let len = self.u16()?;
        Ok(self.take(usize::from(len))?.to_vec())
    }

    fn string(&mut self) -> Result<String, Malformed> {
        let text = String::from_utf8(self.binary()?)
            .or_else(|_| malformed("a string that is not UTF-8"))?;
        if text.contains('\0') {
            return malformed("a string containing U+0000");
        }
        Ok(text)
    }

    fn rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.bytes).to_vec()
    }
}

#[cfg(test)]
mod tests;
