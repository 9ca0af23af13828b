//! Outbound grants: where a component may connect.
//!
//! A grant is `tcp://host:port` or `tcp://host:low-high` (a port range),
//! where `host` is an IP address, a name, or a name with `*` as its leftmost
//! label (`*.db.internal`: any one label under `db.internal`). Names are
//! resolved by the host, and the addresses they resolve to are what the
//! guest may reach: at load time for plain names, and at the guest's own
//! lookups (see [`super::lookup`]) for plain and wildcard names alike. With
//! private networks blocked, addresses in loopback, private, link-local or
//! unique-local ranges are never granted, so a name that resolves inward
//! grants nothing.

use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

/// An address and the ports it may be reached on.
type AddressRule = (IpAddr, RangeInclusive<u16>);

/// Whether one of `rules` covers `addr`.
fn covers(rules: &[AddressRule], addr: SocketAddr) -> bool {
    rules
        .iter()
        .any(|(ip, ports)| *ip == addr.ip() && ports.contains(&addr.port()))
}

/// Adds `rule` to `rules` unless it is there already.
fn add_rule(rules: &mut Vec<AddressRule>, rule: AddressRule) {
    if !rules.contains(&rule) {
        rules.push(rule);
    }
}

/// The addresses and names a component may connect to, each with its ports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundAllowlist {
    /// Addresses known at load time (IP grants, names resolved then).
    rules: Vec<AddressRule>,
    /// Names the guest may look up; the addresses found are then granted.
    names: Vec<(HostPattern, RangeInclusive<u16>)>,
    /// Whether addresses in private ranges are left out.
    block_private: bool,
}

/// A granted host name: exactly one, or any one label under a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// This name (lower case, no trailing dot).
    Exact(String),
    /// `*.<domain>`: one label, then this suffix (which starts with a dot).
    AnyLabelUnder(String),
}

impl HostPattern {
    /// The pattern a granted host stands for: `*.domain` or one name.
    pub fn parse(host: &str) -> Self {
        let host = normalize(host);
        match host.strip_prefix('*') {
            Some(suffix) => HostPattern::AnyLabelUnder(suffix.to_owned()),
            None => HostPattern::Exact(host),
        }
    }

    /// Whether `name` is covered.
    pub fn matches(&self, name: &str) -> bool {
        let name = normalize(name);
        match self {
            HostPattern::Exact(host) => name == *host,
            HostPattern::AnyLabelUnder(suffix) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|label| !label.is_empty() && !label.contains('.')),
        }
    }
}

/// Names compare without case and without a trailing dot, as DNS does.
fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl OutboundAllowlist {
    /// Whether nothing at all is granted (then the guest gets no sockets).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.names.is_empty()
    }

    /// Whether a connection to `addr` is granted by an address known at load.
    pub fn permits(&self, addr: SocketAddr) -> bool {
        covers(&self.rules, addr)
    }

    /// The ports of every grant covering the name `name`; empty when the
    /// guest may not look it up.
    pub fn ports_for_name(&self, name: &str) -> Vec<RangeInclusive<u16>> {
        self.names
            .iter()
            .filter(|(pattern, _)| pattern.matches(name))
            .map(|(_, ports)| ports.clone())
            .collect()
    }

    /// Whether an address found by a lookup may be granted.
    pub fn admits(&self, ip: IpAddr) -> bool {
        !(self.block_private && is_private(ip))
    }

    fn allow(&mut self, ip: IpAddr, ports: RangeInclusive<u16>) {
        add_rule(&mut self.rules, (ip, ports));
    }
}

/// Addresses one instance learned from the lookups it was allowed, with the
/// ports of the grant that covered the name. Shared by the instance's
/// socket check and its lookups.
#[derive(Debug, Clone, Default)]
pub struct LearnedAddresses(Arc<Mutex<Vec<AddressRule>>>);

impl LearnedAddresses {
    /// Whether a connection to `addr` is granted by a lookup.
    pub fn permits(&self, addr: SocketAddr) -> bool {
        covers(&self.0.lock().unwrap_or_else(|e| e.into_inner()), addr)
    }

    /// Grants `ip` on `ports`.
    pub fn learn(&self, ip: IpAddr, ports: RangeInclusive<u16>) {
        add_rule(
            &mut self.0.lock().unwrap_or_else(|e| e.into_inner()),
            (ip, ports),
        );
    }
}

