//! Each kind of change: checked against what is installed (nothing is sent or changed until
//! the whole change is known to fit), then turned into worker commands.

use super::view::{SaKey, SaView, TunnelView};
use super::{refuse, ChangeError, ControlState, InboundRec, RouteOrigin, TunnelRec};
use crate::anchor::Peer;
use crate::esp::outer::TunnelEncap;
use crate::esp::replay::{ReplayWindow, MAX_WINDOW};
use crate::forward::handoff::MAX_TUNNEL_ID;
use crate::forward::{InboundIndex, Interface, Target, WorkerCommand as Cmd, WorkerIndex};
use crate::sa::{Direction, InboundParams, InboundSa, OutboundParams, OutboundSa, Selectors};
use crate::wire::ethernet::Mac;
use channel::{
    Change, InboundSaSpec, InterfaceSpec, Name, OutboundSaSpec, Prefixes, RouteVia, SaSpec,
    TunnelSpec,
};
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

/// RFC 4303 section 2.1: SPI 0 is never sent and 1-255 are reserved by IANA.
const MIN_SPI: u32 = 256;

impl ControlState {
    pub(super) fn apply_change(&mut self, change: Change, g: u64) -> Result<(), ChangeError> {
        match change {
            Change::SetInterface(spec) => self.set_interface(spec, g),
            Change::DeleteInterface { name } => self.delete_interface(name, g),
            Change::SetNeighbor { addr, mac } => self.set_neighbor(addr, Mac(mac), g),
            Change::DeleteNeighbor { addr } => self.delete_neighbor(addr, g),
            Change::SetRoute { prefix, via } => self.set_route(prefix, via, g),
            Change::DeleteRoute { prefix } => self.delete_route(prefix, g),
            Change::SetTunnel(spec) => self.set_tunnel(spec, g),
            Change::DeleteTunnel { name } => self.delete_tunnel(name, g),
            Change::SetOutboundSa(spec) => self.set_outbound_sa(spec, g),
            Change::DeleteOutboundSa { tunnel } => self.delete_outbound_sa(tunnel, g),
            Change::SetInboundSa(spec) => self.set_inbound_sa(spec, g),
            Change::DeleteInboundSa { spi } => self.delete_inbound_sa(spi, g),
            Change::ClearCounters(scope) => {
                self.clear(scope);
                Ok(())
            }
        }
    }

    // ---- interfaces, neighbors, routes ----

    fn set_interface(&mut self, spec: InterfaceSpec, g: u64) -> Result<(), ChangeError> {
        let what = format!("interface {}", spec.name);
        let net = match Ipv4Net::new(spec.addr, spec.prefix_len) {
            Ok(n) if spec.prefix_len > 0 => n,
            _ => {
                return refuse(
                    what,
                    format!(
                        "{}/{} is not an address and prefix",
                        spec.addr, spec.prefix_len
                    ),
                )
            }
        };
        if spec.mac.is_some_and(|m| m[0] & 1 != 0) {
            return refuse(what, "a multicast or broadcast MAC");
        }
        let old = self.interfaces.get(&spec.name).copied();
        if let Some(old) = old {
            let same = old.port == spec.port
                && old.addr == spec.addr
                && old.prefix_len == spec.prefix_len
                && spec.mac.is_none_or(|m| m == old.mac.0)
                && old.mtu == spec.mtu;
            if same {
                return Ok(());
            }
            // A changed interface is a new one: only when nothing stands on the old one.
            self.interface_unused(spec.name)?;
        }
        let others = || self.interfaces.iter().filter(|(n, _)| **n != spec.name);
        if let Some((other, _)) = others().find(|(_, i)| i.port == spec.port) {
            return refuse(
                what,
                format!("port {} already has interface {other}", spec.port),
            );
        }
        if let Some((other, _)) =
            others().find(|(_, i)| subnet(i).contains(&spec.addr) || net.contains(&i.addr))
        {
            return refuse(what, format!("{net} overlaps interface {other}'s subnet"));
        }
        let (sub, host) = (net.trunc(), Ipv4Net::from(spec.addr));
        for p in [sub, host] {
            if let Some((_, RouteOrigin::Static)) = self.routes.get(&p) {
                return refuse(what, format!("{p} is a static route"));
            }
        }
        // The old interface's routes make room for the new ones; back if those do not fit.
        let old_routes = old.map(|o| [subnet(&o), Ipv4Net::from(o.addr)]);
        for p in old_routes.iter().flatten() {
            self.trie.remove(p.addr(), p.prefix_len());
        }
        if let Err(e) = self.trie_insert(&what, &[sub, host]) {
            for p in old_routes.iter().flatten() {
                let _ = self.trie.insert(p.addr(), p.prefix_len(), 0);
            }
            return Err(e);
        }
        if let Some(old) = old {
            for p in old_routes.iter().flatten() {
                self.routes.remove(p);
                self.broadcast(g, || Cmd::DelRoute { prefix: *p });
            }
            if old.port != spec.port {
                self.broadcast(g, || Cmd::DelInterface { port: old.port });
            }
        }
        let iface = Interface {
            port: spec.port,
            mac: spec.mac.map_or_else(|| (self.port_mac)(spec.port), Mac),
            addr: spec.addr,
            prefix_len: spec.prefix_len,
            mtu: spec.mtu,
        };
        let connected = Target::Connected { port: spec.port };
        self.routes.insert(sub, (connected, RouteOrigin::Interface));
        self.routes
            .insert(host, (Target::Local, RouteOrigin::Interface));
        self.interfaces.insert(spec.name, iface);
        self.broadcast(g, || Cmd::SetInterface(iface));
        self.broadcast(g, || Cmd::AddRoute {
            prefix: sub,
            target: connected,
        });
        self.broadcast(g, || Cmd::AddRoute {
            prefix: host,
            target: Target::Local,
        });
        Ok(())
    }

