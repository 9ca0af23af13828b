//! Changes of a transaction held aside until every operation has passed its
//! checks, so a failing transaction leaves the store as it was.

use crate::records::Records;
use outrig_sdk::Result;
use outrig_sdk::state_rules::{Record, RecordTable, Stamp};
use std::collections::HashMap;

/// A view of the records with the transaction's changes laid over them.
pub(crate) struct Staged<'a> {
    base: &'a mut Records,
    /// `Some` for a write, `None` for a delete.
    changes: HashMap<String, Option<Record>>,
}

impl<'a> Staged<'a> {
    /// Starts a transaction over `base`.
    pub(crate) fn new(base: &'a mut Records) -> Staged<'a> {
        Staged {
            base,
            changes: HashMap::new(),
        }
    }

    /// Applies every staged change to the records.
    pub(crate) fn commit(self) -> Result<()> {
        self.changes
            .into_iter()
            .try_for_each(|(key, change)| match change {
                Some(record) => self.base.save(&key, record),
                None => self.base.remove(&key),
            })
    }
}

impl RecordTable for Staged<'_> {
    fn stamp(&self, key: &str) -> Result<Option<Stamp>> {
        match self.changes.get(key) {
            Some(change) => Ok(change.as_ref().map(|record| record.stamp)),
            None => self.base.stamp(key),
        }
    }

    fn save(&mut self, key: &str, record: Record) -> Result<()> {
        self.changes.insert(key.to_owned(), Some(record));
        Ok(())
    }

    fn remove(&mut self, key: &str) -> Result<()> {
        self.changes.insert(key.to_owned(), None);
        Ok(())
    }

    fn next_version(&mut self) -> Result<u64> {
        self.base.next_version()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(version: u64) -> Record {
        Record {
            value: vec![1],
            stamp: Stamp {
                version,
                expires_at_ms: None,
            },
        }
    }

    #[test]
    fn changes_are_visible_to_the_transaction_and_land_only_on_commit() {
        let mut base = Records::default();
        base.save("kept", record(1)).expect("seed");
        base.save("dropped", record(2)).expect("seed");

        let mut staged = Staged::new(&mut base);
        staged.save("new", record(3)).expect("stage");
        staged.remove("dropped").expect("stage");
        assert_eq!(
            staged.stamp("new").ok().flatten().map(|s| s.version),
            Some(3)
        );
        assert_eq!(staged.stamp("dropped").ok().flatten(), None);
        assert_eq!(
            staged.stamp("kept").ok().flatten().map(|s| s.version),
            Some(1)
        );
        drop(staged);
        assert!(
            base.get("new").is_none() && base.get("dropped").is_some(),
            "uncommitted"
        );

        let mut staged = Staged::new(&mut base);
        staged.save("new", record(3)).expect("stage");
        staged.remove("dropped").expect("stage");
        staged.commit().expect("commit");
        assert!(
            base.get("new").is_some() && base.get("dropped").is_none(),
            "committed"
        );
    }
}
