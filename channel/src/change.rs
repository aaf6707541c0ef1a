//! The changes a running dataplane takes, one message each. A `Set*` adds the object or
//! replaces the one of the same key; a `Delete*` removes it. Objects refer to each other by
//! the names the operator gave them (a route names its tunnel, an SA its tunnel), never by
//! the dataplane's internal numbers, which the dataplane allocates itself.

use crate::vocabulary::{DfPolicy, Dscp, KeyMaterial, Lifetime, Name, Prefixes, Prefixes6};
use ipnet::{IpNet, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    SetInterface(InterfaceSpec),
    DeleteInterface {
        name: Name,
    },
    /// A static neighbor (never aged out): the MAC of an address (IPv4 or IPv6) on a
    /// connected subnet.
    SetNeighbor {
        addr: IpAddr,
        mac: [u8; 6],
    },
    DeleteNeighbor {
        addr: IpAddr,
    },
    /// An IPv4 or IPv6 route; an IPv6 one goes to a next hop of its own family.
    SetRoute {
        prefix: IpNet,
        via: RouteVia,
    },
    DeleteRoute {
        prefix: IpNet,
    },
    SetTunnel(TunnelSpec),
    /// Deletes the tunnel and its SAs; refused while a route still points at it.
    DeleteTunnel {
        name: Name,
    },
    /// Installs the tunnel's outbound SA, replacing the one it had (a rekey).
    SetOutboundSa(OutboundSaSpec),
    DeleteOutboundSa {
        tunnel: Name,
    },
    /// Installs an inbound SA by SPI; a tunnel may have several (old and new around a rekey).
    SetInboundSa(InboundSaSpec),
    DeleteInboundSa {
        spi: u32,
    },
    /// Zeroes counters as the operator sees them (Junos `clear security ipsec statistics`).
    ClearCounters(ClearScope),
    /// A policy of policy-based VPNs, in force from the next lookup table the dataplane
    /// builds (at once, whatever else the batch of changes holds).
    SetPolicy(PolicySpec),
    DeletePolicy {
        name: Name,
    },
}

/// One IPv4 address on one port, and optionally one IPv6 address (the interface also has the
/// link-local address its MAC gives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceSpec {
    pub name: Name,
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// Our global IPv6 address and its on-link prefix.
    pub ipv6: Option<Ipv6Net>,
    /// `None`: the port's own MAC.
    pub mac: Option<[u8; 6]>,
    pub mtu: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RouteVia {
    /// Into a route-based VPN (`st0.N`).
    Tunnel(Name),
    /// To a next hop on a connected subnet.
    Gateway(IpAddr),
}

/// A route-based VPN tunnel: its gateways, how its packets are wrapped, and the inner
/// addresses it carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TunnelSpec {
    pub name: Name,
    /// Our address (one of an interface's, IPv4 or `address6`) and the peer gateway's, of
    /// one family: the outer header's.
    pub local: IpAddr,
    pub remote: IpAddr,
    /// A dial-up peer's tunnel: its remote is learned (by IKE), unspecified until then, and
    /// may change while the tunnel has no SAs; anchored round-robin, with no affinity to an
    /// address.
    pub dynamic: bool,
    /// TCP SYNs into and out of the tunnel have their MSS clamped to this.
    pub tcp_mss: Option<u16>,
    /// The largest inner packet it carries; `None`: the egress MTU less the SA's overhead.
    pub mtu: Option<u16>,
    /// NAT-T (RFC 3948): ESP in UDP between (local port, remote port).
    pub udp: Option<(u16, u16)>,
    pub df: DfPolicy,
    pub dscp: Dscp,
    /// The outer header's TTL.
    pub ttl: u8,
    /// Traffic selectors: inner prefixes on our side and on the peer's, IPv4 and IPv6. A
    /// side with none of either family admits any address; one with some admits only those
    /// (so a side of IPv4 prefixes only admits no IPv6). The IPv6 lists are boxed so that a
    /// `Change` stays small.
    pub local_selectors: Prefixes,
    pub remote_selectors: Prefixes,
    pub local_selectors6: Box<Prefixes6>,
    pub remote_selectors6: Box<Prefixes6>,
}

/// A policy (Junos `security policies ... match ... then`): packets from `src`/`src6` to
/// `dst`/`dst6` (prefixes of each family; a side with none of either: any address of both) of
/// `protocol` (0: any) and ports (TCP and UDP; `(0, 65535)`: any) get its action. Policies
/// apply in the order of `position` (then name), the first that matches deciding, to packets
/// that arrive on an interface (not to decrypted ones), each family's to its own packets
/// (`PolicySpec::families`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicySpec {
    pub name: Name,
    pub position: u32,
    pub src: Prefixes,
    pub dst: Prefixes,
    pub src6: Box<Prefixes6>,
    pub dst6: Box<Prefixes6>,
    pub protocol: u8,
    pub src_ports: (u16, u16),
    pub dst_ports: (u16, u16),
    pub action: PolicyAction,
}

