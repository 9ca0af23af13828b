//! Capability grants: what one component's instances may touch.
//!
//! Deny by default. A component gets sockets only to the addresses it was
//! granted (see [`super::outbound`]; names resolved by the host, and looked
//! up through [`super::lookup`]), HTTP requests only to its granted origins
//! (see [`super::http`]), files only under its granted preopens, only the
//! environment variables it was granted, and no inherited stdio.

use super::http::{HttpAllowlist, OutboundHttp};
use super::lookup::LookupGate;
use super::outbound::{LearnedAddresses, OutboundAllowlist};
use anyhow::Context;
use std::net::SocketAddr;
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
    /// Origins the guest may send HTTP requests to.
    pub http: Arc<HttpAllowlist>,
    /// Environment variables the guest sees (names and the host's values);
    /// no other variable of the host is visible.
    pub env: Vec<(String, String)>,
    /// Directories the guest may open.
    pub preopens: Vec<PreopenGrant>,
    /// The most linear memory one instance may have, in bytes.
    pub memory_bytes: usize,
    /// The deadline of one call.
    pub call_timeout: Duration,
}

/// What one instance is confined by: the parts of its store that enforce a
/// [`CapabilityGrant`].
pub struct Sandbox {
    /// Its WASI context: preopens, environment, sockets and their check.
    pub wasi: WasiCtx,
    /// The gate its name lookups go through (which shares what they learn
    /// with the context's socket check).
    pub lookup: LookupGate,
    /// The hooks its `wasi:http` requests go through.
    pub http: OutboundHttp,
}

impl CapabilityGrant {
    /// The sandbox of one instance of `component`.
    pub fn sandbox(&self, component: &Arc<str>) -> anyhow::Result<Sandbox> {
        let learned = LearnedAddresses::default();
        let mut builder = WasiCtxBuilder::new();
        builder.envs(&self.env);
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
            let learned = learned.clone();
            let component = Arc::clone(component);
            builder.socket_addr_check(move |addr, usage| {
                let permitted = is_permitted(&allowed, &learned, addr, usage);
                if !permitted {
                    tracing::warn!(component = %component, %addr, ?usage, "denied a socket use that was not granted");
                }
                Box::pin(std::future::ready(permitted))
            });
        }
        let http = OutboundHttp::new(
            Arc::clone(component),
            Arc::clone(&self.http),
            self.call_timeout,
        );
        let lookup = LookupGate::new(Arc::clone(&self.outbound), learned, component);
        Ok(Sandbox {
            wasi: builder.build(),
            lookup,
            http,
        })
    }
}

/// Whether `addr` may be used for `usage` under `allowed` and what the
/// instance `learned` from its lookups.
///
/// Connecting is allowed to granted addresses only. Binding is allowed only to
/// the wildcard address with port 0: that is the implicit bind wasi-libc
/// performs before every connect, and it exposes nothing.
fn is_permitted(
    allowed: &OutboundAllowlist,
    learned: &LearnedAddresses,
    addr: SocketAddr,
    usage: SocketAddrUse,
) -> bool {
    match usage {
        SocketAddrUse::TcpConnect => allowed.permits(addr) || learned.permits(addr),
        SocketAddrUse::TcpBind => addr.ip().is_unspecified() && addr.port() == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbound::resolve_outbound;

    #[tokio::test]
    async fn only_granted_connects_and_the_implicit_bind_pass() {
        let grants = [
            "tcp://127.0.0.1:6379".into(),
            "tcp://10.0.0.2:7000-7002".into(),
        ];
        let allowed = resolve_outbound(&grants, false).await.expect("grants");
        let learned = LearnedAddresses::default();
        learned.learn("10.0.0.9".parse().expect("ip"), 443..=443);
        let cases: &[(&str, SocketAddrUse, bool)] = &[
            ("127.0.0.1:6379", SocketAddrUse::TcpConnect, true),
            ("127.0.0.1:6380", SocketAddrUse::TcpConnect, false),
            ("10.0.0.2:7000", SocketAddrUse::TcpConnect, true),
            ("10.0.0.2:7002", SocketAddrUse::TcpConnect, true),
            ("10.0.0.2:7003", SocketAddrUse::TcpConnect, false),
            ("10.0.0.2:6999", SocketAddrUse::TcpConnect, false),
            ("10.0.0.1:6379", SocketAddrUse::TcpConnect, false),
            ("10.0.0.9:443", SocketAddrUse::TcpConnect, true),
            ("10.0.0.9:444", SocketAddrUse::TcpConnect, false),
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
                is_permitted(&allowed, &learned, addr, *usage),
                *expected,
                "{addr} {usage:?}"
            );
        }
    }
}
