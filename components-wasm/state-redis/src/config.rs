//! The component's metadata, read once at `init` into a typed [`RedisConfig`],
//! using Dapr's `state.redis` field names so existing component YAML works.

use outrig_sdk::{Error, Metadata, Result};
use redis_wire::Endpoint;

/// Everything needed to reach and use the Redis server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// Where the server is and how to log in (`redisHost`, `redisPassword`, ...).
    pub endpoint: Endpoint,
    /// `ttlInSeconds`: the TTL of writes that do not ask for one.
    pub default_ttl: Option<u32>,
}

impl RedisConfig {
    /// Reads Dapr's metadata fields; see [`Endpoint::from_metadata`] for the
    /// connection fields and what is refused.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let default_ttl = match metadata.parse_or::<i64>("ttlInSeconds", 0)? {
            ttl if ttl <= 0 => None,
            ttl => {
                Some(u32::try_from(ttl).map_err(|_| Error::invalid("ttlInSeconds is too large"))?)
            }
        };
        Ok(RedisConfig {
            endpoint: Endpoint::from_metadata(metadata)?,
            default_ttl,
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
    fn reads_the_endpoint_and_the_default_ttl() {
        let config = RedisConfig::from_metadata(&metadata(&[
            ("redisHost", "cache:6380"),
            ("redisDB", "3"),
            ("ttlInSeconds", "60"),
        ]))
        .expect("valid metadata");
        assert_eq!(
            (config.endpoint.address.as_str(), config.endpoint.database),
            ("cache:6380", 3)
        );
        assert_eq!(config.default_ttl, Some(60));
        let forever =
            RedisConfig::from_metadata(&metadata(&[("redisHost", "a:1"), ("ttlInSeconds", "-1")]));
        assert_eq!(forever.map(|c| c.default_ttl).ok(), Some(None));
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
    fn refuses_bad_metadata() {
        // The endpoint's own refusals are tested in `redis-wire`.
        let cases: &[(Pairs, &str)] = &[
            (&[], "invalid argument: metadata field `redisHost`"),
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
