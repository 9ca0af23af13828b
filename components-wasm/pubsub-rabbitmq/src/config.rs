//! The component's metadata, read once at `init` into a typed
//! [`RabbitConfig`], under Dapr's `pubsub.rabbitmq` field names.
//!
//! Fields that govern delivery on the host's side in Outrig (`autoAck`,
//! `requeueInFailure`, `prefetchCount`, `concurrency`, `reconnectWait`) are
//! checked for form and otherwise not used; `autoAck: true` is refused,
//! since the host acknowledges each message once the app has handled it.
//! TLS (`amqps`, certificates, `saslExternal`) is refused: this component
//! speaks plain TCP only.

use crate::handshake::Login;
use outrig_sdk::{Error, Metadata, Result};
use std::time::Duration;

/// How long to wait for the TCP connection to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for its reply.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The heartbeat asked for without `heartBeat`: RabbitMQ's own default.
/// Between calls a component runs no code and sends no heartbeat, so the
/// broker drops an idle instance's connection after about this long.
const HEARTBEAT: Duration = Duration::from_secs(60);
/// AMQP's port.
const DEFAULT_PORT: u16 = 5672;
/// The exchange kinds RabbitMQ has.
const EXCHANGE_KINDS: [&str; 4] = ["fanout", "topic", "direct", "headers"];

/// Everything the broker needs besides its connection.
#[derive(Debug, Clone)]
pub struct RabbitConfig {
    /// `host:port` from `connectionString` or `hostname`/`port`: the only
    /// address the host grants this component.
    pub address: String,
    /// Credentials, virtual host and tuning for the connection.
    pub login: Login,
    pub connect_timeout: Duration,
    /// `consumerID`: names every subscription's queue instead of its
    /// consumer group.
    pub consumer_id: Option<String>,
    /// `durable`: exchanges and queues survive a broker restart.
    pub durable: bool,
    /// `deletedWhenUnused`: exchanges (and dead-letter queues) are declared
    /// auto-delete, as Dapr declares them. Subscription queues never are:
    /// pulls consume them only for a moment, and an auto-delete queue would
    /// go, messages and all, when that moment ends.
    pub delete_when_unused: bool,
    /// `deliveryMode`: 2 makes messages persistent (kept across a broker
    /// restart on durable queues); 0 leaves the property out.
    pub delivery_mode: Option<u8>,
    /// `maxLen`, `maxLenBytes`: queue length limits (`x-max-length`,
    /// `x-max-length-bytes`).
    pub max_len: Option<i64>,
    pub max_len_bytes: Option<i64>,
    /// `exchangeKind`: the kind of each topic's exchange.
    pub exchange_kind: String,
    /// `enableDeadLetter`: each subscription queue dead-letters into
    /// `dlx-<queue>`, bound to `dlq-<queue>`.
    pub dead_letter: bool,
    /// `ttlInSeconds`: the expiration of messages published without one.
    pub default_ttl: Option<Duration>,
}

