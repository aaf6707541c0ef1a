//! `ike.vpns`: each VPN's child SAs bound to tunnels of its gateway (one, or several under
//! one IKE SA), with its proposals, selectors and lifetimes.

use super::*;
use channel::{Prefixes, Prefixes6};
use ipnet::Ipv6Net;

/// The VPNs, and the tunnels the policy-based ones make (one per policy into one).
pub(super) fn vpns(
    list: &[IpsecVpnFile],
    gateways: &[IkeGateway],
    tunnels: &[Tunnel],
    manual_sas: &[ManualSa],
    policies: &[Policy],
) -> Result<(Vec<IpsecVpn>, Vec<Tunnel>), ConfigError> {
    let mut made: Vec<Tunnel> = Vec::new();
    for (k, p) in policies.iter().enumerate() {
        if let PolicyThen::IpsecVpn(n) = p.then {
            if !list.iter().any(|v| v.name == n.as_str()) {
                return err(
                    format!("policies[{k}].then.ipsec_vpn"),
                    format!("no VPN named {n}"),
                );
            }
        }
    }
    let gateway_by_name: HashMap<&str, (usize, &IkeGateway)> = gateways
        .iter()
        .enumerate()
        .map(|(i, g)| (g.name.as_str(), (i, g)))
        .collect();
    let tunnel_by_name: HashMap<&str, (usize, &Tunnel)> = tunnels
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), (i, t)))
        .collect();
    let mut vpns: Vec<IpsecVpn> = Vec::with_capacity(list.len());
    let mut names: HashSet<Name> = HashSet::with_capacity(list.len());
    // Tunnel -> the VPN bound to it.
    let mut bound: HashMap<Name, usize> = HashMap::with_capacity(list.len());
    for (i, v) in list.iter().enumerate() {
        let field = |x: &str| format!("ike.vpns[{i}].{x}");
        let name = parse_name(&field("name"), &v.name)?;
        if !names.insert(name) {
            return err(field("name"), format!("{:?} is defined twice", v.name));
        }
        let Some(&(gateway, g)) = gateway_by_name.get(v.gateway.as_str()) else {
            return err(
                field("gateway"),
                format!("no gateway named {:?}", v.gateway),
            );
        };
        let named: Vec<&Policy> = policies
            .iter()
            .filter(|p| p.then == PolicyThen::IpsecVpn(name))
            .collect();
        let bind = match (&v.bind_interface, named.first()) {
            (Some(_), Some(p)) => {
                return err(
                    field("bind_interface"),
                    format!(
                        "policy {} sends into this VPN: a VPN is route-based (bind_interface) or \
                         policy-based (named by policies), not both",
                        p.name
                    ),
                )
            }
            (None, None) => {
                return err(
                    field("bind_interface"),
                    "give the tunnel it keys, or name it in a policy ({\"then\": {\"ipsec_vpn\": ...}})",
                )
            }
            (Some(b), None) => b.clone(),
            (None, Some(_)) => {
                let children = policy_children(&field, v, &named, g, &mut made)?;
                for c in &children {
                    bound.insert(c.tunnel, i);
                }
                vpns.push(vpn(&field, v, name, gateway, children, dial_up_of(g))?);
                continue;
            }
        };
        // The VPN's own binding is its first child; `children` adds more under its IKE SA.
        let extra = v.children.as_deref().unwrap_or_default();
        if extra.len() >= MAX_CHILDREN {
            return err(
                field("children"),
                format!("at most {} children with the VPN's own", MAX_CHILDREN),
            );
        }
        let own = VpnChildFile {
            bind_interface: bind,
            local_ts: v.local_ts.clone(),
            remote_ts: v.remote_ts.clone(),
        };
        let mut children = Vec::with_capacity(1 + extra.len());
        for (k, c) in std::iter::once(&own).chain(extra).enumerate() {
            let cfield = |x: &str| match k {
                0 => field(x),
                k => field(&format!("children[{}].{x}", k - 1)),
            };
            let Some(&(t, tunnel)) = tunnel_by_name.get(c.bind_interface.as_str()) else {
                return err(
                    cfield("bind_interface"),
                    format!("no tunnel named {:?}", c.bind_interface),
                );
            };
            if let Some(other) = bound.insert(tunnel.name, i) {
                return err(
                    cfield("bind_interface"),
                    format!("{} is already bound to ike.vpns[{other}]", tunnel.name),
                );
            }
            if (tunnel.encap.local, tunnel.encap.remote) != (g.local, g.remote) {
                return err(
                    cfield("bind_interface"),
                    format!(
                        "tunnel {} runs {} -> {}, but gateway {} runs {} -> {}",
                        tunnel.name,
                        tunnel.encap.local,
                        tunnel.encap.remote,
                        g.name,
                        g.local,
                        g.remote
                    ),
                );
            }
            if tunnel.encap.udp.is_some() {
                return err(
                    format!("tunnels[{t}].udp_encap"),
                    format!(
                        "{} is keyed by IKE (ike.vpns[{i}]), which decides NAT-T: leave udp_encap \
                         out (nat_traversal \"force\" on the gateway always encapsulates)",
                        tunnel.name
                    ),
                );
            }
            children.push(VpnChild {
                tunnel: tunnel.name,
                local_ts: selectors(
                    &cfield("local_ts"),
                    c.local_ts.as_deref(),
                    &tunnel.local_selectors,
                    &tunnel.local_selectors6,
                )?,
                remote_ts: selectors(
                    &cfield("remote_ts"),
                    c.remote_ts.as_deref(),
                    &tunnel.remote_selectors,
                    &tunnel.remote_selectors6,
                )?,
                protocol: 0,
                local_ports: ANY_PORTS,
                remote_ports: ANY_PORTS,
            });
        }
        vpns.push(vpn(&field, v, name, gateway, children, dial_up_of(g))?);
    }
    finish(tunnels, &bound, manual_sas)?;
    Ok((vpns, made))
}

