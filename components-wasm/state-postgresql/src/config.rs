//! The component's metadata, read once at `init` into a typed [`PgConfig`],
//! using the field names of Dapr's `state.postgresql` (v1) so existing
//! component YAML works unchanged.

use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// Dapr's defaults for the table names.
const DEFAULT_TABLE: &str = "state";
const DEFAULT_METADATA_TABLE: &str = "dapr_metadata";
/// Dapr's default for `timeoutInSeconds`.
const DEFAULT_TIMEOUT_SECS: u64 = 20;
/// Dapr's default for `cleanupIntervalInSeconds`: one hour.
const DEFAULT_CLEANUP_SECS: i64 = 3600;

/// Where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParams {
    /// Host name or IP address of the server (no Unix sockets in a guest).
    pub host: String,
    /// TCP port, 5432 unless given.
    pub port: u16,
    /// Role to log in as.
    pub user: String,
    /// Password, if the server asks for one.
    pub password: Option<String>,
    /// Database to open; the user's name when not given, as libpq does.
    pub database: String,
    /// Reported to the server as `application_name`, visible in `pg_stat_activity`.
    pub application_name: String,
}

/// Everything the store needs to know, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// From `connectionString`.
    pub conn: ConnParams,
    /// `tableName`: the state table, optionally schema-qualified.
    pub table: String,
    /// `metadataTableName`: where Dapr records migrations and the last cleanup.
    pub metadata_table: String,
    /// `timeoutInSeconds`: limit on connecting and on each read or write.
    pub timeout: Duration,
    /// `cleanupIntervalInSeconds`: how often expired rows are deleted; `None`
    /// (a value of 0 or less) disables it, as in Dapr. Expired rows are never
    /// returned either way.
    pub cleanup_interval: Option<Duration>,
}

impl PgConfig {
    /// Reads and validates Dapr's metadata fields.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let conn = parse_connection_string(metadata.require("connectionString")?)?;
        let table = metadata
            .get("tableName")
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_TABLE);
        let metadata_table = metadata
            .get("metadataTableName")
            .filter(|t| !t.is_empty())
            .unwrap_or(DEFAULT_METADATA_TABLE);
        let timeout = match metadata.parse_or("timeoutInSeconds", DEFAULT_TIMEOUT_SECS)? {
            0 => return Err(Error::invalid("timeoutInSeconds must be at least 1")),
            secs => Duration::from_secs(secs),
        };
        let cleanup_interval =
            match metadata.parse_or("cleanupIntervalInSeconds", DEFAULT_CLEANUP_SECS)? {
                secs if secs <= 0 => None,
                secs => Some(Duration::from_secs(secs as u64)),
            };
        Ok(PgConfig {
            conn,
            table: checked_table_name("tableName", table)?,
            metadata_table: checked_table_name("metadataTableName", metadata_table)?,
            timeout,
            cleanup_interval,
        })
    }
}

/// Table names are spliced into SQL text (they cannot be parameters), so only
/// plain identifiers, optionally `schema.table`, are accepted.
fn checked_table_name(field: &str, name: &str) -> Result<String> {
    let part_ok = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() <= 2 && parts.iter().all(|part| part_ok(part)) && name.len() <= 127 {
        Ok(name.to_string())
    } else {
        Err(Error::invalid(format!(
            "{field} `{name}`: use letters, digits and underscores, optionally `schema.table`"
        )))
    }
}

/// Parses both forms pgx and libpq accept: a `postgres://` URL, or
/// space-separated `key=value` pairs (values optionally single-quoted).
pub fn parse_connection_string(raw: &str) -> Result<ConnParams> {
    let raw = raw.trim();
    let pairs = if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
        url_pairs(raw)?
    } else {
        keyword_pairs(raw)?
    };
    let mut params = ConnParams {
        host: "localhost".into(),
        port: 5432,
        user: String::new(),
        password: None,
        database: String::new(),
        application_name: "outrig".into(),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "host" if value.starts_with('/') => {
                return Err(Error::NotSupported(
                    "connectionString: Unix sockets are not reachable from a component".into(),
                ));
            }
            "host" if value.contains(',') => {
                return Err(Error::NotSupported(
                    "connectionString: several hosts are not supported".into(),
                ));
            }
            "host" | "hostaddr" if !value.is_empty() => params.host = value,
            "port" if !value.is_empty() => {
                params.port = value.parse().map_err(|_| {
                    Error::invalid(format!("connectionString: port `{value}` is invalid"))
                })?;
            }
            "user" => params.user = value,
            "password" => params.password = Some(value).filter(|p| !p.is_empty()),
            "dbname" | "database" => params.database = value,
            "application_name" if !value.is_empty() => params.application_name = value,
            "sslmode" => match value.as_str() {
                "disable" | "allow" | "prefer" => {}
                other => {
                    return Err(Error::NotSupported(format!(
                        "connectionString: sslmode={other}: TLS connections to PostgreSQL are not supported yet; use sslmode=disable"
                    )));
                }
            },
            // Pool sizing, statement caching and the like concern pgx's pool,
            // which this single-connection component does not have.
            _ => {}
        }
    }
    if params.user.is_empty() {
        params.user = "postgres".into();
    }
    if params.database.is_empty() {
        params.database = params.user.clone();
    }
    Ok(params)
}

