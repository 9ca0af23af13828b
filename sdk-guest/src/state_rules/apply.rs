//! Writes, deletes and transactions as the rules decide them.

use super::{Record, RecordTable, Stamp, check_concurrency};
use crate::state::{DeleteRequest, Operation, SetRequest};
use crate::{Error, Result};

/// Writes `request` if its ETag and concurrency mode allow it. The record
/// gets a fresh version and the expiry its TTL asks for (none clears an
/// older TTL).
pub fn apply_set(table: &mut impl RecordTable, request: SetRequest, now_ms: u64) -> Result<()> {
    let current = live_version(table, &request.key, now_ms)?;
    check_concurrency(current, request.etag.as_deref(), request.concurrency)?;
    let stamp = Stamp {
        version: table.next_version()?,
        expires_at_ms: Stamp::expiry_for(request.ttl_seconds, now_ms),
    };
    table.save(
        &request.key,
        Record {
            value: request.value,
            stamp,
        },
    )
}

/// Deletes `request.key` if its ETag and concurrency mode allow it. Deleting
/// a missing key without an ETag succeeds.
pub fn apply_delete(
    table: &mut impl RecordTable,
    request: &DeleteRequest,
    now_ms: u64,
) -> Result<()> {
    let current = live_version(table, &request.key, now_ms)?;
    check_concurrency(current, request.etag.as_deref(), request.concurrency)?;
    table.remove(&request.key)
}

/// Applies `operations` in order to `table`, stopping at the first failure.
/// Atomicity is the caller's: run this against staged changes (or inside a
/// database transaction) and commit only on `Ok`. Each operation sees the
/// ones before it, so a transaction may write a key and then delete it.
pub fn apply_transaction(
    table: &mut impl RecordTable,
    operations: Vec<Operation>,
    now_ms: u64,
) -> Result<()> {
    for (index, operation) in operations.into_iter().enumerate() {
        let result = match operation {
            Operation::Set(request) => apply_set(table, request, now_ms),
            Operation::Delete(request) => apply_delete(table, &request, now_ms),
        };
        result.map_err(|err| in_operation(index, err))?;
    }
    Ok(())
}

/// The version of the live record under `key`: missing, and expired, are `None`.
fn live_version(table: &impl RecordTable, key: &str, now_ms: u64) -> Result<Option<u64>> {
    if key.is_empty() {
        return Err(Error::InvalidArgument("the key must not be empty".into()));
    }
    Ok(table
        .stamp(key)?
        .filter(|stamp| stamp.is_live(now_ms))
        .map(|stamp| stamp.version))
}

/// Says which operation failed where the error carries a message; ETag
/// errors keep their kind so the host still answers 409 / 400.
fn in_operation(index: usize, err: Error) -> Error {
    let at = |message: String| format!("transaction operation {index}: {message}");
    match err {
        Error::InvalidArgument(m) => Error::InvalidArgument(at(m)),
        Error::Internal(m) => Error::Internal(at(m)),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Concurrency, Consistency};
    use std::collections::BTreeMap;

    /// The smallest table: records in a map, versions from a counter.
    #[derive(Default)]
    struct Table {
        records: BTreeMap<String, Record>,
        last_version: u64,
    }

    impl RecordTable for Table {
        fn stamp(&self, key: &str) -> Result<Option<Stamp>> {
            Ok(self.records.get(key).map(|r| r.stamp))
        }
        fn save(&mut self, key: &str, record: Record) -> Result<()> {
            self.records.insert(key.to_owned(), record);
            Ok(())
        }
        fn remove(&mut self, key: &str) -> Result<()> {
            self.records.remove(key);
            Ok(())
        }
        fn next_version(&mut self) -> Result<u64> {
            self.last_version += 1;
            Ok(self.last_version)
        }
    }

    fn set(key: &str, etag: Option<&str>, ttl_seconds: Option<u32>) -> SetRequest {
        SetRequest {
            key: key.into(),
            value: key.as_bytes().to_vec(),
            etag: etag.map(Into::into),
            concurrency: Concurrency::FirstWrite,
            consistency: Consistency::Strong,
            ttl_seconds,
            metadata: Vec::new(),
        }
    }

    fn delete(key: &str, etag: Option<&str>) -> DeleteRequest {
        DeleteRequest {
            key: key.into(),
            etag: etag.map(Into::into),
            concurrency: Concurrency::LastWrite,
            consistency: Consistency::Strong,
            metadata: Vec::new(),
        }
    }

    #[test]
    fn versions_grow_and_survive_deletes() {
        let mut table = Table::default();
        apply_set(&mut table, set("a", None, None), 0).expect("first write");
        apply_set(&mut table, set("a", Some("1"), None), 0).expect("write with etag");
        apply_delete(&mut table, &delete("a", Some("2")), 0).expect("delete with etag");
        apply_set(&mut table, set("a", None, None), 0).expect("write again");
        assert_eq!(table.stamp("a").ok().flatten().map(|s| s.version), Some(3));
        let stale = apply_set(&mut table, set("a", Some("1"), None), 0);
        assert!(matches!(stale, Err(Error::EtagMismatch)), "{stale:?}");
    }

    #[test]
    fn an_expired_record_counts_as_missing() {
        let mut table = Table::default();
        apply_set(&mut table, set("a", None, Some(1)), 0).expect("write with ttl");
        let live = apply_set(&mut table, set("a", None, None), 999);
        assert!(matches!(live, Err(Error::EtagMismatch)), "{live:?}");
        let by_etag = apply_delete(&mut table, &delete("a", Some("1")), 1_000);
        assert!(matches!(by_etag, Err(Error::EtagMismatch)), "{by_etag:?}");
        apply_set(&mut table, set("a", None, None), 1_000).expect("first write over expired");
        assert_eq!(
            table
                .stamp("a")
                .ok()
                .flatten()
                .and_then(|s| s.expires_at_ms),
            None
        );
    }

    #[test]
    fn empty_keys_are_invalid() {
        let mut table = Table::default();
        let result = apply_set(&mut table, set("", None, None), 0);
        assert!(
            matches!(result, Err(Error::InvalidArgument(_))),
            "{result:?}"
        );
    }

    #[test]
    fn transactions_see_their_own_writes_and_name_the_failing_operation() {
        let mut table = Table::default();
        let ops = vec![
            Operation::Set(set("a", None, None)),
            Operation::Delete(delete("a", Some("1"))),
            Operation::Set(set("b", None, None)),
        ];
        apply_transaction(&mut table, ops, 0).expect("transaction");
        assert!(table.records.contains_key("b") && !table.records.contains_key("a"));

        let ops = vec![
            Operation::Set(set("c", None, None)),
            Operation::Set(set("", None, None)),
        ];
        match apply_transaction(&mut table, ops, 0) {
            Err(Error::InvalidArgument(m)) => {
                assert!(m.starts_with("transaction operation 1:"), "{m}")
            }
            other => panic!("want invalid-argument, got {other:?}"),
        }
    }
}
