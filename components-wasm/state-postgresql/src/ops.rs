//! The state operations as statements on one connection: reads by key,
//! conditional writes, and writes applied together in a transaction.
//! Works on any [`PgConnection`], so it is tested natively against a real
//! server.

use crate::conn::{PgConnection, PgError};
use crate::query::Translated;
use crate::sql::{Statements, text_array};
use crate::value::{self, Stored};
use outrig_sdk::state::{BulkItem, Item, QueryItem, QueryResponse};
use std::collections::HashMap;
use std::io::{Read, Write as IoWrite};

/// What one key read gave: an item, a miss, or why its row is unreadable.
pub type ReadResult = Result<Option<Item>, String>;

/// One write, validated: value encoded, ETag parsed as the `xmin` it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Insert or overwrite a key.
    Set {
        /// The full key, `<app-id>||<key>`.
        key: String,
        /// The value in column form.
        stored: Stored,
        /// The row's `xmin` must equal this.
        etag: Option<u32>,
        /// Without an ETag, refuse if a live row exists.
        first_write: bool,
        /// Seconds until expiry; `None` never expires (and clears an old TTL).
        ttl: Option<u32>,
    },
    /// Remove a key; missing keys are fine unless an ETag was given.
    Delete {
        /// The full key.
        key: String,
        /// The row's `xmin` must equal this.
        etag: Option<u32>,
    },
}

/// Reads one key.
pub fn read_one<S: Read + IoWrite>(
    conn: &mut PgConnection<S>,
    sql: &Statements,
    key: &str,
) -> Result<ReadResult, PgError> {
    let rows = conn.execute(&sql.get, &[Some(key)])?;
    Ok(match rows.rows.into_iter().next() {
        Some(row) => item_from(row).map(|(_, item)| Some(item)),
        None => Ok(None),
    })
}

/// Reads several keys with one statement; answers follow `keys`' order,
/// each with the key it is for.
pub fn read_many<S: Read + IoWrite>(
    conn: &mut PgConnection<S>,
    sql: &Statements,
    keys: Vec<String>,
) -> Result<Vec<BulkItem>, PgError> {
    let array = text_array(keys.iter().map(String::as_str));
    let rows = conn.execute(&sql.get_many, &[Some(&array)])?;
    let mut found = HashMap::new();
    let mut unreadable = None;
    for row in rows.rows {
        match item_from(row) {
            Ok((key, item)) => {
                found.insert(key, item);
            }
            Err(message) => unreadable = Some(message),
        }
    }
    Ok(keys
        .into_iter()
        .map(|key| {
            let item = found.get(&key).cloned();
            // A row that could not be decoded names no key we can trust;
            // its error stands for every key left without an item.
            let error = if item.is_none() {
                unreadable.clone()
            } else {
                None
            };
            BulkItem { key, item, error }
        })
        .collect())
}

/// Runs a translated query. Rows that cannot be decoded fail the query, as
/// a page with holes would mislead the caller.
pub fn query<S: Read + IoWrite>(
    conn: &mut PgConnection<S>,
    query: &Translated,
) -> Result<Result<QueryResponse, String>, PgError> {
    let params: Vec<Option<&str>> = query
        .params
        .iter()
        .map(|param| Some(param.as_str()))
        .collect();
    let rows = conn.execute(&query.sql, &params)?;
    let results = rows.rows.into_iter().map(|row| {
        item_from(row).map(|(key, item)| QueryItem {
            key,
            value: item.value,
            etag: item.etag,
        })
    });
    let results = match results.collect::<Result<Vec<_>, _>>() {
        Ok(results) => results,
        Err(message) => return Ok(Err(message)),
    };
    // Like Dapr, a paged query always hands out the next offset; an empty
    // page tells the caller it has seen everything.
    let token = query
        .limit
        .map(|_| (query.offset + results.len() as u64).to_string());
    Ok(Ok(QueryResponse { results, token }))
}

/// A row of the read columns (`key, value, isbinary, xmin, expiry`) as an item.
fn item_from(row: Vec<Option<Vec<u8>>>) -> Result<(String, Item), String> {
    let [Some(key), Some(json), Some(binary), etag, expiry] =
        <[_; 5]>::try_from(row).map_err(|_| "unexpected columns".to_string())?
    else {
        return Err("unexpected NULL column".into());
    };
    let key = String::from_utf8(key).map_err(|_| "key is not UTF-8".to_string())?;
    let value = value::decode(json, binary == b"t").map_err(|err| format!("{key}: {err}"))?;
    let etag = etag.map(|etag| String::from_utf8_lossy(&etag).into_owned());
    let expires_at_unix = expiry.and_then(|raw| String::from_utf8_lossy(&raw).parse::<u64>().ok());
    Ok((
        key,
        Item {
            value,
            etag,
            expires_at_unix,
        },
    ))
}

/// Runs one write. `Ok(false)` means its ETag or first-write condition did
/// not hold and nothing was written.
pub fn apply<S: Read + IoWrite>(
    conn: &mut PgConnection<S>,
    sql: &Statements,
    write: &Write,
) -> Result<bool, PgError> {
    match write {
        Write::Set {
            key,
            stored,
            etag,
            first_write,
            ttl,
        } => {
            let binary = if stored.is_binary { "true" } else { "false" };
            let ttl = ttl.map(|ttl| ttl.to_string());
            let mut params = vec![
                Some(key.as_str()),
                Some(stored.json.as_str()),
                Some(binary),
                ttl.as_deref(),
            ];
            let etag = etag.map(|etag| etag.to_string());
            let statement = match (&etag, first_write) {
                (Some(etag), _) => {
                    params.push(Some(etag));
                    &sql.update_if
                }
                (None, true) => &sql.insert_first,
                (None, false) => &sql.upsert,
            };
            Ok(conn.execute(statement, &params)?.affected == 1)
        }
        Write::Delete {
            key,
            etag: Some(etag),
        } => {
            let etag = etag.to_string();
            Ok(conn
                .execute(&sql.delete_if, &[Some(key), Some(&etag)])?
                .affected
                == 1)
        }
        Write::Delete { key, etag: None } => conn.execute(&sql.delete, &[Some(key)]).map(|_| true),
    }
}

/// Runs `writes` in one transaction: all of them, or (when a condition fails
/// or the server refuses one) none. `Ok(false)` means a condition failed.
pub fn apply_all<S: Read + IoWrite>(
    conn: &mut PgConnection<S>,
    sql: &Statements,
    writes: &[Write],
) -> Result<bool, PgError> {
    conn.execute("BEGIN", &[])?;
    for write in writes {
        match apply(conn, sql, write) {
            Ok(true) => {}
            Ok(false) => {
                conn.execute("ROLLBACK", &[])?;
                return Ok(false);
            }
            Err(err) => {
                if !err.is_fatal() {
                    conn.execute("ROLLBACK", &[])?;
                }
                return Err(err);
            }
        }
    }
    conn.execute("COMMIT", &[])?;
    Ok(true)
}
