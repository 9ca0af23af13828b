//! Message content: the `basic` class's properties (content type, headers,
//! delivery mode, expiration, ...) and the content header frame that carries
//! them with the body's size, and the cutting of a message into the frames
//! that carry it.

use crate::wire::{Decoder, Encoder, FRAME_BODY, FRAME_HEADER, FRAME_OVERHEAD, FieldTable, Frame};
use std::io;

/// The `basic` class, the only one whose methods carry content.
pub const BASIC_CLASS: u16 = 60;

/// A message's properties; `None` fields are absent on the wire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Properties {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub headers: Option<FieldTable>,
    /// 1 transient, 2 persistent.
    pub delivery_mode: Option<u8>,
    pub priority: Option<u8>,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    /// Per-message TTL in milliseconds, as decimal text.
    pub expiration: Option<String>,
    pub message_id: Option<String>,
    pub timestamp: Option<u64>,
    /// The `type` property.
    pub kind: Option<String>,
    pub user_id: Option<String>,
    pub app_id: Option<String>,
    pub cluster_id: Option<String>,
}

/// The flag bit of each property, in wire order (bit 15 first).
mod flag {
    pub const CONTENT_TYPE: u16 = 1 << 15;
    pub const CONTENT_ENCODING: u16 = 1 << 14;
    pub const HEADERS: u16 = 1 << 13;
    pub const DELIVERY_MODE: u16 = 1 << 12;
    pub const PRIORITY: u16 = 1 << 11;
    pub const CORRELATION_ID: u16 = 1 << 10;
    pub const REPLY_TO: u16 = 1 << 9;
    pub const EXPIRATION: u16 = 1 << 8;
    pub const MESSAGE_ID: u16 = 1 << 7;
    pub const TIMESTAMP: u16 = 1 << 6;
    pub const TYPE: u16 = 1 << 5;
    pub const USER_ID: u16 = 1 << 4;
    pub const APP_ID: u16 = 1 << 3;
    pub const CLUSTER_ID: u16 = 1 << 2;
    /// Another flags word follows (properties beyond the fourteen above).
    pub const CONTINUATION: u16 = 1;
}

impl Properties {
    /// The property flags and list, as a content header carries them.
    fn encode(&self, out: &mut Encoder) -> io::Result<()> {
        let present = [
            (flag::CONTENT_TYPE, self.content_type.is_some()),
            (flag::CONTENT_ENCODING, self.content_encoding.is_some()),
            (flag::HEADERS, self.headers.is_some()),
            (flag::DELIVERY_MODE, self.delivery_mode.is_some()),
            (flag::PRIORITY, self.priority.is_some()),
            (flag::CORRELATION_ID, self.correlation_id.is_some()),
            (flag::REPLY_TO, self.reply_to.is_some()),
            (flag::EXPIRATION, self.expiration.is_some()),
            (flag::MESSAGE_ID, self.message_id.is_some()),
            (flag::TIMESTAMP, self.timestamp.is_some()),
            (flag::TYPE, self.kind.is_some()),
            (flag::USER_ID, self.user_id.is_some()),
            (flag::APP_ID, self.app_id.is_some()),
            (flag::CLUSTER_ID, self.cluster_id.is_some()),
        ];
        let flags = present
            .iter()
            .filter(|(_, set)| *set)
            .fold(0, |flags, (bit, _)| flags | bit);
        out.short(flags);
        optional_shortstr(out, &self.content_type)?;
        optional_shortstr(out, &self.content_encoding)?;
        if let Some(headers) = &self.headers {
            out.table(headers)?;
        }
        if let Some(mode) = self.delivery_mode {
            out.octet(mode);
        }
        if let Some(priority) = self.priority {
            out.octet(priority);
        }
        optional_shortstr(out, &self.correlation_id)?;
        optional_shortstr(out, &self.reply_to)?;
        optional_shortstr(out, &self.expiration)?;
        optional_shortstr(out, &self.message_id)?;
        if let Some(timestamp) = self.timestamp {
            out.longlong(timestamp);
        }
        optional_shortstr(out, &self.kind)?;
        optional_shortstr(out, &self.user_id)?;
        optional_shortstr(out, &self.app_id)?;
        optional_shortstr(out, &self.cluster_id)
    }

    fn decode(input: &mut Decoder) -> io::Result<Properties> {
        let flags = input.short()?;
        let mut more = flags & flag::CONTINUATION != 0;
        while more {
            // Properties of a later flags word are not defined for `basic`;
            // a server would not send them, and they could not be read.
            more = input.short()? & flag::CONTINUATION != 0;
        }
        let has = |bit: u16| flags & bit != 0;
        let string = |bit: u16, input: &mut Decoder| -> io::Result<Option<String>> {
            if has(bit) {
                input.shortstr().map(Some)
            } else {
                Ok(None)
            }
        };
        Ok(Properties {
            content_type: string(flag::CONTENT_TYPE, input)?,
            content_encoding: string(flag::CONTENT_ENCODING, input)?,
            headers: has(flag::HEADERS).then(|| input.table()).transpose()?,
            delivery_mode: has(flag::DELIVERY_MODE)
                .then(|| input.octet())
                .transpose()?,
            priority: has(flag::PRIORITY).then(|| input.octet()).transpose()?,
            correlation_id: string(flag::CORRELATION_ID, input)?,
            reply_to: string(flag::REPLY_TO, input)?,
            expiration: string(flag::EXPIRATION, input)?,
            message_id: string(flag::MESSAGE_ID, input)?,
            timestamp: has(flag::TIMESTAMP).then(|| input.longlong()).transpose()?,
            kind: string(flag::TYPE, input)?,
            user_id: string(flag::USER_ID, input)?,
            app_id: string(flag::APP_ID, input)?,
            cluster_id: string(flag::CLUSTER_ID, input)?,
        })
    }
}

