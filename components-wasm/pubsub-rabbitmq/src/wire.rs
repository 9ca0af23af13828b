//! AMQP 0-9-1 on the wire: frames and the protocol's data types (integers,
//! short and long strings, packed bits, field tables), encoded into and
//! decoded from byte buffers with no I/O, so every malformed input is tested
//! natively and comes back as an error, never a panic.
//!
//! Field tables follow RabbitMQ's reading of the spec (its errata: `s` is a
//! signed 16-bit integer, `l` a signed 64-bit one, `x` a byte array).

use std::io;

/// What a client sends first: `AMQP`, then protocol 0-9-1.
pub const PROTOCOL_HEADER: &[u8; 8] = b"AMQP\x00\x00\x09\x01";
/// A frame carrying a method.
pub const FRAME_METHOD: u8 = 1;
/// A frame carrying a content header (class, body size, properties).
pub const FRAME_HEADER: u8 = 2;
/// A frame carrying a slice of a content body.
pub const FRAME_BODY: u8 = 3;
/// A heartbeat frame (channel 0, empty payload).
pub const FRAME_HEARTBEAT: u8 = 8;
/// The octet that ends every frame.
const FRAME_END: u8 = 0xCE;
/// Type, channel and size before the payload, and the end octet after it.
pub const FRAME_OVERHEAD: usize = 8;
/// Nested tables and arrays deeper than this are refused rather than
/// followed, so a hostile frame cannot exhaust the stack.
const MAX_NESTING: usize = 16;

/// The error for bytes that are not valid AMQP: the connection is out of
/// step with the server and must be dropped.
pub fn violation(message: impl Into<String>) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("amqp protocol error: {}", message.into()),
    )
}

/// One frame: its type, channel and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Appends the frame, with its header and end octet, to `out`.
    pub fn encode(kind: u8, channel: u16, payload: &[u8], out: &mut Vec<u8>) {
        out.push(kind);
        out.extend_from_slice(&channel.to_be_bytes());
        // Payloads are built by this crate and cut to the negotiated frame
        // size, far below 4 GiB.
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
        out.push(FRAME_END);
    }

    /// The first frame in `buf` and how many bytes it took, `None` while the
    /// frame is incomplete, or an error for a frame larger than `frame_max`
    /// (the negotiated size, overhead included), of an unknown type, or not
    /// closed by the end octet.
    pub fn parse(buf: &[u8], frame_max: usize) -> io::Result<Option<(Frame, usize)>> {
        let Some(header) = buf.get(..7) else {
            return Ok(None);
        };
        let kind = header[0];
        if !matches!(
            kind,
            FRAME_METHOD | FRAME_HEADER | FRAME_BODY | FRAME_HEARTBEAT
        ) {
            return Err(violation(format!("unknown frame type {kind}")));
        }
        let channel = u16::from_be_bytes([header[1], header[2]]);
        let size = u32::from_be_bytes([header[3], header[4], header[5], header[6]]) as usize;
        if size.saturating_add(FRAME_OVERHEAD) > frame_max {
            return Err(violation(format!(
                "a frame of {size} bytes exceeds the frame size {frame_max}"
            )));
        }
        let Some(&end) = buf.get(7 + size) else {
            return Ok(None);
        };
        if end != FRAME_END {
            return Err(violation(format!("frame end octet is {end:#04x}")));
        }
        let frame = Frame {
            kind,
            channel,
            payload: buf[7..7 + size].to_vec(),
        };
        Ok(Some((frame, size + FRAME_OVERHEAD)))
    }
}

/// A value in a field table.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// Scale (decimal places) and unscaled value.
    Decimal(u8, u32),
    /// A long string: bytes, usually UTF-8.
    LongStr(Vec<u8>),
    Array(Vec<FieldValue>),
    /// Seconds since the Unix epoch.
    Timestamp(u64),
    Table(FieldTable),
    Void,
    Bytes(Vec<u8>),
}

impl FieldValue {
    /// A long string value from text.
    pub fn text(value: &str) -> Self {
        FieldValue::LongStr(value.as_bytes().to_vec())
    }

    /// The value as an integer, for whichever integer type a peer chose.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(n) => Some(n.into()),
            FieldValue::U8(n) => Some(n.into()),
            FieldValue::I16(n) => Some(n.into()),
            FieldValue::U16(n) => Some(n.into()),
            FieldValue::I32(n) => Some(n.into()),
            FieldValue::U32(n) => Some(n.into()),
            FieldValue::I64(n) => Some(n),
            _ => None,
        }
    }

    /// The value as text, for values that read as one (strings, numbers,
    /// booleans); `None` for tables, arrays and bytes.
    pub fn as_text(&self) -> Option<String> {
        match self {
            FieldValue::LongStr(bytes) => Some(String::from_utf8_lossy(bytes).into_owned()),
            FieldValue::Bool(b) => Some(b.to_string()),
            FieldValue::F32(f) => Some(f.to_string()),
            FieldValue::F64(f) => Some(f.to_string()),
            FieldValue::Timestamp(t) => Some(t.to_string()),
            other => other.as_i64().map(|n| n.to_string()),
        }
    }
}