impl RabbitConfig {
    /// Reads Dapr's metadata fields, refusing what cannot be honoured.
    pub fn from_metadata(metadata: &Metadata) -> Result<Self> {
        refuse_tls(metadata)?;
        if metadata.flag("autoAck", false)? {
            return Err(Error::NotSupported(
                "autoAck: the host acknowledges each message after the app handled it".into(),
            ));
        }
        // Checked for form only: delivery is the host's in Outrig.
        metadata.flag("requeueInFailure", false)?;
        metadata.flag("publisherConfirm", false)?;
        metadata.parse_or("prefetchCount", 0u32)?;
        for name in ["concurrency", "concurrencyMode"] {
            match text(metadata, name).as_deref() {
                None | Some("parallel" | "single") => {}
                Some(other) => {
                    return Err(Error::invalid(format!(
                        "metadata field `{name}`: `{other}` is neither `parallel` nor `single`"
                    )));
                }
            }
        }
        let endpoint = Endpoint::from_metadata(metadata)?;
        let delivery_mode = match metadata.parse_or("deliveryMode", 0u8)? {
            0 => None,
            mode @ (1 | 2) => Some(mode),
            other => {
                return Err(Error::invalid(format!(
                    "metadata field `deliveryMode`: {other} is not 0, 1 or 2"
                )));
            }
        };
        let exchange_kind = text(metadata, "exchangeKind").unwrap_or_else(|| "fanout".into());
        if !EXCHANGE_KINDS.contains(&exchange_kind.as_str()) {
            return Err(Error::invalid(format!(
                "metadata field `exchangeKind`: `{exchange_kind}` is not one of {EXCHANGE_KINDS:?}"
            )));
        }
        let ttl_seconds = metadata.parse_or("ttlInSeconds", 0u64)?;
        Ok(RabbitConfig {
            address: endpoint.address,
            login: Login {
                user: endpoint.user,
                password: endpoint.password,
                vhost: endpoint.vhost,
                heartbeat: metadata.duration("heartBeat", HEARTBEAT)?,
                connection_name: text(metadata, "clientName"),
                io_timeout: IO_TIMEOUT,
            },
            connect_timeout: CONNECT_TIMEOUT,
            consumer_id: text(metadata, "consumerID"),
            durable: metadata.flag("durable", true)?,
            delete_when_unused: metadata.flag("deletedWhenUnused", true)?,
            delivery_mode,
            max_len: length_limit(metadata, "maxLen")?,
            max_len_bytes: length_limit(metadata, "maxLenBytes")?,
            exchange_kind,
            dead_letter: metadata.flag("enableDeadLetter", false)?,
            default_ttl: (ttl_seconds > 0).then(|| Duration::from_secs(ttl_seconds)),
        })
    }
}

/// The trimmed value of `name`, if it is set and not empty.
pub fn text(metadata: &Metadata, name: &str) -> Option<String> {
    metadata
        .get(name)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// A queue length limit: a positive count, or `None` for 0 or absent.
pub fn length_limit(metadata: &Metadata, name: &str) -> Result<Option<i64>> {
    let limit = metadata.parse_or(name, 0i64)?;
    if limit < 0 {
        return Err(Error::invalid(format!(
            "metadata field `{name}`: {limit} is negative"
        )));
    }
    Ok((limit > 0).then_some(limit))
}

/// Refuses the TLS fields: this component has no TLS.
fn refuse_tls(metadata: &Metadata) -> Result<()> {
    for name in ["caCert", "clientCert", "clientKey"] {
        if text(metadata, name).is_some() {
            return Err(Error::NotSupported(format!(
                "{name}: TLS is not supported by this component"
            )));
        }
    }
    if metadata.flag("saslExternal", false)? {
        return Err(Error::NotSupported(
            "saslExternal: only PLAIN (user and password) login is supported".into(),
        ));
    }
    Ok(())
}

/// Where to connect and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    address: String,
    user: String,
    password: String,
    vhost: String,
}

