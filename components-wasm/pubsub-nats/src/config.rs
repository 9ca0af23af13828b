//! The component's metadata, read once at `init` into a typed [`NatsConfig`],
//! using Dapr's `pubsub.jetstream` field names.

use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// How long to wait for the TCP connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may block; a fetch extends it by its own wait.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the broker needs besides its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// From `natsURL`: `host:port`, the only address the host grants us.
    pub address: String,
    /// From `natsURL`'s user info, sent in `CONNECT`.
    pub user: Option<String>,
    pub password: Option<String>,
    /// `token`: sent as `auth_token` in `CONNECT`.
    pub token: Option<String>,
    /// `streamName`: one stream for every topic (subjects are added to it as
    /// topics appear). Without it a topic uses the stream that captures it,
    /// or a new stream named after it.
    pub stream_name: Option<String>,
    /// `durableName`: the base of durable consumer names, instead of the
    /// subscription's consumer group.
    pub durable_name: Option<String>,
    /// `ackWait`: how long a delivered message may go unacknowledged before
    /// JetStream redelivers it.
    pub ack_wait: Duration,
    /// `maxDeliver`: how often a message is delivered at most; `None` is
    /// unlimited (the host's retry policy decides when to give up).
    pub max_deliver: Option<i64>,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
}

impl NatsConfig {
    /// Reads Dapr's metadata fields; authentication this component cannot do
    /// (JWT and NKey seeds, TLS client certificates) is refused.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        for unsupported in ["jwt", "seedKey", "tls_client_cert", "tls_client_key"] {
            if metadata.get(unsupported).is_some_and(|v| !v.is_empty()) {
                return Err(Error::NotSupported(format!(
                    "{unsupported}: only user/password and token authentication are supported"
                )));
            }
        }
        let url = metadata.get("natsURL").unwrap_or("nats://localhost:4222");
        let (address, user, password) = parse_url(url)?;
        let non_empty = |name: &str| {
            metadata
                .get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        Ok(NatsConfig {
            address,
            user,
            password,
            token: non_empty("token"),
            stream_name: non_empty("streamName"),
            durable_name: non_empty("durableName"),
            ack_wait: metadata.duration("ackWait", Duration::from_secs(30))?,
            max_deliver: Some(metadata.parse_or("maxDeliver", 0i64)?).filter(|&n| n > 0),
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
        })
    }
}

/// `nats://[user[:password]@]host[:port]` (scheme and port optional) as an
/// address and credentials.
fn parse_url(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let url = url.trim();
    if url.contains(',') {
        return Err(Error::NotSupported(
            "natsURL: several servers are not supported".into(),
        ));
    }
    let rest = match url.split_once("://") {
        Some(("nats", rest)) => rest,
        Some((scheme, _)) => {
            return Err(Error::NotSupported(format!(
                "natsURL: the scheme `{scheme}` is not supported (use nats://)"
            )));
        }
        None => url,
    };
    let rest = rest.trim_end_matches('/');
    let (credentials, host) = match rest.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host),
        None => (None, rest),
    };
    if host.is_empty() {
        return Err(Error::invalid(format!("natsURL `{url}` names no server")));
    }
    let address = if host
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        host.to_string()
    } else {
        format!("{host}:4222")
    };
    let (user, password) = match credentials.map(|c| c.split_once(':')) {
        Some(Some((user, password))) => (Some(user.to_string()), Some(password.to_string())),
        Some(None) => (credentials.map(String::from), None),
        None => (None, None),
    };
    Ok((address, user, password))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_an_address_and_credentials() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("nats://localhost:4222", "localhost:4222", None, None),
            ("nats://broker", "broker:4222", None, None),
            ("127.0.0.1:5222", "127.0.0.1:5222", None, None),
            (
                "nats://app:s3cret@nats:4222/",
                "nats:4222",
                Some("app"),
                Some("s3cret"),
            ),
            ("nats://tok@nats", "nats:4222", Some("tok"), None),
        ];
        for (url, address, user, password) in cases {
            let parsed = parse_url(url).expect("valid url");
            assert_eq!(
                (parsed.0.as_str(), parsed.1.as_deref(), parsed.2.as_deref()),
                (*address, *user, *password),
                "{url}"
            );
        }
        for bad in ["tls://x:4222", "nats://a:1,nats://b:2", "nats://"] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_dapr_field_names_with_defaults() {
        let config = NatsConfig::from_metadata(&Metadata::from_pairs(&[
            ("natsURL", "nats://127.0.0.1:4222"),
            ("streamName", "ORDERS"),
            ("durableName", "billing"),
            ("ackWait", "5s"),
            ("maxDeliver", "3"),
        ]))
        .expect("valid metadata");
        assert_eq!(config.stream_name.as_deref(), Some("ORDERS"));
        assert_eq!(config.durable_name.as_deref(), Some("billing"));
        assert_eq!(
            (config.ack_wait, config.max_deliver),
            (Duration::from_secs(5), Some(3))
        );

        let defaults = NatsConfig::from_metadata(&Metadata::default()).expect("defaults");
        assert_eq!(defaults.address, "localhost:4222");
        assert_eq!(
            (defaults.ack_wait, defaults.max_deliver),
            (Duration::from_secs(30), None)
        );
        assert!(NatsConfig::from_metadata(&Metadata::from_pairs(&[("jwt", "x")])).is_err());
    }
}
