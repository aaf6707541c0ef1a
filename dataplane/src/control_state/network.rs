//! Interfaces, neighbors and routes. Each interface brings its connected route and the /32 of
//! its address; the routes go into a mirror of the workers' route trie first, so that a route
//! their tables could not hold is refused here. IPv6's share of each is in `network6`.

use super::apply::subnet;
use super::{refuse, ChangeError, ControlState, RouteOrigin};
use crate::forward::{Interface, Target, WorkerCommand as Cmd};
use crate::wire::ethernet::Mac;
use channel::{InterfaceSpec, Name, RouteVia};
use ipnet::{IpNet, Ipv4Net};
use std::net::{IpAddr, Ipv4Addr};

impl ControlState {
    pub(super) fn set_interface(&mut self, spec: InterfaceSpec, g: u64) -> Result<(), ChangeError> {
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
                && old.mtu == spec.mtu
                && old.ipv6 == spec.ipv6;
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
        self.check_interface6(&spec, old.as_ref())?;
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
            ipv6: spec.ipv6,
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
        self.interface_routes6(old.as_ref(), Some(&iface), g);
        Ok(())
    }

    /// Refuses if a tunnel, a static route or a neighbor stands on the interface.
    pub(super) fn interface_unused(&self, name: Name) -> Result<Interface, ChangeError> {
        let what = format!("interface {name}");
        let Some(&i) = self.interfaces.get(&name) else {
            return refuse(what, "no such interface");
        };
        let uses = |a: std::net::IpAddr| a == i.addr || i.ipv6.is_some_and(|n| a == n.addr());
        if let Some((t, _)) = self.tunnels.iter().find(|(_, t)| uses(t.encap.local)) {
            return refuse(what, format!("tunnel {t} uses its address"));
        }
        let net = subnet(&i);
        if let Some((p, _)) = self.routes.iter().find(|(_, (t, o))| {
            *o == RouteOrigin::Static
                && matches!(t, Target::Gateway { via, .. } if net.contains(via))
        }) {
            return refuse(what, format!("route {p} goes through it"));
        }
        if let Some(a) = self.neighbors.keys().find(|a| match a {
            IpAddr::V4(a) => net.contains(a),
            IpAddr::V6(a) => i.on_link6(a),
        }) {
            return refuse(what, format!("neighbor {a} is on it"));
        }
        self.interface_unused6(&what, &i)?;
        Ok(i)
    }

    pub(super) fn delete_interface(&mut self, name: Name, g: u64) -> Result<(), ChangeError> {
        let i = self.interface_unused(name)?;
        let (sub, host) = (subnet(&i), Ipv4Net::from(i.addr));
        for p in [sub, host] {
            self.routes.remove(&p);
            self.trie.remove(p.addr(), p.prefix_len());
            self.broadcast(g, || Cmd::DelRoute { prefix: p });
        }
        self.interface_routes6(Some(&i), None, g);
        self.interfaces.remove(&name);
        self.broadcast(g, || Cmd::DelInterface { port: i.port });
        Ok(())
    }

    pub(super) fn set_neighbor(
        &mut self,
        addr: IpAddr,
        mac: Mac,
        g: u64,
    ) -> Result<(), ChangeError> {
        let what = format!("neighbor {addr}");
        let addr = match addr {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => return self.set_neighbor6(a, mac, g),
        };
        if self.on_subnet(addr).is_none() {
            return refuse(what, "not on any interface's subnet");
        }
        if self.interfaces.values().any(|i| i.addr == addr) {
            return refuse(what, "our own address");
        }
        self.static_neighbor(what, addr.into(), mac, g)
    }

    /// A static neighbor of either family, its address checked: kept, and sent to every
    /// worker as permanent.
    pub(super) fn static_neighbor(
        &mut self,
        what: String,
        addr: IpAddr,
        mac: Mac,
        g: u64,
    ) -> Result<(), ChangeError> {
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

    pub(super) fn delete_neighbor(&mut self, addr: IpAddr, g: u64) -> Result<(), ChangeError> {
        if self.neighbors.remove(&addr).is_none() {
            return refuse(format!("neighbor {addr}"), "no such static neighbor");
        }
        self.broadcast(g, || Cmd::DelNeighbor { addr });
        Ok(())
    }

    pub(super) fn set_route(
        &mut self,
        prefix: IpNet,
        via: RouteVia,
        g: u64,
    ) -> Result<(), ChangeError> {
        let what = format!("route {prefix}");
        let prefix = match prefix {
            IpNet::V4(p) => p,
            IpNet::V6(p) => return self.set_route6(p, via, g),
        };
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
            RouteVia::Gateway(IpAddr::V6(a)) => {
                return refuse(what, format!("next hop {a} is not IPv4"));
            }
            RouteVia::Gateway(IpAddr::V4(a)) => {
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
        if let Target::Gateway { port, via } = target {
            self.want(port, via.into());
        }
        Ok(())
    }

    /// Asks for `addr`'s MAC ahead of the first packet that needs it (unless it is static).
    pub(super) fn want(&mut self, port: u16, addr: IpAddr) {
        if !self.neighbors.contains_key(&addr) && self.wanted.len() < 4096 {
            self.wanted.push((port, addr));
        }
    }

    /// Next hops that changes made needed since the last call: (port, address) to resolve.
    pub fn take_wanted(&mut self) -> Vec<(u16, IpAddr)> {
        std::mem::take(&mut self.wanted)
    }

    pub(super) fn delete_route(&mut self, prefix: IpNet, g: u64) -> Result<(), ChangeError> {
        let prefix = match prefix {
            IpNet::V4(p) => p,
            IpNet::V6(p) => return self.delete_route6(p, g),
        };
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
    pub(super) fn trie_insert(
        &mut self,
        what: &str,
        prefixes: &[Ipv4Net],
    ) -> Result<(), ChangeError> {
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
    pub(super) fn on_subnet(&self, a: Ipv4Addr) -> Option<Interface> {
        self.interfaces
            .values()
            .find(|i| subnet(i).contains(&a))
            .copied()
    }
}
