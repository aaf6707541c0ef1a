//! A valid configuration as the plain-data changes that build it, in an order in which each
//! applies: interfaces, neighbors, tunnels, routes, then SAs. Loading the file in standalone
//! mode sends exactly these, one by one, through the same path the control process uses.

use super::{Config, PolicyThen, RouteVia};
use channel::Direction;
use channel::{
    Change, InboundSaSpec, InterfaceSpec, OutboundSaSpec, PolicyAction, PolicySpec,
    RouteVia as Via, SaSpec, TunnelSpec,
};

pub fn changes(cfg: &Config) -> Vec<Change> {
    let mut c = Vec::with_capacity(
        cfg.interfaces.len()
            + cfg.neighbors.len()
            + cfg.neighbors6.len()
            + cfg.tunnels.len()
            + cfg.routes.len()
            + cfg.routes6.len()
            + cfg.manual_sas.len(),
    );
    for i in &cfg.interfaces {
        c.push(Change::SetInterface(InterfaceSpec {
            name: i.name,
            port: i.port,
            addr: i.addr,
            prefix_len: i.prefix_len,
            ipv6: i.ipv6,
            mac: i.mac.map(|m| m.0),
            mtu: i.mtu,
        }));
    }
    for &(addr, mac) in &cfg.neighbors {
        c.push(Change::SetNeighbor {
            addr: addr.into(),
            mac: mac.0,
        });
    }
    for &(addr, mac) in &cfg.neighbors6 {
        c.push(Change::SetNeighbor {
            addr: addr.into(),
            mac: mac.0,
        });
    }
    for t in &cfg.tunnels {
        c.push(Change::SetTunnel(TunnelSpec {
            name: t.name,
            local: t.encap.local,
            remote: t.encap.remote,
            // `remote: "%any"`: a dial-up peer's, learned by IKE.
            dynamic: t.encap.remote.is_unspecified(),
            tcp_mss: cfg.tcp_mss_ipsec_vpn,
            mtu: t.encap.mtu,
            udp: t.encap.udp,
            df: t.encap.df,
            dscp: t.encap.dscp,
            ttl: t.encap.ttl,
            local_selectors: t.local_selectors.clone(),
            remote_selectors: t.remote_selectors.clone(),
            local_selectors6: Box::new(t.local_selectors6.clone()),
            remote_selectors6: Box::new(t.remote_selectors6.clone()),
        }));
    }
    for r in &cfg.routes {
        let via = match r.via {
            RouteVia::Tunnel(name) => Via::Tunnel(name),
            RouteVia::Gateway { via, .. } => Via::Gateway(via.into()),
        };
        c.push(Change::SetRoute {
            prefix: r.prefix.into(),
            via,
        });
    }
    for r in &cfg.routes6 {
        let via = match r.via {
            RouteVia::Tunnel(name) => Via::Tunnel(name),
            RouteVia::Gateway { via, .. } => Via::Gateway(via.into()),
        };
        c.push(Change::SetRoute {
            prefix: r.prefix.into(),
            via,
        });
    }
    for (position, p) in cfg.policies.iter().enumerate() {
        c.push(Change::SetPolicy(PolicySpec {
            name: p.name,
            position: position as u32,
            src: p.source.clone(),
            dst: p.destination.clone(),
            src6: Box::new(p.source6.clone()),
            dst6: Box::new(p.destination6.clone()),
            protocol: p.protocol,
            src_ports: p.source_ports,
            dst_ports: p.destination_ports,
            action: match p.then {
                PolicyThen::Permit => PolicyAction::Permit,
                PolicyThen::Deny => PolicyAction::Deny,
                // Into the tunnel the policy made (its child of the VPN keys it).
                PolicyThen::IpsecVpn(_) => PolicyAction::Tunnel(p.name),
            },
        }));
    }
    for s in &cfg.manual_sas {
        let sa = SaSpec {
            tunnel: s.tunnel,
            spi: s.spi,
            keys: s.keys.clone(),
            esn: s.esn,
            soft: s.soft,
            hard: s.hard,
        };
        c.push(match s.direction {
            Direction::Out => Change::SetOutboundSa(OutboundSaSpec {
                sa,
                first_seq: s.initial_seq.unwrap_or(1),
            }),
            Direction::In => Change::SetInboundSa(InboundSaSpec {
                sa,
                replay_window: s.replay_window,
                highest_seen: s.initial_seq.unwrap_or(0),
                idle_after: None,
            }),
        });
    }
    c
}
