//! Turns a validated configuration into the `Command`s that build each worker's state, so that
//! start-up and later changes (from the control process) take the same path.
//!
//! Every worker learns the interfaces, routes, neighbors and which worker owns each tunnel and
//! inbound SPI; only a tunnel's anchor worker (see `anchor`) receives its SAs.

use crate::anchor::{Anchors, Peer, Placement};
use crate::config::{Config, ConfigError, RouteVia};
use crate::counters::SaCounters;
use crate::esp::crypto::{Algorithm, Backend, CryptoError};
use crate::forward::{Command, Interface, Target};
use crate::sa::{Direction, InboundParams, InboundSa, OutboundSa};
use crate::wire::ethernet::Mac;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// What the main lcore keeps about an SA: names and settings for display, its anchor, and the
/// counters the owning worker writes. No keys.
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
    /// The worker lcore that owns the SA, and its anchor group.
    pub worker: u32,
    pub group: usize,
    pub counters: Arc<SaCounters>,
}

pub struct Provision {
    pub interfaces: Vec<Interface>,
    /// By worker index (the order of `workers`).
    pub commands: Vec<Vec<Command>>,
    pub sas: Vec<SaInfo>,
}

/// Builds the start-up commands for the worker lcores `workers`, anchoring every tunnel in
/// `anchors` and making each SA's cipher on `backend`. `port_mac` gives a port's own MAC for
/// interfaces that do not set one.
pub fn build(
    cfg: &Config,
    port_mac: impl Fn(u16) -> Mac,
    anchors: &mut Anchors,
    workers: &[u32],
    backend: &Backend,
) -> Result<Provision, ConfigError> {
    let interfaces: Vec<Interface> = cfg
        .interfaces
        .iter()
        .map(|i| Interface {
            port: i.port,
            mac: i.mac.unwrap_or_else(|| port_mac(i.port)),
            addr: i.addr,
            prefix_len: i.prefix_len,
            mtu: i.mtu,
        })
        .collect();

    // Anchor every tunnel: (worker index, placement) by tunnel id.
    let mut owners: Vec<(u16, Placement)> = Vec::new();
    for t in &cfg.tunnels {
        let p = anchors.place(
            t.id,
            Peer::Site {
                local: t.encap.local,
                remote: t.encap.remote,
            },
        );
        let Some(w) = workers.iter().position(|&l| l == p.worker) else {
            return Err(ConfigError {
                field: "dataplane.anchor_groups".into(),
                reason: format!("lcore {} is not a worker", p.worker),
            });
        };
        owners.push((w as u16, p));
    }

    // What every worker needs to know. Built once per worker, as commands own their data.
    let shared = || {
        let mut c = Vec::new();
        for (i, ifc) in interfaces.iter().zip(&cfg.interfaces) {
            c.push(Command::SetInterface(*i));
            c.push(Command::AddRoute {
                prefix: ifc.subnet(),
                target: Target::Connected { port: i.port },
            });
            c.push(Command::AddRoute {
                prefix: Ipv4Net::from(i.addr),
                target: Target::Local,
            });
        }
        for r in &cfg.routes {
            let target = match r.via {
                RouteVia::Tunnel(tunnel) => Target::Tunnel { tunnel },
                RouteVia::Gateway { port, via } => Target::Gateway { port, via },
            };
            c.push(Command::AddRoute {
                prefix: r.prefix,
                target,
            });
        }
        for &(addr, mac) in &cfg.neighbors {
            c.push(Command::SetNeighbor {
                addr,
                mac,
                permanent: true,
            });
        }
        for t in &cfg.tunnels {
            if let Some((local_port, _)) = t.encap.udp {
                c.push(Command::AddNattPort(local_port));
            }
            c.push(Command::SetTunnelOwner {
                tunnel: t.id,
                worker: owners[t.id as usize].0,
            });
        }
        for s in cfg
            .manual_sas
            .iter()
            .filter(|s| s.direction == Direction::In)
        {
            c.push(Command::SetSpiOwner {
                spi: s.spi,
                worker: owners[s.tunnel as usize].0,
            });
        }
        c
    };
    let mut commands: Vec<Vec<Command>> = (0..workers.len()).map(|_| shared()).collect();

    let mut sas = Vec::new();
    for (i, s) in cfg.manual_sas.iter().enumerate() {
        let t = &cfg.tunnels[s.tunnel as usize];
        let (w, placement) = owners[s.tunnel as usize];
        let counters = Arc::new(SaCounters::default());
        let key_err = |e: CryptoError| ConfigError {
            field: format!("manual_sas[{i}].key"),
            reason: e.to_string(),
        };
        let cmd = match s.direction {
            Direction::Out => {
                let mut sa = OutboundSa::with_backend(
                    s.spi,
                    s.esn,
                    t.id,
                    &s.keymat,
                    t.encap,
                    counters.clone(),
                    backend,
                )
                .map_err(key_err)?;
                if let Some(q) = s.initial_seq {
                    sa.set_last_seq(q.saturating_sub(1));
                }
                Command::SetOutboundSa(Box::new(sa))
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
                let mut sa = InboundSa::with_backend(params, &s.keymat, counters.clone(), backend)
                    .map_err(key_err)?;
                if let Some(q) = s.initial_seq {
                    sa.replay.set_top(q);
                }
                Command::AddInboundSa(Box::new(sa))
            }
        };
        commands[usize::from(w)].push(cmd);
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
            worker: placement.worker,
            group: placement.group,
            counters,
        });
    }
    Ok(Provision {
        interfaces,
        commands,
        sas,
    })
}
