//! The committed records of the store, with an index of expiry times so
//! expired records can be dropped without scanning every key.

use outrig_sdk::Result;
use outrig_sdk::state_rules::{Record, RecordTable, Stamp};
use std::collections::{BTreeSet, HashMap};

/// Records by key, plus what the rules need around them.
#[derive(Debug, Default)]
pub(crate) struct Records {
    by_key: HashMap<String, Record>,
    /// `(expires_at_ms, key)` for every record with a TTL, soonest first.
    expiries: BTreeSet<(u64, String)>,
    last_version: u64,
}

impl Records {
    /// The record under `key`, as stored.
    pub(crate) fn get(&self, key: &str) -> Option<&Record> {
        self.by_key.get(key)
    }

    /// The records whose key starts with `prefix`.
    pub(crate) fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Record)> + 'a {
        self.by_key
            .iter()
            .filter(move |(key, _)| key.starts_with(prefix))
    }

    /// Drops every record that has expired by `now_ms`.
    pub(crate) fn purge_expired(&mut self, now_ms: u64) {
        while let Some((at, key)) = self.expiries.first().cloned() {
            if at > now_ms {
                break;
            }
            self.expiries.remove(&(at, key.clone()));
            self.by_key.remove(&key);
        }
    }

    /// How many records are held, expired or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_key.len()
    }

    fn unindex(&mut self, key: &str, old: Option<Record>) {
        if let Some(at) = old.and_then(|record| record.stamp.expires_at_ms) {
            self.expiries.remove(&(at, key.to_owned()));
        }
    }
}

impl RecordTable for Records {
    fn stamp(&self, key: &str) -> Result<Option<Stamp>> {
        Ok(self.by_key.get(key).map(|record| record.stamp))
    }

    fn save(&mut self, key: &str, record: Record) -> Result<()> {
        let expires_at_ms = record.stamp.expires_at_ms;
        let old = self.by_key.insert(key.to_owned(), record);
        // Unindex the old expiry before indexing the new: they may be equal.
        self.unindex(key, old);
        if let Some(at) = expires_at_ms {
            self.expiries.insert((at, key.to_owned()));
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        let old = self.by_key.remove(key);
        self.unindex(key, old);
        Ok(())
    }

    fn next_version(&mut self) -> Result<u64> {
        self.last_version += 1;
        Ok(self.last_version)
    }
}
