//! The `interfaces` and `neighbors` sections.

use super::file::{InterfaceFile, NeighborFile};
use super::{err, parse_ip, parse_mac, parse_name, ConfigError, InterfaceConfig};
use channel::Mac;
use ipnet::Ipv4Net;
use std::net::Ipv4Addr;

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
            mac,
            mtu,
        });
    }
    Ok(interfaces)
}

pub(super) fn neighbors(
    list: &[NeighborFile],
    interfaces: &[InterfaceConfig],
) -> Result<Vec<(Ipv4Addr, Mac)>, ConfigError> {
    let mut neighbors: Vec<(Ipv4Addr, Mac)> = Vec::new();
    for (i, n) in list.iter().enumerate() {
        let field = |x: &str| format!("neighbors[{i}].{x}");
        let a = parse_ip(&field("address"), &n.address)?;
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
    Ok(neighbors)
}
