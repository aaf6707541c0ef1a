//! What the load generator learns from the gateway's own configuration file, the single
//! source of truth: the memif links, both sides' addresses and MACs, and per tunnel the
//! destination it routes and the SAs, mirrored so that the load generator plays the far
//! gateway.
//!
//! The file is read and validated by the gateway's own parser (`dataplane::config`), so the
//! load generator sees exactly what the gateway sees. Keys stay in `KeyMaterial`, which is
//! wiped when dropped.

use channel::{DfPolicy, Dscp, Name};
use dataplane::config::{Config, ManualSa, RouteVia};
use dataplane::counters;
use dataplane::esp::crypto::{Backend, CryptoError};
use dataplane::esp::outer::TunnelEncap;
use dataplane::esp::replay::ReplayWindow;
use dataplane::sa::{Direction, InboundParams, InboundSa, OutboundParams, OutboundSa};
use dataplane::wire::ethernet::Mac;
use ipnet::Ipv4Net;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// One memif link as the gateway (role=server) declares it in its EAL arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemifLink {
    pub socket: String,
    pub id: u32,
    /// The `socket-abstract` devarg, copied when the gateway sets it.
    pub socket_abstract: Option<String>,
}

/// One side of the gateway (LAN or WAN) and the load generator port facing it.
#[derive(Debug, Clone)]
pub struct Side {
    pub name: String,
    pub gw_mac: Mac,
    pub gw_addr: Ipv4Addr,
    pub mtu: u16,
    /// The load generator's address and MAC: a static neighbor of the gateway, since the load
    /// generator answers no ARP.
    pub my_addr: Ipv4Addr,
    pub my_mac: Mac,
    pub link: MemifLink,
}

/// A tunnel the load generator sends through.
#[derive(Debug, Clone)]
pub struct TunnelPlan {
    pub name: String,
    /// The inner destination the gateway routes into this tunnel (encrypt direction), and the
    /// inner source of what comes out of it (decrypt direction).
    pub dest: Ipv4Addr,
    /// The gateway's side of the tunnel.
    pub encap: TunnelEncap,
    pub gw_out: Option<ManualSa>,
    pub gw_in: Option<ManualSa>,
}

#[derive(Debug)]
pub struct Setup {
    pub lan: Side,
    pub wan: Side,
    /// Tunnels with a route, in configuration order.
    pub tunnels: Vec<TunnelPlan>,
}

/// Reads the gateway's configuration; `lan`/`wan` name its interfaces facing our ports 0 and 1.
pub fn load(path: &Path, lan: &str, wan: &str) -> Result<Setup, String> {
    let cfg = Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?;
    from_config(&cfg, lan, wan)
}

pub fn from_config(cfg: &Config, lan: &str, wan: &str) -> Result<Setup, String> {
    let vdevs = vdevs(&cfg.dataplane.eal);
    let lan = side(cfg, &vdevs, lan, None)?;
    if let Some(t) = cfg.tunnels.iter().find(|t| t.encap.remote.is_ipv6()) {
        return Err(format!(
            "tunnel {}: IPv6 endpoints: the load generator plays IPv4 peers only",
            t.name
        ));
    }
    // Our WAN address is the tunnels' peer address.
    let peer = cfg.tunnels.first().and_then(|t| ipv4(t.encap.remote));
    let wan = side(cfg, &vdevs, wan, peer)?;

    // The first route into each tunnel.
    let mut dest: HashMap<Name, Ipv4Net> = HashMap::new();
    for r in &cfg.routes {
        if let RouteVia::Tunnel(t) = r.via {
            dest.entry(t).or_insert(r.prefix);
        }
    }
    let mut plans: Vec<TunnelPlan> = cfg
        .tunnels
        .iter()
        .filter_map(|t| {
            dest.get(&t.name).map(|d| TunnelPlan {
                name: t.name.to_string(),
                dest: first_host(*d),
                encap: t.encap,
                gw_out: None,
                gw_in: None,
            })
        })
        .collect();
    let by_name: HashMap<String, usize> = plans
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.clone(), i))
        .collect();
    for sa in &cfg.manual_sas {
        let Some(i) = by_name.get(sa.tunnel.as_str()) else {
            continue;
        };
        let p = &mut plans[*i];
        match sa.direction {
            Direction::Out => p.gw_out = Some(sa.clone()),
            // Several inbound SAs (a rekey): the first one is used.
            Direction::In => {
                p.gw_in.get_or_insert_with(|| sa.clone());
            }
        }
    }
    // Every peer address we play must be a static neighbor on the WAN subnet, or the gateway
    // would ARP for it and drop (`no_neighbor`).
    let wan_net = subnet(wan.gw_addr, cfg, &wan.name)?;
    let mut seen = HashSet::new();
    for p in &plans {
        let Some(r) = ipv4(p.encap.remote) else {
            continue;
        };
        if seen.insert(r) {
            if !wan_net.contains(&r) {
                return Err(format!(
                    "tunnel {}: remote {r} is not on {}'s subnet {wan_net}: the load generator plays the peer gateway there",
                    p.name, wan.name
                ));
            }
            if !cfg.neighbors.iter().any(|(a, _)| *a == r) {
                return Err(format!(
                    "tunnel {}: remote {r} needs a static neighbor entry: the load generator answers no ARP",
                    p.name
                ));
            }
        }
    }
    Ok(Setup {
        lan,
        wan,
        tunnels: plans,
    })
}

