//! The component's metadata, read once at `init` into a typed [`BrokerConfig`],
//! using Dapr's `pubsub.redis` field names so existing component YAML works.

use outrig_sdk::{Metadata, Result};
use redis_wire::Endpoint;
use std::time::Duration;

/// Everything the broker needs besides its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// `redisHost`, `redisPassword`, `redisDB`, ...: where Redis is.
    pub endpoint: Endpoint,
    /// `consumerID`: the consumer group, overriding the subscription's (which
    /// the host defaults to the app id, as Dapr defaults `consumerID`).
    pub consumer_group: Option<String>,
    /// `maxLenApprox`: trim each stream to about this many entries on publish.
    pub max_len_approx: Option<u64>,
    /// `processingTimeout`: how long a message may stay unacknowledged with a
    /// consumer before another pull reclaims it.
    pub processing_timeout: Duration,
    /// `redeliverInterval`: the least time between two scans for pending
    /// messages due again; `0` scans on every pull.
    pub redeliver_interval: Duration,
}

impl BrokerConfig {
    /// Reads Dapr's metadata fields.
    ///
    /// `redeliverInterval` defaults to 1s rather than Dapr's 60s: here a nack's
    /// delay is the host's retry backoff, served by these scans. Dapr's `0`
    /// (no redelivery) is not offered, since nack relies on it.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        Ok(BrokerConfig {
            endpoint: Endpoint::from_metadata(metadata)?,
            consumer_group: metadata
                .get("consumerID")
                .map(str::trim)
                .filter(|group| !group.is_empty())
                .map(String::from),
            max_len_approx: Some(metadata.parse_or("maxLenApprox", 0u64)?).filter(|&n| n > 0),
            processing_timeout: metadata.duration("processingTimeout", Duration::from_secs(60))?,
            redeliver_interval: metadata.duration("redeliverInterval", Duration::from_secs(1))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dapr_field_names_with_defaults() {
        let config = BrokerConfig::from_metadata(&Metadata::from_pairs(&[
            ("redisHost", "r:6379"),
            ("consumerID", "billing"),
            ("maxLenApprox", "1000"),
            ("processingTimeout", "15s"),
            ("redeliverInterval", "0"),
        ]))
        .expect("valid metadata");
        assert_eq!(config.consumer_group.as_deref(), Some("billing"));
        assert_eq!(config.max_len_approx, Some(1000));
        assert_eq!(config.processing_timeout, Duration::from_secs(15));
        assert_eq!(config.redeliver_interval, Duration::ZERO);

        let defaults =
            BrokerConfig::from_metadata(&Metadata::from_pairs(&[("redisHost", "r:6379")]))
                .expect("valid metadata");
        assert_eq!(
            (defaults.consumer_group, defaults.max_len_approx),
            (None, None)
        );
        assert_eq!(defaults.processing_timeout, Duration::from_secs(60));

        let bad = BrokerConfig::from_metadata(&Metadata::from_pairs(&[
            ("redisHost", "r:6379"),
            ("processingTimeout", "soon"),
        ]));
        assert!(bad.is_err());
    }
}
