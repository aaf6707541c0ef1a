//! The `routes` section (IPv4 and IPv6 prefixes in one list), and that every tunnel's peer is
//! reachable without a tunnel.

use super::file::RouteFile;
use super::{
    err, is_link_local6, parse_prefix, parse_prefix6, ConfigError, InterfaceConfig, Route, Route6,
    RouteVia, Tunnel,
};
use ipnet::Ipv4Net;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const MAX_ROUTES: usize = 1 << 20;

pub(super) fn routes(
    list: &[RouteFile],
    interfaces: &[InterfaceConfig],
    tunnels: &[Tunnel],
) -> Result<(Vec<Route>, Vec<Route6>), ConfigError> {
    if list.len() > MAX_ROUTES {
        return err("routes", format!("at most {MAX_ROUTES}"));
    }
    let on_subnet = |a: Ipv4Addr| interfaces.iter().find(|i| i.subnet().contains(&a));
    let tunnel_names: HashMap<&str, channel::Name> =
        tunnels.iter().map(|t| (t.name.as_str(), t.name)).collect();
    let mut routes: Vec<Route> = Vec::with_capacity(list.len());
    let mut by_prefix: HashMap<Ipv4Net, RouteVia> = HashMap::with_capacity(list.len());
    let mut routes6: Vec<Route6> = Vec::new();
    let mut prefixes6 = HashSet::new();
    for (i, r) in list.iter().enumerate() {
        if r.prefix.contains(':') {
            let r6 = route6(i, r, interfaces, &tunnel_names)?;
            if !prefixes6.insert(r6.prefix) {
                return err(
                    format!("routes[{i}].prefix"),
                    format!("{} is routed twice", r6.prefix),
                );
            }
            routes6.push(r6);
            continue;
        }
        let prefix = parse_prefix(&format!("routes[{i}].prefix"), &r.prefix)?;
        if by_prefix.contains_key(&prefix) {
            return err(
                format!("routes[{i}].prefix"),
                format!("{prefix} is routed twice"),
            );
        }
        if interfaces
            .iter()
            .any(|x| x.subnet() == prefix || Ipv4Net::from(x.addr) == prefix)
        {
            return err(
                format!("routes[{i}].prefix"),
                format!("{prefix} is an interface's own route"),
            );
        }
        let via = if let Some(&t) = tunnel_names.get(r.via.as_str()) {
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
        by_prefix.insert(prefix, via);
        routes.push(Route { prefix, via });
    }

    // The peer of every tunnel must be reachable without going through a tunnel. Many tunnels
    // share a peer: look each peer up once, by longest prefix first.
    let mut reachable_peers: HashMap<Ipv4Addr, bool> = HashMap::new();
    for (i, t) in tunnels.iter().enumerate() {
        // A dial-up peer's address is not known here (it comes from IKE).
        if t.encap.remote.is_unspecified() {
            continue;
        }
        let r = match t.encap.remote {
            IpAddr::V4(r) => r,
            IpAddr::V6(r) => {
                if !reachable6(r, interfaces, &routes6) {
                    return err(
                        format!("tunnels[{i}].remote"),
                        format!("no IPv6 route to {r} except through a tunnel"),
                    );
                }
                continue;
            }
        };
        let reachable = *reachable_peers.entry(r).or_insert_with(|| {
            let best = (0..=32u8).rev().find_map(|len| {
                let net = Ipv4Net::new(r, len).ok()?.trunc();
                by_prefix.get(&net).map(|via| (len, *via))
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
    Ok((routes, routes6))
}

/// An IPv6 tunnel's peer is reachable if the longest IPv6 route to it (an interface's subnet
/// among them) does not go through a tunnel.
fn reachable6(r: Ipv6Addr, interfaces: &[InterfaceConfig], routes6: &[Route6]) -> bool {
    let connected = interfaces
        .iter()
        .filter_map(|x| x.ipv6.map(|n| n.trunc()))
        .filter(|n| n.contains(&r))
        .map(|n| n.prefix_len())
        .max();
    let best = routes6
        .iter()
        .filter(|x| x.prefix.contains(&r))
        .max_by_key(|x| x.prefix.prefix_len());
    match (best, connected) {
        (Some(b), Some(c)) if c >= b.prefix.prefix_len() => true,
        (Some(b), _) => matches!(b.via, RouteVia::Gateway { .. }),
        (None, c) => c.is_some(),
    }
}

/// An IPv6 route: into a tunnel, or to a global next hop on an interface's IPv6 subnet.
fn route6(
    i: usize,
    r: &RouteFile,
    interfaces: &[InterfaceConfig],
    tunnel_names: &HashMap<&str, channel::Name>,
) -> Result<Route6, ConfigError> {
    let prefix = parse_prefix6(&format!("routes[{i}].prefix"), &r.prefix)?;
    if interfaces.iter().any(|x| {
        x.subnet6() == Some(prefix)
            || x.ipv6
                .is_some_and(|a| prefix.prefix_len() == 128 && prefix.addr() == a.addr())
    }) {
        return err(
            format!("routes[{i}].prefix"),
            format!("{prefix} is an interface's own route"),
        );
    }
    let field = format!("routes[{i}].via");
    if let Some(&t) = tunnel_names.get(r.via.as_str()) {
        return Ok(Route6 {
            prefix,
            via: RouteVia::Tunnel(t),
        });
    }
    let via: Ipv6Addr = r.via.parse().or_else(|_| {
        err(
            &field,
            format!(
                "{:?} is neither a tunnel name nor an IPv6 next hop for {prefix}",
                r.via
            ),
        )
    })?;
    if is_link_local6(&via) {
        return err(
            field,
            format!("next hop {via} is link-local, which names no interface: give the router's global address"),
        );
    }
    let Some(ifc) = interfaces
        .iter()
        .find(|x| x.subnet6().is_some_and(|n| n.contains(&via)))
    else {
        return err(
            field,
            format!("next hop {via} is not on any interface's IPv6 subnet"),
        );
    };
    if ifc.ipv6.is_some_and(|n| n.addr() == via) {
        return err(field, format!("next hop {via} is our own address"));
    }
    Ok(Route6 {
        prefix,
        via: RouteVia::Gateway {
            port: ifc.port,
            via,
        },
    })
}
