//! What a store keeps per key: the value, its version and its expiry.

use crate::state::{Item, QueryItem};

/// The version and expiry of a record, which is all the rules need to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The version the record's ETag carries.
    pub version: u64,
    /// When the record stops being visible, in milliseconds since the Unix
    /// epoch; `None` for never. Milliseconds, so a TTL of one second is one second.
    pub expires_at_ms: Option<u64>,
}

impl Stamp {
    /// Whether the record is still visible at `now_ms`.
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|at| at > now_ms)
    }

    /// The ETag the record is read with.
    pub fn etag(&self) -> String {
        self.version.to_string()
    }

    /// The expiry as the contract reports it: whole seconds since the epoch,
    /// rounded up so the item is never reported gone before it is.
    pub fn expires_at_unix(&self) -> Option<u64> {
        self.expires_at_ms.map(|ms| ms.div_ceil(1000))
    }

    /// The expiry of a record written at `now_ms` with `ttl_seconds`. No TTL,
    /// or a TTL of 0 (Dapr stores treat it as unset), means never.
    pub fn expiry_for(ttl_seconds: Option<u32>, now_ms: u64) -> Option<u64> {
        ttl_seconds
            .filter(|&ttl| ttl > 0)
            .map(|ttl| now_ms.saturating_add(u64::from(ttl) * 1000))
    }
}

impl Stamp {
    /// `value` as `get` returns it under this stamp.
    pub fn item(&self, value: Vec<u8>) -> Item {
        Item {
            value,
            etag: Some(self.etag()),
            expires_at_unix: self.expires_at_unix(),
        }
    }

    /// `value` as a query candidate under `key` and this stamp.
    pub fn query_item(&self, key: &str, value: Vec<u8>) -> QueryItem {
        QueryItem {
            key: key.to_owned(),
            value,
            etag: Some(self.etag()),
        }
    }
}

/// One stored value with its stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The bytes the app sent, untouched.
    pub value: Vec<u8>,
    /// Version and expiry.
    pub stamp: Stamp,
}

impl Record {
    /// The record as `get` returns it.
    pub fn to_item(&self) -> Item {
        self.stamp.item(self.value.clone())
    }

    /// The record as a query candidate under `key`.
    pub fn to_query_item(&self, key: &str) -> QueryItem {
        self.stamp.query_item(key, self.value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn liveness_and_expiry_table() {
        let cases = [
            // (ttl, written at, read at, live, reported expiry)
            (None, 1_000, u64::MAX, true, None),
            (Some(0), 1_000, u64::MAX, true, None),
            (Some(10), 1_000, 10_999, true, Some(11)),
            (Some(10), 1_000, 11_000, false, Some(11)),
            (Some(1), 1_500, 2_499, true, Some(3)),
            (
                Some(u32::MAX),
                u64::MAX - 5,
                u64::MAX - 1,
                true,
                Some(u64::MAX.div_ceil(1000)),
            ),
        ];
        for (ttl, written, read, live, reported) in cases {
            let stamp = Stamp {
                version: 1,
                expires_at_ms: Stamp::expiry_for(ttl, written),
            };
            assert_eq!(
                stamp.is_live(read),
                live,
                "ttl {ttl:?} written {written} read {read}"
            );
            assert_eq!(
                stamp.expires_at_unix(),
                reported,
                "ttl {ttl:?} written {written}"
            );
        }
    }

    #[test]
    fn items_carry_the_version_as_etag() {
        let record = Record {
            value: b"v".to_vec(),
            stamp: Stamp {
                version: 42,
                expires_at_ms: Some(2_000),
            },
        };
        let item = record.to_item();
        assert_eq!(item.etag.as_deref(), Some("42"));
        assert_eq!(item.expires_at_unix, Some(2));
        assert_eq!(record.to_query_item("k").key, "k");
    }
}