/// One outbound grant, parsed: the host (a name, a `*.` pattern or an IP)
/// and its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundTarget {
    /// A host name, `*.domain`, or an IP address (without IPv6 brackets).
    pub host: String,
    /// The ports granted: one (`6379`) or a range (`6379-6389`).
    pub ports: RangeInclusive<u16>,
}

/// Parses `tcp://host:port`, `tcp://host:low-high` or the same without
/// `tcp://`. The message says what is expected.
pub fn parse_outbound(grant: &str) -> Result<OutboundTarget, String> {
    let target = grant.strip_prefix("tcp://").unwrap_or(grant);
    let target = target.trim_end_matches('/');
    let expected = || format!("`{grant}`: expected tcp://host:port");
    if target.contains("://") {
        return Err(expected());
    }
    let (host, ports) = target.rsplit_once(':').ok_or_else(expected)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(expected());
    }
    check_wildcard(grant, host, "tcp://*.example.com:443")?;
    let port = |text: &str| text.parse::<u16>().ok().filter(|p| *p != 0);
    let ports = match ports.split_once('-') {
        None => port(ports).map(|p| p..=p),
        Some((low, high)) => match (port(low), port(high)) {
            (Some(low), Some(high)) if low <= high => Some(low..=high),
            _ => None,
        },
    };
    let ports = ports.ok_or_else(|| format!("{}, or a port range low-high", expected()))?;
    Ok(OutboundTarget {
        host: host.to_owned(),
        ports,
    })
}

/// Refuses a `*` anywhere but as the whole leftmost label of `host`;
/// `example` shows the right form in the message.
pub(crate) fn check_wildcard(grant: &str, host: &str, example: &str) -> Result<(), String> {
    let wildcard_ok = host
        .strip_prefix("*.")
        .is_some_and(|domain| !domain.is_empty() && !domain.contains('*'));
    if host.contains('*') && !wildcard_ok {
        return Err(format!(
            "`{grant}`: `*` may only be the whole leftmost label, as in {example}"
        ));
    }
    Ok(())
}

/// Whether `ip` is in a range that is not the public internet: loopback,
/// private (RFC 1918), shared (100.64/10), link-local, unique-local,
/// unspecified or broadcast.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80
            }
        },
    }
}

