//! `state.postgresql`: Dapr's PostgreSQL state store (v1 table layout) as an
//! Outrig component.
//!
//! Rows use Dapr's schema (`key`, `value jsonb`, `isbinary`, `insertdate`,
//! `updatedate`, `expiredate`) with the row's `xmin` as the ETag, so an app can
//! move between Dapr and Outrig without migrating. The component speaks the
//! PostgreSQL wire protocol itself over `std::net` (wasi:sockets in the
//! guest): one connection per instance, opened on first use, dropped after any
//! I/O or protocol error, never left inside a transaction between calls.
//!
//! It knows nothing of the host beyond the SDK's contract.

mod auth;
mod config;
mod conn;
mod ops;
mod query;
mod schema;
mod sql;
#[cfg(test)]
mod tests;
mod value;
mod wire;

use config::PgConfig;
use conn::{PgConnection, PgError};
use ops::Write;
use outrig_sdk::state::*;
use outrig_sdk::{Error, Feature, Metadata, Result};
use sql::Statements;
use std::io;
use std::net::TcpStream;
use std::time::Instant;

/// The component's state: configuration, prepared SQL text, the (lazily
/// opened) connection and the bookkeeping of schema setup and cleanup.
pub struct PgStore {
    config: PgConfig,
    sql: Statements,
    conn: Option<PgConnection<TcpStream>>,
    /// Whether this instance has made sure the tables exist.
    schema_ready: bool,
    /// When this instance next tries to delete expired rows.
    next_cleanup: Option<Instant>,
}

impl PgStore {
    /// Runs `f` on the connection, opening it (and creating the tables) first
    /// if needed. The connection is dropped after a fatal error or if `f`
    /// left it inside a transaction. A read is retried once when the
    /// connection it reused turns out to have been closed by the server.
    fn session<T>(
        &mut self,
        read_only: bool,
        mut f: impl FnMut(&mut PgConnection<TcpStream>, &Statements) -> Result<T, PgError>,
    ) -> Result<T> {
        let reused = self.conn.is_some();
        let result = match self.attempt(&mut f) {
            Err(err) if reused && read_only && was_closed(&err) => self.attempt(&mut f),
            result => result,
        };
        result.map_err(|err| self.error(err))
    }

    fn attempt<T>(
        &mut self,
        f: &mut impl FnMut(&mut PgConnection<TcpStream>, &Statements) -> Result<T, PgError>,
    ) -> Result<T, PgError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self
                .conn
                .insert(PgConnection::open(&self.config.conn, self.config.timeout)?),
        };
        let mut result = Ok(());
        if !self.schema_ready {
            result = schema::ensure(conn, &self.config.table, &self.config.metadata_table);
            self.schema_ready = result.is_ok();
        }
        let result = result.and_then(|()| {
            clean_up_if_due(conn, &self.config, &mut self.next_cleanup)?;
            f(conn, &self.sql)
        });
        if result.as_ref().is_err_and(PgError::is_fatal) || !conn.is_idle() {
            self.conn = None;
        }
        result
    }

    /// The contract's error for a failure: connection trouble and transient
    /// server conditions are `unavailable` (worth a retry), the rest internal.
    fn error(&self, err: PgError) -> Error {
        let server = format!(
            "postgres at {}:{}",
            self.config.conn.host, self.config.conn.port
        );
        match err {
            PgError::Io(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Error::unavailable(format!(
                    "{server}: no answer within {:?}",
                    self.config.timeout
                ))
            }
            PgError::Io(err) => Error::unavailable(format!("{server}: {err}")),
            PgError::Server(ref server_error) if is_transient(&server_error.code) => {
                Error::unavailable(format!("{server}: {err}"))
            }
            // Data exceptions: the request carried something the column
            // types cannot hold (a NUL in a key, a number out of range).
            PgError::Server(ref server_error) if server_error.code.starts_with("22") => {
                Error::invalid(format!("{server}: {err}"))
            }
            PgError::Server(_) => Error::internal(format!("{server}: {err}")),
        }
    }

    /// Runs writes one by one, each on its own, stopping at the first failure.
    fn write_each(&mut self, writes: Vec<Write>) -> Result<()> {
        let outcomes = self.session(false, |conn, sql| {
            for write in &writes {
                if !ops::apply(conn, sql, write)? {
                    return Ok(false);
                }
            }
            Ok(true)
        })?;
        if outcomes {
            Ok(())
        } else {
            Err(Error::EtagMismatch)
        }
    }
}

/// Deletes expired rows when this instance's cleanup interval has passed.
/// Cleanup is housekeeping: a refusal by the server does not fail the call.
fn clean_up_if_due(
    conn: &mut PgConnection<TcpStream>,
    config: &PgConfig,
    next_cleanup: &mut Option<Instant>,
) -> Result<(), PgError> {
    let Some(interval) = config.cleanup_interval else {
        return Ok(());
    };
    let now = Instant::now();
    if next_cleanup.is_some_and(|due| now < due) {
        return Ok(());
    }
    *next_cleanup = Some(now + interval);
    match schema::clean_up(conn, &config.table, &config.metadata_table, interval) {
        Err(err) if err.is_fatal() => Err(err),
        _ => Ok(()),
    }
}

