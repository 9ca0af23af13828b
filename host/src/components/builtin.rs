//! The built-in components, looked up by Dapr's `spec.type`.
//!
//! A built-in's capabilities are derived from its own metadata: `redisHost:
//! localhost:6379` grants exactly that address and nothing else.

use super::loader::LoadContext;
use crate::runtime::grants::PreopenGrant;
use anyhow::{Context, bail};

#[allow(missing_docs)]
mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

#[doc(hidden)]
pub use guests::{TEST_HOSTILE_PATH, TEST_VERSIONED_PATH};

/// What a built-in is granted, derived from its metadata.
#[derive(Debug, Default)]
pub struct DerivedGrant {
    /// `host:port` addresses it may connect to.
    pub outbound: Vec<String>,
    /// Directories it may use.
    pub preopens: Vec<PreopenGrant>,
    /// Metadata the host adds for the guest (e.g. the guest path of its directory).
    pub extra_metadata: Vec<(String, String)>,
}

/// One built-in component type.
pub struct Builtin {
    /// Dapr's `spec.type`.
    pub component_type: &'static str,
    /// The component's bytes.
    pub wasm: &'static [u8],
    /// Most instances at once: 1 where the store holds its data in the
    /// instance (in-memory) or locks a file (redb).
    pub max_instances: usize,
    /// Whether two live versions must never open its files at once (redb
    /// cannot lock its file under WASI): a hot reload then retires the old
    /// version before it starts the new one.
    pub exclusive_files: bool,
    /// Derives the grant from the metadata.
    pub derive: fn(&Metadata<'_>, &LoadContext) -> anyhow::Result<DerivedGrant>,
}

/// Read access to resolved metadata, case-insensitive like Dapr's.
pub struct Metadata<'a>(pub &'a [(String, String)]);

impl Metadata<'_> {
    /// The value of `name`, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

const BUILTINS: &[Builtin] = &[
    Builtin {
        component_type: "state.in-memory",
        wasm: guests::STATE_IN_MEMORY,
        max_instances: 1,
        exclusive_files: false,
        derive: |_, _| Ok(DerivedGrant::default()),
    },
    Builtin {
        component_type: "state.redb",
        wasm: guests::STATE_REDB,
        max_instances: 1,
        exclusive_files: true,
        derive: derive_redb,
    },
    Builtin {
        component_type: "state.redis",
        wasm: guests::STATE_REDIS,
        max_instances: 16,
        exclusive_files: false,
        derive: derive_redis,
    },
    Builtin {
        component_type: "state.postgresql",
        wasm: guests::STATE_POSTGRESQL,
        max_instances: 16,
        exclusive_files: false,
        derive: derive_postgresql,
    },
];

/// The built-in for `component_type`, if there is one.
pub fn lookup(component_type: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|b| b.component_type.eq_ignore_ascii_case(component_type))
}

/// Every built-in type name, for error messages and `outrig components`.
pub fn type_names() -> Vec<&'static str> {
    BUILTINS.iter().map(|b| b.component_type).collect()
}

/// Where the embedded store keeps its data inside the guest.
const REDB_GUEST_DIR: &str = "/data";

fn derive_redb(metadata: &Metadata<'_>, ctx: &LoadContext) -> anyhow::Result<DerivedGrant> {
    let host_dir = match metadata.get("dataDir") {
        Some(dir) => ctx.resolve_path(dir),
        None => ctx.data_dir.join(&ctx.component_name),
    };
    std::fs::create_dir_all(&host_dir).with_context(|| {
        format!(
            "spec.metadata.dataDir: cannot create {}",
            host_dir.display()
        )
    })?;
    Ok(DerivedGrant {
        outbound: Vec::new(),
        preopens: vec![PreopenGrant {
            host: host_dir,
            guest: REDB_GUEST_DIR.into(),
            read_only: false,
        }],
        extra_metadata: vec![("dir".into(), REDB_GUEST_DIR.into())],
    })
}

fn derive_redis(metadata: &Metadata<'_>, _: &LoadContext) -> anyhow::Result<DerivedGrant> {
    let Some(host) = metadata.get("redisHost") else {
        bail!("spec.metadata.redisHost: required (host:port)");
    };
    let host = host.trim();
    let address = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:6379")
    };
    Ok(DerivedGrant {
        outbound: vec![address],
        ..DerivedGrant::default()
    })
}

fn derive_postgresql(metadata: &Metadata<'_>, _: &LoadContext) -> anyhow::Result<DerivedGrant> {
    let Some(conn) = metadata.get("connectionString") else {
        bail!("spec.metadata.connectionString: required");
    };
    let (host, port) = postgres_address(conn)
        .context("spec.metadata.connectionString: cannot find the server address")?;
    Ok(DerivedGrant {
        outbound: vec![format!("{host}:{port}")],
        ..DerivedGrant::default()
    })
}

/// The `host` and `port` of a PostgreSQL connection string, in URL form
/// (`postgres://user:pw@host:port/db`) or key/value form (`host=h port=p`).
fn postgres_address(conn: &str) -> Option<(String, u16)> {
    let conn = conn.trim();
    let (host, port) = if let Some(rest) = conn
        .strip_prefix("postgres://")
        .or_else(|| conn.strip_prefix("postgresql://"))
    {
        let authority = rest.split(['/', '?']).next()?;
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                Some(p.parse().ok()?),
            ),
            _ => (hostport.to_string(), None),
        }
    } else {
        let mut host = None;
        let mut port = None;
        for pair in conn.split_whitespace() {
            match pair.split_once('=') {
                Some((k, v)) if k.eq_ignore_ascii_case("host") => host = Some(v.to_string()),
                Some((k, v)) if k.eq_ignore_ascii_case("port") => port = Some(v.parse().ok()?),
                _ => {}
            }
        }
        (host.unwrap_or_default(), port)
    };
    let host = if host.is_empty() {
        "localhost".to_string()
    } else {
        host
    };
    Some((host, port.unwrap_or(5432)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_addresses_in_both_forms() {
        let cases: &[(&str, Option<(&str, u16)>)] = &[
            (
                "postgres://u:p@db.local:6543/test?sslmode=disable",
                Some(("db.local", 6543)),
            ),
            ("postgresql://localhost/test", Some(("localhost", 5432))),
            ("postgres://u@[::1]:5433/x", Some(("::1", 5433))),
            (
                "host=10.1.2.3 user=postgres port=5440 database=test",
                Some(("10.1.2.3", 5440)),
            ),
            ("user=postgres database=test", Some(("localhost", 5432))),
            ("host=x port=notanumber", None),
        ];
        for (conn, expected) in cases {
            let got = postgres_address(conn);
            let expected = expected.map(|(h, p)| (h.to_string(), p));
            assert_eq!(got, expected, "{conn}");
        }
    }

    #[test]
    fn redis_grant_is_exactly_its_host() {
        let ctx = LoadContext::for_tests();
        let md = vec![("redisHost".to_string(), "localhost:6390".to_string())];
        let grant = derive_redis(&Metadata(&md), &ctx).expect("grant");
        assert_eq!(grant.outbound, vec!["localhost:6390".to_string()]);
        let md = vec![("redisHost".to_string(), "cache".to_string())];
        let grant = derive_redis(&Metadata(&md), &ctx).expect("grant");
        assert_eq!(grant.outbound, vec!["cache:6379".to_string()]);
        assert!(derive_redis(&Metadata(&[]), &ctx).is_err());
    }
}
