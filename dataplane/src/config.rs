//! The appliance configuration file (JSON), and its complete validation before anything is
//! applied: a bad file changes nothing, and the error names the field and the reason.
//! The format is documented in docs/configuration.md.

use crate::esp::crypto::{Algorithm, Keymat};
use crate::esp::replay::{DEFAULT_WINDOW, MAX_WINDOW};
use crate::sa::{DfPolicy, Direction, DscpPolicy, Selectors, TunnelEncap};
use crate::wire::ethernet::Mac;
use ipnet::Ipv4Net;
use serde::{Deserialize, Deserializer};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::path::Path;
use zeroize::{Zeroize, Zeroizing};

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

// ---- the file as written ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    dataplane: DataplaneFile,
    #[serde(default)]
    interfaces: Vec<InterfaceFile>,
    #[serde(default)]
    neighbors: Vec<NeighborFile>,
    #[serde(default)]
    tunnels: Vec<TunnelFile>,
    #[serde(default)]
    routes: Vec<RouteFile>,
    #[serde(default)]
    manual_sas: Vec<ManualSaFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataplaneFile {
    #[serde(default)]
    eal: Vec<String>,
    workers: Vec<u32>,
    anchor_groups: Option<Vec<Vec<u32>>>,
    handoff_ring_size: Option<u32>,
    mbufs: Option<u32>,
    rx_descriptors: Option<u16>,
    tx_descriptors: Option<u16>,
    #[serde(default)]
    poll_sleep_us: u32,
    #[serde(default)]
    crypto: CryptoChoice,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    name: String,
    port: u16,
    address: String,
    mac: Option<String>,
    mtu: Option<u16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NeighborFile {
    address: String,
    mac: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TunnelFile {
    name: String,
    local: String,
    remote: String,
    udp_encap: Option<UdpEncapFile>,
    #[serde(default)]
    df: DfPolicy,
    dscp: Option<DscpFile>,
    ttl: Option<u8>,
    traffic_selectors: Option<SelectorsFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UdpEncapFile {
    #[serde(default = "natt_port")]
    local_port: u16,
    #[serde(default = "natt_port")]
    remote_port: u16,
}

fn natt_port() -> u16 {
    crate::wire::udp::PORT_NATT
}

#[derive(Deserialize)]
#[serde(untagged)]
enum DscpFile {
    Value(u8),
    Word(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorsFile {
    #[serde(default)]
    local: Vec<String>,
    #[serde(default)]
    remote: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteFile {
    prefix: String,
    via: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManualSaFile {
    tunnel: String,
    direction: Direction,
    spi: SpiFile,
    algorithm: Algorithm,
    key: SecretHex,
    #[serde(default)]
    esn: bool,
    replay_window: Option<u32>,
    /// Tooling hook (tests of sequence exhaustion and ESN wrap): the first sequence number
    /// the SA sends, or for inbound the highest one already seen.
    initial_seq: Option<u64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SpiFile {
    Number(u64),
    Text(String),
}

/// Hex key material that is wiped from memory as soon as it is decoded.
struct SecretHex(Result<Zeroizing<Vec<u8>>, &'static str>);

impl<'de> Deserialize<'de> for SecretHex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut s = String::deserialize(d)?;
        let t = s.trim();
        let t = t.strip_prefix("0x").unwrap_or(t);
        let decoded = hex::decode(t)
            .map(Zeroizing::new)
            .map_err(|_| "not a hex string");
        s.zeroize();
        Ok(SecretHex(decoded))
    }
}

// ---- the validated configuration ----

#[derive(Debug, Clone)]
pub struct Config {
    pub dataplane: Dataplane,
    pub interfaces: Vec<InterfaceConfig>,
    pub neighbors: Vec<(Ipv4Addr, Mac)>,
    pub tunnels: Vec<Tunnel>,
    pub routes: Vec<Route>,
    pub manual_sas: Vec<ManualSa>,
}

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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: String,
    pub port: u16,
    pub addr: Ipv4Addr,
    pub prefix_len: u8,
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
    pub name: String,
    /// Index in `tunnels`, the id workers know it by.
    pub id: u32,
    pub encap: TunnelEncap,
    pub selectors: Selectors,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteVia {
    Tunnel(u32),
    Gateway { port: u16, via: Ipv4Addr },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub prefix: Ipv4Net,
    pub via: RouteVia,
}

#[derive(Debug, Clone)]
pub struct ManualSa {
    pub tunnel: u32,
    pub direction: Direction,
    pub spi: u32,
    pub keymat: Keymat,
    pub esn: bool,
    pub replay_window: u32,
    pub initial_seq: Option<u64>,
}

pub const DEFAULT_MBUFS: u32 = 16383;
pub const DEFAULT_HANDOFF_RING: u32 = 1024;
pub const DEFAULT_DESCRIPTORS: u16 = 1024;
pub const DEFAULT_MTU: u16 = 1500;
pub const DEFAULT_TUNNEL_TTL: u8 = 64;
/// Tunnel ids travel in 30 bits of a handoff tag; this is far below.
const MAX_TUNNELS: usize = 1 << 20;
const MAX_ROUTES: usize = 1 << 20;

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
        let file: File = serde_json::from_str(text).or_else(|e| err("config", e.to_string()))?;
        validate(file)
    }

    /// The interface whose subnet holds `a`.
    pub fn interface_for(&self, a: Ipv4Addr) -> Option<&InterfaceConfig> {
        self.interfaces.iter().find(|i| i.subnet().contains(&a))
    }
}

fn parse_ip(field: &str, s: &str) -> Result<Ipv4Addr, ConfigError> {
    s.parse()
        .or_else(|_| err(field, format!("{s:?} is not an IPv4 address")))
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

fn parse_spi(field: &str, s: &SpiFile) -> Result<u32, ConfigError> {
    let v = match s {
        SpiFile::Number(n) => *n,
        SpiFile::Text(t) => {
            let t = t.trim();
            let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16),
                None => t.parse(),
            };
            r.or_else(|_| err(field, format!("{t:?} is not a number or a 0x hex string")))?
        }
    };
    // RFC 4303 section 2.1: 0 is never sent and 1-255 are reserved by IANA.
    if !(256..=u64::from(u32::MAX)).contains(&v) {
        return err(
            field,
            format!("{v:#x} is outside 0x100..0xffffffff (0-255 are reserved)"),
        );
    }
    Ok(v as u32)
}

fn validate(f: File) -> Result<Config, ConfigError> {
    let dp = &f.dataplane;
    if dp.workers.is_empty() {
        return err("dataplane.workers", "list at least one worker lcore");
    }
    for (i, w) in dp.workers.iter().enumerate() {
        if dp.workers[..i].contains(w) {
            return err(
                format!("dataplane.workers[{i}]"),
                format!("lcore {w} is listed twice"),
            );
        }
    }
    if let Some(groups) = &dp.anchor_groups {
        for (g, group) in groups.iter().enumerate() {
            if group.is_empty() {
                return err(format!("dataplane.anchor_groups[{g}]"), "empty group");
            }
            for (j, w) in group.iter().enumerate() {
                let field = format!("dataplane.anchor_groups[{g}][{j}]");
                if !dp.workers.contains(w) {
                    return err(field, format!("lcore {w} is not in dataplane.workers"));
                }
                if groups.iter().flatten().filter(|x| *x == w).count() > 1 {
                    return err(field, format!("lcore {w} is in more than one group"));
                }
            }
        }
        if let Some(w) = dp
            .workers
            .iter()
            .find(|w| !groups.iter().flatten().any(|x| x == *w))
        {
            return err(
                "dataplane.anchor_groups",
                format!("worker lcore {w} is in no group"),
            );
        }
    }
    let handoff_ring_size = dp.handoff_ring_size.unwrap_or(DEFAULT_HANDOFF_RING);
    if !(64..=65536).contains(&handoff_ring_size) || !handoff_ring_size.is_power_of_two() {
        return err(
            "dataplane.handoff_ring_size",
            "a power of two from 64 to 65536",
        );
    }
    let dataplane = Dataplane {
        eal: dp.eal.clone(),
        workers: dp.workers.clone(),
        anchor_groups: dp.anchor_groups.clone(),
        handoff_ring_size,
        mbufs: dp.mbufs.unwrap_or(DEFAULT_MBUFS),
        rx_descriptors: dp.rx_descriptors.unwrap_or(DEFAULT_DESCRIPTORS),
        tx_descriptors: dp.tx_descriptors.unwrap_or(DEFAULT_DESCRIPTORS),
        poll_sleep_us: dp.poll_sleep_us,
        crypto: dp.crypto,
    };
    if dataplane.mbufs < 1024 {
        return err("dataplane.mbufs", "at least 1024");
    }
    if dp.poll_sleep_us > 100_000 {
        return err("dataplane.poll_sleep_us", "at most 100000");
    }

    let mut interfaces: Vec<InterfaceConfig> = Vec::new();
    for (i, x) in f.interfaces.iter().enumerate() {
        let field = |n: &str| format!("interfaces[{i}].{n}");
        if x.name.is_empty() {
            return err(field("name"), "empty");
        }
        if interfaces.iter().any(|o| o.name == x.name) {
            return err(field("name"), format!("{:?} is defined twice", x.name));
        }
        if interfaces.iter().any(|o| o.port == x.port) {
            return err(
                field("port"),
                format!("port {} already has an interface", x.port),
            );
        }
        let net: Ipv4Net = x.address.parse().or_else(|_| {
            err(
                field("address"),
                format!("{:?} is not an address/length like 10.1.0.1/24", x.address),
            )
        })?;
        if net.prefix_len() == 0 || net.addr() == net.network() && net.prefix_len() < 31 {
            return err(
                field("address"),
                format!("{} is not a host address on its subnet", x.address),
            );
        }
        if interfaces
            .iter()
            .any(|o| o.subnet().contains(&net.addr()) || net.contains(&o.addr))
        {
            return err(
                field("address"),
                format!("{} overlaps another interface's subnet", x.address),
            );
        }
        let mac = x
            .mac
            .as_deref()
            .map(|m| parse_mac(&field("mac"), m))
            .transpose()?;
        let mtu = x.mtu.unwrap_or(DEFAULT_MTU);
        if !(576..=9000).contains(&mtu) {
            return err(field("mtu"), format!("{mtu} is outside 576..9000"));
        }
        interfaces.push(InterfaceConfig {
            name: x.name.clone(),
            port: x.port,
            addr: net.addr(),
            prefix_len: net.prefix_len(),
            mac,
            mtu,
        });
    }
    let on_subnet = |a: Ipv4Addr| interfaces.iter().find(|i| i.subnet().contains(&a));

    let mut neighbors: Vec<(Ipv4Addr, Mac)> = Vec::new();
    for (i, n) in f.neighbors.iter().enumerate() {
        let field = |x: &str| format!("neighbors[{i}].{x}");
        let a = parse_ip(&field("address"), &n.address)?;
        if on_subnet(a).is_none() {
            return err(
                field("address"),
                format!("{a} is not on any interface's subnet"),
            );
        }
        if neighbors.iter().any(|(o, _)| *o == a) {
            return err(field("address"), format!("{a} is listed twice"));
        }
        neighbors.push((a, parse_mac(&field("mac"), &n.mac)?));
    }

    if f.tunnels.len() > MAX_TUNNELS {
        return err("tunnels", format!("at most {MAX_TUNNELS}"));
    }
    let mut tunnels: Vec<Tunnel> = Vec::with_capacity(f.tunnels.len());
    let mut tunnel_names: HashSet<&str> = HashSet::with_capacity(f.tunnels.len());
    for (i, t) in f.tunnels.iter().enumerate() {
        let field = |x: &str| format!("tunnels[{i}].{x}");
        if t.name.is_empty() {
            return err(field("name"), "empty");
        }
        if !tunnel_names.insert(&t.name) || interfaces.iter().any(|o| o.name == t.name) {
            return err(
                field("name"),
                format!("{:?} is already the name of a tunnel or interface", t.name),
            );
        }
        let local = parse_ip(&field("local"), &t.local)?;
        if !interfaces.iter().any(|x| x.addr == local) {
            return err(
                field("local"),
                format!("{local} is not the address of any interface"),
            );
        }
        let remote = parse_ip(&field("remote"), &t.remote)?;
        if remote.is_unspecified()
            || remote.is_broadcast()
            || remote.is_multicast()
            || remote == local
        {
            return err(field("remote"), format!("{remote} cannot be a tunnel peer"));
        }
        let udp = match &t.udp_encap {
            Some(u) if u.local_port == 0 || u.remote_port == 0 => {
                return err(field("udp_encap"), "ports must be non-zero");
            }
            Some(u) => Some((u.local_port, u.remote_port)),
            None => None,
        };
        let dscp = match &t.dscp {
            None => DscpPolicy::Copy,
            Some(DscpFile::Word(w)) if w == "copy" => DscpPolicy::Copy,
            Some(DscpFile::Value(v)) if *v < 64 => DscpPolicy::Set(*v),
            Some(_) => return err(field("dscp"), "\"copy\" or a number 0..63"),
        };
        let ttl = t.ttl.unwrap_or(DEFAULT_TUNNEL_TTL);
        if ttl == 0 {
            return err(field("ttl"), "must be at least 1");
        }
        let mut selectors = Selectors::default();
        if let Some(s) = &t.traffic_selectors {
            let parse = |side: &str, list: &[String]| {
                list.iter()
                    .enumerate()
                    .map(|(j, p)| {
                        parse_prefix(&format!("tunnels[{i}].traffic_selectors.{side}[{j}]"), p)
                    })
                    .collect::<Result<Box<[Ipv4Net]>, _>>()
            };
            selectors.local = parse("local", &s.local)?;
            selectors.remote = parse("remote", &s.remote)?;
        }
        tunnels.push(Tunnel {
            name: t.name.clone(),
            id: i as u32,
            encap: TunnelEncap {
                local,
                remote,
                udp,
                df: t.df,
                dscp,
                ttl,
            },
            selectors,
        });
    }
    let tunnel_by_name: HashMap<&str, u32> =
        tunnels.iter().map(|t| (t.name.as_str(), t.id)).collect();

    if f.routes.len() > MAX_ROUTES {
        return err("routes", format!("at most {MAX_ROUTES}"));
    }
    let mut routes: Vec<Route> = Vec::with_capacity(f.routes.len());
    let mut route_by_prefix: HashMap<Ipv4Net, RouteVia> = HashMap::with_capacity(f.routes.len());
    for (i, r) in f.routes.iter().enumerate() {
        let prefix = parse_prefix(&format!("routes[{i}].prefix"), &r.prefix)?;
        if route_by_prefix.contains_key(&prefix) {
            return err(
                format!("routes[{i}].prefix"),
                format!("{prefix} is routed twice"),
            );
        }
        let via = if let Some(&t) = tunnel_by_name.get(r.via.as_str()) {
            RouteVia::Tunnel(t)
        } else {
            let field = format!("routes[{i}].via");
            let a: Ipv4Addr = r.via.parse().or_else(|_| {
                err(
                    &field,
                    format!("{:?} is neither a tunnel name nor an IPv4 address", r.via),
                )
            })?;
            let Some(ifc) = on_subnet(a) else {
                return err(
                    field,
                    format!("next hop {a} is not on any interface's subnet"),
                );
            };
            if interfaces.iter().any(|x| x.addr == a) {
                return err(field, format!("next hop {a} is our own address"));
            }
            RouteVia::Gateway {
                port: ifc.port,
                via: a,
            }
        };
        route_by_prefix.insert(prefix, via);
        routes.push(Route { prefix, via });
    }

    // The peer of every tunnel must be reachable without going through a tunnel. Many tunnels
    // share a peer: look each peer up once, by longest prefix first.
    let mut reachable_peers: HashMap<Ipv4Addr, bool> = HashMap::new();
    for (i, t) in tunnels.iter().enumerate() {
        let r = t.encap.remote;
        let reachable = *reachable_peers.entry(r).or_insert_with(|| {
            let best = (0..=32u8).rev().find_map(|len| {
                let net = Ipv4Net::new(r, len).ok()?.trunc();
                route_by_prefix.get(&net).map(|via| (len, *via))
            });
            let connected = on_subnet(r).map(|x| x.prefix_len);
            match (best, connected) {
                (Some((len, _)), Some(c)) if c >= len => true,
                (Some((_, via)), _) => matches!(via, RouteVia::Gateway { .. }),
                (None, c) => c.is_some(),
            }
        });
        if !reachable {
            return err(
                format!("tunnels[{i}].remote"),
                format!("no route to {r} except through a tunnel"),
            );
        }
    }

    let mut manual_sas: Vec<ManualSa> = Vec::new();
    let mut in_spis = HashSet::new();
    let mut out_tunnels = HashSet::new();
    for (i, s) in f.manual_sas.iter().enumerate() {
        let field = |x: &str| format!("manual_sas[{i}].{x}");
        let Some(&tunnel) = tunnel_by_name.get(s.tunnel.as_str()) else {
            return err(field("tunnel"), format!("no tunnel named {:?}", s.tunnel));
        };
        let spi = parse_spi(&field("spi"), &s.spi)?;
        match s.direction {
            Direction::In if !in_spis.insert(spi) => {
                return err(field("spi"), format!("inbound SPI {spi:#x} is used twice"));
            }
            Direction::Out if !out_tunnels.insert(tunnel) => {
                return err(
                    field("tunnel"),
                    format!("{} already has an outbound SA", s.tunnel),
                );
            }
            _ => {}
        }
        let key = match &s.key.0 {
            Ok(k) => k.clone(),
            Err(e) => return err(field("key"), *e),
        };
        let want = s.algorithm.keymat_len();
        if key.len() != want {
            return err(
                field("key"),
                format!(
                    "{} needs {want} bytes (key || 4-byte salt), got {}",
                    s.algorithm.name(),
                    key.len()
                ),
            );
        }
        let keymat = Keymat::new(s.algorithm, key).or_else(|e| err(field("key"), e.to_string()))?;
        let replay_window = match (s.direction, s.replay_window) {
            (Direction::Out, Some(_)) => {
                return err(field("replay_window"), "applies to inbound SAs only")
            }
            (_, Some(w)) if w > MAX_WINDOW => {
                return err(field("replay_window"), format!("{w} is above {MAX_WINDOW}"))
            }
            (_, Some(w)) => w,
            (_, None) => DEFAULT_WINDOW,
        };
        if let Some(q) = s.initial_seq {
            if !s.esn && q > u64::from(u32::MAX) {
                return err(field("initial_seq"), "above 2^32 - 1 without ESN");
            }
        }
        manual_sas.push(ManualSa {
            tunnel,
            direction: s.direction,
            spi,
            keymat,
            esn: s.esn,
            replay_window,
            initial_seq: s.initial_seq,
        });
    }

    Ok(Config {
        dataplane,
        interfaces,
        neighbors,
        tunnels,
        routes,
        manual_sas,
    })
}

#[cfg(test)]
mod tests;