/// Whether `g` is a dial-up gateway (`%any`).
fn dial_up_of(g: &IkeGateway) -> bool {
    g.remote.is_unspecified()
}

/// A policy-based VPN's children: one per policy that names it (at most `MAX_CHILDREN`),
/// each keying a tunnel named after the policy between the gateway's addresses, added to
/// `made`.
fn policy_children(
    field: &dyn Fn(&str) -> String,
    v: &IpsecVpnFile,
    named: &[&Policy],
    g: &IkeGateway,
    made: &mut Vec<Tunnel>,
) -> Result<Vec<VpnChild>, ConfigError> {
    if v.children.is_some() || v.local_ts.is_some() || v.remote_ts.is_some() {
        return err(
            field("children"),
            "a policy-based VPN's children and selectors are its policies'",
        );
    }
    if named.len() > MAX_CHILDREN {
        return err(
            field("name"),
            format!(
                "{} policies send into it: at most {MAX_CHILDREN}",
                named.len()
            ),
        );
    }
    let mut children = Vec::with_capacity(named.len());
    for p in named {
        // The child's selectors: the side's prefixes of each family the policy applies to,
        // the whole family where the side is any.
        let (v4, v6) =
            channel::policy_families(&p.source, &p.source6, &p.destination, &p.destination6);
        let ts = |l: &Prefixes, l6: &Prefixes6| {
            let mut out: Vec<IpNet> = Vec::new();
            let any = l.is_empty() && l6.is_empty();
            if v4 && any {
                out.push(Ipv4Net::default().into());
            }
            if v6 && any {
                out.push(Ipv6Net::default().into());
            }
            out.extend(l.iter().map(|&n| IpNet::from(n)));
            out.extend(l6.iter().map(|&n| IpNet::from(n)));
            out
        };
        made.push(Tunnel {
            name: p.name,
            encap: crate::TunnelEncap {
                local: g.local,
                remote: g.remote,
                udp: None,
                df: Default::default(),
                dscp: channel::Dscp::Copy,
                ttl: crate::tunnels::DEFAULT_TUNNEL_TTL,
                mtu: None,
            },
            local_selectors: p.source.clone(),
            remote_selectors: p.destination.clone(),
            local_selectors6: p.source6.clone(),
            remote_selectors6: p.destination6.clone(),
        });
        children.push(VpnChild {
            tunnel: p.name,
            local_ts: ts(&p.source, &p.source6),
            remote_ts: ts(&p.destination, &p.destination6),
            protocol: p.protocol,
            local_ports: p.source_ports,
            remote_ports: p.destination_ports,
        });
    }
    Ok(children)
}
/// The VPN of `v` with its `children`, its proposals, establishment and lifetimes checked.
fn vpn(
    field: &dyn Fn(&str) -> String,
    v: &IpsecVpnFile,
    name: Name,
    gateway: usize,
    children: Vec<VpnChild>,
    dial_up: bool,
) -> Result<IpsecVpn, ConfigError> {
    let esp_proposals = strings(
        &field("esp_proposals"),
        v.esp_proposals.as_deref(),
        DEFAULT_ESP_PROPOSAL,
    )?;
    let establish = match v.establish.as_deref() {
        // A dial-up peer's address is unknown until it calls.
        None if dial_up => Establish::ResponderOnly,
        Some(x) if dial_up && x != "responder-only" => {
            return err(
                field("establish"),
                format!("{x:?}: its gateway is a dial-up peer (%any), which only calls in: \"responder-only\""),
            )
        }
        None | Some("immediately") => Establish::Immediately,
        Some("on-traffic") => Establish::OnTraffic,
        Some("responder-only") => Establish::ResponderOnly,
        Some(x) => {
            return err(
                field("establish"),
                format!("{x:?} is not \"immediately\", \"on-traffic\" or \"responder-only\""),
            )
        }
    };
    let lifetime_s = seconds(
        &field("lifetime_s"),
        v.lifetime_s,
        DEFAULT_CHILD_LIFETIME_S,
        MIN_LIFETIME_S..=MAX_CHILD_LIFETIME_S,
    )?;
    for (f, limit) in [
        ("lifetime_bytes", v.lifetime_bytes),
        ("lifetime_packets", v.lifetime_packets),
    ] {
        if limit == Some(0) {
            return err(
                field(f),
                "a limit of 0 would end the SA before its first packet",
            );
        }
    }
    let rekey_margin_s = match v.rekey_margin_s {
        None => lifetime_s / 10,
        Some(m) => match u32::try_from(m) {
            Ok(m) if m < lifetime_s => m,
            _ => {
                return err(
                    field("rekey_margin_s"),
                    format!("{m} is not below lifetime_s ({lifetime_s})"),
                )
            }
        },
    };
    Ok(IpsecVpn {
        name,
        gateway,
        children,
        esp_proposals,
        establish,
        lifetime_s,
        lifetime_bytes: v.lifetime_bytes,
        lifetime_packets: v.lifetime_packets,
        rekey_margin_s,
    })
}