fn subnet(addr: Ipv4Addr, cfg: &Config, name: &str) -> Result<Ipv4Net, String> {
    cfg.interface_for(addr)
        .map(|i| i.subnet())
        .ok_or_else(|| format!("interface {name}: no subnet"))
}

/// The address we send to for a routed prefix: the address itself for a /32 or /31, else the
/// first host.
fn first_host(p: Ipv4Net) -> Ipv4Addr {
    if p.prefix_len() >= 31 {
        p.network()
    } else {
        Ipv4Addr::from(u32::from(p.network()).wrapping_add(1))
    }
}

fn side(
    cfg: &Config,
    vdevs: &[String],
    name: &str,
    peer: Option<Ipv4Addr>,
) -> Result<Side, String> {
    let ifc = cfg
        .interfaces
        .iter()
        .find(|i| i.name.as_str() == name)
        .ok_or_else(|| format!("the gateway has no interface named {name:?}"))?;
    let gw_mac = ifc.mac.ok_or_else(|| {
        format!("interface {name}: set its \"mac\": the load generator sends to it and does no ARP")
    })?;
    let net = ifc.subnet();
    let neighbor = match peer {
        Some(p) => cfg.neighbors.iter().find(|(a, _)| *a == p),
        None => cfg.neighbors.iter().find(|(a, _)| net.contains(a)),
    };
    let &(my_addr, my_mac) = neighbor.ok_or_else(|| match peer {
        Some(p) => format!("no static neighbor for the tunnel peer {p}: it is the load generator's {name} address"),
        None => format!("no static neighbor on {name}'s subnet {net}: the load generator takes the first one as its own address"),
    })?;
    let vdev = vdevs.get(usize::from(ifc.port)).ok_or_else(|| {
        format!(
            "interface {name} is DPDK port {}, but the gateway's EAL arguments have {} --vdev",
            ifc.port,
            vdevs.len()
        )
    })?;
    let link = memif(vdev).ok_or_else(|| {
        format!(
            "interface {name} is port {} = {vdev:?}: the load generator connects over net_memif only",
            ifc.port
        )
    })?;
    Ok(Side {
        name: name.to_string(),
        gw_mac,
        gw_addr: ifc.addr,
        mtu: ifc.mtu,
        my_addr,
        my_mac,
        link,
    })
}

/// The `--vdev` values in EAL order (with `--no-pci`, port ids follow this order).
fn vdevs(eal: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = eal.iter();
    while let Some(a) = it.next() {
        if a == "--vdev" {
            if let Some(v) = it.next() {
                out.push(v.clone());
            }
        } else if let Some(v) = a.strip_prefix("--vdev=") {
            out.push(v.to_string());
        }
    }
    out
}

/// Parses `net_memifN,role=server,socket=PATH,id=I,...`.
fn memif(vdev: &str) -> Option<MemifLink> {
    let mut parts = vdev.split(',');
    if !parts.next()?.starts_with("net_memif") {
        return None;
    }
    let mut link = MemifLink {
        // The PMD's default socket.
        socket: "/run/memif.sock".to_string(),
        id: 0,
        socket_abstract: None,
    };
    for kv in parts {
        match kv.split_once('=') {
            Some(("socket", v)) => link.socket = v.to_string(),
            Some(("id", v)) => link.id = v.parse().ok()?,
            Some(("socket-abstract", v)) => link.socket_abstract = Some(v.to_string()),
            _ => {}
        }
    }
    Some(link)
}

/// Our inbound SA for what the gateway sends through `t` (its outbound SA, mirrored). Replay
/// checking is off: we only decrypt samples.
pub fn mirror_gw_out(t: &TunnelPlan) -> Option<Result<InboundSa, CryptoError>> {
    let sa = t.gw_out.as_ref()?;
    let params = InboundParams {
        tunnel: 0,
        tcp_mss: 0,
        spi: sa.spi,
        esn: sa.esn,
        local: ipv4(t.encap.remote)?,
        udp_encap: t.encap.udp.is_some(),
        selectors: Default::default(),
        soft: Default::default(),
        hard: Default::default(),
    };
    let window = ReplayWindow::new(0, sa.esn);
    Some(InboundSa::new(
        params,
        &sa.keys,
        window,
        counters::standalone(),
        &Backend::Ring,
    ))
}

/// Our outbound SA for what the gateway receives through `t` (its inbound SA, mirrored).
pub fn mirror_gw_in(t: &TunnelPlan) -> Option<Result<OutboundSa, CryptoError>> {
    let sa = t.gw_in.as_ref()?;
    let encap = TunnelEncap {
        local: t.encap.remote,
        remote: t.encap.local,
        udp: t
            .encap
            .udp
            .map(|(gw_local, gw_remote)| (gw_remote, gw_local)),
        df: DfPolicy::Copy,
        dscp: Dscp::Copy,
        ttl: 64,
        mtu: None,
    };
    let params = OutboundParams {
        // The gateway has already seen up to initial_seq: continue above it.
        first_seq: sa.initial_seq.map_or(1, |q| q.saturating_add(1)),
        ..OutboundParams::new(sa.spi, sa.esn, encap)
    };
    Some(OutboundSa::new(
        params,
        &sa.keys,
        counters::standalone(),
        &Backend::Ring,
    ))
}

