//! Creating Dapr's v1 tables when absent, and deleting expired rows now and
//! then, in a way that interoperates with Dapr sidecars sharing the database:
//! the same table layout, and the same `migrations` and `last-cleanup` rows
//! in the metadata table.

use crate::conn::{PgConnection, PgError};
use std::io::{Read, Write};
use std::time::Duration;

/// Dapr's v1 migrations leave the level at 2 (table created, then
/// `expiredate` added); recording it keeps Dapr from re-running them.
const MIGRATION_LEVEL: &str = "2";

/// Creates the metadata and state tables if needed and records the migration
/// level. Idempotent, and safe against other sidecars doing the same at once.
pub fn ensure<S: Read + Write>(
    conn: &mut PgConnection<S>,
    table: &str,
    metadata_table: &str,
) -> Result<(), PgError> {
    let statements = [
        format!(
            "CREATE TABLE IF NOT EXISTS {metadata_table} (key text NOT NULL PRIMARY KEY, value text NOT NULL)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (\
             key text NOT NULL PRIMARY KEY, \
             value jsonb NOT NULL, \
             isbinary boolean NOT NULL, \
             insertdate TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(), \
             updatedate TIMESTAMP WITH TIME ZONE NULL, \
             expiredate TIMESTAMP WITH TIME ZONE NULL)"
        ),
        // A table made by an older Dapr lacks the column.
        format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS expiredate TIMESTAMP WITH TIME ZONE NULL"
        ),
    ];
    for sql in &statements {
        run_ddl(conn, sql)?;
    }
    let record = format!(
        "INSERT INTO {metadata_table} AS m (key, value) VALUES ('migrations', $1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE CASE \
         WHEN m.value ~ '^[0-9]{{1,9}}$' THEN m.value::integer < excluded.value::integer ELSE true END"
    );
    conn.execute(&record, &[Some(MIGRATION_LEVEL)]).map(drop)
}

/// Runs a `CREATE … IF NOT EXISTS`, retrying when another session creating
/// the same object at the same moment makes it fail with a duplicate error.
fn run_ddl<S: Read + Write>(conn: &mut PgConnection<S>, sql: &str) -> Result<(), PgError> {
    const ATTEMPTS: usize = 3;
    for attempt in 1..=ATTEMPTS {
        match conn.execute(sql, &[]) {
            Err(PgError::Server(err))
                if attempt < ATTEMPTS
                    && matches!(err.code.as_str(), "23505" | "42P07" | "42710") => {}
            result => return result.map(drop),
        }
    }
    Ok(())
}

/// Deletes expired rows if no sidecar sharing the metadata table has done so
/// within `interval`; the `last-cleanup` row, updated conditionally, elects
/// one. Returns how many rows were deleted.
pub fn clean_up<S: Read + Write>(
    conn: &mut PgConnection<S>,
    table: &str,
    metadata_table: &str,
    interval: Duration,
) -> Result<u64, PgError> {
    let claim = format!(
        "INSERT INTO {metadata_table} AS m (key, value) VALUES ('last-cleanup', now()::text) \
         ON CONFLICT (key) DO UPDATE SET value = now()::text \
         WHERE (extract('epoch' FROM now() - m.value::timestamp with time zone) * 1000)::bigint > $1::bigint"
    );
    let millis = interval.as_millis().to_string();
    if conn.execute(&claim, &[Some(&millis)])?.affected == 0 {
        return Ok(0);
    }
    let delete = format!("DELETE FROM {table} WHERE expiredate IS NOT NULL AND expiredate < now()");
    Ok(conn.execute(&delete, &[])?.affected)
}