/// Resolves outbound grants to the addresses (and ports) they name, and
/// keeps the names for the guest's own lookups. With `block_private`,
/// addresses in private ranges are left out, and a plain name or address
/// left with none fails, naming what it resolved to.
pub async fn resolve_outbound(
    grants: &[String],
    block_private: bool,
) -> anyhow::Result<OutboundAllowlist> {
    let mut allowed = OutboundAllowlist {
        block_private,
        ..OutboundAllowlist::default()
    };
    for grant in grants {
        let target = parse_outbound(grant).map_err(anyhow::Error::msg)?;
        let ips: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                allowed
                    .names
                    .push((HostPattern::parse(&target.host), target.ports.clone()));
                if target.host.starts_with('*') {
                    // Known only once the guest looks a name up.
                    continue;
                }
                tokio::net::lookup_host((target.host.as_str(), *target.ports.start()))
                    .await
                    .with_context(|| {
                        format!("outbound grant `{grant}`: cannot resolve `{}`", target.host)
                    })?
                    .map(|addr| addr.ip())
                    .collect()
            }
        };
        let (inward, public): (Vec<IpAddr>, Vec<IpAddr>) =
            ips.into_iter().partition(|ip| is_private(*ip));
        let usable = if block_private {
            public
        } else {
            [inward.clone(), public].concat()
        };
        if usable.is_empty() {
            bail!(
                "outbound grant `{grant}` resolves only to private addresses ({}), and blockPrivateNetworks is set",
                inward
                    .iter()
                    .map(IpAddr::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        for ip in usable {
            allowed.allow(ip, target.ports.clone());
        }
    }
    Ok(allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn grants_resolve_names_and_refuse_missing_ports() {
        let grants = ["tcp://localhost:6379".into(), "[::1]:1-3".into()];
        let allowed = resolve_outbound(&grants, false).await.expect("resolve");
        assert!(allowed.permits("127.0.0.1:6379".parse().expect("addr")));
        assert!(allowed.permits("[::1]:3".parse().expect("addr")));
        assert!(!allowed.permits("[::1]:4".parse().expect("addr")));
        assert_eq!(allowed.ports_for_name("LocalHost."), [6379..=6379]);
        for bad in ["tcp://localhost", "tcp://localhost:http"] {
            assert!(
                resolve_outbound(&[bad.into()], false).await.is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn grants_parse_ports_ranges_and_wildcards_and_refuse_the_rest() {
        let ok = |host: &str, ports: RangeInclusive<u16>| {
            Ok(OutboundTarget {
                host: host.into(),
                ports,
            })
        };
        let cases: &[(&str, Result<OutboundTarget, &str>)] = &[
            ("tcp://redis:6379", ok("redis", 6379..=6379)),
            ("redis:6379/", ok("redis", 6379..=6379)),
            ("tcp://[::1]:10-20", ok("::1", 10..=20)),
            ("tcp://10.0.0.1:5-5", ok("10.0.0.1", 5..=5)),
            ("tcp://*.example.com:443", ok("*.example.com", 443..=443)),
            ("tcp://redis", Err("expected tcp://host:port")),
            ("http://redis:80", Err("expected tcp://host:port")),
            ("tcp://:80", Err("expected tcp://host:port")),
            ("tcp://redis:0", Err("port range")),
            ("tcp://redis:20-10", Err("port range")),
            ("tcp://redis:1-x", Err("port range")),
            ("tcp://a.*.example.com:443", Err("leftmost label")),
            ("tcp://*example.com:443", Err("leftmost label")),
            ("tcp://*.:443", Err("leftmost label")),
        ];
        for (grant, expected) in cases {
            match (parse_outbound(grant), expected) {
                (Ok(got), Ok(want)) => assert_eq!(&got, want, "{grant}"),
                (Err(got), Err(word)) => assert!(got.contains(word), "{grant}: {got}"),
                (got, want) => panic!("{grant}: got {got:?}, expected {want:?}"),
            }
        }
    }

    #[test]
    fn a_wildcard_covers_exactly_one_leftmost_label() {
        let pattern = HostPattern::parse("*.DB.internal");
        let cases = [
            ("a.db.internal", true),
            ("A.DB.Internal.", true),
            ("db.internal", false),
            ("a.b.db.internal", false),
            ("adb.internal", false),
            (".db.internal", false),
        ];
        for (name, expected) in cases {
            assert_eq!(pattern.matches(name), expected, "{name}");
        }
        assert!(HostPattern::parse("Redis").matches("redis."));
        assert!(!HostPattern::parse("redis").matches("redis2"));
    }

    #[tokio::test]
    async fn wildcards_grant_names_not_addresses_until_looked_up() {
        let allowed = resolve_outbound(&["tcp://*.db.internal:5432-5433".into()], false)
            .await
            .expect("no resolution needed");
        assert!(!allowed.is_empty());
        assert!(!allowed.permits("10.0.0.1:5432".parse().expect("addr")));
        assert_eq!(allowed.ports_for_name("x.db.internal"), [5432..=5433]);
        assert!(allowed.ports_for_name("db.internal").is_empty());
        let learned = LearnedAddresses::default();
        learned.learn("10.0.0.1".parse().expect("ip"), 5432..=5433);
        assert!(learned.permits("10.0.0.1:5433".parse().expect("addr")));
        assert!(!learned.permits("10.0.0.1:5434".parse().expect("addr")));
    }

    #[test]
    fn private_ranges_are_recognised() {
        let cases = [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("172.32.0.1", false),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("100.128.0.1", false),
            ("0.0.0.0", true),
            ("8.8.8.8", false),
            ("::1", true),
            ("fd00::1", true),
            ("fe80::1", true),
            ("::ffff:10.0.0.1", true),
            ("2001:4860:4860::8888", false),
        ];
        for (ip, expected) in cases {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(is_private(ip), expected, "{ip}");
        }
    }

    #[tokio::test]
    async fn blocking_private_networks_drops_inward_addresses() {
        let grants = ["tcp://8.8.8.8:53".into(), "tcp://10.0.0.1:5432".into()];
        assert!(resolve_outbound(&grants, true).await.is_err());
        let allowed = resolve_outbound(&grants[..1], true).await.expect("public");
        assert!(allowed.permits("8.8.8.8:53".parse().expect("addr")));
        assert!(!allowed.admits("10.0.0.1".parse().expect("ip")));
        let open = resolve_outbound(&grants, false).await.expect("not blocked");
        assert!(open.permits("10.0.0.1:5432".parse().expect("addr")));
        assert!(open.admits("10.0.0.1".parse().expect("ip")));
        let err = resolve_outbound(&["tcp://localhost:1".into()], true)
            .await
            .expect_err("localhost is private");
        assert!(err.to_string().contains("blockPrivateNetworks"), "{err}");
    }
}
