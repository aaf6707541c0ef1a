//! Tunnels: checked, given an id, anchored to a worker (`anchor`), and told to every worker;
//! deleted with their SAs once no route points at them.

use super::view::{SaKey, TunnelView};
use super::{refuse, ChangeError, ControlState, TunnelRec};
use crate::anchor::Peer;
use crate::esp::outer::TunnelEncap;
use crate::forward::handoff::MAX_TUNNEL_ID;
use crate::forward::{Target, Target6, WorkerCommand as Cmd, WorkerIndex};
use crate::sa::Selectors;
use channel::{Name, TunnelSpec};
use ipnet::IpNet;
use std::net::IpAddr;

impl ControlState {
    /// Our end one of our interfaces' addresses (IPv4, or a global IPv6 one), the peer's a
    /// unicast address of its family (IPv4 unspecified: a dial-up peer not known yet).
    fn check_endpoints(&self, spec: &TunnelSpec) -> Result<(), String> {
        let bad_peer = match (spec.local, spec.remote) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                if !self.interfaces.values().any(|i| i.addr == l) {
                    return Err(format!("local {l} is not the address of any interface"));
                }
                (r.is_unspecified() && !spec.dynamic) || r.is_broadcast() || r == l
            }
            (IpAddr::V6(l), IpAddr::V6(r)) => {
                if !self
                    .interfaces
                    .values()
                    .any(|i| i.ipv6.is_some_and(|n| n.addr() == l))
                {
                    return Err(format!(
                        "local {l} is not the IPv6 address of any interface"
                    ));
                }
                (r.is_unspecified() && !spec.dynamic)
                    || crate::wire::ipv6::is_link_local(&r)
                    || r == l
            }
            (l, r) => return Err(format!("{l} and {r} are of different families")),
        };
        if bad_peer || spec.remote.is_multicast() {
            return Err(format!("{} cannot be a tunnel peer", spec.remote));
        }
        Ok(())
    }

    /// Asks for the peer's MAC if it is on one of our subnets.
    fn want_peer(&mut self, remote: IpAddr) {
        let on_link = match remote {
            r if r.is_unspecified() => None,
            IpAddr::V4(r) => self.on_subnet(r),
            IpAddr::V6(r) => self.on_subnet6(&r),
        };
        if let Some(i) = on_link {
            self.want(i.port, remote);
        }
    }

    pub(super) fn set_tunnel(&mut self, spec: TunnelSpec, g: u64) -> Result<(), ChangeError> {
        let what = format!("tunnel {}", spec.name);
        if let Err(why) = self.check_endpoints(&spec) {
            return refuse(what, why);
        }
        if spec.ttl == 0 {
            return refuse(what, "ttl must be at least 1");
        }
        if matches!(spec.dscp, channel::Dscp::Set(d) if d > 63) {
            return refuse(what, "dscp must be 0..63");
        }
        if spec.udp.is_some_and(|(l, r)| l == 0 || r == 0) {
            return refuse(what, "NAT-T ports must be non-zero");
        }
        let selectors = Selectors {
            local: prefixes(&what, &spec.local_selectors)?,
            remote: prefixes(&what, &spec.remote_selectors)?,
            local6: prefixes(&what, &spec.local_selectors6)?,
            remote6: prefixes(&what, &spec.remote_selectors6)?,
        };
        let encap = TunnelEncap {
            local: spec.local,
            remote: spec.remote,
            udp: spec.udp,
            df: spec.df,
            dscp: spec.dscp,
            ttl: spec.ttl,
            mtu: spec.mtu,
        };
        if let Some(t) = self.tunnels.get(&spec.name) {
            if t.spec == spec {
                return Ok(());
            }
            // A dial-up peer's address may change (its anchor has no affinity to it); any
            // other tunnel's gateways are what it is anchored by.
            let moved = t.encap.remote != spec.remote && !(t.spec.dynamic && spec.dynamic);
            if t.encap.local != spec.local || t.spec.dynamic != spec.dynamic || moved {
                return refuse(
                    what,
                    "its gateways cannot change: delete it and add it again",
                );
            }
            // Its SAs copied its selectors and whether (and on which of our ports) ESP is in
            // UDP; the outer header's other fields (the peer's NAT-T port, a dial-up peer's
            // address, DF, DSCP, TTL) follow live, as when a NAT rebinds the peer.
            let has_sas = t.outbound.is_some() || !t.inbound.is_empty();
            let copied = |s: &TunnelSpec| {
                (
                    (s.local_selectors.clone(), s.remote_selectors.clone()),
                    (s.local_selectors6.clone(), s.remote_selectors6.clone()),
                    s.udp.map(|u| u.0),
                )
            };
            if has_sas && copied(&t.spec) != copied(&spec) {
                return refuse(what, "its SAs are built from it: delete them first");
            }
            let (old, old_remote, id, owner) = (t.spec.udp, t.encap.remote, t.id, t.owner);
            let mss_changed = t.spec.tcp_mss != spec.tcp_mss;
            let spis: Vec<u32> = t.inbound.iter().copied().collect();
            if mss_changed {
                let tcp_mss = spec.tcp_mss.unwrap_or(0);
                self.broadcast(g, || Cmd::SetTunnel {
                    tunnel: id,
                    owner,
                    tcp_mss,
                });
                if !spis.is_empty() {
                    self.send(
                        g,
                        owner,
                        Cmd::SetInboundMss {
                            tunnel: id,
                            tcp_mss,
                        },
                    );
                }
            }
            self.natt(old, spec.udp, g);
            if spec.remote != old_remote {
                if let Some(v) = self.lock_view().tunnels.get_mut(&spec.name) {
                    v.remote = spec.remote;
                }
                self.want_peer(spec.remote);
            }
            if has_sas {
                self.send(g, owner, Cmd::Reencap { tunnel: id, encap });
                let mut v = self.lock_view();
                let keys = spis
                    .into_iter()
                    .map(SaKey::In)
                    .chain([SaKey::Out(spec.name)]);
                for k in keys {
                    if let Some(sa) = v.sas.get_mut(&k) {
                        sa.remote = spec.remote;
                        sa.udp_encap = spec.udp;
                    }
                }
            }
            if let Some(t) = self.tunnels.get_mut(&spec.name) {
                t.spec = spec;
                t.encap = encap;
                t.selectors = selectors;
            }
            return Ok(());
        }
        let Some(id) = self.tunnel_ids.take() else {
            return refuse(
                what,
                format!(
                    "all {} tunnels are in use (dataplane.max_tunnels)",
                    self.capacity.tunnels
                ),
            );
        };
        if id > MAX_TUNNEL_ID {
            self.tunnel_ids.give(id);
            return refuse(what, "tunnel ids are exhausted");
        }
        let peer = if spec.dynamic {
            Peer::Dynamic
        } else {
            Peer::Site {
                local: spec.local,
                remote: spec.remote,
            }
        };
        let p = self.anchors.place(id, peer);
        let Some(owner) = self.workers.iter().position(|w| w.info.lcore == p.worker) else {
            self.anchors.remove(id);
            self.tunnel_ids.give(id);
            return refuse(what, format!("anchor lcore {} is not a worker", p.worker));
        };
        let owner = owner as WorkerIndex;
        self.natt(None, spec.udp, g);
        let tcp_mss = spec.tcp_mss.unwrap_or(0);
        self.broadcast(g, || Cmd::SetTunnel {
            tunnel: id,
            owner,
            tcp_mss,
        });
        {
            let mut v = self.lock_view();
            v.tunnels.insert(
                spec.name,
                TunnelView {
                    id,
                    local: spec.local,
                    remote: spec.remote,
                    worker: p.worker,
                    group: p.group,
                },
            );
            v.anchors = self.anchors.clone();
        }
        self.want_peer(spec.remote);
        self.tunnels.insert(
            spec.name,
            TunnelRec {
                id,
                spec,
                encap,
                selectors,
                owner,
                group: p.group,
                outbound: None,
                grant: None,
                inbound: Default::default(),
            },
        );
        Ok(())
    }

    /// Keeps the NAT-T ports counted as a tunnel's `old` ports become `new`.
    pub(super) fn natt(&mut self, old: Option<(u16, u16)>, new: Option<(u16, u16)>, g: u64) {
        if old.map(|u| u.0) == new.map(|u| u.0) {
            return;
        }
        if let Some((p, _)) = new {
            let n = self.natt_ports.entry(p).or_insert(0);
            *n += 1;
            if *n == 1 {
                self.broadcast(g, || Cmd::AddNattPort(p));
            }
        }
        if let Some((p, _)) = old {
            if let Some(n) = self.natt_ports.get_mut(&p) {
                *n -= 1;
                if *n == 0 {
                    self.natt_ports.remove(&p);
                    self.broadcast(g, || Cmd::DelNattPort(p));
                }
            }
        }
    }

    pub(super) fn delete_tunnel(&mut self, name: Name, g: u64) -> Result<(), ChangeError> {
        let what = format!("tunnel {name}");
        let Some(t) = self.tunnels.get(&name) else {
            return refuse(what, "no such tunnel");
        };
        let id = t.id;
        if let Some((p, _)) = self
            .routes
            .iter()
            .find(|(_, (t, _))| *t == Target::Tunnel { tunnel: id })
        {
            return refuse(what, format!("route {p} points at it"));
        }
        if let Some((p, _)) = self
            .routes6
            .iter()
            .find(|(_, (t, _))| *t == Target6::Tunnel { tunnel: id })
        {
            return refuse(what, format!("route {p} points at it"));
        }
        if let Some(p) = self.policy_into(name) {
            return refuse(what, format!("policy {p} sends into it"));
        }
        // Its SAs go with it.
        if t.outbound.is_some() {
            self.delete_outbound_sa(name, g)?;
        }
        let spis: Vec<u32> = self
            .tunnels
            .get(&name)
            .map_or(Vec::new(), |t| t.inbound.iter().copied().collect());
        for spi in spis {
            self.delete_inbound_sa(spi, g)?;
        }
        let Some(t) = self.tunnels.remove(&name) else {
            return Ok(());
        };
        self.broadcast(g, || Cmd::DelTunnel { tunnel: id });
        self.natt(t.spec.udp, None, g);
        self.anchors.remove(id);
        self.tunnel_ids.give(id);
        let mut v = self.lock_view();
        v.tunnels.remove(&name);
        v.retired.remove(&name);
        v.anchors = self.anchors.clone();
        Ok(())
    }
}

/// Traffic selectors of either family as the SA checks them: each a prefix without host
/// bits.
fn prefixes<N: Copy + Into<IpNet>>(what: &str, p: &[N]) -> Result<Box<[N]>, ChangeError> {
    for &n in p {
        let n: IpNet = n.into();
        if n.addr() != n.network() {
            return refuse(what, format!("traffic selector {n} has host bits set"));
        }
    }
    Ok(p.into())
}
