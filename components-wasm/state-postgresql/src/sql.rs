//! The SQL text of every statement, built once from the configured table
//! names (validated identifiers, the only thing ever spliced in). All values
//! travel as bound parameters.

/// Which rows are live: expired rows stay until cleaned up but are never seen.
const LIVE: &str = "(expiredate IS NULL OR expiredate > CURRENT_TIMESTAMP)";
/// The expiry for a TTL in seconds bound as `$4`; NULL (no TTL) gives NULL.
const EXPIRY: &str = "CURRENT_TIMESTAMP + $4::integer * interval '1 second'";
/// The columns a read returns, in the order [`crate::ops`] expects them.
pub const COLUMNS: &str =
    "key, value, isbinary, xmin::text, ceil(extract(epoch FROM expiredate))::bigint";

/// Every statement the store runs against its table.
#[derive(Debug, Clone)]
pub struct Statements {
    /// `$1` key → one row of [`COLUMNS`].
    pub get: String,
    /// `$1` text[] of keys → a row per live key.
    pub get_many: String,
    /// `$1` key, `$2` json, `$3` isbinary, `$4` TTL: insert or overwrite.
    pub upsert: String,
    /// As `upsert`, but only replaces a row that has expired: a live row
    /// makes it touch nothing, which the caller reports as a conflict.
    pub insert_first: String,
    /// As `upsert`, plus `$5` xmin: update only the live row with that ETag.
    pub update_if: String,
    /// `$1` key.
    pub delete: String,
    /// `$1` key, `$2` xmin.
    pub delete_if: String,
}

impl Statements {
    /// The statements for the state table `table`.
    pub fn new(table: &str) -> Self {
        let insert = format!(
            "INSERT INTO {table} AS t (key, value, isbinary, expiredate) \
             VALUES ($1, $2::jsonb, $3::boolean, {EXPIRY}) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, isbinary = excluded.isbinary, \
             updatedate = CURRENT_TIMESTAMP, expiredate = excluded.expiredate"
        );
        Statements {
            get: format!("SELECT {COLUMNS} FROM {table} WHERE key = $1 AND {LIVE}"),
            get_many: format!(
                "SELECT {COLUMNS} FROM {table} WHERE key = ANY($1::text[]) AND {LIVE}"
            ),
            insert_first: format!(
                "{insert} WHERE t.expiredate IS NOT NULL AND t.expiredate <= CURRENT_TIMESTAMP"
            ),
            upsert: insert,
            update_if: format!(
                "UPDATE {table} SET value = $2::jsonb, isbinary = $3::boolean, \
                 updatedate = CURRENT_TIMESTAMP, expiredate = {EXPIRY} \
                 WHERE key = $1 AND xmin = $5::xid AND {LIVE}"
            ),
            delete: format!("DELETE FROM {table} WHERE key = $1"),
            delete_if: format!("DELETE FROM {table} WHERE key = $1 AND xmin = $2::xid"),
        }
    }
}

/// A PostgreSQL array literal of `items` for a `text[]` parameter, quoting
/// every element so commas, braces, quotes and backslashes stay data.
pub fn text_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from("{");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('"');
        for c in item.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn array_literals_quote_everything() {
        assert_eq!(text_array([]), "{}");
        assert_eq!(
            text_array(["a", "b,c", "{\"x\\"]),
            r#"{"a","b,c","{\"x\\"}"#
        );
    }
}