/// A field table: named values in the order they were written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(pub Vec<(String, FieldValue)>);

impl FieldTable {
    /// The value named `name` (names are case-sensitive in AMQP).
    pub fn get(&self, name: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, v)| v)
    }

    /// Sets `name` to `value`, replacing an earlier value of that name.
    pub fn set(&mut self, name: &str, value: FieldValue) {
        match self.0.iter_mut().find(|(key, _)| key == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

/// Writes AMQP data types into a buffer. Only a string too long for its
/// type can fail; such strings come from input (topic names, content types)
/// and must be refused, not cut.
#[derive(Debug, Default)]
pub struct Encoder {
    pub bytes: Vec<u8>,
}

impl Encoder {
    /// An empty buffer.
    pub fn new() -> Self {
        Encoder::default()
    }

    /// An 8-bit unsigned integer.
    pub fn octet(&mut self, value: u8) -> &mut Self {
        self.bytes.push(value);
        self
    }

    /// A 16-bit unsigned integer, big-endian as all AMQP integers.
    pub fn short(&mut self, value: u16) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A 32-bit unsigned integer.
    pub fn long(&mut self, value: u32) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// A 64-bit unsigned integer.
    pub fn longlong(&mut self, value: u64) -> &mut Self {
        self.bytes.extend_from_slice(&value.to_be_bytes());
        self
    }

    /// Consecutive bit fields, packed into one octet (at most eight).
    pub fn bits(&mut self, bits: &[bool]) -> &mut Self {
        let packed = bits
            .iter()
            .take(8)
            .enumerate()
            .fold(0u8, |acc, (i, &bit)| acc | (u8::from(bit) << i));
        self.octet(packed)
    }

    /// A short string: at most 255 bytes.
    pub fn shortstr(&mut self, value: &str) -> io::Result<&mut Self> {
        let len = u8::try_from(value.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{}…` is longer than AMQP's 255-byte short strings",
                    value.chars().take(32).collect::<String>()
                ),
            )
        })?;
        self.octet(len);
        self.bytes.extend_from_slice(value.as_bytes());
        Ok(self)
    }

    /// A long string: at most 4 GiB.
    pub fn longstr(&mut self, value: &[u8]) -> io::Result<&mut Self> {
        let len = u32::try_from(value.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a long string over 4 GiB"))?;
        self.long(len);
        self.bytes.extend_from_slice(value);
        Ok(self)
    }

    /// A field table, prefixed by its size in bytes.
    pub fn table(&mut self, table: &FieldTable) -> io::Result<&mut Self> {
        let mut inner = Encoder::new();
        for (name, value) in &table.0 {
            inner.shortstr(name)?;
            inner.value(value)?;
        }
        self.longstr(&inner.bytes)
    }

    fn value(&mut self, value: &FieldValue) -> io::Result<()> {
        match value {
            FieldValue::Bool(b) => self.octet(b't').octet(u8::from(*b)),
            FieldValue::I8(n) => self.octet(b'b').octet(n.to_be_bytes()[0]),
            FieldValue::U8(n) => self.octet(b'B').octet(*n),
            FieldValue::I16(n) => self.octet(b's').short(*n as u16),
            FieldValue::U16(n) => self.octet(b'u').short(*n),
            FieldValue::I32(n) => self.octet(b'I').long(*n as u32),
            FieldValue::U32(n) => self.octet(b'i').long(*n),
            FieldValue::I64(n) => self.octet(b'l').longlong(*n as u64),
            FieldValue::F32(f) => self.octet(b'f').long(f.to_bits()),
            FieldValue::F64(f) => self.octet(b'd').longlong(f.to_bits()),
            FieldValue::Decimal(scale, n) => self.octet(b'D').octet(*scale).long(*n),
            FieldValue::LongStr(bytes) => self.octet(b'S').longstr(bytes)?,
            FieldValue::Array(values) => {
                let mut inner = Encoder::new();
                for value in values {
                    inner.value(value)?;
                }
                self.octet(b'A').longstr(&inner.bytes)?
            }
            FieldValue::Timestamp(t) => self.octet(b'T').longlong(*t),
            FieldValue::Table(table) => self.octet(b'F').table(table)?,
            FieldValue::Void => self.octet(b'V'),
            FieldValue::Bytes(bytes) => self.octet(b'x').longstr(bytes)?,
        };
        Ok(())
    }
}

/// Reads AMQP data types from a buffer; running out of bytes or meeting an
/// unknown field type is a protocol violation.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    /// Reads `buf` from its start.
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Whether every byte has been read.
    pub fn is_done(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn take(&mut self, len: usize) -> io::Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| violation("a field runs past the end of its frame"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    /// An 8-bit unsigned integer.
    pub fn octet(&mut self) -> io::Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    /// A 16-bit unsigned integer.
    pub fn short(&mut self) -> io::Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    /// A 32-bit unsigned integer.
    pub fn long(&mut self) -> io::Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    /// A 64-bit unsigned integer.
    pub fn longlong(&mut self) -> io::Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    /// `N` consecutive bit fields packed in one octet.
    pub fn bits<const N: usize>(&mut self) -> io::Result<[bool; N]> {
        let packed = self.octet()?;
        Ok(std::array::from_fn(|i| packed & (1 << i) != 0))
    }

    /// A short string; bytes that are not UTF-8 are replaced.
    pub fn shortstr(&mut self) -> io::Result<String> {
        let len = self.octet()?;
        Ok(String::from_utf8_lossy(self.take(len.into())?).into_owned())
    }

    /// A long string, as bytes (it may hold anything).
    pub fn longstr(&mut self) -> io::Result<Vec<u8>> {
        let len = self.long()?;
        Ok(self.take(len as usize)?.to_vec())
    }

    /// A field table.
    pub fn table(&mut self) -> io::Result<FieldTable> {
        self.table_at(0)
    }

    fn table_at(&mut self, depth: usize) -> io::Result<FieldTable> {
        let len = self.long()?;
        let mut inner = Decoder::new(self.take(len as usize)?);
        let mut fields = Vec::new();
        while !inner.is_done() {
            let name = inner.shortstr()?;
            let value = inner.value(depth + 1)?;
            fields.push((name, value));
        }
        Ok(FieldTable(fields))
    }

    fn value(&mut self, depth: usize) -> io::Result<FieldValue> {
        if depth > MAX_NESTING {
            return Err(violation("field tables nested too deeply"));
        }
        Ok(match self.octet()? {
            b't' => FieldValue::Bool(self.octet()? != 0),
            b'b' => FieldValue::I8(i8::from_be_bytes(self.array()?)),
            b'B' => FieldValue::U8(self.octet()?),
            b's' => FieldValue::I16(i16::from_be_bytes(self.array()?)),
            b'u' => FieldValue::U16(self.short()?),
            b'I' => FieldValue::I32(i32::from_be_bytes(self.array()?)),
            b'i' => FieldValue::U32(self.long()?),
            b'l' => FieldValue::I64(i64::from_be_bytes(self.array()?)),
            b'f' => FieldValue::F32(f32::from_bits(self.long()?)),
            b'd' => FieldValue::F64(f64::from_bits(self.longlong()?)),
            b'D' => FieldValue::Decimal(self.octet()?, self.long()?),
            b'S' => FieldValue::LongStr(self.longstr()?),
            b'A' => {
                let len = self.long()?;
                let mut inner = Decoder::new(self.take(len as usize)?);
                let mut values = Vec::new();
                while !inner.is_done() {
                    values.push(inner.value(depth + 1)?);
                }
                FieldValue::Array(values)
            }
            b'T' => FieldValue::Timestamp(self.longlong()?),
            b'F' => FieldValue::Table(self.table_at(depth)?),
            b'V' => FieldValue::Void,
            b'x' => FieldValue::Bytes(self.longstr()?),
            other => {
                return Err(violation(format!(
                    "unknown field type {:?}",
                    char::from(other)
                )));
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_bytes(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        Frame::encode(kind, channel, payload, &mut out);
        out
    }

    #[test]
    fn frames_round_trip_and_wait_for_their_last_byte() {
        let bytes = frame_bytes(FRAME_METHOD, 7, b"hello");
        assert_eq!(bytes.len(), 5 + FRAME_OVERHEAD);
        for cut in 0..bytes.len() {
            assert_eq!(Frame::parse(&bytes[..cut], 4096).ok(), Some(None), "{cut}");
        }
        let mut two = bytes.clone();
        two.extend(frame_bytes(FRAME_HEARTBEAT, 0, b""));
        let (frame, used) = Frame::parse(&two, 4096).expect("valid").expect("complete");
        assert_eq!(
            (frame.kind, frame.channel, frame.payload.as_slice(), used),
            (FRAME_METHOD, 7, &b"hello"[..], bytes.len())
        );
        let (beat, _) = Frame::parse(&two[used..], 4096)
            .expect("valid")
            .expect("complete");
        assert_eq!((beat.kind, beat.payload.len()), (FRAME_HEARTBEAT, 0));
    }

    #[test]
    fn malformed_frames_are_errors() {
        let mut bad_end = frame_bytes(FRAME_BODY, 1, b"abc");
        if let Some(last) = bad_end.last_mut() {
            *last = 0;
        }
        let unknown_type = frame_bytes(9, 1, b"abc");
        let oversized = frame_bytes(FRAME_BODY, 1, &[0; 100]);
        let huge_size = [FRAME_BODY, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF];
        for (name, bytes) in [
            ("bad end", &bad_end[..]),
            ("unknown type", &unknown_type[..]),
            ("oversized", &oversized[..]),
            ("huge size", &huge_size[..]),
        ] {
            assert!(Frame::parse(bytes, 64).is_err(), "{name} was accepted");
        }
    }

    #[test]
    fn tables_round_trip_every_field_type() {
        let nested = FieldTable(vec![("inner".into(), FieldValue::I64(-5))]);
        let table = FieldTable(vec![
            ("bool".into(), FieldValue::Bool(true)),
            ("i8".into(), FieldValue::I8(-3)),
            ("u8".into(), FieldValue::U8(200)),
            ("i16".into(), FieldValue::I16(-300)),
            ("u16".into(), FieldValue::U16(60000)),
            ("i32".into(), FieldValue::I32(-70000)),
            ("u32".into(), FieldValue::U32(4_000_000_000)),
            ("i64".into(), FieldValue::I64(i64::MIN)),
            ("f32".into(), FieldValue::F32(1.5)),
            ("f64".into(), FieldValue::F64(-2.25)),
            ("dec".into(), FieldValue::Decimal(2, 12345)),
            ("str".into(), FieldValue::text("é")),
            (
                "arr".into(),
                FieldValue::Array(vec![FieldValue::Void, FieldValue::U8(1)]),
            ),
            ("ts".into(), FieldValue::Timestamp(1_700_000_000)),
            ("tbl".into(), FieldValue::Table(nested)),
            ("void".into(), FieldValue::Void),
            ("bytes".into(), FieldValue::Bytes(vec![0, 255])),
        ]);
        let mut encoder = Encoder::new();
        encoder.table(&table).expect("encodable");
        let mut decoder = Decoder::new(&encoder.bytes);
        assert_eq!(decoder.table().expect("decodable"), table);
        assert!(decoder.is_done());
        assert_eq!(table.get("u16").and_then(FieldValue::as_i64), Some(60000));
        assert_eq!(
            table.get("str").and_then(FieldValue::as_text).as_deref(),
            Some("é")
        );
        assert_eq!(table.get("tbl").and_then(FieldValue::as_text), None);
    }

    #[test]
    fn malformed_fields_are_errors_not_panics() {
        let mut deep = Encoder::new();
        let mut value = FieldValue::Void;
        for _ in 0..40 {
            value = FieldValue::Array(vec![value]);
        }
        deep.table(&FieldTable(vec![("deep".into(), value)]))
            .expect("encodable");
        let cases: &[(&str, &[u8])] = &[
            ("truncated table", &[0, 0, 0, 10, 1, b'a']),
            ("unknown type", &[0, 0, 0, 3, 1, b'a', b'?']),
            ("value past end", &[0, 0, 0, 4, 1, b'a', b'I', 0]),
            ("string past end", &[0, 0, 0, 4, 9, b'a', b'b', b'c']),
            (
                "huge long string",
                &[0, 0, 0, 6, 1, b'a', b'S', 255, 255, 255],
            ),
            ("nested too deep", &deep.bytes),
        ];
        for (name, bytes) in cases {
            assert!(Decoder::new(bytes).table().is_err(), "{name} was accepted");
        }
        assert!(Decoder::new(&[1]).long().is_err());
        assert!(Decoder::new(&[3, b'a']).shortstr().is_err());
    }

    #[test]
    fn strings_too_long_for_their_type_are_refused_and_bits_pack() {
        assert!(Encoder::new().shortstr(&"x".repeat(256)).is_err());
        assert!(Encoder::new().shortstr(&"x".repeat(255)).is_ok());
        let mut encoder = Encoder::new();
        encoder.bits(&[true, false, true]);
        assert_eq!(encoder.bytes, [0b101]);
        assert_eq!(
            Decoder::new(&[0b101]).bits::<3>().expect("one octet"),
            [true, false, true]
        );
    }
}
