//! The guest's name lookups, gated by its grants.
//!
//! A guest resolves a host name through `wasi:sockets/ip-name-lookup`, then
//! connects to an address; the socket check sees only the address. So that
//! grants by name hold (`tcp://*.db.internal:5432`, or a name whose
//! addresses change after load), Outrig stands in front of wasmtime-wasi's
//! lookup:
//! - a name no grant covers is refused with `access-denied` (a guest cannot
//!   even probe DNS with it), and the attempt is logged;
//! - the addresses a covered name resolves to become connectable, on that
//!   grant's ports, for this instance only (not those in private ranges
//!   when private networks are blocked);
//! - an IP address written as a name resolves to itself, as before: the
//!   socket check still decides whether it may be reached.
//!
//! The lookup itself is wasmtime-wasi's; [`add_to_linker`] shadows its
//! `ip-name-lookup` interface with this one.

use super::instance::InstanceState;
use super::outbound::{LearnedAddresses, OutboundAllowlist};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource};
use wasmtime_wasi::p2::bindings::sockets::ip_name_lookup::{
    self, Host, HostResolveAddressStream, ResolveAddressStream,
};
use wasmtime_wasi::p2::bindings::sockets::network::{self, ErrorCode, IpAddress, Network};
use wasmtime_wasi::p2::{DynPollable, SocketError};
use wasmtime_wasi::sockets::WasiSocketsCtxView;

/// One instance's lookup state: what it may look up, what it learned, and
/// the lookups in flight.
pub struct LookupGate {
    component: Arc<str>,
    allowlist: Arc<OutboundAllowlist>,
    learned: LearnedAddresses,
    /// Lookups in flight, by stream: the ports their name was granted.
    pending: HashMap<u32, Vec<RangeInclusive<u16>>>,
}

impl LookupGate {
    /// A gate for `component` under `allowlist`, teaching `learned` (which
    /// the instance's socket check reads).
    pub fn new(
        allowlist: Arc<OutboundAllowlist>,
        learned: LearnedAddresses,
        component: &Arc<str>,
    ) -> Self {
        LookupGate {
            component: Arc::clone(component),
            allowlist,
            learned,
            pending: HashMap::new(),
        }
    }

    /// The ports `name` may be reached on (an IP literal passes with none to
    /// learn); `None` when the lookup is refused.
    fn admit(&self, name: &str) -> Option<Vec<RangeInclusive<u16>>> {
        let literal = name.trim_matches(['[', ']']).parse::<IpAddr>().is_ok();
        if literal {
            return Some(Vec::new());
        }
        let ports = self.allowlist.ports_for_name(name);
        if ports.is_empty() {
            tracing::warn!(component = %self.component, name, "denied a name lookup that was not granted");
            return None;
        }
        Some(ports)
    }

    /// Records that the lookup `stream` answered `address`.
    fn found(&self, stream: u32, address: IpAddr) {
        let Some(ports) = self.pending.get(&stream) else {
            return;
        };
        if !self.allowlist.admits(address) {
            tracing::warn!(component = %self.component, %address, "a granted name resolved to a private address, which is blocked");
            return;
        }
        for range in ports {
            self.learned.learn(address, range.clone());
        }
    }
}

/// [`HasData`] for the gated lookup interface.
pub struct GatedLookup;

impl HasData for GatedLookup {
    type Data<'a> = LookupView<'a>;
}

/// What the gated lookup needs of an instance: wasmtime-wasi's sockets view
/// and the gate.
pub struct LookupView<'a> {
    /// wasmtime-wasi's view, which performs the lookups.
    pub sockets: WasiSocketsCtxView<'a>,
    /// The instance's gate.
    pub gate: &'a mut LookupGate,
}

impl Host for LookupView<'_> {
    fn resolve_addresses(
        &mut self,
        network: Resource<Network>,
        name: String,
    ) -> Result<Resource<ResolveAddressStream>, SocketError> {
        let Some(ports) = self.gate.admit(&name) else {
            return Err(ErrorCode::AccessDenied.into());
        };
        let stream = Host::resolve_addresses(&mut self.sockets, network, name)?;
        if !ports.is_empty() {
            self.gate.pending.insert(stream.rep(), ports);
        }
        Ok(stream)
    }
}

/// Error conversion, as wasmtime-wasi does it (the lookup's errors are
/// socket errors).
impl network::Host for LookupView<'_> {
    fn convert_error_code(&mut self, error: SocketError) -> wasmtime::Result<ErrorCode> {
        network::Host::convert_error_code(&mut self.sockets, error)
    }

    fn network_error_code(
        &mut self,
        error: Resource<wasmtime::Error>,
    ) -> wasmtime::Result<Option<ErrorCode>> {
        network::Host::network_error_code(&mut self.sockets, error)
    }
}

impl network::HostNetwork for LookupView<'_> {
    fn drop(&mut self, network: Resource<Network>) -> wasmtime::Result<()> {
        network::HostNetwork::drop(&mut self.sockets, network)
    }
}

impl HostResolveAddressStream for LookupView<'_> {
    fn resolve_next_address(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> Result<Option<IpAddress>, SocketError> {
        let rep = stream.rep();
        let next = HostResolveAddressStream::resolve_next_address(&mut self.sockets, stream)?;
        if let Some(address) = &next {
            self.gate.found(rep, std_ip(address));
        }
        Ok(next)
    }

    fn subscribe(
        &mut self,
        stream: Resource<ResolveAddressStream>,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        HostResolveAddressStream::subscribe(&mut self.sockets, stream)
    }

    fn drop(&mut self, stream: Resource<ResolveAddressStream>) -> wasmtime::Result<()> {
        self.gate.pending.remove(&stream.rep());
        HostResolveAddressStream::drop(&mut self.sockets, stream)
    }
}

