//! The appliance configuration file (JSON), and its complete validation before anything is
//! applied: a bad file changes nothing, and the error names the field and the reason. Each
//! section is checked in a module of its name; `changes` turns a valid file into the
//! plain-data changes the dataplane applies. The format is documented in
//! docs/configuration.md.

mod changes;
mod control;
mod dataplane;
mod file;
mod ike;
mod network;
mod policies;
mod routes;
mod sas;
mod tunnels;

pub use changes::changes;
pub use control::{ControlConfig, IkeTransport, TlsFiles};
pub use ike::{
    Dpd, DpdAction, Establish, IkeAuth, IkeConfig, IkeGateway, IkeId, IpsecVpn, VpnChild,
    DEFAULT_COOKIE_THRESHOLD, DEFAULT_HALF_OPEN_LIMIT, MAX_CHILDREN,
};
pub use policies::{Policy, PolicyThen, ANY_PORTS};

use channel::Direction;
use channel::Mac;
use channel::{KeyMaterial, Lifetime, Name, Prefixes, Prefixes6};
use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use zeroize::Zeroizing;

/// How a tunnel's packets are wrapped on the way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelEncap {
    /// Both of one family, the outer header's (IPv4 or IPv6).
    pub local: IpAddr,
    pub remote: IpAddr,
    /// NAT-T (RFC 3948): (local port, remote port).
    pub udp: Option<(u16, u16)>,
    pub df: channel::DfPolicy,
    pub dscp: channel::Dscp,
    pub ttl: u8,
    /// The largest inner packet the tunnel carries (`tunnels[].mtu`); `None`: what the egress
    /// interface's MTU leaves after this SA's overhead.
    pub mtu: Option<u16>,
}

/// How large the dataplane's tables are. They never grow, so that a worker never rehashes
/// between bursts; the main lcore refuses a change that would not fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Tunnel ids run below this.
    pub tunnels: u32,
    /// Inbound SA indexes run below this, and the SPI table has room for as many SPIs.
    pub inbound_sas: u32,
    /// 256-entry tables of the route trie.
    pub route_tables: u32,
    /// IPv6 routes (interfaces' own among them) the IPv6 route table holds.
    pub routes6: u32,
}

/// The highest tunnel id: the dataplane's handoff tags carry tunnel ids in 30 bits.
pub const MAX_TUNNEL_ID: u32 = (1 << 30) - 1;

/// A configuration error: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

fn err<T>(field: impl Into<String>, reason: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError {
        field: field.into(),
        reason: reason.into(),
    })
}

/// Which AEAD backend the SAs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CryptoChoice {
    /// The `crypto_aesni_gcm` device if it can be had, else `ring`.
    #[default]
    Auto,
    /// The `crypto_aesni_gcm` device, or do not start.
    Cryptodev,
    /// `ring` in software.
    Ring,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dataplane: Dataplane,
    pub interfaces: Vec<InterfaceConfig>,
    pub neighbors: Vec<(Ipv4Addr, Mac)>,
    /// Static IPv6 neighbors, each on an interface's IPv6 subnet.
    pub neighbors6: Vec<(Ipv6Addr, Mac)>,
    pub tunnels: Vec<Tunnel>,
    pub routes: Vec<Route>,
    pub routes6: Vec<Route6>,
    pub manual_sas: Vec<ManualSa>,
    /// The control process's settings (defaults when the file has no `control` section).
    pub control: ControlConfig,
    /// IKE gateways and the VPNs keyed through them (empty when the file has no `ike`
    /// section). Read by the control process; it makes no dataplane changes of its own.
    pub ike: IkeConfig,
    /// The MSS that TCP SYNs into and out of every tunnel are clamped to (Junos `set security
    /// flow tcp-mss ipsec-vpn mss N`); `None`: left alone.
    pub tcp_mss_ipsec_vpn: Option<u16>,
    /// Policies (policy-based VPNs), in order; a policy into a VPN also made a tunnel of its
    /// name in `tunnels`.
    pub policies: Vec<Policy>,
}

/// The MSS clamp's bounds: RFC 9293's minimum IPv4 MSS, and what a 9000-byte tunnel carries.
pub const TCP_MSS: std::ops::RangeInclusive<u16> = 536..=8960;

