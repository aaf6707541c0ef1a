//! The `tunnels` section: route-based VPN tunnels (`st0.N`).

use super::file::{DscpFile, TunnelFile};
use super::{
    err, is_ours, parse_endpoint, parse_name, parse_prefix, parse_prefix6, peer_address,
    unspecified_like, ConfigError, InterfaceConfig, Tunnel,
};
use crate::TunnelEncap;
use channel::{Dscp, Prefixes, Prefixes6, MAX_SELECTORS};
use std::collections::HashSet;

pub const DEFAULT_TUNNEL_TTL: u8 = 64;

pub(super) fn tunnels(
    list: &[TunnelFile],
    interfaces: &[InterfaceConfig],
) -> Result<Vec<Tunnel>, ConfigError> {
    let mut tunnels: Vec<Tunnel> = Vec::with_capacity(list.len());
    let mut names: HashSet<&str> = HashSet::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let field = |x: &str| format!("tunnels[{i}].{x}");
        let name = parse_name(&field("name"), &t.name)?;
        if !names.insert(&t.name) || interfaces.iter().any(|o| o.name == name) {
            return err(
                field("name"),
                format!("{:?} is already the name of a tunnel or interface", t.name),
            );
        }
        let local = parse_endpoint(&field("local"), &t.local)?;
        if !is_ours(interfaces, local) {
            return err(
                field("local"),
                format!("{local} is not the address (or address6) of any interface"),
            );
        }
        // "%any": a dial-up peer's, learned by IKE (the tunnel must be bound to a VPN of a
        // dial-up gateway: `ike::vpns` checks).
        let remote = if t.remote.trim() == "%any" {
            unspecified_like(local)
        } else {
            let remote = parse_endpoint(&field("remote"), &t.remote)?;
            peer_address(&field("remote"), remote, local)?
        };
        let udp = match &t.udp_encap {
            Some(u) if u.local_port == 0 || u.remote_port == 0 => {
                return err(field("udp_encap"), "ports must be non-zero");
            }
            Some(u) => Some((u.local_port, u.remote_port)),
            None => None,
        };
        let dscp = match &t.dscp {
            None => Dscp::Copy,
            Some(DscpFile::Word(w)) if w == "copy" => Dscp::Copy,
            Some(DscpFile::Value(v)) if *v < 64 => Dscp::Set(*v),
            Some(_) => return err(field("dscp"), "\"copy\" or a number 0..63"),
        };
        let mtu = match t.mtu {
            None => None,
            Some(m) => match u16::try_from(m) {
                Ok(m) if (576..=9000).contains(&m) => Some(m),
                _ => return err(field("mtu"), format!("{m} is outside 576..=9000")),
            },
        };
        let ttl = t.ttl.unwrap_or(DEFAULT_TUNNEL_TTL);
        if ttl == 0 {
            return err(field("ttl"), "must be at least 1");
        }
        let (mut local_selectors, mut remote_selectors) = (Prefixes::new(), Prefixes::new());
        let (mut local_selectors6, mut remote_selectors6) = (Prefixes6::new(), Prefixes6::new());
        if let Some(s) = &t.traffic_selectors {
            for (side, list, out, out6) in [
                (
                    "local",
                    &s.local,
                    &mut local_selectors,
                    &mut local_selectors6,
                ),
                (
                    "remote",
                    &s.remote,
                    &mut remote_selectors,
                    &mut remote_selectors6,
                ),
            ] {
                if list.len() > MAX_SELECTORS {
                    return err(
                        format!("tunnels[{i}].traffic_selectors.{side}"),
                        format!("at most {MAX_SELECTORS} prefixes"),
                    );
                }
                for (j, p) in list.iter().enumerate() {
                    let f = format!("tunnels[{i}].traffic_selectors.{side}[{j}]");
                    if p.contains(':') {
                        out6.push(parse_prefix6(&f, p)?);
                    } else {
                        out.push(parse_prefix(&f, p)?);
                    }
                }
            }
        }
        tunnels.push(Tunnel {
            name,
            encap: TunnelEncap {
                local,
                remote,
                udp,
                df: t.df,
                dscp,
                ttl,
                mtu,
            },
            local_selectors,
            remote_selectors,
            local_selectors6,
            remote_selectors6,
        });
    }
    Ok(tunnels)
}