/// `postgres://user:pass@host:port/db?key=value&...` as key/value pairs.
fn url_pairs(raw: &str) -> Result<Vec<(String, String)>> {
    let rest = raw.split_once("://").map_or(raw, |(_, rest)| rest);
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let mut pairs = Vec::new();
    if !userinfo.is_empty() {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        pairs.push(("user".to_string(), percent_decode(user)?));
        pairs.push(("password".to_string(), percent_decode(password)?));
    }
    let (host, port) = match hostport.strip_prefix('[') {
        // [::1]:5432
        Some(bracketed) => {
            let (host, after) = bracketed
                .split_once(']')
                .ok_or_else(|| Error::invalid("connectionString: unclosed `[` in host"))?;
            (host, after.strip_prefix(':').unwrap_or(""))
        }
        None => hostport.rsplit_once(':').unwrap_or((hostport, "")),
    };
    pairs.push(("host".to_string(), percent_decode(host)?));
    pairs.push(("port".to_string(), port.to_string()));
    pairs.push(("dbname".to_string(), percent_decode(path)?));
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        pairs.push((percent_decode(key)?, percent_decode(value)?));
    }
    Ok(pairs)
}

/// `host=h port=5432 user='a b' password='it\'s'` as key/value pairs.
fn keyword_pairs(raw: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut chars = raw.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(pairs);
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(Error::invalid(format!(
                "connectionString: `{key}` has no `=value`"
            )));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                    None => {
                        return Err(Error::invalid(format!(
                            "connectionString: unterminated quote in `{key}`"
                        )));
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        pairs.push((key, value));
    }
}

fn percent_decode(raw: &str) -> Result<String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or_else(|| Error::invalid("connectionString: bad percent-escape"))?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid("connectionString: percent-escapes are not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::metadata;
    use outrig_sdk::state::describe;

    fn params(
        host: &str,
        port: u16,
        user: &str,
        password: Option<&str>,
        database: &str,
    ) -> ConnParams {
        ConnParams {
            host: host.into(),
            port,
            user: user.into(),
            password: password.map(String::from),
            database: database.into(),
            application_name: "outrig".into(),
        }
    }

    #[test]
    fn both_connection_string_forms_parse() {
        let cases = [
            (
                "postgres://u:p%40ss@db.local:5433/test?sslmode=disable",
                params("db.local", 5433, "u", Some("p@ss"), "test"),
            ),
            (
                "postgresql://localhost/test",
                params("localhost", 5432, "postgres", None, "test"),
            ),
            (
                "postgres://u@[::1]:6000/x?application_name=app&pool_max_conns=4",
                ConnParams {
                    application_name: "app".into(),
                    ..params("::1", 6000, "u", None, "x")
                },
            ),
            (
                "host=localhost user=postgres password=x port=5432 database=test sslmode=disable",
                params("localhost", 5432, "postgres", Some("x"), "test"),
            ),
            (
                "host = h  dbname=d user='a b' password='it\\'s'",
                params("h", 5432, "a b", Some("it's"), "d"),
            ),
            ("user=root", params("localhost", 5432, "root", None, "root")),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_connection_string(raw).ok(), Some(expected), "{raw}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        let cases = [
            (
                "host=h sslmode=require",
                "not supported: connectionString: sslmode=require",
            ),
            (
                "postgres://h/d?sslmode=verify-full",
                "not supported: connectionString: sslmode=verify-full",
            ),
            (
                "host=/var/run/postgresql",
                "not supported: connectionString: Unix sockets",
            ),
            ("host=a,b", "not supported: connectionString: several hosts"),
            ("host=h port=x", "invalid argument: connectionString: port"),
            (
                "host=h password='open",
                "invalid argument: connectionString: unterminated",
            ),
            ("host", "invalid argument: connectionString: `host` has no"),
            (
                "postgres://u:%zz@h/d",
                "invalid argument: connectionString: bad percent",
            ),
        ];
        for (raw, expected) in cases {
            match parse_connection_string(raw) {
                Err(err) => assert!(describe(&err).starts_with(expected), "{raw}: {err:?}"),
                Ok(params) => panic!("{raw} was accepted as {params:?}"),
            }
        }
    }

    #[test]
    fn metadata_fields_and_defaults() {
        let config =
            PgConfig::from_metadata(&metadata(&[("connectionString", "host=h")])).expect("valid");
        assert_eq!(
            (config.table.as_str(), config.metadata_table.as_str()),
            ("state", "dapr_metadata")
        );
        assert_eq!(
            (config.timeout, config.cleanup_interval),
            (Duration::from_secs(20), Some(Duration::from_secs(3600)))
        );

        let config = PgConfig::from_metadata(&metadata(&[
            ("connectionString", "host=h"),
            ("tableName", "app.kv_state"),
            ("metadataTableName", "meta"),
            ("timeoutInSeconds", "3"),
            ("cleanupIntervalInSeconds", "0"),
        ]))
        .expect("valid");
        assert_eq!(
            (config.table.as_str(), config.metadata_table.as_str()),
            ("app.kv_state", "meta")
        );
        assert_eq!(
            (config.timeout, config.cleanup_interval),
            (Duration::from_secs(3), None)
        );

        for bad in ["state; drop table x", "a.b.c", "1abc", "\"quoted\"", "x y"] {
            let result = PgConfig::from_metadata(&metadata(&[
                ("connectionString", "host=h"),
                ("tableName", bad),
            ]));
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "{bad} was accepted"
            );
        }
        assert!(PgConfig::from_metadata(&metadata(&[])).is_err());
    }
}
