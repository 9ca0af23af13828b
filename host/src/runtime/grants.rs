//! Capability grants: what one component's instances may touch.
//!
//! Deny by default. A component gets sockets only to the addresses it was
//! granted (resolved by the host at load time), files only under its granted
//! preopens, no environment variables, and no inherited stdio.
//!
//! An outbound grant is `tcp://host:port` or `tcp://host:low-high` (a port
//! range). Host names are resolved here, by the host, and the addresses they
//! resolve to are what the guest may reach. With private networks blocked,
//! resolved addresses in loopback, private, link-local or unique-local
//! ranges are dropped (so a public name that resolves inward grants
//! nothing). `*` wildcards are refused: the host sees only the address a
//! guest connects to, never the name it looked up, so a wildcard cannot be
//! enforced yet.

use anyhow::{Context, bail};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime_wasi::sockets::SocketAddrUse;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder};

/// A host directory mapped into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreopenGrant {
    /// The directory on the host; it must exist.
    pub host: PathBuf,
    /// Where the guest sees it.
    pub guest: String,
    /// Whether the guest may only read.
    pub read_only: bool,
}

/// Everything one component is allowed, resolved and ready to build a sandbox.
#[derive(Debug, Clone)]
pub struct CapabilityGrant {
    /// Addresses and ports the guest may connect to.
    pub outbound: Arc<OutboundAllowlist>,
    /// Directories the guest may open.
    pub preopens: Vec<PreopenGrant>,
    /// The most linear memory one instance may have, in bytes.
    pub memory_bytes: usize,
    /// The deadline of one call.
    pub call_timeout: Duration,
}

impl CapabilityGrant {
    /// The WASI context of one instance of `component`.
    pub fn wasi_ctx(&self, component: &Arc<str>) -> anyhow::Result<WasiCtx> {
        let mut builder = WasiCtxBuilder::new();
        for preopen in &self.preopens {
            let perms = if preopen.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            builder
                .preopened_dir(&preopen.host, &preopen.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "granting directory {} as {}",
                        preopen.host.display(),
                        preopen.guest
                    )
                })?;
        }
        if !self.outbound.is_empty() {
            builder.allow_tcp(true).allow_ip_name_lookup(true);
            let allowed = Arc::clone(&self.outbound);
            let component = Arc::clone(component);
            builder.socket_addr_check(move |addr, usage| {
                let permitted = is_permitted(&allowed, addr, usage);
                if !permitted {
                    tracing::warn!(component = %component, %addr, ?usage, "denied a socket use that was not granted");
                }
                Box::pin(std::future::ready(permitted))
            });
        }
        Ok(builder.build())
    }
}

/// The addresses a component may connect to, each with a port range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundAllowlist {
    rules: Vec<(IpAddr, RangeInclusive<u16>)>,
}

impl OutboundAllowlist {
    /// Whether nothing at all is granted (then the guest gets no sockets).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether a connection to `addr` is granted.
    pub fn permits(&self, addr: SocketAddr) -> bool {
        self.rules
            .iter()
            .any(|(ip, ports)| *ip == addr.ip() && ports.contains(&addr.port()))
    }

    fn allow(&mut self, ip: IpAddr, ports: RangeInclusive<u16>) {
        let rule = (ip, ports);
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }
}

/// One outbound grant, parsed: the host (a name or an IP) and its ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundTarget {
    /// A host name or an IP address (without IPv6 brackets).
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
    if host.contains('*') {
        return Err(format!(
            "`{grant}`: wildcard hosts are not supported (the host cannot see which name a guest looked up); list each host"
        ));
    }
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

/// Whether `addr` may be used for `usage` under `allowed`.
///
/// Connecting is allowed to granted addresses only. Binding is allowed only to
/// the wildcard address with port 0: that is the implicit bind wasi-libc
/// performs before every connect, and it exposes nothing.
fn is_permitted(allowed: &OutboundAllowlist, addr: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        SocketAddrUse::TcpConnect => allowed.permits(addr),
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        _ => false,
    }
}

