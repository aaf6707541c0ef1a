//! Turns a validated configuration into the `Command`s that build a worker's state, so that
//! start-up and later changes (from the control process) take the same path.

use crate::config::{Config, ConfigError, RouteVia};
use crate::counters::SaCounters;
use crate::esp::crypto::Algorithm;
use crate::forward::{Command, Interface, Target};
use crate::sa::{Direction, InboundParams, InboundSa, OutboundSa};
use crate::wire::ethernet::Mac;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What the main lcore keeps about an SA: names and settings for display, and the counters
/// the owning worker writes. No keys.
#[derive(Debug, Clone)]
pub struct SaInfo {
    pub spi: u32,
    pub direction: Direction,
    pub tunnel: String,
    pub algorithm: Algorithm,
    pub esn: bool,
    pub replay_window: u32,
    pub local: Ipv4Addr,
    pub remote: Ipv4Addr,
    pub udp_encap: Option<(u16, u16)>,
    pub counters: Arc<SaCounters>,
}

pub struct Provision {
    pub interfaces: Vec<Interface>,
    pub commands: Vec<Command>,
    pub sas: Vec<SaInfo>,
}

/// Builds the start-up commands. `port_mac` gives a port's own MAC for interfaces that do
/// not set one.
pub fn build(cfg: &Config, port_mac: impl Fn(u16) -> Mac) -> Result<Provision, ConfigError> {
    let mut commands = Vec::new();
    let mut interfaces = Vec::new();
    for i in &cfg.interfaces {
        let iface = Interface {
            port: i.port,
            mac: i.mac.unwrap_or_else(|| port_mac(i.port)),
            addr: i.addr,
            prefix_len: i.prefix_len,
            mtu: i.mtu,
        };
        interfaces.push(iface);
        commands.push(Command::SetInterface(iface));
        commands.push(Command::AddRoute {
            prefix: i.subnet(),
            target: Target::Connected { port: i.port },
        });
        commands.push(Command::AddRoute {
            prefix: Ipv4Net::from(i.addr),
            target: Target::Local,
        });
    }
    for r in &cfg.routes {
        let target = match r.via {
            RouteVia::Tunnel(tunnel) => Target::Tunnel { tunnel },
            RouteVia::Gateway { port, via } => Target::Gateway { port, via },
        };
        commands.push(Command::AddRoute {
            prefix: r.prefix,
            target,
        });
    }
    for &(addr, mac) in &cfg.neighbors {
        commands.push(Command::SetNeighbor {
            addr,
            mac,
            permanent: true,
        });
    }
    for t in &cfg.tunnels {
        if let Some((local_port, _)) = t.encap.udp {
            commands.push(Command::AddNattPort(local_port));
        }
    }
    let mut sas = Vec::new();
    for (i, s) in cfg.manual_sas.iter().enumerate() {
        let t = &cfg.tunnels[usize::from(s.tunnel)];
        let counters = Arc::new(SaCounters::default());
        let key_err = |e: crate::esp::crypto::CryptoError| ConfigError {
            field: format!("manual_sas[{i}].key"),
            reason: e.to_string(),
        };
        match s.direction {
            Direction::Out => {
                let mut sa =
                    OutboundSa::new(s.spi, s.esn, t.id, &s.keymat, t.encap, counters.clone())
                        .map_err(key_err)?;
                if let Some(q) = s.initial_seq {
                    sa.set_last_seq(q.saturating_sub(1));
                }
                commands.push(Command::SetOutboundSa(Box::new(sa)));
            }
            Direction::In => {
                let params = InboundParams {
                    spi: s.spi,
                    esn: s.esn,
                    tunnel: t.id,
                    local: t.encap.local,
                    udp_encap: t.encap.udp.is_some(),
                    replay_window: s.replay_window,
                    selectors: t.selectors.clone(),
                };
                let mut sa =
                    InboundSa::new(params, &s.keymat, counters.clone()).map_err(key_err)?;
                if let Some(q) = s.initial_seq {
                    sa.replay.set_top(q);
                }
                commands.push(Command::AddInboundSa(Box::new(sa)));
            }
        }
        sas.push(SaInfo {
            spi: s.spi,
            direction: s.direction,
            tunnel: t.name.clone(),
            algorithm: s.keymat.algorithm(),
            esn: s.esn,
            replay_window: if s.direction == Direction::In {
                s.replay_window
            } else {
                0
            },
            local: t.encap.local,
            remote: t.encap.remote,
            udp_encap: t.encap.udp,
            counters,
        });
    }
    Ok(Provision {
        interfaces,
        commands,
        sas,
    })
}