#[derive(Debug, Clone)]
pub struct Dataplane {
    pub eal: Vec<String>,
    pub workers: Vec<u32>,
    /// Lists of worker lcores; `None`: one group per NUMA socket, decided at start.
    pub anchor_groups: Option<Vec<Vec<u32>>>,
    /// Slots in each worker-to-worker handoff ring.
    pub handoff_ring_size: u32,
    pub mbufs: u32,
    pub rx_descriptors: u16,
    pub tx_descriptors: u16,
    pub poll_sleep_us: u32,
    pub crypto: CryptoChoice,
    /// How large the workers' tables are: they never grow.
    pub capacity: Capacity,
    /// The shared-memory segment a control process attaches to; `None`: standalone.
    pub channel: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: Name,
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
    /// Our global IPv6 address and its on-link prefix (the link-local one comes from the MAC).
    pub ipv6: Option<Ipv6Net>,
    /// `None`: the port's own MAC.
    pub mac: Option<Mac>,
    pub mtu: u16,
}

impl InterfaceConfig {
    pub fn subnet(&self) -> Ipv4Net {
        Ipv4Net::new(self.addr, self.prefix_len)
            .map(|n| n.trunc())
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone)]
pub struct Tunnel {
    pub name: Name,
    pub encap: TunnelEncap,
    pub local_selectors: Prefixes,
    pub remote_selectors: Prefixes,
    /// The IPv6 prefixes of `traffic_selectors`.
    pub local_selectors6: Prefixes6,
    pub remote_selectors6: Prefixes6,
}

/// Where a route sends: into a tunnel, or to a next hop of the route's family (`A`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteVia<A = Ipv4Addr> {
    Tunnel(Name),
    Gateway { port: u16, via: A },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: Ipv4Net,
    pub via: RouteVia,
}

/// An IPv6 route: into a tunnel (IPv6 in the tunnel's IPv4 ESP), or to a next hop on an
/// interface's IPv6 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route6 {
    pub prefix: Ipv6Net,
    pub via: RouteVia<Ipv6Addr>,
}

#[derive(Debug, Clone)]
pub struct ManualSa {
    pub tunnel: Name,
    pub direction: Direction,
    pub spi: u32,
    pub keys: KeyMaterial,
    pub esn: bool,
    pub replay_window: u32,
    /// Outbound: the first sequence number sent; inbound: the highest already seen.
    pub initial_seq: Option<u64>,
    pub soft: Lifetime,
    pub hard: Lifetime,
}

impl Config {
    /// Reads and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .or_else(|e| err(path.display().to_string(), e.to_string()))?,
        );
        Self::parse(&text)
    }

    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let f: file::File = serde_json::from_str(text).or_else(|e| err("config", e.to_string()))?;
        let interfaces = network::interfaces(&f.interfaces)?;
        let (neighbors, neighbors6) = network::neighbors(&f.neighbors, &interfaces)?;
        let mut tunnels = tunnels::tunnels(&f.tunnels, &interfaces)?;
        let (routes, routes6) = routes::routes(&f.routes, &interfaces, &tunnels)?;
        let manual_sas = sas::manual_sas(&f.manual_sas, &tunnels)?;
        let taken = tunnels
            .iter()
            .map(|t| t.name)
            .chain(interfaces.iter().map(|i| i.name))
            .collect();
        let policies = policies::policies(&f.policies, &taken)?;
        // A policy into a VPN makes the tunnel its child keys.
        let (ike, made) = ike::ike(&f.ike, &interfaces, &tunnels, &manual_sas, &policies)?;
        tunnels.extend(made);
        let dataplane = dataplane::dataplane(
            &f.dataplane,
            &interfaces,
            &tunnels,
            (&routes, &routes6),
            &manual_sas,
        )?;
        let control = f
            .control
            .as_ref()
            .map_or_else(|| Ok(ControlConfig::default()), control::control)?;
        let tcp_mss_ipsec_vpn = match f.flow.tcp_mss_ipsec_vpn {
            None => None,
            Some(n) => match u16::try_from(n) {
                Ok(n) if TCP_MSS.contains(&n) => Some(n),
                _ => {
                    return err(
                        "flow.tcp_mss_ipsec_vpn",
                        format!("{n} is outside {}..={}", TCP_MSS.start(), TCP_MSS.end()),
                    )
                }
            },
        };
        Ok(Config {
            dataplane,
            interfaces,
            neighbors,
            neighbors6,
            tunnels,
            routes,
            routes6,
            manual_sas,
            control,
            ike,
            tcp_mss_ipsec_vpn,
            policies,
        })
    }

    /// The interface whose subnet holds `a`.
    pub fn interface_for(&self, a: Ipv4Addr) -> Option<&InterfaceConfig> {
        self.interfaces.iter().find(|i| i.subnet().contains(&a))
    }
}

