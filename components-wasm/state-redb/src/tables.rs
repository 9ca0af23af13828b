//! The database's tables and the store's rules running inside one redb write
//! transaction.

use crate::codec;
use outrig_sdk::state_rules::{Record, RecordTable, Stamp};
use outrig_sdk::{Error, Result};
use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

/// Encoded records (see [`codec`]) by full key.
pub(crate) const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("records");
/// `(expires_at_ms, key)` for every record with a TTL, so expired records
/// are found without a scan.
const EXPIRIES: TableDefinition<(u64, &str), ()> = TableDefinition::new("expiries");
/// Store-wide counters; [`LAST_VERSION`] is the only one.
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// The highest version issued, so versions keep growing across restarts.
const LAST_VERSION: &str = "last-version";

/// Any failure of redb itself; the database is local, so none is retryable.
pub(crate) fn storage(err: impl std::fmt::Display) -> Error {
    Error::Internal(format!("redb: {err}"))
}

/// The tables opened in one write transaction.
pub(crate) struct WriteTables<'txn> {
    records: Table<'txn, &'static str, &'static [u8]>,
    expiries: Table<'txn, (u64, &'static str), ()>,
    meta: Table<'txn, &'static str, u64>,
}

impl<'txn> WriteTables<'txn> {
    /// Opens (creating on first use) every table in `txn`.
    pub(crate) fn open(txn: &'txn WriteTransaction) -> Result<WriteTables<'txn>> {
        Ok(WriteTables {
            records: txn.open_table(RECORDS).map_err(storage)?,
            expiries: txn.open_table(EXPIRIES).map_err(storage)?,
            meta: txn.open_table(META).map_err(storage)?,
        })
    }

    /// Deletes every record that has expired by `now_ms`.
    pub(crate) fn purge_expired(&mut self, now_ms: u64) -> Result<()> {
        let due: Vec<(u64, String)> = self
            .expiries
            .range(..(now_ms.saturating_add(1), ""))
            .map_err(storage)?
            .map(|entry| entry.map(|(key, _)| (key.value().0, key.value().1.to_owned())))
            .collect::<std::result::Result<_, _>>()
            .map_err(storage)?;
        for (at, key) in due {
            self.expiries.remove((at, key.as_str())).map_err(storage)?;
            self.records.remove(key.as_str()).map_err(storage)?;
        }
        Ok(())
    }

    /// Drops the expiry index entry of a record that is being replaced or removed.
    fn unindex(&mut self, key: &str, old: Option<Stamp>) -> Result<()> {
        if let Some(at) = old.and_then(|stamp| stamp.expires_at_ms) {
            self.expiries.remove((at, key)).map_err(storage)?;
        }
        Ok(())
    }
}

impl RecordTable for WriteTables<'_> {
    fn stamp(&self, key: &str) -> Result<Option<Stamp>> {
        match self.records.get(key).map_err(storage)? {
            Some(bytes) => codec::decode_stamp(bytes.value()).map(Some),
            None => Ok(None),
        }
    }

    fn save(&mut self, key: &str, record: Record) -> Result<()> {
        let bytes = codec::encode(&record);
        let old = match self
            .records
            .insert(key, bytes.as_slice())
            .map_err(storage)?
        {
            Some(old) => Some(codec::decode_stamp(old.value())?),
            None => None,
        };
        // Unindex the old expiry before indexing the new one: they may be equal.
        self.unindex(key, old)?;
        if let Some(at) = record.stamp.expires_at_ms {
            self.expiries.insert((at, key), ()).map_err(storage)?;
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        let old = match self.records.remove(key).map_err(storage)? {
            Some(old) => Some(codec::decode_stamp(old.value())?),
            None => None,
        };
        self.unindex(key, old)
    }

    fn next_version(&mut self) -> Result<u64> {
        let last = self
            .meta
            .get(LAST_VERSION)
            .map_err(storage)?
            .map_or(0, |v| v.value());
        let next = last.saturating_add(1);
        self.meta.insert(LAST_VERSION, next).map_err(storage)?;
        Ok(next)
    }
}
