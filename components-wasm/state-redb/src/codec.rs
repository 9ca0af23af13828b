//! How a record is laid out in the database: a small header, then the value.
//!
//! ```text
//! byte 0      format (1)
//! bytes 1..9  version, u64 little-endian
//! bytes 9..17 expiry in ms since the Unix epoch, u64 little-endian; 0 = never
//! bytes 17..  the value, as the app sent it
//! ```

use outrig_sdk::state_rules::{Record, Stamp};
use outrig_sdk::{Error, Result};

const FORMAT: u8 = 1;
const HEADER: usize = 17;

/// The stored bytes of `record`.
pub(crate) fn encode(record: &Record) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(HEADER + record.value.len());
    bytes.push(FORMAT);
    bytes.extend_from_slice(&record.stamp.version.to_le_bytes());
    bytes.extend_from_slice(&record.stamp.expires_at_ms.unwrap_or(0).to_le_bytes());
    bytes.extend_from_slice(&record.value);
    bytes
}

/// The stamp and the value of stored bytes, without copying the value.
pub(crate) fn split(bytes: &[u8]) -> Result<(Stamp, &[u8])> {
    let header: &[u8; HEADER] = bytes
        .get(..HEADER)
        .and_then(|h| h.try_into().ok())
        .ok_or_else(|| corrupt(format!("{} bytes is shorter than the header", bytes.len())))?;
    if header[0] != FORMAT {
        return Err(corrupt(format!("unknown record format {}", header[0])));
    }
    let word = |at: usize| {
        let mut le = [0u8; 8];
        le.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(le)
    };
    let expires_at_ms = Some(word(9)).filter(|&at| at != 0);
    let stamp = Stamp {
        version: word(1),
        expires_at_ms,
    };
    Ok((stamp, &bytes[HEADER..]))
}

/// The stamp of stored bytes.
pub(crate) fn decode_stamp(bytes: &[u8]) -> Result<Stamp> {
    split(bytes).map(|(stamp, _)| stamp)
}

fn corrupt(detail: String) -> Error {
    Error::Internal(format!("corrupt record in the redb database: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let cases = [
            (b"".to_vec(), 1, None),
            (b"{\"a\":1}".to_vec(), 42, Some(1_700_000_000_123)),
            (vec![0; 1000], u64::MAX, Some(u64::MAX)),
        ];
        for (value, version, expires_at_ms) in cases {
            let record = Record {
                value,
                stamp: Stamp {
                    version,
                    expires_at_ms,
                },
            };
            let bytes = encode(&record);
            let decoded = split(&bytes)
                .ok()
                .map(|(stamp, value)| (stamp, value.to_vec()));
            assert_eq!(decoded, Some((record.stamp, record.value.clone())));
            assert_eq!(decode_stamp(&bytes).ok(), Some(record.stamp));
        }
    }

    #[test]
    fn damaged_bytes_are_internal_errors() {
        let good = encode(&Record {
            value: b"v".to_vec(),
            stamp: Stamp {
                version: 1,
                expires_at_ms: None,
            },
        });
        let mut wrong_format = good.clone();
        wrong_format[0] = 9;
        for bytes in [&[][..], &good[..16], &wrong_format[..]] {
            assert!(matches!(split(bytes), Err(Error::Internal(_))), "{bytes:?}");
        }
    }
}