impl InterfaceConfig {
    /// Its IPv6 on-link prefix, if it has an IPv6 address.
    pub fn subnet6(&self) -> Option<Ipv6Net> {
        self.ipv6.map(|n| n.trunc())
    }
}

fn parse_name(field: &str, s: &str) -> Result<Name, ConfigError> {
    Name::new(s).or_else(|e| err(field, e.to_string()))
}

fn parse_ip(field: &str, s: &str) -> Result<Ipv4Addr, ConfigError> {
    s.parse()
        .or_else(|_| err(field, format!("{s:?} is not an IPv4 address")))
}

/// A tunnel endpoint: an IPv4 address, or an IPv6 one (it has a colon).
pub(crate) fn parse_endpoint(field: &str, s: &str) -> Result<IpAddr, ConfigError> {
    if s.contains(':') {
        parse_ip6(field, s).map(IpAddr::V6)
    } else {
        parse_ip(field, s).map(IpAddr::V4)
    }
}

/// Whether `a` is one of our interfaces' addresses (IPv4) or `address6`es (IPv6).
pub(crate) fn is_ours(interfaces: &[InterfaceConfig], a: IpAddr) -> bool {
    match a {
        IpAddr::V4(a) => interfaces.iter().any(|x| x.addr == a),
        IpAddr::V6(a) => interfaces
            .iter()
            .any(|x| x.ipv6.is_some_and(|n| n.addr() == a)),
    }
}

/// `remote`, checked to be a peer's address for `local` (a tunnel's or an IKE gateway's):
/// routable unicast, not ours, of `local`'s family.
pub(crate) fn peer_address(
    field: &str,
    remote: IpAddr,
    local: IpAddr,
) -> Result<IpAddr, ConfigError> {
    let bad = match remote {
        IpAddr::V4(r) => r.is_broadcast(),
        IpAddr::V6(r) => r.is_unicast_link_local(),
    };
    if bad || remote.is_unspecified() || remote.is_multicast() || remote == local {
        return err(field, format!("{remote} cannot be a peer"));
    }
    if local.is_ipv4() != remote.is_ipv4() {
        return err(field, format!("{remote} is not of the family of {local}"));
    }
    Ok(remote)
}

/// The unspecified address of `a`'s family: a dial-up peer's (`%any`).
pub fn unspecified_like(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    }
}

fn parse_ip6(field: &str, s: &str) -> Result<Ipv6Addr, ConfigError> {
    s.parse()
        .or_else(|_| err(field, format!("{s:?} is not an IPv6 address")))
}

fn parse_mac(field: &str, s: &str) -> Result<Mac, ConfigError> {
    let m: Mac = s
        .parse()
        .or_else(|e: &str| err(field, format!("{s:?}: {e}")))?;
    if m.0[0] & 1 != 0 {
        return err(field, format!("{s} is a multicast/broadcast address"));
    }
    Ok(m)
}

fn parse_prefix(field: &str, s: &str) -> Result<Ipv4Net, ConfigError> {
    let n: Ipv4Net = s.parse().or_else(|_| {
        err(
            field,
            format!("{s:?} is not an IPv4 prefix like 10.2.0.0/16"),
        )
    })?;
    if n.addr() != n.network() {
        return err(
            field,
            format!("{s} has host bits set (did you mean {}?)", n.trunc()),
        );
    }
    Ok(n)
}

/// An IPv6 prefix like 2001:db8:2::/48, without host bits.
fn parse_prefix6(field: &str, s: &str) -> Result<Ipv6Net, ConfigError> {
    let n: Ipv6Net = s.parse().or_else(|_| {
        err(
            field,
            format!("{s:?} is not an IPv6 prefix like 2001:db8:2::/48 (length 0..128)"),
        )
    })?;
    if n.addr() != n.network() {
        return err(
            field,
            format!("{s} has host bits set (did you mean {}?)", n.trunc()),
        );
    }
    Ok(n)
}

/// Link-local unicast, fe80::/10: an address that means something only on one link.
fn is_link_local6(a: &Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

#[cfg(test)]
mod ike_tests;
#[cfg(test)]
mod ipv6_tests;
#[cfg(test)]
mod policy_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tunnel6_tests;