impl PolicySpec {
    /// Whether the policy applies to (IPv4, IPv6) packets: each side any, or naming
    /// prefixes of the family.
    pub fn families(&self) -> (bool, bool) {
        policy_families(&self.src, &self.src6, &self.dst, &self.dst6)
    }
}

/// The one rule for which packets a policy's prefixes apply to: (IPv4, IPv6), each side being
/// any address (no prefix of either family) or naming prefixes of the family.
pub fn policy_families(
    src: &[ipnet::Ipv4Net],
    src6: &[ipnet::Ipv6Net],
    dst: &[ipnet::Ipv4Net],
    dst6: &[ipnet::Ipv6Net],
) -> (bool, bool) {
    let any = |v4: usize, v6: usize| v4 == 0 && v6 == 0;
    let (src_any, dst_any) = (any(src.len(), src6.len()), any(dst.len(), dst6.len()));
    (
        (src_any || !src.is_empty()) && (dst_any || !dst.is_empty()),
        (src_any || !src6.is_empty()) && (dst_any || !dst6.is_empty()),
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyAction {
    /// Routed as usual.
    Permit,
    /// Dropped and counted.
    Deny,
    /// Into this tunnel (a policy-based VPN's), whatever the routes say.
    Tunnel(Name),
}

/// What every SA has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaSpec {
    pub tunnel: Name,
    pub spi: u32,
    pub keys: KeyMaterial,
    /// Extended (64-bit) sequence numbers (RFC 4303 section 2.2.1).
    pub esn: bool,
    pub soft: Lifetime,
    pub hard: Lifetime,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundSaSpec {
    pub sa: SaSpec,
    /// The sequence number of the first packet (1 for a new SA; higher to resume an SA without
    /// ever repeating a number, and so a nonce, under its key).
    pub first_seq: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundSaSpec {
    pub sa: SaSpec,
    /// Anti-replay window in packets; 0 turns the check off.
    pub replay_window: u32,
    /// The highest sequence number already seen, to resume a window (0: none yet).
    pub highest_seen: u64,
    /// Report the SA idle (`Event::Idle`) once nothing has arrived on it for this many
    /// seconds (IKE's dead peer detection asks); `None`: never.
    pub idle_after: Option<u32>,
}

/// Which counters a `ClearCounters` zeroes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClearScope {
    /// Every counter: global, per worker and per SA.
    All,
    /// The counters of one inbound SA.
    InboundSa { spi: u32 },
    /// The counters of a tunnel's outbound SA.
    OutboundSa { tunnel: Name },
}

/// An object a change is about, named as the change names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectKey {
    // The order is the order a resync deletes in: what refers to others first.
    Policy(Name),
    Route(IpNet),
    InboundSa(u32),
    OutboundSa(Name),
    Tunnel(Name),
    Neighbor(IpAddr),
    Interface(Name),
}

impl ObjectKey {
    /// The object a `Set*` change installs (`None` for deletes and clears).
    pub fn of_set(change: &Change) -> Option<ObjectKey> {
        Some(match change {
            Change::SetInterface(s) => ObjectKey::Interface(s.name),
            Change::SetNeighbor { addr, .. } => ObjectKey::Neighbor(*addr),
            Change::SetRoute { prefix, .. } => ObjectKey::Route(*prefix),
            Change::SetTunnel(s) => ObjectKey::Tunnel(s.name),
            Change::SetOutboundSa(s) => ObjectKey::OutboundSa(s.sa.tunnel),
            Change::SetInboundSa(s) => ObjectKey::InboundSa(s.sa.spi),
            Change::SetPolicy(p) => ObjectKey::Policy(p.name),
            _ => return None,
        })
    }

    /// The change that deletes this object.
    pub fn delete(self) -> Change {
        match self {
            ObjectKey::Policy(name) => Change::DeletePolicy { name },
            ObjectKey::Route(prefix) => Change::DeleteRoute { prefix },
            ObjectKey::InboundSa(spi) => Change::DeleteInboundSa { spi },
            ObjectKey::OutboundSa(tunnel) => Change::DeleteOutboundSa { tunnel },
            ObjectKey::Tunnel(name) => Change::DeleteTunnel { name },
            ObjectKey::Neighbor(addr) => Change::DeleteNeighbor { addr },
            ObjectKey::Interface(name) => Change::DeleteInterface { name },
        }
    }
}
