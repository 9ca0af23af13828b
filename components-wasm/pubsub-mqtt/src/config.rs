//! The component's metadata, read once at `init` into a typed
//! [`MqttConfig`], using Dapr's `pubsub.mqtt3` field names.

use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// How long to wait for the TCP connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or write may block while an answer is due.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The keep-alive announced in `CONNECT`: a connection pings after half of
/// it, and the broker drops one silent for one and a half times it (an idle
/// consumer's session then becomes free for another instance to resume).
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// MQTT's default port.
const DEFAULT_PORT: u16 = 1883;

/// Everything the broker client needs besides its connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttConfig {
    /// From `url`: `host:port`, the only address the host grants us.
    pub address: String,
    /// From `url`'s user info, sent in `CONNECT`.
    pub username: Option<String>,
    /// From `url`'s user info, sent in `CONNECT`.
    pub password: Option<String>,
    /// `qos`: 0 or 1, for publishing and subscribing (2 is read as 1).
    pub qos: u8,
    /// `retain`: publish with the retain flag (a message's own `retain`
    /// metadata overrides it).
    pub retain: bool,
    /// `cleanSession`: discard a consumer's session when it disconnects, so
    /// nothing is kept for it while it is away. Off by default.
    pub clean_session: bool,
    /// `consumerID`: names this replica's consumer sessions (instead of the
    /// consumer group alone), so replicas of one app consume side by side.
    pub consumer_id: Option<String>,
    /// `controlTopicPrefix` (Outrig's own): where consumer sessions keep
    /// their holder record and receive settlements from other instances.
    pub control_prefix: String,
    /// The keep-alive announced in `CONNECT` (see [`KEEP_ALIVE`]).
    pub keep_alive: Duration,
    /// How long a consumer session's holder record stays live without being
    /// renewed (see [`crate::holder`]): longer than the broker waits before
    /// dropping a silent connection, which deletes the record at once.
    pub lease: Duration,
    /// How long opening a TCP connection may take.
    pub connect_timeout: Duration,
    /// How long the broker may take to answer, so a dead broker cannot pin
    /// an instance.
    pub io_timeout: Duration,
}

impl MqttConfig {
    /// Reads Dapr's metadata fields; TLS, which this component cannot do, is
    /// refused rather than silently ignored.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        for unsupported in ["caCert", "clientCert", "clientKey"] {
            if metadata
                .get(unsupported)
                .is_some_and(|v| !v.trim().is_empty())
            {
                return Err(Error::NotSupported(format!(
                    "{unsupported}: TLS is not supported by this component"
                )));
            }
        }
        let (address, username, password) = parse_url(metadata.require("url")?)?;
        let qos = match metadata.parse_or("qos", 1u8)? {
            0 => 0,
            // QoS 2's exactly-once ends at the broker: the host's delivery
            // is at-least-once either way, so QoS 1 loses nothing.
            1 | 2 => 1,
            other => {
                return Err(Error::invalid(format!(
                    "metadata field `qos`: {other} is not 0, 1 or 2"
                )));
            }
        };
        let non_empty = |name: &str| {
            metadata
                .get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
        };
        let control_prefix =
            non_empty("controlTopicPrefix").unwrap_or_else(|| "outrig/mqtt3".into());
        if control_prefix.contains(['+', '#', '\0']) || control_prefix.starts_with('$') {
            return Err(Error::invalid(format!(
                "metadata field `controlTopicPrefix`: `{control_prefix}` is not a topic name"
            )));
        }
        Ok(MqttConfig {
            address,
            username,
            password,
            qos,
            retain: metadata.flag("retain", false)?,
            clean_session: metadata.flag("cleanSession", false)?,
            consumer_id: non_empty("consumerID"),
            control_prefix: control_prefix.trim_end_matches('/').to_string(),
            keep_alive: KEEP_ALIVE,
            lease: KEEP_ALIVE * 3,
            connect_timeout: CONNECT_TIMEOUT,
            io_timeout: IO_TIMEOUT,
        })
    }
}

/// `tcp://[user[:password]@]host[:port]` (also `mqtt://`, or no scheme) as
/// an address and credentials; user and password may be percent-encoded.
fn parse_url(url: &str) -> Result<(String, Option<String>, Option<String>)> {
    let url = url.trim();
    let rest = match url.split_once("://") {
        Some(("tcp" | "mqtt", rest)) => rest,
        Some(("ssl" | "tls" | "mqtts" | "tcps" | "ws" | "wss", _)) => {
            return Err(Error::NotSupported(format!(
                "url `{url}`: only plain TCP (tcp:// or mqtt://) is supported"
            )));
        }
        Some((scheme, _)) => {
            return Err(Error::invalid(format!(
                "url: the scheme `{scheme}` is not an MQTT scheme (use tcp://)"
            )));
        }
        None => url,
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let (credentials, host) = match authority.rsplit_once('@') {
        Some((credentials, host)) => (Some(credentials), host),
        None => (None, authority),
    };
    if host.is_empty() || host.starts_with(':') {
        return Err(Error::invalid(format!("url `{url}` names no broker")));
    }
    // `[::1]` has colons but no port; `[::1]:1883` has one.
    let port = match host.strip_prefix('[') {
        Some(literal) => match literal.split_once(']') {
            Some((_, "")) => None,
            Some((_, after)) => Some(after.strip_prefix(':').unwrap_or(after)),
            None => return Err(Error::invalid(format!("url `{url}`: an unclosed `[`"))),
        },
        None => host.rsplit_once(':').map(|(_, port)| port),
    };
    if let Some(port) = port {
        port.parse::<u16>()
            .map_err(|_| Error::invalid(format!("url `{url}`: `{port}` is not a port")))?;
    }
    let has_port = port.is_some();
    let address = if has_port {
        host.to_string()
    } else {
        format!("{host}:{DEFAULT_PORT}")
    };
    let (username, password) = match credentials {
        None => (None, None),
        Some(credentials) => {
            let (user, password) = match credentials.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (credentials, None),
            };
            let user = percent_decode(user, url)?;
            let password = password.map(|p| percent_decode(p, url)).transpose()?;
            (Some(user), password)
        }
    };
    Ok((address, username, password))
}