/// SQLSTATEs after which the same call may well succeed: connection
/// exceptions (08), serialization failures and deadlocks (40001, 40P01),
/// insufficient resources (53), operator intervention such as a shutdown (57),
/// and refused logins (28) or missing databases (3D000) while an operator fixes them.
fn is_transient(code: &str) -> bool {
    ["08", "53", "57", "28"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "3D000")
}

/// Whether an error means the server had ended the session: it closed the
/// socket, or said why first (`FATAL`, e.g. an idle-session timeout or an
/// administrator's `pg_terminate_backend`). Timeouts do not count.
fn was_closed(err: &PgError) -> bool {
    use io::ErrorKind::*;
    match err {
        PgError::Io(err) => {
            matches!(
                err.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected
            )
        }
        PgError::Server(_) => err.is_fatal(),
    }
}

/// The key and ETag of a write, checked: the key must not be empty, and the
/// ETag (empty counts as none) must be a row's `xmin`, a 32-bit transaction
/// id, since anything else could never match.
fn target(key: String, etag: Option<String>) -> Result<(String, Option<u32>)> {
    if key.is_empty() {
        return Err(Error::invalid("the key is empty"));
    }
    let etag = match etag.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(raw.parse().map_err(|_| Error::EtagInvalid)?),
    };
    Ok((key, etag))
}

fn set_write(request: SetRequest) -> Result<Write> {
    let (key, etag) = target(request.key, request.etag)?;
    Ok(Write::Set {
        key,
        stored: value::encode(&request.value),
        etag,
        first_write: request.concurrency == Concurrency::FirstWrite,
        ttl: request.ttl_seconds.filter(|&ttl| ttl > 0),
    })
}

fn delete_write(request: DeleteRequest) -> Result<Write> {
    let (key, etag) = target(request.key, request.etag)?;
    Ok(Write::Delete { key, etag })
}

impl StateStore for PgStore {
    fn init(metadata: Metadata) -> Result<Self> {
        let config = PgConfig::from_metadata(&metadata)?;
        let sql = Statements::new(&config.table);
        Ok(PgStore {
            config,
            sql,
            conn: None,
            schema_ready: false,
            next_cleanup: None,
        })
    }

    fn features() -> Vec<Feature> {
        vec![
            Feature::Etag,
            Feature::Transactional,
            Feature::Ttl,
            Feature::QueryApi,
        ]
    }

    fn get(&mut self, request: GetRequest) -> Result<Option<Item>> {
        let (key, _) = target(request.key, None)?;
        let result = self.session(true, |conn, sql| ops::read_one(conn, sql, &key))?;
        result.map_err(|message| Error::internal(format!("postgres: unreadable row: {message}")))
    }

    fn bulk_get(&mut self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = requests.into_iter().map(|request| request.key).collect();
        self.session(true, |conn, sql| ops::read_many(conn, sql, keys.clone()))
    }

    fn set(&mut self, request: SetRequest) -> Result<()> {
        self.write_each(vec![set_write(request)?])
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<()> {
        self.write_each(vec![delete_write(request)?])
    }

    fn bulk_set(&mut self, requests: Vec<SetRequest>) -> Result<()> {
        self.write_each(requests.into_iter().map(set_write).collect::<Result<_>>()?)
    }

    fn bulk_delete(&mut self, requests: Vec<DeleteRequest>) -> Result<()> {
        self.write_each(
            requests
                .into_iter()
                .map(delete_write)
                .collect::<Result<_>>()?,
        )
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<()> {
        let writes: Vec<Write> = operations
            .into_iter()
            .map(|operation| match operation {
                Operation::Set(request) => set_write(request),
                Operation::Delete(request) => delete_write(request),
            })
            .collect::<Result<_>>()?;
        match writes.len() {
            0 => return Ok(()),
            // One statement is atomic on its own; skip BEGIN/COMMIT as Dapr does.
            1 => return self.write_each(writes),
            _ => {}
        }
        let applied = self.session(false, |conn, sql| ops::apply_all(conn, sql, &writes))?;
        if applied {
            Ok(())
        } else {
            Err(Error::EtagMismatch)
        }
    }

    fn query(&mut self, request: QueryRequest) -> Result<QueryResponse> {
        let translated = query::translate(&self.config.table, &request.query, &request.key_prefix)
            .map_err(|message| Error::invalid(format!("query: {message}")))?;
        let result = self.session(true, |conn, _| ops::query(conn, &translated))?;
        result.map_err(|message| Error::internal(format!("postgres: unreadable row: {message}")))
    }
}

outrig_sdk::export_state_store!(PgStore);
