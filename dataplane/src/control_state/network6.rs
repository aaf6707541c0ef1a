//! IPv6's share of interfaces, neighbors and routes. An interface with an IPv6 address brings
//! the route of its on-link prefix and the /128 of its address (its link-local address is
//! local on every worker without a route); the routes are counted against what the workers'
//! IPv6 table holds, so that one that would not fit is refused here.

use super::{refuse, ChangeError, ControlState, RouteOrigin};
use crate::forward::{Interface, Target6, WorkerCommand as Cmd};
use crate::wire::{ethernet::Mac, ipv6};
use channel::{InterfaceSpec, RouteVia};
use ipnet::Ipv6Net;
use std::net::{IpAddr, Ipv6Addr};

/// The routes an interface brings.
fn routes_of(i: &Interface) -> Vec<(Ipv6Net, Target6)> {
    match i.ipv6 {
        None => Vec::new(),
        Some(n) => vec![
            (n.trunc(), Target6::Connected { port: i.port }),
            (Ipv6Net::from(n.addr()), Target6::Local),
        ],
    }
}

impl ControlState {
    /// Checks an interface's IPv6 address (if any) against the other interfaces, the static
    /// routes and the room in the workers' table, changing nothing.
    pub(super) fn check_interface6(
        &self,
        spec: &InterfaceSpec,
        old: Option<&Interface>,
    ) -> Result<(), ChangeError> {
        let what = format!("interface {}", spec.name);
        let Some(net) = spec.ipv6 else {
            return Ok(());
        };
        let a = net.addr();
        if ipv6::is_link_local(&a) || a.is_multicast() || a.is_unspecified() || a.is_loopback() {
            return refuse(
                what,
                format!("{net} is not a global or unique-local unicast address"),
            );
        }
        if net.prefix_len() == 0 {
            return refuse(what, format!("{net} has no on-link prefix"));
        }
        let others = self.interfaces.iter().filter(|(n, _)| **n != spec.name);
        for (other, i) in others {
            if i.on_link6(&a) || i.ipv6.is_some_and(|o| net.trunc().contains(&o.addr())) {
                return refuse(what, format!("{net} overlaps interface {other}'s subnet"));
            }
        }
        let new = [net.trunc(), Ipv6Net::from(a)];
        for p in new {
            if let Some((_, RouteOrigin::Static)) = self.routes6.get(&p) {
                return refuse(what, format!("{p} is a static route"));
            }
        }
        let freed = old.map_or(0, |o| routes_of(o).len());
        if self.routes6.len() - freed + new.len() > self.capacity.routes6 as usize {
            return refuse(
                what,
                format!(
                    "all {} IPv6 route slots are in use (raise dataplane.max_routes6)",
                    self.capacity.routes6
                ),
            );
        }
        Ok(())
    }

    /// Replaces the routes of interface `old` (if any) with those of `new` (if any), on every
    /// worker; `check_interface6` made sure they fit.
    pub(super) fn interface_routes6(
        &mut self,
        old: Option<&Interface>,
        new: Option<&Interface>,
        g: u64,
    ) {
        for (p, _) in old.map(routes_of).unwrap_or_default() {
            self.routes6.remove(&p);
            self.broadcast(g, || Cmd::DelRoute6 { prefix: p });
        }
        for (p, target) in new.map(routes_of).unwrap_or_default() {
            self.routes6.insert(p, (target, RouteOrigin::Interface));
            self.broadcast(g, || Cmd::AddRoute6 { prefix: p, target });
        }
    }

    /// Refuses if an IPv6 static route or neighbor stands on the interface.
    pub(super) fn interface_unused6(&self, what: &str, i: &Interface) -> Result<(), ChangeError> {
        if let Some((p, _)) = self.routes6.iter().find(|(_, (t, o))| {
            *o == RouteOrigin::Static
                && matches!(t, Target6::Gateway { via, .. } if i.on_link6(via))
        }) {
            return refuse(what, format!("route {p} goes through it"));
        }
        Ok(())
    }