impl Endpoint {
    /// `connectionString` (or the deprecated `host`) when set, else
    /// `protocol`, `hostname`, `port`, `username`, `password`; a `protocol`
    /// given with a connection string must match its scheme.
    fn from_metadata(metadata: &Metadata) -> Result<Self> {
        let protocol = text(metadata, "protocol");
        if let Some(scheme) = protocol.as_deref().filter(|p| *p != "amqp") {
            return Err(unsupported_scheme("protocol", scheme));
        }
        let url = text(metadata, "connectionString").or_else(|| text(metadata, "host"));
        if let Some(url) = url {
            return Endpoint::parse_url(&url);
        }
        let hostname = text(metadata, "hostname").unwrap_or_else(|| "localhost".into());
        let (host, own_port) = split_port(&hostname)?;
        let port = match (own_port, text(metadata, "port")) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "metadata fields `hostname` and `port` both name a port",
                ));
            }
            (Some(port), None) => port,
            (None, Some(port)) => parse_port(&port)?,
            (None, None) => DEFAULT_PORT,
        };
        Ok(Endpoint {
            address: format!("{host}:{port}"),
            user: text(metadata, "username").unwrap_or_else(|| "guest".into()),
            password: metadata
                .get("password")
                .filter(|p| !p.is_empty())
                .unwrap_or("guest")
                .to_string(),
            vhost: "/".into(),
        })
    }

    /// `amqp://[user[:password]@]host[:port][/vhost]`, parts percent-encoded
    /// as URLs encode them; the vhost `/` is written `%2f` (an empty path is
    /// `/` too). A query is not read.
    fn parse_url(url: &str) -> Result<Self> {
        let rest = match url.split_once("://") {
            Some(("amqp", rest)) => rest,
            Some((scheme, _)) => return Err(unsupported_scheme("connectionString", scheme)),
            None => {
                return Err(Error::invalid(format!(
                    "connectionString `{}` is not an amqp:// URL",
                    redact(url)
                )));
            }
        };
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (credentials, host) = match authority.rsplit_once('@') {
            Some((credentials, host)) => (Some(credentials), host),
            None => (None, authority),
        };
        let (host, port) = split_port(host)?;
        if host.is_empty() {
            return Err(Error::invalid(format!(
                "connectionString `{}` names no host",
                redact(url)
            )));
        }
        let (user, password) = match credentials.map(|c| c.split_once(':').unwrap_or((c, ""))) {
            Some((user, password)) => (decode(user)?, decode(password)?),
            None => ("guest".into(), "guest".into()),
        };
        let vhost = match decode(path)? {
            vhost if vhost.is_empty() => "/".into(),
            vhost => vhost,
        };
        Ok(Endpoint {
            address: format!("{host}:{}", port.unwrap_or(DEFAULT_PORT)),
            user,
            password,
            vhost,
        })
    }
}

fn unsupported_scheme(field: &str, scheme: &str) -> Error {
    Error::NotSupported(format!(
        "{field}: `{scheme}` is not supported (only amqp: this component has no TLS)"
    ))
}

/// `url` with any password replaced, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://…@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// `host[:port]` (or `[v6]:port`) as the host and its port, if named.
fn split_port(host: &str) -> Result<(&str, Option<u16>)> {
    let port_at = match host.rfind(']') {
        Some(bracket) => host[bracket..].find(':').map(|i| bracket + i),
        None => host.rfind(':'),
    };
    match port_at {
        Some(colon) => Ok((&host[..colon], Some(parse_port(&host[colon + 1..])?))),
        None => Ok((host, None)),
    }
}

fn parse_port(port: &str) -> Result<u16> {
    port.trim()
        .parse::<u16>()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| Error::invalid(format!("`{port}` is not a port number")))
}

