//! Capability grants: what one component's instances may touch.
//!
//! Deny by default. A component gets sockets only to the addresses it was
//! granted (resolved by the host at load time), files only under its granted
//! preopens, no environment variables, and no inherited stdio.

use anyhow::{Context, bail};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
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
    /// Socket addresses the guest may connect to.
    pub outbound: Arc<HashSet<SocketAddr>>,
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

/// Whether `addr` may be used for `usage` under `allowed`.
///
/// Connecting is allowed to granted addresses only. Binding is allowed only to
/// the wildcard address with port 0: that is the implicit bind wasi-libc
/// performs before every connect, and it exposes nothing.
fn is_permitted(allowed: &HashSet<SocketAddr>, addr: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        SocketAddrUse::TcpConnect => allowed.contains(&addr),
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        _ => false,
    }
}

/// Resolves outbound grants (`tcp://host:port` or `host:port`) to the socket
/// addresses they name. Host names are resolved here, by the host, and the
/// addresses they resolve to are what the guest may reach.
pub async fn resolve_outbound(grants: &[String]) -> anyhow::Result<HashSet<SocketAddr>> {
    let mut addrs = HashSet::new();
    for grant in grants {
        let target = grant.strip_prefix("tcp://").unwrap_or(grant);
        let target = target.trim_end_matches('/');
        let Some((host, port)) = target.rsplit_once(':') else {
            bail!("outbound grant `{grant}` needs a port (tcp://host:port)");
        };
        let port: u16 = port
            .parse()
            .with_context(|| format!("outbound grant `{grant}`: invalid port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<IpAddr>() {
            addrs.insert(SocketAddr::new(ip, port));
            continue;
        }
        let resolved = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("outbound grant `{grant}`: cannot resolve `{host}`"))?;
        addrs.extend(resolved);
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_connects_and_the_implicit_bind_pass() {
        let granted: SocketAddr = "127.0.0.1:6379".parse().expect("addr");
        let allowed = HashSet::from([granted]);
        let cases: &[(&str, SocketAddrUse, bool)] = &[
            ("127.0.0.1:6379", SocketAddrUse::TcpConnect, true),
            ("127.0.0.1:6380", SocketAddrUse::TcpConnect, false),
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
        let addrs = resolve_outbound(&["tcp://localhost:6379".into(), "[::1]:1".into()])
            .await
            .expect("resolve");
        assert!(addrs.contains(&"127.0.0.1:6379".parse().expect("addr")));
        assert!(addrs.contains(&"[::1]:1".parse().expect("addr")));
        assert!(resolve_outbound(&["tcp://localhost".into()]).await.is_err());
        assert!(
            resolve_outbound(&["tcp://localhost:http".into()])
                .await
                .is_err()
        );
    }
}
