//! The `interfaces` and `neighbors` sections.

use super::file::{InterfaceFile, NeighborFile};
use super::{err, is_link_local6, parse_mac, parse_name, ConfigError, InterfaceConfig};
use channel::Mac;
use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const DEFAULT_MTU: u16 = 1500;

pub(super) fn interfaces(list: &[InterfaceFile]) -> Result<Vec<InterfaceConfig>, ConfigError> {
    let mut interfaces: Vec<InterfaceConfig> = Vec::new();
    for (i, x) in list.iter().enumerate() {
        let field = |n: &str| format!("interfaces[{i}].{n}");
        let name = parse_name(&field("name"), &x.name)?;
        if interfaces.iter().any(|o| o.name == name) {
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
        let ipv6 = match &x.address6 {
            Some(a) => Some(address6(&field("address6"), a, &interfaces)?),
            None => None,
        };
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
            name,
            port: x.port,
            addr: net.addr(),
            prefix_len: net.prefix_len(),
            ipv6,
            mac,
            mtu,
        });
    }
    Ok(interfaces)
}

/// An interface's global IPv6 address and on-link prefix (`address6`).
fn address6(field: &str, text: &str, others: &[InterfaceConfig]) -> Result<Ipv6Net, ConfigError> {
    let net: Ipv6Net = text.parse().or_else(|_| {
        err(
            field,
            format!("{text:?} is not an address/length like 2001:db8:1::1/64 (length 1..128)"),
        )
    })?;
    let a = net.addr();
    if is_link_local6(&a) {
        return err(
            field,
            format!("{a} is link-local: the interface's link-local address comes from its MAC (EUI-64); give a global or unique-local one"),
        );
    }
    if a.is_multicast() || a.is_unspecified() || a.is_loopback() || net.prefix_len() == 0 {
        return err(
            field,
            format!("{text} is not a unicast address on a subnet"),
        );
    }
    // The subnet-router anycast address (all host bits zero, RFC 4291 section 2.6.1).
    if a == net.network() && net.prefix_len() < 127 {
        return err(field, format!("{text} is not a host address on its subnet"));
    }
    if others
        .iter()
        .filter_map(|o| o.ipv6)
        .any(|o| o.trunc().contains(&a) || net.trunc().contains(&o.addr()))
    {
        return err(field, format!("{text} overlaps another interface's subnet"));
    }
    Ok(net)
}

/// Static neighbors of both families: (IPv4, IPv6).
pub(super) type Neighbors = (Vec<(Ipv4Addr, Mac)>, Vec<(Ipv6Addr, Mac)>);

pub(super) fn neighbors(
    list: &[NeighborFile],
    interfaces: &[InterfaceConfig],
) -> Result<Neighbors, ConfigError> {
    let mut neighbors: Vec<(Ipv4Addr, Mac)> = Vec::new();
    let mut neighbors6: Vec<(Ipv6Addr, Mac)> = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let field = |x: &str| format!("neighbors[{i}].{x}");
        let a = match n.address.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => a,
            Ok(IpAddr::V6(a)) => {
                neighbor6(&field("address"), a, interfaces, &neighbors6)?;
                neighbors6.push((a, parse_mac(&field("mac"), &n.mac)?));
                continue;
            }
            Err(_) => {
                return err(
                    field("address"),
                    format!("{:?} is not an IPv4 or IPv6 address", n.address),
                )
            }
        };
        if !interfaces.iter().any(|i| i.subnet().contains(&a)) {
            return err(
                field("address"),
                format!("{a} is not on any interface's subnet"),
            );
        }
        if interfaces.iter().any(|i| i.addr == a) {
            return err(field("address"), format!("{a} is our own address"));
        }
        if neighbors.iter().any(|(o, _)| *o == a) {
            return err(field("address"), format!("{a} is listed twice"));
        }
        neighbors.push((a, parse_mac(&field("mac"), &n.mac)?));
    }
    Ok((neighbors, neighbors6))
}

/// An IPv6 neighbor must be on an interface's IPv6 subnet, not ours, listed once.
fn neighbor6(
    field: &str,
    a: Ipv6Addr,
    interfaces: &[InterfaceConfig],
    seen: &[(Ipv6Addr, Mac)],
) -> Result<(), ConfigError> {
    if is_link_local6(&a) {
        return err(
            field,
            format!(
                "{a} is link-local, which names no interface: give the neighbor's global address"
            ),
        );
    }
    if a.is_multicast() || a.is_unspecified() {
        return err(field, format!("{a} is not a unicast address"));
    }
    if !interfaces
        .iter()
        .any(|i| i.subnet6().is_some_and(|n| n.contains(&a)))
    {
        return err(field, format!("{a} is not on any interface's IPv6 subnet"));
    }
    if interfaces
        .iter()
        .any(|i| i.ipv6.is_some_and(|n| n.addr() == a))
    {
        return err(field, format!("{a} is our own address"));
    }
    if seen.iter().any(|(o, _)| *o == a) {
        return err(field, format!("{a} is listed twice"));
    }
    Ok(())
}
