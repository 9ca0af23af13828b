//! The component's metadata, read once at `init` into a typed [`RedisConfig`],
//! using Dapr's `state.redis` field names so existing component YAML works.

use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// How long to wait for the TCP connection to Redis to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write on an open connection may block. The host also
/// holds a per-call deadline; this one keeps a dead server from pinning the
/// instance until then.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to reach and use the Redis server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redisHost`: `host:port`, the only address the host grants us.
    pub address: String,
    /// `redisUsername`: an ACL user (Redis 6+); empty means the default user.
    pub username: Option<String>,
    /// `redisPassword`: sent with `AUTH` when set.
    pub password: Option<String>,
    /// `redisDB`: the logical database chosen with `SELECT`.
    pub database: u32,
    /// `ttlInSeconds`: the TTL of writes that do not ask for one.
    pub default_ttl: Option<u32>,
    /// Limit on opening the TCP connection.
    pub connect_timeout: Duration,
    /// Limit on each blocking read or write.
    pub io_timeout: Duration,
}

impl RedisConfig {
    /// Reads Dapr's metadata fields. Options this component cannot honour
    /// (TLS, Sentinel failover, cluster mode) fail here rather than being
    /// silently ignored; `maxRetries` and friends are accepted and ignored,
    /// since the host's resiliency policy does the retrying.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        if metadata.flag("enableTLS", false)? {
            return Err(Error::NotSupported(
                "enableTLS: TLS connections to Redis are not supported yet".into(),
            ));
        }
        if metadata.flag("failover", false)? {
            return Err(Error::NotSupported(
                "failover: Redis Sentinel is not supported".into(),
            ));
        }
        let kind = metadata.get("redisType").unwrap_or("node");
        if !kind.is_empty() && !kind.eq_ignore_ascii_case("node") {
            return Err(Error::NotSupported(format!(
                "redisType `{kind}`: only `node` is supported"
            )));
        }
        let address = metadata.require("redisHost")?.trim().to_string();
        if address.contains(',') {
            return Err(Error::NotSupported(
                "redisHost: several addresses (cluster mode) are not supported".into(),
            ));
        }
        let non_empty = |name: &str| {
            metadata
                .get(name)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let default_ttl = match metadata.parse_or::<i64>("ttlInSeconds", 0)? {
            ttl if ttl <= 0 => None,
            ttl => {
                Some(u32::try_from(ttl).map_err(|_| Error::invalid("ttlInSeconds is too large"))?)
            }
        };
        Ok(RedisConfig {
            address,
            username: non_empty("redisUsername"),
            password: non_empty("redisPassword"),
            database: metadata.parse_or("redisDB", 0)?,
            default_ttl,
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
        })
    }

    /// The TTL a write gets, following Dapr: the request's own TTL wins (0
    /// meaning none); a request `ttlInSeconds` of `-1` means never expire even
    /// when the component has a default; otherwise the component's default.
    pub fn ttl_for(&self, requested: Option<u32>, metadata: &Metadata) -> Result<Option<u32>> {
        if let Some(ttl) = requested {
            return Ok(Some(ttl).filter(|&ttl| ttl > 0));
        }
        match metadata.parse_or::<i64>("ttlInSeconds", 0)? {
            0 => Ok(self.default_ttl),
            ttl if ttl < 0 => Ok(None),
            ttl => u32::try_from(ttl)
                .map(Some)
                .map_err(|_| Error::invalid("ttlInSeconds is too large")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::metadata;
    use outrig_sdk::state::describe;

    /// Metadata pairs as a test table writes them.
    type Pairs = &'static [(&'static str, &'static str)];

    #[test]
    fn reads_dapr_field_names() {
        let config = RedisConfig::from_metadata(&metadata(&[
            ("redisHost", "cache:6380"),
            ("redisUsername", "app"),
            ("redisPassword", "s3cret"),
            ("redisDB", "3"),
            ("ttlInSeconds", "60"),
            ("maxRetries", "5"),
        ]))
        .expect("valid metadata");
        assert_eq!(config.address, "cache:6380");
        assert_eq!(config.username.as_deref(), Some("app"));
        assert_eq!(config.password.as_deref(), Some("s3cret"));
        assert_eq!(config.database, 3);
        assert_eq!(config.default_ttl, Some(60));
    }

    #[test]
    fn defaults_leave_optional_fields_unset() {
        let config = RedisConfig::from_metadata(&metadata(&[
            ("redisHost", "localhost:6379"),
            ("redisPassword", ""),
            ("ttlInSeconds", "-1"),
        ]))
        .expect("valid metadata");
        assert_eq!((config.username, config.password), (None, None));
        assert_eq!((config.database, config.default_ttl), (0, None));
    }

    #[test]
    fn ttl_follows_dapr_precedence() {
        let with_default =
            RedisConfig::from_metadata(&metadata(&[("redisHost", "a:1"), ("ttlInSeconds", "30")]))
                .expect("valid metadata");
        let cases: &[(Option<u32>, Pairs, Option<u32>)] = &[
            (Some(5), &[], Some(5)),
            (Some(0), &[], None),
            (None, &[], Some(30)),
            (None, &[("ttlInSeconds", "-1")], None),
            (None, &[("ttlInSeconds", "7")], Some(7)),
        ];
        for (requested, request_metadata, expected) in cases {
            let ttl = with_default.ttl_for(*requested, &metadata(request_metadata));
            assert_eq!(
                ttl.ok(),
                Some(*expected),
                "{requested:?} {request_metadata:?}"
            );
        }
        let bad = with_default.ttl_for(None, &metadata(&[("ttlInSeconds", "x")]));
        assert!(matches!(bad, Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn refuses_what_it_cannot_honour() {
        // Each case and the start of the error's description.
        let cases: &[(Pairs, &str)] = &[
            (&[], "invalid argument: metadata field `redisHost`"),
            (
                &[("redisHost", "a:1"), ("enableTLS", "true")],
                "not supported: enableTLS",
            ),
            (
                &[("redisHost", "a:1"), ("failover", "true")],
                "not supported: failover",
            ),
            (
                &[("redisHost", "a:1"), ("redisType", "cluster")],
                "not supported: redisType",
            ),
            (&[("redisHost", "a:1,b:2")], "not supported: redisHost"),
            (
                &[("redisHost", "a:1"), ("redisDB", "x")],
                "invalid argument: metadata field `redisDB`",
            ),
            (
                &[("redisHost", "a:1"), ("ttlInSeconds", "soon")],
                "invalid argument: metadata field",
            ),
        ];
        for (pairs, expected) in cases {
            match RedisConfig::from_metadata(&metadata(pairs)) {
                Err(err) => assert!(
                    describe(&err).starts_with(expected),
                    "{pairs:?} gave {err:?}"
                ),
                Ok(config) => panic!("{pairs:?} was accepted as {config:?}"),
            }
        }
    }
}
