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
mod resp;
mod script;
#[cfg(test)]
mod tests;

use config::RedisConfig;
use conn::Connection;
use outrig_sdk::state::*;
use outrig_sdk::{Error, Feature, Metadata, Result};
use script::{Action, Outcome, WriteOp};
use std::io;
use std::net::TcpStream;
use std::time::{SystemTime, UNIX_EPOCH};

/// The component's state: its configuration and its (lazily opened) connection.
pub struct RedisStore {
    config: RedisConfig,
    conn: Option<Connection<TcpStream>>,
}

impl RedisStore {
    /// Runs `f` on the connection, opening it first if needed. On failure the
    /// connection is dropped; a call that only reads is retried once when the
    /// connection it reused from an earlier call turns out to have been closed
    /// (as a server does with idle clients).
    fn session<T>(
        &mut self,
        read_only: bool,
        f: impl Fn(&mut Connection<TcpStream>) -> io::Result<T>,
    ) -> Result<T> {
        let reused = self.conn.is_some();
        let result = match self.attempt(&f) {
            Err(err) if reused && read_only && was_closed(&err) => self.attempt(&f),
            result => result,
        };
        result.map_err(|err| self.unavailable(err))
    }

    fn attempt<T>(
        &mut self,
        f: &impl Fn(&mut Connection<TcpStream>) -> io::Result<T>,
    ) -> io::Result<T> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(Connection::open(&self.config)?),
        };
        let result = f(conn);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    /// The contract's error for a failed connection, naming the server and
    /// calling a timeout a timeout (a timed-out read on WASI reports EAGAIN).
    fn unavailable(&self, err: io::Error) -> Error {
        let address = &self.config.address;
        match err.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                let limit = self.config.io_timeout;
                Error::unavailable(format!("redis at {address}: no answer within {limit:?}"))
            }
            _ => Error::unavailable(format!("redis at {address}: {err}")),
        }
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

/// The contract's error for an error reply: states the server is passing
/// through (loading its data, running a slow script, failing over, out of
/// memory, restarted with a password) are `unavailable`, worth a retry.
fn server_error(message: &str) -> Error {
    const TRANSIENT: [&str; 8] = [
        "LOADING",
        "BUSY",
        "READONLY",
        "MASTERDOWN",
        "TRYAGAIN",
        "CLUSTERDOWN",
        "OOM",
        "NOAUTH",
    ];
    let code = message.split(' ').next().unwrap_or_default();
    if TRANSIENT.contains(&code) {
        Error::unavailable(format!("redis: {message}"))
    } else {
        Error::internal(format!("redis: {message}"))
    }
}

/// Whether an error means the peer had closed the connection, rather than
/// that it is slow or refused the request.
fn was_closed(err: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        err.kind(),
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
    )
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
            conn: None,
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
