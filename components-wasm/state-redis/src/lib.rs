//! `state.redis`: Dapr's Redis state store as an Outrig component.
//!
//! Data uses Dapr's layout (a hash per key with `data` and `version`), so an
//! app can move between Dapr and Outrig without migrating. Writes, single or
//! transactional, go through one Lua script that checks every ETag before
//! applying anything; reads are pipelined. The component keeps one connection
//! per instance, opened on first use and dropped after any I/O or protocol
//! error so the next call starts clean.
//!
//! This crate knows nothing of the host beyond the SDK's contract; it reaches
//! Redis over plain `std::net` (wasi:sockets inside the component).

mod config;
mod conn;
mod ops;
mod script;
#[cfg(test)]
mod tests;

use config::RedisConfig;
use conn::Connection;
use outrig_sdk::state::*;
use outrig_sdk::{Error, Feature, Metadata, Result};
use redis_wire::{Lazy, server_error};
use script::{Action, Outcome, WriteOp};
use std::io;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

/// The component's state: its configuration and its (lazily opened) connection.
pub struct RedisStore {
    config: RedisConfig,
    conn: Lazy<Connection<TcpStream>>,
}

impl RedisStore {
    /// Runs `f` on the connection, opening it first if needed; see
    /// [`Lazy::run`]. Only calls that just read are retried.
    fn session<T>(
        &mut self,
        read_only: bool,
        f: impl Fn(&mut Connection<TcpStream>) -> io::Result<T>,
    ) -> Result<T> {
        let config = &self.config;
        self.conn
            .run(|| Connection::open(config), read_only, f)
            .map_err(|err| config.endpoint.unavailable(err))
    }

    fn read(&mut self, keys: &[&str]) -> Result<Vec<ops::ReadResult>> {
        let now = unix_millis();
        self.session(true, |conn| ops::read(conn, keys, now))
    }

    /// Applies each batch atomically and returns the first failure, if any.
    fn write(&mut self, batches: Vec<Vec<WriteOp>>) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let outcomes = self.session(false, |conn| ops::write(conn, &batches))?;
        outcomes.into_iter().try_for_each(|outcome| match outcome {
            Ok(Outcome::Applied) => Ok(()),
            Ok(Outcome::Refused(_)) => Err(Error::EtagMismatch),
            Err(message) => Err(server_error(&message)),
        })
    }

    /// Writes each request as its own atomic script call, all pipelined.
    fn write_each<R>(
        &mut self,
        requests: Vec<R>,
        to_op: fn(&Self, R) -> Result<WriteOp>,
    ) -> Result<()> {
        let batches = requests
            .into_iter()
            .map(|request| to_op(self, request).map(|op| vec![op]))
            .collect::<Result<_>>()?;
        self.write(batches)
    }

    fn set_op(&self, request: SetRequest) -> Result<WriteOp> {
        let ttl = self
            .config
            .ttl_for(request.ttl_seconds, &Metadata::from(request.metadata))?;
        Ok(WriteOp {
            key: checked_key(request.key)?,
            etag: parse_etag(request.etag.as_deref())?,
            action: Action::Set {
                value: request.value,
                first_write: request.concurrency == Concurrency::FirstWrite,
                ttl,
            },
        })
    }

    fn delete_op(&self, request: DeleteRequest) -> Result<WriteOp> {
        Ok(WriteOp {
            key: checked_key(request.key)?,
            etag: parse_etag(request.etag.as_deref())?,
            action: Action::Delete,
        })
    }
}

/// ETags this store issues are the hash's integer `version`; anything else
/// cannot match and is refused as malformed. An empty ETag counts as none.
fn parse_etag(etag: Option<&str>) -> Result<Option<u64>> {
    match etag {
        None | Some("") => Ok(None),
        Some(raw) => raw.parse().map(Some).map_err(|_| Error::EtagInvalid),
    }
}

fn checked_key(key: String) -> Result<String> {
    if key.is_empty() {
        Err(Error::invalid("the key is empty"))
    } else {
        Ok(key)
    }
}

fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

impl StateStore for RedisStore {
    fn init(metadata: Metadata) -> Result<Self> {
        Ok(RedisStore {
            config: RedisConfig::from_metadata(&metadata)?,
            conn: Lazy::default(),
        })
    }

    fn features() -> Vec<Feature> {
        vec![Feature::Etag, Feature::Transactional, Feature::Ttl]
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        let key = checked_key(request.key)?;
        match self.read(&[&key])?.pop() {
            Some(result) => result.map_err(|message| server_error(&message)),
            None => Ok(None),
        }
    }

    fn bulk_get(&mut self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>> {
        let keys: Vec<&str> = requests
            .iter()
            .map(|request| request.key.as_str())
            .collect();
        let results = if keys.is_empty() {
            Vec::new()
        } else {
            self.read(&keys)?
        };
        Ok(requests
            .into_iter()
            .zip(results)
            .map(|(request, result)| match result {
                Ok(item) => BulkItem {
                    key: request.key,
                    item,
                    error: None,
                },
                Err(message) => BulkItem {
                    key: request.key,
                    item: None,
                    error: Some(message),
                },
            })
            .collect())
    }

    fn set(&mut self, request: SetRequest) -> Result<()> {
        self.write_each(vec![request], Self::set_op)
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
        self.write_each(vec![request], Self::delete_op)
    }

    fn bulk_set(&mut self, requests: Vec<SetRequest>) -> Result<()> {
        self.write_each(requests, Self::set_op)
    }

    fn bulk_delete(&mut self, requests: Vec<DeleteRequest>) -> Result<()> {
        self.write_each(requests, Self::delete_op)
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<()> {
        let ops: Vec<WriteOp> = operations
            .into_iter()
            .map(|operation| match operation {
                Operation::Set(request) => self.set_op(request),
                Operation::Delete(request) => self.delete_op(request),
            })
            .collect::<Result<_>>()?;
        if ops.is_empty() {
            return Ok(());
        }
        self.write(vec![ops])
    }
}

outrig_sdk::export_state_store!(RedisStore);