fn std_ip(address: &IpAddress) -> IpAddr {
    match *address {
        IpAddress::Ipv4((a, b, c, d)) => IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
        IpAddress::Ipv6((a, b, c, d, e, f, g, h)) => {
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
        }
    }
}

/// Puts the gated lookup in place of wasmtime-wasi's in `linker` (which
/// must already have WASI).
pub fn add_to_linker(linker: &mut Linker<InstanceState>) -> anyhow::Result<()> {
    linker.allow_shadowing(true);
    let added = ip_name_lookup::add_to_linker::<InstanceState, GatedLookup>(
        linker,
        InstanceState::lookup_view,
    );
    linker.allow_shadowing(false);
    added.map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::outbound::resolve_outbound;

    async fn gate(grants: &[&str], block_private: bool) -> LookupGate {
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        let allowlist = resolve_outbound(&grants, block_private)
            .await
            .expect("grants");
        LookupGate::new(
            Arc::new(allowlist),
            LearnedAddresses::default(),
            &Arc::from("c"),
        )
    }

    #[tokio::test]
    async fn only_granted_names_are_looked_up_and_what_they_find_is_learned() {
        let mut gate = gate(&["tcp://*.db.internal:5432", "tcp://localhost:1-2"], false).await;
        assert_eq!(gate.admit("a.db.internal"), Some(vec![5432..=5432]));
        assert_eq!(gate.admit("LOCALHOST"), Some(vec![1..=2]));
        assert_eq!(gate.admit("10.0.0.1"), Some(Vec::new()), "literals pass");
        assert_eq!(gate.admit("[::1]"), Some(Vec::new()), "literals pass");
        assert_eq!(gate.admit("db.internal"), None);
        assert_eq!(gate.admit("example.com"), None);

        gate.pending.insert(7, vec![5432..=5432]);
        let found: IpAddr = "10.0.0.5".parse().expect("ip");
        gate.found(7, found);
        gate.found(8, "10.0.0.6".parse().expect("ip"));
        assert!(gate.learned.permits("10.0.0.5:5432".parse().expect("addr")));
        assert!(!gate.learned.permits("10.0.0.5:5433".parse().expect("addr")));
        assert!(
            !gate.learned.permits("10.0.0.6:5432".parse().expect("addr")),
            "a stream the gate never admitted teaches nothing"
        );
    }

    #[tokio::test]
    async fn blocked_private_addresses_are_not_learned() {
        let mut gate = gate(&["tcp://*.example.com:443"], true).await;
        gate.pending.insert(1, vec![443..=443]);
        gate.found(1, "10.0.0.5".parse().expect("ip"));
        gate.found(1, "93.184.215.14".parse().expect("ip"));
        assert!(!gate.learned.permits("10.0.0.5:443".parse().expect("addr")));
        assert!(
            gate.learned
                .permits("93.184.215.14:443".parse().expect("addr"))
        );
    }

    /// The gate in front of wasmtime-wasi's real lookup: a granted name is
    /// resolved and its addresses learned; another name is refused before
    /// any DNS query.
    #[tokio::test]
    async fn the_gated_interface_resolves_granted_names_and_refuses_others() {
        use crate::runtime::grants::CapabilityGrant;
        use std::time::Duration;
        use wasmtime_wasi::p2::bindings::sockets::instance_network::Host as _;

        let outbound = resolve_outbound(&["tcp://localhost:4321".into()], false)
            .await
            .expect("grants");
        let grant = CapabilityGrant {
            outbound: Arc::new(outbound),
            http: Arc::default(),
            env: Vec::new(),
            preopens: Vec::new(),
            memory_bytes: 1 << 20,
            call_timeout: Duration::from_secs(1),
        };
        let sandbox = grant.sandbox(&Arc::from("c")).expect("sandbox");
        let limits = crate::runtime::pool::MemoryGrant::new(grant.memory_bytes);
        let mut state = InstanceState::new(Arc::from("c"), sandbox, limits, Arc::default());
        let mut view = state.lookup_view();

        let network = view.sockets.instance_network().expect("network");
        let refused = Host::resolve_addresses(&mut view, network, "example.com".into())
            .expect_err("not granted");
        assert!(
            matches!(refused.downcast(), Ok(ErrorCode::AccessDenied)),
            "refused with access-denied"
        );

        let network = view.sockets.instance_network().expect("network");
        let stream =
            Host::resolve_addresses(&mut view, network, "localhost".into()).expect("granted");
        let rep = stream.rep();
        let mut found = Vec::new();
        for _ in 0..1000 {
            let next = Resource::<ResolveAddressStream>::new_borrow(rep);
            match HostResolveAddressStream::resolve_next_address(&mut view, next) {
                Ok(Some(address)) => found.push(std_ip(&address)),
                Ok(None) => break,
                Err(_would_block) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        HostResolveAddressStream::drop(&mut view, stream).expect("drop");
        assert!(!found.is_empty(), "localhost resolved to nothing");
        for ip in found {
            let addr = std::net::SocketAddr::new(ip, 4321);
            assert!(view.gate.learned.permits(addr), "{addr} was not learned");
        }
        assert!(
            view.gate.pending.is_empty(),
            "the finished lookup is forgotten"
        );
    }

    #[test]
    fn wit_addresses_convert_to_std() {
        let cases = [
            (IpAddress::Ipv4((10, 0, 0, 1)), "10.0.0.1"),
            (IpAddress::Ipv6((0, 0, 0, 0, 0, 0, 0, 1)), "::1"),
        ];
        for (wit, std) in cases {
            assert_eq!(std_ip(&wit), std.parse::<IpAddr>().expect("ip"));
        }
    }
}