    /// Refuses if a tunnel, a static route or a neighbor stands on the interface.
    fn interface_unused(&self, name: Name) -> Result<Interface, ChangeError> {
        let what = format!("interface {name}");
        let Some(&i) = self.interfaces.get(&name) else {
            return refuse(what, "no such interface");
        };
        if let Some((t, _)) = self.tunnels.iter().find(|(_, t)| t.encap.local == i.addr) {
            return refuse(what, format!("tunnel {t} uses its address"));
        }
        let net = subnet(&i);
        if let Some((p, _)) = self.routes.iter().find(|(_, (t, o))| {
            *o == RouteOrigin::Static
                && matches!(t, Target::Gateway { via, .. } if net.contains(via))
        }) {
            return refuse(what, format!("route {p} goes through it"));
        }
        if let Some(a) = self.neighbors.keys().find(|a| net.contains(*a)) {
            return refuse(what, format!("neighbor {a} is on it"));
        }
        Ok(i)
    }

    fn delete_interface(&mut self, name: Name, g: u64) -> Result<(), ChangeError> {
        let i = self.interface_unused(name)?;
        let (sub, host) = (subnet(&i), Ipv4Net::from(i.addr));
        for p in [sub, host] {
            self.routes.remove(&p);
            self.trie.remove(p.addr(), p.prefix_len());
            self.broadcast(g, || Cmd::DelRoute { prefix: p });
        }
        self.interfaces.remove(&name);
        self.broadcast(g, || Cmd::DelInterface { port: i.port });
        Ok(())
    }

    fn set_neighbor(&mut self, addr: Ipv4Addr, mac: Mac, g: u64) -> Result<(), ChangeError> {
        let what = format!("neighbor {addr}");
        if self.on_subnet(addr).is_none() {
            return refuse(what, "not on any interface's subnet");
        }
        if self.interfaces.values().any(|i| i.addr == addr) {
            return refuse(what, "our own address");
        }
        if mac.0[0] & 1 != 0 {
            return refuse(what, format!("{mac} is a multicast or broadcast MAC"));
        }
        self.neighbors.insert(addr, mac);
        self.broadcast(g, || Cmd::SetNeighbor {
            addr,
            mac,
            permanent: true,
        });
        Ok(())
    }

    fn delete_neighbor(&mut self, addr: Ipv4Addr, g: u64) -> Result<(), ChangeError> {
        if self.neighbors.remove(&addr).is_none() {
            return refuse(format!("neighbor {addr}"), "no such static neighbor");
        }
        self.broadcast(g, || Cmd::DelNeighbor { addr });
        Ok(())
    }