/// Writes `value` as a short string when it is present.
fn optional_shortstr(out: &mut Encoder, value: &Option<String>) -> io::Result<()> {
    if let Some(value) = value {
        out.shortstr(value)?;
    }
    Ok(())
}

/// A content header: the body's size and the message's properties.
#[derive(Debug, Clone, PartialEq)]
pub struct ContentHeader {
    pub body_size: u64,
    pub properties: Properties,
}

impl ContentHeader {
    /// Reads a content header frame's payload; only the `basic` class is
    /// accepted.
    pub fn decode(payload: &[u8]) -> io::Result<ContentHeader> {
        let mut input = Decoder::new(payload);
        let class = input.short()?;
        if class != BASIC_CLASS {
            return Err(crate::wire::violation(format!(
                "content header of class {class}"
            )));
        }
        let _weight = input.short()?;
        let body_size = input.longlong()?;
        let properties = Properties::decode(&mut input)?;
        Ok(ContentHeader {
            body_size,
            properties,
        })
    }
}

/// Appends the frames that carry one message's content on `channel`: its
/// header, then the body cut to fit `frame_max`.
pub fn content_frames(
    channel: u16,
    properties: &Properties,
    body: &[u8],
    frame_max: usize,
    out: &mut Vec<u8>,
) -> io::Result<()> {
    let mut header = Encoder::new();
    header
        .short(BASIC_CLASS)
        .short(0)
        .longlong(body.len() as u64);
    properties.encode(&mut header)?;
    Frame::encode(FRAME_HEADER, channel, &header.bytes, out);
    for chunk in body.chunks(frame_max.saturating_sub(FRAME_OVERHEAD).max(1)) {
        Frame::encode(FRAME_BODY, channel, chunk, out);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::FieldValue;

    fn frames(bytes: &[u8]) -> Vec<Frame> {
        let mut rest = bytes;
        let mut out = Vec::new();
        while let Some((frame, used)) = Frame::parse(rest, 4096).expect("valid frames") {
            out.push(frame);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        out
    }

    #[test]
    fn properties_round_trip_through_a_content_header() {
        let properties = Properties {
            content_type: Some("application/cloudevents+json".into()),
            headers: Some(FieldTable(vec![("x-n".into(), FieldValue::I64(3))])),
            delivery_mode: Some(2),
            priority: Some(4),
            correlation_id: Some("c".into()),
            expiration: Some("60000".into()),
            message_id: Some("m".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("t".into()),
            app_id: Some("a".into()),
            ..Properties::default()
        };
        let mut out = Vec::new();
        content_frames(1, &properties, &[7; 10], 4096, &mut out).expect("encodable");
        let sent = frames(&out);
        assert_eq!(sent.len(), 2);
        let header = ContentHeader::decode(&sent[0].payload).expect("decodable");
        assert_eq!((header.body_size, &header.properties), (10, &properties));
        assert_eq!(sent[1].payload, [7; 10]);

        let mut empty = Vec::new();
        content_frames(1, &Properties::default(), b"", 4096, &mut empty).expect("encodable");
        let sent = frames(&empty);
        assert_eq!(sent.len(), 1, "an empty body has no body frame");
        assert_eq!(
            ContentHeader::decode(&sent[0].payload)
                .expect("decodable")
                .properties,
            Properties::default()
        );
    }

    #[test]
    fn bodies_are_cut_to_the_frame_size() {
        let mut out = Vec::new();
        content_frames(3, &Properties::default(), &[1; 25], 18, &mut out).expect("encodable");
        let sizes: Vec<usize> = frames(&out)[1..].iter().map(|f| f.payload.len()).collect();
        assert_eq!(sizes, [10, 10, 5]);
    }

    #[test]
    fn malformed_headers_are_errors() {
        let mut wrong_class = Encoder::new();
        wrong_class.short(10).short(0).longlong(0).short(0);
        let mut truncated = Encoder::new();
        truncated
            .short(BASIC_CLASS)
            .short(0)
            .longlong(0)
            .short(flag::CONTENT_TYPE);
        let mut continued = Encoder::new();
        continued
            .short(BASIC_CLASS)
            .short(0)
            .longlong(0)
            .short(flag::CONTINUATION);
        for bytes in [&wrong_class.bytes, &truncated.bytes, &continued.bytes] {
            assert!(ContentHeader::decode(bytes).is_err(), "{bytes:?}");
        }
        assert!(
            content_frames(
                1,
                &Properties {
                    content_type: Some("x".repeat(300)),
                    ..Properties::default()
                },
                b"",
                4096,
                &mut Vec::new()
            )
            .is_err()
        );
    }
}