/// An IPv4 tunnel endpoint (`from_config` refuses IPv6 ones).
fn ipv4(a: IpAddr) -> Option<Ipv4Addr> {
    match a {
        IpAddr::V4(a) => Some(a),
        IpAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f10111213";

    fn config(eal_lan: &str) -> String {
        format!(
            r#"{{
  "dataplane": {{"eal": ["--vdev", "{eal_lan}", "--vdev=net_memif1,role=server,socket=/tmp/w.sock,id=3"], "workers": [1]}},
  "interfaces": [{{"name": "lan0", "port": 0, "address": "10.1.0.1/16", "mac": "02:00:00:00:01:01"}},
                 {{"name": "wan0", "port": 1, "address": "192.0.2.1/24", "mac": "02:00:00:00:02:01"}}],
  "neighbors": [{{"address": "10.1.0.10", "mac": "02:00:00:00:01:10"}}, {{"address": "192.0.2.2", "mac": "02:00:00:00:02:02"}}],
  "tunnels": [{{"name": "st0.0", "local": "192.0.2.1", "remote": "192.0.2.2"}},
              {{"name": "st0.1", "local": "192.0.2.1", "remote": "192.0.2.2", "udp_encap": {{}}}},
              {{"name": "st0.2", "local": "192.0.2.1", "remote": "192.0.2.2"}}],
  "routes": [{{"prefix": "10.128.0.0/32", "via": "st0.0"}}, {{"prefix": "10.2.0.0/24", "via": "st0.1"}}],
  "manual_sas": [{{"tunnel": "st0.0", "direction": "out", "spi": "0x100000", "algorithm": "aes-128-gcm", "key": "{KEY}"}},
                 {{"tunnel": "st0.0", "direction": "in", "spi": "0x200000", "algorithm": "aes-128-gcm", "key": "{KEY}", "replay_window": 0}},
                 {{"tunnel": "st0.1", "direction": "out", "spi": 4096, "algorithm": "aes-128-gcm", "key": "{KEY}", "esn": true}}]
}}"#
        )
    }

    #[test]
    fn learns_links_sides_and_tunnels() {
        let cfg = Config::parse(&config(
            "net_memif0,role=server,socket=/tmp/l.sock,id=0,socket-abstract=no",
        ))
        .unwrap();
        let s = from_config(&cfg, "lan0", "wan0").unwrap();
        assert_eq!(s.lan.link.socket, "/tmp/l.sock");
        assert_eq!(s.lan.link.socket_abstract.as_deref(), Some("no"));
        assert_eq!(
            (s.wan.link.socket.as_str(), s.wan.link.id),
            ("/tmp/w.sock", 3)
        );
        assert_eq!(s.lan.my_addr, Ipv4Addr::new(10, 1, 0, 10));
        assert_eq!(s.wan.my_addr, Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(s.wan.gw_mac.to_string(), "02:00:00:00:02:01");
        // st0.2 has no route: not usable.
        assert_eq!(s.tunnels.len(), 2);
        assert_eq!(s.tunnels[0].dest, Ipv4Addr::new(10, 128, 0, 0));
        assert_eq!(s.tunnels[1].dest, Ipv4Addr::new(10, 2, 0, 1));
        assert!(s.tunnels[0].gw_out.is_some() && s.tunnels[0].gw_in.is_some());
        assert!(s.tunnels[1].gw_in.is_none());
        let inb = mirror_gw_out(&s.tunnels[1]).unwrap().unwrap();
        assert!(inb.udp_encap && inb.crypto.esn && inb.crypto.spi == 4096);
        let out = mirror_gw_in(&s.tunnels[0]).unwrap().unwrap();
        assert_eq!(out.remote(), Ipv4Addr::new(192, 0, 2, 1));
        assert!(mirror_gw_in(&s.tunnels[1]).is_none());
    }

    #[test]
    fn refuses_what_it_cannot_drive() {
        let cfg = Config::parse(&config("net_af_packet0,iface=x")).unwrap();
        let e = from_config(&cfg, "lan0", "wan0").unwrap_err();
        assert!(e.contains("net_memif only"), "{e}");
        let cfg = Config::parse(&config("net_memif0,socket=/tmp/l.sock")).unwrap();
        let e = from_config(&cfg, "lan", "wan0").unwrap_err();
        assert!(e.contains("no interface named \"lan\""), "{e}");
    }

    #[test]
    fn memif_devargs() {
        assert_eq!(memif("net_pcap0,rx_pcap=x"), None);
        assert_eq!(memif("net_memif0,id=x"), None);
        let l = memif("net_memif7").unwrap();
        assert_eq!((l.socket.as_str(), l.id), ("/run/memif.sock", 0));
    }
}