    fn set_route(&mut self, prefix: Ipv4Net, via: RouteVia, g: u64) -> Result<(), ChangeError> {
        let what = format!("route {prefix}");
        if prefix.addr() != prefix.network() {
            return refuse(
                what,
                format!("host bits set (did you mean {}?)", prefix.trunc()),
            );
        }
        if let Some((_, RouteOrigin::Interface)) = self.routes.get(&prefix) {
            return refuse(what, "an interface's own route");
        }
        let target = match via {
            RouteVia::Tunnel(name) => match self.tunnels.get(&name) {
                Some(t) => Target::Tunnel { tunnel: t.id },
                None => return refuse(what, format!("no tunnel named {name}")),
            },
            RouteVia::Gateway(a) => {
                let Some(i) = self.on_subnet(a) else {
                    return refuse(
                        what,
                        format!("next hop {a} is not on any interface's subnet"),
                    );
                };
                if i.addr == a {
                    return refuse(what, format!("next hop {a} is our own address"));
                }
                Target::Gateway {
                    port: i.port,
                    via: a,
                }
            }
        };
        if !self.routes.contains_key(&prefix) {
            self.trie_insert(&what, &[prefix])?;
        }
        self.routes.insert(prefix, (target, RouteOrigin::Static));
        self.broadcast(g, || Cmd::AddRoute { prefix, target });
        Ok(())
    }

    fn delete_route(&mut self, prefix: Ipv4Net, g: u64) -> Result<(), ChangeError> {
        match self.routes.get(&prefix) {
            Some((_, RouteOrigin::Static)) => {}
            Some(_) => return refuse(format!("route {prefix}"), "an interface's own route"),
            None => return refuse(format!("route {prefix}"), "no such route"),
        }
        self.routes.remove(&prefix);
        self.trie.remove(prefix.addr(), prefix.prefix_len());
        self.broadcast(g, || Cmd::DelRoute { prefix });
        Ok(())
    }

    /// Adds prefixes to the mirror of the workers' trie, all or none: refused when their
    /// tables would not hold them.
    fn trie_insert(&mut self, what: &str, prefixes: &[Ipv4Net]) -> Result<(), ChangeError> {
        for (i, p) in prefixes.iter().enumerate() {
            if let Err(e) = self.trie.insert(p.addr(), p.prefix_len(), 0) {
                for q in &prefixes[..i] {
                    self.trie.remove(q.addr(), q.prefix_len());
                }
                return refuse(what, format!("{e} (raise dataplane.route_tables)"));
            }
        }
        Ok(())
    }

    /// The interface whose subnet holds `a`.
    fn on_subnet(&self, a: Ipv4Addr) -> Option<Interface> {
        self.interfaces
            .values()
            .find(|i| subnet(i).contains(&a))
            .copied()
    }

    // ---- tunnels ----

