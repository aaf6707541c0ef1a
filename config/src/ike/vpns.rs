//! `ike.vpns`: each VPN's child SAs bound to tunnels of its gateway (one, or several under
//! one IKE SA), with its proposals, selectors and lifetimes.

use super::*;

pub(super) fn vpns(
    list: &[IpsecVpnFile],
    gateways: &[IkeGateway],
    tunnels: &[Tunnel],
    manual_sas: &[ManualSa],
) -> Result<Vec<IpsecVpn>, ConfigError> {
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
        // The VPN's own binding is its first child; `children` adds more under its IKE SA.
        let extra = v.children.as_deref().unwrap_or_default();
        if extra.len() >= MAX_CHILDREN {
            return err(
                field("children"),
                format!("at most {} children with the VPN's own", MAX_CHILDREN),
            );
        }
        let own = VpnChildFile {
            bind_interface: v.bind_interface.clone(),
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
                )?,
                remote_ts: selectors(
                    &cfield("remote_ts"),
                    c.remote_ts.as_deref(),
                    &tunnel.remote_selectors,
                )?,
            });
        }
        let esp_proposals = strings(
            &field("esp_proposals"),
            v.esp_proposals.as_deref(),
            DEFAULT_ESP_PROPOSAL,
        )?;
        let dial_up = g.remote.is_unspecified();
        let establish = match v.establish.as_deref() {
            // A dial-up peer's address is unknown until it calls.
            None if dial_up => Establish::ResponderOnly,
            Some(x) if dial_up && x != "responder-only" => {
                return err(
                    field("establish"),
                    format!("{x:?}: gateway {} is a dial-up peer (%any), which only calls in: \"responder-only\"", g.name),
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
        vpns.push(IpsecVpn {
            name,
            gateway,
            children,
            esp_proposals,
            establish,
            lifetime_s,
            lifetime_bytes: v.lifetime_bytes,
            lifetime_packets: v.lifetime_packets,
            rekey_margin_s,
        });
    }
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
    Ok(vpns)
}

/// Traffic selectors: the prefixes given, else the tunnel's, else any.
fn selectors(
    field: &str,
    v: Option<&[String]>,
    tunnel: &[Ipv4Net],
) -> Result<Vec<Ipv4Net>, ConfigError> {
    match v {
        None if tunnel.is_empty() => Ok(vec![Ipv4Net::default()]),
        None => Ok(tunnel.to_vec()),
        Some([]) => err(field, "give at least one prefix, or leave the field out"),
        Some(l) if l.len() > MAX_SELECTORS => {
            err(field, format!("at most {MAX_SELECTORS} prefixes"))
        }
        Some(l) => l
            .iter()
            .enumerate()
            .map(|(j, p)| parse_prefix(&format!("{field}[{j}]"), p))
            .collect(),
    }
}