/// Resolves outbound grants to the addresses (and ports) they name. With
/// `block_private`, addresses in private ranges are left out, and a grant
/// left with none fails, naming what it resolved to.
pub async fn resolve_outbound(
    grants: &[String],
    block_private: bool,
) -> anyhow::Result<OutboundAllowlist> {
    let mut allowed = OutboundAllowlist::default();
    for grant in grants {
        let target = parse_outbound(grant).map_err(anyhow::Error::msg)?;
        let ips: Vec<IpAddr> = match target.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((target.host.as_str(), *target.ports.start()))
                .await
                .with_context(|| {
                    format!("outbound grant `{grant}`: cannot resolve `{}`", target.host)
                })?
                .map(|addr| addr.ip())
                .collect(),
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

    #[test]
    fn only_granted_connects_and_the_implicit_bind_pass() {
        let mut allowed = OutboundAllowlist::default();
        allowed.allow("127.0.0.1".parse().expect("ip"), 6379..=6379);
        allowed.allow("10.0.0.2".parse().expect("ip"), 7000..=7002);
        let cases: &[(&str, SocketAddrUse, bool)] = &[
            ("127.0.0.1:6379", SocketAddrUse::TcpConnect, true),
            ("127.0.0.1:6380", SocketAddrUse::TcpConnect, false),
            ("10.0.0.2:7000", SocketAddrUse::TcpConnect, true),
            ("10.0.0.2:7002", SocketAddrUse::TcpConnect, true),
            ("10.0.0.2:7003", SocketAddrUse::TcpConnect, false),
            ("10.0.0.2:6999", SocketAddrUse::TcpConnect, false),
            ("10.0.0.1:6379", SocketAddrUse::TcpConnect, false),
            ("0.0.0.0:0", SocketAddrUse::TcpBind, true),
            ("[::]:0", SocketAddrUse::TcpBind, true),
            ("0.0.0.0:8080", SocketAddrUse::TcpBind, false),
            ("127.0.0.1:0", SocketAddrUse::TcpBind, false),
            ("0.0.0.0:0", SocketAddrUse::TcpListen, false),
            ("127.0.0.1:6379", SocketAddrUse::UdpSend, false),
        ];
        for (addr, usage, expected) in cases {
            let addr: SocketAddr = addr.parse().expect("addr");
            assert_eq!(
                is_permitted(&allowed, addr, *usage),
                *expected,
                "{addr} {usage:?}"
            );
        }
    }

    #[tokio::test]
    async fn grants_resolve_names_and_refuse_missing_ports() {
        let grants = ["tcp://localhost:6379".into(), "[::1]:1-3".into()];
        let allowed = resolve_outbound(&grants, false).await.expect("resolve");
        assert!(allowed.permits("127.0.0.1:6379".parse().expect("addr")));
        assert!(allowed.permits("[::1]:3".parse().expect("addr")));
        assert!(!allowed.permits("[::1]:4".parse().expect("addr")));
        for bad in ["tcp://localhost", "tcp://localhost:http"] {
            assert!(
                resolve_outbound(&[bad.into()], false).await.is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn grants_parse_ports_and_ranges_and_refuse_the_rest() {
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
            ("tcp://redis", Err("expected tcp://host:port")),
            ("http://redis:80", Err("expected tcp://host:port")),
            ("tcp://:80", Err("expected tcp://host:port")),
            ("tcp://redis:0", Err("port range")),
            ("tcp://redis:20-10", Err("port range")),
            ("tcp://redis:1-x", Err("port range")),
            ("tcp://*.example.com:443", Err("wildcard")),
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
        let open = resolve_outbound(&grants, false).await.expect("not blocked");
        assert!(open.permits("10.0.0.1:5432".parse().expect("addr")));
        let err = resolve_outbound(&["tcp://localhost:1".into()], true)
            .await
            .expect_err("localhost is private");
        assert!(err.to_string().contains("blockPrivateNetworks"), "{err}");
    }
}