/// `%XX` escapes in a URL's user info as the bytes they stand for.
fn percent_decode(text: &str, url: &str) -> Result<String> {
    let bad = || Error::invalid(format!("url `{url}`: a bad %-escape in the user info"));
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = tail.get(..2).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            bytes.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_an_address_and_credentials() {
        let cases: &[(&str, &str, Option<&str>, Option<&str>)] = &[
            ("tcp://127.0.0.1:1883", "127.0.0.1:1883", None, None),
            ("mqtt://broker", "broker:1883", None, None),
            ("broker:2883", "broker:2883", None, None),
            ("tcp://[::1]:1884/", "[::1]:1884", None, None),
            ("tcp://[::1]", "[::1]:1883", None, None),
            (
                "tcp://app:s3cret@mqtt:1883",
                "mqtt:1883",
                Some("app"),
                Some("s3cret"),
            ),
            (
                "tcp://a%40b:p%3Aw%40@mqtt",
                "mqtt:1883",
                Some("a@b"),
                Some("p:w@"),
            ),
            ("tcp://user@mqtt", "mqtt:1883", Some("user"), None),
        ];
        for (url, address, user, password) in cases {
            let parsed = parse_url(url).expect("valid url");
            assert_eq!(
                (parsed.0.as_str(), parsed.1.as_deref(), parsed.2.as_deref()),
                (*address, *user, *password),
                "{url}"
            );
        }
        // (url, refused as not supported rather than invalid)
        let refused = [
            ("ssl://mqtt:8883", true),
            ("http://mqtt", false),
            ("tcp://", false),
            ("tcp://mqtt:port", false),
            ("tcp://mqtt:99999", false),
            ("tcp://[::1", false),
            ("tcp://u:%zz@mqtt", false),
        ];
        for (url, not_supported) in refused {
            let err = parse_url(url).expect_err(url);
            assert_eq!(
                matches!(err, Error::NotSupported(_)),
                not_supported,
                "{url}: {err:?}"
            );
            assert!(
                matches!(err, Error::NotSupported(_) | Error::InvalidArgument(_)),
                "{url}: {err:?}"
            );
        }
    }

    #[test]
    fn reads_dapr_field_names_with_defaults() {
        let config = MqttConfig::from_metadata(&Metadata::from_pairs(&[
            ("url", "tcp://127.0.0.1:1883"),
            ("qos", "0"),
            ("retain", "true"),
            ("cleanSession", "true"),
            ("consumerID", "replica-1"),
            ("controlTopicPrefix", "ctl/"),
        ]))
        .expect("valid metadata");
        assert_eq!(
            (config.qos, config.retain, config.clean_session),
            (0, true, true)
        );
        assert_eq!(config.consumer_id.as_deref(), Some("replica-1"));
        assert_eq!(config.control_prefix, "ctl");

        let defaults = MqttConfig::from_metadata(&Metadata::from_pairs(&[("url", "tcp://mqtt")]))
            .expect("defaults");
        assert_eq!(defaults.address, "mqtt:1883");
        assert_eq!(
            (defaults.qos, defaults.retain, defaults.clean_session),
            (1, false, false)
        );
        assert_eq!(defaults.consumer_id, None);
        assert_eq!(defaults.control_prefix, "outrig/mqtt3");
        let qos2 = MqttConfig::from_metadata(&Metadata::from_pairs(&[
            ("url", "tcp://mqtt"),
            ("qos", "2"),
        ]))
        .expect("qos 2");
        assert_eq!(qos2.qos, 1);
    }

    #[test]
    fn bad_metadata_is_refused_with_the_field_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "url"),
            (&[("url", "tcp://m"), ("qos", "3")], "qos"),
            (&[("url", "tcp://m"), ("qos", "high")], "qos"),
            (
                &[("url", "tcp://m"), ("cleanSession", "maybe")],
                "cleanSession",
            ),
            (&[("url", "tcp://m"), ("retain", "2")], "retain"),
            (&[("url", "tcp://m"), ("caCert", "-----BEGIN")], "caCert"),
            (
                &[("url", "tcp://m"), ("controlTopicPrefix", "a/#")],
                "controlTopicPrefix",
            ),
            (&[("url", "ssl://m")], "url"),
        ];
        for (pairs, field) in cases {
            let err = MqttConfig::from_metadata(&Metadata::from_pairs(pairs))
                .expect_err(&format!("{pairs:?}"));
            let message = format!("{err:?}");
            assert!(message.contains(field), "{pairs:?}: {message}");
        }
    }
}
