//! `state.redb`: the durable embedded Dapr state store, and Outrig's default
//! when no resources are configured.
//!
//! It keeps every item in one [redb](https://docs.rs/redb) file in a
//! directory the host preopens for it, so data survives the sidecar
//! restarting. Semantics are Dapr's in full (ETags, first-write /
//! last-write, TTL, transactions, the query API) through the SDK's shared
//! [`state_rules`](outrig_sdk::state_rules) and [`query`](outrig_sdk::query);
//! every write, and every transaction, is one redb write transaction.
//!
//! Metadata: `dir` (guest path of the granted directory, default `/data`),
//! `fileName` (default `state.redb`), `cacheSizeMiB` (default 16),
//! `quickRepair` (default false: faster commits, but a reopen scans the
//! whole file, since a guest is never shut down cleanly). redb cannot lock
//! the file under WASI, so the host must run one instance of this store per
//! file.

mod codec;
mod config;
mod tables;

use config::Config;
use outrig_sdk::query::Query;
use outrig_sdk::state::*;
use outrig_sdk::state_rules::{self, Clock, apply_delete, apply_set, apply_transaction};
use outrig_sdk::{Error, Feature, Metadata, Result};
use redb::{Database, ReadableDatabase};
use tables::{RECORDS, WriteTables, storage};

/// The store: the open database and the clock TTLs are measured by.
pub struct Redb {
    db: Database,
    clock: Clock,
    quick_repair: bool,
}

impl Redb {
    /// Opens (or creates) the database described by `config`, reading the
    /// time from `clock` (tests pass a manual one).
    fn open(config: &Config, clock: Clock) -> Result<Redb> {
        let db = Database::builder()
            .set_cache_size(config.cache_bytes)
            .create(&config.path)
            .map_err(|err| {
                Error::Internal(format!(
                    "cannot open the redb database `{}`: {err}",
                    config.path.display()
                ))
            })?;
        let store = Redb {
            db,
            clock,
            quick_repair: config.quick_repair,
        };
        // Create the tables now, so reads never meet a missing table.
        store.write(|_, _| Ok(()))?;
        Ok(store)
    }

    /// Runs `change` in one write transaction, after purging what has
    /// expired; commits only if `change` succeeds.
    fn write<T>(&self, change: impl FnOnce(&mut WriteTables, u64) -> Result<T>) -> Result<T> {
        let now = self.clock.now_ms();
        let mut txn = self.db.begin_write().map_err(storage)?;
        txn.set_quick_repair(self.quick_repair);
        let outcome = WriteTables::open(&txn).and_then(|mut tables| {
            tables.purge_expired(now)?;
            change(&mut tables, now)
        });
        match outcome {
            Ok(value) => txn.commit().map(|()| value).map_err(storage),
            Err(err) => {
                txn.abort().map_err(storage)?;
                Err(err)
            }
        }
    }
}

impl StateStore for Redb {
    fn init(metadata: Metadata) -> Result<Self> {
        let config = Config::from_metadata(&metadata)?;
        let store = Redb::open(&config, Clock::system())?;
        outrig_sdk::log::info(format!("redb database at {}", config.path.display()));
        Ok(store)
    }

    fn features() -> Vec<Feature> {
        state_rules::features()
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        let now = self.clock.now_ms();
        let txn = self.db.begin_read().map_err(storage)?;
        let records = txn.open_table(RECORDS).map_err(storage)?;
        let Some(bytes) = records.get(request.key.as_str()).map_err(storage)? else {
            return Ok(None);
        };
        let (stamp, value) = codec::split(bytes.value())?;
        Ok(stamp.is_live(now).then(|| stamp.item(value.to_vec())))
    }

    fn set(&mut self, request: SetRequest) -> Result<()> {
        self.write(|tables, now| apply_set(tables, request, now))
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
        self.write(|tables, now| apply_delete(tables, &request, now))
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<()> {
        self.write(|tables, now| apply_transaction(tables, operations, now))
    }

    fn query(&mut self, request: QueryRequest) -> Result<QueryResponse> {
        let query = Query::parse(&request.query)?;
        let now = self.clock.now_ms();
        let txn = self.db.begin_read().map_err(storage)?;
        let records = txn.open_table(RECORDS).map_err(storage)?;
        let mut candidates = Vec::new();
        for entry in records
            .range(request.key_prefix.as_str()..)
            .map_err(storage)?
        {
            let (key, bytes) = entry.map_err(storage)?;
            if !key.value().starts_with(&request.key_prefix) {
                break;
            }
            let (stamp, value) = codec::split(bytes.value())?;
            if stamp.is_live(now) {
                candidates.push(stamp.query_item(key.value(), value.to_vec()));
            }
        }
        Ok(query.run(candidates))
    }
}

outrig_sdk::export_state_store!(Redb);

#[cfg(test)]
mod tests;
