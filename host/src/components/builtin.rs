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
    /// Whether each subscription's pulls keep to one instance (see
    /// [`crate::runtime::pool::Affinity`]): the guest holds a consumer
    /// session on one instance's connection, and pulls reaching another
    /// instance would find it held there (MQTT: a client id is one
    /// connection at a time), leaving it unread while that instance idles.
    pub sticky_pulls: bool,
    /// Whether two live versions must never open its files at once (redb
    /// cannot lock its file under WASI): a hot reload then retires the old
    /// version before it starts the new one.
    pub exclusive_files: bool,
    /// Whether its messages live only in its instance (the in-process
    /// broker): after a hot swap, delivery drains the old version before it
    /// pulls from the new one, so what the old one held is not lost.
    pub volatile_messages: bool,
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
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: |_, _| Ok(DerivedGrant::default()),
    },
    Builtin {
        component_type: "state.redb",
        wasm: guests::STATE_REDB,
        max_instances: 1,
        sticky_pulls: false,
        exclusive_files: true,
        volatile_messages: false,
        derive: derive_redb,
    },
    Builtin {
        component_type: "state.redis",
        wasm: guests::STATE_REDIS,
        max_instances: 16,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_redis,
    },
    Builtin {
        component_type: "state.postgresql",
        wasm: guests::STATE_POSTGRESQL,
        max_instances: 16,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_postgresql,
    },
    Builtin {
        component_type: "pubsub.in-memory",
        wasm: guests::PUBSUB_IN_MEMORY,
        max_instances: 1,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: true,
        derive: |_, _| Ok(DerivedGrant::default()),
    },
    Builtin {
        component_type: "pubsub.redis",
        wasm: guests::PUBSUB_REDIS,
        max_instances: 16,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_redis,
    },
    Builtin {
        component_type: "pubsub.jetstream",
        wasm: guests::PUBSUB_NATS,
        max_instances: 16,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_nats,
    },
    Builtin {
        component_type: "pubsub.nats",
        wasm: guests::PUBSUB_NATS,
        max_instances: 16,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_nats,
    },
    Builtin {
        component_type: "pubsub.mqtt3",
        wasm: guests::PUBSUB_MQTT,
        max_instances: 4,
        sticky_pulls: true,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_mqtt,
    },
    Builtin {
        component_type: "pubsub.mqtt",
        wasm: guests::PUBSUB_MQTT,
        max_instances: 4,
        sticky_pulls: true,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_mqtt,
    },
    Builtin {
        component_type: "pubsub.rabbitmq",
        wasm: guests::PUBSUB_RABBITMQ,
        max_instances: 8,
        sticky_pulls: false,
        exclusive_files: false,
        volatile_messages: false,
        derive: derive_rabbitmq,
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

/// The address in `natsURL` (`nats://[user:pw@]host[:port]`), as the guest reads it.
fn derive_nats(metadata: &Metadata<'_>, _: &LoadContext) -> anyhow::Result<DerivedGrant> {
    let url = metadata.get("natsURL").unwrap_or("nats://localhost:4222");
    url_grant("natsURL", url, 4222)
}

/// The address in `url` (`tcp://[user:pw@]host[:port]`), as the guest reads it.
fn derive_mqtt(metadata: &Metadata<'_>, _: &LoadContext) -> anyhow::Result<DerivedGrant> {
    let Some(url) = metadata.get("url") else {
        bail!("spec.metadata.url: required (tcp://host:port)");
    };
    url_grant("url", url, 1883)
}

/// The server in `connectionString` (`amqp://user:pw@host[:port]/vhost`),
/// else `hostname` (with its own `:port`, or `port`), else localhost.
fn derive_rabbitmq(metadata: &Metadata<'_>, _: &LoadContext) -> anyhow::Result<DerivedGrant> {
    if let Some(url) = metadata.get("connectionString") {
        return url_grant("connectionString", url, 5672);
    }
    let host = metadata.get("hostname").unwrap_or("localhost");
    match metadata.get("port") {
        Some(port) => url_grant("port", &format!("{host}:{port}"), 5672),
        None => url_grant("hostname", host, 5672),
    }
}

/// A grant of exactly the server address in `url` (metadata field `field`).
fn url_grant(field: &str, url: &str, default_port: u16) -> anyhow::Result<DerivedGrant> {
    let Some((host, port)) = url_address(url).filter(|(host, _)| !host.is_empty()) else {
        bail!("spec.metadata.{field}: cannot find the server address in {url:?}");
    };
    Ok(DerivedGrant {
        outbound: vec![format!("{host}:{}", port.unwrap_or(default_port))],
        ..DerivedGrant::default()
    })
}

/// The host (possibly empty) and port (if named) of a
/// `scheme://[user[:pw]@]host[:port][/…]` URL; IPv6 hosts come without
/// brackets. `None` when the port is not a number.
fn url_address(url: &str) -> Option<(String, Option<u16>)> {
    let rest = url.trim().split_once("://").map_or(url.trim(), |(_, r)| r);
    let authority = rest.split(['/', '?']).next()?;
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    Some(match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
            h.trim_matches(['[', ']']).to_string(),
            Some(p.parse().ok()?),
        ),
        _ => (hostport.to_string(), None),
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
    let (host, port) = if conn.starts_with("postgres://") || conn.starts_with("postgresql://") {
        url_address(conn)?
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
    fn nats_grant_is_the_url_address() {
        let ctx = LoadContext::for_tests();
        for (url, expected) in [
            ("nats://u:p@10.0.0.1:4333", "10.0.0.1:4333"),
            ("nats://natsbox", "natsbox:4222"),
            ("tls://[::1]:5222/x", "::1:5222"),
        ] {
            let md = vec![("natsURL".to_string(), url.to_string())];
            let grant = derive_nats(&Metadata(&md), &ctx).expect(url);
            assert_eq!(grant.outbound, [expected], "{url}");
        }
        let defaulted = derive_nats(&Metadata(&[]), &ctx).expect("default");
        assert_eq!(defaulted.outbound, ["localhost:4222"]);
        let md = vec![("natsURL".to_string(), "nats://:4222".to_string())];
        assert!(derive_nats(&Metadata(&md), &ctx).is_err());
    }

    #[test]
    fn rabbitmq_grant_is_its_server() {
        let ctx = LoadContext::for_tests();
        let grant = |pairs: &[(&str, &str)]| {
            let md: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            derive_rabbitmq(&Metadata(&md), &ctx).map(|g| g.outbound)
        };
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("connectionString", "amqp://guest:guest@mq:5673/vh")],
                "mq:5673",
            ),
            (&[("connectionString", "amqp://mq")], "mq:5672"),
            (&[("hostname", "rabbit"), ("port", "5999")], "rabbit:5999"),
            (&[("hostname", "rabbit:5998")], "rabbit:5998"),
            (&[], "localhost:5672"),
        ];
        for (pairs, expected) in cases {
            assert_eq!(grant(pairs).expect("grant"), [*expected], "{pairs:?}");
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