/// What binding VPNs to tunnels leaves to check: a dial-up tunnel is bound; a bound tunnel
/// (or one a policy made) takes no manual SA.
fn finish(
    tunnels: &[Tunnel],
    bound: &HashMap<Name, usize>,
    manual_sas: &[ManualSa],
) -> Result<(), ConfigError> {
    // A dial-up tunnel's peer comes from IKE: it must be bound.
    for (t, tunnel) in tunnels.iter().enumerate() {
        if tunnel.encap.remote.is_unspecified() && !bound.contains_key(&tunnel.name) {
            return err(
                format!("tunnels[{t}].remote"),
                format!(
                    "{} has a dial-up peer (%any): bind it to a VPN of a dial-up gateway",
                    tunnel.name
                ),
            );
        }
    }
    // IKE keys a bound tunnel: it takes no manual SA.
    for (k, s) in manual_sas.iter().enumerate() {
        if let Some(i) = bound.get(&s.tunnel) {
            return err(
                format!("manual_sas[{k}].tunnel"),
                format!(
                    "{} is keyed by IKE (ike.vpns[{i}]): it takes no manual SA",
                    s.tunnel
                ),
            );
        }
    }
    Ok(())
}

/// Traffic selectors: the prefixes given (IPv4 or IPv6), else the tunnel's (both families),
/// else any IPv4.
fn selectors(
    field: &str,
    v: Option<&[String]>,
    tunnel: &[Ipv4Net],
    tunnel6: &[ipnet::Ipv6Net],
) -> Result<Vec<IpNet>, ConfigError> {
    match v {
        None if tunnel.is_empty() && tunnel6.is_empty() => Ok(vec![IpNet::V4(Ipv4Net::default())]),
        None => Ok(tunnel
            .iter()
            .map(|&n| IpNet::from(n))
            .chain(tunnel6.iter().map(|&n| IpNet::from(n)))
            .collect()),
        Some([]) => err(field, "give at least one prefix, or leave the field out"),
        Some(l) if l.len() > MAX_SELECTORS => {
            err(field, format!("at most {MAX_SELECTORS} prefixes"))
        }
        Some(l) => l
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let f = format!("{field}[{j}]");
                if p.contains(':') {
                    parse_prefix6(&f, p).map(IpNet::V6)
                } else {
                    parse_prefix(&f, p).map(IpNet::V4)
                }
            })
            .collect(),
    }
}