    fn set_tunnel(&mut self, spec: TunnelSpec, g: u64) -> Result<(), ChangeError> {
        let what = format!("tunnel {}", spec.name);
        if !self.interfaces.values().any(|i| i.addr == spec.local) {
            return refuse(
                what,
                format!("local {} is not the address of any interface", spec.local),
            );
        }
        let r = spec.remote;
        if r.is_unspecified() || r.is_broadcast() || r.is_multicast() || r == spec.local {
            return refuse(what, format!("{r} cannot be a tunnel peer"));
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
        };
        let encap = TunnelEncap {
            local: spec.local,
            remote: spec.remote,
            udp: spec.udp,
            df: spec.df,
            dscp: spec.dscp,
            ttl: spec.ttl,
        };
        if let Some(t) = self.tunnels.get(&spec.name) {
            if t.spec == spec {
                return Ok(());
            }
            if t.encap.local != spec.local || t.encap.remote != spec.remote {
                return refuse(
                    what,
                    "its gateways cannot change: delete it and add it again",
                );
            }
            if t.outbound.is_some() || !t.inbound.is_empty() {
                return refuse(what, "its SAs are built from it: delete them first");
            }
            let old = t.spec.udp;
            self.natt(old, spec.udp, g);
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
        let p = self.anchors.place(
            id,
            Peer::Site {
                local: spec.local,
                remote: spec.remote,
            },
        );
        let Some(owner) = self.workers.iter().position(|w| w.info.lcore == p.worker) else {
            self.anchors.remove(id);
            self.tunnel_ids.give(id);
            return refuse(what, format!("anchor lcore {} is not a worker", p.worker));
        };
        let owner = owner as WorkerIndex;
        self.natt(None, spec.udp, g);
        self.broadcast(g, || Cmd::SetTunnel { tunnel: id, owner });
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
                inbound: Default::default(),
            },
        );
        Ok(())
    }

    /// Keeps the NAT-T ports counted as a tunnel's `old` ports become `new`.
    fn natt(&mut self, old: Option<(u16, u16)>, new: Option<(u16, u16)>, g: u64) {
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

    fn delete_tunnel(&mut self, name: Name, g: u64) -> Result<(), ChangeError> {
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
        v.anchors = self.anchors.clone();
        Ok(())
    }

    // ---- SAs ----

    fn set_outbound_sa(&mut self, spec: OutboundSaSpec, g: u64) -> Result<(), ChangeError> {
        let SaSpec { tunnel, spi, .. } = spec.sa;
        let what = format!("outbound SA {spi:#x} of tunnel {tunnel}");
        let (id, owner, group, encap) = match self.tunnels.get(&tunnel) {
            Some(t) => (t.id, t.owner, t.group, t.encap),
            None => return refuse(what, format!("no tunnel named {tunnel}")),
        };
        check_sa(&what, &spec.sa)?;
        let space = if spec.sa.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        if spec.first_seq == 0 || spec.first_seq > space {
            return refuse(
                what,
                format!(
                    "first sequence number {} is outside 1..={space}",
                    spec.first_seq
                ),
            );
        }
        let socket = self.socket(owner);
        let Some(counters) = self.counter_slot() else {
            return refuse(what, "no counter slot is free");
        };
        let params = OutboundParams {
            spi,
            esn: spec.sa.esn,
            encap,
            first_seq: spec.first_seq,
            soft: spec.sa.soft,
            hard: spec.sa.hard,
        };
        let sa = match OutboundSa::new(params, &spec.sa.keys, counters.clone(), &self.backend) {
            Ok(sa) => sa,
            Err(e) => {
                self.counters.free(counters);
                return refuse(what, e.to_string());
            }
        };
        let sa = match self
            .pools
            .get_mut(&socket)
            .and_then(|p| p.outbound.alloc(sa))
        {
            Some(sa) => sa,
            _ => {
                self.counters.free(counters);
                return refuse(what, "no room for another outbound SA now; try again");
            }
        };
        self.send(g, owner, Cmd::InstallOutbound { tunnel: id, sa });
        if let Some(t) = self.tunnels.get_mut(&tunnel) {
            t.outbound = Some(spi);
        }
        let worker = self.lcore(owner);
        let view = SaView {
            spi,
            direction: Direction::Out,
            tunnel,
            algorithm: spec.sa.keys.algorithm(),
            esn: spec.sa.esn,
            replay_window: 0,
            local: encap.local,
            remote: encap.remote,
            udp_encap: encap.udp,
            worker,
            group,
            counters,
            cleared: [0; 8],
        };
        self.lock_view().sas.insert(SaKey::Out(tunnel), view);
        Ok(())
    }

    fn delete_outbound_sa(&mut self, tunnel: Name, g: u64) -> Result<(), ChangeError> {
        let what = format!("outbound SA of tunnel {tunnel}");
        let Some(t) = self.tunnels.get_mut(&tunnel) else {
            return refuse(what, "no such tunnel");
        };
        if t.outbound.take().is_none() {
            return refuse(what, "the tunnel has none");
        }
        let (id, owner) = (t.id, t.owner);
        self.send(g, owner, Cmd::RemoveOutbound { tunnel: id });
        self.lock_view().sas.remove(&SaKey::Out(tunnel));
        Ok(())
    }

    fn set_inbound_sa(&mut self, spec: InboundSaSpec, g: u64) -> Result<(), ChangeError> {
        let SaSpec {
            tunnel, spi, esn, ..
        } = spec.sa;
        let what = format!("inbound SA {spi:#x}");
        let (owner, group, encap, selectors) = match self.tunnels.get(&tunnel) {
            Some(t) => (t.owner, t.group, t.encap, t.selectors.clone()),
            None => return refuse(what, format!("no tunnel named {tunnel}")),
        };
        check_sa(&what, &spec.sa)?;
        if spec.replay_window > MAX_WINDOW {
            return refuse(
                what,
                format!("replay window {} is above {MAX_WINDOW}", spec.replay_window),
            );
        }
        if !esn && spec.highest_seen > u64::from(u32::MAX) {
            return refuse(
                what,
                "highest sequence number seen is above 2^32 - 1 without ESN",
            );
        }
        let existing = match self.inbound.get(&spi) {
            Some(r) if r.tunnel != tunnel => {
                return refuse(what, format!("the SPI is in use by tunnel {}", r.tunnel));
            }
            Some(r) => Some(r.index),
            None => None,
        };
        let socket = self.socket(owner);
        let mut replay = match ReplayWindow::in_memory(spec.replay_window, esn, self.memory, socket)
        {
            Ok(w) => w,
            Err(e) => return refuse(what, e.to_string()),
        };
        replay.set_top(spec.highest_seen);
        let Some(counters) = self.counter_slot() else {
            return refuse(what, "no counter slot is free");
        };
        let params = InboundParams {
            spi,
            esn,
            local: encap.local,
            udp_encap: encap.udp.is_some(),
            selectors,
            soft: spec.sa.soft,
            hard: spec.sa.hard,
        };
        let sa = match InboundSa::new(
            params,
            &spec.sa.keys,
            replay,
            counters.clone(),
            &self.backend,
        ) {
            Ok(sa) => sa,
            Err(e) => {
                self.counters.free(counters);
                return refuse(what, e.to_string());
            }
        };
        let index = match existing.or_else(|| self.inbound_ids.take().map(InboundIndex)) {
            Some(i) => i,
            None => {
                self.counters.free(counters);
                return refuse(
                    what,
                    format!(
                        "all {} inbound SAs are in use (dataplane.max_sas)",
                        self.capacity.inbound_sas
                    ),
                );
            }
        };
        let sa = match self
            .pools
            .get_mut(&socket)
            .and_then(|p| p.inbound.alloc(sa))
        {
            Some(sa) => sa,
            _ => {
                if existing.is_none() {
                    self.inbound_ids.give(index.0);
                }
                self.counters.free(counters);
                return refuse(what, "no room for another inbound SA now; try again");
            }
        };
        self.send(g, owner, Cmd::InstallInbound { spi, index, sa });
        if existing.is_none() {
            for w in 0..self.workers.len() as WorkerIndex {
                if w != owner {
                    self.send(g, w, Cmd::SetSpi { spi, owner });
                }
            }
        }
        self.inbound.insert(spi, InboundRec { tunnel, index });
        if let Some(t) = self.tunnels.get_mut(&tunnel) {
            t.inbound.insert(spi);
        }
        let worker = self.lcore(owner);
        let view = SaView {
            spi,
            direction: Direction::In,
            tunnel,
            algorithm: spec.sa.keys.algorithm(),
            esn,
            replay_window: spec.replay_window,
            local: encap.local,
            remote: encap.remote,
            udp_encap: encap.udp,
            worker,
            group,
            counters,
            cleared: [0; 8],
        };
        self.lock_view().sas.insert(SaKey::In(spi), view);
        Ok(())
    }

    fn delete_inbound_sa(&mut self, spi: u32, g: u64) -> Result<(), ChangeError> {
        let what = format!("inbound SA {spi:#x}");
        let Some(r) = self.inbound.remove(&spi) else {
            return refuse(what, "no such SA");
        };
        let owner = match self.tunnels.get_mut(&r.tunnel) {
            Some(t) => {
                t.inbound.remove(&spi);
                t.owner
            }
            None => return Ok(()),
        };
        for w in 0..self.workers.len() as WorkerIndex {
            let cmd = if w == owner {
                Cmd::RemoveInbound { spi }
            } else {
                Cmd::DelSpi { spi }
            };
            self.send(g, w, cmd);
        }
        self.inbound_ids.give(r.index.0);
        self.lock_view().sas.remove(&SaKey::In(spi));
        Ok(())
    }

    fn socket(&self, w: WorkerIndex) -> i32 {
        self.workers
            .get(usize::from(w))
            .map_or(-1, |w| w.info.socket)
    }

    fn lcore(&self, w: WorkerIndex) -> u32 {
        self.workers
            .get(usize::from(w))
            .map_or(u32::MAX, |w| w.info.lcore)
    }
}

/// What every SA must be, whichever way.
fn check_sa(what: &str, s: &SaSpec) -> Result<(), ChangeError> {
    if s.spi < MIN_SPI {
        return refuse(what, "SPIs 0-255 are reserved (RFC 4303 section 2.1)");
    }
    for (kind, soft, hard) in [
        ("packet", s.soft.packets, s.hard.packets),
        ("byte", s.soft.bytes, s.hard.bytes),
    ] {
        if soft.zip(hard).is_some_and(|(s, h)| s > h) {
            return refuse(
                what,
                format!("its soft {kind} lifetime is above its hard one"),
            );
        }
    }
    Ok(())
}

fn subnet(i: &Interface) -> Ipv4Net {
    Ipv4Net::new(i.addr, i.prefix_len)
        .map(|n| n.trunc())
        .unwrap_or_default()
}

/// Traffic selectors as the SA checks them: each a prefix without host bits.
fn prefixes(what: &str, p: &Prefixes) -> Result<Box<[Ipv4Net]>, ChangeError> {
    for n in p {
        if n.addr() != n.network() {
            return refuse(what, format!("traffic selector {n} has host bits set"));
        }
    }
    Ok(p.iter().copied().collect())
}