    /// Our IPv6 address an ICMPv6 error to `to` leaves from: the one on its subnet, else the
    /// first interface's (by name).
    pub fn source6_for(&self, to: &Ipv6Addr) -> Option<Ipv6Addr> {
        let ours = || self.interfaces.values().filter_map(|i| i.ipv6);
        ours()
            .find(|n| n.trunc().contains(to))
            .or_else(|| ours().next())
            .map(|n| n.addr())
    }

    /// The interface whose IPv6 subnet holds `a`.
    pub(super) fn on_subnet6(&self, a: &Ipv6Addr) -> Option<Interface> {
        self.interfaces.values().find(|i| i.on_link6(a)).copied()
    }

    pub(super) fn set_neighbor6(
        &mut self,
        addr: Ipv6Addr,
        mac: Mac,
        g: u64,
    ) -> Result<(), ChangeError> {
        let what = format!("neighbor {addr}");
        if ipv6::is_link_local(&addr) {
            return refuse(what, "link-local: give the neighbor's global address");
        }
        if self.on_subnet6(&addr).is_none() {
            return refuse(what, "not on any interface's IPv6 subnet");
        }
        if self.interfaces.values().any(|i| i.has_ipv6(&addr)) {
            return refuse(what, "our own address");
        }
        self.static_neighbor(what, addr.into(), mac, g)
    }

    pub(super) fn set_route6(
        &mut self,
        prefix: Ipv6Net,
        via: RouteVia,
        g: u64,
    ) -> Result<(), ChangeError> {
        let what = format!("route {prefix}");
        if prefix.addr() != prefix.network() {
            return refuse(
                what,
                format!("host bits set (did you mean {}?)", prefix.trunc()),
            );
        }
        if let Some((_, RouteOrigin::Interface)) = self.routes6.get(&prefix) {
            return refuse(what, "an interface's own route");
        }
        let a = match via {
            RouteVia::Tunnel(name) => {
                let Some(t) = self.tunnels.get(&name) else {
                    return refuse(what, format!("no tunnel named {name}"));
                };
                let target = Target6::Tunnel { tunnel: t.id };
                self.route6_slot(&what, &prefix)?;
                self.routes6.insert(prefix, (target, RouteOrigin::Static));
                self.broadcast(g, || Cmd::AddRoute6 { prefix, target });
                return Ok(());
            }
            RouteVia::Gateway(IpAddr::V4(a)) => {
                return refuse(what, format!("next hop {a} is not IPv6"))
            }
            RouteVia::Gateway(IpAddr::V6(a)) => a,
        };
        if ipv6::is_link_local(&a) {
            return refuse(what, format!("next hop {a} is link-local"));
        }
        let Some(i) = self.on_subnet6(&a) else {
            return refuse(
                what,
                format!("next hop {a} is not on any interface's IPv6 subnet"),
            );
        };
        if i.has_ipv6(&a) {
            return refuse(what, format!("next hop {a} is our own address"));
        }
        self.route6_slot(&what, &prefix)?;
        let target = Target6::Gateway {
            port: i.port,
            via: a,
        };
        self.routes6.insert(prefix, (target, RouteOrigin::Static));
        self.broadcast(g, || Cmd::AddRoute6 { prefix, target });
        self.want(i.port, a.into());
        Ok(())
    }

    /// Refuses a new route when the workers' IPv6 table is full.
    fn route6_slot(&self, what: &str, prefix: &Ipv6Net) -> Result<(), ChangeError> {
        if !self.routes6.contains_key(prefix)
            && self.routes6.len() >= self.capacity.routes6 as usize
        {
            return refuse(
                what,
                format!(
                    "all {} IPv6 route slots are in use (raise dataplane.max_routes6)",
                    self.capacity.routes6
                ),
            );
        }
        Ok(())
    }

    pub(super) fn delete_route6(&mut self, prefix: Ipv6Net, g: u64) -> Result<(), ChangeError> {
        match self.routes6.get(&prefix) {
            Some((_, RouteOrigin::Static)) => {}
            Some(_) => return refuse(format!("route {prefix}"), "an interface's own route"),
            None => return refuse(format!("route {prefix}"), "no such route"),
        }
        self.routes6.remove(&prefix);
        self.broadcast(g, || Cmd::DelRoute6 { prefix });
        Ok(())
    }
}
