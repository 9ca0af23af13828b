//! Where the Redis server is and how to log in, read from Dapr's metadata
//! names shared by `state.redis` and `pubsub.redis`.

use outrig_sdk::{Error, Metadata, Result, net};
use std::io;
use std::net::TcpStream;
use std::time::Duration;

/// How long to wait for the TCP connection to Redis to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write on an open connection may block. The host also
/// holds a per-call deadline; this one keeps a dead server from pinning the
/// instance until then. Blocking commands extend it by their own wait.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything needed to reach and log in to the Redis server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `redisHost`: `host:port`, the only address the host grants us.
    pub address: String,
    /// `redisUsername`: an ACL user (Redis 6+); empty means the default user.
    pub username: Option<String>,
    /// `redisPassword`: sent with `AUTH` when set.
    pub password: Option<String>,
    /// `redisDB`: the logical database chosen with `SELECT`.
    pub database: u32,
    /// Limit on opening the TCP connection.
    pub connect_timeout: Duration,
    /// Limit on each blocking read or write.
    pub io_timeout: Duration,
}

impl Endpoint {
    /// Reads Dapr's connection fields. Options no component here can honour
    /// (TLS, Sentinel failover, cluster mode) fail rather than being silently
    /// ignored; `maxRetries` and friends are accepted and ignored, since the
    /// host's resiliency policy does the retrying.
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
        Ok(Endpoint {
            address,
            username: non_empty("redisUsername"),
            password: non_empty("redisPassword"),
            database: metadata.parse_or("redisDB", 0)?,
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
        })
    }

    /// Opens a TCP connection, trying each address `address` resolves to.
    pub fn connect(&self) -> io::Result<TcpStream> {
        net::connect(&self.address, self.connect_timeout, self.io_timeout)
    }

    /// The contract's error for a failed connection.
    pub fn unavailable(&self, err: io::Error) -> Error {
        net::unavailable("redis", &self.address, self.io_timeout, err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use outrig_sdk::state::describe;

    /// Metadata pairs as a test table writes them.
    type Pairs = &'static [(&'static str, &'static str)];

    fn metadata(pairs: &[(&str, &str)]) -> Metadata {
        Metadata::from_pairs(pairs)
    }

    #[test]
    fn reads_dapr_field_names() {
        let endpoint = Endpoint::from_metadata(&metadata(&[
            ("redisHost", "cache:6380"),
            ("redisUsername", "app"),
            ("redisPassword", "s3cret"),
            ("redisDB", "3"),
            ("maxRetries", "5"),
        ]))
        .expect("valid metadata");
        assert_eq!(endpoint.address, "cache:6380");
        assert_eq!(endpoint.username.as_deref(), Some("app"));
        assert_eq!(endpoint.password.as_deref(), Some("s3cret"));
        assert_eq!(endpoint.database, 3);
    }

    #[test]
    fn defaults_leave_optional_fields_unset() {
        let endpoint = Endpoint::from_metadata(&metadata(&[
            ("redisHost", "localhost:6379"),
            ("redisPassword", ""),
        ]))
        .expect("valid metadata");
        assert_eq!((endpoint.username, endpoint.password), (None, None));
        assert_eq!(endpoint.database, 0);
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
        ];
        for (pairs, expected) in cases {
            match Endpoint::from_metadata(&metadata(pairs)) {
                Err(err) => assert!(
                    describe(&err).starts_with(expected),
                    "{pairs:?} gave {err:?}"
                ),
                Ok(endpoint) => panic!("{pairs:?} was accepted as {endpoint:?}"),
            }
        }
    }
}