/// Percent-decodes one URL part.
fn decode(part: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = part
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::invalid("connectionString has a malformed %-escape".to_string())
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::invalid("connectionString decodes to text that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<RabbitConfig> {
        RabbitConfig::from_metadata(&Metadata::from_pairs(pairs))
    }

    #[test]
    fn connection_strings_give_address_credentials_and_vhost() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            ("amqp://localhost", "localhost:5672", "guest", "guest", "/"),
            ("amqp://u:p@rabbit:5673/", "rabbit:5673", "u", "p", "/"),
            ("amqp://u:p%40ss@h/%2f", "h:5672", "u", "p@ss", "/"),
            ("amqp://u@h/orders", "h:5672", "u", "", "orders"),
            (
                "amqp://[::1]:5672/v?heartbeat=5",
                "[::1]:5672",
                "guest",
                "guest",
                "v",
            ),
        ];
        for (url, address, user, password, vhost) in cases {
            let endpoint = Endpoint::parse_url(url).expect("valid url");
            assert_eq!(
                (
                    endpoint.address.as_str(),
                    endpoint.user.as_str(),
                    endpoint.password.as_str(),
                    endpoint.vhost.as_str()
                ),
                (*address, *user, *password, *vhost),
                "{url}"
            );
        }
        for bad in [
            "localhost:5672",
            "amqps://h",
            "amqp://",
            "amqp://h:notaport",
            "amqp://h:0",
            "amqp://u:%zz@h",
        ] {
            assert!(Endpoint::parse_url(bad).is_err(), "{bad}");
        }
        assert_eq!(redact("amqp://u:secret@h:1/v"), "amqp://…@h:1/v");
    }

    #[test]
    fn separate_fields_and_dapr_names_with_defaults() {
        let parsed = config(&[
            ("hostname", "rabbit"),
            ("port", "5673"),
            ("username", "app"),
            ("password", "pw"),
            ("consumerID", "billing"),
            ("durable", "false"),
            ("deletedWhenUnused", "false"),
            ("deliveryMode", "2"),
            ("maxLen", "100"),
            ("maxLenBytes", "0"),
            ("exchangeKind", "topic"),
            ("enableDeadLetter", "true"),
            ("ttlInSeconds", "60"),
            ("heartBeat", "10s"),
            ("clientName", "orders-1"),
            ("concurrency", "single"),
        ])
        .expect("valid metadata");
        assert_eq!(parsed.address, "rabbit:5673");
        assert_eq!(
            (parsed.login.user.as_str(), parsed.login.password.as_str()),
            ("app", "pw")
        );
        assert_eq!(parsed.consumer_id.as_deref(), Some("billing"));
        assert!(!parsed.durable && !parsed.delete_when_unused && parsed.dead_letter);
        assert_eq!(
            (parsed.delivery_mode, parsed.max_len, parsed.max_len_bytes),
            (Some(2), Some(100), None)
        );
        assert_eq!(parsed.exchange_kind, "topic");
        assert_eq!(parsed.default_ttl, Some(Duration::from_secs(60)));
        assert_eq!(parsed.login.heartbeat, Duration::from_secs(10));
        assert_eq!(parsed.login.connection_name.as_deref(), Some("orders-1"));

        let defaults = config(&[]).expect("defaults");
        assert_eq!(defaults.address, "localhost:5672");
        assert_eq!(defaults.login.vhost, "/");
        assert!(defaults.durable && defaults.delete_when_unused && !defaults.dead_letter);
        assert_eq!(defaults.exchange_kind, "fanout");
        assert_eq!(defaults.login.heartbeat, HEARTBEAT);

        let url_wins = config(&[
            ("connectionString", "amqp://a:b@h:1/v"),
            ("hostname", "ignored"),
            ("protocol", "amqp"),
        ])
        .expect("valid");
        assert_eq!(
            (url_wins.address.as_str(), url_wins.login.vhost.as_str()),
            ("h:1", "v")
        );
    }

    #[test]
    fn bad_metadata_is_refused_with_the_field_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("deliveryMode", "5")], "deliveryMode"),
            (&[("deliveryMode", "x")], "deliveryMode"),
            (&[("exchangeKind", "bogus")], "exchangeKind"),
            (&[("autoAck", "true")], "autoAck"),
            (&[("autoAck", "maybe")], "autoAck"),
            (&[("protocol", "amqps")], "amqps"),
            (&[("connectionString", "amqps://h")], "amqps"),
            (&[("connectionString", "h:5672")], "amqp://"),
            (&[("maxLen", "-1")], "maxLen"),
            (&[("maxLenBytes", "lots")], "maxLenBytes"),
            (&[("port", "70000")], "70000"),
            (&[("hostname", "h:1"), ("port", "2")], "port"),
            (&[("heartBeat", "soon")], "heartBeat"),
            (&[("ttlInSeconds", "-5")], "ttlInSeconds"),
            (&[("saslExternal", "true")], "saslExternal"),
            (&[("caCert", "-----BEGIN")], "caCert"),
            (&[("concurrency", "many")], "concurrency"),
            (&[("durable", "sometimes")], "durable"),
        ];
        for (pairs, named) in cases {
            let err = config(pairs).expect_err("bad metadata was accepted");
            let message = match err {
                Error::InvalidArgument(m) | Error::NotSupported(m) => m,
                other => panic!("{pairs:?}: unexpected {other:?}"),
            };
            assert!(message.contains(named), "{pairs:?}: {message}");
        }
    }
}
