//! The configuration's VPNs as IKE needs them: settings parsed and checked once per commit.

use super::*;

pub(super) fn id_of(i: &IkeId) -> Id {
    match i {
        IkeId::Ipv4(a) => Id {
            kind: 1,
            data: a.octets().to_vec(),
        },
        IkeId::Fqdn(s) => Id {
            kind: 2,
            data: s.as_bytes().to_vec(),
        },
        IkeId::UserFqdn(s) => Id {
            kind: 3,
            data: s.as_bytes().to_vec(),
        },
    }
}

/// The IKE settings of every VPN of `cfg`; an error names the field (a proposal the
/// dataplane cannot carry out, or that does not parse).
pub(super) fn vpns_of(cfg: &Config) -> Result<Vec<Vpn>, (String, String)> {
    let mut out = Vec::new();
    for (vi, v) in cfg.ike.vpns.iter().enumerate() {
        let Some(g) = cfg.ike.gateways.get(v.gateway) else {
            continue;
        };
        let gi = v.gateway;
        let ike = g
            .proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_ike(p)
                    .map_err(|e| (format!("ike.gateways[{gi}].proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let esp = v
            .esp_proposals
            .iter()
            .enumerate()
            .map(|(i, p)| {
                parse_esp(p)
                    .map_err(|e| (format!("ike.vpns[{vi}].esp_proposals[{i}]"), e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rekey = v.lifetime_s.saturating_sub(v.rekey_margin_s);
        let settings = Settings {
            ike,
            esp,
            psk: g.psk.clone(),
            local_id: id_of(&g.local_id),
            remote_id: id_of(&g.remote_id),
            local_ts: v.local_ts.iter().map(|p| of_prefix(*p)).collect(),
            remote_ts: v.remote_ts.iter().map(|p| of_prefix(*p)).collect(),
            force_encap: g.force_encap,
            fragment_size: g.fragment_size,
            retransmit: Retransmit::default(),
            dpd: match g.dpd.action {
                DpdAction::None => None,
                _ => Some(Duration::from_secs(u64::from(g.dpd.interval_s))),
            },
            dpd_threshold: g.dpd.threshold,
            ike_rekey: Some(Duration::from_secs(u64::from(
                g.lifetime_s - g.lifetime_s / 10,
            ))),
            ike_lifetime: Some(Duration::from_secs(u64::from(g.lifetime_s))),
            child_lifetime: Some(Duration::from_secs(u64::from(v.lifetime_s))),
            child_rekey: Some(Duration::from_secs(u64::from(rekey.max(1)))),
            grace: Duration::from_secs(5),
        };
        let fingerprint = format!("{g:?} {v:?}");
        out.push(Vpn {
            name: v.name,
            gateway: g.name,
            tunnel: v.tunnel,
            local: g.local,
            remote: g.remote,
            port: g.port,
            settings: Arc::new(settings),
            establish: v.establish,
            dpd_action: g.dpd.action,
            hard: Lifetime {
                packets: v.lifetime_packets,
                bytes: v.lifetime_bytes,
            },
            start_at: None,
            fingerprint,
        });
    }
    Ok(out)
}

/// Checks what only the control can check (the proposals); `Err`: (field, reason).
pub fn validate(cfg: &Config) -> Result<(), (String, String)> {
    vpns_of(cfg).map(|_| ())
}
