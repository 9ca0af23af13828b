//! `state.in-memory`: a Dapr state store that keeps everything in the
//! component's own memory, for tests and for apps that want a cache.
//!
//! It has Dapr's full semantics (ETags, first-write / last-write, TTL,
//! atomic transactions, the query API) through the SDK's shared
//! [`state_rules`](outrig_sdk::state_rules) and [`query`](outrig_sdk::query).
//! Data lives as long as the instance: the host runs this store as a single
//! instance, so one map is the whole store, and nothing survives a restart.
//! It takes no metadata.

mod records;
mod staged;

use outrig_sdk::query::Query;
use outrig_sdk::state::*;
use outrig_sdk::state_rules::{self, Clock, Record, apply_delete, apply_set, apply_transaction};
use outrig_sdk::{Feature, Metadata, Result};
use records::Records;
use staged::Staged;

/// The store: its records and the clock TTLs are measured by.
pub struct Memory {
    records: Records,
    clock: Clock,
}

impl Memory {
    /// An empty store reading the time from `clock` (tests pass a manual one).
    pub fn with_clock(clock: Clock) -> Memory {
        Memory {
            records: Records::default(),
            clock,
        }
    }

    /// The current time, after dropping what has expired by then, so no call
    /// ever sees an expired record and expired data does not pile up.
    fn now_purged(&mut self) -> u64 {
        let now = self.clock.now_ms();
        self.records.purge_expired(now);
        now
    }
}

impl StateStore for Memory {
    fn init(_metadata: Metadata) -> Result<Self> {
        Ok(Memory::with_clock(Clock::system()))
    }

    fn features() -> Vec<Feature> {
        state_rules::features()
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        let now = self.now_purged();
        let live = self
            .records
            .get(&request.key)
            .filter(|r| r.stamp.is_live(now));
        Ok(live.map(Record::to_item))
    }

    fn set(&mut self, request: SetRequest) -> Result<()> {
        let now = self.now_purged();
        apply_set(&mut self.records, request, now)
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
        let now = self.now_purged();
        apply_delete(&mut self.records, &request, now)
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<()> {
        let now = self.now_purged();
        let mut staged = Staged::new(&mut self.records);
        apply_transaction(&mut staged, operations, now)?;
        staged.commit()
    }

    fn query(&mut self, request: QueryRequest) -> Result<QueryResponse> {
        let query = Query::parse(&request.query)?;
        let now = self.now_purged();
        let candidates = self
            .records
            .with_prefix(&request.key_prefix)
            .filter(|(_, record)| record.stamp.is_live(now))
            .map(|(key, record)| record.to_query_item(key));
        Ok(query.run(candidates))
    }
}

outrig_sdk::export_state_store!(Memory);

#[cfg(test)]
mod tests {
    use super::*;
    use outrig_sdk::state_rules::ManualTime;
    use outrig_sdk::state_rules::conformance::{self, read, set};

    #[test]
    fn behaves_like_a_dapr_state_store() {
        conformance::run(Memory::with_clock);
    }

    #[test]
    fn expired_records_are_dropped_from_memory() {
        let time = ManualTime::new(0);
        let mut store = Memory::with_clock(Clock::manual(&time));
        let expiring = SetRequest {
            ttl_seconds: Some(1),
            ..set("app||a", b"1")
        };
        store.set(expiring).expect("set");
        store.set(set("app||b", b"2")).expect("set");
        time.advance_secs(2);
        assert!(read(&mut store, "app||b").is_some());
        assert_eq!(store.records.len(), 1, "the expired record is still held");
    }
}
